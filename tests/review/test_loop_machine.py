"""The loop's state machine, pure: every step in every representative state, allowed or
refused with `invalid_state` and a reason."""

from __future__ import annotations

import pytest

from vtax.errors import DomainError
from vtax.review.loop import (
    DeliveryState,
    LoopState,
    Step,
    refusal,
    require,
    require_acknowledge,
)

S = Step
STATES: dict[str, tuple[LoopState, set[Step], str]] = {
    # name: (state, the steps allowed in it, stage)
    "waiting": (LoopState("waiting"), {S.OFFER, S.ANSWER, S.ABANDON}, "ask"),
    "abandoned": (LoopState("abandoned"), set(), "closed"),
    "live": (LoopState("live"), {S.END, S.SUMMARISE, S.DELIVER}, "handle"),
    "live, summarised": (LoopState("live", 1), {S.END, S.SUMMARISE, S.DELIVER}, "handle"),
    "ended": (
        LoopState("completed"),
        {S.SUMMARISE, S.RATE, S.DELIVER, S.REVIEW_QUALITY},
        "handle",
    ),
    "dropped": (
        LoopState("dropped"),
        {S.SUMMARISE, S.RATE, S.DELIVER, S.REVIEW_QUALITY},
        "handle",
    ),
    "transferred, summarised": (
        LoopState("transferred", 1),
        {S.SUMMARISE, S.CONFIRM, S.DISPUTE, S.RATE, S.DELIVER, S.REVIEW_QUALITY},
        "check",
    ),
    "summarised": (
        LoopState("completed", 1),
        {S.SUMMARISE, S.CONFIRM, S.DISPUTE, S.RATE, S.DELIVER, S.REVIEW_QUALITY},
        "check",
    ),
    "confirmed": (
        LoopState("completed", 1, "confirmed"),
        {S.RATE, S.DELIVER, S.REVIEW_QUALITY},
        "evaluate",
    ),
    "disputed (flagged)": (
        LoopState("completed", 1, "disputed", flag="open"),
        {S.SUMMARISE, S.RATE, S.DELIVER, S.REVIEW_QUALITY, S.RESOLVE_FLAG},
        "evaluate",
    ),
    "rated before any summary": (
        LoopState("completed", 0, rated=True),
        {S.SUMMARISE, S.DELIVER, S.REVIEW_QUALITY},
        "handle",
    ),
    "summarised and rated": (
        LoopState("completed", 1, rated=True),
        {S.CONFIRM, S.DISPUTE, S.DELIVER, S.REVIEW_QUALITY},
        "check",
    ),
    "confirmed and rated": (
        LoopState("completed", 2, "confirmed", rated=True),
        {S.DELIVER, S.REVIEW_QUALITY},
        "done",
    ),
    "follow-up open": (
        LoopState("completed", 1, "confirmed", rated=True, follow_up="open"),
        {S.DELIVER, S.REVIEW_QUALITY, S.CLOSE_FOLLOW_UP},
        "done",
    ),
    "follow-up done": (
        LoopState("completed", 1, "confirmed", rated=True, follow_up="done"),
        {S.DELIVER, S.REVIEW_QUALITY},
        "done",
    ),
    "low rating (flagged)": (
        LoopState("completed", 1, "confirmed", rated=True, flag="open"),
        {S.DELIVER, S.REVIEW_QUALITY, S.RESOLVE_FLAG},
        "done",
    ),
    "flag resolved": (
        LoopState("completed", 1, "confirmed", rated=True, flag="done"),
        {S.DELIVER, S.REVIEW_QUALITY},
        "done",
    ),
}
CASES = [(name, step) for name in STATES for step in Step]


@pytest.mark.parametrize(("name", "step"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_every_step_in_every_state(name: str, step: Step) -> None:
    state, allowed, _ = STATES[name]
    if step in allowed:
        require(state, step)
        assert refusal(state, step) is None
    else:
        with pytest.raises(DomainError) as refused:
            require(state, step)
        assert refused.value.code == "invalid_state"
        assert refused.value.message == refusal(state, step)
        assert len(refused.value.message) > 10


@pytest.mark.parametrize("name", list(STATES))
def test_stage_names_the_next_step(name: str) -> None:
    state, _, stage = STATES[name]
    assert state.stage == stage


def test_a_document_is_acknowledged_only_after_its_download() -> None:
    with pytest.raises(DomainError) as refused:
        require_acknowledge(DeliveryState(downloaded=False, acknowledged=False))
    assert refused.value.code == "invalid_state"
    require_acknowledge(DeliveryState(downloaded=True, acknowledged=False))
