"""Per-queue configuration: one queue per business category, with its agent-choice strategy,
escalation steps, limits and opening hours. Loaded from a TOML or JSON file
(`VTAX_QUEUES_FILE`); a category the file does not name gets the `default` section."""

from __future__ import annotations

import itertools
import json
import tomllib
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Strategy = Literal["longest_idle", "fewest_sessions", "round_robin", "highest_proficiency"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationStep(_Model):
    """From `after_s` seconds of waiting, agents with at least `min_level` in the category
    may take the ticket; `min_level` 0 means any agent who speaks the language."""

    after_s: Annotated[float, Field(ge=0)]
    min_level: Annotated[int, Field(ge=0, le=5)]


def _minutes(text: str) -> int:
    t = time.fromisoformat(text)
    return t.hour * 60 + t.minute


def _day_set(spec: str) -> list[int]:
    """'mon', 'mon-fri' or 'sat,sun' -> weekday numbers (Monday 0)."""
    days: list[int] = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
        if b < a:
            raise ValueError(f"{part!r}: a day range runs forward, e.g. mon-fri")
        days += range(a, b + 1)
    return days


class OpeningHours(_Model):
    """Weekly opening hours in a time zone, e.g. `{"mon-fri": ["08:30-12:00", "14:00-17:30"]}`,
    with closed dates (holidays)."""

    timezone: str = "Asia/Shanghai"
    weekly: dict[str, list[str]]
    closed_dates: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for days, spans in v.items():
            try:
                _day_set(days)
            except ValueError:
                raise ValueError(f"{days!r}: use mon..sun, ranges like mon-fri, or lists") from None
            for span in spans:
                start, sep, end = span.partition("-")
                try:
                    if not sep or _minutes(start) >= _minutes(end):
                        raise ValueError
                except ValueError:
                    raise ValueError(f"{span!r}: use HH:MM-HH:MM with start before end") from None
        return v

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def spans(self) -> list[list[tuple[int, int]]]:
        """Per weekday (Monday 0), the open spans in minutes after midnight, sorted."""
        table: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for days, spans in self.weekly.items():
            for day in _day_set(days):
                for span in spans:
                    start, _, end = span.partition("-")
                    table[day].append((_minutes(start), _minutes(end)))
        return [sorted(day) for day in table]

    def is_open(self, ts: float) -> bool:
        local = datetime.fromtimestamp(ts, self.zone)
        if local.date() in self.closed_dates:
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.spans[local.weekday()])

    def next_opening(self, ts: float) -> datetime | None:
        """The next moment (after `ts`) the queue opens, in its time zone; None if never."""
        local = datetime.fromtimestamp(ts, self.zone)
        for offset in range(0, 400):
            day = local.date() + timedelta(days=offset)
            if day in self.closed_dates:
                continue
            for start, _ in self.spans[day.weekday()]:
                opening = datetime.combine(day, time(start // 60, start % 60), self.zone)
                if opening > local:
                    return opening
        return None


class QueueConfig(_Model):
    """How one queue (business category) routes."""

    strategy: Strategy = "longest_idle"
    # Who may take a ticket as it waits (TaskRouter workflow steps, Asterisk penaltychange).
    steps: list[EscalationStep] = [EscalationStep(after_s=0, min_level=1)]
    max_length: Annotated[int, Field(ge=1)] | None = None
    max_wait_s: Annotated[float, Field(gt=0)] | None = None
    service_level_s: Annotated[float, Field(gt=0)] = 60.0
    # One priority level is worth this much waiting: a normal ticket that has waited this much
    # longer goes before a priority one, so nobody starves.
    aging_s: Annotated[float, Field(ge=0)] = 120.0
    join_when_unstaffed: bool = True
    hours: OpeningHours | None = None  # None: always open

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[EscalationStep]) -> list[EscalationStep]:
        if not v or v[0].after_s != 0:
            raise ValueError("the first step starts at after_s = 0")
        for a, b in itertools.pairwise(v):
            if not (b.after_s > a.after_s and b.min_level < a.min_level):
                raise ValueError("each later step comes later and asks a lower min_level")
        return v

    def required_level(self, waited_s: float) -> int:
        """The lowest proficiency that may take a ticket after it has waited this long."""
        level = self.steps[0].min_level
        for step in self.steps:
            if waited_s >= step.after_s:
                level = step.min_level
        return level

    def next_step_at(self, waited_s: float) -> float | None:
        """Seconds of waiting at which the next step begins; None after the last."""
        return next((s.after_s for s in self.steps if s.after_s > waited_s), None)

    def wait_needed(self, level: int) -> float | None:
        """How long a ticket waits before an agent of this level may take it (None: never)."""
        return next((s.after_s for s in self.steps if s.min_level <= level), None)

    @property
    def widens_to_any(self) -> bool:
        return self.steps[-1].min_level == 0


class QueueBook(_Model):
    """Every queue's configuration."""

    default: QueueConfig = QueueConfig()
    queues: dict[str, QueueConfig] = {}

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """A queue section overrides only the fields it names; the rest come from default."""
        if not isinstance(data, dict):
            return data
        default = data.get("default") or {}
        queues = data.get("queues") or {}
        if isinstance(default, dict) and isinstance(queues, dict):
            merged = {
                name: {**default, **q} if isinstance(q, dict) else q for name, q in queues.items()
            }
            return {**data, "queues": merged}
        return data

    def of(self, category: str) -> QueueConfig:
        return self.queues.get(category, self.default)

    @property
    def any_widens(self) -> bool:
        return self.default.widens_to_any or any(q.widens_to_any for q in self.queues.values())

    def check_categories(self, known: Iterable[str]) -> None:
        unknown = set(self.queues) - set(known)
        if unknown:
            raise ValueError(f"queues for unknown categories: {', '.join(sorted(unknown))}")

    @classmethod
    def load(cls, path: Path) -> QueueBook:
        """Read a .toml or .json file."""
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return cls.model_validate(data)
