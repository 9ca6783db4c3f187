"""The assistant's tables: knowledge-base entries with their history and a revision counter
(every node rebuilds its in-process index when the counter moves), and consultations with
their turns. Created by migration 0007."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vtax.db import Base, UTCDateTime, utcnow


class KbEntryRow(Base):
    """The current state of an entry (retired entries stay, out of the index)."""

    __tablename__ = "kb_entries"
    __table_args__ = (Index("ix_kb_entries_category", "category", "key"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbEntryVersionRow(Base):
    """Every version of every entry, never changed after it is written."""

    __tablename__ = "kb_entry_versions"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(ForeignKey("kb_entries.key"))
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class KbRevisionRow(Base):
    """One row: bumped in the same transaction as any entry change."""

    __tablename__ = "kb_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsultationRow(Base):
    """One conversation of a taxpayer with the assistant, up to its hand-off or its end."""

    __tablename__ = "consultations"
    __table_args__ = (
        Index("ix_consultations_taxpayer", "taxpayer", "started_at"),
        Index("ix_consultations_started", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    taxpayer: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    handoff_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    handoff_route: Mapped[str | None] = mapped_column(String(16), nullable=True)
    handoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ticket_question: Mapped[str | None] = mapped_column(Text, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsultationTurnRow(Base):
    """One turn: the taxpayer's question, the assistant's answer (or none) or a note."""

    __tablename__ = "consultation_turns"
    __table_args__ = (UniqueConstraint("consultation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)  # index searched
    entry_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    helpful: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
