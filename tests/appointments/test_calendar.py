"""The working-day calendar: the shipped year files, validation of an imported one, and
working-day arithmetic in the service time zone."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtax.appointments.calendar import WorkingCalendar, parse_year, shipped_years
from vtax.errors import DomainError


def year_file(year: int) -> dict[str, Any]:
    text = resources.files("vtax").joinpath(f"data/calendar-{year}.json").read_text("utf-8")
    return json.loads(text)


CAL = WorkingCalendar(shipped_years())


def test_the_current_and_the_next_year_are_shipped() -> None:
    years = shipped_years()
    assert years[2026].status == "official"
    assert years[2027].status == "provisional"
    assert CAL.provisional(date(2027, 3, 1)) and not CAL.provisional(date(2026, 3, 1))


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-01-01", False),  # New Year's Day, a Thursday
        ("2026-01-02", False),  # the bridging Friday
        ("2026-01-04", True),  # the Sunday worked for it (调休)
        ("2026-02-14", True),  # Saturday worked before the Spring Festival
        ("2026-02-15", False),
        ("2026-02-23", False),  # Monday, still the Spring Festival
        ("2026-02-24", True),
        ("2026-02-28", True),  # Saturday worked after it
        ("2026-04-06", False),  # Qingming Monday
        ("2026-05-05", False),
        ("2026-05-09", True),
        ("2026-06-19", False),
        ("2026-09-20", True),  # Sunday worked for National Day
        ("2026-09-25", False),
        ("2026-10-07", False),
        ("2026-10-10", True),
        ("2026-12-05", False),  # an ordinary Saturday
        ("2026-12-07", True),  # an ordinary Monday
        ("2027-02-08", False),  # provisional: Spring Festival day 3
    ],
)
def test_days_of_the_state_council_notice(day: str, working: bool) -> None:
    assert CAL.is_working_day(date.fromisoformat(day)) is working


def test_2026_has_the_published_number_of_days_off_and_adjusted_working_days() -> None:
    y = shipped_years()[2026]
    assert len(y.off) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert sorted(y.working) == [
        date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
        date(2026, 9, 20), date(2026, 10, 10),
    ]  # fmt: skip
    assert y.off[date(2026, 2, 17)].name.of("zh-HK") == "春節"


def test_working_day_arithmetic() -> None:
    # Thursday 2026-12-31 -> next working day skips New Year 2027 (Fri) and the weekend
    assert CAL.next_working_day(date(2026, 12, 31)) == date(2027, 1, 4)
    # from the Friday before the Spring Festival: Saturday 14 Feb is worked
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 14)
    assert CAL.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
    assert CAL.add_working_days(date(2026, 2, 15), 0) == date(2026, 2, 24)
    assert CAL.working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 1, 5), -1)


def test_the_day_is_the_service_time_zones() -> None:
    late_utc = datetime(2026, 12, 3, 17, 30, tzinfo=UTC)  # 01:30 on 4 Dec in Shanghai
    assert CAL.today(late_utc) == date(2026, 12, 4)
    assert WorkingCalendar(CAL.years, "UTC").today(late_utc) == date(2026, 12, 3)
    with pytest.raises(ValueError):
        CAL.today(datetime(2026, 12, 3, 12))


def test_bookable_days_from_the_next_working_day_to_the_horizon() -> None:
    # Thursday 24 Sep 2026, 10:00 in Shanghai: Mid-Autumn on 25-27, then 28-30 Sep, National
    # Day from 1 Oct; 10 Oct (Saturday) is worked
    now = datetime(2026, 9, 24, 2, 0, tzinfo=UTC)
    assert CAL.bookable_days(now, 1, 5) == [
        date(2026, 9, 28), date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 8),
        date(2026, 10, 9),
    ]  # fmt: skip
    assert CAL.bookable_days(now, 0, 0) == [date(2026, 9, 24)]
    assert CAL.bookable_days(now, 3, 2) == []


def test_a_year_without_a_file_is_not_covered() -> None:
    assert not CAL.covered(date(2028, 3, 1))
    assert CAL.is_working_day(date(2028, 3, 1))  # Wednesday: weekdays only
    now = datetime(2027, 12, 28, 2, tzinfo=UTC)
    days = CAL.bookable_days(now, 1, 5)
    assert days and all(d.year == 2027 for d in days)


def test_an_import_replaces_the_year() -> None:
    raw = year_file(2027)
    raw["status"] = "official"
    raw["holidays"][0]["working"] = ["2027-01-09"]
    cal = CAL.with_year(parse_year(json.dumps(raw)))
    assert cal.is_working_day(date(2027, 1, 9)) and not CAL.is_working_day(date(2027, 1, 9))
    assert not cal.provisional(date(2027, 1, 9))


def broken(change: Any) -> str:
    raw = copy.deepcopy(year_file(2026))
    change(raw)
    with pytest.raises(DomainError) as err:
        parse_year(json.dumps(raw).encode())
    assert err.value.code == "invalid_calendar"
    return err.value.message


def test_bad_files_say_what_is_wrong() -> None:
    parse_year(json.dumps(year_file(2026)))
    with pytest.raises(DomainError, match="not JSON"):
        parse_year(b"{nope")
    with pytest.raises(DomainError, match="JSON object"):
        parse_year(b"[]")
    with pytest.raises(DomainError, match="at most"):
        parse_year(b" " * 70_000)
    assert "not a weekend day" in broken(lambda r: r["holidays"][0].update(working=["2026-01-05"]))
    assert "both a day off and a working day" in broken(
        lambda r: r["holidays"][1].update(working=["2026-02-15"])
    )
    assert "is not in 2026" in broken(
        lambda r: r["holidays"][0].update(off=["2025-12-31", "2026-01-01"])
    )
    assert "before the first" in broken(
        lambda r: r["holidays"][0].update(off=["2026-01-03", "2026-01-01"])
    )
    assert "belongs to both" in broken(
        lambda r: r["holidays"][2].update(off=["2026-02-20", "2026-02-26"])
    )
    assert "listed twice" in broken(lambda r: r["holidays"][1].update(code="new_year"))
    assert "more than 14" in broken(
        lambda r: r["holidays"][6].update(off=["2026-10-01", "2026-10-31"])
    )
    assert "holidays.0.name.pt" in broken(lambda r: r["holidays"][0]["name"].pop("pt"))
    assert "extra" in broken(lambda r: r.update(surprise=1)).lower()
    assert "status" in broken(lambda r: r.update(status="rumour"))


@given(st.dates(date(2026, 1, 1), date(2027, 12, 20)), st.integers(0, 30))
def test_adding_working_days_lands_on_a_working_day_that_far_away(start: date, n: int) -> None:
    end = CAL.add_working_days(start, n)
    assert CAL.is_working_day(end)
    if n > 0:
        assert CAL.working_days_between(start, end) == n
        assert CAL.working_days_between(start, end - timedelta(days=1)) == n - 1
