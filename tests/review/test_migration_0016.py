"""Migration 0016: sessions record where they came from (the assistant's conversation, the
appointment). Sessions made before it get their booking from the bookings that kept their
session; walk-ins stay null; the downgrade drops both columns and the upgrade runs again."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tests.conftest import RESIDENT_ID
from tests.review.test_migration import downgrade, engine_at
from vtax.accounts import Accounts
from vtax.appointments.tables import Booking
from vtax.db import migrate, session_factory
from vtax.review.records import SessionRecords

T = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


async def origins(url: str) -> dict[str, tuple[str | None, str | None]]:
    async with engine_at(url) as engine, engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT id, booking_id, consultation_id FROM service_sessions")
        )
        return {r[0]: (r[1], r[2]) for r in rows}


async def test_0016_fills_the_booking_of_earlier_sessions_and_goes_back(empty_database_url):
    url = empty_database_url
    await migrate(url)
    async with engine_at(url) as engine:
        sessions = session_factory(engine)
        taxpayer = await Accounts(sessions).taxpayer_for("resident_id", RESIDENT_ID)
        records = SessionRecords(sessions)
        for sid in ("walk-in", "booked", "handed-off"):
            await records.open(
                session_id=sid, ticket_id="t-" + sid, taxpayer_id=taxpayer, category="invoices",
                language="zh-CN", channel="web", question="?", joined_at=T,
                consultation_id="c-1" if sid == "handed-off" else None,
            )  # fmt: skip
        booking = Booking(
            id="b-1", taxpayer_id=taxpayer, slot_id="s", category="invoices", language="zh-CN",
            channel="web", starts_at=T, ends_at=T, local_day="2026-12-04", state="served",
            items=[], question="?", locale="zh-CN", created_at=T, updated_at=T,
            session_id="booked",
        )  # fmt: skip
        async with sessions() as db, db.begin():
            db.add(booking)
    # Written at the head, the booked session has no booking_id: the code before 0016 did
    # not set it (only the booking kept its session); the migration fills it.
    assert (await origins(url))["booked"] == (None, None)

    await downgrade(url, "0015")
    async with engine_at(url) as engine, engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in sa.inspect(c).get_columns("service_sessions")}
        )
    assert not {"booking_id", "consultation_id"} & columns

    await migrate(url)
    assert await origins(url) == {
        "walk-in": (None, None),
        "booked": ("b-1", None),
        "handed-off": (None, None),  # a consultation did not keep its session: not recoverable
    }
