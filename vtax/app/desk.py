"""The agent desk: the agent's own figures today (the service's day) and, while serving
someone, that taxpayer's earlier sessions. Only ever the calling agent's own data, and a
taxpayer's history only for the agent of their live session."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select

from vtax.app.ports import Caller
from vtax.config import Settings
from vtax.contract import http
from vtax.errors import DomainError
from vtax.live import LiveStore
from vtax.models import ServiceSession
from vtax.review.records import Scope, SessionRecords

HISTORY_LIMIT = 20


def _mean_s(total_ms: float | None, n: int) -> float | None:
    return round(total_ms / n / 1000, 1) if total_ms is not None and n else None


class Desk:
    def __init__(self, settings: Settings, records: SessionRecords, live: LiveStore) -> None:
        self.settings = settings
        self.records = records
        self.live = live

    def _today(self, now: datetime) -> tuple[str, datetime, datetime]:
        zone = ZoneInfo(self.settings.service_timezone)
        day = now.astimezone(zone).date()
        start = datetime.combine(day, time(0), zone).astimezone(UTC)
        return day.isoformat(), start, start + timedelta(days=1)

    async def today(self, caller: Caller, now: datetime | None = None) -> http.DeskToday:
        day, start, end = self._today(now or datetime.now(UTC))
        s = ServiceSession
        mine_today = and_(s.agent_id == caller.subject, s.answered_at >= start, s.answered_at < end)
        rated = s.rating_score.is_not(None)
        query = select(
            func.count(),
            func.sum(case((s.outcome == "completed", 1), else_=0)),
            func.sum(s.talk_ms),
            func.count(s.talk_ms),
            func.sum(s.wrap_ms),
            func.count(s.wrap_ms),
            func.count(s.rating_score),
            func.avg(s.rating_score),
            func.sum(case((and_(rated, s.rating_score >= 4), 1), else_=0)),
            func.sum(case((and_(s.ended_at.is_not(None), s.summary_result.is_(None)), 1), else_=0)),
        ).where(mine_today)
        open_follow_ups = select(func.count()).where(
            s.agent_id == caller.subject, s.follow_up_status == "open"
        )
        async with self.records.sessionmaker() as db:
            row = (await db.execute(query)).one()
            follow_ups = int(await db.scalar(open_follow_ups) or 0)
        answered, completed, talk, n_talk, wrap, n_wrap, ratings, mean, happy, pending = row
        ratings = int(ratings or 0)
        return http.DeskToday(
            day=day,
            timezone=self.settings.service_timezone,
            answered=int(answered or 0),
            completed=int(completed or 0),
            talk_s=_mean_s(talk, int(n_talk or 0)),
            wrap_up_s=_mean_s(wrap, int(n_wrap or 0)),
            ratings=ratings,
            mean_rating=round(float(mean), 2) if mean is not None else None,
            csat=round(int(happy or 0) / ratings, 4) if ratings else None,
            summaries_pending=int(pending or 0),
            follow_ups_open=follow_ups,
        )

    async def history(self, caller: Caller, session_id: str) -> http.TaxpayerHistory:
        """The earlier sessions of the taxpayer the agent is serving in `session_id` (a live
        session of theirs); 404 for anyone else, so nobody learns whose session it is."""
        live = await self.live.get(session_id)
        if live is None or live.agent_id != caller.subject:
            raise DomainError("not_found", "no such live session of yours")
        taxpayer = Scope("taxpayer", live.taxpayer_id)
        rows, _ = await self.records.list(taxpayer, HISTORY_LIMIT + 1)
        earlier = [r for r in rows if r["id"] != session_id][:HISTORY_LIMIT]
        return http.TaxpayerHistory.model_validate(
            {
                "taxpayer_id": live.taxpayer_id,
                "sessions": earlier,
                "open_follow_ups": sum(
                    1 for r in earlier if r["loop"]["follow_up"]["status"] == "open"
                ),
            }
        )
