"""Import the registry from a file the tax system exports (CSV or JSON).

One row says who a person is and, optionally, their verified phones and one grant:

    name, document_type, document_number, phones, uscc, enterprise_name, role, functions,
    valid_from, valid_until, confirmed, revoked

- `phones`: numbers separated by `;` (a JSON list in JSON); `functions` likewise.
- `uscc`, `enterprise_name` and `role` come together or not at all; `valid_from` defaults to
  the import day, `valid_until` empty is open-ended; `confirmed` / `revoked` are
  true/false/1/0/yes/no (confirmed defaults to true: the tax system exports confirmed grants).
- JSON: a list of objects with the same fields, or `{"rows": [...]}`.

Every row is validated first; errors name the line (CSV: the file's line number, header =
line 1; JSON: the record's position, from 1). A file with any error imports nothing. Then
everything is written in one transaction by natural keys (document, number, USCC, person +
enterprise + role), so importing the same file twice changes nothing the second time.
A number already verified for another person is an error on its line (a number moves only
when the export that gave it to the other person no longer does so and it is removed first).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax import identity as numbers
from vtax.db import utcnow
from vtax.identity.documents import InvalidPhone, parse_document, parse_phone
from vtax.identity.tables import GRANT_ROLES, Enterprise, Grant, Person, Phone

FIELDS = (
    "name",
    "document_type",
    "document_number",
    "phones",
    "uscc",
    "enterprise_name",
    "role",
    "functions",
    "valid_from",
    "valid_until",
    "confirmed",
    "revoked",
)
MAX_ROWS = 1_000_000
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


class RegistryRow(BaseModel):
    """One validated row."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str
    document_type: str
    document_number: str
    phones: list[str] = []
    uscc: str = ""
    enterprise_name: str = ""
    role: str = ""
    functions: list[str] = []
    valid_from: date | None = None
    valid_until: date | None = None
    confirmed: bool = True
    revoked: bool = False
    # derived
    doc_key: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not 1 <= len(v) <= 100 or "\x00" in v:
            raise ValueError("a name has 1 to 100 characters")
        return v

    @field_validator("enterprise_name")
    @classmethod
    def _enterprise_name(cls, v: str) -> str:
        if len(v) > 200 or "\x00" in v:
            raise ValueError("an enterprise name has at most 200 characters")
        return v

    @field_validator("phones", "functions", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [part.strip() for part in v.split(";") if part.strip()]
        return v

    @field_validator("phones")
    @classmethod
    def _phones(cls, v: list[str]) -> list[str]:
        out = []
        for phone in v:
            try:
                out.append(parse_phone(phone))
            except InvalidPhone as exc:
                raise ValueError(f"{phone!r}: {exc}") from None
        return sorted(set(out))

    @field_validator("functions")
    @classmethod
    def _functions(cls, v: list[str]) -> list[str]:
        if any(not 1 <= len(f) <= 64 for f in v) or len(v) > 50:
            raise ValueError("at most 50 functions of 1 to 64 characters")
        return sorted(set(v))

    @field_validator("confirmed", "revoked", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError("true/false, 1/0 or yes/no")
        return v

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _empty_date(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str) -> str:
        return numbers.validate("uscc", v) if v else ""

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v and v not in GRANT_ROLES:
            raise ValueError(f"a role is one of {', '.join(GRANT_ROLES)}")
        return v

    @model_validator(mode="after")
    def _whole(self) -> RegistryRow:
        doc = parse_document(self.document_type, self.document_number)
        self.document_number, self.doc_key = doc.number, doc.key
        grant = (self.uscc, self.enterprise_name, self.role)
        if any(grant) and not all(grant):
            raise ValueError("uscc, enterprise_name and role come together (a grant) or not at all")
        if not self.uscc and (self.functions or self.valid_from or self.valid_until):
            raise ValueError("functions and validity dates belong to a grant (uscc and role)")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    rows: int = 0
    people_created: int = 0
    people_updated: int = 0
    phones_added: int = 0
    enterprises_created: int = 0
    enterprises_updated: int = 0
    grants_created: int = 0
    grants_updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changes(self) -> int:
        return (
            self.people_created
            + self.people_updated
            + self.phones_added
            + self.enterprises_created
            + self.enterprises_updated
            + self.grants_created
            + self.grants_updated
        )


class ImportFailed(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(map(str, errors[:20])))
        self.errors = errors


def _messages(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"])
            msg = str(e["msg"]).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    return str(exc)


def _rows_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise ImportFailed([RowError(1, "the file is empty (a header line is needed)")])
    header = [h.strip() for h in reader.fieldnames]
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise ImportFailed([RowError(1, f"unknown columns: {', '.join(unknown)}")])
    out: list[tuple[int, dict[str, Any]]] = []
    for raw in reader:
        line = reader.line_num  # the record's (last) line
        if None in raw:
            raise ImportFailed([RowError(line, "more values than columns")])
        values = {k.strip(): (v or "") for k, v in raw.items()}
        out.append((line, {k: v for k, v in values.items() if v != "" or k == "name"}))
        if len(out) > MAX_ROWS:
            raise ImportFailed([RowError(line, f"more than {MAX_ROWS} rows")])
    return out


def _rows_json(text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed([RowError(exc.lineno, f"not JSON: {exc.msg}")]) from None
    if isinstance(data, dict) and set(data) == {"rows"}:
        data = data["rows"]
    if not isinstance(data, list):
        raise ImportFailed([RowError(1, 'JSON: a list of rows or {"rows": [...]}')])
    if len(data) > MAX_ROWS:
        raise ImportFailed([RowError(MAX_ROWS, f"more than {MAX_ROWS} rows")])
    return [(i + 1, r) for i, r in enumerate(data)]


def parse(text: str, fmt: str) -> tuple[list[tuple[int, RegistryRow]], list[RowError]]:
    """Each row validated, with its line (CSV) or record number (JSON)."""
    try:
        raw = _rows_csv(text) if fmt == "csv" else _rows_json(text)
    except ImportFailed as exc:
        return [], exc.errors
    rows: list[tuple[int, RegistryRow]] = []
    errors: list[RowError] = []
    phone_owner: dict[str, tuple[str, str]] = {}
    for line, values in raw:
        if not isinstance(values, dict):
            errors.append(RowError(line, "a row is an object"))
            continue
        try:
            row = RegistryRow.model_validate(values)
        except (ValidationError, ValueError) as exc:
            errors.append(RowError(line, _messages(exc)))
            continue
        for phone in row.phones:
            owner = phone_owner.setdefault(phone, (row.document_type, row.doc_key))
            if owner != (row.document_type, row.doc_key):
                errors.append(RowError(line, f"{phone} is given to two people in this file"))
        rows.append((line, row))
    return rows, errors


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".json"):
        return suffix[1:]
    raise ValueError("the file's name ends in .csv or .json (or give the format)")


class _Writer:
    """Upserts by natural keys inside one transaction, counting what changed."""

    def __init__(self, db: AsyncSession, report: ImportReport, today: date) -> None:
        self.db, self.report, self.today = db, report, today
        self.people: dict[tuple[str, str], Person] = {}
        self.enterprises: dict[str, Enterprise] = {}

    async def person(self, row: RegistryRow) -> Person:
        key = (row.document_type, row.doc_key)
        p = self.people.get(key)
        if p is None:
            p = await self.db.scalar(
                select(Person).where(Person.doc_type == key[0], Person.doc_key == key[1])
            )
        if p is None:
            p = Person(
                id=str(uuid.uuid4()),
                name=row.name,
                doc_type=row.document_type,
                doc_key=row.doc_key,
                doc_number=row.document_number,
                disabled=False,
                token_version=0,
            )
            self.db.add(p)
            self.report.people_created += 1
        elif (p.name, p.doc_number) != (row.name, row.document_number):
            p.name, p.doc_number, p.updated_at = row.name, row.document_number, utcnow()
            self.report.people_updated += 1
        self.people[key] = p
        return p

    async def phones(self, person: Person, phones: list[str]) -> str | None:
        for phone in phones:
            found = await self.db.get(Phone, phone)
            if found is None:
                self.db.add(Phone(phone=phone, person_id=person.id, verified_at=utcnow()))
                self.report.phones_added += 1
                await self.db.flush()
            elif found.person_id != person.id:
                return f"{phone} is already the verified number of another person"
        return None

    async def enterprise(self, row: RegistryRow) -> Enterprise:
        e = self.enterprises.get(row.uscc)
        if e is None:
            e = await self.db.scalar(select(Enterprise).where(Enterprise.uscc == row.uscc))
        if e is None:
            e = Enterprise(id=str(uuid.uuid4()), uscc=row.uscc, name=row.enterprise_name)
            e.disabled = False
            self.db.add(e)
            self.report.enterprises_created += 1
        elif e.name != row.enterprise_name:
            e.name, e.updated_at = row.enterprise_name, utcnow()
            self.report.enterprises_updated += 1
        self.enterprises[row.uscc] = e
        return e

    async def grant(self, person: Person, enterprise: Enterprise, row: RegistryRow) -> None:
        await self.db.flush()
        g = await self.db.scalar(
            select(Grant).where(
                Grant.person_id == person.id,
                Grant.enterprise_id == enterprise.id,
                Grant.role == row.role,
            )
        )
        wanted = {
            "functions": row.functions,
            "valid_until": row.valid_until,
            "confirmed": row.confirmed,
            "revoked": row.revoked,
        }
        if g is None:
            g = Grant(
                id=str(uuid.uuid4()),
                person_id=person.id,
                enterprise_id=enterprise.id,
                role=row.role,
                valid_from=row.valid_from or self.today,
                source="import",
                **wanted,
            )
            self.db.add(g)
            self.report.grants_created += 1
            return
        if row.valid_from is not None:
            wanted["valid_from"] = row.valid_from
        if any(getattr(g, k) != v for k, v in wanted.items()):
            for k, v in wanted.items():
                setattr(g, k, v)
            g.updated_at = utcnow()
            self.report.grants_updated += 1


async def import_text(
    sessions: async_sessionmaker[Any], text: str, fmt: str, today: date
) -> ImportReport:
    """Validate every row, then write them all in one transaction (or nothing: the report's
    errors say why). `today` (service time zone) is a new grant's default start."""
    if fmt not in ("csv", "json"):
        raise ValueError("the format is csv or json")
    rows, errors = parse(text, fmt)
    report = ImportReport(rows=len(rows) + len({e.line for e in errors}))
    if errors:
        report.errors = errors
        return report
    written = ImportReport(rows=report.rows)
    async with sessions() as db:
        async with db.begin():
            writer = _Writer(db, written, today)
            for line, row in rows:
                person = await writer.person(row)
                await db.flush()
                problem = await writer.phones(person, row.phones)
                if problem is not None:
                    await db.rollback()
                    report.errors = [RowError(line, problem)]
                    return report
                if row.uscc:
                    enterprise = await writer.enterprise(row)
                    await writer.grant(person, enterprise, row)
    return written


async def import_file(
    sessions: async_sessionmaker[Any], path: Path, today: date, fmt: str | None = None
) -> ImportReport:
    """The CLI's `vtax registry import PATH`: the file read as UTF-8 (a BOM is allowed)."""
    text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    return await import_text(sessions, text, fmt or detect_format(path), today)
