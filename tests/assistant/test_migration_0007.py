"""Migration 0007 on both engines: it creates the assistant's tables as the models declare
them, seeds the revision counter, and its downgrade removes them (to 0005, whatever the
head is by then)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from vtax.assistant.tables import (
    ConsultationRow,
    ConsultationTurnRow,
    KbEntryRow,
    KbEntryVersionRow,
    KbRevisionRow,
)
from vtax.db import alembic_config, make_engine, migrate

TABLES = {
    m.__tablename__: m
    for m in (KbEntryRow, KbEntryVersionRow, KbRevisionRow, ConsultationRow, ConsultationTurnRow)
}


async def columns(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: sa.Connection) -> dict[str, set[str]]:
                inspector = sa.inspect(sync_conn)
                names = set(inspector.get_table_names())
                return {
                    t: {c["name"] for c in inspector.get_columns(t)} for t in TABLES if t in names
                }

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_0007_up_and_down(database_url):
    await migrate(database_url, "0007")
    got = await columns(database_url)
    assert set(got) == set(TABLES)
    for name, model in TABLES.items():
        assert got[name] == {c.name for c in model.__table__.columns}, name
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT id, revision FROM kb_revision"))).all()
        assert [tuple(r) for r in rows] == [(1, 0)]
    finally:
        await engine.dispose()

    from alembic import command

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0005")
    assert await columns(database_url) == {}
