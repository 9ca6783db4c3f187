"""Messages of the consultation assistant and its knowledge base: the taxpayer's
conversation (start, ask, feedback, hand-off, close), the agent's suggestions, the
supervisors' knowledge-base edits, file import/export, unanswered questions and the KPIs.

The Socket.IO events are in client_events.py (`consultation:*`), the REST routes in
endpoints.py (`# ---- assistant`); docs/assistant.md lists them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from vtax.assistant.kb import EntryDraft, EntryKey, KbLanguage, Link
from vtax.contract.base import (
    Category,
    Channel,
    Day,
    Id,
    Language,
    Message,
    Out,
    Query,
    Timestamp,
    Whole,
)

ConversationState = Literal["open", "handed_off", "closed"]
HandoffReason = Literal["customer_request", "low_confidence", "repeated_failure"]
HandoffRoute = Literal["queue", "callback"]  # callback: out of hours, a callback/appointment
TurnKind = Literal["question", "answer", "no_answer", "handoff", "note"]
Question = Annotated[str, StringConstraints(min_length=1, max_length=500)]
# The version an edit starts from (an integral JSON number; a database integer).
Version = Annotated[int, Field(ge=1, le=2_147_483_647, strict=True), Whole]

# ---- the taxpayer's conversation -------------------------------------------------------------


class ConsultationStartIn(Message):
    language: KbLanguage = Field(description="the page's language")
    channel: Channel


class ConsultationAskIn(Message):
    conversation_id: Id
    text: Question


class ConsultationFeedbackIn(Message):
    conversation_id: Id
    seq: Annotated[int, Field(ge=1, le=10_000, strict=True), Whole] = Field(
        description="the answer turn voted on"
    )
    helpful: bool


class ConsultationHandoffIn(Message):
    conversation_id: Id
    category: Category | None = Field(None, description="the taxpayer's correction")
    language: Language | None = Field(None, description="the taxpayer's correction")


class ConsultationCloseIn(Message):
    conversation_id: Id


class EntryRef(Out):
    """An entry as a suggestion: its key, its question in the asked language, its score."""

    key: str
    question: str
    category: str
    confidence: float
    score: float


class AnswerEntry(EntryRef):
    answer: str
    links: list[Link]


class TicketDraft(Out):
    """What the hand-off puts in the queue ticket (`queue:join`), for the agent to read."""

    category: str
    language: str = Field(description="the service language: zh-CN, yue, en or pt")
    channel: str
    question: str = Field(description="summary, entries shown with scores, whole transcript")


class QueuePlace(Out):
    """Where the hand-off joined the queue (as `queue:join` answers; `queue:update` follows)."""

    ticket_id: str
    position: int = Field(description="tickets ahead in the same category and language")
    eta_s: float = Field(description="estimated wait (docs/routing.md)")


class HandoffView(Out):
    conversation_id: str
    reason: HandoffReason
    route: HandoffRoute
    requested_at: Timestamp = Field(description="the taxpayer's wait counts from here")
    next_open_at: Timestamp | None = Field(None, description="route callback: opening time")
    message: str
    ticket: TicketDraft
    queued: QueuePlace | None = Field(
        None, description="route queue: the ticket the hand-off joined the queue with"
    )
    queue_refused: str | None = Field(
        None,
        description="the queue's refusal (queue_full, wait_too_long, no_agents, ...): the route "
        "fell back to callback",
    )


class ConsultationView(Out):
    conversation_id: str
    language: KbLanguage
    channel: str
    state: ConversationState
    message: str = Field(description="the greeting, in the page's language")


class TurnView(Out):
    seq: int
    speaker: Literal["taxpayer", "assistant", "system"]
    kind: TurnKind
    text: str
    entry_key: str | None
    confidence: float | None
    helpful: bool | None
    at: Timestamp


class ReplyView(Out):
    """The assistant's reply to one question."""

    conversation_id: str
    seq: int = Field(description="the reply's turn (feedback names it)")
    kind: Literal["answer", "no_answer", "handoff"]
    message: str
    entry: AnswerEntry | None = None
    alternatives: list[EntryRef] = Field(default_factory=list)
    ask_feedback: bool = Field(default=False, description="show 'did this solve it?'")
    offer_person: bool = Field(
        default=True, description="'talk to a person' is offered at every turn"
    )
    handoff: HandoffView | None = None


class FeedbackView(Out):
    conversation_id: str
    seq: int
    helpful: bool
    handoff: HandoffView | None = Field(None, description="set on repeated failure")


class TranscriptView(Out):
    conversation_id: str
    taxpayer: str
    language: KbLanguage
    channel: str
    state: ConversationState
    category: str | None
    handoff_reason: HandoffReason | None
    handoff_at: Timestamp | None
    started_at: Timestamp
    turns: list[TurnView]


# ---- agent assist ---------------------------------------------------------------------------


class SuggestQuery(Query):
    q: Question
    language: KbLanguage = "zh-CN"


class SuggestionList(Out):
    language: KbLanguage
    entries: list[AnswerEntry]


# ---- the knowledge base (supervisors) --------------------------------------------------------


class KbEntryIn(EntryDraft):
    """A new entry (the draft's fields; unknown fields refused)."""


class KbEntryUpdateIn(Message):
    expected_version: Version
    entry: EntryDraft


class KbRetireIn(Message):
    expected_version: Version


class KbListQuery(Query):
    category: Category | None = None
    include_retired: bool = False


class KbImportQuery(Query):
    retire_missing: bool = Field(False, description="the file is the whole knowledge base")
    dry_run: bool = Field(False, description="only check the file, change nothing")


class KbFileOut(Out):
    """A knowledge-base file as the export writes it (links inline); the import reads it
    back (docs/assistant.md, File format)."""

    format: Literal["vtax-kb"]
    version: Literal[1]
    entries: list[dict[str, object]] = Field(description="the entries' drafts, as `KbEntryIn`")


class KbEntryView(Out):
    key: EntryKey
    category: str
    items: list[str]
    texts: dict[KbLanguage, dict[str, object]]
    valid_from: date | None
    valid_until: date | None
    version: int
    retired: bool
    updated_by: str
    updated_at: Timestamp


class KbEntryList(Out):
    revision: int
    entries: list[KbEntryView]


class KbVersionView(Out):
    version: int
    change: Literal["created", "updated", "retired", "restored"]
    changed_by: str
    changed_at: Timestamp
    entry: dict[str, object]


class KbHistory(Out):
    key: str
    versions: list[KbVersionView]


class KbProblem(Out):
    where: str = Field(description="line/column, or entry index, key, line and field")
    message: str


class KbImportView(Out):
    dry_run: bool
    entries: int
    problems: list[KbProblem]
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    retired: list[str]


# ---- figures --------------------------------------------------------------------------------


class ConsultationKpiQuery(Query):
    date_from: Day | None = Field(None, alias="from", description="first day; default today")
    date_to: Day | None = Field(None, alias="to", description="last day; default `from`")


class ConsultationKpiView(Out):
    date_from: date
    date_to: date
    conversations: int
    contained: int = Field(description="ended or left with no hand-off")
    containment_rate: float | None
    handoffs: int
    handoff_rate: float | None
    handoffs_by_reason: dict[str, int]
    handoff_rate_by_reason: dict[str, float]
    handoffs_by_route: dict[str, int]
    answers: int
    no_answers: int
    helpful_votes: int
    not_helpful_votes: int
    acceptance_rate: float | None = Field(description="helpful / all votes")
    recontact_7d: int = Field(description="conversations followed by another within 7 days")
    recontact_rate: float | None


class UnansweredQuery(Query):
    date_from: Day | None = Field(None, alias="from")
    date_to: Day | None = Field(None, alias="to")
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class UnansweredView(Out):
    conversation_id: str
    language: KbLanguage
    question: str
    best_key: str | None
    confidence: float | None
    at: Timestamp


class UnansweredList(Out):
    questions: list[UnansweredView]
