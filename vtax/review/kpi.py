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

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.models import ServiceSession, User
from vtax.review.agent_history import PRODUCTIVE, STAFFED, AgentStateHistory

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
        s = ServiceSession
        answered = s.answered_at.is_not(None)
        abandoned = s.outcome == "abandoned"
        handled = and_(answered, s.talk_ms.is_not(None))

        def count(cond: Any) -> Any:
            return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

        def total(cond: Any, value: Any) -> Any:
            return func.coalesce(func.sum(case((cond, func.coalesce(value, 0)), else_=0)), 0)

        return [
            func.count().label("sessions"),
            count(answered).label("answered"),
            count(and_(answered, s.wait_ms <= threshold_ms)).label("answered_within"),
            count(abandoned).label("abandoned"),
            count(and_(abandoned, s.wait_ms <= threshold_ms)).label("abandoned_within"),
            total(answered, s.wait_ms).label("wait_ms"),
            count(handled).label("handled"),
            total(handled, s.talk_ms).label("talk_ms"),
            total(handled, s.wrap_ms).label("wrap_ms"),
            count(s.rating_score.is_not(None)).label("ratings"),
            count(s.rating_score >= 4).label("satisfied"),
            count(s.summary_result.is_not(None)).label("summarised"),
            count(and_(s.summary_result == "resolved", s.recontacted.is_(False))).label(
                "resolved_first"
            ),
        ]

    async def report(self, q: KpiQuery, now: datetime | None = None) -> dict[str, Any]:
        """KPI rows for each group in the window, and the total."""
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
        async with self._sessions() as db:
            # sorted here: the engines put NULL (unassigned) at different ends
            grouped = sorted(
                (await db.execute(base.add_columns(key.label("key")).group_by(key))).all(),
                key=lambda r: (r.key is None, str(r.key)),
            )
            total_row = (await db.execute(base)).one()
            names: dict[str, str] = {}
            if q.group_by == "agent":
                ids = [r.key for r in grouped if r.key is not None]
                if ids:
                    users = await db.execute(
                        select(User.id, User.display_name).where(User.id.in_(ids))
                    )
                    names = {uid: name for uid, name in users.all()}
        occupancy = await self._occupancy(q, now)
        rows = []
        for r in grouped:
            counts = {name: int(getattr(r, name)) for name in COUNTS}
            row: dict[str, Any] = {"key": r.key, **figures(counts)}
            if q.group_by == "agent":
                row["label"] = names.get(r.key, "unassigned" if r.key is None else r.key)
            if q.group_by in ("agent", "day"):
                row["occupancy"] = occupancy.get(r.key)
            rows.append(row)
        if q.group_by == "agent":  # agents who were staffed but served nobody in the window
            seen = {r["key"] for r in rows}
            for agent, occ in sorted(occupancy.items(), key=lambda kv: str(kv[0])):
                if agent is not None and agent not in seen and agent != "*":
                    rows.append(
                        {"key": agent, **figures(dict.fromkeys(COUNTS, 0)), "occupancy": occ}
                    )
        total = figures({name: int(getattr(total_row, name)) for name in COUNTS})
        total["occupancy"] = occupancy.get("*")
        return {
            "from": q.day_from.isoformat(),
            "to": q.day_to.isoformat(),
            "group_by": q.group_by,
            "threshold_s": q.threshold_s,
            "rows": rows,
            "total": total,
        }

    async def _occupancy(self, q: KpiQuery, now: datetime | None) -> dict[Any, float | None]:
        """Occupancy keyed by agent id (group_by agent) or by day (group_by day), and "*" for
        the whole window; from the agent state daily totals, up to `now`."""
        spent = await self._history.time_by_day(
            q.day_from, q.day_to, now or datetime.now(UTC), q.agent_id
        )
        productive: dict[Any, int] = {}
        staffed: dict[Any, int] = {}
        for (agent, day), states in spent.items():
            keys: list[Any] = ["*"]
            if q.group_by == "agent":
                keys.append(agent)
            elif q.group_by == "day":
                keys.append(day)
            for key in keys:
                productive[key] = productive.get(key, 0) + sum(states.get(k, 0) for k in PRODUCTIVE)
                staffed[key] = staffed.get(key, 0) + sum(states.get(k, 0) for k in STAFFED)
        return {k: _ratio(productive[k], staffed[k]) for k in staffed}
