"""The identity registry's tables (migration 0006): people, their verified phones, enterprises
and the grants by which a person acts for an enterprise in a role."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vtax.db import Base, UTCDateTime, utcnow

GrantRole = Literal["legal_representative", "finance_officer", "tax_handler", "invoice_purchaser"]
GRANT_ROLES: tuple[str, ...] = get_args(GrantRole)


class Person(Base):
    """Someone who signs in: found by (document type, document key)."""

    __tablename__ = "identity_people"
    __table_args__ = (UniqueConstraint("doc_type", "doc_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    doc_type: Mapped[str] = mapped_column(String(20))
    doc_key: Mapped[str] = mapped_column(String(40))  # the lifelong part (documents.py)
    doc_number: Mapped[str] = mapped_column(String(40))  # as on the latest card
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # bumped on sign-out-everywhere and on disabling: every token of an older version is dead
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Phone(Base):
    """A verified mobile number (E.164) of one person: where sign-in codes go."""

    __tablename__ = "identity_phones"
    __table_args__ = (Index("ix_identity_phones_person", "person_id"),)

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("identity_people.id", ondelete="CASCADE"))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Enterprise(Base):
    __tablename__ = "identity_enterprises"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Grant(Base):
    """A person acts for an enterprise in a role, from `valid_from` to `valid_until`
    (inclusive, days in the service time zone; None: open-ended), once confirmed by the
    person. A revoked or ended grant gives nothing."""

    __tablename__ = "identity_grants"
    __table_args__ = (
        UniqueConstraint("person_id", "enterprise_id", "role"),
        Index("ix_identity_grants_enterprise", "enterprise_id", "role"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("identity_people.id", ondelete="CASCADE"))
    enterprise_id: Mapped[str] = mapped_column(
        ForeignKey("identity_enterprises.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(24))
    functions: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="import")  # import | oidc
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Kiosk(Base):
    """A self-service kiosk registered by staff with its Ed25519 public key; a revoked kiosk
    signs nothing any more, and its sign-ins end at once."""

    __tablename__ = "identity_kiosks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    branch: Mapped[str] = mapped_column(String(100))  # the tax office or bank branch
    location: Mapped[str] = mapped_column(String(200))  # village / address, as staff wrote it
    public_key: Mapped[str] = mapped_column(String(64))  # raw 32 bytes, base64url
    registered_by: Mapped[str] = mapped_column(String(36))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(36), nullable=True)


class StaffSecurity(Base):
    """A staff account's second factor (TOTP, its secret sealed with the deployment key)
    and its sign-in failures and lockout."""

    __tablename__ = "identity_staff_security"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    totp_sealed: Mapped[str | None] = mapped_column(String(255), nullable=True)
    totp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # replays refused
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityAudit(Base):
    """Append-only: kiosks registered and revoked, staff lockouts and unlocks, people
    disabled and enabled, supervisors' lookups and reads of people. Rows are only
    inserted."""

    __tablename__ = "identity_audit"
    __table_args__ = (Index("ix_identity_audit_subject", "subject", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
