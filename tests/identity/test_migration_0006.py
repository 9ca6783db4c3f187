"""Migration 0006 on both engines: from 0005 up to 0006 the registry's tables appear (and take
rows), down to 0005 they are gone, and up again. Targets the revision, not the head."""

from __future__ import annotations

import asyncio
from datetime import datetime

import sqlalchemy as sa

from vtax.db import alembic_config, make_engine, migrate

TABLES = {
    "identity_people",
    "identity_phones",
    "identity_enterprises",
    "identity_grants",
    "identity_kiosks",
    "identity_staff_security",
    "identity_audit",
}


async def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_0006_up_down_up(empty_database_url):
    database_url = empty_database_url
    from alembic import command

    await migrate(database_url, "0005")
    assert not TABLES & await tables(database_url)
    await migrate(database_url, "0006")
    assert TABLES <= await tables(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO identity_people (id, name, doc_type, doc_key, doc_number, "
                    "disabled, token_version, created_at, updated_at) VALUES "
                    "('p1', 'n', 'passport', 'UTO:X', 'UTO:X1', false, 0, :t, :t)"
                ),
                {"t": datetime(2026, 12, 3)},
            )
    finally:
        await engine.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0005")
    assert not TABLES & await tables(database_url)
    await migrate(database_url, "0006")
    assert TABLES <= await tables(database_url)


async def test_0006_maps_todays_taxpayers(empty_database_url):
    """Resident-ID taxpayers become people, USCC taxpayers enterprises, with their ids."""
    database_url = empty_database_url
    await migrate(database_url, "0005")
    rows = [
        ("t-rid", "resident_id", "11010519491231002X", "Wang Fang"),
        ("t-permit", "resident_id", "810000199001011234", ""),
        ("t-uscc", "uscc", "91350100M000100Y43", "Acme Ltd"),
    ]
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for row in rows:
                await conn.execute(
                    sa.text(
                        "INSERT INTO taxpayers (id, id_type, id_number, name, created_at) "
                        "VALUES (:id, :t, :n, :name, :at)"
                    ),
                    {
                        "id": row[0],
                        "t": row[1],
                        "n": row[2],
                        "name": row[3],
                        "at": datetime(2026, 1, 2),
                    },
                )
    finally:
        await engine.dispose()
    await migrate(database_url, "0006")
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            people = (
                await conn.execute(
                    sa.text("SELECT id, doc_type, doc_key, name FROM identity_people ORDER BY id")
                )
            ).all()
            firms = (
                await conn.execute(sa.text("SELECT id, uscc, name FROM identity_enterprises"))
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(p) for p in people] == [
        ("t-permit", "residence_permit", "810000199001011234", ""),
        ("t-rid", "resident_id", "11010519491231002X", "Wang Fang"),
    ]
    assert [tuple(f) for f in firms] == [("t-uscc", "91350100M000100Y43", "Acme Ltd")]
