"""REST messages of the sessions and the review loop: the session views, the loop's bodies and
answers, deliveries with receipts, the supervisor's review, the CSV export links and the KPIs.
(The loop's Socket.IO events reuse the bodies: vtax/contract/client_events.py.)"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, create_model

from vtax.contract.base import (
    Category,
    Channel,
    Cursor,
    Day,
    Id,
    Language,
    Message,
    Note,
    Out,
    Outcome,
    Query,
    Sha256,
    Timestamp,
    Whole,
)
from vtax.contract.chat import ChatMessageView
from vtax.contract.confirmation import FormHistory
from vtax.contract.multiparty import ParticipantView
from vtax.contract.quality import CallQualitySummary
from vtax.review.quality import QUALITY_FORM

# ---- queries ----------------------------------------------------------------------------------


class SessionFilterQuery(Query):
    """Filters of the session list and the CSV export; all optional, all must hold. Days are
    the service's time zone's days (docs/review.md, "Days")."""

    date_from: Day | None = Field(
        None, alias="from", description="first day of the service time zone (inclusive)"
    )
    date_to: Day | None = Field(
        None, alias="to", description="last day of the service time zone (inclusive)"
    )
    agent: Id | None = Field(None, description="agent (user) id")
    category: Category | None = Field(
        None,
        description="the session's effective category: the agent's refinement in the "
        "summary if any, else the one asked at join (`final_category`)",
    )
    asked_category: Category | None = Field(
        None, description="the category asked at join (the queue's)"
    )
    channel: Channel | None = None
    language: Language | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = Field(None, description="exact score")
    min_rating: Annotated[int, Field(ge=1, le=5)] | None = None
    max_rating: Annotated[int, Field(ge=1, le=5)] | None = None
    rated: bool | None = None
    flag: Literal["none", "open", "done"] | None = None
    outcome: Outcome | None = None
    check: Literal["pending", "confirmed", "disputed"] | None = None
    follow_up: Literal["none", "open", "done"] | None = None
    sort: Literal["newest", "oldest"] = "newest"


class ExportQuery(SessionFilterQuery):
    dl: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None,
        description="a signed link from POST /api/review/export-links, valid for this exact "
        "query, instead of the Authorization header",
    )


class SessionListQuery(SessionFilterQuery):
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    before: Cursor | None = Field(None, description="cursor: `next_before` of the last page")


class DeliveryListQuery(Query):
    status: Literal["pending", "acknowledged", "all"] = "all"
    session_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    before: Cursor | None = None


class UploadQuery(Query):
    """For a raw-body upload: the document's name and an optional note."""

    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "document"
    note: Note = ""


class NoQuery(Query):
    """An endpoint that takes no query parameters (any is refused)."""


class LinkQuery(Query):
    dl: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="a signed playback link, instead of the Authorization header"
    )


class KpiQuery(Query):
    date_from: Day | None = Field(
        None, alias="from", description="first day of the service time zone; default today"
    )
    date_to: Day | None = Field(None, alias="to", description="last day; default `from`")
    group_by: Literal["day", "agent", "category", "channel"] = "day"
    threshold_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        20, description="service level threshold T in seconds"
    )
    agent: Id | None = None
    category: Category | None = None
    channel: Channel | None = None
    language: Language | None = None


# ---- bodies ---------------------------------------------------------------------------------------


class FollowUpDoneIn(Message):
    note: Note = ""


class FlagResolveIn(Message):
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


QualityScores: type[Message] = create_model(  # type: ignore[call-overload]
    "QualityScores",
    __base__=Message,
    __doc__="One score per item of the quality form (`GET /api/review/quality-form`), each from "
    "0 to the item's maximum.",
    **{
        item["code"]: (Annotated[int, Field(ge=0, le=item["max"], strict=True), Whole], ...)
        for item in QUALITY_FORM
    },
)


class QualityReviewIn(Message):
    scores: QualityScores  # type: ignore[valid-type]
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


class AcknowledgeIn(Message):
    sha256: Sha256 | None = Field(None, description="the SHA-256 the taxpayer computed, if any")


# ---- views ------------------------------------------------------------------------------------------


class TaxpayerRef(Out):
    id: str
    id_type: str
    id_number_masked: str
    name: str


class EnterpriseRef(Out):
    id: str
    uscc: str
    name: str
    role: str | None = Field(description="the role the person acted in (legal_representative, ...)")


class StaffRef(Out):
    id: str
    username: str
    display_name: str


class StaffList(Out):
    agents: list[StaffRef]


class SummaryView(Out):
    asked: str
    category: str | None
    handled: str
    actions: list[str]
    result: str
    items: list[str]
    follow_up_due: str | None
    version: int
    saved_at: Timestamp | None


class RatingView(Out):
    score: int
    comment: str
    dimensions: dict[str, int]
    rated_at: Timestamp | None


class FollowUpView(Out):
    status: Literal["none", "open", "done"]
    due: str | None
    done_at: Timestamp | None


class FlagView(Out):
    status: Literal["none", "open", "done"]
    reasons: list[str]
    done_at: Timestamp | None
    done_by: str | None
    note: str | None


class LoopView(Out):
    stage: Literal["ask", "handle", "check", "evaluate", "done", "closed"]
    check: Literal["pending", "confirmed", "disputed"]
    follow_up: FollowUpView
    flag: FlagView | None = Field(None, description="staff only", exclude_if=lambda v: v is None)


class SessionView(Out):
    id: str
    ticket_id: str
    category: str = Field(description="asked at join (the queue)")
    final_category: str = Field(description="the summary's refined category, else `category`")
    language: str
    channel: str
    question: str
    consultation_id: str | None = Field(
        description="the assistant's conversation it was handed off from "
        "(GET /api/consultations/{conversation_id}); null: not through the assistant"
    )
    booking_id: str | None = Field(
        description="the appointment checked in (GET /api/appointments/{booking_id}); "
        "null: a walk-in"
    )
    taxpayer: TaxpayerRef
    enterprise: EnterpriseRef | None = Field(
        description="the enterprise the person acted for; null: for themselves"
    )
    agent: StaffRef | None
    joined_at: Timestamp
    offered_at: Timestamp | None
    answered_at: Timestamp | None
    ended_at: Timestamp | None
    wait_s: float | None
    duration_s: float | None
    wrap_up_s: float | None
    outcome: Outcome
    end_reason: str | None
    recording_url: str | None
    summary: SummaryView | None
    rating: RatingView | None
    loop: LoopView


class SessionPage(Out):
    sessions: list[SessionView]
    next_before: str | None


class ReceiptView(Out):
    acknowledged_at: Timestamp | None
    sha256: str
    taxpayer: TaxpayerRef


MediaType = Literal["application/pdf", "image/png", "image/jpeg", "image/webp"]


class DeliveryView(Out):
    id: str
    session_id: str
    agent_id: str
    taxpayer_id: str
    filename: str
    media_type: MediaType
    size_bytes: int
    sha256: str
    note: str
    created_at: Timestamp | None
    first_downloaded_at: Timestamp | None
    download_count: int
    status: Literal["pending", "downloaded", "acknowledged"]
    receipt: ReceiptView | None


class DeliveryPage(Out):
    deliveries: list[DeliveryView]
    next_before: str | None


class CheckView(Out):
    decision: Literal["confirmed", "disputed"]
    comment: str
    summary_version: int
    at: Timestamp | None


class CheckList(Out):
    checks: list[CheckView]


class QualityReviewView(Out):
    id: int
    reviewer_id: str
    scores: dict[str, int]
    total: int
    max_total: int
    comment: str
    created_at: Timestamp | None


class AuditActor(Out):
    role: str
    id: str | None


class AuditEventView(Out):
    id: int
    at: Timestamp | None
    actor: AuditActor
    kind: str
    data: dict[str, Any]


class ReviewDetail(Out):
    participants: list[ParticipantView] = Field(
        default_factory=list, description="everyone who took part (multiparty), in join order"
    )
    session: SessionView
    checks: list[CheckView]
    deliveries: list[DeliveryView]
    quality_reviews: list[QualityReviewView]
    audit: list[AuditEventView]
    confirmation: FormHistory = Field(description="the confirmation form's versions")
    messages: list[ChatMessageView] = Field(
        description="the in-call chat, in order (the first 500; the rest: "
        "`GET /api/sessions/{id}/messages`)"
    )
    call_quality: CallQualitySummary | None = Field(
        None, description="the call's measured quality (docs/review.md, Call quality)"
    )


class QualityItem(Out):
    code: str
    label: str
    max: int


class QualityForm(Out):
    items: list[QualityItem]
    max_total: int


class ExportLink(Out):
    url: str = Field(description="GET it (no Authorization header) within the minute")
    expires_at: Timestamp


class DoneAt(Out):
    status: Literal["done"]
    done_at: Timestamp


class KpiFigures(Out):
    sessions: int
    answered: int
    abandoned: int
    handled: int
    service_level: float | None = Field(description="answered within T / answered")
    service_level_with_abandoned: float | None = Field(
        description="(answered within T + abandoned within T) / (answered + abandoned)"
    )
    asa_s: float | None
    aht_s: float | None = Field(description="(talk + wrap-up) / handled")
    talk_s: float | None
    wrap_up_s: float | None
    abandonment_rate: float | None
    ratings: int
    csat: float | None = Field(description="share of ratings 4-5")
    summarised: int
    fcr: float | None
    occupancy: float | None = None


class KpiRow(KpiFigures):
    key: str | None
    label: str | None = None


class KpiReport(Out):
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    timezone: str = Field(
        description="the service time zone (IANA), whose days `from`, `to` and the day rows "
        "are: a day runs from its local midnight to the next (23 or 25 hours across a clock "
        "change)"
    )
    group_by: str
    threshold_s: int
    rows: list[KpiRow]
    total: KpiFigures
