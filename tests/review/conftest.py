"""Fixtures of the review tests. Each test gets a database that is migrated and holds a small
cast of people, made from a template built once per run (tests/databases.py): a copy of the
SQLite file, or on PostgreSQL one copy of the template, reset to the cast between tests. Far
faster than migrating per test. The root
`empty_database_url` is a fresh, unmigrated database for the migration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import RESIDENT_ID, USCC, cheap_passwords
from tests.databases import Templates, pg_dsn, pg_url
from tests.signin import derived_resident_id
from vtax.accounts import Accounts
from vtax.db import make_engine, migrate, session_factory
from vtax.identity.tables import Person
from vtax.review.records import SessionRecords

CAST_TABLES = ("users", "taxpayers", "identity_people")


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
        accounts = Accounts(session_factory(engine), cheap_passwords())
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
        taxpayer = await accounts.taxpayer_for("uscc", USCC, "Acme Ltd")
        other = await accounts.taxpayer_for("resident_id", RESIDENT_ID)
        # the two taxpayers as people of the identity registry, under their taxpayer ids (as
        # migration 0006 maps today's taxpayers): tests/review/helpers.py signs them in
        async with session_factory(engine)() as db, db.begin():
            for tid, name, document in (
                (taxpayer, "Acme Representative", derived_resident_id("review:" + USCC)),
                (other, "Resident", RESIDENT_ID),
            ):
                db.add(
                    Person(
                        id=tid,
                        name=name,
                        doc_type="resident_id",
                        doc_key=document,
                        doc_number=document,
                        disabled=False,
                        token_version=0,
                    )
                )
        return Cast(a1.id, a2.id, boss.id, taxpayer, other)
    finally:
        await engine.dispose()


class ReviewDatabase:
    """The run's PostgreSQL review database (copied once from a template holding the cast,
    tests/databases.py), reset between tests to the migrated schema and the cast: far
    cheaper than even a CREATE DATABASE from the template."""

    def __init__(self, templates: Templates) -> None:
        self.templates = templates
        self.pg: tuple[str, Cast, dict[str, list[Any]]] | None = None

    async def pg_database(self) -> tuple[str, Cast]:
        """The run's PostgreSQL database, reset to the migrated schema and the cast."""
        if self.pg is None:
            name, cast = await self.templates.pg_copy("review", _build)
            conn = await asyncpg.connect(pg_dsn(name))
            try:
                rows = {t: await conn.fetch(f"SELECT * FROM {t}") for t in CAST_TABLES}
            finally:
                await conn.close()
            self.pg = (name, cast, rows)
            return name, cast
        name, cast, rows = self.pg
        conn = await asyncpg.connect(pg_dsn(name))
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                # the schema's own rows stay: its revision, and the zone of the stored days
                "AND tablename NOT IN ('alembic_version', 'kpi_meta')"
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
            self.templates.release(self.pg[0])


@pytest.fixture(scope="session")
def review_database(templates: Templates) -> Iterator[ReviewDatabase]:
    db = ReviewDatabase(templates)
    yield db
    db.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    templates: Templates,
    review_database: ReviewDatabase,
) -> AsyncIterator[str]:
    """A migrated database holding only the cast, on each engine (overrides the root one)."""
    if request.param == "sqlite":
        request.node.cast = await templates.sqlite_copy("review", _build, tmp_path / "vtax.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"
        return
    name, cast = await review_database.pg_database()
    request.node.cast = cast
    yield pg_url(name)


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
