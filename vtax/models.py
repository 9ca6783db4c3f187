"""The schema. Every change here is an Alembic migration in vtax/migrations/versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vtax.db import Base, UTCDateTime, utcnow


class User(Base):
    """Staff: agents and supervisors."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    skills: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Taxpayer(Base):
    __tablename__ = "taxpayers"
    __table_args__ = (UniqueConstraint("id_type", "id_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    id_type: Mapped[str] = mapped_column(String(16))
    id_number: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceSession(Base):
    """One taxpayer request from queue join to end: the record the review loop hangs on."""

    __tablename__ = "service_sessions"
    __table_args__ = (
        Index("ix_service_sessions_joined", "joined_at", "id"),
        Index("ix_service_sessions_agent", "agent_id", "joined_at"),
        Index("ix_service_sessions_taxpayer", "taxpayer_id", "joined_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36), unique=True)
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    category: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # waiting -> live -> completed | dropped; waiting -> abandoned
    outcome: Mapped[str] = mapped_column(String(16), default="waiting")
    end_reason: Mapped[str | None] = mapped_column(String(100), nullable=True)


class SessionSummary(Base):
    """The agent's record of the session (the 'handle' step)."""

    __tablename__ = "session_summaries"

    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    asked: Mapped[str] = mapped_column(Text)
    handled: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(16))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionRating(Base):
    """The taxpayer's evaluation; one per session."""

    __tablename__ = "session_ratings"

    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionEvent(Base):
    """Append-only audit log: who did what to a session, when. Never updated in place."""

    __tablename__ = "session_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
