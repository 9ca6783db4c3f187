"""The working-day calendar: China's public holidays and the adjusted working weekends (调休),
one data file per year (vtax/data/calendar-YYYY.json, shipped for the current and the next
year; a supervisor imports the official file when the State Council publishes it).

A day is a working day when it is a Monday to Friday that no holiday takes, or a Saturday or
Sunday that a holiday's adjustment makes a working day. A year with no file falls back to
Monday to Friday and is reported as not `covered` (slots are only offered on covered days).
Everything here is pure except `shipped_years`, which reads the package's data files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from vtax.errors import DomainError

LOCALES = ("zh-CN", "zh-HK", "en", "pt")
MAX_FILE_BYTES = 64 * 1024
MAX_HOLIDAY_DAYS = 14  # the longest break the State Council has ever set is 9 days


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


Name = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class LocalName(_Strict):
    """A holiday's name in each page language."""

    zh_CN: Name = Field(alias="zh-CN")
    zh_HK: Name = Field(alias="zh-HK")
    en: Name
    pt: Name

    def of(self, locale: str) -> str:
        return {"zh-CN": self.zh_CN, "zh-HK": self.zh_HK, "en": self.en, "pt": self.pt}.get(
            locale, self.en
        )


class Holiday(_Strict):
    """One holiday: the days off (`off`: first and last, inclusive) and the weekend days that
    become working days to make up for it (`working`)."""

    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    name: LocalName
    off: tuple[date, date]
    working: list[date] = []

    @model_validator(mode="after")
    def _shape(self) -> Holiday:
        first, last = self.off
        if last < first:
            raise ValueError(f"{self.code}: the last day off {last} is before the first {first}")
        if (last - first).days + 1 > MAX_HOLIDAY_DAYS:
            raise ValueError(f"{self.code}: more than {MAX_HOLIDAY_DAYS} days off in a row")
        for day in self.working:
            if day.weekday() < 5:
                raise ValueError(
                    f"{self.code}: adjusted working day {day} is a {day:%A}, not a weekend day"
                )
            if first <= day <= last:
                raise ValueError(f"{self.code}: {day} is both a day off and a working day")
        if len(set(self.working)) != len(self.working):
            raise ValueError(f"{self.code}: a working day is listed twice")
        return self

    def days_off(self) -> Iterator[date]:
        day = self.off[0]
        while day <= self.off[1]:
            yield day
            day += timedelta(days=1)


class CalendarYear(_Strict):
    """One year's file (vtax/data/calendar-YYYY.json)."""

    year: Annotated[int, Field(ge=2000, le=2100)]
    status: Literal["official", "provisional"]
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    note: Annotated[str, StringConstraints(max_length=2000)] = ""
    holidays: Annotated[list[Holiday], Field(max_length=20)]

    @model_validator(mode="after")
    def _consistent(self) -> CalendarYear:
        codes = [h.code for h in self.holidays]
        if len(set(codes)) != len(codes):
            raise ValueError("a holiday code is listed twice")
        seen: dict[date, str] = {}
        for h in self.holidays:
            for day in [*h.days_off(), *h.working]:
                if day.year != self.year:
                    raise ValueError(f"{h.code}: {day} is not in {self.year}")
                if day in seen:
                    raise ValueError(f"{day} belongs to both {seen[day]} and {h.code}")
                seen[day] = h.code
        return self

    @cached_property
    def off(self) -> dict[date, Holiday]:
        return {day: h for h in self.holidays for day in h.days_off()}

    @cached_property
    def working(self) -> dict[date, Holiday]:
        return {day: h for h in self.holidays for day in h.working}


def parse_year(raw: bytes | str | Mapping[str, Any]) -> CalendarYear:
    """A year file from its bytes (or parsed JSON), or `invalid_calendar` saying what is wrong
    (each problem with where it is)."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_FILE_BYTES:
            raise DomainError(
                "invalid_calendar", f"a calendar file is at most {MAX_FILE_BYTES} bytes"
            )
        try:
            data: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DomainError("invalid_calendar", f"not JSON: {exc}") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise DomainError("invalid_calendar", "a calendar file is a JSON object")
    try:
        return CalendarYear.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()[:10]
        )
        raise DomainError("invalid_calendar", problems) from None


def shipped_years() -> dict[int, CalendarYear]:
    """The year files shipped in the package."""
    years: dict[int, CalendarYear] = {}
    for entry in resources.files("vtax").joinpath("data").iterdir():
        name = entry.name
        if name.startswith("calendar-") and name.endswith(".json"):
            year = parse_year(entry.read_bytes())
            years[year.year] = year
    return years


def zone(name: str) -> ZoneInfo:
    """The service time zone, or `invalid_setting`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError("invalid_setting", f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class WorkingCalendar:
    """Working-day arithmetic over the loaded years, in the service time zone."""

    years: Mapping[int, CalendarYear] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"

    @cached_property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def with_year(self, year: CalendarYear) -> WorkingCalendar:
        """A calendar with `year` replacing the file of that year (an import)."""
        return WorkingCalendar({**self.years, year.year: year}, self.timezone)

    def covered(self, day: date) -> bool:
        """A file for the day's year is loaded (else the calendar only knows weekends)."""
        return day.year in self.years

    def provisional(self, day: date) -> bool:
        year = self.years.get(day.year)
        return year is None or year.status == "provisional"

    def holiday(self, day: date) -> Holiday | None:
        year = self.years.get(day.year)
        return year.off.get(day) if year is not None else None

    def is_working_day(self, day: date) -> bool:
        year = self.years.get(day.year)
        if year is not None:
            if day in year.off:
                return False
            if day in year.working:
                return True
        return day.weekday() < 5

    def today(self, now: datetime) -> date:
        """The service time zone's date of an aware moment."""
        if now.tzinfo is None:
            raise ValueError("naive datetime")
        return now.astimezone(self.tz).date()

    def next_working_day(self, day: date) -> date:
        """The first working day after `day`."""
        return self.add_working_days(day, 1)

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n >= 1), or `day` itself for n == 0 when it is a
        working day (else the next one)."""
        if n < 0:
            raise ValueError("n must not be negative")
        if n == 0:
            while not self.is_working_day(day):
                day += timedelta(days=1)
            return day
        for _ in range(n):
            day += timedelta(days=1)
            while not self.is_working_day(day):
                day += timedelta(days=1)
        return day

    def working_days_between(self, first: date, last: date) -> int:
        """Working days in (first, last]: how many working days `last` is after `first`."""
        if last <= first:
            return 0
        return sum(
            self.is_working_day(first + timedelta(days=i))
            for i in range(1, (last - first).days + 1)
        )

    def working_days(self, first: date, last: date) -> Iterable[date]:
        """The working days in [first, last]."""
        day = first
        while day <= last:
            if self.is_working_day(day):
                yield day
            day += timedelta(days=1)

    def bookable_days(self, now: datetime, lead: int, horizon: int) -> list[date]:
        """The days a taxpayer may book at `now`: working days from the `lead`-th working day
        after today (1: the next working day at the earliest) to the `horizon`-th, only on
        days a year file covers."""
        if horizon < lead:
            return []
        today = self.today(now)
        first = self.add_working_days(today, lead)
        last = self.add_working_days(today, horizon)
        return [d for d in self.working_days(first, last) if self.covered(d)]
