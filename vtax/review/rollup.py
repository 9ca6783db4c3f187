"""The per-day KPI rollup: additive counters per UTC day (the day a session joined) and per
dimension value, kept in the same transaction as every session step that changes a counted
column, so KPIs over long ranges read a few hundred rows instead of every session.

Tables (migration 0003):
- `kpi_daily(dim, day, key, <counters>)`: `dim` is `all` (key ''), `agent` (key: the agent
  id, '' for no agent), `category`, `channel` or `language`. The counters are the sums the
  raw KPI query takes (`vtax.review.kpi.KpiReport._sums`), and the within-T counts for the
  thresholds in `KPI_THRESHOLDS`.
- `kpi_daily_wait(dim, wait_s, day, key, answered, abandoned)`: a histogram of waits in whole
  seconds, ceil(wait_ms / 1000) (capped at 3601). For an integer T, wait_ms <= 1000 T exactly
  when ceil(wait_ms / 1000) <= T, so any T not in the list is served exactly from the
  nearest lower threshold column plus the buckets between it and T.
- `kpi_occupancy_daily(dim, day, key, productive_ms, staffed_ms, state_rows)`: agent-state
  time per day over all agents (`all`) and per agent, kept by `AgentStateHistory.record`
  next to `agent_state_days` (whose rows it sums; `state_rows` counts them, so a key is
  present exactly when the raw daily totals have a row for it).

Maintenance: each step takes a `snapshot` of the row's counted columns before and after it
changes the row, and `Deltas.write` upserts the difference (INSERT ... ON CONFLICT DO UPDATE
SET n = n + excluded.n, one statement per table, rows in a fixed order so that concurrent
writers cannot deadlock on them; PostgreSQL and SQLite). `rebuild` recomputes days from the
session rows in SQL (`vtax kpi rebuild`).
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from vtax.models import (
    KPI_COUNTERS,
    KPI_SHARDS,
    KPI_THRESHOLDS,
    KPI_WAIT_CAP_S,
    AgentStateDay,
    ServiceSession,
    kpi_daily,
    kpi_daily_wait,
    kpi_occupancy_daily,
)

DIMS = ("all", "agent", "category", "channel", "language")
# agent states (vtax.review.agent_history; repeated here, which that module imports)
PRODUCTIVE_STATES = ("busy", "wrap_up")
STAFFED_STATES = ("busy", "wrap_up", "available", "reserved")
ROLLUP_TABLES = (kpi_daily, kpi_daily_wait, kpi_occupancy_daily)
NO_KEY = ""  # the key of `all`, and of sessions no agent answered


@dataclass(frozen=True, slots=True)
class Snap:
    """The columns of one session row that the KPIs count."""

    day: str | None
    agent_id: str | None
    category: str
    channel: str
    language: str
    answered: bool
    abandoned: bool
    wait_ms: int | None
    talk_ms: int | None
    wrap_ms: int | None
    rating_score: int | None
    summary_result: str | None
    recontacted: bool


def snapshot(row: ServiceSession) -> Snap:
    return Snap(
        row.joined_day,
        row.agent_id,
        row.category,
        row.channel,
        row.language,
        row.answered_at is not None,
        row.outcome == "abandoned",
        row.wait_ms,
        row.talk_ms,
        row.wrap_ms,
        row.rating_score,
        row.summary_result,
        bool(row.recontacted),
    )


def wait_bucket(wait_ms: int) -> int:
    """ceil(wait_ms / 1000), 0 for no wait, KPI_WAIT_CAP_S above an hour."""
    if wait_ms <= 0:
        return 0
    if wait_ms > 3_600_000:
        return KPI_WAIT_CAP_S
    return (wait_ms + 999) // 1000


def counters(s: Snap) -> dict[str, int]:
    """The session's contribution to its rows (the same conditions as the raw query)."""
    handled = s.answered and s.talk_ms is not None
    c = {
        "sessions": 1,
        "answered": int(s.answered),
        "abandoned": int(s.abandoned),
        "wait_ms": (s.wait_ms or 0) if s.answered else 0,
        "handled": int(handled),
        "talk_ms": (s.talk_ms or 0) if handled else 0,
        "wrap_ms": (s.wrap_ms or 0) if handled else 0,
        "ratings": int(s.rating_score is not None),
        "satisfied": int(s.rating_score is not None and s.rating_score >= 4),
        "summarised": int(s.summary_result is not None),
        "resolved_first": int(s.summary_result == "resolved" and not s.recontacted),
    }
    for t in KPI_THRESHOLDS:
        within = s.wait_ms is not None and s.wait_ms <= t * 1000
        c[f"answered_le_{t}"] = int(s.answered and within)
        c[f"abandoned_le_{t}"] = int(s.abandoned and within)
    return c


def keys(s: Snap) -> tuple[tuple[str, str], ...]:
    return (
        ("all", NO_KEY),
        ("agent", s.agent_id or NO_KEY),
        ("category", s.category),
        ("channel", s.channel),
        ("language", s.language),
    )


class Deltas:
    """Counter changes of one transaction, merged per row, written at its end."""

    def __init__(self) -> None:
        self.main: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(KPI_COUNTERS, 0)
        )
        self.wait: dict[tuple[str, int, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, s: Snap | None, sign: int) -> None:
        if s is None or s.day is None:  # the raw query counts by joined_day only
            return
        c = counters(s)
        bucket = None if s.wait_ms is None else wait_bucket(s.wait_ms)
        for dim, key in keys(s):
            row = self.main[(dim, s.day, key)]
            for name, value in c.items():
                row[name] += sign * value
            if bucket is not None and (s.answered or s.abandoned):
                hist = self.wait[(dim, bucket, s.day, key)]
                hist[0] += sign * int(s.answered)
                hist[1] += sign * int(s.abandoned)

    def change(self, before: Snap | None, after: Snap | None) -> None:
        if before != after:
            self.add(before, -1)
            self.add(after, +1)

    async def write(self, db: AsyncSession | AsyncConnection) -> None:
        """Upsert the non-zero changes (sorted: a fixed lock order across writers)."""
        shard = random.randrange(KPI_SHARDS)
        main = [
            {"dim": d, "day": day, "key": k, "shard": _shard(d, k, shard), **c}
            for (d, day, k), c in sorted(self.main.items())
            if any(c.values())
        ]
        wait = [
            {
                "dim": d,
                "wait_s": b,
                "day": day,
                "key": k,
                "shard": _shard(d, k, shard),
                "answered": a,
                "abandoned": x,
            }
            for (d, b, day, k), (a, x) in sorted(self.wait.items())
            if a or x
        ]
        bind = db.get_bind() if isinstance(db, AsyncSession) else db
        dialect = bind.dialect.name
        for table, rows, names in (
            (kpi_daily, main, KPI_COUNTERS),
            (kpi_daily_wait, wait, ("answered", "abandoned")),
        ):
            if rows:
                await db.execute(_upsert(dialect, table, names), rows)
        self.main.clear()
        self.wait.clear()


async def write_change(db: AsyncSession, before: Snap | None, row: ServiceSession) -> None:
    """Write the change a step made to one session's counted columns."""
    deltas = Deltas()
    deltas.change(before, snapshot(row))
    await deltas.write(db)


class OccupancyDeltas:
    """Occupancy time an agent state change adds to its days (over all agents and for the
    agent), written at the end of the state change's transaction."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(self, agent_id: str, day: str, status: str, ms: int, new_row: bool) -> None:
        for dim, key in (("all", NO_KEY), ("agent", agent_id)):
            row = self.rows[(dim, day, key)]
            row[0] += ms if status in PRODUCTIVE_STATES else 0
            row[1] += ms if status in STAFFED_STATES else 0
            row[2] += int(new_row)

    async def write(self, db: AsyncSession) -> None:
        shard = random.randrange(KPI_SHARDS)
        rows = [
            {
                "dim": d,
                "day": day,
                "key": k,
                "shard": _shard(d, k, shard),
                "productive_ms": p,
                "staffed_ms": st,
                "state_rows": n,
            }
            for (d, day, k), (p, st, n) in sorted(self.rows.items())
        ]
        if rows:
            names = ("productive_ms", "staffed_ms", "state_rows")
            dialect = db.get_bind().dialect.name
            await db.execute(_upsert(dialect, kpi_occupancy_daily, names), rows)
        self.rows.clear()


def _shard(dim: str, key: str, shard: int) -> int:
    """The transaction's shard for rows many steps share, 0 for a real agent's rows."""
    return 0 if dim == "agent" and key != NO_KEY else shard


@functools.cache
def _upsert(dialect: str, table: Any, names: tuple[str, ...]) -> Any:
    """One statement per engine and table, executed with a list of rows (executemany): built
    and compiled once (a multi-row VALUES literal was compiled anew on every step, ~8 ms)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={n: table.c[n] + stmt.excluded[n] for n in names},
    )


# ---- recomputing from the session rows -------------------------------------------------------


def _key_expr(dim: str) -> Any:
    s = ServiceSession
    return {
        "all": literal(NO_KEY),
        "agent": func.coalesce(s.agent_id, NO_KEY),
        "category": s.category,
        "channel": s.channel,
        "language": s.language,
    }[dim]


def _day_range(day_from: date | None, day_to: date | None) -> list[Any]:
    s = ServiceSession
    where: list[Any] = [s.joined_day.is_not(None)]
    if day_from is not None:
        where.append(s.joined_day >= day_from.isoformat())
    if day_to is not None:
        where.append(s.joined_day <= day_to.isoformat())
    return where


def session_sums(within_ms: dict[str, int]) -> dict[str, Any]:
    """The KPI counters as SQL sums over session rows, by name (`COUNTS`), with
    `answered_<name>` / `abandoned_<name>` counted within each `within_ms` threshold. One
    definition for the raw KPI query and the rollup's backfill, so they cannot drift."""
    s = ServiceSession
    answered = s.answered_at.is_not(None)
    abandoned = s.outcome == "abandoned"
    handled = and_(answered, s.talk_ms.is_not(None))

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    def total(cond: Any, value: Any) -> Any:
        return func.coalesce(func.sum(case((cond, func.coalesce(value, 0)), else_=0)), 0)

    sums: dict[str, Any] = {
        "sessions": func.count(),
        "answered": count(answered),
        "abandoned": count(abandoned),
        "wait_ms": total(answered, s.wait_ms),
        "handled": count(handled),
        "talk_ms": total(handled, s.talk_ms),
        "wrap_ms": total(handled, s.wrap_ms),
        "ratings": count(s.rating_score.is_not(None)),
        "satisfied": count(s.rating_score >= 4),
        "summarised": count(s.summary_result.is_not(None)),
        "resolved_first": count(and_(s.summary_result == "resolved", s.recontacted.is_(False))),
    }
    for name, ms in within_ms.items():
        sums[f"answered_{name}"] = count(and_(answered, s.wait_ms <= ms))
        sums[f"abandoned_{name}"] = count(and_(abandoned, s.wait_ms <= ms))
    return sums


def backfill_statements(day_from: date | None = None, day_to: date | None = None) -> list[Any]:
    """INSERT ... SELECT statements that fill the rollup tables for the days in range (which
    must hold no rollup rows yet): one grouped scan of the sessions per dimension and table,
    and of the agent-state daily totals per dimension."""
    s = ServiceSession
    sums = session_sums({f"le_{t}": t * 1000 for t in KPI_THRESHOLDS})
    bucket = case(
        (s.wait_ms <= 0, 0),
        (s.wait_ms > 3_600_000, KPI_WAIT_CAP_S),
        else_=(s.wait_ms + 999) // 1000,
    )
    where = _day_range(day_from, day_to)
    out = []
    a = AgentStateDay
    productive = func.sum(case((a.status.in_(PRODUCTIVE_STATES), a.ms), else_=0))
    staffed = func.sum(case((a.status.in_(STAFFED_STATES), a.ms), else_=0))
    days: list[Any] = []
    if day_from is not None:
        days.append(a.day >= day_from.isoformat())
    if day_to is not None:
        days.append(a.day <= day_to.isoformat())
    for dim, key in (("all", literal(NO_KEY)), ("agent", a.agent_id)):
        occupancy = select(
            literal(dim), a.day, key, literal(0), productive, staffed, func.count()
        ).where(*days)
        out.append(
            kpi_occupancy_daily.insert().from_select(
                ["dim", "day", "key", "shard", "productive_ms", "staffed_ms", "state_rows"],
                occupancy.group_by(a.day, key),
            )
        )
    for dim in DIMS:
        key = _key_expr(dim)
        main = select(
            literal(dim), s.joined_day, key, literal(0), *(sums[n] for n in KPI_COUNTERS)
        ).where(*where)
        out.append(
            kpi_daily.insert().from_select(
                ["dim", "day", "key", "shard", *KPI_COUNTERS], main.group_by(s.joined_day, key)
            )
        )
        hist = (
            select(
                literal(dim),
                bucket,
                s.joined_day,
                key,
                literal(0),
                sums["answered"],
                sums["abandoned"],
            )
            .where(
                *where,
                s.wait_ms.is_not(None),
                s.answered_at.is_not(None) | (s.outcome == "abandoned"),
            )
            .group_by(bucket, s.joined_day, key)
        )
        out.append(
            kpi_daily_wait.insert().from_select(
                ["dim", "wait_s", "day", "key", "shard", "answered", "abandoned"], hist
            )
        )
    return out


async def rebuild(
    conn: AsyncConnection, day_from: date | None = None, day_to: date | None = None
) -> dict[str, int]:
    """Recompute the rollup of the days in range (all days when open) from the session rows
    and the agent-state daily totals, in the caller's transaction. On PostgreSQL the rollup
    tables are locked against the steps' upserts first (SHARE ROW EXCLUSIVE), so a step
    committing meanwhile is either in the scan or adds its delta after the rebuild, never
    both; SQLite has a single writer anyway (the DELETE takes it before the scan)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "LOCK TABLE kpi_daily, kpi_daily_wait, kpi_occupancy_daily "
                "IN SHARE ROW EXCLUSIVE MODE"
            )
        )
    for table in ROLLUP_TABLES:
        where: list[Any] = []
        if day_from is not None:
            where.append(table.c.day >= day_from.isoformat())
        if day_to is not None:
            where.append(table.c.day <= day_to.isoformat())
        await conn.execute(delete(table).where(*where))
    for stmt in backfill_statements(day_from, day_to):
        await conn.execute(stmt)
    counts = {}
    for table in ROLLUP_TABLES:
        q = select(func.count()).select_from(table)
        if day_from is not None:
            q = q.where(table.c.day >= day_from.isoformat())
        if day_to is not None:
            q = q.where(table.c.day <= day_to.isoformat())
        counts[table.name] = int((await conn.execute(q)).scalar_one())
    return counts
