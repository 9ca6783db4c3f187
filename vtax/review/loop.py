"""The service loop ask -> handle -> check -> evaluate -> deliver as a checked state machine.

Pure: a `LoopState` is a snapshot of one session, `require(state, step)` says whether a step
may happen now and raises `invalid_state` with the reason when it may not. The stores in this
package load the state under a row lock, call `require`, then write; so an out-of-order step
is refused before anything is written.

The call itself runs waiting -> live -> completed | dropped | transferred, or
waiting -> abandoned. The loop steps hang on it:

| step | allowed when |
|---|---|
| offer, answer, abandon | the request is waiting |
| end | the session is live |
| summarise (handle; refines the ask) | answered (live or ended); an edit only while the taxpayer has neither rated nor confirmed it (a disputed summary may be revised, which reopens the check) |
| confirm, dispute (check) | ended, a summary exists, its check is pending |
| rate (evaluate) | ended (completed, dropped, transferred); not rated yet |
| deliver | answered (live or ended) |
| close follow-up | the summary promised a follow-up that is still open |
| resolve flag | the session is flagged (rating <= 2 or disputed) and not resolved |
| quality review | ended |

Repeating a finished step with the same content is idempotent; that is decided by the store,
which compares with what it has before calling `require`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from vtax.errors import DomainError

ENDED = frozenset({"completed", "dropped", "transferred"})
ANSWERED = ENDED | {"live"}
CALL_STATES = frozenset({"waiting", "live", "abandoned"}) | ENDED


class Step(StrEnum):
    OFFER = "offer"
    ANSWER = "answer"
    ABANDON = "abandon"
    END = "end"
    SUMMARISE = "summarise"
    CONFIRM = "confirm"
    DISPUTE = "dispute"
    RATE = "rate"
    DELIVER = "deliver"
    CLOSE_FOLLOW_UP = "close_follow_up"
    RESOLVE_FLAG = "resolve_flag"
    REVIEW_QUALITY = "review_quality"


@dataclass(frozen=True, slots=True)
class LoopState:
    """What the guards look at; built from a session row."""

    call: str  # waiting | live | completed | dropped | transferred | abandoned
    summary_version: int = 0  # 0: no summary yet
    check: str = "pending"  # pending | confirmed | disputed
    rated: bool = False
    follow_up: str = "none"  # none | open | done
    flag: str = "none"  # none | open | done

    @property
    def stage(self) -> str:
        """Where the loop stands, for people: the first step still to do."""
        if self.call == "waiting":
            return "ask"
        if self.call == "abandoned":
            return "closed"
        if self.call == "live" or self.summary_version == 0:
            return "handle"
        if self.check == "pending":
            return "check"
        if not self.rated:
            return "evaluate"
        return "done"


Guard = tuple[Callable[[LoopState], bool], str]


def _waiting(s: LoopState) -> bool:
    return s.call == "waiting"


def _answered(s: LoopState) -> bool:
    return s.call in ANSWERED


def _ended(s: LoopState) -> bool:
    return s.call in ENDED


RULES: dict[Step, tuple[Guard, ...]] = {
    Step.OFFER: ((_waiting, "the request is no longer waiting"),),
    Step.ANSWER: ((_waiting, "the request is no longer waiting"),),
    Step.ABANDON: ((_waiting, "the request is no longer waiting"),),
    Step.END: ((lambda s: s.call == "live", "the session is not live"),),
    Step.SUMMARISE: (
        (_answered, "a session is summarised once an agent has answered it"),
        (
            lambda s: s.summary_version == 0 or not s.rated,
            "the session is rated; its summary is final",
        ),
        (
            lambda s: s.summary_version == 0 or s.check != "confirmed",
            "the taxpayer confirmed the summary; it is final",
        ),
    ),
    Step.CONFIRM: (
        (_ended, "a summary is checked after the session ends"),
        (lambda s: s.summary_version > 0, "there is no summary to check yet"),
        (lambda s: s.check == "pending", "this summary was checked already"),
    ),
    Step.RATE: (
        (lambda s: s.call != "live", "a session is rated after it ends"),
        (_ended, "only a session that was served can be rated"),
        (lambda s: not s.rated, "this session has a rating already"),
    ),
    Step.DELIVER: ((_answered, "documents are delivered once an agent has answered"),),
    Step.CLOSE_FOLLOW_UP: (
        (lambda s: s.follow_up == "open", "there is no open follow-up on this session"),
    ),
    Step.RESOLVE_FLAG: ((lambda s: s.flag == "open", "the session is not flagged for follow-up"),),
    Step.REVIEW_QUALITY: ((_ended, "a session is reviewed after it ends"),),
}
RULES[Step.DISPUTE] = RULES[Step.CONFIRM]


def refusal(state: LoopState, step: Step) -> str | None:
    """The reason `step` is not allowed in `state`, or None when it is."""
    for allowed, reason in RULES[step]:
        if not allowed(state):
            return reason
    return None


def require(state: LoopState, step: Step) -> None:
    """Raise `invalid_state` unless `step` may happen in `state`."""
    reason = refusal(state, step)
    if reason is not None:
        raise DomainError("invalid_state", reason)


# ---- a delivered document: uploaded -> downloaded -> acknowledged ---------------------------


@dataclass(frozen=True, slots=True)
class DeliveryState:
    downloaded: bool  # by the taxpayer
    acknowledged: bool


def require_acknowledge(state: DeliveryState) -> None:
    if not state.downloaded:
        raise DomainError("invalid_state", "download the document before acknowledging it")
