"""What happens at the booked time T (pure): check-in opens at T - early; checked in inside
[T - early, T + late] the booking goes ahead of walk-ins of the same skill and its wait counts
from T; later it joins as a walk-in; with no check-in by T + grace it is a no-show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["too_early", "on_time", "walk_in", "no_show"]
# The queue's priority level of a booking checked in on time (vtax/queue/model.py
# PRIORITY_LEVELS); a walk-in is level 0.
APPOINTMENT_PRIORITY = 1


@dataclass(frozen=True, slots=True)
class TimingRules:
    early_s: float = 600.0
    late_s: float = 600.0
    grace_s: float = 900.0

    def __post_init__(self) -> None:
        if min(self.early_s, self.late_s, self.grace_s) < 0 or self.grace_s < self.late_s:
            raise ValueError("early, late and grace are >= 0, and grace >= late")

    def opens_at(self, t: float) -> float:
        return t - self.early_s

    def no_show_at(self, t: float) -> float:
        return t + self.grace_s


def verdict(now: float, t: float, rules: TimingRules) -> Verdict:
    """How a check-in at `now` for a booking at `t` (Unix seconds) is treated."""
    if now < t - rules.early_s:
        return "too_early"
    if now <= t + rules.late_s:
        return "on_time"
    if now < t + rules.grace_s:
        return "walk_in"
    return "no_show"


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """How the checked-in booking enters the live queue: its ticket's `joined_at` (the sort
    key and the start of the counted wait) and `priority`."""

    joined_at: float
    priority: int
    on_time: bool


def queue_entry(v: Verdict, now: float, t: float) -> QueueEntry:
    """The ticket of a booking checked in with verdict `v` (only on_time and walk_in join)."""
    if v == "on_time":
        return QueueEntry(joined_at=t, priority=APPOINTMENT_PRIORITY, on_time=True)
    if v == "walk_in":
        return QueueEntry(joined_at=now, priority=0, on_time=False)
    raise ValueError(f"a check-in that is {v} does not join the queue")


def counted_wait(now: float, entry: QueueEntry) -> float:
    """The wait the figures count: from T for a booking on time (never negative: one served
    before T waited 0), from the check-in for a walk-in."""
    return max(0.0, now - entry.joined_at)


def on_time_start(answered_at: float, t: float, within_s: float) -> bool:
    """The figure 'on-time start': served within `within_s` of T (or before it)."""
    return answered_at <= t + within_s
