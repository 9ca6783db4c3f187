"""One pydantic model per message: the validator, the docs and the OpenAPI source at once.

Every model forbids unknown fields and bounds every string, so an oversize or malformed
payload is refused with `invalid_payload` before it reaches the domain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(max_length=100)]
Language = Literal["zh-CN", "yue", "en", "pt"]
Channel = Literal["web", "mobile", "kiosk"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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


class SessionEnd(Message):
    session_id: Id
    reason: ShortText = ""


class SessionSummaryIn(Message):
    session_id: Id
    asked: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    handled: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    result: Literal["resolved", "follow_up", "transferred"]
    items: Annotated[
        list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=50)
    ] = []


class SessionRate(Message):
    session_id: Id
    score: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Annotated[str, StringConstraints(max_length=1000)] = ""


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
