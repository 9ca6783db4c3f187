"""Appointment slots: generated (never stored until booked) from the working-day calendar,
the opening hours and the staffing plan supervisors keep (how many agents with a skill and a
language work in a period), per business category and service language (a video desk).

Capacity of a slot = floor(agents on duty for the whole slot x slot length / handle time x
(1 - the share kept for the live queue)). A slot with no capacity is not offered. Pure: the
store of bookings (vtax/appointments/bookings.py) counts what is taken."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vtax.appointments.calendar import WorkingCalendar
from vtax.queue.queues import DAYS, OpeningHours, _day_set, _minutes

Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
DEFAULT_HOURS = ((9 * 60, 12 * 60), (14 * 60, 17 * 60 + 30))


def _min(text: str) -> int:
    return 24 * 60 if text == "24:00" else _minutes(text)


class StaffingPeriod(BaseModel):
    """`agents` agents with the skill `category` who speak `language` work from `start` to
    `end` on `day`, or every week on `days` (`mon-fri`, `sat,sun`); an entry for a day
    replaces the weekly entries of its category and language on that day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date | None = None
    days: Annotated[str, StringConstraints(min_length=3, max_length=40)] | None = None
    start: Clock
    end: Clock
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    language: Annotated[str, StringConstraints(min_length=1, max_length=8)]
    agents: Annotated[int, Field(ge=0, le=1000)]

    @field_validator("days")
    @classmethod
    def _days(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                _day_set(v)
            except ValueError:
                raise ValueError(f"{v!r}: use mon..sun, ranges like mon-fri, or lists") from None
        return v

    @model_validator(mode="after")
    def _when(self) -> StaffingPeriod:
        if (self.day is None) == (self.days is None):
            raise ValueError("give exactly one of `day` and `days`")
        if _min(self.start) >= _min(self.end):
            raise ValueError(f"{self.start}-{self.end}: the start is not before the end")
        return self

    @property
    def span(self) -> tuple[int, int]:
        return _min(self.start), _min(self.end)


class StaffingPlan(BaseModel):
    """The supervisors' plan; replaced as a whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    periods: Annotated[list[StaffingPeriod], Field(max_length=5000)] = []

    def periods_on(self, day: date, category: str, language: str) -> list[StaffingPeriod]:
        mine = [p for p in self.periods if p.category == category and p.language == language]
        dated = [p for p in mine if p.day == day]
        if dated:
            return dated
        weekday = effective_weekday(day)
        return [p for p in mine if p.days is not None and weekday in _day_set(p.days)]

    def agents(self, day: date, category: str, language: str, start: int, end: int) -> int:
        """Agents on duty for the whole of [start, end) (minutes after local midnight)."""
        return sum(
            p.agents
            for p in self.periods_on(day, category, language)
            if p.span[0] <= start and end <= p.span[1]
        )


def effective_weekday(day: date) -> int:
    """The weekday whose hours and staffing a day follows: its own, and Monday's for an
    adjusted working Saturday or Sunday (调休), which works as a normal weekday."""
    return day.weekday() if day.weekday() < 5 else 0


@dataclass(frozen=True, slots=True)
class SlotRules:
    slot_minutes: int = 30
    handle_minutes: int = 15
    live_share: float = 0.5  # of the planned agents' time, kept for the live queue

    def capacity(self, agents: int) -> int:
        if agents <= 0:
            return 0
        per_agent = self.slot_minutes / self.handle_minutes
        # a tiny epsilon: 2 agents x 2 x 0.5 is 2, not 1.9999999
        return math.floor(agents * per_agent * (1.0 - self.live_share) + 1e-9)


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    category: str
    language: str
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    capacity: int
    local_day: date  # the service time zone's day


_SLOT_ID = re.compile(r"^([a-z_]{1,64})~([A-Za-z-]{1,8})~(\d{8}T\d{4})$")


def slot_id(category: str, language: str, local_start: datetime) -> str:
    """`invoices~zh-CN~20261207T0930`: the slot's key, readable and stable across nodes."""
    return f"{category}~{language}~{local_start:%Y%m%dT%H%M}"


def parse_slot_id(text: str) -> tuple[str, str, datetime] | None:
    """(category, language, naive local start) of a slot id; None if it is not one."""
    m = _SLOT_ID.match(text)
    if m is None:
        return None
    try:
        start = datetime.strptime(m.group(3), "%Y%m%dT%H%M")
    except ValueError:
        return None
    return m.group(1), m.group(2), start


def open_spans(day: date, hours: OpeningHours | None) -> Sequence[tuple[int, int]]:
    """The day's opening spans (minutes after local midnight): the queue's opening hours of
    the weekday it follows, else the default hours of a working day."""
    if hours is None:
        return DEFAULT_HOURS
    if day in hours.closed_dates:
        return ()
    spans = hours.spans[effective_weekday(day)]
    return spans


def slots_of_day(
    calendar: WorkingCalendar,
    plan: StaffingPlan,
    rules: SlotRules,
    day: date,
    category: str,
    language: str,
    hours: OpeningHours | None = None,
) -> list[Slot]:
    """The day's slots with some capacity (none on a day that is not a working day)."""
    if not calendar.is_working_day(day):
        return []
    tz = calendar.tz
    out: list[Slot] = []
    length = rules.slot_minutes
    for begin, finish in open_spans(day, hours):
        start = begin
        while start + length <= finish:
            capacity = rules.capacity(plan.agents(day, category, language, start, start + length))
            if capacity > 0:
                local = datetime.combine(day, time()) + timedelta(minutes=start)
                aware = local.replace(tzinfo=tz)
                out.append(
                    Slot(
                        id=slot_id(category, language, local),
                        category=category,
                        language=language,
                        starts_at=aware.astimezone(UTC),
                        ends_at=(aware + timedelta(minutes=length)).astimezone(UTC),
                        capacity=capacity,
                        local_day=day,
                    )
                )
            start += length
    return out


def bookable_slots(
    calendar: WorkingCalendar,
    plan: StaffingPlan,
    rules: SlotRules,
    now: datetime,
    *,
    category: str,
    language: str,
    lead_days: int,
    horizon_days: int,
    hours: OpeningHours | None = None,
    days: Iterable[date] | None = None,
) -> list[Slot]:
    """The slots a taxpayer may book at `now`, in time order (from the bookable days, and
    never one that has started)."""
    wanted = set(days) if days is not None else None
    out: list[Slot] = []
    for day in calendar.bookable_days(now, lead_days, horizon_days):
        if wanted is not None and day not in wanted:
            continue
        out += [
            s
            for s in slots_of_day(calendar, plan, rules, day, category, language, hours)
            if s.starts_at > now
        ]
    return out


def find_slot(
    calendar: WorkingCalendar,
    plan: StaffingPlan,
    rules: SlotRules,
    now: datetime,
    text: str,
    *,
    lead_days: int,
    horizon_days: int,
    hours_of: dict[str, OpeningHours | None] | None = None,
) -> Slot | None:
    """The bookable slot with this id at `now`, or None (not a slot id, outside the horizon,
    started, not staffed)."""
    parsed = parse_slot_id(text)
    if parsed is None:
        return None
    category, language, local = parsed
    hours = (hours_of or {}).get(category)
    for s in bookable_slots(
        calendar,
        plan,
        rules,
        now,
        category=category,
        language=language,
        lead_days=lead_days,
        horizon_days=horizon_days,
        hours=hours,
        days=[local.date()],
    ):
        if s.id == text:
            return s
    return None


__all__ = [
    "DAYS",
    "Slot",
    "SlotRules",
    "StaffingPeriod",
    "StaffingPlan",
    "bookable_slots",
    "find_slot",
    "parse_slot_id",
    "slot_id",
    "slots_of_day",
]
