"""The building blocks of every message: bases for what the server reads (`Message`, `Query`)
and what it sends (`Out`), bounded text types, and the catalog's codes as enumerations.

Inbound models forbid unknown fields and bound every string, so an oversize or malformed
payload is refused before it reaches the use case. Outbound models forbid unknown fields
too: a view that builds a field the contract does not have fails in the tests, not in a page.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from vtax.catalog import Catalog


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
    """A body or event payload a client sends."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


class Query(BaseModel):
    """A query string: every parameter arrives as a string; pydantic's lax mode converts it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return no_nul(value)


def _optional_when_excluded(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """In the schema of what the server sends, every field is always there (defaults too),
    except the ones left out when empty (`exclude_if`): those are optional."""
    left_out = {
        field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
        if field.exclude_if is not None
    }
    if left_out and "required" in schema:
        schema["required"] = [name for name in schema["required"] if name not in left_out]
    for name in left_out:  # left out when empty: when it is there, it is not null
        prop = schema.get("properties", {}).get(name, {})
        branches = prop.get("anyOf")
        if branches and {"type": "null"} in branches:
            rest = [b for b in branches if b != {"type": "null"}]
            del prop["anyOf"]
            for key, value in (rest[0] if len(rest) == 1 else {"anyOf": rest}).items():
                prop.setdefault(key, value)
            prop.pop("default", None)


class Out(BaseModel):
    """Something the server sends: an answer, an ack, a pushed event."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_serialization_defaults_required=True,
        json_schema_extra=_optional_when_excluded,
    )


# ---- bounded text ----------------------------------------------------------------------------

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ShortText = Annotated[str, StringConstraints(max_length=100)]
Note = Annotated[str, StringConstraints(max_length=1000)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]


def _whole(value: Any) -> Any:
    """JSON has one number type: 4.0 is the integer 4 (JSON Schema agrees). Strict integers
    otherwise: no booleans, no strings."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A strict integer that takes an integral JSON number (`Annotated[int, Field(...), Whole]`).
Whole = BeforeValidator(_whole)
Score = Annotated[int, Field(ge=1, le=5, strict=True), Whole]
# Calendar days in a sane range: far dates would overflow the date arithmetic.
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
Timestamp = Annotated[str, Field(description="ISO 8601 time with its offset")]
Outcome = Literal["waiting", "live", "completed", "dropped", "transferred", "abandoned"]
AgentStatus = Literal["offline", "available", "reserved", "busy", "wrap_up", "away"]
ParticipantRole = Literal["taxpayer", "agent", "supervisor", "recorder"]


# ---- the catalog's codes (vtax/data/catalog.json is their one source) -----------------------


@cache
def catalog() -> Catalog:
    return Catalog.load()


def _member(codes: frozenset[str], error: str, what: str) -> Any:
    def check(value: str) -> str:
        if value not in codes:
            raise PydanticCustomError(error, f"no {what} {{code}}", {"code": value[:64]})
        return value

    return check


def _codes(kind: str) -> frozenset[str]:
    data = catalog()
    if kind == "item":
        return frozenset().union(*data.items_by_category.values())
    return {"category": data.categories, "language": data.languages, "channel": data.channels}[kind]


def catalog_code(
    kind: Literal["category", "language", "channel", "item"], error: str, what: str
) -> Any:
    """A catalog code: an enumeration in the schemas (so pages and docs know the values), a
    check against the catalog when validating, refused with its own error type (`error`),
    which the transports answer as that error code."""
    codes = _codes(kind)
    return Annotated[
        str,
        StringConstraints(min_length=1, max_length=64),
        AfterValidator(_member(codes, error, what)),
        WithJsonSchema({"type": "string", "enum": sorted(codes), "x-catalog": kind}),
    ]


Category = catalog_code("category", "unknown_category", "business category")
Language = catalog_code("language", "unknown_language", "service in language")
Channel = catalog_code("channel", "unknown_channel", "channel")
# An item of business of the catalog (`invoices.red_letter_invoice`); refused as invalid_payload.
CatalogItemCode = catalog_code("item", "unknown_item", "catalog item")
# Error types raised by validation that are answered with their own code, not invalid_payload.
CODED_ERRORS = frozenset({"unknown_category", "unknown_language", "unknown_channel"})


class ServerEvent(Out):
    """A server -> client event; `to` says who receives it (for the docs)."""

    event: ClassVar[str]
    to: ClassVar[str]
