"""Two node processes book the same slot at the same moment: the seats are never oversold
(SQLite file and PostgreSQL, each process with its own engine and pool)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy import select

from tests.appointments.conftest import Db
from vtax.appointments.tables import Booking, SlotSeats

ROOT = Path(__file__).resolve().parents[2]


async def test_two_processes_never_oversell(db: Db) -> None:
    tps = await db.taxpayers(30)
    slot_id = "invoices~zh-CN~20261207T1000"  # 2 seats
    start_at = time.time() + 2.0
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.appointments.booker",
            db.url,
            slot_id,
            str(start_at),
            ",".join(tps[i::2]),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(2)
    ]
    outs = [await p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    results = [r for out, _ in outs for r in json.loads(out)]
    assert len(results) == 30
    assert results.count("ok") == 2 and results.count("slot_full") == 28
    async with db.sessions() as session:
        seats = await session.get(SlotSeats, slot_id)
        assert seats is not None and seats.booked == 2
        holders = (await session.execute(select(Booking).where(Booking.slot_id == slot_id))).all()
        assert len(holders) == 2
