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
