"""A booking node for the two-process test: books one slot for each taxpayer given, all at
once, from a start time shared with the other process; prints the outcomes as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from tests.appointments.conftest import CAL, NOW, PLAN, RULES, SH, SLOT_RULES
from vtax.appointments.bookings import BookingRequest, Bookings
from vtax.appointments.slots import find_slot
from vtax.db import make_engine, session_factory
from vtax.errors import DomainError


async def main(url: str, slot_id: str, start_at: float, taxpayers: list[str]) -> None:
    engine = make_engine(url)
    try:
        bookings = Bookings(session_factory(engine), SH, RULES)
        slot = find_slot(CAL, PLAN, SLOT_RULES, NOW, slot_id, lead_days=1, horizon_days=5)
        assert slot is not None
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def one(tp: str) -> str:
            try:
                await bookings.book(slot, BookingRequest(tp, [], "q"), NOW)
                return "ok"
            except DomainError as exc:
                return exc.code

        results = await asyncio.gather(*(one(tp) for tp in taxpayers))
    finally:
        await engine.dispose()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(",")))
