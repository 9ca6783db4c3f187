"""Migration 0017 on both engines: a material attached before it reads pending, revision 1;
the downgrade drops exactly the review columns and the upgrade runs again."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tests.review.test_migration import downgrade, engine_at
from vtax.db import migrate

T = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
REVIEW = {
    "review", "review_reason", "review_note", "reviewed_by", "reviewed_at", "revision",
    "replaced_at",
}  # fmt: skip


async def columns(url: str) -> set[str]:
    async with engine_at(url) as engine, engine.connect() as conn:
        return set(
            await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns("booking_materials")}
            )
        )


async def test_0017_materials_before_it_are_pending_and_it_goes_back(empty_database_url):
    url = empty_database_url
    await migrate(url, "0016")
    assert not REVIEW & await columns(url)
    async with engine_at(url) as engine, engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO taxpayers (id, id_type, id_number, name, created_at)"
                " VALUES ('tp', 'uscc', 'n', 'x', :t)"
            ),
            {"t": T},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO bookings (id, taxpayer_id, slot_id, category, language, channel,"
                " starts_at, ends_at, local_day, state, version, items, question, locale,"
                " created_at, updated_at) VALUES ('b', 'tp', 's', 'invoices', 'zh-CN', 'web',"
                " :t, :t, '2026-12-04', 'requested', 1, '[]', '?', 'zh-CN', :t, :t)"
            ),
            {"t": T},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO booking_materials (id, booking_id, filename, media_type, size_bytes,"
                " sha256, storage_key, created_at) VALUES ('m', 'b', 'a.pdf', 'application/pdf',"
                " 3, :sha, 'k', :t)"
            ),
            {"sha": "0" * 64, "t": T},
        )
    await migrate(url)
    assert REVIEW <= await columns(url)
    async with engine_at(url) as engine, engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT review, revision, review_reason FROM booking_materials")
            )
        ).one()
    assert tuple(row) == ("pending", 1, None)
    await downgrade(url, "0016")
    after = await columns(url)
    assert not REVIEW & after and {"id", "sha256", "storage_key"} <= after
    await migrate(url)
    assert REVIEW <= await columns(url)
