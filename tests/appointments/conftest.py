"""Fixtures of the appointment tests: a migrated database on each engine (SQLite file, a new
PostgreSQL database) with taxpayers, and the slot/plan/calendar the stories book."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vtax.appointments.bookings import BookingRules, Bookings
from vtax.appointments.calendar import WorkingCalendar, shipped_years
from vtax.appointments.slots import SlotRules, StaffingPeriod, StaffingPlan
from vtax.appointments.timing import TimingRules
from vtax.db import make_engine, migrate, session_factory
from vtax.models import Taxpayer
from vtax.review.deliveries import DocumentStore

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar(shipped_years())
# Thursday 3 Dec 2026, 10:00 in Shanghai
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
PLAN = StaffingPlan(
    periods=[
        StaffingPeriod(
            days="mon-fri", start="09:00", end="12:00", category="invoices",
            language="zh-CN", agents=2,
        ),
        StaffingPeriod(
            days="mon-fri", start="14:00", end="17:00", category="invoices",
            language="zh-CN", agents=1,
        ),
    ]
)  # fmt: skip
SLOT_RULES = SlotRules(slot_minutes=30, handle_minutes=15, live_share=0.5)
RULES = BookingRules(
    cancel_cutoff_s=7200,
    no_show_limit=2,
    materials_max=2,
    material_max_bytes=4096,
    reminders_min=(1440, 15),
    timing=TimingRules(early_s=600, late_s=600, grace_s=900),
)
PDF = b"%PDF-1.7\n" + b"x" * 100


@dataclass
class Db:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tmp: Path

    async def taxpayers(self, n: int) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in range(n)]
        async with self.sessions() as db, db.begin():
            for i, tid in enumerate(ids):
                db.add(
                    Taxpayer(
                        id=tid, id_type="uscc", id_number=f"T{uuid.uuid4().hex[:16]}", name=f"t{i}"
                    )
                )
        return ids

    def bookings(self, engine: AsyncEngine | None = None, **rules: Any) -> Bookings:
        sessions = session_factory(engine) if engine is not None else self.sessions
        r = dataclasses.replace(RULES, **rules)
        return Bookings(sessions, SH, r, DocumentStore(self.tmp / "documents"))


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Db]:
    await migrate(database_url)
    engine = make_engine(database_url)
    try:
        yield Db(database_url, engine, session_factory(engine), tmp_path)
    finally:
        await engine.dispose()
