"""Slot generation over the calendar, the opening hours and the staffing plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vtax.appointments.calendar import WorkingCalendar, shipped_years
from vtax.appointments.slots import (
    SlotRules,
    StaffingPeriod,
    StaffingPlan,
    bookable_slots,
    find_slot,
    parse_slot_id,
    slots_of_day,
)
from vtax.queue.queues import OpeningHours

CAL = WorkingCalendar(shipped_years())
SH = ZoneInfo("Asia/Shanghai")
RULES = SlotRules(slot_minutes=30, handle_minutes=15, live_share=0.5)


def period(**kw: object) -> StaffingPeriod:
    values: dict[str, object] = {
        "days": "mon-fri",
        "start": "09:00",
        "end": "12:00",
        "category": "invoices",
        "language": "zh-CN",
        "agents": 2,
    }
    values.update(kw)
    return StaffingPeriod.model_validate(values)


PLAN = StaffingPlan(periods=[period(), period(start="14:00", end="17:30", agents=1)])


def test_slots_of_a_working_day_follow_the_plan_and_the_hours() -> None:
    slots = slots_of_day(CAL, PLAN, RULES, date(2026, 12, 7), "invoices", "zh-CN")
    assert [s.starts_at.astimezone(SH).strftime("%H:%M") for s in slots] == [
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
        "14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00",
    ]  # fmt: skip
    # 2 agents x (30 / 15) x (1 - 0.5) = 2; 1 agent -> 1
    assert [s.capacity for s in slots] == [2] * 6 + [1] * 7
    assert slots[0].starts_at == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert slots[0].id == "invoices~zh-CN~20261207T0900"
    assert parse_slot_id(slots[0].id) == ("invoices", "zh-CN", datetime(2026, 12, 7, 9, 0))


def test_no_slots_on_holidays_and_weekends_but_on_adjusted_working_days() -> None:
    assert slots_of_day(CAL, PLAN, RULES, date(2026, 10, 2), "invoices", "zh-CN") == []
    assert slots_of_day(CAL, PLAN, RULES, date(2026, 12, 5), "invoices", "zh-CN") == []
    # Saturday 10 Oct 2026 is worked (调休): it follows Monday's hours and staffing
    assert len(slots_of_day(CAL, PLAN, RULES, date(2026, 10, 10), "invoices", "zh-CN")) == 13


def test_other_skills_and_languages_have_their_own_plan() -> None:
    assert slots_of_day(CAL, PLAN, RULES, date(2026, 12, 7), "invoices", "yue") == []
    assert slots_of_day(CAL, PLAN, RULES, date(2026, 12, 7), "registration", "zh-CN") == []


def test_a_dated_entry_replaces_the_week_and_periods_add_up() -> None:
    plan = StaffingPlan(
        periods=[
            *PLAN.periods,
            period(days=None, day="2026-12-08", start="10:00", end="11:00", agents=3),
            period(days=None, day="2026-12-08", start="10:00", end="10:30", agents=1),
        ]
    )
    slots = slots_of_day(CAL, plan, RULES, date(2026, 12, 8), "invoices", "zh-CN")
    assert [(s.starts_at.astimezone(SH).strftime("%H:%M"), s.capacity) for s in slots] == [
        ("10:00", 4),
        ("10:30", 3),
    ]


def test_opening_hours_of_the_queue_bound_the_slots() -> None:
    hours = OpeningHours(weekly={"mon-fri": ["09:30-11:00"]}, closed_dates=[date(2026, 12, 9)])
    slots = slots_of_day(CAL, PLAN, RULES, date(2026, 12, 7), "invoices", "zh-CN", hours)
    assert [s.starts_at.astimezone(SH).strftime("%H:%M") for s in slots] == [
        "09:30",
        "10:00",
        "10:30",
    ]
    assert slots_of_day(CAL, PLAN, RULES, date(2026, 12, 9), "invoices", "zh-CN", hours) == []


def test_the_live_share_and_the_handle_time() -> None:
    assert SlotRules(30, 15, 0.0).capacity(3) == 6
    assert SlotRules(30, 20, 0.5).capacity(3) == 2  # 3 x 1.5 x 0.5 = 2.25
    assert SlotRules(30, 15, 1.0).capacity(10) == 0
    assert SlotRules(30, 15, 0.5).capacity(0) == 0


def test_bookable_slots_respect_lead_and_horizon() -> None:
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # Thursday 10:00
    slots = bookable_slots(
        CAL, PLAN, RULES, now, category="invoices", language="zh-CN", lead_days=1, horizon_days=5
    )
    days = sorted({s.local_day for s in slots})
    assert days == [date(2026, 12, d) for d in (4, 7, 8, 9, 10)]
    same_day = bookable_slots(
        CAL, PLAN, RULES, now, category="invoices", language="zh-CN", lead_days=0, horizon_days=0
    )
    assert same_day and all(s.starts_at > now for s in same_day)
    assert same_day[0].starts_at.astimezone(SH).time() == time(10, 30)


def test_find_slot_refuses_what_is_not_bookable() -> None:
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    args: dict[str, Any] = {"lead_days": 1, "horizon_days": 5}
    assert find_slot(CAL, PLAN, RULES, now, "invoices~zh-CN~20261207T0900", **args) is not None
    for bad in [
        "invoices~zh-CN~20261203T1400",  # today: before the lead time
        "invoices~zh-CN~20261214T0900",  # beyond the horizon
        "invoices~zh-CN~20261207T0915",  # not a slot start
        "invoices~zh-CN~20261205T0900",  # Saturday
        "invoices~zh-CN~20261207T1230",  # lunch
        "invoices~zh-CN~20261399T0900",  # no such date
        "../../etc",
    ]:
        assert find_slot(CAL, PLAN, RULES, now, bad, **args) is None, bad


def test_staffing_periods_are_validated() -> None:
    cases: list[dict[str, Any]] = [
        {"days": None},
        {"day": "2026-12-07"},  # both day and days
        {"start": "12:00", "end": "09:00"},
        {"start": "9:00"},
        {"days": "weekdays"},
        {"agents": -1},
        {"surprise": 1},
    ]
    for bad in cases:
        with pytest.raises(ValidationError):
            period(**bad)


@given(
    st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    st.sampled_from([15, 20, 30, 60]),
    st.integers(0, 6),
    st.floats(0, 1),
)
def test_slots_lie_inside_working_hours_of_working_days(
    day: date, length: int, agents: int, share: float
) -> None:
    rules = SlotRules(slot_minutes=length, handle_minutes=15, live_share=share)
    plan = StaffingPlan(periods=[period(start="08:00", end="18:00", agents=agents)])
    slots = slots_of_day(CAL, plan, rules, day, "invoices", "zh-CN")
    if not CAL.is_working_day(day) or agents == 0:
        assert slots == []
    for s in slots:
        local = s.starts_at.astimezone(SH)
        assert local.date() == day == s.local_day
        assert s.ends_at - s.starts_at == timedelta(minutes=length)
        end = s.ends_at.astimezone(SH).time()
        in_morning = time(9) <= local.time() and end <= time(12)
        in_afternoon = time(14) <= local.time() and end <= time(17, 30)
        assert in_morning or in_afternoon
        assert 0 < s.capacity <= agents * length / 15
    assert len({s.id for s in slots}) == len(slots)
