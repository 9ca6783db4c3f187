"""`python -m vtax ...` is the `vtax` command, whose code lives with the server
(signaling/cli.py): this alias is the domain package's only import of the server, and
import-linter's contracts name it as their one exception."""

from signaling.cli import main

raise SystemExit(main())
