"""Test databases made from templates: each template is built (migrated, maybe populated)
once per test run, or once per pytest-xdist worker, and every test gets a copy. A copy of a
SQLite file costs about a millisecond; `CREATE DATABASE x TEMPLATE t` ~0.1-0.3 s, against
~2 s to migrate a fresh PostgreSQL database here (docs/benchmarks.md, "Test suite").

PostgreSQL refuses to copy a template while anyone is connected to it, so a template is
closed to connections once built (`ALLOW_CONNECTIONS false`): nothing can spoil it. Names
are unique per run (the server is shared by everyone on the machine), and every database made
here is dropped again: a copy when its test ends (by a background thread: a DROP DATABASE
costs ~0.5 s of waiting for the disk, no test need wait for it), the templates at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

PG_ADMIN_DSN = os.environ.get("VTAX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_SERVER = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
PG_SERVER_DSN = PG_ADMIN_DSN.rsplit("/", 1)[0]

Build = Callable[[str], Awaitable[Any]]


def pg_url(name: str) -> str:
    """The SQLAlchemy URL of a database on the test server."""
    return f"{PG_SERVER}/{name}"


def pg_dsn(name: str) -> str:
    """The asyncpg DSN of a database on the test server."""
    return f"{PG_SERVER_DSN}/{name}"


def unique_name(kind: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"vtax_{kind}_{worker}{uuid.uuid4().hex[:12]}"


async def create_pg_database(name: str, template: str | None = None) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        if template is None:
            await admin.execute(f'CREATE DATABASE "{name}"')
        else:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()


async def drop_pg_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class _Dropper:
    """One thread that drops the databases handed to it, in order, over its own connection."""

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def drop(self, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="drop-test-dbs", daemon=True)
            self._thread.start()
        self._queue.put(name)

    def _run(self) -> None:
        async def loop() -> None:
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                while (name := await asyncio.to_thread(self._queue.get)) is not None:
                    try:
                        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    except Exception as exc:  # reported at the end of the run
                        self.errors.append(f"{name}: {exc!r}")
            finally:
                await admin.close()

        asyncio.run(loop())

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(120)
            self._thread = None


class Templates:
    """Migrated (and maybe populated) databases to copy, each built once, by name. `build`
    gets the new database's URL and returns what the tests need to know about it (e.g. the
    ids of the people it holds); that comes back with every copy."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sqlite: dict[str, tuple[Path, Any]] = {}
        self._pg: dict[str, tuple[str, Any]] = {}
        self._dropper = _Dropper()

    async def sqlite_copy(self, name: str, build: Build, target: Path) -> Any:
        """Copy the SQLite template `name` (built on first use) to `target`."""
        if name not in self._sqlite:
            path = self.folder / f"{name}.db"
            info = await build(f"sqlite+aiosqlite:///{path}")
            with contextlib.closing(sqlite3.connect(path)) as db:  # all of it in the file
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._sqlite[name] = (path, info)
        path, info = self._sqlite[name]
        shutil.copyfile(path, target)
        return info

    async def pg_template(self, name: str, build: Build) -> tuple[str, Any]:
        """(database name, what `build` said) of the PostgreSQL template `name`."""
        if name not in self._pg:
            db = unique_name(f"tpl_{name}")
            await create_pg_database(db)
            try:
                info = await build(pg_url(db))
                # no connection may be open on a template while it is copied: forbid them
                admin = await asyncpg.connect(PG_ADMIN_DSN)
                try:
                    await admin.execute(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS false')
                finally:
                    await admin.close()
            except BaseException:
                await drop_pg_database(db)
                raise
            self._pg[name] = (db, info)
        return self._pg[name]

    async def pg_copy(self, name: str, build: Build) -> tuple[str, Any]:
        """A new database copied from template `name`: (its name, what `build` said).
        Give the name back with `release` when the test is done."""
        template, info = await self.pg_template(name, build)
        db = unique_name("test")
        await create_pg_database(db, template)
        return db, info

    def release(self, db: str) -> None:
        """Drop a database (in the background; the end of the run waits for it)."""
        self._dropper.drop(db)

    def close(self) -> None:
        self._dropper.close()
        for db, _ in self._pg.values():
            asyncio.run(drop_pg_database(db))
        self._pg.clear()
        if self._dropper.errors:
            raise RuntimeError("test databases not dropped: " + "; ".join(self._dropper.errors))
