"""The appointments' figures over days of the service time zone: bookings per day, the
pre-review outcomes (how many were redirected online), the no-show rate, on-time starts
(served within N minutes of T) and the callbacks (asked, told, connected, abandoned).
Counted in SQL with the same statements on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.appointments.tables import Booking, CallbackRow

PASSED_REVIEW = ("approved", "reminded", "checked_in", "queued", "served", "no_show")
CAME = ("checked_in", "queued", "served")


@dataclass
class DayFigures:
    day: str
    booked: int = 0  # bookings of the day (a moved booking counts once, on its new day)
    states: dict[str, int] = field(default_factory=dict)
    approved: int = 0
    redirected_online: int = 0
    rejected: int = 0
    no_show: int = 0
    came: int = 0
    served: int = 0
    served_on_time: int = 0

    @property
    def no_show_rate(self) -> float | None:
        due = self.no_show + self.came
        return self.no_show / due if due else None

    @property
    def on_time_rate(self) -> float | None:
        return self.served_on_time / self.served if self.served else None


@dataclass
class CallbackFigures:
    asked: int = 0
    told: int = 0  # notified at least once
    connected: int = 0
    abandoned: int = 0


@dataclass
class Figures:
    days: list[DayFigures]
    callbacks: CallbackFigures


async def figures(
    sessions: async_sessionmaker[AsyncSession],
    tz: ZoneInfo,
    first: date,
    last: date,
    on_time_within_s: float = 300.0,
) -> Figures:
    b = Booking
    async with sessions() as db:
        rows = (
            await db.execute(
                select(b.local_day, b.state, func.count())
                .where(b.local_day >= first.isoformat(), b.local_day <= last.isoformat())
                .group_by(b.local_day, b.state)
            )
        ).all()
        served = (
            await db.execute(
                select(b.local_day, b.starts_at, b.served_at).where(
                    b.local_day >= first.isoformat(),
                    b.local_day <= last.isoformat(),
                    b.state == "served",
                )
            )
        ).all()
        start = datetime.combine(first, time(), tz)
        end = datetime.combine(last + timedelta(days=1), time(), tz)
        c = CallbackRow
        cb_rows = (
            await db.execute(
                select(c.state, c.attempts).where(c.requested_at >= start, c.requested_at < end)
            )
        ).all()
    days: dict[str, DayFigures] = {}
    for day, state, n in rows:
        f = days.setdefault(day, DayFigures(day))
        f.states[state] = int(n)
        if state != "rescheduled":
            f.booked += int(n)
        if state in PASSED_REVIEW:
            f.approved += int(n)
        if state == "redirected_online":
            f.redirected_online += int(n)
        if state == "rejected":
            f.rejected += int(n)
        if state == "no_show":
            f.no_show += int(n)
        if state in CAME:
            f.came += int(n)
    for day, starts_at, served_at in served:
        f = days[day]
        f.served += 1
        if served_at is not None and served_at <= starts_at + timedelta(seconds=on_time_within_s):
            f.served_on_time += 1
    cbs = CallbackFigures()
    for state, attempts in cb_rows:
        cbs.asked += 1
        cbs.told += attempts > 0
        cbs.connected += state == "connected"
        cbs.abandoned += state == "abandoned"
    return Figures(sorted(days.values(), key=lambda d: d.day), cbs)
