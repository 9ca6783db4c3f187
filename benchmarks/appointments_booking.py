"""Booking latency under contention, SQLite file vs PostgreSQL, measured side by side.

Two scenarios per engine, on a fresh migrated database each:
- spread: 200 taxpayers book at once over the 12 slots of a day, 20 seats each (all succeed);
- hot: 200 taxpayers book at once the same 2-seat slot (2 succeed, 198 get slot_full).
Prints per-request latency (median, p95) and wall time, over `--runs` repetitions (medians).

Run: .venv/bin/python benchmarks/appointments_booking.py [--runs 3] [--engines sqlite,postgresql]
(PostgreSQL at 127.0.0.1:5432; the script creates and drops its own databases.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from vtax.appointments.bookings import BookingRequest, BookingRules, Bookings
from vtax.appointments.calendar import WorkingCalendar, shipped_years
from vtax.appointments.slots import SlotRules, StaffingPeriod, StaffingPlan, slots_of_day
from vtax.db import make_engine, migrate, session_factory
from vtax.errors import DomainError
from vtax.models import Taxpayer

PG = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")


def plan(agents: int) -> StaffingPlan:
    return StaffingPlan(
        periods=[
            StaffingPeriod(
                days="mon-fri", start="09:00", end="17:00", category="invoices",
                language="zh-CN", agents=agents,
            )
        ]
    )  # fmt: skip


async def scenario(url: str, hot: bool, n: int = 200) -> tuple[float, float, float, int]:
    await migrate(url)
    engine = make_engine(url, pool_size=10, max_overflow=10)
    try:
        sessions = session_factory(engine)
        ids = [str(uuid.uuid4()) for _ in range(n)]
        async with sessions() as db, db.begin():
            for i, tid in enumerate(ids):
                db.add(Taxpayer(id=tid, id_type="uscc", id_number=f"B{i:017d}", name=""))
        cal = WorkingCalendar(shipped_years())
        rules = SlotRules(30, 15, 0.5)
        day = date(2026, 12, 7)
        slots = slots_of_day(cal, plan(2 if hot else 20), rules, day, "invoices", "zh-CN")
        bookings = Bookings(sessions, SH, BookingRules())
        latencies: list[float] = []

        async def one(i: int) -> bool:
            s = slots[0] if hot else slots[i % len(slots)]
            t0 = time.perf_counter()
            try:
                await bookings.book(s, BookingRequest(ids[i], [], "q"), NOW)
                ok = True
            except DomainError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            return ok

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    finally:
        await engine.dispose()
    latencies.sort()
    return (
        statistics.median(latencies) * 1000,
        latencies[int(0.95 * len(latencies)) - 1] * 1000,
        wall * 1000,
        sum(results),
    )


async def fresh(engine: str, tmp: Path) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / (uuid.uuid4().hex + '.db')}", None
    name = f"vtax_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def drop(name: str | None) -> None:
    if name is None:
        return
    conn = await asyncpg.connect(PG)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engines", default="sqlite,postgresql")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for hot in (False, True):
            for engine in args.engines.split(","):
                runs = []
                for _ in range(args.runs):  # engines alternate per scenario: side by side
                    url, name = await fresh(engine, Path(d))
                    try:
                        runs.append(await scenario(url, hot))
                    finally:
                        await drop(name)
                med = [statistics.median(r[k] for r in runs) for k in range(3)]
                print(
                    f"{'hot' if hot else 'spread':6} {engine:10} median {med[0]:7.1f} ms  "
                    f"p95 {med[1]:7.1f} ms  wall {med[2]:7.1f} ms  booked {runs[0][3]}"
                )


if __name__ == "__main__":
    asyncio.run(main())
