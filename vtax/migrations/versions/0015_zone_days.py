"""KPI days in the service time zone

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 18:30:00

Until now every stored day was a UTC day: `service_sessions.joined_day`, the agent-state
daily totals (`agent_state_days`, cut at UTC midnight) and the KPI rollup keyed by them. A
supervisor's day is the service zone's (Asia/Shanghai by default: its day begins at 16:00 UTC
the day before). This revision moves them to the configured zone
(`VTAX_SERVICE_TIMEZONE`, passed by `vtax.db.migrate`; the environment variable or the
default when alembic runs on its own):

- `joined_day` of every session recomputed from `joined_at` in the zone (in Python, with
  zoneinfo: the same rules on SQLite and PostgreSQL);
- `agent_state_days` replayed from the append-only history `agent_state_changes` (each
  change to the agent's next one, cut at the zone's midnights);
- the rollup (`kpi_journal` emptied, `kpi_rollup`, `kpi_rollup_wait`, `kpi_occupancy`)
  rebuilt from them with 0005's frozen fill;
- the new table `kpi_meta` keeps the zone (`timezone`), which the code checks before it reads
  or rebuilds the rollup (vtax/review/rollup.py). `vtax kpi rezone` does the same later.

The downgrade moves everything back to UTC days and drops `kpi_meta`. The definitions here are
frozen copies (0005 is loaded for its fill, as 0005 loads 0003): a later change of the
application code must not change what this revision did.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_spec = importlib.util.spec_from_file_location(
    "vtax_migration_0005", Path(__file__).with_name("0005_kpi_levels.py")
)
assert _spec is not None and _spec.loader is not None
m0005: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(m0005)

DEFAULT_ZONE = "Asia/Shanghai"
BATCH = 5000
PRODUCTIVE = ("busy", "wrap_up")
STAFFED = ("busy", "wrap_up", "available", "reserved")
GRAINS = ("day", "month")


def configured_zone() -> str:
    """The zone `vtax.db.migrate` passed (`vtax.service_timezone`), else the environment's,
    else the default; an unknown name stops the migration."""
    config = op.get_context().config
    name = (config.get_main_option("vtax.service_timezone") if config is not None else None) or (
        os.environ.get("VTAX_SERVICE_TIMEZONE") or DEFAULT_ZONE
    )
    ZoneInfo(name)  # raises on an unknown zone
    return name


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _split(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[tuple[str, int]]:
    while start < end:
        local = start.astimezone(zone).date()
        piece_end = min(end, _day_start(local + timedelta(days=1), zone))
        yield local.isoformat(), round((piece_end - start).total_seconds() * 1000)
        start = piece_end


def _joined_days(conn: sa.Connection, zone: ZoneInfo) -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    s = sa.table(
        "service_sessions",
        sa.column("id", sa.String()),
        sa.column("joined_at", utc),
        sa.column("joined_day", sa.String()),
    )
    set_day = s.update().where(s.c.id == sa.bindparam("sid")).values(joined_day=sa.bindparam("day"))
    after = ""
    while True:
        page = conn.execute(
            sa.select(s.c.id, s.c.joined_at, s.c.joined_day)
            .where(s.c.id > after)
            .order_by(s.c.id)
            .limit(BATCH)
        ).all()
        if not page:
            return
        moves = [
            {"sid": sid, "day": day}
            for sid, joined_at, old in page
            if (day := joined_at.astimezone(zone).date().isoformat()) != old
        ]
        if moves:
            conn.execute(set_day, moves)
        after = page[-1][0]


def _state_days(conn: sa.Connection, zone: ZoneInfo) -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    h = sa.table(
        "agent_state_changes",
        sa.column("id", sa.Integer()),
        sa.column("agent_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("at", utc),
    )
    d = sa.table(
        "agent_state_days",
        sa.column("agent_id", sa.String()),
        sa.column("day", sa.String()),
        sa.column("status", sa.String()),
        sa.column("ms", sa.Integer()),
    )
    conn.execute(d.delete())
    agents = conn.execute(sa.select(h.c.agent_id).distinct().order_by(h.c.agent_id)).scalars()
    for agent in list(agents):
        changes = conn.execute(
            sa.select(h.c.status, h.c.at).where(h.c.agent_id == agent).order_by(h.c.at, h.c.id)
        ).all()
        totals: dict[tuple[str, str], int] = {}
        for (status, since), (_, until) in itertools.pairwise(changes):
            for day, ms in _split(since, until, zone):
                totals[(day, status)] = totals.get((day, status), 0) + ms
        if totals:
            conn.execute(
                d.insert(),
                [
                    {"agent_id": agent, "day": day, "status": status, "ms": ms}
                    for (day, status), ms in sorted(totals.items())
                ],
            )


def _occupancy() -> None:
    """kpi_occupancy from agent_state_days, day and month rows (as the application's
    backfill, frozen here)."""
    a = sa.table(
        "agent_state_days",
        sa.column("agent_id", sa.String()),
        sa.column("day", sa.String()),
        sa.column("status", sa.String()),
        sa.column("ms", sa.Integer()),
    ).c
    names = ("grain", "dim", "period", "key", "shard", "productive_ms", "staffed_ms", "state_rows")
    occupancy = sa.table("kpi_occupancy", *(sa.column(n) for n in names))
    productive = sa.func.sum(sa.case((a.status.in_(PRODUCTIVE), a.ms), else_=0))
    staffed = sa.func.sum(sa.case((a.status.in_(STAFFED), a.ms), else_=0))
    for grain in GRAINS:
        period = a.day if grain == "day" else sa.func.substr(a.day, 1, 7)
        for dim, key in (("all", sa.literal("")), ("agent", a.agent_id)):
            rows = sa.select(
                sa.literal(grain), sa.literal(dim), period, key, sa.literal(0),
                productive, staffed, sa.func.count(),
            ).group_by(period, key)  # fmt: skip
            op.execute(occupancy.insert().from_select(list(names), rows))


def _move(zone_name: str) -> None:
    """Every stored day to `zone_name`'s, and the rollup rebuilt from them."""
    zone = ZoneInfo(zone_name)
    conn = op.get_bind()
    _joined_days(conn, zone)
    _state_days(conn, zone)
    for table in ("kpi_journal", "kpi_rollup", "kpi_rollup_wait", "kpi_occupancy"):
        op.execute(sa.table(table).delete())
    m0005._fill()
    _occupancy()


def upgrade() -> None:
    zone = configured_zone()
    meta = op.create_table(
        "kpi_meta",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(64), nullable=False),
        comment="`timezone`: the IANA zone whose days joined_day, agent_state_days and the KPI "
        "rollup hold (vtax/review/rollup.py; `vtax kpi rezone` changes it)",
    )
    _move(zone)
    assert meta is not None
    op.bulk_insert(meta, [{"name": "timezone", "value": zone}])


def downgrade() -> None:
    _move("UTC")  # what the code before this revision assumes
    op.drop_table("kpi_meta")
