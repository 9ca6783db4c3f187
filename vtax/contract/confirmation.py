"""Messages of the confirmation form (业务办理服务确认单): during the call the agent proposes
the items of business to handle, the values to fill in and the materials each needs (linked to
the taxpayer's uploaded materials); the taxpayer confirms the latest version or refuses it
with a reason. Every proposal is a new, immutable version with the SHA-256 of its canonical
content (docs/protocol.md, "Confirmation form").

The Socket.IO events (`confirmation:*`) are in client_events.py, the push
(`confirmation:form`) in server_events.py, the REST routes in endpoints.py
(`# ---- confirmation`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from vtax.contract.base import CatalogItemCode, Id, Message, Out, Sha256, Timestamp, Whole

# A field or requirement name of vtax/data/business_forms.json (`tax_period`, `handler_id`).
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
# A proposed value: amounts and periods are strings ("1234.50", "2026-11"), counts integers.
FieldValue = (
    Annotated[str, StringConstraints(max_length=64)]
    | Annotated[int, Field(strict=True, ge=-(2**53), le=2**53)]
)
FormVersionNo = Annotated[int, Field(ge=1, le=1_000_000, strict=True), Whole]
FormState = Literal["proposed", "confirmed", "refused", "superseded"]
FieldType = Literal["period", "money", "integer", "choice"]


# ---- what the agent proposes -------------------------------------------------------------


class FormItemIn(Message):
    """One item of business: its values (checked against the item's fields) and, per named
    material requirement, the id of a material the taxpayer uploaded in this session."""

    code: CatalogItemCode
    values: Annotated[dict[Name, FieldValue], Field(max_length=20)] = Field(
        default_factory=dict, description="field name -> value (GET /api/catalog/forms)"
    )
    materials: Annotated[dict[Name, Id], Field(max_length=20)] = Field(
        default_factory=dict, description="requirement name -> material id (this session's)"
    )


class FormIn(Message):
    items: Annotated[list[FormItemIn], Field(min_length=1, max_length=10)]
    note: Annotated[str, StringConstraints(max_length=1000)] = Field(
        "", description="what the agent adds for the taxpayer"
    )


class DecideIn(Message):
    version: FormVersionNo = Field(description="the version read (refused if not the latest)")
    sha256: Sha256 = Field(description="its content hash, as read")


class RefuseIn(DecideIn):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


# ---- what everyone reads -----------------------------------------------------------------


class MaterialLinkView(Out):
    """A material the item needs; `material_id` and its `sha256` once one is linked."""

    requirement: str
    required: bool
    material_id: str | None
    sha256: str | None


class FormItemView(Out):
    code: str
    values: dict[str, str | int]
    materials: list[MaterialLinkView]


class FormContent(Out):
    """Exactly what `sha256` is computed over (canonical JSON: keys sorted, no spaces, UTF-8)."""

    items: list[FormItemView]
    note: str


class FormDecisionView(Out):
    decision: Literal["confirmed", "refused"]
    taxpayer_id: str
    at: Timestamp
    reason: str
    sha256: str = Field(description="the content hash decided on")


class FormVersionView(Out):
    session_id: str
    version: int
    sha256: str = Field(description="SHA-256 of the canonical JSON of `content`")
    content: FormContent
    author_id: str = Field(description="the agent who proposed it")
    proposed_at: Timestamp
    state: FormState = Field(
        description="`superseded`: an undecided version with a newer one after it"
    )
    latest: bool
    complete: bool = Field(description="every required material has a linked material")
    decision: FormDecisionView | None


class FormOut(Out):
    """The form of a session now: its latest version (None before the first proposal)."""

    session_id: str
    form: FormVersionView | None


class FormRecord(Out):
    """The form as the handle (办) step recorded it with the summary: the latest version
    then, and who confirmed it when."""

    version: int
    sha256: str
    state: FormState
    confirmed_by: str | None
    confirmed_at: Timestamp | None
    items: list[str] = Field(description="the items' catalog codes")
    materials: list[MaterialLinkView]
    recorded_at: Timestamp = Field(description="when the summary recorded it")


class FormHistory(Out):
    """Every version of a session's form, oldest first, each with its decision; `recorded`:
    the form as the latest summary recorded it."""

    session_id: str
    latest: FormVersionView | None
    versions: list[FormVersionView]
    recorded: FormRecord | None


# ---- the items' field definitions (GET /api/catalog/forms) -------------------------------


class FieldDefView(Out):
    name: str
    type: FieldType
    label: dict[str, str] = Field(description="by page language")
    required: bool
    min: str | int | None
    max: str | int | None
    options: list[str]
    option_labels: dict[str, dict[str, str]] | None


class RequirementView(Out):
    name: str
    label: dict[str, str]
    required: bool


class ItemFormView(Out):
    code: str
    fields: list[FieldDefView]
    materials: list[RequirementView]


class FormDefinitions(Out):
    version: int
    items: list[ItemFormView] = Field(description="every catalog item")
