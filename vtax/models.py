"""The schema. Every change here is an Alembic migration in vtax/migrations/versions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
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
    """One taxpayer request from queue join to end: the record the review loop hangs on.

    Durations are kept as whole milliseconds, written when the step happens, so that the KPI
    sums are exact integers on every engine (no date arithmetic in SQL)."""

    __tablename__ = "service_sessions"
    __table_args__ = (
        Index("ix_service_sessions_joined", "joined_at", "id"),
        Index("ix_service_sessions_agent", "agent_id", "joined_at"),
        Index("ix_service_sessions_taxpayer", "taxpayer_id", "joined_at"),
        Index("ix_service_sessions_day", "joined_day", "agent_id"),
        Index("ix_service_sessions_flag", "flag", "joined_at"),
        Index("ix_service_sessions_rating", "rating_score", "joined_at"),
        Index("ix_service_sessions_category", "category", "joined_at"),
        Index("ix_service_sessions_outcome", "outcome", "joined_at"),
        Index("ix_service_sessions_booking", "booking_id"),
        Index("ix_service_sessions_consultation", "consultation_id"),
        Index("ix_service_sessions_final_category", "final_category", "joined_at"),
        Index("ix_service_sessions_enterprise", "enterprise_id", "joined_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36), unique=True)
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))  # the person
    # the enterprise the person acted for (identity_enterprises.id) and in which role
    # (docs/identity.md); null: for themselves. Migration 0014.
    enterprise_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    acting_role: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # where it came from (migration 0016): the assistant's conversation handed off, the
    # appointment checked in; null: a walk-in
    consultation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    booking_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    category: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # waiting -> live -> completed | dropped | transferred; waiting -> abandoned
    outcome: Mapped[str] = mapped_column(String(16), default="waiting")
    end_reason: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # ---- 0002: the review loop -----------------------------------------------------
    # the service zone's YYYY-MM-DD (kpi_meta `timezone`; vtax/review/days.py)
    joined_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    wait_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)  # join -> answer/abandon
    talk_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)  # answer -> end
    wrap_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)  # agent wrap-up after
    recording_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # check: pending -> confirmed | disputed; a revised summary puts a dispute back to pending
    check_status: Mapped[str] = mapped_column(
        String(12), default="pending", server_default="pending"
    )
    # the service follow-up promised in the summary: none | open -> done
    follow_up_status: Mapped[str] = mapped_column(String(8), default="none", server_default="none")
    follow_up_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    follow_up_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # supervisor follow-up of a poor rating or a disputed summary: none | open -> done
    flag: Mapped[str] = mapped_column(String(8), default="none", server_default="none")
    flag_reasons: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    flag_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flag_done_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    flag_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    rating_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)  # filterable copy
    # the summary's result, copied here so the KPIs need no join with session_summaries
    summary_result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # the same taxpayer came back with the same category within 7 days (not first-contact)
    recontacted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # ---- 0004 ------------------------------------------------------------------------
    # the effective category: the summary's refinement if any, else `category` (asked at join,
    # the queue's, which the KPIs keep); set by `open` and each summary save. The server
    # default only lets SQLite add the column in place; every write sets it.
    final_category: Mapped[str] = mapped_column(String(64), server_default="")


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
    # ---- 0002 ------------------------------------------------------------------------
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)  # refined 'ask'
    actions: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    follow_up_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SessionRating(Base):
    """The taxpayer's evaluation; one per session."""

    __tablename__ = "session_ratings"

    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # ---- 0002: optional dimensions, 1..5 each --------------------------------------------
    professionalism: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    attitude: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    efficiency: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    av_quality: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


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


class SessionCheck(Base):
    """The taxpayer's 'check' of a summary version: confirmed or disputed. Append-only."""

    __tablename__ = "session_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), index=True)
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    summary_version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(12))  # confirmed | disputed
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """A document the agent delivered to the taxpayer (the 'deliver' step)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_session", "session_id", "created_at"),
        Index("ix_deliveries_taxpayer", "taxpayer_id", "acknowledged_at"),
        Index("ix_deliveries_agent", "agent_id", "acknowledged_at"),
        Index("ix_deliveries_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(64))  # sniffed from the content
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))  # path under documents_dir
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryReceipt(Base):
    """Proof of delivery: when, which bytes (SHA-256) and who acknowledged. Append-only."""

    __tablename__ = "delivery_receipts"

    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    id_type: Mapped[str] = mapped_column(String(16))
    id_number: Mapped[str] = mapped_column(String(18))
    taxpayer_name: Mapped[str] = mapped_column(String(100), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QualityReview(Base):
    """A supervisor's quality-review form for a session. Append-only: a new review is a row."""

    __tablename__ = "quality_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), index=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    scores: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer)
    max_total: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentStateChange(Base):
    """Agent state history (available, reserved, busy, wrap_up, away, offline): occupancy and
    wrap-up time come from here. Append-only."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (
        Index("ix_agent_state_changes_agent", "agent_id", "at"),
        Index("ix_agent_state_changes_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentStateDay(Base):
    """Time per agent, service-zone day and state, summed as each state ends (derived from
    `agent_state_changes`): occupancy over any days without scanning the history."""

    __tablename__ = "agent_state_days"

    agent_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # zone's YYYY-MM-DD
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    ms: Mapped[int] = mapped_column(Integer, default=0)


class AgentCurrentState(Base):
    """Each agent's latest state and since when (the interval still open)."""

    __tablename__ = "agent_current_states"

    agent_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- 0003: the KPI rollup (its tables since 0005: below) -----------------------------------

# Service-level thresholds (seconds) whose within-T counts the rollup keeps as columns.
# Any other T (1..3600) is still exact: the nearest lower column plus the wait histogram.
KPI_THRESHOLDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
# Occupancy rows every agent state change touches (a day over all agents) are split into
# this many shards: a transaction adds to one shard picked at random, a read sums them, so
# concurrent changes do not queue on one row lock. An agent's rows stay in shard 0.
KPI_SHARDS = 4
KPI_WAIT_CAP_S = 3601  # the histogram bucket of every wait over 3600 s (never within any T)
KPI_COUNTERS = (
    "sessions",
    "answered",
    "abandoned",
    "wait_ms",
    "handled",
    "talk_ms",
    "wrap_ms",
    "ratings",
    "satisfied",
    "summarised",
    "resolved_first",
    *(f"answered_le_{t}" for t in KPI_THRESHOLDS),
    *(f"abandoned_le_{t}" for t in KPI_THRESHOLDS),
)
KPI_SUMS = frozenset({"wait_ms", "talk_ms", "wrap_ms"})  # may pass 2**31 in a day: BIGINT

# ---- 0005: the KPI rollup in levels and grains, fed through a journal ----------------------

# The key columns a rollup level keeps; the others hold KPI_ANY. `cube` keeps them all (an
# agent of '' is "no agent": a session nobody answered). A query reads the first level that
# keeps every key it groups or filters by (so the order is smallest first): the pairs of an
# agent with one other key are far smaller than the cube (a year of one channel by agent:
# ~2,200 month rows against ~23,000), one key than the mix (a year of one language by day:
# 366 day rows against ~8,800).
KPI_LEVELS: dict[str, tuple[str, ...]] = {
    "total": (),
    "agent": ("agent",),
    "category": ("category",),
    "channel": ("channel",),
    "language": ("language",),
    "mix": ("category", "channel", "language"),
    "agent_category": ("agent", "category"),
    "agent_channel": ("agent", "channel"),
    "agent_language": ("agent", "language"),
    "cube": ("agent", "category", "channel", "language"),
}
KPI_KEYS = ("agent", "category", "channel", "language")
KPI_GRAINS = ("day", "month")  # period: YYYY-MM-DD | YYYY-MM, UTC, of the day sessions joined
KPI_ANY = "*"


def _kpi_keys(primary_key: bool = True) -> list[Column[Any]]:
    """The key columns (KPI_KEYS) of the rollup tables, and of the journal (not its key)."""
    sizes = {"agent": 64, "category": 64, "channel": 16, "language": 16}
    return [Column(k, String(sizes[k]), primary_key=primary_key, nullable=False) for k in KPI_KEYS]


def _kpi_counters(default: int | None = 0) -> list[Column[Any]]:
    """KPI_COUNTERS as columns (BIGINT for the millisecond sums)."""
    return [
        Column(name, BigInteger if name in KPI_SUMS else Integer, nullable=False, default=default)
        for name in KPI_COUNTERS
    ]


kpi_rollup = Table(
    "kpi_rollup",
    Base.metadata,
    Column("level", String(16), primary_key=True),  # a key of KPI_LEVELS
    Column("grain", String(8), primary_key=True),  # day | month
    Column("period", String(10), primary_key=True),
    *_kpi_keys(),
    *_kpi_counters(),
    # a filter on one key reads only that key's rows (the levels with the key)
    *(Index(f"ix_kpi_rollup_{k}", "level", "grain", k, "period") for k in KPI_KEYS),
    comment="Additive KPI counters per level, grain and period; folded from kpi_journal",
)

kpi_rollup_wait = Table(
    "kpi_rollup_wait",
    Base.metadata,
    Column("level", String(16), primary_key=True),
    Column("grain", String(8), primary_key=True),
    # ceil(wait_ms / 1000), 0 for no wait, KPI_WAIT_CAP_S above 3600 s: for an integer T,
    # wait_ms <= T * 1000 exactly when this is <= T
    Column("wait_s", Integer, primary_key=True),
    Column("period", String(10), primary_key=True),
    *_kpi_keys(),
    Column("answered", Integer, nullable=False, default=0),
    Column("abandoned", Integer, nullable=False, default=0),
    *(Index(f"ix_kpi_rollup_wait_{k}", "level", "grain", k, "wait_s", "period") for k in KPI_KEYS),
    comment="Histogram of waits in whole seconds per level, grain and period",
)

kpi_journal = Table(
    "kpi_journal",
    Base.metadata,
    # BIGINT on PostgreSQL; SQLite's autoincrement needs the INTEGER rowid alias
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("day", String(10), nullable=False),
    *_kpi_keys(primary_key=False),  # agent '' for no agent
    # the histogram bucket this row's answered/abandoned counts go to; NULL: none
    Column("wait_s", Integer, nullable=True),
    *_kpi_counters(default=None),  # every append gives them all
    comment="Signed KPI counter changes of committed steps, not yet folded into kpi_rollup",
)

kpi_occupancy = Table(
    "kpi_occupancy",
    Base.metadata,
    Column("grain", String(8), primary_key=True),  # day | month
    Column("dim", String(10), primary_key=True),  # all (key '') | agent (key: the agent id)
    Column("period", String(10), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("shard", SmallInteger, primary_key=True, default=0),  # see KPI_SHARDS
    Column("productive_ms", BigInteger, nullable=False, default=0),  # busy + wrap_up
    Column("staffed_ms", BigInteger, nullable=False, default=0),  # + available, reserved
    Column("state_rows", Integer, nullable=False, default=0),  # agent_state_days rows behind
    Index("ix_kpi_occupancy_key", "grain", "dim", "key", "period"),
    comment="Occupancy time per service-zone day and month, over all agents and per agent "
    "(from agent_state_days)",
)

# ---- 0015: the zone of every stored day ----------------------------------------------------

kpi_meta = Table(
    "kpi_meta",
    Base.metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(64), nullable=False),
    comment="`timezone`: the IANA zone whose days joined_day, agent_state_days and the KPI "
    "rollup hold (vtax/review/rollup.py; `vtax kpi rezone` changes it)",
)


# ---- 0011: the confirmation form (业务办理服务确认单; vtax/confirmation) -------------------


class FormVersion(Base):
    """One version of a session's confirmation form, as the agent proposed it. Never updated:
    a change is the next version. `sha256` is over the canonical JSON of `content`."""

    __tablename__ = "confirmation_versions"
    __table_args__ = (UniqueConstraint("session_id", "version", name="uq_confirmation_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[str] = mapped_column(String(36))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FormDecision(Base):
    """The taxpayer's confirmation or refusal of one version; at most one per version, never
    updated (a confirmed version cannot change; a refused one is followed by a new proposal)."""

    __tablename__ = "confirmation_decisions"
    __table_args__ = (UniqueConstraint("session_id", "version", name="uq_confirmation_decision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(12))  # confirmed | refused
    reason: Mapped[str] = mapped_column(Text, default="")
    taxpayer_id: Mapped[str] = mapped_column(String(36))
    sha256: Mapped[str] = mapped_column(String(64))  # the content hash the taxpayer decided on
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class FormRecorded(Base):
    """The form as the session's latest summary (the handle step) recorded it, written in the
    summary's transaction; a revised summary records it again."""

    __tablename__ = "confirmation_records"

    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # contract FormRecord
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- multiparty: every participant of a session (docs/review.md, "Participants") -------------


class SessionParticipantRow(Base):
    """One person's part in a session: who (role, user), when (join, leave) and, for the staff
    who owned the session for a while, the span they handled it (`handled_from`..`handled_to`).
    The two original parties get a row at the start; invitees and barging supervisors when
    they join; a warm transfer or take-over closes one span and opens the next."""

    __tablename__ = "session_participants"
    __table_args__ = (
        UniqueConstraint("session_id", "participant_id", name="uq_session_participants_pid"),
        Index("ix_session_participants_user", "user_id", "joined_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    participant_id: Mapped[str] = mapped_column(String(32))  # the live session's id
    role: Mapped[str] = mapped_column(String(16))  # taxpayer | agent | supervisor | invitee
    user_id: Mapped[str] = mapped_column(String(36))  # staff user id or taxpayer id
    display_name: Mapped[str] = mapped_column(String(100), default="")
    part: Mapped[str] = mapped_column(String(120), default="")  # e.g. "interpreter: yue"
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True), nullable=True)
    handled_from: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True), nullable=True)
    handled_to: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True), nullable=True)


# ---- 0010: materials the taxpayer hands in during the call (vtax/app/materials.py) ---------


class SessionMaterial(Base):
    """A document the taxpayer uploaded or photographed during the call, for the agent to
    accept or reject with a reason. A re-upload after a rejection is a new row that names the
    one it replaces (`replaces`, unique: a rejected item is replaced once). The bytes are in
    the document store under the session; the row keeps their SHA-256."""

    __tablename__ = "session_materials"
    __table_args__ = (Index("ix_session_materials_session", "session_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(64))  # sniffed from the content
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))  # path under documents_dir
    source: Mapped[str] = mapped_column(String(8))  # file | camera
    replaces: Mapped[str | None] = mapped_column(
        ForeignKey("session_materials.id"), unique=True, nullable=True
    )
    # submitted -> accepted | rejected (with `reason`); set once, by the session's agent
    state: Mapped[str] = mapped_column(String(12), default="submitted")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- 0009: in-call chat (vtax/app/chat.py, vtax/review/chat_log.py) ---------------------------


class ChatMessageRow(Base):
    """A text message between the participants of a live session, kept with its record.
    Append-only. `seq` is the session's order, assigned by the insert itself (the next after
    the session's highest; the unique constraint makes a concurrent insert retry), and a
    sender's `client_id` is stored once, so a re-send after a reconnect is the same row."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("session_id", "seq", name="uq_chat_messages_session_seq"),
        UniqueConstraint("session_id", "sender_id", "client_id", name="uq_chat_messages_client_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[str] = mapped_column(String(64))  # in the live session
    sender_role: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[str] = mapped_column(String(64))  # the account (taxpayer or staff id)
    sender_name: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- 0012: call quality (vtax/review/call_quality.py; docs/review.md, "Call quality") ---------


class CallQualitySample(Base):
    """One `getStats` sample a participant's page sent (`call:quality`), with the MOS the
    server estimated from it. Append-only; bounded per session (`VTAX_QUALITY_MAX_SAMPLES`)."""

    __tablename__ = "call_quality_samples"
    __table_args__ = (Index("ix_call_quality_samples_session", "session_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"))
    role: Mapped[str] = mapped_column(String(16))  # taxpayer | agent
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    rtt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    jitter_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    loss_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    out_kbps: Mapped[float | None] = mapped_column(Float, nullable=True)
    in_kbps: Mapped[float | None] = mapped_column(Float, nullable=True)
    screen_out_kbps: Mapped[float | None] = mapped_column(Float, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mos: Mapped[float | None] = mapped_column(Float, nullable=True)


class CallQualityRecord(Base):
    """The session's call-quality summary, recomputed by the server with every sample (under
    the session row's lock): what review and the KPI read."""

    __tablename__ = "call_quality"

    session_id: Mapped[str] = mapped_column(ForeignKey("service_sessions.id"), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)
    mos_median: Mapped[float | None] = mapped_column(Float, nullable=True)
    level: Mapped[str | None] = mapped_column(String(8), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # CallQualitySummary's fields
