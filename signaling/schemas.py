"""One pydantic model per message: the validator, the docs and the OpenAPI source at once.

Every model forbids unknown fields and bounds every string, so an oversize or malformed
payload is refused with `invalid_payload` before it reaches the domain."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(max_length=100)]
Language = Literal["zh-CN", "yue", "en", "pt"]
Channel = Literal["web", "mobile", "kiosk"]
Score = Annotated[int, Field(ge=1, le=5, strict=True)]
# Calendar days (UTC) in a sane range: far dates would overflow the date arithmetic.
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]


def no_nul(value: Any) -> Any:
    """NUL never belongs in text (and PostgreSQL cannot store it): refuse it anywhere."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            no_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    return value


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


# ---- HTTP bodies -----------------------------------------------------------------------


class TaxpayerAuth(Message):
    id_type: Literal["uscc", "resident_id"]
    id_number: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    name: ShortText = ""


class Login(Message):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


# ---- Socket.IO client events -----------------------------------------------------------


class QueueJoin(Message):
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    language: Language
    channel: Channel
    question: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class QueueLeave(Message):
    ticket_id: Id


class AgentStatusChange(Message):
    status: Literal["available", "away", "offline"]
    reason: ShortText = ""


class OfferAccept(Message):
    offer_id: Id


class OfferReject(Message):
    offer_id: Id
    reason: ShortText = ""


class RtcSignal(Message):
    session_id: Id
    to: Id | None = None
    type: Literal["offer", "answer", "candidate", "restart"]
    data: dict[str, Any] | None = None


class SessionResume(Message):
    session_id: Id
    last_seq: Annotated[int, Field(ge=0, strict=True)] = 0


class QueueJoinIn(QueueJoin):
    """`queue:join`; `priority` is the taxpayer's declared need (a kiosk for the elderly,
    an accessibility need), served first within the queue's aging."""

    priority: Literal["normal", "elderly", "accessibility"] = "normal"


class QueueRejoin(Message):
    """`queue:rejoin`: take up a waiting ticket again after a dropped connection."""

    ticket_id: Id


class SessionTransfer(Message):
    """`session:transfer`: the agent hands the taxpayer to another queue (category, and
    language if it changes); `note` tells the next agent why."""

    session_id: Id
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    language: Language | None = None
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class SessionEnd(Message):
    session_id: Id
    reason: ShortText = ""


class SummaryBody(Message):
    """The agent's record of a session ('handle'; `asked` and `category` refine the 'ask')."""

    asked: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    handled: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    result: Literal["resolved", "follow_up", "transferred"]
    items: Annotated[
        list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=50)
    ] = []
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    actions: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
        Field(max_length=20),
    ] = []
    follow_up_due: Day | None = None


class SessionSummaryIn(SummaryBody):
    session_id: Id


class RatingDimensions(Message):
    """Optional 1..5 scores per dimension of the service."""

    professionalism: Score | None = None
    attitude: Score | None = None
    efficiency: Score | None = None
    av_quality: Score | None = None


class RatingBody(Message):
    """The taxpayer's evaluation: overall 1 (very dissatisfied) .. 5 (very satisfied)."""

    score: Score
    comment: Annotated[str, StringConstraints(max_length=1000)] = ""
    dimensions: RatingDimensions | None = None


class SessionRate(RatingBody):
    session_id: Id


class CheckBody(Message):
    """The taxpayer's check of the summary: confirm it, or dispute it saying what is wrong."""

    decision: Literal["confirm", "dispute"]
    comment: Annotated[str, StringConstraints(max_length=1000)] = ""
    version: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] | None = None


class SessionCheckIn(CheckBody):
    session_id: Id


# ---- recording (signaling/recording.py) ------------------------------------------------


class SessionConsent(Message):
    session_id: Id
    recording: Annotated[bool, Field(strict=True)]


class RecorderHello(Message):
    worker: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    capacity: Annotated[int, Field(ge=1, le=500, strict=True)]
    active: Annotated[int, Field(ge=0, le=500, strict=True)] = 0


class RecorderJoin(Message):
    session_id: Id
    job_id: Id


class RecorderSaved(Message):
    session_id: Id
    manifest: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    segments: Annotated[int, Field(ge=0, le=100000, strict=True)]
    status: Literal["complete", "interrupted"]


# ---- Review loop over HTTP (signaling/review_api.py) -----------------------------------
# Query models: every query parameter arrives as a string; pydantic's lax mode converts it.

Cursor = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Note = Annotated[str, StringConstraints(max_length=1000)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]
Outcome = Literal["waiting", "live", "completed", "dropped", "transferred", "abandoned"]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


class SessionFilterQuery(Query):
    """Filters of the session list and the CSV export; all optional, all must hold."""

    date_from: Day | None = Field(None, alias="from", description="first UTC day (inclusive)")
    date_to: Day | None = Field(None, alias="to", description="last UTC day (inclusive)")
    agent: Id | None = Field(None, description="agent (user) id")
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None,
        description="the session's effective category: the agent's refinement in the "
        "summary if any, else the one asked at join (`final_category`)",
    )
    asked_category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
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


class KpiQueryIn(Query):
    date_from: Day | None = Field(None, alias="from", description="first UTC day; default today")
    date_to: Day | None = Field(None, alias="to", description="last UTC day; default `from`")
    group_by: Literal["day", "agent", "category", "channel"] = "day"
    threshold_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        20, description="service level threshold T in seconds"
    )
    agent: Id | None = None
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    channel: Channel | None = None
    language: Language | None = None


class FollowUpDoneIn(Message):
    note: Note = ""


class FlagResolveIn(Message):
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class QualityReviewIn(Message):
    scores: Annotated[
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=32)],
            Annotated[int, Field(ge=0, le=100, strict=True)],
        ],
        Field(max_length=20),
    ]
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


class AcknowledgeIn(Message):
    sha256: Sha256 | None = Field(None, description="the SHA-256 the taxpayer computed, if any")


# ---- Response shapes (documentation in /api/openapi.json; tests validate against them) ----


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(Out):
    code: str
    message: str
    details: list[dict[str, str]] | None = None


class ErrorOut(Out):
    error: ErrorBody


class TaxpayerRef(Out):
    id: str
    id_type: str
    id_number_masked: str
    name: str


class StaffRef(Out):
    id: str
    username: str
    display_name: str


class StaffListOut(Out):
    agents: list[StaffRef]


class TaxpayerAuthOut(Out):
    token: str
    taxpayer_id: str
    role: Literal["taxpayer"]
    expires_in_s: int


class LoginOut(Out):
    token: str
    role: Literal["agent", "supervisor"]
    user: StaffRef
    expires_in_s: int


class SummaryOut(Out):
    asked: str
    category: str | None
    handled: str
    actions: list[str]
    result: str
    items: list[str]
    follow_up_due: str | None
    version: int
    saved_at: str | None


class RatingOut(Out):
    score: int
    comment: str
    dimensions: dict[str, int]
    rated_at: str | None


class FollowUpOut(Out):
    status: Literal["none", "open", "done"]
    due: str | None
    done_at: str | None


class FlagOut(Out):
    status: Literal["none", "open", "done"]
    reasons: list[str]
    done_at: str | None
    done_by: str | None
    note: str | None


class LoopOut(Out):
    stage: Literal["ask", "handle", "check", "evaluate", "done", "closed"]
    check: Literal["pending", "confirmed", "disputed"]
    follow_up: FollowUpOut
    flag: FlagOut | None = Field(None, description="staff only")


class SessionOut(Out):
    id: str
    ticket_id: str
    category: str = Field(description="asked at join (the queue)")
    final_category: str = Field(description="the summary's refined category, else `category`")
    language: str
    channel: str
    question: str
    taxpayer: TaxpayerRef
    agent: StaffRef | None
    joined_at: str
    offered_at: str | None
    answered_at: str | None
    ended_at: str | None
    wait_s: float | None
    duration_s: float | None
    wrap_up_s: float | None
    outcome: Outcome
    end_reason: str | None
    recording_url: str | None
    summary: SummaryOut | None
    rating: RatingOut | None
    loop: LoopOut


class SessionPage(Out):
    sessions: list[SessionOut]
    next_before: str | None


class ReceiptOut(Out):
    acknowledged_at: str | None
    sha256: str
    taxpayer: TaxpayerRef


class DeliveryOut(Out):
    id: str
    session_id: str
    agent_id: str
    taxpayer_id: str
    filename: str
    media_type: Literal["application/pdf", "image/png", "image/jpeg", "image/webp"]
    size_bytes: int
    sha256: str
    note: str
    created_at: str | None
    first_downloaded_at: str | None
    download_count: int
    status: Literal["pending", "downloaded", "acknowledged"]
    receipt: ReceiptOut | None


class DeliveryPage(Out):
    deliveries: list[DeliveryOut]
    next_before: str | None


class CheckOut(Out):
    decision: Literal["confirmed", "disputed"]
    comment: str
    summary_version: int
    at: str | None


class ChecksOut(Out):
    checks: list[CheckOut]


class QualityReviewOut(Out):
    id: int
    reviewer_id: str
    scores: dict[str, int]
    total: int
    max_total: int
    comment: str
    created_at: str | None


class AuditActor(Out):
    role: str
    id: str | None


class AuditEventOut(Out):
    id: int
    at: str | None
    actor: AuditActor
    kind: str
    data: dict[str, Any]


class ReviewDetailOut(Out):
    session: SessionOut
    checks: list[CheckOut]
    deliveries: list[DeliveryOut]
    quality_reviews: list[QualityReviewOut]
    audit: list[AuditEventOut]


class QualityItemOut(Out):
    code: str
    label: str
    max: int


class QualityFormOut(Out):
    items: list[QualityItemOut]
    max_total: int


class ExportLinkOut(Out):
    url: str = Field(description="GET it (no Authorization header) within the minute")
    expires_at: str


class SummarySavedOut(Out):
    version: int


class CheckedOut(Out):
    check: Literal["confirmed", "disputed"]
    summary_version: int


class RatedOut(Out):
    flagged: bool


class DoneOut(Out):
    status: Literal["done"]
    done_at: str


class KpiFigures(Out):
    sessions: int
    answered: int
    abandoned: int
    handled: int
    service_level: float | None = Field(description="answered within T / answered")
    service_level_2: float | None = Field(
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


class KpiOut(Out):
    from_: str = Field(alias="from")
    to: str
    group_by: str
    threshold_s: int
    rows: list[KpiRow]
    total: KpiFigures


class CatalogOut(BaseModel):
    categories: list[dict[str, Any]]
    languages: list[dict[str, Any]]
    channels: list[dict[str, Any]]


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] | None = None
