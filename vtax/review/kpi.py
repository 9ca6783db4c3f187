"""Contact-centre KPIs per day, agent, category or channel, from the session records and the
agent state history. The database only sums whole milliseconds and counts; the ratios are
taken here, so SQLite and PostgreSQL give identical figures.

Definitions (a session belongs to the UTC day it joined the queue):
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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.models import (
    KPI_LEVELS,
    KPI_THRESHOLDS,
    AgentCurrentState,
    ServiceSession,
    User,
    kpi_journal,
    kpi_occupancy,
    kpi_rollup,
    kpi_rollup_wait,
)
from vtax.review.agent_history import PRODUCTIVE, STAFFED, AgentStateHistory, split_by_day
from vtax.review.rollup import NO_KEY, next_month, session_sums

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

    @property
    def window(self) -> tuple[datetime, datetime]:
        start = datetime.combine(self.day_from, time(0), UTC)
        return start, datetime.combine(self.day_to + timedelta(days=1), time(0), UTC)


def _ratio(num: int, den: int, digits: int = 4) -> float | None:
    return None if den == 0 else round(num / den, digits)


def figures(c: dict[str, int]) -> dict[str, Any]:
    """The KPIs from one bucket's counts and millisecond sums."""
    offered = c["answered"] + c["abandoned"]
    return {
        "sessions": c["sessions"],
        "answered": c["answered"],
        "abandoned": c["abandoned"],
        "handled": c["handled"],
        "service_level": _ratio(c["answered_within"], c["answered"]),
        "service_level_2": _ratio(c["answered_within"] + c["abandoned_within"], offered),
        "asa_s": _ratio(c["wait_ms"], c["answered"] * 1000, 3),
        "aht_s": _ratio(c["talk_ms"] + c["wrap_ms"], c["handled"] * 1000, 3),
        "talk_s": _ratio(c["talk_ms"], c["handled"] * 1000, 3),
        "wrap_up_s": _ratio(c["wrap_ms"], c["handled"] * 1000, 3),
        "abandonment_rate": _ratio(c["abandoned"], offered),
        "ratings": c["ratings"],
        "csat": _ratio(c["satisfied"], c["ratings"]),
        "summarised": c["summarised"],
        "fcr": _ratio(c["resolved_first"], c["summarised"]),
    }


class KpiReport:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._history = AgentStateHistory(sessions)

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
        async with self._sessions() as db:
            if plan is not None:
                grouped = await self._rollup_counts(db, q, plan)
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
                    users = await db.execute(
                        select(User.id, User.display_name).where(User.id.in_(ids))
                    )
                    names = {uid: name for uid, name in users.all()}
        if plan is not None:
            occupancy = await self._occupancy_from_rollup(q, now)
        else:
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
            "group_by": q.group_by,
            "threshold_s": q.threshold_s,
            "rows": rows,
            "total": total,
        }

    async def _raw_counts(
        self, db: AsyncSession, q: KpiQuery
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
        db: AsyncSession, q: KpiQuery, plan: Plan
    ) -> list[tuple[Any, dict[str, int]]]:
        """The counts per group from the rollup rows of the plan's level (month rows for
        whole months, day rows for the other days) and the journal rows not folded yet, one
        statement for the counters and one for the waits in (kept threshold, T]."""
        r, w, j = kpi_rollup, kpi_rollup_wait, kpi_journal
        parts = periods(q)
        first, last = q.day_from.isoformat(), q.day_to.isoformat()
        group = "period" if q.group_by == "day" else q.group_by
        t = q.threshold_s
        below = [x for x in KPI_THRESHOLDS if x <= t]
        base = below[-1] if below else None  # the largest kept threshold <= T
        names = [n for n in COUNTS if not n.endswith("_within")]
        sources = {n: n for n in names}
        if base is not None:
            sources["answered_within"] = f"answered_le_{base}"
            sources["abandoned_within"] = f"abandoned_le_{base}"

        def union(table: Any, columns: list[tuple[str, str]], extra: list[Any]) -> Any:
            """The rows of `table` in the plan's level and periods, and the journal's."""
            selects = [
                select(
                    table.c[group].label("key"), *(table.c[c].label(n) for n, c in columns)
                ).where(
                    table.c.level == plan.level,
                    table.c.grain == grain,
                    table.c.period.between(lo, hi),
                    *(table.c[k] == v for k, v in plan.filters.items()),
                    *[e(table) for e in extra],
                )
                for grain, lo, hi in parts
            ]
            key = j.c.day if group == "period" else j.c[group]
            selects.append(
                select(key.label("key"), *(j.c[c].label(n) for n, c in columns)).where(
                    j.c.day.between(first, last),
                    *(j.c[k] == v for k, v in plan.filters.items()),
                    *[e(j) for e in extra],
                )
            )
            u = union_all(*selects).subquery()
            return select(u.c.key, *(func.sum(u.c[n]) for n, _ in columns)).group_by(u.c.key)

        out: dict[Any, dict[str, int]] = {}
        columns = list(sources.items())
        for key, *values in (await db.execute(union(r, columns, []))).all():
            counts = dict.fromkeys(COUNTS, 0)
            counts.update(zip(sources, map(int, values), strict=True))
            if counts["sessions"]:  # not a key whose sessions all moved away
                out[key] = counts
        if base != t:  # the waits in (base, T] from the histogram
            lo = 0 if base is None else base + 1
            buckets = list(range(lo, t + 1))

            def in_gap(table: Any) -> Any:
                # a few buckets: one index descent each (dense short waits, only the periods
                # in range are read); a wide gap (T above 600 s): one range, long waits are rare
                return (
                    table.c.wait_s.in_(buckets)
                    if len(buckets) < 64
                    else (table.c.wait_s.between(lo, t))
                )

            hist = union(w, [("answered", "answered"), ("abandoned", "abandoned")], [in_gap])
            for key, answered, abandoned in (await db.execute(hist)).all():
                if key in out:
                    out[key]["answered_within"] += int(answered or 0)
                    out[key]["abandoned_within"] += int(abandoned or 0)
        unassigned = q.group_by == "agent"
        return [(None if unassigned and k == NO_KEY else k, c) for k, c in out.items()]

    async def _occupancy_from_rollup(
        self, q: KpiQuery, now: datetime | None
    ) -> dict[Any, float | None]:
        """The same figures as `_occupancy`, from `kpi_occupancy` (a row per month or day, or
        per agent and month or day, instead of one per agent, day and state), plus each
        agent's current, still open state."""
        o, c = kpi_occupancy, AgentCurrentState
        first, last = q.day_from.isoformat(), q.day_to.isoformat()
        if q.agent_id is not None:
            where = [o.c.dim == "agent", o.c.key == q.agent_id]
        else:
            where = [o.c.dim == ("agent" if q.group_by == "agent" else "all")]
        group = {"day": o.c.period, "agent": o.c.key}.get(q.group_by, literal("*"))
        parts = union_all(
            *(
                select(group.label("key"), o.c.productive_ms, o.c.staffed_ms, o.c.state_rows).where(
                    o.c.grain == grain, o.c.period.between(lo, hi), *where
                )
                for grain, lo, hi in periods(q)
            )
        ).subquery()
        query = select(
            parts.c.key,
            func.sum(parts.c.productive_ms),
            func.sum(parts.c.staffed_ms),
            func.sum(parts.c.state_rows),
        ).group_by(parts.c.key)
        current = select(c.agent_id, c.status, c.since)
        if q.agent_id is not None:
            current = current.where(c.agent_id == q.agent_id)
        async with self._sessions() as db:
            closed = (await db.execute(query)).all()
            open_ = (await db.execute(current)).all()
        spent: dict[Any, list[int]] = {}  # key: [productive, staffed]
        for key, productive, staffed, state_rows in closed:
            if not state_rows:
                continue
            for k in {key, "*"}:
                acc = spent.setdefault(k, [0, 0])
                acc[0] += int(productive)
                acc[1] += int(staffed)
        start = datetime.combine(q.day_from, time(0), UTC)
        end = datetime.combine(q.day_to + timedelta(days=1), time(0), UTC)
        for agent, status, since in open_:
            for day, ms in split_by_day(max(since, start), min(now or datetime.now(UTC), end)):
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
