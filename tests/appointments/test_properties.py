"""Property tests on the real databases: any mix of concurrent bookings, cancellations and
reschedules never oversells a slot, never gives a taxpayer two active bookings on one day,
and the seat counters always equal the bookings that hold a seat."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from tests.appointments.conftest import CAL, NOW, PLAN, RULES, SH, SLOT_RULES
from tests.conftest import PG_ADMIN_DSN
from vtax.appointments import states
from vtax.appointments.bookings import BookingRequest, Bookings
from vtax.appointments.slots import Slot, slots_of_day
from vtax.appointments.tables import Booking, SlotSeats
from vtax.db import make_engine, migrate, session_factory
from vtax.errors import DomainError
from vtax.models import Taxpayer
from vtax.review.audit import Actor

DAYS = (date(2026, 12, 7), date(2026, 12, 8))
SLOTS: list[Slot] = [
    s for d in DAYS for s in slots_of_day(CAL, PLAN, SLOT_RULES, d, "invoices", "zh-CN")
][::4]  # a few slots of 1 and 2 seats over two days
TAXPAYERS = [f"00000000-0000-0000-0000-{i:012d}" for i in range(6)]
EXPECTED = {"slot_full", "one_booking_a_day", "invalid_state", "cancellation_closed"}

op = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 5), st.integers(0, len(SLOTS) - 1)),
    st.tuples(st.just("cancel"), st.integers(0, 5), st.integers(0, 20)),
    st.tuples(st.just("move"), st.integers(0, 5), st.integers(0, len(SLOTS) - 1)),
)


async def run(url: str, batches: list[list[tuple[str, int, int]]]) -> None:
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        async with sessions() as db, db.begin():
            for table in (
                "appointment_events",
                "appointment_outbox",
                "bookings",
                "appointment_slots",
            ):
                await db.execute(text(f"DELETE FROM {table}"))
        bookings = Bookings(sessions, SH, RULES)

        async def mine(tp: str) -> list[Booking]:
            return [b for b in await bookings.of_taxpayer(tp) if b.state in states.ACTIVE]

        async def apply(kind: str, who: int, n: int) -> None:
            tp = TAXPAYERS[who]
            try:
                if kind == "book":
                    await bookings.book(SLOTS[n], BookingRequest(tp, [], "q"), NOW)
                    return
                active = await mine(tp)
                if not active:
                    return
                b = active[n % len(active)]
                if kind == "cancel":
                    await bookings.cancel(b.id, Actor("taxpayer", tp), NOW, taxpayer_id=tp)
                else:
                    await bookings.reschedule(b.id, tp, SLOTS[n], NOW)
            except DomainError as exc:
                assert exc.code in EXPECTED, exc.code

        for batch in batches:
            # Every step of a batch finishes (and gives its connection back) before a failure
            # is raised: the engine is disposed with no connection still out.
            results = await asyncio.gather(*(apply(*o) for o in batch), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]

        async with sessions() as db:
            rows = list((await db.execute(select(Booking))).scalars())
            seats = {s.id: s for s in (await db.execute(select(SlotSeats))).scalars()}
        holding = Counter(b.slot_id for b in rows if b.state in states.ACTIVE)
        capacity = {s.id: s.capacity for s in SLOTS}
        for slot_id, s in seats.items():
            assert s.booked == holding.get(slot_id, 0), slot_id
            assert s.booked <= capacity[slot_id]
        days = Counter((b.taxpayer_id, b.local_day) for b in rows if b.state in states.ACTIVE)
        assert all(n == 1 for n in days.values())
        assert all((b.active_day is not None) == (b.state in states.ACTIVE) for b in rows)
    finally:
        await engine.dispose()


async def prepare(url: str) -> None:
    await migrate(url)
    engine = make_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            for i, tid in enumerate(TAXPAYERS):
                db.add(Taxpayer(id=tid, id_type="uscc", id_number=f"P{i:017d}", name=""))
    finally:
        await engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def prepared_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("prop") / "vtax.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(prepare(url))
        yield url
        shutil.rmtree(Path(path).parent, ignore_errors=True)
        return
    name = f"vtax_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        asyncio.run(prepare(url))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(op, min_size=1, max_size=8), min_size=1, max_size=5))
def test_no_oversell_and_one_a_day_under_any_concurrent_mix(
    prepared_url: str, batches: list[list[tuple[str, int, int]]]
) -> None:
    asyncio.run(run(prepared_url, batches))
