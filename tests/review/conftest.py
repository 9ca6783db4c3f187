"""Fixtures of the review tests. Each test gets a fresh database cloned from a template that
is migrated and holds a small cast of people (a PostgreSQL `CREATE DATABASE ... TEMPLATE`, or
a copy of the SQLite file): far faster than migrating per test. `empty_database_url` is a
fresh, unmigrated database for the migration tests."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import PG_ADMIN_DSN, RESIDENT_ID, USCC
from vtax.accounts import Accounts
from vtax.db import make_engine, migrate, session_factory
from vtax.review.records import SessionRecords

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{}"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/{}"
CAST_TABLES = ("users", "taxpayers")


@dataclass(frozen=True)
class Cast:
    """The people in every review test database."""

    agent: str
    other_agent: str
    supervisor: str
    taxpayer: str
    other_taxpayer: str


async def _build(url: str) -> Cast:
    await migrate(url)
    engine = make_engine(url)
    try:
        accounts = Accounts(session_factory(engine))
        languages = ["zh-CN", "yue", "en", "pt"]
        skills = {"invoices": 3, "vat": 3}
        a1 = await accounts.add_user(
            "agent1",
            "agent",
            "pw-123456",
            display_name="Agent One",
            skills=skills,
            languages=languages,
        )
        a2 = await accounts.add_user(
            "agent2",
            "agent",
            "pw-123456",
            display_name="Agent Two",
            skills=skills,
            languages=languages,
        )
        boss = await accounts.add_user("boss", "supervisor", "pw-123456", display_name="Boss")
        return Cast(
            a1.id,
            a2.id,
            boss.id,
            await accounts.taxpayer_for("uscc", USCC, "Acme Ltd"),
            await accounts.taxpayer_for("resident_id", RESIDENT_ID),
        )
    finally:
        await engine.dispose()


class Templates:
    """Built once per test run: a migrated SQLite file to copy, and one migrated PostgreSQL
    database that is emptied between tests down to the cast (far cheaper than CREATE
    DATABASE, which costs about a second here)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite: tuple[Path, Cast] | None = None
        self.pg: tuple[str, Cast, dict[str, list[Any]]] | None = None

    async def sqlite_template(self) -> tuple[Path, Cast]:
        if self.sqlite is None:
            path = self.folder / "template.db"
            self.sqlite = (path, await _build(f"sqlite+aiosqlite:///{path}"))
        return self.sqlite

    async def pg_database(self) -> tuple[str, Cast]:
        """The run's PostgreSQL database, reset to the migrated schema and the cast."""
        if self.pg is None:
            name = f"vtax_review_{uuid.uuid4().hex[:12]}"
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            cast = await _build(PG_URL.format(name))
            conn = await asyncpg.connect(PG_DSN.format(name))
            try:
                rows = {t: await conn.fetch(f"SELECT * FROM {t}") for t in CAST_TABLES}
            finally:
                await conn.close()
            self.pg = (name, cast, rows)
            return name, cast
        name, cast, rows = self.pg
        conn = await asyncpg.connect(PG_DSN.format(name))
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
            async with conn.transaction():
                # replica role: no triggers (the append-only guards, the foreign keys) while
                # emptying; DELETE on tables this small is much cheaper than TRUNCATE.
                await conn.execute("SET LOCAL session_replication_role = replica")
                for r in tables:
                    await conn.execute(f'DELETE FROM "{r["tablename"]}"')
                for table in CAST_TABLES:  # the cast exactly as built (e.g. re-enabled)
                    await conn.copy_records_to_table(
                        table, records=rows[table], columns=list(rows[table][0].keys())
                    )
        finally:
            await conn.close()
        return name, cast

    def close(self) -> None:
        if self.pg is not None:

            async def drop(name: str) -> None:
                admin = await asyncpg.connect(PG_ADMIN_DSN)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()

            asyncio.run(drop(self.pg[0]))


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("review-templates"))
    yield t
    t.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, templates: Templates
) -> AsyncIterator[str]:
    """A migrated database holding only the cast, on each engine (overrides the root one)."""
    if request.param == "sqlite":
        path, cast = await templates.sqlite_template()
        shutil.copy(path, tmp_path / "vtax.db")
        request.node.cast = cast
        yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"
        return
    name, cast = await templates.pg_database()
    request.node.cast = cast
    yield PG_URL.format(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty (unmigrated) database on each engine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"vtax_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield PG_URL.format(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def cast(request: pytest.FixtureRequest, database_url: str) -> Cast:
    return request.node.cast  # type: ignore[no-any-return]


@dataclass
class Store:
    records: SessionRecords
    engine: Any
    agent: str
    other_agent: str
    supervisor: str
    taxpayer: str
    other_taxpayer: str


@pytest.fixture
async def store(database_url: str, cast: Cast) -> AsyncIterator[Store]:
    engine = make_engine(database_url)
    try:
        yield Store(
            SessionRecords(session_factory(engine)),
            engine,
            cast.agent,
            cast.other_agent,
            cast.supervisor,
            cast.taxpayer,
            cast.other_taxpayer,
        )
    finally:
        await engine.dispose()


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Delivered documents go to the test's folder (overrides the root fixture)."""
    return {"documents_dir": tmp_path / "documents"}
