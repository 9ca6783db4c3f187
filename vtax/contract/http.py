"""REST messages outside the review loop: errors, sign-in, the catalog, health, live
statistics, recordings and the agent desk."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from vtax.contract.base import Message, Out, Timestamp
from vtax.contract.identity import StepUpNeeded
from vtax.contract.review import SessionView, StaffRef
from vtax.contract.server_events import LiveStats

# ---- errors ----------------------------------------------------------------------------------


class ErrorDetail(Out):
    loc: str
    msg: str


class ErrorBody(Out):
    code: str = Field(description="stable and machine-readable (docs/protocol.md, Error codes)")
    message: str = Field(description="for people (English); pages translate by `code`")
    details: list[ErrorDetail] | None = Field(
        None, description="validation errors: each bad field", exclude_if=lambda v: v is None
    )
    next_open_at: Timestamp | None = Field(
        None, description="queue_closed: when the queue opens next", exclude_if=lambda v: v is None
    )
    retry_after_s: int | None = Field(
        None,
        description="rate_limited over HTTP: seconds to wait (also the Retry-After header)",
        exclude_if=lambda v: v is None,
    )
    step_up: StepUpNeeded | None = Field(
        None,
        description="step_up_required: what a fresh sign-in must reach",
        exclude_if=lambda v: v is None,
    )


class ErrorOut(Out):
    error: ErrorBody


# ---- sign-in ----------------------------------------------------------------------------------


class Login(Message):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class StaffToken(Out):
    token: str
    role: Literal["agent", "supervisor"]
    user: StaffRef
    expires_in_s: int
    second_factor: bool = Field(
        description="this sign-in used the authenticator's code (recordings and the CSV "
        "export need one where `records_need_second_factor` is on)"
    )


# ---- the catalog ----------------------------------------------------------------------------------


Names = Annotated[
    dict[str, str], Field(description="the name per page language (zh-CN, zh-HK, en, pt)")
]


class CatalogItem(Out):
    code: str
    name: Names
    step_up: bool = Field(
        description="risky (invoice collection, deregistration, export rebates...): asking for "
        "it (`queue:join` with `item`) needs a fresh high-level sign-in, else `step_up_required`"
    )


class CatalogCategory(Out):
    code: str
    name: Names
    items: list[CatalogItem]


class CatalogEntry(Out):
    code: str
    name: Names


class CatalogOut(Out):
    version: int
    timezone: str = Field(description="the service's IANA time zone: every time people read")
    categories: list[CatalogCategory]
    languages: list[CatalogEntry] = Field(description="service languages of the video desk")
    channels: list[CatalogEntry]


# ---- health ----------------------------------------------------------------------------------------


class Health(Out):
    status: Literal["ok", "ready", "not_ready"]
    checks: dict[str, str] | None = Field(None, exclude_if=lambda v: v is None)


# ---- live statistics -------------------------------------------------------------------------------


class LiveStatsOut(LiveStats):
    """`GET /api/stats/live`: what `queue:stats` pushes."""


# ---- recordings -------------------------------------------------------------------------------------


class VideoTrack(Out):
    codec: str
    frames: int
    keyframes: int
    width: int
    height: int
    starts_with_keyframe: bool
    dropped_before_keyframe: int
    dropped_after_loss: int
    duration_s: float


class AudioTrack(Out):
    codec: str
    frames: int
    sample_rate: int
    duration_s: float


class RecordingSegment(Out):
    file: str
    participant_id: str
    role: str
    segment: int
    container: Literal["webm", "matroska"]
    started_at: Timestamp
    ended_at: Timestamp
    duration_s: float
    video: VideoTrack | None
    audio: AudioTrack | None
    bytes: int
    sha256: str
    note: str
    track: Literal["camera", "screen"] = Field(
        "camera", description="the camera and microphone, or the screen shared (video only)"
    )
    url: str = Field(description="the file, with a 10-minute playback link (`dl`)")


class RecordingParticipant(Out):
    participant_id: str
    role: str


class RecordingOut(Out):
    version: Literal[1]
    session_id: str
    started_at: Timestamp
    ended_at: Timestamp | None
    status: Literal["recording", "complete", "interrupted"]
    consent: dict[str, str]
    participants: list[RecordingParticipant]
    segments: list[RecordingSegment]
    workers: list[str]


# ---- the agent desk ----------------------------------------------------------------------------------


class DeskToday(Out):
    """The calling agent's own figures today (the service's day)."""

    day: str
    timezone: str
    answered: int = Field(description="sessions answered")
    completed: int = Field(description="sessions that ended completed")
    talk_s: float | None = Field(description="mean talk time")
    wrap_up_s: float | None = Field(description="mean wrap-up time")
    ratings: int
    mean_rating: float | None
    csat: float | None = Field(description="share of ratings 4-5")
    summaries_pending: int = Field(description="ended sessions without a summary")
    follow_ups_open: int


class TaxpayerHistory(Out):
    """The taxpayer's earlier sessions, for the agent serving them now."""

    taxpayer_id: str
    sessions: list[SessionView] = Field(description="newest first, this session left out")
    open_follow_ups: int
