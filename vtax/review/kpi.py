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

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.models import (
    KPI_THRESHOLDS,
    AgentCurrentState,
    ServiceSession,
    User,
    kpi_daily,
    kpi_daily_wait,
    kpi_occupancy_daily,
)
from vtax.review.agent_history import PRODUCTIVE, STAFFED, AgentStateHistory, split_by_day
from vtax.review.rollup import NO_KEY, session_sums

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


def rollup_plan(q: KpiQuery) -> tuple[str, str | None] | None:
    """Which rollup rows serve the query: (dimension, value or None for all values), or None
    when the rollup does not cover it and the session rows are aggregated instead.

    Served: group_by day with no filter or one filter (any of agent, category, channel,
    language); group_by agent/category/channel with no filter or a filter on the same
    dimension. Not served (raw): two or more filters, or group_by X with a filter on another
    dimension Y (the rollup keeps one dimension per row, not pairs)."""
    filters = {
        dim: value
        for dim, value in (
            ("agent", q.agent_id),
            ("category", q.category),
            ("channel", q.channel),
            ("language", q.language),
        )
        if value is not None
    }
    if NO_KEY in filters.values():  # '' is the rollup's "no agent": never a real filter value
        return None
    if q.group_by == "day":
        if not filters:
            return ("all", None)
        if len(filters) == 1:
            ((dim, value),) = filters.items()
            return (dim, value)
        return None
    if not filters:
        return (q.group_by, None)
    if set(filters) == {q.group_by}:
        return (q.group_by, filters[q.group_by])
    return None


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
        """KPI rows for each group in the window, and the total: from the daily rollup when
        it covers the query (`rollup_plan`), else from the session rows (`source` forces
        either; the figures are identical)."""
        plan = rollup_plan(q) if source != "raw" else None
        if source == "rollup" and plan is None:
            raise ValueError("the rollup does not cover this query")
        async with self._sessions() as db:
            if plan is not None:
                grouped = await self._rollup_counts(db, q, *plan)
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
        db: AsyncSession, q: KpiQuery, dim: str, value: str | None
    ) -> list[tuple[Any, dict[str, int]]]:
        """The counts per group from the daily rollup rows of one dimension (and one value
        of it when the query filters on it)."""
        d, w = kpi_daily, kpi_daily_wait
        first, last = q.day_from.isoformat(), q.day_to.isoformat()
        group = d.c.day if q.group_by == "day" else d.c.key
        where = [d.c.dim == dim, d.c.day >= first, d.c.day <= last]
        if value is not None:
            where.append(d.c.key == value)
        t = q.threshold_s
        below = [x for x in KPI_THRESHOLDS if x <= t]
        base = below[-1] if below else None  # the largest kept threshold <= T
        columns = [func.sum(d.c[n]).label(n) for n in COUNTS if not n.endswith("_within")]
        if base is not None:
            columns += [
                func.sum(d.c[f"answered_le_{base}"]).label("answered_within"),
                func.sum(d.c[f"abandoned_le_{base}"]).label("abandoned_within"),
            ]
        query = (
            select(group.label("key"), *columns)
            .where(*where)
            .group_by(group)
            .having(func.sum(d.c.sessions) > 0)  # a key whose sessions all moved away
        )
        out: dict[Any, dict[str, int]] = {}
        names = [c.name for c in columns]
        for key, *values in (await db.execute(query)).all():
            counts = dict.fromkeys(COUNTS, 0)
            counts.update(zip(names, map(int, values), strict=True))
            out[key] = counts
        if base != t:  # the waits in (base, T] from the histogram
            hist_group = w.c.day if q.group_by == "day" else w.c.key
            lo = 0 if base is None else base + 1
            hist = select(
                hist_group.label("key"), func.sum(w.c.answered), func.sum(w.c.abandoned)
            ).where(
                w.c.dim == dim,
                # a few buckets: one index descent each (dense short waits, only the days in
                # range are read); a wide gap (T above 600 s): one range, long waits are rare
                w.c.wait_s.in_(list(range(lo, t + 1)))
                if t - lo < 64
                else w.c.wait_s.between(lo, t),
                w.c.day >= first,
                w.c.day <= last,
            )
            if value is not None:
                hist = hist.where(w.c.key == value)
            for key, answered, abandoned in (await db.execute(hist.group_by(hist_group))).all():
                if key in out:
                    out[key]["answered_within"] += int(answered or 0)
                    out[key]["abandoned_within"] += int(abandoned or 0)
        unassigned = dim == "agent" and q.group_by == "agent"
        return [(None if unassigned and k == NO_KEY else k, c) for k, c in out.items()]

    async def _occupancy_from_rollup(
        self, q: KpiQuery, now: datetime | None
    ) -> dict[Any, float | None]:
        """The same figures as `_occupancy`, from `kpi_occupancy_daily` (a row per day, or per
        agent and day, instead of one per agent, day and state), plus each agent's current,
        still open state."""
        o, c = kpi_occupancy_daily, AgentCurrentState
        first, last = q.day_from.isoformat(), q.day_to.isoformat()
        where = [o.c.day >= first, o.c.day <= last]
        if q.agent_id is not None:
            where += [o.c.dim == "agent", o.c.key == q.agent_id]
        else:
            where.append(o.c.dim == ("agent" if q.group_by == "agent" else "all"))
        group = {"day": o.c.day, "agent": o.c.key}.get(q.group_by)
        sums = [func.sum(o.c.productive_ms), func.sum(o.c.staffed_ms), func.sum(o.c.state_rows)]
        query = select(group if group is not None else literal("*"), *sums).where(*where)
        if group is not None:
            query = query.group_by(group)
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
