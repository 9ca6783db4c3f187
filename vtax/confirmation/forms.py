"""The confirmation form's business data (业务办理服务确认单): for each catalog item, the typed
fields an agent may propose values for and the named materials it needs; the validation of
proposed values; the canonical JSON and SHA-256 of a version's content.

Pure: no I/O beyond reading the shipped data file (vtax/data/business_forms.json)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

FieldType = Literal["period", "money", "integer", "choice"]
FIELD_TYPES: tuple[FieldType, ...] = ("period", "money", "integer", "choice")
# A money amount: a decimal string with exactly two places, no leading zeros, no plus sign.
MONEY = re.compile(r"^-?(0|[1-9][0-9]{0,14})\.[0-9]{2}$")
PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
PERIOD_YEARS = (2000, 2100)
MONEY_BOUNDS = (Decimal("-999999999999.99"), Decimal("999999999999.99"))
Value = str | int


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: FieldType
    label: dict[str, str]
    required: bool = True
    min: Value | None = None
    max: Value | None = None
    options: tuple[str, ...] = ()
    option_labels: dict[str, dict[str, str]] | None = None

    def check(self, value: object) -> tuple[Value | None, str | None]:
        """(the value as stored, None) or (None, what is wrong, for people)."""
        if self.type == "period":
            return _period(value)
        if self.type == "money":
            return _money(value, self.min, self.max)
        if self.type == "integer":
            return _integer(value, self.min, self.max)
        if not isinstance(value, str) or value not in self.options:
            return None, "must be one of: " + ", ".join(self.options)
        return value, None


@dataclass(frozen=True, slots=True)
class Requirement:
    """A material an item needs, by name (`vat_return_form`); `required` or optional."""

    name: str
    label: dict[str, str]
    required: bool


@dataclass(frozen=True, slots=True)
class ItemForm:
    code: str
    fields: tuple[FieldDef, ...]
    materials: tuple[Requirement, ...]

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)

    def requirement(self, name: str) -> Requirement | None:
        return next((m for m in self.materials if m.name == name), None)


def _period(value: object) -> tuple[Value | None, str | None]:
    if not isinstance(value, str) or (m := PERIOD.match(value)) is None:
        return None, "a tax period is YYYY-MM (e.g. 2026-11)"
    if not PERIOD_YEARS[0] <= int(m.group(1)) <= PERIOD_YEARS[1]:
        return None, f"the year must be {PERIOD_YEARS[0]}..{PERIOD_YEARS[1]}"
    return value, None


def _money(value: object, low: Value | None, high: Value | None) -> tuple[Value | None, str | None]:
    if not isinstance(value, str) or MONEY.match(value) is None:
        return None, 'an amount is a decimal string with exactly 2 places (e.g. "1234.50")'
    amount = Decimal(value)
    lo = Decimal(str(low)) if low is not None else MONEY_BOUNDS[0]
    hi = Decimal(str(high)) if high is not None else MONEY_BOUNDS[1]
    if not lo <= amount <= hi:
        return None, f"the amount must be {lo:.2f}..{hi:.2f}"
    # "-0.00" is 0.00: one spelling per amount keeps the hash of equal content equal
    return ("0.00" if amount == 0 else value), None


def _integer(
    value: object, low: Value | None, high: Value | None
) -> tuple[Value | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None, "must be a whole number"
    lo = int(low) if low is not None else -(2**31)
    hi = int(high) if high is not None else 2**31 - 1
    if not lo <= value <= hi:
        return None, f"must be {lo}..{hi}"
    return value, None


@dataclass(frozen=True)
class BusinessForms:
    """Every catalog item's form: its fields (none for most) and its materials."""

    version: int
    items: dict[str, ItemForm]
    requirements: dict[str, dict[str, str]]
    default_materials: tuple[Requirement, ...]

    @classmethod
    def load(cls, item_codes: Iterable[str]) -> BusinessForms:
        text = resources.files("vtax").joinpath("data/business_forms.json").read_text("utf-8")
        return cls.parse(json.loads(text), item_codes)

    @classmethod
    def parse(cls, data: Mapping[str, Any], item_codes: Iterable[str]) -> BusinessForms:
        """Build from the data file's shape; a field or material the file does not define
        properly, or an item the catalog does not have, is a ValueError (at start)."""
        labels: dict[str, dict[str, str]] = dict(data["requirements"])

        def requirement(entry: Mapping[str, Any]) -> Requirement:
            name = entry["name"]
            if name not in labels:
                raise ValueError(f"material {name!r} has no entry in requirements")
            return Requirement(name, labels[name], bool(entry.get("required", True)))

        defaults = tuple(requirement(m) for m in data["default_materials"])
        codes = sorted(set(item_codes))
        unknown = set(data["items"]) - set(codes)
        if unknown:
            raise ValueError(f"forms for items the catalog does not have: {sorted(unknown)}")
        items: dict[str, ItemForm] = {}
        for code in codes:
            entry = data["items"].get(code, {})
            fields = tuple(_field(f) for f in entry.get("fields", []))
            if len({f.name for f in fields}) != len(fields):
                raise ValueError(f"{code}: a field name twice")
            materials = tuple(requirement(m) for m in entry.get("materials", [])) or defaults
            items[code] = ItemForm(code, fields, materials)
        return cls(int(data["version"]), items, labels, defaults)

    def of(self, code: str) -> ItemForm | None:
        return self.items.get(code)


def _field(entry: Mapping[str, Any]) -> FieldDef:
    kind = entry["type"]
    if kind not in FIELD_TYPES:
        raise ValueError(f"field {entry['name']!r}: unknown type {kind!r}")
    options = tuple(entry.get("options", ()))
    if kind == "choice" and not options:
        raise ValueError(f"field {entry['name']!r}: a choice needs options")
    return FieldDef(
        name=entry["name"],
        type=kind,
        label=dict(entry["label"]),
        required=bool(entry.get("required", True)),
        min=entry.get("min"),
        max=entry.get("max"),
        options=options,
        option_labels=entry.get("option_labels"),
    )


# ---- validation of a proposal -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    loc: str
    msg: str


def check_values(
    form: ItemForm, values: Mapping[str, object], loc: str
) -> tuple[dict[str, Value], list[Problem]]:
    """The values of one item, checked against its fields: unknown names, missing required
    fields and bad values each give a problem at `loc.values.<name>`."""
    problems: list[Problem] = []
    stored: dict[str, Value] = {}
    for name, value in values.items():
        field = form.field(name)
        if field is None:
            known = ", ".join(f.name for f in form.fields) or "none"
            problems.append(Problem(f"{loc}.values.{name}", f"no such field (fields: {known})"))
            continue
        checked, wrong = field.check(value)
        if wrong is not None:
            problems.append(Problem(f"{loc}.values.{name}", wrong))
        elif checked is not None:
            stored[name] = checked
    for field in form.fields:
        if field.required and field.name not in values:
            problems.append(Problem(f"{loc}.values.{field.name}", "required"))
    return stored, problems


# ---- the content's hash -------------------------------------------------------------------


def canonical_json(content: Any) -> bytes:
    """The one byte string of a content: keys sorted, no spaces, UTF-8, no floats (amounts are
    strings), so the same content always has the same SHA-256 (RFC 8785 agrees on it)."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_sha256(content: Any) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


@cache
def shipped(item_codes: frozenset[str]) -> BusinessForms:
    return BusinessForms.load(item_codes)
