"""Callbacks that keep the taxpayer's place (Amazon Connect's queued callback): when the wait
is long or the queue closed, the taxpayer may leave the page; the ticket keeps its place and
its wait keeps counting. Near the head the taxpayer is told (in the page, by SMS) and has a
window to come back and connect; a missed window is retried after a delay, then the ticket is
abandoned. The policy is pure; `Callback` is the record a store keeps (tables.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

CallbackState = Literal["waiting", "notified", "connected", "abandoned", "cancelled"]
Action = Literal["notify", "abandon"]


@dataclass(frozen=True, slots=True)
class CallbackRules:
    offer_wait_s: float = 300.0
    notify_positions: int = 3
    window_s: float = 120.0
    attempts: int = 2
    retry_delay_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Callback:
    id: str
    ticket_id: str
    taxpayer_id: str
    requested_at: float
    state: CallbackState = "waiting"
    attempts: int = 0  # notices sent
    notify_after: float = 0.0  # no notice before (the delay after a missed window)
    window_ends_at: float | None = None
    connected_at: float | None = None
    phone: str | None = None
    locale: str = "zh-CN"
    version: int = 1  # the store's compare-and-set


def offer(eta_s: float | None, queue_open: bool, rules: CallbackRules) -> bool:
    """Offer a callback: the queue is closed, or the estimated wait is at least the limit."""
    return not queue_open or eta_s is None or eta_s >= rules.offer_wait_s


def on_position(
    cb: Callback, position: int, now: float, rules: CallbackRules
) -> tuple[Callback, Action | None]:
    """The ticket is `position` tickets from the head (0: next): tell the taxpayer once it is
    close enough, opening the window to come back."""
    if cb.state != "waiting" or position >= rules.notify_positions or now < cb.notify_after:
        return cb, None
    return (
        replace(
            cb, state="notified", attempts=cb.attempts + 1, window_ends_at=now + rules.window_s
        ),
        "notify",
    )


def on_tick(cb: Callback, now: float, rules: CallbackRules) -> tuple[Callback, Action | None]:
    """The window ran out with no connection: wait `retry_delay_s` and tell again, or abandon
    after `attempts` notices."""
    if cb.state != "notified" or cb.window_ends_at is None or now < cb.window_ends_at:
        return cb, None
    if cb.attempts >= rules.attempts:
        return replace(cb, state="abandoned", window_ends_at=None), "abandon"
    return replace(
        cb, state="waiting", window_ends_at=None, notify_after=now + rules.retry_delay_s
    ), None


def on_connect(cb: Callback, now: float) -> Callback:
    """The taxpayer came back (the page reconnected to the ticket)."""
    if cb.state in ("waiting", "notified"):
        return replace(cb, state="connected", connected_at=now, window_ends_at=None)
    return cb


def on_cancel(cb: Callback) -> Callback:
    if cb.state in ("waiting", "notified"):
        return replace(cb, state="cancelled", window_ends_at=None)
    return cb


def keeps_place(cb: Callback) -> bool:
    """The ticket stays in the queue (not dropped after the connection grace)."""
    return cb.state in ("waiting", "notified")


def may_be_offered(cb: Callback | None) -> bool:
    """An agent may be offered the ticket: no callback, or the taxpayer is back."""
    return cb is None or cb.state == "connected"
