"""KPI rollup in levels and grains, fed through a journal

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 21:30:00

Replaces `kpi_daily` / `kpi_daily_wait` (one dimension per row, kept by upserts in every
step's transaction) with `kpi_journal` (steps append their signed counter changes; a folder
moves them on) and `kpi_rollup` / `kpi_rollup_wait` (levels total, each key, category x
channel x language, an agent and one other key, all four; grains day and month;
vtax/review/rollup.py). Fills the new tables from the sessions that exist with INSERT ...
SELECT, one grouped scan per level, grain and table, the same SQL on SQLite and PostgreSQL,
with 0003's frozen definitions of the counters. The levels, key columns and table shapes are
written out here, not imported from vtax.models: what this migration did must not change
when the models do.
`kpi_occupancy_daily` becomes `kpi_occupancy` with a grain (day rows copied, month rows
summed from them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_spec = importlib.util.spec_from_file_location(
    "vtax_migration_0003", Path(__file__).with_name("0003_kpi_rollup.py")
)
assert _spec is not None and _spec.loader is not None
m0003: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(m0003)

COUNTERS: tuple[str, ...] = m0003.COUNTERS
SUMS: set[str] = m0003.SUMS
KEYS = ("agent", "category", "channel", "language")
LEVELS = {
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
GRAINS = ("day", "month")
ANY = "*"


def _keys() -> list[sa.Column[Any]]:
    return [
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("category", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("language", sa.String(16), primary_key=True),
    ]


def _counters() -> list[sa.Column[Any]]:
    return [
        sa.Column(n, sa.BigInteger() if n in SUMS else sa.Integer(), nullable=False)
        for n in COUNTERS
    ]


def _create() -> None:
    op.create_table(
        "kpi_journal",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("wait_s", sa.Integer(), nullable=True),
        *_counters(),
        comment="Signed KPI counter changes of committed steps, not yet folded into kpi_rollup",
    )
    op.create_table(
        "kpi_rollup",
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("grain", sa.String(8), primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        *_keys(),
        *_counters(),
        comment="Additive KPI counters per level, grain and period; folded from kpi_journal",
    )
    op.create_table(
        "kpi_rollup_wait",
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("grain", sa.String(8), primary_key=True),
        sa.Column("wait_s", sa.Integer(), primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        *_keys(),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        comment="Histogram of waits in whole seconds per level, grain and period",
    )


def _indexes() -> None:
    """After the fill (one sort per index instead of maintaining them row by row)."""
    for k in KEYS:
        op.create_index(f"ix_kpi_rollup_{k}", "kpi_rollup", ["level", "grain", k, "period"])
        op.create_index(
            f"ix_kpi_rollup_wait_{k}", "kpi_rollup_wait", ["level", "grain", k, "wait_s", "period"]
        )


def _fill() -> None:
    s = m0003.sessions_table()
    c = s.c
    sums, bucket = m0003.counter_sums(c)
    columns = {
        "agent": sa.func.coalesce(c.agent_id, ""),
        "category": c.category,
        "channel": c.channel,
        "language": c.language,
    }
    rollup = sa.table(
        "kpi_rollup", *(sa.column(n) for n in ("level", "grain", "period", *KEYS, *COUNTERS))
    )
    wait = sa.table(
        "kpi_rollup_wait",
        *(sa.column(n) for n in ("level", "grain", "wait_s", "period", *KEYS)),
        sa.column("answered"),
        sa.column("abandoned"),
    )
    waited = c.answered_at.is_not(None) | (c.outcome == "abandoned")
    for level, kept in LEVELS.items():
        keys = [columns[k] if k in kept else sa.literal(ANY) for k in KEYS]
        group = [columns[k] for k in KEYS if k in kept]
        for grain in GRAINS:
            period = c.joined_day if grain == "day" else sa.func.substr(c.joined_day, 1, 7)
            at = [sa.literal(level), sa.literal(grain)]
            main = (
                sa.select(*at, period, *keys, *(sums[n] for n in COUNTERS))
                .where(c.joined_day.is_not(None))
                .group_by(period, *group)
            )
            op.execute(
                rollup.insert().from_select(["level", "grain", "period", *KEYS, *COUNTERS], main)
            )
            hist = (
                sa.select(*at, bucket, period, *keys, sums["answered"], sums["abandoned"])
                .where(c.joined_day.is_not(None), c.wait_ms.is_not(None), waited)
                .group_by(bucket, period, *group)
            )
            op.execute(
                wait.insert().from_select(
                    ["level", "grain", "wait_s", "period", *KEYS, "answered", "abandoned"], hist
                )
            )


OCCUPANCY = ("productive_ms", "staffed_ms", "state_rows")


def _occupancy() -> None:
    op.create_table(
        "kpi_occupancy",
        sa.Column("grain", sa.String(8), primary_key=True),
        sa.Column("dim", sa.String(10), primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("shard", sa.SmallInteger(), primary_key=True),
        sa.Column("productive_ms", sa.BigInteger(), nullable=False),
        sa.Column("staffed_ms", sa.BigInteger(), nullable=False),
        sa.Column("state_rows", sa.Integer(), nullable=False),
        comment="Occupancy time per UTC day and month, over all agents and per agent "
        "(from agent_state_days)",
    )
    daily = sa.table("kpi_occupancy_daily", *(sa.column(n) for n in ("dim", "day", "key")),
                     *(sa.column(n) for n in OCCUPANCY))  # fmt: skip
    occupancy = sa.table(
        "kpi_occupancy",
        *(sa.column(n) for n in ("grain", "dim", "period", "key", "shard", *OCCUPANCY)),
    )
    d = daily.c
    columns = ["grain", "dim", "period", "key", "shard", *OCCUPANCY]
    for grain in GRAINS:
        period = d.day if grain == "day" else sa.func.substr(d.day, 1, 7)
        rows = sa.select(
            sa.literal(grain), d.dim, period, d.key, sa.literal(0),
            *(sa.func.sum(d[n]) for n in OCCUPANCY),
        ).group_by(d.dim, period, d.key)  # fmt: skip
        op.execute(occupancy.insert().from_select(columns, rows))
    op.create_index("ix_kpi_occupancy_key", "kpi_occupancy", ["grain", "dim", "key", "period"])
    op.drop_table("kpi_occupancy_daily")


def upgrade() -> None:
    _create()
    _fill()
    _indexes()
    op.drop_table("kpi_daily_wait")
    op.drop_table("kpi_daily")
    _occupancy()


def downgrade() -> None:
    op.drop_table("kpi_rollup_wait")
    op.drop_table("kpi_rollup")
    op.drop_table("kpi_journal")
    m0003._create()
    m0003._backfill()
    m0003._create_occupancy()  # from agent_state_days, as 0003 did
    op.drop_table("kpi_occupancy")
