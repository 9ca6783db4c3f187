"""Migration 0008 on both engines: it creates the appointments' tables over whatever came
before it, and its downgrade removes exactly them (the revision before is named relatively:
the lead re-chains the migrations at merge, so 0008 need not stay the head)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from vtax.db import alembic_config, make_engine, migrate

TABLES = {
    "calendar_years",
    "appointment_plans",
    "appointment_slots",
    "bookings",
    "booking_materials",
    "appointment_events",
    "appointment_block_lifts",
    "appointment_outbox",
    "appointment_callbacks",
}


async def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_0008_up_down_up(empty_database_url: str) -> None:
    from alembic import command

    # From an empty database: on one migrated to the head, "0008-1" would undo the later
    # migrations too (0010's tables among them).
    database_url = empty_database_url
    await migrate(database_url, "0008")
    # the database is at the head: later migrations (0009, in-call chat, ...) go first
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0008")
    after = await tables(database_url)
    assert TABLES <= after and "service_sessions" in after
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0008-1")
    before = await tables(database_url)
    assert not TABLES & before
    assert after - before == TABLES
    await migrate(database_url, "0008")
    assert TABLES <= await tables(database_url)
