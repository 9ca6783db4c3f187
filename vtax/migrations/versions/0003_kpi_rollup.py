"""KPI rollup: per-day counters per dimension value, and the wait histogram

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 18:40:00

Creates `kpi_daily`, `kpi_daily_wait` and `kpi_occupancy_daily` (see vtax/review/rollup.py;
`shard` is part of each key: steps spread the rows they all touch over a few shards, the
backfill writes shard 0)
and fills them from the sessions and agent-state daily totals that exist with
INSERT ... SELECT, one grouped scan per dimension and table, the same SQL on SQLite and
PostgreSQL. The definitions here are frozen copies (a later change of the
application code must not change what this revision did).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

THRESHOLDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
WAIT_CAP_S = 3601
COUNTERS = (
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
    *(f"answered_le_{t}" for t in THRESHOLDS),
    *(f"abandoned_le_{t}" for t in THRESHOLDS),
)
SUMS = {"wait_ms", "talk_ms", "wrap_ms"}
DIMS = ("all", "agent", "category", "channel", "language")


def _create() -> None:
    op.create_table(
        "kpi_daily",
        sa.Column("dim", sa.String(10), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        *(
            sa.Column(n, sa.BigInteger() if n in SUMS else sa.Integer(), nullable=False)
            for n in COUNTERS
        ),
        comment="Additive KPI counters per UTC day and dimension value, kept by the session steps",
    )
    op.create_table(
        "kpi_daily_wait",
        sa.Column("dim", sa.String(10), primary_key=True),
        sa.Column("wait_s", sa.Integer(), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        comment="Histogram of waits in whole seconds per day and dimension value",
    )


def _create_occupancy() -> None:
    op.create_table(
        "kpi_occupancy_daily",
        sa.Column("dim", sa.String(10), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        sa.Column("productive_ms", sa.BigInteger(), nullable=False),
        sa.Column("staffed_ms", sa.BigInteger(), nullable=False),
        sa.Column("state_rows", sa.Integer(), nullable=False),
        comment="Occupancy time per UTC day, over all agents and per agent (from agent_state_days)",
    )
    a = sa.table(
        "agent_state_days",
        sa.column("agent_id", sa.String()),
        sa.column("day", sa.String()),
        sa.column("status", sa.String()),
        sa.column("ms", sa.Integer()),
    ).c
    occupancy = sa.table(
        "kpi_occupancy_daily",
        *(
            sa.column(n)
            for n in ("dim", "day", "key", "shard", "productive_ms", "staffed_ms", "state_rows")
        ),
    )
    productive = sa.func.sum(sa.case((a.status.in_(("busy", "wrap_up")), a.ms), else_=0))
    staffed = sa.func.sum(
        sa.case((a.status.in_(("busy", "wrap_up", "available", "reserved")), a.ms), else_=0)
    )
    for dim, key in (("all", sa.literal("")), ("agent", a.agent_id)):
        rows = sa.select(
            sa.literal(dim), a.day, key, sa.literal(0), productive, staffed, sa.func.count()
        )
        op.execute(
            occupancy.insert().from_select(
                ["dim", "day", "key", "shard", "productive_ms", "staffed_ms", "state_rows"],
                rows.group_by(a.day, key),
            )
        )


def sessions_table() -> Any:
    """The columns of service_sessions the KPI counters read (0005 reuses it)."""
    utc = vtax.db.UTCDateTime(timezone=True)
    return sa.table(
        "service_sessions",
        sa.column("joined_day", sa.String()),
        sa.column("agent_id", sa.String()),
        sa.column("category", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("language", sa.String()),
        sa.column("answered_at", utc),
        sa.column("outcome", sa.String()),
        sa.column("wait_ms", sa.Integer()),
        sa.column("talk_ms", sa.Integer()),
        sa.column("wrap_ms", sa.Integer()),
        sa.column("rating_score", sa.SmallInteger()),
        sa.column("summary_result", sa.String()),
        sa.column("recontacted", sa.Boolean()),
    )


def counter_sums(c: Any) -> tuple[dict[str, Any], Any]:
    """The counters as SQL sums over `sessions_table()` rows, and the wait bucket (0005
    reuses them: the same frozen definitions)."""
    answered = c.answered_at.is_not(None)
    abandoned = c.outcome == "abandoned"
    handled = sa.and_(answered, c.talk_ms.is_not(None))

    def count(cond: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

    def total(cond: Any, value: Any) -> Any:
        return sa.func.coalesce(
            sa.func.sum(sa.case((cond, sa.func.coalesce(value, 0)), else_=0)), 0
        )

    sums: dict[str, Any] = {
        "sessions": sa.func.count(),
        "answered": count(answered),
        "abandoned": count(abandoned),
        "wait_ms": total(answered, c.wait_ms),
        "handled": count(handled),
        "talk_ms": total(handled, c.talk_ms),
        "wrap_ms": total(handled, c.wrap_ms),
        "ratings": count(c.rating_score.is_not(None)),
        "satisfied": count(c.rating_score >= 4),
        "summarised": count(c.summary_result.is_not(None)),
        "resolved_first": count(sa.and_(c.summary_result == "resolved", c.recontacted.is_(False))),
    }
    for t in THRESHOLDS:
        sums[f"answered_le_{t}"] = count(sa.and_(answered, c.wait_ms <= t * 1000))
        sums[f"abandoned_le_{t}"] = count(sa.and_(abandoned, c.wait_ms <= t * 1000))
    bucket = sa.case(
        (c.wait_ms <= 0, 0), (c.wait_ms > 3_600_000, WAIT_CAP_S), else_=(c.wait_ms + 999) // 1000
    )
    return sums, bucket


def _backfill() -> None:
    s = sessions_table()
    daily = sa.table(
        "kpi_daily", *(sa.column(n) for n in ("dim", "day", "key", "shard", *COUNTERS))
    )
    wait = sa.table(
        "kpi_daily_wait", *(sa.column(n) for n in ("dim", "wait_s", "day", "key", "shard")),
        sa.column("answered"), sa.column("abandoned"),
    )  # fmt: skip
    c = s.c
    sums, bucket = counter_sums(c)
    waited = c.answered_at.is_not(None) | (c.outcome == "abandoned")
    keys = {
        "all": sa.literal(""),
        "agent": sa.func.coalesce(c.agent_id, ""),
        "category": c.category,
        "channel": c.channel,
        "language": c.language,
    }
    for dim in DIMS:
        key = keys[dim]
        main = (
            sa.select(
                sa.literal(dim), c.joined_day, key, sa.literal(0), *(sums[n] for n in COUNTERS)
            )
            .where(c.joined_day.is_not(None))
            .group_by(c.joined_day, key)
        )
        op.execute(daily.insert().from_select(["dim", "day", "key", "shard", *COUNTERS], main))
        hist = (
            sa.select(
                sa.literal(dim),
                bucket,
                c.joined_day,
                key,
                sa.literal(0),
                sums["answered"],
                sums["abandoned"],
            )
            .where(c.joined_day.is_not(None), c.wait_ms.is_not(None), waited)
            .group_by(bucket, c.joined_day, key)
        )
        op.execute(
            wait.insert().from_select(
                ["dim", "wait_s", "day", "key", "shard", "answered", "abandoned"], hist
            )
        )


def upgrade() -> None:
    _create()
    _backfill()
    _create_occupancy()


def downgrade() -> None:
    op.drop_table("kpi_occupancy_daily")
    op.drop_table("kpi_daily_wait")
    op.drop_table("kpi_daily")
