"""Agent state history: every change of an agent's state, kept for occupancy and wrap-up time.
`changes` + `time_in_states` read the raw history (the reference the tests compare with);
the KPIs read the daily totals kept as states end (`time_by_day`).

Written from the signaling layer's agent-state hook. When an agent leaves `wrap_up`, the
time spent in it is attributed to the session the agent ended just before (its `wrap_ms`),
so average handle time is talk plus that agent's own wrap-up.

Days are the service zone's (vtax/review/days.py): the daily totals are cut at its midnights,
and `replay_state_days` recomputes them from the history in another zone (`vtax kpi rezone`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from vtax.models import AgentCurrentState, AgentStateChange, AgentStateDay, ServiceSession
from vtax.review.days import DEFAULT_ZONE, split_by_day, window, zone_of
from vtax.review.rollup import OccupancyDeltas, snapshot, write_change

STATES = frozenset({"offline", "available", "reserved", "busy", "wrap_up", "away"})
PRODUCTIVE = frozenset({"busy", "wrap_up"})  # handling a taxpayer
STAFFED = PRODUCTIVE | {"available", "reserved"}  # ready for or handling work
WRAP_UP_LINK = timedelta(minutes=5)  # a wrap-up starts this soon after the session it follows
LOOKBACK = timedelta(days=1)  # how far before a window to look for the state in force


@dataclass(frozen=True, slots=True)
class StateChange:
    agent_id: str
    status: str
    at: datetime


class AgentStateHistory:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], zone: str | ZoneInfo = DEFAULT_ZONE
    ) -> None:
        self._sessions = sessions
        self.zone = zone_of(zone)

    async def record(self, agent_id: str, status: str, reason: str, at: datetime) -> bool:
        """Append a state change; False if the agent was in that state already (no row).

        The state that ends here is added to the agent's daily totals (split at the
        service zone's midnights), and a wrap-up that ends is attributed to the session before it."""
        if status not in STATES:
            raise ValueError(f"unknown agent state {status!r}")
        async with self._sessions() as db, db.begin():
            current = await db.get(AgentCurrentState, agent_id, with_for_update=True)
            if current is not None and current.status == status:
                return False
            if current is not None and at < current.since:
                at = current.since  # clocks of different nodes: never let history run backwards
            db.add(AgentStateChange(agent_id=agent_id, status=status, reason=reason[:100], at=at))
            if current is None:
                db.add(AgentCurrentState(agent_id=agent_id, status=status, since=at))
                return True
            occupancy = OccupancyDeltas()
            for day, ms in split_by_day(current.since, at, self.zone):
                total = await db.get(
                    AgentStateDay, (agent_id, day, current.status), with_for_update=True
                )
                if total is None:
                    db.add(AgentStateDay(agent_id=agent_id, day=day, status=current.status, ms=ms))
                else:
                    total.ms += ms
                occupancy.add(agent_id, day, current.status, ms, new_row=total is None)
            if current.status == "wrap_up":
                await self._attribute_wrap_up(db, agent_id, current.since, at)
            current.status, current.since = status, at
            await occupancy.write(db)  # last: the day's row over all agents is shared
            return True

    async def time_by_day(
        self, day_from: date, day_to: date, now: datetime, agent_id: str | None = None
    ) -> dict[tuple[str, str], dict[str, int]]:
        """{(agent, day): {state: ms}} for the zone's days from..to, up to `now`: the closed
        intervals from the daily totals, plus each agent's current, still open state."""
        d = AgentStateDay
        days_where = self._days_where(day_from, day_to, agent_id)
        async with self._sessions() as db:
            closed = (
                await db.execute(select(d.agent_id, d.day, d.status, d.ms).where(*days_where))
            ).all()
            open_ = await self._open_states(db, agent_id)
        out: dict[tuple[str, str], dict[str, int]] = {}
        for agent, day, status, ms in closed:
            spent = out.setdefault((agent, day), {})
            spent[status] = spent.get(status, 0) + ms
        for agent, day, status, ms in _open_by_day(open_, day_from, day_to, now, self.zone):
            spent = out.setdefault((agent, day), {})
            spent[status] = spent.get(status, 0) + ms
        return out

    async def totals(
        self,
        day_from: date,
        day_to: date,
        now: datetime,
        agent_id: str | None = None,
        by: Literal["day", "agent"] | None = None,
    ) -> dict[str, dict[str, int]]:
        """{key: {state: ms}} over the zone's days from..to, up to `now`, summed in the database
        (a year of 60 agents is ~90,000 daily rows; they are not sent to Python): the key is
        the day or the agent (`by`), and "*" holds the whole window. The same figures as
        summing `time_by_day`."""
        d = AgentStateDay
        days_where = self._days_where(day_from, day_to, agent_id)
        key = {"day": d.day, "agent": d.agent_id, None: literal("*")}[by]
        async with self._sessions() as db:
            closed = (
                await db.execute(
                    select(key, d.status, func.sum(d.ms)).where(*days_where).group_by(key, d.status)
                )
            ).all()
            open_ = await self._open_states(db, agent_id)
        out: dict[str, dict[str, int]] = {}

        def add(k: str, status: str, ms: int) -> None:
            spent = out.setdefault(k, {})
            spent[status] = spent.get(status, 0) + ms

        for k, status, ms in closed:
            if by is not None:
                add(k, status, int(ms))
            add("*", status, int(ms))
        for agent, day, status, ms in _open_by_day(open_, day_from, day_to, now, self.zone):
            if by is not None:
                add(day if by == "day" else agent, status, ms)
            add("*", status, ms)
        return out

    @staticmethod
    def _days_where(day_from: date, day_to: date, agent_id: str | None) -> list[Any]:
        d = AgentStateDay
        where = [d.day >= day_from.isoformat(), d.day <= day_to.isoformat()]
        return where if agent_id is None else [*where, d.agent_id == agent_id]

    @staticmethod
    async def _open_states(db: AsyncSession, agent_id: str | None) -> list[Any]:
        """(agent, status, since) of each agent's current, still open state."""
        c = AgentCurrentState
        query = select(c.agent_id, c.status, c.since)
        if agent_id is not None:
            query = query.where(c.agent_id == agent_id)
        return list((await db.execute(query)).all())

    @staticmethod
    async def _attribute_wrap_up(
        db: AsyncSession, agent_id: str, started: datetime, ended: datetime
    ) -> None:
        session = await db.scalar(
            select(ServiceSession)
            .where(
                ServiceSession.agent_id == agent_id,
                ServiceSession.ended_at <= started,
                ServiceSession.ended_at >= started - WRAP_UP_LINK,
                ServiceSession.wrap_ms.is_(None),
            )
            .order_by(ServiceSession.ended_at.desc())
            .limit(1)
            .with_for_update()
        )
        if session is not None:
            before = snapshot(session)
            session.wrap_ms = round((ended - started).total_seconds() * 1000)
            await write_change(db, before, session)  # AHT counts the wrap-up

    async def changes(
        self,
        start: datetime,
        end: datetime,
        agent_id: str | None = None,
        lookback: timedelta = LOOKBACK,
    ) -> dict[str, list[StateChange]]:
        """Per agent, the state in force at `start` (looked up to `lookback` before it) and
        every change before `end`, sorted by time."""
        h = AgentStateChange
        where = [h.at >= start - lookback, h.at < end]
        if agent_id is not None:
            where.append(h.agent_id == agent_id)
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(h.agent_id, h.status, h.at)
                    .where(*where)
                    .order_by(h.agent_id, h.at, h.id)
                )
            ).all()
        out: dict[str, list[StateChange]] = {}
        for agent, status, at in rows:
            changes = out.setdefault(agent, [])
            # before the window only the latest change matters: it is the state in force
            if changes and changes[-1].at < start and at <= start:
                changes[-1] = StateChange(agent, status, at)
            else:
                changes.append(StateChange(agent, status, at))
        return out


def time_in_states(changes: list[StateChange], start: datetime, end: datetime) -> dict[str, int]:
    """Milliseconds spent in each state within [start, end), from one agent's changes (sorted;
    the first may be before `start`: the state in force when the window opens)."""
    spent: dict[str, int] = {}
    for change, following in zip(changes, [*changes[1:], None], strict=True):
        lo = max(change.at, start)
        hi = min(following.at if following is not None else end, end)
        if hi > lo:
            ms = round((hi - lo).total_seconds() * 1000)
            spent[change.status] = spent.get(change.status, 0) + ms
    return spent


def _open_by_day(
    open_states: list[Any], day_from: date, day_to: date, now: datetime, zone: ZoneInfo
) -> Iterator[tuple[str, str, str, int]]:
    """(agent, day, status, ms) of the open states' time in the zone's days from..to, up to
    now."""
    first, last = day_from.isoformat(), day_to.isoformat()
    window_start, window_end = window(day_from, day_to, zone)
    for agent, status, since in open_states:
        for day, ms in split_by_day(max(since, window_start), min(now, window_end), zone):
            if first <= day <= last:
                yield agent, day, status, ms


async def replay_state_days(conn: AsyncConnection, zone: ZoneInfo) -> int:
    """Recompute `agent_state_days` from the whole history, cut at `zone`'s midnights, in the
    caller's transaction; the number of daily rows written. Each closed interval is a change
    and the agent's next one, exactly what `record` added when the next change came (the
    open interval of each agent's current state is not in the totals, as there). One agent's
    history at a time (a year of one agent is some ten thousand rows)."""
    h, d = AgentStateChange, AgentStateDay
    await conn.execute(delete(d))
    agents = (await conn.execute(select(h.agent_id).distinct().order_by(h.agent_id))).scalars()
    written = 0
    for agent_id in list(agents):
        changes = (
            await conn.execute(
                select(h.status, h.at).where(h.agent_id == agent_id).order_by(h.at, h.id)
            )
        ).all()
        totals: dict[tuple[str, str], int] = {}
        for (status, since), (_, until) in pairwise(changes):
            for day, ms in split_by_day(since, until, zone):
                totals[(day, status)] = totals.get((day, status), 0) + ms
        if totals:
            await conn.execute(
                insert(d),
                [
                    {"agent_id": agent_id, "day": day, "status": status, "ms": ms}
                    for (day, status), ms in sorted(totals.items())
                ],
            )
            written += len(totals)
    return written
