"""The booking's state machine (pure): which step may follow which, what holds a seat of the
slot and the taxpayer's day, and when no-show strikes block booking.

    requested -> pre_review -> approved | redirected_online | rejected
    approved -> reminded -> checked_in -> queued -> served
    approved | reminded -> no_show (no check-in by T + grace)
    any step before the queue -> cancelled | rescheduled (a new booking takes over)
"""

from __future__ import annotations

from typing import Literal, get_args

from vtax.errors import DomainError

BookingState = Literal[
    "requested",
    "pre_review",
    "approved",
    "redirected_online",
    "rejected",
    "reminded",
    "checked_in",
    "queued",
    "served",
    "no_show",
    "cancelled",
    "rescheduled",
]
STATES: tuple[BookingState, ...] = get_args(BookingState)

TRANSITIONS: dict[BookingState, frozenset[BookingState]] = {
    "requested": frozenset({"pre_review", "cancelled", "rescheduled"}),
    "pre_review": frozenset(
        {"approved", "redirected_online", "rejected", "cancelled", "rescheduled"}
    ),
    "approved": frozenset({"reminded", "checked_in", "no_show", "cancelled", "rescheduled"}),
    "reminded": frozenset({"checked_in", "no_show", "cancelled", "rescheduled"}),
    "checked_in": frozenset({"queued", "cancelled"}),
    "queued": frozenset({"served", "cancelled"}),
    "served": frozenset(),
    "no_show": frozenset(),
    "cancelled": frozenset(),
    "rescheduled": frozenset(),
    "rejected": frozenset(),
    "redirected_online": frozenset(),
}
# A booking in these states holds a seat of its slot and the taxpayer's day.
ACTIVE: frozenset[BookingState] = frozenset(s for s, nxt in TRANSITIONS.items() if nxt)
TERMINAL: frozenset[BookingState] = frozenset(STATES) - ACTIVE
# Leaving for one of these gives the seat back (before the time); served and no_show used it.
RELEASES_SEAT: frozenset[BookingState] = frozenset(
    {"cancelled", "rescheduled", "rejected", "redirected_online"}
)
# The taxpayer may still change the booking (cancel, reschedule) in these states.
CHANGEABLE: frozenset[BookingState] = frozenset({"requested", "pre_review", "approved", "reminded"})
# Pre-review decisions.
DECISIONS: frozenset[BookingState] = frozenset({"approved", "redirected_online", "rejected"})
# Staff review the materials file by file, and the taxpayer replaces a file marked
# needs_replacing, until the pre-review decision.
MATERIALS_REVIEWABLE: frozenset[BookingState] = frozenset({"requested", "pre_review"})
MATERIAL_VERDICTS: frozenset[str] = frozenset({"accepted", "needs_replacing"})
# May check in.
CHECK_IN_FROM: frozenset[BookingState] = frozenset({"approved", "reminded"})


def can(current: BookingState, nxt: BookingState) -> bool:
    return nxt in TRANSITIONS[current]


def require(current: BookingState, nxt: BookingState) -> None:
    """`invalid_state` unless `nxt` may follow `current`."""
    if not can(current, nxt):
        raise DomainError("invalid_state", f"a booking that is {current} cannot become {nxt}")


def blocked(strikes: int, forgiven: int, limit: int) -> bool:
    """Booking is blocked once the month's no-shows not yet forgiven by staff reach `limit`."""
    return strikes - forgiven >= limit
