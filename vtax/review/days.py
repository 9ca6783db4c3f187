"""The service time zone's days: where the KPIs, the rollup, the agent-state daily totals, the
call-quality figures and the session filters cut a day (docs/review.md, "Days").

A day is the zone's calendar day: from the instant its local midnight begins to the instant
the next one does, whatever the clocks do in between (a spring-forward day has 23 hours, a
fall-back day 25). Times are stored in UTC; a day is only ever computed from a UTC instant
with the zone's rules (Python's zoneinfo on both engines, never the database's own zone
tables, so SQLite and PostgreSQL agree to the millisecond)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"  # vtax.config.Settings.service_timezone's default


def zone_of(zone: str | ZoneInfo) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def day_of(at: datetime, zone: ZoneInfo) -> str:
    """The zone's day (YYYY-MM-DD) an aware instant falls in."""
    return at.astimezone(zone).date().isoformat()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant the zone's `day` begins. A local midnight that a clock change skips
    resolves (PEP 495, fold 0) to the instant of the change, which is when that day begins."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def window(day_from: date, day_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the zone's days day_from..day_to (inclusive)."""
    return day_start(day_from, zone), day_start(day_to + timedelta(days=1), zone)


def today(zone: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(zone).date()


def split_by_day(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[tuple[str, int]]:
    """(the zone's day, milliseconds) pieces of [start, end), cut at the zone's midnights."""
    while start < end:
        local = start.astimezone(zone).date()
        piece_end = min(end, day_start(local + timedelta(days=1), zone))
        yield local.isoformat(), round((piece_end - start).total_seconds() * 1000)
        start = piece_end
