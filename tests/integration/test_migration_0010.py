"""Migration 0010 on both engines: it adds the materials' table over 0008 and its downgrade
removes exactly it."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from vtax.db import alembic_config, make_engine, migrate


async def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_0010_up_down_up(empty_database_url: str) -> None:
    from alembic import command

    await migrate(empty_database_url, "0010")
    after = await tables(empty_database_url)
    assert "session_materials" in after
    await asyncio.to_thread(command.downgrade, alembic_config(empty_database_url), "0010-1")
    assert after - await tables(empty_database_url) == {"session_materials"}
    await migrate(empty_database_url, "0010")
    assert "session_materials" in await tables(empty_database_url)
