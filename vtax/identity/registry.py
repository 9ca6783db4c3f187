"""The registry of people, their verified phones, enterprises and grants: what sign-in and
act-for read, over the database (SQLite or PostgreSQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from vtax.db import utcnow
from vtax.identity.tables import Enterprise, Grant, IdentityAudit, Person, Phone
from vtax.models import Taxpayer


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: str
    name: str
    doc_type: str
    doc_number: str
    disabled: bool
    token_version: int

    @classmethod
    def of(cls, p: Person) -> PersonRecord:
        return cls(p.id, p.name, p.doc_type, p.doc_number, p.disabled, p.token_version)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One identity audit row, as it was written."""

    id: int
    at: datetime
    actor_role: str
    actor_id: str | None
    kind: str
    subject: str
    data: dict[str, object]


@dataclass(frozen=True, slots=True)
class AccessChange:
    """A person disabled or enabled: when, by whom, why (an identity audit row)."""

    disabled: bool
    at: datetime
    actor_role: str
    actor_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ActiveGrant:
    """A grant in force today: the person may act for this enterprise in this role."""

    enterprise_id: str
    uscc: str
    enterprise_name: str
    role: str
    functions: tuple[str, ...]
    valid_until: date | None


def in_force(g: Grant, today: date) -> bool:
    return (
        g.confirmed
        and not g.revoked
        and g.valid_from <= today
        and (g.valid_until is None or today <= g.valid_until)
    )


class Registry:
    def __init__(self, sessions: async_sessionmaker[Any]) -> None:
        self._sessions = sessions

    async def person(self, person_id: str) -> PersonRecord | None:
        async with self._sessions() as db:
            p = await db.get(Person, person_id)
        return None if p is None else PersonRecord.of(p)

    async def person_by_document(self, doc_type: str, doc_key: str) -> PersonRecord | None:
        async with self._sessions() as db:
            p = await db.scalar(
                select(Person).where(Person.doc_type == doc_type, Person.doc_key == doc_key)
            )
        return None if p is None else PersonRecord.of(p)

    async def person_by_phone(self, phone: str) -> PersonRecord | None:
        """The enabled person a verified number belongs to."""
        async with self._sessions() as db:
            p = await db.scalar(
                select(Person).join(Phone, Phone.person_id == Person.id).where(Phone.phone == phone)
            )
        return None if p is None or p.disabled else PersonRecord.of(p)

    async def phones(self, person_id: str) -> list[str]:
        async with self._sessions() as db:
            rows = await db.scalars(
                select(Phone.phone).where(Phone.person_id == person_id).order_by(Phone.phone)
            )
            return list(rows)

    async def active_grants(self, person_id: str, today: date) -> list[ActiveGrant]:
        """The grants in force on `today` (service time zone) of enterprises not disabled,
        by enterprise name and role."""
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(Grant, Enterprise)
                    .join(Enterprise, Enterprise.id == Grant.enterprise_id)
                    .where(
                        Grant.person_id == person_id,
                        Grant.confirmed.is_(True),
                        Grant.revoked.is_(False),
                        Grant.valid_from <= today,
                        or_(Grant.valid_until.is_(None), Grant.valid_until >= today),
                        Enterprise.disabled.is_(False),
                    )
                    .order_by(Enterprise.name, Enterprise.uscc, Grant.role)
                )
            ).all()
        return [
            ActiveGrant(e.id, e.uscc, e.name, g.role, tuple(g.functions or ()), g.valid_until)
            for g, e in rows
        ]

    async def grant(
        self, person_id: str, enterprise_id: str, role: str, today: date
    ) -> ActiveGrant | None:
        """The grant in force by which the person acts for the enterprise in the role."""
        for g in await self.active_grants(person_id, today):
            if g.enterprise_id == enterprise_id and g.role == role:
                return g
        return None

    async def bump_token_version(self, person_id: str) -> int:
        """Every token issued before this is dead (sign-out everywhere); the new version."""
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(Person)
                .where(Person.id == person_id)
                .values(token_version=Person.token_version + 1, updated_at=utcnow())
            )
            version = await db.scalar(select(Person.token_version).where(Person.id == person_id))
        if version is None:
            raise KeyError(person_id)
        return int(version)

    async def set_disabled(
        self,
        person_id: str,
        disabled: bool,
        actor: tuple[str, str | None] = ("system", None),
        reason: str = "",
    ) -> None:
        """Disable (or enable) a person, audited with the reason; disabling also kills every
        token at once (enabling does not bring them back: the person signs in anew)."""
        async with self._sessions() as db, db.begin():
            values: dict[str, Any] = {"disabled": disabled, "updated_at": utcnow()}
            if disabled:
                values["token_version"] = Person.token_version + 1
            result = await db.execute(update(Person).where(Person.id == person_id).values(values))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise KeyError(person_id)
            db.add(
                IdentityAudit(
                    actor_role=actor[0],
                    actor_id=actor[1],
                    kind="person_disabled" if disabled else "person_enabled",
                    subject=person_id,
                    data={"reason": reason} if reason else {},
                )
            )

    async def audit(
        self, kind: str, subject: str, actor: tuple[str, str | None], data: dict[str, object]
    ) -> None:
        """Append a row to the identity audit: what `actor` (role, id) did about `subject`."""
        async with self._sessions() as db, db.begin():
            db.add(
                IdentityAudit(
                    actor_role=actor[0], actor_id=actor[1], kind=kind, subject=subject, data=data
                )
            )

    async def audit_rows(
        self,
        *,
        subject: str | None = None,
        kind: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditRow]:
        """The identity audit, newest first, filtered; `before_id` pages back (rows are only
        inserted, so ids order them as they were written)."""
        q = select(IdentityAudit)
        if subject is not None:
            q = q.where(IdentityAudit.subject == subject)
        if kind is not None:
            q = q.where(IdentityAudit.kind == kind)
        if actor_id is not None:
            q = q.where(IdentityAudit.actor_id == actor_id)
        if since is not None:
            q = q.where(IdentityAudit.at >= since)
        if until is not None:
            q = q.where(IdentityAudit.at < until)
        if before_id is not None:
            q = q.where(IdentityAudit.id < before_id)
        q = q.order_by(IdentityAudit.id.desc()).limit(limit)
        async with self._sessions() as db:
            rows = (await db.scalars(q)).all()
        return [
            AuditRow(r.id, r.at, r.actor_role, r.actor_id, r.kind, r.subject, dict(r.data or {}))
            for r in rows
        ]

    async def access_change(self, person_id: str) -> AccessChange | None:
        """The latest disabling or enabling of the person (from the identity audit)."""
        async with self._sessions() as db:
            row = await db.scalar(
                select(IdentityAudit)
                .where(
                    IdentityAudit.subject == person_id,
                    IdentityAudit.kind.in_(("person_disabled", "person_enabled")),
                )
                .order_by(IdentityAudit.at.desc(), IdentityAudit.id.desc())
                .limit(1)
            )
        if row is None:
            return None
        reason = (row.data or {}).get("reason", "")
        return AccessChange(
            disabled=row.kind == "person_disabled",
            at=row.at,
            actor_role=row.actor_role,
            actor_id=row.actor_id,
            reason=reason if isinstance(reason, str) else "",
        )

    async def ensure_taxpayer(self, person: PersonRecord, doc_key: str | None = None) -> str:
        """The `taxpayers` row the sessions, ratings and deliveries name (its id is the
        person's id: migration 0006 gave people the ids of today's taxpayers), created for a
        person who has none."""
        async with self._sessions() as db:
            if await db.get(Taxpayer, person.id) is not None:
                return person.id
            if doc_key is None:
                doc_key = await db.scalar(select(Person.doc_key).where(Person.id == person.id))
            db.add(
                Taxpayer(
                    id=person.id,
                    id_type=person.doc_type[:16],
                    id_number=(doc_key or person.doc_number)[:18],
                    name=person.name,
                )
            )
            try:
                await db.commit()
            except IntegrityError:  # a concurrent first sign-in made it
                await db.rollback()
        return person.id

    async def add_person(self, name: str, doc_type: str, doc_key: str, doc_number: str) -> str:
        """A new person (tests and the OIDC first sign-in); the id."""
        async with self._sessions() as db, db.begin():
            p = Person(
                id=str(uuid.uuid4()),
                name=name,
                doc_type=doc_type,
                doc_key=doc_key,
                doc_number=doc_number,
                disabled=False,
                token_version=0,
            )
            db.add(p)
        return p.id


@dataclass(frozen=True, slots=True)
class ProvidedGrant:
    """A grant as an identity provider states it in its claims."""

    uscc: str
    enterprise_name: str
    role: str
    valid_until: date | None = None
    functions: tuple[str, ...] = ()


async def upsert_from_provider(
    sessions: async_sessionmaker[Any],
    doc_type: str,
    doc_key: str,
    doc_number: str,
    name: str,
    grants: list[ProvidedGrant] | None,
    today: date,
) -> PersonRecord:
    """`_upsert_from_provider`, once more if a concurrent first sign-in of the same person
    (or a first sight of the same enterprise) won the insert."""
    try:
        return await _upsert_from_provider(
            sessions, doc_type, doc_key, doc_number, name, grants, today
        )
    except IntegrityError:
        return await _upsert_from_provider(
            sessions, doc_type, doc_key, doc_number, name, grants, today
        )


async def _upsert_from_provider(
    sessions: async_sessionmaker[Any],
    doc_type: str,
    doc_key: str,
    doc_number: str,
    name: str,
    grants: list[ProvidedGrant] | None,
    today: date,
) -> PersonRecord:
    """The person an identity provider vouches for, created on first sight; its grants
    (source "oidc") set to exactly the ones it states now (others of that source revoked;
    the registry import's own grants untouched). `grants` None: a source that states no
    grants (a kiosk reading an ID card) leaves them as they are."""
    async with sessions() as db, db.begin():
        p = await db.scalar(
            select(Person).where(Person.doc_type == doc_type, Person.doc_key == doc_key)
        )
        if p is None:
            p = Person(
                id=str(uuid.uuid4()),
                name=name,
                doc_type=doc_type,
                doc_key=doc_key,
                doc_number=doc_number,
                disabled=False,
                token_version=0,
            )
            db.add(p)
            await db.flush()
        elif (p.name, p.doc_number) != (name, doc_number):
            p.name, p.doc_number, p.updated_at = name, doc_number, utcnow()
        if grants is None:
            return PersonRecord.of(p)
        stated: set[str] = set()
        for g in grants:
            e = await db.scalar(select(Enterprise).where(Enterprise.uscc == g.uscc))
            if e is None:
                e = Enterprise(
                    id=str(uuid.uuid4()), uscc=g.uscc, name=g.enterprise_name, disabled=False
                )
                db.add(e)
                await db.flush()
            row = await db.scalar(
                select(Grant).where(
                    Grant.person_id == p.id, Grant.enterprise_id == e.id, Grant.role == g.role
                )
            )
            if row is None:
                row = Grant(
                    id=str(uuid.uuid4()),
                    person_id=p.id,
                    enterprise_id=e.id,
                    role=g.role,
                    valid_from=today,
                    source="oidc",
                )
                db.add(row)
            if row.source == "oidc":
                row.functions = list(g.functions)
                row.valid_until = g.valid_until
                row.confirmed, row.revoked = True, False
                row.updated_at = utcnow()
            stated.add(row.id)
        await db.flush()
        stale = await db.scalars(
            select(Grant).where(
                Grant.person_id == p.id, Grant.source == "oidc", Grant.revoked.is_(False)
            )
        )
        for row in stale:
            if row.id not in stated:
                row.revoked, row.updated_at = True, utcnow()
        return PersonRecord.of(p)
