from vtax.cli import main

raise SystemExit(main())
