"""Contact-centre KPIs per day, agent, category or channel, from the session records and the
agent state history. The database only sums whole milliseconds and counts; the ratios are
taken here, so SQLite and PostgreSQL give identical figures.

Definitions (a session belongs to the service zone's day it joined the queue, `joined_day`;
vtax/review/days.py; the agents' state time is cut at the same midnights):
- service level: answered within T / answered; and Asterisk's second formula,
  (answered within T + abandoned within T) / (answered + abandoned)
- ASA: mean wait of answered sessions
- AHT: (talk + the agent's wrap-up after it) / sessions that were answered and ended
- abandonment rate: abandoned / (answered + abandoned)
- CSAT: ratings of 4 or 5 / ratings
- FCR: summaries with result `resolved` whose taxpayer did not come back with the same
  category within 7 days / summaries
- occupancy (per agent, from state history): time busy or in wrap-up / time available,
  reserved, busy or in wrap-up (away and offline are not staffed time)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from vtax.models import (
    KPI_LEVELS,
    KPI_THRESHOLDS,
    AgentCurrentState,
    CallQualityRecord,
    ServiceSession,
    SessionRating,
    User,
    kpi_journal,
    kpi_occupancy,
    kpi_rollup,
    kpi_rollup_wait,
)
from vtax.review.agent_history import PRODUCTIVE, STAFFED, AgentStateHistory
from vtax.review.days import DEFAULT_ZONE, split_by_day, window, zone_of
from vtax.review.rollup import NO_KEY, check_zone, next_month, session_sums

GroupBy = Literal["day", "agent", "category", "channel"]
GROUPS: dict[str, Any] = {
    "day": ServiceSession.joined_day,
    "agent": ServiceSession.agent_id,
    "category": ServiceSession.category,
    "channel": ServiceSession.channel,
}
COUNTS = (
    "sessions",
    "answered",
    "answered_within",
    "abandoned",
    "abandoned_within",
    "wait_ms",
    "handled",
    "talk_ms",
    "wrap_ms",
    "ratings",
    "satisfied",
    "summarised",
    "resolved_first",
)


Source = Literal["auto", "rollup", "raw"]


@dataclass(frozen=True, slots=True)
class Plan:
    """The rollup rows that serve a query: a level, and the key columns filtered on."""

    level: str
    filters: dict[str, str]


FILTER_KEYS = (("agent_id", "agent"), ("category", "category"), ("channel", "channel"),
               ("language", "language"))  # fmt: skip


def rollup_plan(q: KpiQuery) -> Plan | None:
    """Which rollup level serves the query (the smallest that keeps every key the query
    groups or filters by), or None for the one case the rollup does not cover, an agent
    filter of '' (the rollup's "no agent", never a real agent id): the session rows are
    aggregated instead."""
    filters = {key: value for attr, key in FILTER_KEYS if (value := getattr(q, attr)) is not None}
    if filters.get("agent") == NO_KEY:
        return None
    used = set(filters) | ({q.group_by} if q.group_by != "day" else set())
    for level, kept in KPI_LEVELS.items():  # smallest first
        if used <= set(kept):
            return Plan(level, filters)
    raise AssertionError("the cube keeps every key")


def periods(q: KpiQuery) -> list[tuple[str, str, str]]:
    """(grain, first, last) ranges of rollup periods that cover the query's days exactly:
    the whole months inside it from month rows (unless the query groups by day), the days
    outside them from day rows."""
    first, last = q.day_from, q.day_to
    if q.group_by == "day":
        return [("day", first.isoformat(), last.isoformat())]
    month_start = first if first.day == 1 else next_month(first)
    month_end = (last + timedelta(days=1)).replace(day=1)  # exclusive
    if month_start >= month_end:
        return [("day", first.isoformat(), last.isoformat())]
    out = [("month", month_start.isoformat()[:7], (month_end - timedelta(days=1)).isoformat()[:7])]
    if first < month_start:
        out.append(("day", first.isoformat(), (month_start - timedelta(days=1)).isoformat()))
    if month_end <= last:
        out.append(("day", month_end.isoformat(), last.isoformat()))
    return out


def period_params(q: KpiQuery) -> tuple[tuple[str, ...], dict[str, str]]:
    """The grains of the query's period ranges (`periods`; part of a rollup statement's
    shape) and the values bound to it: `lo<i>`..`hi<i>` per range, `first`..`last` the days
    (the journal's)."""
    parts = periods(q)
    span = {"first": q.day_from.isoformat(), "last": q.day_to.isoformat()}
    for i, (_, lo, hi) in enumerate(parts):
        span[f"lo{i}"], span[f"hi{i}"] = lo, hi
    return tuple(grain for grain, _, _ in parts), span


@dataclass(frozen=True, slots=True)
class KpiQuery:
    day_from: date
    day_to: date  # inclusive
    group_by: GroupBy = "day"
    threshold_s: int = 20
    agent_id: str | None = None
    category: str | None = None
    channel: str | None = None
    language: str | None = None


def _ratio(num: int, den: int, digits: int = 4) -> float | None:
    return None if den == 0 else round(num / den, digits)


def figures(c: dict[str, int]) -> dict[str, Any]:
    """The KPIs from one bucket's counts and millisecond sums. A year by day makes 367 of
    these per request, so each count is read once and the ratios are taken inline (the
    rounding of `_ratio`, without its call)."""
    answered, abandoned, handled = c["answered"], c["abandoned"], c["handled"]
    ratings, summarised = c["ratings"], c["summarised"]
    talk_ms, wrap_ms = c["talk_ms"], c["wrap_ms"]
    offered = answered + abandoned
    within = c["answered_within"]
    return {
        "sessions": c["sessions"],
        "answered": answered,
        "abandoned": abandoned,
        "handled": handled,
        "service_level": round(within / answered, 4) if answered else None,
        "service_level_with_abandoned": (
            round((within + c["abandoned_within"]) / offered, 4) if offered else None
        ),
        "asa_s": round(c["wait_ms"] / (answered * 1000), 3) if answered else None,
        "aht_s": round((talk_ms + wrap_ms) / (handled * 1000), 3) if handled else None,
        "talk_s": round(talk_ms / (handled * 1000), 3) if handled else None,
        "wrap_up_s": round(wrap_ms / (handled * 1000), 3) if handled else None,
        "abandonment_rate": round(abandoned / offered, 4) if offered else None,
        "ratings": ratings,
        "csat": round(c["satisfied"] / ratings, 4) if ratings else None,
        "summarised": summarised,
        "fcr": round(c["resolved_first"] / summarised, 4) if summarised else None,
    }


_NAMES = select(User.id, User.display_name).where(User.id.in_(bindparam("ids", expanding=True)))


class KpiReport:
    """The KPIs of the service zone's days `zone` (the days `joined_day` and the rollup are
    in: every report checks the rollup's stamp first, `check_zone`)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], zone: str | ZoneInfo = DEFAULT_ZONE
    ) -> None:
        self._sessions = sessions
        self.zone = zone_of(zone)
        self._history = AgentStateHistory(sessions, self.zone)

    @staticmethod
    def _sums(threshold_ms: int) -> list[Any]:
        sums = session_sums({"within": threshold_ms})
        return [sums[name].label(name) for name in COUNTS]

    async def report(
        self, q: KpiQuery, now: datetime | None = None, source: Source = "auto"
    ) -> dict[str, Any]:
        """KPI rows for each group in the window, and the total: from the rollup (and the
        journal rows not folded yet) when it covers the query (`rollup_plan`), else from the
        session rows (`source` forces either; the figures are identical)."""
        plan = rollup_plan(q) if source != "raw" else None
        if source == "rollup" and plan is None:
            raise ValueError("the rollup does not cover this query")
        async with self._sessions() as session:
            db = await session.connection()  # Core: no ORM layer for the plain rows
            await check_zone(db, self.zone.key)
            if plan is not None:
                grains, span = period_params(q)
                grouped = await self._rollup_counts(db, q, plan, grains, span)
                total_counts = dict.fromkeys(COUNTS, 0)
                for _, counts in grouped:  # each session is in exactly one group
                    for name in COUNTS:
                        total_counts[name] += counts[name]
            else:
                grouped, total_counts = await self._raw_counts(db, q)
            # sorted here: the engines put NULL (unassigned) at different ends
            grouped.sort(key=lambda kc: (kc[0] is None, str(kc[0])))
            names: dict[str, str] = {}
            if q.group_by == "agent":
                ids = [key for key, _ in grouped if key is not None]
                if ids:
                    users = await db.execute(_NAMES, {"ids": ids})
                    names = {uid: name for uid, name in users.all()}
            if plan is not None:
                occupancy = await self._occupancy_from_rollup(db, q, now, grains, span)
        if plan is None:
            occupancy = await self._occupancy(q, now)
        rows = []
        for key, counts in grouped:
            row: dict[str, Any] = {"key": key, **figures(counts)}
            if q.group_by == "agent":
                row["label"] = names.get(key, "unassigned" if key is None else key)
            if q.group_by in ("agent", "day"):
                row["occupancy"] = occupancy.get(key)
            rows.append(row)
        if q.group_by == "agent":  # agents who were staffed but served nobody in the window
            seen = {r["key"] for r in rows}
            for agent, occ in sorted(occupancy.items(), key=lambda kv: str(kv[0])):
                if agent is not None and agent not in seen and agent != "*":
                    rows.append(
                        {"key": agent, **figures(dict.fromkeys(COUNTS, 0)), "occupancy": occ}
                    )
        total = figures(total_counts)
        total["occupancy"] = occupancy.get("*")
        return {
            "from": q.day_from.isoformat(),
            "to": q.day_to.isoformat(),
            "timezone": self.zone.key,
            "group_by": q.group_by,
            "threshold_s": q.threshold_s,
            "rows": rows,
            "total": total,
        }

    async def _raw_counts(
        self, db: AsyncConnection, q: KpiQuery
    ) -> tuple[list[tuple[Any, dict[str, int]]], dict[str, int]]:
        """The counts per group and in total, aggregated over the session rows."""
        s = ServiceSession
        key = GROUPS[q.group_by]
        where = [s.joined_day >= q.day_from.isoformat(), s.joined_day <= q.day_to.isoformat()]
        for value, column in (
            (q.agent_id, s.agent_id),
            (q.category, s.category),
            (q.channel, s.channel),
            (q.language, s.language),
        ):
            if value is not None:
                where.append(column == value)
        base = select(*self._sums(q.threshold_s * 1000)).select_from(s).where(*where)
        grouped = (await db.execute(base.add_columns(key.label("key")).group_by(key))).all()
        total_row = (await db.execute(base)).one()
        return (
            [(r.key, {name: int(getattr(r, name)) for name in COUNTS}) for r in grouped],
            {name: int(getattr(total_row, name)) for name in COUNTS},
        )

    @staticmethod
    async def _rollup_counts(
        db: AsyncConnection,
        q: KpiQuery,
        plan: Plan,
        grains: tuple[str, ...],
        span: dict[str, str],
    ) -> list[tuple[Any, dict[str, int]]]:
        """The counts per group from the rollup rows of the plan's level (month rows for
        whole months, day rows for the other days) and the journal rows not folded yet, one
        statement for the counters and one for the waits in (kept threshold, T]."""
        group = "period" if q.group_by == "day" else q.group_by
        t = q.threshold_s
        below = [x for x in KPI_THRESHOLDS if x <= t]
        base = below[-1] if below else None  # the largest kept threshold <= T
        shape = (plan.level, group, tuple(plan.filters), grains)
        params: dict[str, Any] = span | {f"f_{k}": v for k, v in plan.filters.items()}
        names, statement = _counts_statement(*shape, base)
        out: dict[Any, dict[str, int]] = {}
        for key, *values in (await db.execute(statement, params)).all():
            counts = dict.fromkeys(COUNTS, 0)
            counts.update(zip(names, map(int, values), strict=True))
            if counts["sessions"]:  # not a key whose sessions all moved away
                out[key] = counts
        if base != t:  # the waits in (base, T] from the histogram
            gap_lo = 0 if base is None else base + 1
            # a few buckets: one index descent each (dense short waits, only the periods in
            # range are read); a wide gap (T above 600 s): one range, long waits are rare
            wide = t + 1 - gap_lo >= 64
            params.update(
                {"gap_lo": gap_lo, "gap_hi": t} if wide else {"gap": list(range(gap_lo, t + 1))}
            )
            hist = _waits_statement(*shape, wide)
            for key, answered, abandoned in (await db.execute(hist, params)).all():
                if key in out:
                    out[key]["answered_within"] += int(answered or 0)
                    out[key]["abandoned_within"] += int(abandoned or 0)
        unassigned = q.group_by == "agent"
        return [(None if unassigned and k == NO_KEY else k, c) for k, c in out.items()]

    async def _occupancy_from_rollup(
        self,
        db: AsyncConnection,
        q: KpiQuery,
        now: datetime | None,
        grains: tuple[str, ...],
        span: dict[str, str],
    ) -> dict[Any, float | None]:
        """The same figures as `_occupancy`, from `kpi_occupancy` (a row per month or day, or
        per agent and month or day, instead of one per agent, day and state), plus each
        agent's current, still open state."""
        first, last = span["first"], span["last"]
        params: dict[str, Any] = span | {
            "dim": "agent" if q.agent_id is not None or q.group_by == "agent" else "all",
        }
        if q.agent_id is not None:
            params["agent"] = q.agent_id
        closed_q, current_q = _occupancy_statements(q.group_by, q.agent_id is not None, grains)
        closed = (await db.execute(closed_q, params)).all()
        open_ = (await db.execute(current_q, params)).all()
        spent: dict[Any, list[int]] = {}  # key: [productive, staffed]
        for key, productive, staffed, state_rows in closed:
            if not state_rows:
                continue
            for k in {key, "*"}:
                acc = spent.setdefault(k, [0, 0])
                acc[0] += int(productive)
                acc[1] += int(staffed)
        start, end = window(q.day_from, q.day_to, self.zone)
        until = min(now or datetime.now(UTC), end)
        for agent, status, since in open_:
            for day, ms in split_by_day(max(since, start), until, self.zone):
                if first <= day <= last:
                    keys = {"*", day if q.group_by == "day" else agent}
                    if q.group_by not in ("day", "agent"):
                        keys = {"*"}
                    for k in keys:
                        acc = spent.setdefault(k, [0, 0])
                        acc[0] += ms if status in PRODUCTIVE else 0
                        acc[1] += ms if status in STAFFED else 0
        return {k: _ratio(p, st) for k, (p, st) in spent.items()}

    async def _occupancy(self, q: KpiQuery, now: datetime | None) -> dict[Any, float | None]:
        """Occupancy keyed by agent id (group_by agent) or by day (group_by day), and "*" for
        the whole window; from the agent state daily totals, up to `now`."""
        by: Literal["day", "agent"] | None = (
            q.group_by if q.group_by in ("day", "agent") else None  # type: ignore[assignment]
        )
        spent = await self._history.totals(
            q.day_from, q.day_to, now or datetime.now(UTC), q.agent_id, by
        )
        return {
            key: _ratio(
                sum(states.get(k, 0) for k in PRODUCTIVE), sum(states.get(k, 0) for k in STAFFED)
            )
            for key, states in spent.items()
        }


# ---- the rollup's statements, built once per query shape ----------------------------------
# A shape is what changes the SQL (level, group, filtered keys, the grains of the periods,
# the kept threshold); dates, filter values and wait buckets are bound parameters. Building a
# year-long union per request cost more than running it.


def _union(
    table: Any,
    columns: list[tuple[str, str]],
    level: str,
    group: str,
    filters: tuple[str, ...],
    grains: tuple[str, ...],
    extra: Any = None,
) -> Any:
    """The rows of `table` at `level` in each period range (`lo<i>`..`hi<i>` of `grains[i]`)
    and the journal's rows of the days `first`..`last`, summed per key."""
    j = kpi_journal

    def where(t: Any) -> list[Any]:
        return [t.c[k] == bindparam(f"f_{k}") for k in filters] + (
            [] if extra is None else [extra(t)]
        )

    selects = [
        select(table.c[group].label("key"), *(table.c[c].label(n) for n, c in columns)).where(
            table.c.level == level,
            table.c.grain == grain,
            table.c.period.between(bindparam(f"lo{i}"), bindparam(f"hi{i}")),
            *where(table),
        )
        for i, grain in enumerate(grains)
    ]
    key = j.c.day if group == "period" else j.c[group]
    selects.append(
        select(key.label("key"), *(j.c[c].label(n) for n, c in columns)).where(
            j.c.day.between(bindparam("first"), bindparam("last")), *where(j)
        )
    )
    u = union_all(*selects).subquery()
    return select(u.c.key, *(func.sum(u.c[n]) for n, _ in columns)).group_by(u.c.key)


@lru_cache(maxsize=1024)
def _counts_statement(
    level: str, group: str, filters: tuple[str, ...], grains: tuple[str, ...], base: int | None
) -> tuple[tuple[str, ...], Any]:
    """The counters statement of a shape, and the COUNTS its columns after the key are; the
    `_within` counts are the kept threshold `base`'s (none without one)."""
    sources = {n: n for n in COUNTS if not n.endswith("_within")}
    if base is not None:
        sources["answered_within"] = f"answered_le_{base}"
        sources["abandoned_within"] = f"abandoned_le_{base}"
    columns = list(sources.items())
    return tuple(sources), _union(kpi_rollup, columns, level, group, filters, grains)


@lru_cache(maxsize=1024)
def _waits_statement(
    level: str, group: str, filters: tuple[str, ...], grains: tuple[str, ...], wide: bool
) -> Any:
    """Answered and abandoned sessions per key whose wait bucket is in `gap` (a list), or
    in `gap_lo`..`gap_hi` when `wide`."""

    def in_gap(t: Any) -> Any:
        if wide:
            return t.c.wait_s.between(bindparam("gap_lo"), bindparam("gap_hi"))
        return t.c.wait_s.in_(bindparam("gap", expanding=True))

    columns = [("answered", "answered"), ("abandoned", "abandoned")]
    return _union(kpi_rollup_wait, columns, level, group, filters, grains, in_gap)


@lru_cache(maxsize=256)
def _occupancy_statements(
    group_by: str, one_agent: bool, grains: tuple[str, ...]
) -> tuple[Any, Any]:
    """Occupancy time per key (day, agent or "*") from `kpi_occupancy` rows of `dim`
    (and of `agent` when `one_agent`), and the agents' current states."""
    o, c = kpi_occupancy, AgentCurrentState
    where = [o.c.dim == bindparam("dim")]
    if one_agent:
        where.append(o.c.key == bindparam("agent"))
    group = {"day": o.c.period, "agent": o.c.key}.get(group_by, literal("*"))
    parts = union_all(
        *(
            select(group.label("key"), o.c.productive_ms, o.c.staffed_ms, o.c.state_rows).where(
                o.c.grain == grain,
                o.c.period.between(bindparam(f"lo{i}"), bindparam(f"hi{i}")),
                *where,
            )
            for i, grain in enumerate(grains)
        )
    ).subquery()
    closed = select(
        parts.c.key,
        func.sum(parts.c.productive_ms),
        func.sum(parts.c.staffed_ms),
        func.sum(parts.c.state_rows),
    ).group_by(parts.c.key)
    current = select(c.agent_id, c.status, c.since)
    if one_agent:
        current = current.where(c.agent_id == bindparam("agent"))
    return closed, current


# ---- call quality beside the taxpayer's av_quality rating (docs/review.md, "Call quality") ---


async def call_quality_kpi(
    sessions: async_sessionmaker[AsyncSession],
    day_from: date,
    day_to: date,
    group_by: str,
    zone: str | ZoneInfo = DEFAULT_ZONE,
) -> dict[str, Any]:
    """Per group of sessions that joined in [day_from, day_to] (the zone's days, `joined_day`,
    as the rollup's):
    how many have a call-quality summary, the mean of their median MOS, how many were poor,
    and the taxpayers' own av_quality ratings (count, mean). From the session rows (no
    rollup: one row per session in three tables joined by primary key)."""
    s, q, r = ServiceSession, CallQualityRecord, SessionRating
    key = GROUPS[group_by]
    query = (
        select(
            key,
            func.count(s.id),
            func.count(q.session_id),
            func.sum(q.mos_median),
            func.count(q.mos_median),
            func.sum(case_poor(q.level)),
            func.count(r.av_quality),
            func.sum(r.av_quality),
        )
        .select_from(s)
        .outerjoin(q, q.session_id == s.id)
        .outerjoin(r, r.session_id == s.id)
        .where(s.joined_day >= day_from.isoformat(), s.joined_day <= day_to.isoformat())
        .group_by(key)
        .order_by(key)
    )
    zone = zone_of(zone)
    async with sessions() as db:
        await check_zone(await db.connection(), zone.key)
        rows = (await db.execute(query)).all()
    out = [{"key": row[0], **_quality_figures(row[1:])} for row in rows]
    totals = [sum((row[i] or 0) for row in rows) for i in range(1, 8)]
    return {
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        "timezone": zone.key,
        "group_by": group_by,
        "rows": out,
        "total": _quality_figures(totals),
    }


def case_poor(level: Any) -> Any:
    return case((level == "poor", 1), else_=0)


def _quality_figures(row: Any) -> dict[str, Any]:
    sessions, measured, mos_sum, mos_n, poor, av_n, av_sum = (v or 0 for v in row)
    return {
        "sessions": int(sessions),
        "measured": int(measured),
        "mos_mean": round(float(mos_sum) / mos_n, 2) if mos_n else None,
        "poor_sessions": int(poor),
        "poor_rate": round(int(poor) / measured, 4) if measured else None,
        "av_ratings": int(av_n),
        "av_quality_mean": round(int(av_sum) / av_n, 2) if av_n else None,
    }
