"""The pure parts: the state machine (property tests), the timing at T, callbacks."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtax.appointments import callbacks, states
from vtax.appointments.callbacks import Callback, CallbackRules
from vtax.appointments.states import STATES, TRANSITIONS
from vtax.appointments.timing import (
    APPOINTMENT_PRIORITY,
    TimingRules,
    counted_wait,
    on_time_start,
    queue_entry,
    verdict,
)
from vtax.errors import DomainError

RULES = TimingRules(early_s=600, late_s=600, grace_s=900)
T = 1_800_000_000.0


def test_the_machine_reaches_every_state_and_terminal_states_are_final() -> None:
    reached = {"requested"}
    frontier = ["requested"]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:  # type: ignore[index]
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    assert reached == set(STATES)
    assert states.TERMINAL == {
        "served", "no_show", "cancelled", "rescheduled", "rejected", "redirected_online",
    }  # fmt: skip
    assert states.RELEASES_SEAT <= states.TERMINAL
    assert states.CHECK_IN_FROM <= states.ACTIVE and states.CHANGEABLE <= states.ACTIVE


@given(st.lists(st.sampled_from(STATES), max_size=30))
def test_any_walk_through_the_machine_keeps_its_invariants(attempts: list[str]) -> None:
    """Apply random steps; the ones refused change nothing; once terminal, nothing moves;
    a booking releases its seat at most once and only if it never was served or no-show."""
    state = "requested"
    releases = 0
    for nxt in attempts:
        if states.can(state, nxt):  # type: ignore[arg-type]
            state = nxt
            releases += nxt in states.RELEASES_SEAT
        else:
            with pytest.raises(DomainError) as err:
                states.require(state, nxt)  # type: ignore[arg-type]
            assert err.value.code == "invalid_state"
        if state in states.TERMINAL:
            assert not TRANSITIONS[state]  # type: ignore[index]
    assert releases <= 1
    assert (state in states.ACTIVE) != (state in states.TERMINAL)


@given(st.integers(0, 10), st.integers(0, 10), st.integers(1, 5))
def test_block_after_the_limit_unless_forgiven(strikes: int, forgiven: int, limit: int) -> None:
    forgiven = min(forgiven, strikes)
    assert states.blocked(strikes, forgiven, limit) == (strikes - forgiven >= limit)
    assert not states.blocked(strikes, strikes, limit)


@pytest.mark.parametrize(
    ("offset_s", "expected"),
    [
        (-601, "too_early"),
        (-600, "on_time"),
        (0, "on_time"),
        (600, "on_time"),
        (601, "walk_in"),
        (899, "walk_in"),
        (900, "no_show"),
    ],
)
def test_the_windows_around_t(offset_s: float, expected: str) -> None:
    assert verdict(T + offset_s, T, RULES) == expected


def test_on_time_goes_ahead_with_its_wait_from_t_a_late_one_is_a_walk_in() -> None:
    early = queue_entry("on_time", T - 300, T)
    assert (early.joined_at, early.priority, early.on_time) == (T, APPOINTMENT_PRIORITY, True)
    assert counted_wait(T - 100, early) == 0  # served before T: waited nothing
    assert counted_wait(T + 90, early) == 90
    late = queue_entry("on_time", T + 500, T)
    assert late.joined_at == T and counted_wait(T + 560, late) == 560
    walk = queue_entry("walk_in", T + 700, T)
    assert (walk.joined_at, walk.priority) == (T + 700, 0)
    for refused in ("too_early", "no_show"):
        with pytest.raises(ValueError):
            queue_entry(refused, T, T)  # type: ignore[arg-type]
    assert on_time_start(T + 299, T, 300) and not on_time_start(T + 301, T, 300)
    with pytest.raises(ValueError):
        TimingRules(early_s=600, late_s=900, grace_s=600)


@given(st.floats(-3600, 3600), st.floats(0, 1800), st.floats(0, 1800), st.floats(0, 1800))
def test_verdicts_are_ordered_in_time(
    offset: float, early: float, late: float, extra: float
) -> None:
    rules = TimingRules(early_s=early, late_s=late, grace_s=late + extra)
    order = ["too_early", "on_time", "walk_in", "no_show"]
    a = verdict(T + offset, T, rules)
    b = verdict(T + offset + 1, T, rules)
    assert order.index(a) <= order.index(b)


CB_RULES = CallbackRules(
    offer_wait_s=300, notify_positions=3, window_s=120, attempts=2, retry_delay_s=60
)


def test_callback_offer() -> None:
    assert callbacks.offer(301, True, CB_RULES)
    assert not callbacks.offer(299, True, CB_RULES)
    assert callbacks.offer(10, False, CB_RULES)  # queue closed
    assert callbacks.offer(None, True, CB_RULES)


def test_callback_keeps_the_place_notifies_near_the_head_retries_then_abandons() -> None:
    cb = Callback("c1", "t1", "tp", requested_at=0.0)
    assert callbacks.keeps_place(cb) and not callbacks.may_be_offered(cb)
    same, action = callbacks.on_position(cb, 5, 10.0, CB_RULES)
    assert same == cb and action is None
    cb, action = callbacks.on_position(cb, 2, 20.0, CB_RULES)
    assert (cb.state, cb.attempts, cb.window_ends_at, action) == ("notified", 1, 140.0, "notify")
    assert callbacks.on_position(cb, 0, 30.0, CB_RULES)[1] is None  # told once per attempt
    assert callbacks.on_tick(cb, 139.0, CB_RULES)[0] == cb
    cb, action = callbacks.on_tick(cb, 140.0, CB_RULES)
    assert (cb.state, cb.notify_after, action) == ("waiting", 200.0, None)
    assert callbacks.keeps_place(cb)
    assert callbacks.on_position(cb, 0, 150.0, CB_RULES)[1] is None  # the retry delay
    cb, action = callbacks.on_position(cb, 0, 200.0, CB_RULES)
    assert (cb.attempts, action) == (2, "notify")
    cb, action = callbacks.on_tick(cb, 400.0, CB_RULES)
    assert (cb.state, action) == ("abandoned", "abandon")
    assert not callbacks.keeps_place(cb)


def test_callback_connect_and_cancel() -> None:
    cb = Callback("c1", "t1", "tp", requested_at=0.0)
    notified, _ = callbacks.on_position(cb, 0, 5.0, CB_RULES)
    back = callbacks.on_connect(notified, 50.0)
    assert back.state == "connected" and back.connected_at == 50.0
    assert callbacks.may_be_offered(back) and callbacks.may_be_offered(None)
    assert callbacks.on_connect(replace(cb, state="abandoned"), 1.0).state == "abandoned"
    assert callbacks.on_cancel(cb).state == "cancelled"
    assert callbacks.on_cancel(back).state == "connected"


def test_every_code_the_appointments_raise_is_in_the_contract() -> None:
    import re
    from pathlib import Path

    from vtax.contract.errors import ERROR_CODES

    root = Path(__file__).resolve().parents[2] / "vtax"
    files = [*(root / "appointments").glob("*.py"), root / "app" / "appointments.py"]
    codes = {
        m.group(1)
        for f in files
        for m in re.finditer(r'DomainError\(\s*"([a-z_]+)"', f.read_text(encoding="utf-8"))
    }
    assert {"slot_full", "one_booking_a_day", "booking_blocked", "too_early"} <= codes
    assert codes - ERROR_CODES.keys() == set()
