"""Messages of the materials a taxpayer hands in during the call (uploads and camera stills)
and the agent's review of each (vtax/app/materials.py; docs/protocol.md, "Materials").

A material is `submitted` when it arrives and then, once, `accepted` or `rejected` with a
reason the taxpayer reads. A re-upload after a rejection is a new material whose `replaces`
names the rejected one (and the rejected one's `replaced_by` names it). The upload itself is
REST (multipart, `POST /api/sessions/{id}/materials`); the review is `material:review` over
Socket.IO or `POST /api/sessions/{id}/materials/{material_id}/review`."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from vtax.contract.base import Id, Message, Out, Query, ServerEvent, Timestamp

MaterialState = Literal["submitted", "accepted", "rejected"]
MaterialSource = Literal["file", "camera"]
MaterialMediaType = Literal["application/pdf", "image/png", "image/jpeg", "image/webp"]
Reason = Annotated[str, StringConstraints(max_length=500)]


class MaterialView(Out):
    """One material: what the confirmation form lists it by is `id` and `sha256`."""

    id: str
    session_id: str
    filename: str = Field(description="the taxpayer's name for it, cleaned, sniffed extension")
    media_type: MaterialMediaType = Field(description="sniffed from the content")
    size_bytes: int
    sha256: str = Field(description="hex SHA-256 of the stored bytes")
    source: MaterialSource = Field(description="`camera`: a still taken in the page")
    state: MaterialState
    reason: str | None = Field(description="why it was rejected (for the taxpayer)")
    replaces: str | None = Field(description="the rejected material this one replaces")
    replaced_by: str | None = Field(description="the material that replaced this rejected one")
    created_at: Timestamp
    reviewed_at: Timestamp | None


class MaterialList(Out):
    """A session's materials, oldest first."""

    materials: list[MaterialView]


class MaterialUploadQuery(Query):
    """For a raw-body upload (a multipart form carries these as fields instead)."""

    filename: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "document"
    source: MaterialSource = "file"
    replaces: Id | None = Field(None, description="the rejected material this one replaces")


class MaterialReviewIn(Message):
    """The agent's decision on a submitted material: `reject` needs a reason (what to bring
    instead), `accept` takes none."""

    decision: Literal["accept", "reject"]
    reason: Reason = ""

    @model_validator(mode="after")
    def _reason_with_reject(self) -> MaterialReviewIn:
        if self.decision == "reject" and not self.reason:
            raise ValueError("a rejection needs a reason for the taxpayer")
        if self.decision == "accept" and self.reason:
            raise ValueError("a reason goes with a rejection only")
        return self


class MaterialReviewed(Out):
    """The ack of `material:review`: the material as it now is."""

    material: MaterialView


# ---- pushes (registered in SERVER_EVENTS) --------------------------------------------------------


class MaterialNew(ServerEvent):
    """The taxpayer handed in a material: the agent's list shows it at once (open it with
    `GET .../materials/{id}/content`)."""

    event: ClassVar[str] = "material:new"
    to: ClassVar[str] = "the session's agent(s) and taxpayer"

    session_id: str
    material: MaterialView


class MaterialReviewedNotice(ServerEvent):
    """The agent accepted or rejected a material (`reason` says why, in the agent's words)."""

    event: ClassVar[str] = "material:reviewed"
    to: ClassVar[str] = "the session's taxpayer and agent(s)"

    session_id: str
    material: MaterialView
