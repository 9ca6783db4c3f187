"""The KPI rollup: additive counters per period (the service zone's day or month sessions
joined, `joined_day`; vtax/review/days.py) at ten
levels of detail, so KPIs over long ranges and any combination of filters read a few thousand
rows instead of every session.

Tables (migration 0005):
- `kpi_journal`: every committed step that changes a counted column of a session appends its
  signed counter changes here, in the step's own transaction: an INSERT, no row another step
  could hold, so concurrent steps never wait on each other (the earlier upserts of shared
  per-day rows locked them until commit; docs/benchmarks.md).
- `kpi_rollup(level, grain, period, agent, category, channel, language, <counters>)`: a
  folder (`Folder`, one per node, every second) moves journal rows into it, each to every
  level (`KPI_LEVELS`: total; each key; category x channel x language; the agent with each
  other key; all four) x 2 grains (day, month). The counters are the sums the raw KPI query takes
  (`session_sums`), and the within-T counts for the thresholds in `KPI_THRESHOLDS`.
- `kpi_rollup_wait`: a histogram of waits in whole seconds, ceil(wait_ms / 1000) (capped at
  3601), at the same levels and grains. For an integer T, wait_ms <= 1000 T exactly when
  ceil(wait_ms / 1000) <= T, so any T not in the list is served exactly from the nearest
  lower threshold column plus the buckets between it and T.
- `kpi_occupancy(grain, dim, period, key, productive_ms, staffed_ms, state_rows)`: agent-
  state time per day and month over all agents (`all`) and per agent, kept by
  `AgentStateHistory.record` next to `agent_state_days` (whose rows it sums; `state_rows`
  counts them, so a key is present exactly when the raw daily totals have a row for it).

A reader sums the rollup rows and the journal rows not folded yet in one statement, so a fold
committing meanwhile (which deletes journal rows and adds the same amounts to the rollup in
one transaction) never shows twice or not at all. Folders on several nodes take disjoint
journal rows (FOR UPDATE SKIP LOCKED) and upsert in a fixed order (no deadlock). `rebuild`
recomputes whole months from the session rows in SQL (`vtax kpi rebuild`).

The zone: `kpi_meta` row `timezone` names the zone whose days `joined_day`, the agent-state
daily totals and the rollup hold (migration 0015 computed them in the configured zone).
Readers and `rebuild` refuse when it is not the service zone (`check_zone`: never two zones
mixed, never one zone's days labelled as another's); `rezone` recomputes all three in a new
zone and stamps it (`vtax kpi rezone`, docs/review.md "Days").

One module (~610 lines) on purpose: the journal, the fold and the rebuild write the same
tables with the same level and grain arithmetic, on two dialects; they change together.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from vtax.errors import DomainError
from vtax.models import (
    KPI_ANY,
    KPI_COUNTERS,
    KPI_GRAINS,
    KPI_KEYS,
    KPI_LEVELS,
    KPI_SHARDS,
    KPI_THRESHOLDS,
    KPI_WAIT_CAP_S,
    AgentStateDay,
    ServiceSession,
    kpi_journal,
    kpi_meta,
    kpi_occupancy,
    kpi_rollup,
    kpi_rollup_wait,
)
from vtax.review.days import day_of

log = logging.getLogger(__name__)

# agent states (vtax.review.agent_history; repeated here, which that module imports)
PRODUCTIVE_STATES = ("busy", "wrap_up")
STAFFED_STATES = ("busy", "wrap_up", "available", "reserved")
NO_KEY = ""  # the agent of sessions no agent answered; the key of occupancy's `all`
FOLD_BATCH = 5000  # journal rows per fold transaction


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


JournalKey = tuple[str, str, str, str, str, int | None]  # day, agent, category, ..., wait_s


class Deltas:
    """Counter changes of one transaction, merged per journal row, appended at its end."""

    def __init__(self) -> None:
        self.rows: dict[JournalKey, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(KPI_COUNTERS, 0)
        )

    def add(self, s: Snap | None, sign: int) -> None:
        if s is None or s.day is None:  # the raw query counts by joined_day only
            return
        # the row's answered/abandoned counts go to this histogram bucket (if any)
        bucket = None
        if s.wait_ms is not None and (s.answered or s.abandoned):
            bucket = wait_bucket(s.wait_ms)
        row = self.rows[(s.day, s.agent_id or NO_KEY, s.category, s.channel, s.language, bucket)]
        for name, value in counters(s).items():
            row[name] += sign * value

    def change(self, before: Snap | None, after: Snap | None) -> None:
        if before != after:
            self.add(before, -1)
            self.add(after, +1)

    async def write(self, db: AsyncSession | AsyncConnection) -> None:
        """Append the non-zero changes to the journal (no lock on any shared row)."""
        rows = [
            {
                "day": day,
                "agent": agent,
                "category": category,
                "channel": channel,
                "language": language,
                "wait_s": wait_s,
                **c,
            }
            for (day, agent, category, channel, language, wait_s), c in self.rows.items()
            if any(c.values())
        ]
        if rows:
            await db.execute(_journal_insert(), rows)
        self.rows.clear()


async def write_change(db: AsyncSession, before: Snap | None, row: ServiceSession) -> None:
    """Write the change a step made to one session's counted columns."""
    deltas = Deltas()
    deltas.change(before, snapshot(row))
    await deltas.write(db)


class OccupancyDeltas:
    """Occupancy time an agent state change adds to its days and months (over all agents and
    for the agent), written at the end of the state change's transaction."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(self, agent_id: str, day: str, status: str, ms: int, new_row: bool) -> None:
        for grain in KPI_GRAINS:
            for dim, key in (("all", NO_KEY), ("agent", agent_id)):
                row = self.rows[(grain, dim, period(grain, day), key)]
                row[0] += ms if status in PRODUCTIVE_STATES else 0
                row[1] += ms if status in STAFFED_STATES else 0
                row[2] += int(new_row)

    async def write(self, db: AsyncSession) -> None:
        shard = random.randrange(KPI_SHARDS)
        rows = [
            {
                "grain": g,
                "dim": d,
                "period": p,
                "key": k,
                "shard": _shard(d, k, shard),
                "productive_ms": pr,
                "staffed_ms": st,
                "state_rows": n,
            }
            for (g, d, p, k), (pr, st, n) in sorted(self.rows.items())
        ]
        if rows:
            names = ("productive_ms", "staffed_ms", "state_rows")
            dialect = db.get_bind().dialect.name
            await db.execute(_upsert(dialect, kpi_occupancy, names), rows)
        self.rows.clear()


def _shard(dim: str, key: str, shard: int) -> int:
    """The transaction's shard for rows many steps share, 0 for a real agent's rows."""
    return 0 if dim == "agent" and key != NO_KEY else shard


@functools.cache
def _journal_insert() -> Any:
    return kpi_journal.insert()


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


# ---- folding the journal into the rollup --------------------------------------------------


def period(grain: str, day: str) -> str:
    return day if grain == "day" else day[:7]


async def fold(conn: AsyncConnection, limit: int = FOLD_BATCH) -> int:
    """Move up to `limit` journal rows (oldest first) into the rollup tables, in the caller's
    transaction; the number moved. On PostgreSQL one statement does it all in the database
    (`_pg_fold`); concurrent folders take disjoint rows (SKIP LOCKED). SQLite (a single
    writer) adds the rows up in Python."""
    if conn.dialect.name == "postgresql":
        return int((await conn.execute(_pg_fold(), {"limit": limit})).scalar_one())
    j = kpi_journal
    if (await conn.execute(select(j.c.id).limit(1))).first() is None:
        return 0  # a read: an idle node does not take SQLite's write lock every second
    oldest = select(j.c.id).order_by(j.c.id).limit(limit).scalar_subquery()
    taken = (await conn.execute(delete(j).where(j.c.id.in_(oldest)).returning(j))).all()
    if not taken:
        return 0
    # first per journal key (a session's steps share theirs), then fanned out to the levels
    merged: dict[tuple[Any, ...], list[int]] = {}
    for r in taken:
        key = (r.day, *(getattr(r, k) for k in KPI_KEYS), r.wait_s)
        _add(merged, key, [getattr(r, n) for n in KPI_COUNTERS])
    answered, abandoned = KPI_COUNTERS.index("answered"), KPI_COUNTERS.index("abandoned")
    main: dict[tuple[Any, ...], list[int]] = {}
    wait: dict[tuple[Any, ...], list[int]] = {}
    for (day, *keys, wait_s), values in merged.items():
        for level, kept in KPI_LEVELS.items():
            at = tuple(v if k in kept else KPI_ANY for k, v in zip(KPI_KEYS, keys, strict=True))
            for grain in KPI_GRAINS:
                p = period(grain, day)
                _add(main, (level, grain, p, *at), values)
                if wait_s is not None:
                    hist = wait.setdefault((level, grain, wait_s, p, *at), [0, 0])
                    hist[0] += values[answered]
                    hist[1] += values[abandoned]
    names = ("level", "grain", "period", *KPI_KEYS)
    wait_names = ("level", "grain", "wait_s", "period", *KPI_KEYS)
    rows = [
        dict(zip(names, k, strict=True)) | dict(zip(KPI_COUNTERS, c, strict=True))
        for k, c in sorted(main.items())
        if any(c)
    ]
    if rows:
        await conn.execute(_upsert("sqlite", kpi_rollup, KPI_COUNTERS), rows)
    hist_rows = [
        dict(zip(wait_names, k, strict=True)) | {"answered": a, "abandoned": x}
        for k, (a, x) in sorted(wait.items())
        if a or x
    ]
    if hist_rows:
        await conn.execute(_upsert("sqlite", kpi_rollup_wait, ("answered", "abandoned")), hist_rows)
    return len(taken)


def _add(sums: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...], values: list[int]) -> None:
    """Add `values` to the counters of `key` (new lists: one may be shared by several keys)."""
    held = sums.get(key)
    sums[key] = values if held is None else [x + y for x, y in zip(held, values, strict=True)]


@functools.cache
def _pg_fold() -> Any:
    """One PostgreSQL statement: take the oldest journal rows (SKIP LOCKED), spread each over
    every level and grain (a cross join with the levels as VALUES), add them up per rollup
    key and upsert both tables in key order (the same lock order in every folder); returns
    the number of journal rows moved. Built from KPI_LEVELS and KPI_COUNTERS, so it follows
    them (the SQLite path in `fold` is the reference the tests compare both engines with)."""
    levels = ", ".join(
        f"('{level}', '{grain}', {', '.join(str(k in kept).lower() for k in KPI_KEYS)})"
        for level, kept in KPI_LEVELS.items()
        for grain in KPI_GRAINS
    )
    keep = ", ".join(f"CASE WHEN lv.k_{k} THEN m.{k} ELSE '{KPI_ANY}' END AS {k}" for k in KPI_KEYS)
    counters = ", ".join(KPI_COUNTERS)
    key = f"level, grain, period, {', '.join(KPI_KEYS)}"
    wait_key = f"level, grain, wait_s, period, {', '.join(KPI_KEYS)}"
    sums = ", ".join(f"sum({n})" for n in KPI_COUNTERS)
    add = ", ".join(f"{n} = kpi_rollup.{n} + excluded.{n}" for n in KPI_COUNTERS)
    return text(f"""
        WITH moved AS (
            DELETE FROM kpi_journal WHERE id IN (
                SELECT id FROM kpi_journal ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
            RETURNING *
        ), lv (level, grain, {", ".join(f"k_{k}" for k in KPI_KEYS)}) AS (VALUES {levels}),
        spread AS (
            SELECT lv.level, lv.grain,
                   CASE WHEN lv.grain = 'day' THEN m.day ELSE substr(m.day, 1, 7) END AS period,
                   {keep}, m.wait_s, {", ".join(f"m.{n}" for n in KPI_COUNTERS)}
            FROM moved m CROSS JOIN lv
        ), main AS (
            INSERT INTO kpi_rollup ({key}, {counters})
            SELECT {key}, {sums} FROM spread GROUP BY {key} ORDER BY {key}
            ON CONFLICT ({key}) DO UPDATE SET {add}
        ), hist AS (
            INSERT INTO kpi_rollup_wait ({wait_key}, answered, abandoned)
            SELECT {wait_key}, sum(answered), sum(abandoned) FROM spread
            WHERE wait_s IS NOT NULL GROUP BY {wait_key} ORDER BY {wait_key}
            ON CONFLICT ({wait_key}) DO UPDATE SET
                answered = kpi_rollup_wait.answered + excluded.answered,
                abandoned = kpi_rollup_wait.abandoned + excluded.abandoned
        )  -- (a data-modifying WITH runs to completion whether or not it is read)
        SELECT count(*) FROM moved
    """)


async def fold_all(engine: AsyncEngine, limit: int = FOLD_BATCH) -> int:
    """Fold until the journal is empty (as this folder sees it), a transaction per batch."""
    moved = 0
    while True:
        async with engine.begin() as conn:
            n = await fold(conn, limit)
        moved += n
        if n < limit:
            return moved


class Folder:
    """A node's background folder: folds the journal every `interval_s`, and once more when
    stopped. Errors are logged and retried at the next tick (the journal keeps the rows, and
    readers count them meanwhile)."""

    def __init__(
        self, engine: AsyncEngine, interval_s: float = 1.0, batch: int = FOLD_BATCH
    ) -> None:
        self._engine = engine
        self._interval = interval_s
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kpi-folder")

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await fold_all(self._engine, self._batch)
            except Exception:
                log.exception("kpi fold failed; retrying")
            try:
                await asyncio.wait_for(self._stop.wait(), self._interval)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        await self._task
        self._task = None
        try:
            await fold_all(self._engine)
        except Exception:
            log.exception("kpi fold at shutdown failed; the journal keeps the rows")


# ---- recomputing from the session rows -------------------------------------------------------


def _key_exprs(level: str) -> list[Any]:
    """The session columns behind a level's key columns (KPI_ANY for those it does not keep)."""
    s = ServiceSession
    columns = {
        "agent": func.coalesce(s.agent_id, NO_KEY),
        "category": s.category,
        "channel": s.channel,
        "language": s.language,
    }
    kept = KPI_LEVELS[level]
    return [columns[k] if k in kept else literal(KPI_ANY) for k in KPI_KEYS]


def _period_expr(day: Any, grain: str) -> Any:
    """`period` in SQL from a YYYY-MM-DD column (see `period`)."""
    return day if grain == "day" else func.substr(day, 1, 7)


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
    must hold no rollup rows yet; month rows are only right for whole months): one grouped
    scan of the sessions per level, grain and table, and of the agent-state daily totals per
    dimension."""
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
    for grain in KPI_GRAINS:
        p = _period_expr(a.day, grain)
        for dim, key in (("all", literal(NO_KEY)), ("agent", a.agent_id)):
            occupancy = select(
                literal(grain), literal(dim), p, key, literal(0), productive, staffed, func.count()
            ).where(*days)
            out.append(
                kpi_occupancy.insert().from_select(
                    [
                        "grain",
                        "dim",
                        "period",
                        "key",
                        "shard",
                        "productive_ms",
                        "staffed_ms",
                        "state_rows",
                    ],
                    occupancy.group_by(p, key),
                )
            )
    for level in KPI_LEVELS:
        keys = _key_exprs(level)
        kept = [k for name, k in zip(KPI_KEYS, keys, strict=True) if name in KPI_LEVELS[level]]
        for grain in KPI_GRAINS:
            at = [literal(level), literal(grain)]
            p = _period_expr(s.joined_day, grain)
            main = select(*at, p, *keys, *(sums[n] for n in KPI_COUNTERS)).where(*where)
            out.append(
                kpi_rollup.insert().from_select(
                    ["level", "grain", "period", *KPI_KEYS, *KPI_COUNTERS],
                    main.group_by(p, *kept),
                )
            )
            hist = (
                select(*at, bucket, p, *keys, sums["answered"], sums["abandoned"])
                .where(
                    *where,
                    s.wait_ms.is_not(None),
                    s.answered_at.is_not(None) | (s.outcome == "abandoned"),
                )
                .group_by(bucket, p, *kept)
            )
            out.append(
                kpi_rollup_wait.insert().from_select(
                    ["level", "grain", "wait_s", "period", *KPI_KEYS, "answered", "abandoned"],
                    hist,
                )
            )
    return out


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def whole_months(day_from: date | None, day_to: date | None) -> tuple[date | None, date | None]:
    """The range widened to whole months (the month rows sum whole months)."""
    if day_from is not None:
        day_from = day_from.replace(day=1)
    if day_to is not None:
        day_to = next_month(day_to) - timedelta(days=1)
    return day_from, day_to


async def rebuild(
    conn: AsyncConnection,
    day_from: date | None = None,
    day_to: date | None = None,
    zone: str | None = None,
) -> dict[str, Any]:
    """Recompute the rollup of the months the range touches (all when open) from the session
    rows and the agent-state daily totals, in the caller's transaction; the journal rows of
    those days go (the session rows already hold their changes). On PostgreSQL the tables
    are locked first, the journal first (a folder holding journal rows then finishes before
    the rebuild reads), against the steps' appends and the folders (SHARE ROW EXCLUSIVE),
    so a step committing meanwhile is either in the scan or adds its change after the
    rebuild, never both; SQLite has a single writer anyway (the DELETE takes it). With a
    `zone`, refuses (`check_zone`) when the stored days are another zone's: rebuilding some
    months from them would label them as this zone's (`rezone` recomputes them)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "LOCK TABLE kpi_journal, kpi_rollup, kpi_rollup_wait, kpi_occupancy "
                "IN SHARE ROW EXCLUSIVE MODE"
            )
        )
    if zone is not None:
        await check_zone(conn, zone)
    day_from, day_to = whole_months(day_from, day_to)
    first = None if day_from is None else day_from.isoformat()
    last = None if day_to is None else day_to.isoformat()

    def within(column: Any, grain: str = "day") -> list[Any]:
        where: list[Any] = []
        if first is not None:
            where.append(column >= period(grain, first))
        if last is not None:
            where.append(column <= period(grain, last))
        return where

    await conn.execute(delete(kpi_journal).where(*within(kpi_journal.c.day)))
    for table in (kpi_rollup, kpi_rollup_wait, kpi_occupancy):
        for grain in KPI_GRAINS:
            await conn.execute(
                delete(table).where(table.c.grain == grain, *within(table.c.period, grain))
            )
    for stmt in backfill_statements(day_from, day_to):
        await conn.execute(stmt)
    counts: dict[str, Any] = {"from": first, "to": last}
    for table in (kpi_rollup, kpi_rollup_wait):
        q = select(func.count()).select_from(table)
        q = q.where(table.c.grain == "day", *within(table.c.period))
        counts[table.name] = int((await conn.execute(q)).scalar_one())
    return counts


# ---- the zone of the stored days -------------------------------------------------------------

ZONE_KEY = "timezone"


class ZoneMismatch(DomainError):
    """The stored days (joined_day, agent-state daily totals, rollup) are another zone's
    than the service zone. `unavailable` (503): the figures are back once an operator has run
    `vtax kpi rezone` (or set the zone back)."""

    def __init__(self, stored: str, wanted: str) -> None:
        super().__init__(
            "unavailable",
            f"the KPI days in the database are {stored} days, the service time zone is "
            f"{wanted}: stop the nodes and run `vtax kpi rezone` (docs/review.md, Days), or "
            f"set VTAX_SERVICE_TIMEZONE back to {stored}",
        )
        self.stored = stored
        self.wanted = wanted


async def stored_zone(conn: AsyncConnection) -> str | None:
    """The zone the stored days are in (None: no stamp, a database made without 0015)."""
    row = await conn.execute(select(kpi_meta.c.value).where(kpi_meta.c.name == ZONE_KEY))
    return row.scalar_one_or_none()


async def check_zone(conn: AsyncConnection, zone: str) -> None:
    """Raise ZoneMismatch unless the stored days are `zone`'s (one primary-key read)."""
    stored = await stored_zone(conn)
    if stored != zone:
        raise ZoneMismatch(stored or "unstamped", zone)


async def stamp_zone(conn: AsyncConnection, zone: str) -> None:
    if await stored_zone(conn) is None:
        await conn.execute(insert(kpi_meta).values(name=ZONE_KEY, value=zone))
    else:
        await conn.execute(update(kpi_meta).where(kpi_meta.c.name == ZONE_KEY).values(value=zone))


JOINED_DAY_BATCH = 5000


async def recompute_joined_days(conn: AsyncConnection, zone: ZoneInfo) -> int:
    """Set every session's `joined_day` to `zone`'s day of its `joined_at` (computed here, the
    same zone rules on both engines), in keyset pages of ids; the number of rows changed."""
    s = ServiceSession
    changed = 0
    after = ""
    set_day = update(s).where(s.id == bindparam("sid")).values(joined_day=bindparam("day"))
    while True:
        page = (
            await conn.execute(
                select(s.id, s.joined_at, s.joined_day)
                .where(s.id > after)
                .order_by(s.id)
                .limit(JOINED_DAY_BATCH)
            )
        ).all()
        if not page:
            return changed
        moves = [
            {"sid": sid, "day": day}
            for sid, joined_at, old in page
            if (day := day_of(joined_at, zone)) != old
        ]
        if moves:
            await conn.execute(set_day, moves)
            changed += len(moves)
        after = page[-1][0]


async def rezone(conn: AsyncConnection, zone: str) -> dict[str, Any]:
    """Move every stored day to `zone`, in the caller's transaction: `joined_day` of every
    session, the agent-state daily totals (replayed from the history), then the whole
    rollup rebuilt from them and the stamp set. On PostgreSQL the session and state tables
    are locked against writers first (SHARE ROW EXCLUSIVE; readers go on, and see the old
    days until the commit); run it with the nodes stopped anyway (a node still running with
    the old zone would write old-zone days after it: docs/review.md, Days)."""
    from vtax.review.agent_history import replay_state_days

    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "LOCK TABLE service_sessions, agent_state_changes, agent_state_days, "
                "agent_current_states, kpi_journal, kpi_rollup, kpi_rollup_wait, "
                "kpi_occupancy, kpi_meta IN SHARE ROW EXCLUSIVE MODE"
            )
        )
    tz = ZoneInfo(zone)
    before = await stored_zone(conn)
    sessions = await recompute_joined_days(conn, tz)
    state_days = await replay_state_days(conn, tz)
    counts = await rebuild(conn)
    await stamp_zone(conn, zone)
    return {
        "from_zone": before,
        "zone": zone,
        "sessions_moved": sessions,
        "agent_state_days": state_days,
        **counts,
    }
