"""Session records: one row per taxpayer request, from queue join to end, with its summary,
rating and an append-only audit log. No transport code here."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax import identity
from vtax.errors import DomainError
from vtax.models import ServiceSession, SessionEvent, SessionRating, SessionSummary, Taxpayer, User

SummaryResult = Literal["resolved", "follow_up", "transferred"]


@dataclass(frozen=True, slots=True)
class Actor:
    role: str
    id: str | None


SYSTEM = Actor("system", None)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose sessions a caller may see: a supervisor all, others only their own."""

    role: str
    subject: str

    def clause(self) -> Any:
        if self.role == "supervisor":
            return None
        if self.role == "agent":
            return ServiceSession.agent_id == self.subject
        if self.role == "taxpayer":
            return ServiceSession.taxpayer_id == self.subject
        return ServiceSession.id.is_(None)  # nobody else sees anything


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def encode_cursor(joined_at: datetime, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{joined_at.isoformat()}|{session_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, session_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        joined = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DomainError("invalid_payload", "the cursor is not valid") from None
    if joined.tzinfo is None:
        raise DomainError("invalid_payload", "the cursor is not valid")
    return joined, session_id


class SessionRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @staticmethod
    def _audit(
        db: AsyncSession,
        session_id: str,
        at: datetime,
        actor: Actor,
        kind: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        db.add(
            SessionEvent(
                session_id=session_id,
                at=at,
                actor_role=actor.role,
                actor_id=actor.id,
                kind=kind,
                data=data or {},
            )
        )

    async def open(
        self,
        *,
        session_id: str,
        ticket_id: str,
        taxpayer_id: str,
        category: str,
        language: str,
        channel: str,
        question: str,
        joined_at: datetime,
    ) -> None:
        """The 'ask' step: a taxpayer joined the queue with a question."""
        async with self._sessions() as db, db.begin():
            db.add(
                ServiceSession(
                    id=session_id,
                    ticket_id=ticket_id,
                    taxpayer_id=taxpayer_id,
                    category=category,
                    language=language,
                    channel=channel,
                    question=question,
                    joined_at=joined_at,
                    outcome="waiting",
                )
            )
            await db.flush()
            self._audit(
                db,
                session_id,
                joined_at,
                Actor("taxpayer", taxpayer_id),
                "joined",
                {"category": category, "language": language, "channel": channel},
            )

    async def offered(self, session_id: str, agent_id: str, at: datetime) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(ServiceSession)
                .where(ServiceSession.id == session_id, ServiceSession.offered_at.is_(None))
                .values(offered_at=at)
            )
            self._audit(db, session_id, at, SYSTEM, "offered", {"agent_id": agent_id})

    async def answered(self, session_id: str, agent_id: str, at: datetime) -> None:
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                update(ServiceSession)
                .where(ServiceSession.id == session_id, ServiceSession.outcome == "waiting")
                .values(agent_id=agent_id, answered_at=at, outcome="live")
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise DomainError("invalid_state", "the request is no longer waiting")
            self._audit(db, session_id, at, Actor("agent", agent_id), "answered")

    async def abandoned(self, session_id: str, at: datetime, reason: str) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(ServiceSession)
                .where(ServiceSession.id == session_id, ServiceSession.outcome == "waiting")
                .values(outcome="abandoned", ended_at=at, end_reason=reason)
            )
            self._audit(db, session_id, at, SYSTEM, "abandoned", {"reason": reason})

    async def ended(
        self, session_id: str, at: datetime, outcome: str, reason: str, actor: Actor
    ) -> bool:
        """End a live session; False if it was not live (already ended)."""
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                update(ServiceSession)
                .where(ServiceSession.id == session_id, ServiceSession.outcome == "live")
                .values(outcome=outcome, ended_at=at, end_reason=reason)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            self._audit(db, session_id, at, actor, "ended", {"outcome": outcome, "reason": reason})
            return True

    async def save_summary(
        self,
        session_id: str,
        agent_id: str,
        at: datetime,
        *,
        asked: str,
        handled: str,
        result: SummaryResult,
        items: list[str],
    ) -> None:
        """The 'handle' step: the serving agent's record; the first save is always taken,
        later edits only until the taxpayer has rated."""
        async with self._sessions() as db, db.begin():
            row = await db.get(ServiceSession, session_id, with_for_update=True)
            if row is None or row.agent_id != agent_id:
                raise DomainError("not_in_session", "only the agent who served it can summarise")
            summary = await db.get(SessionSummary, session_id)
            if summary is not None and await db.get(SessionRating, session_id) is not None:
                raise DomainError("invalid_state", "the session is rated; its summary is final")
            if summary is None:
                summary = SessionSummary(session_id=session_id, agent_id=agent_id)
                db.add(summary)
            summary.asked, summary.handled, summary.result = asked, handled, result
            summary.items, summary.saved_at = list(items), at
            self._audit(
                db,
                session_id,
                at,
                Actor("agent", agent_id),
                "summary_saved",
                {"result": result, "items": list(items)},
            )

    async def rate(
        self, session_id: str, taxpayer_id: str, at: datetime, *, score: int, comment: str
    ) -> None:
        """The 'evaluate' step: one rating per session; the same one again is a no-op."""
        async with self._sessions() as db, db.begin():
            row = await db.get(ServiceSession, session_id, with_for_update=True)
            if row is None or row.taxpayer_id != taxpayer_id or row.agent_id is None:
                raise DomainError("not_in_session", "only the taxpayer served can rate")
            if row.outcome == "live":
                raise DomainError("invalid_state", "a session is rated after it ends")
            existing = await db.get(SessionRating, session_id)
            if existing is not None:
                if (existing.score, existing.comment) == (score, comment):
                    return
                raise DomainError("already_rated", "this session has a different rating already")
            db.add(SessionRating(session_id=session_id, score=score, comment=comment, rated_at=at))
            self._audit(
                db, session_id, at, Actor("taxpayer", taxpayer_id), "rated", {"score": score}
            )

    async def get(self, session_id: str, scope: Scope) -> dict[str, Any]:
        clause = scope.clause()
        query = self._view_query().where(ServiceSession.id == session_id)
        if clause is not None:
            query = query.where(clause)
        async with self._sessions() as db:
            row = (await db.execute(query)).first()
        if row is None:
            raise DomainError("not_found", "no such session")
        return self._view(*row)

    async def list(
        self, scope: Scope, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, keyset-paginated on (joined_at, id)."""
        query = self._view_query()
        clause = scope.clause()
        if clause is not None:
            query = query.where(clause)
        if before:
            joined, sid = decode_cursor(before)
            query = query.where(
                or_(
                    ServiceSession.joined_at < joined,
                    and_(ServiceSession.joined_at == joined, ServiceSession.id < sid),
                )
            )
        query = query.order_by(ServiceSession.joined_at.desc(), ServiceSession.id.desc())
        async with self._sessions() as db:
            rows = (await db.execute(query.limit(limit + 1))).all()
        views = [self._view(*r) for r in rows[:limit]]
        more = len(rows) > limit
        cursor = (
            encode_cursor(rows[limit - 1][0].joined_at, rows[limit - 1][0].id) if more else None
        )
        return views, cursor

    @staticmethod
    def _view_query() -> Any:
        return (
            select(ServiceSession, Taxpayer, User, SessionSummary, SessionRating)
            .join(Taxpayer, Taxpayer.id == ServiceSession.taxpayer_id)
            .outerjoin(User, User.id == ServiceSession.agent_id)
            .outerjoin(SessionSummary, SessionSummary.session_id == ServiceSession.id)
            .outerjoin(SessionRating, SessionRating.session_id == ServiceSession.id)
        )

    @staticmethod
    def _view(
        s: ServiceSession,
        t: Taxpayer,
        u: User | None,
        summary: SessionSummary | None,
        rating: SessionRating | None,
    ) -> dict[str, Any]:
        wait_end = s.answered_at or (s.ended_at if s.outcome == "abandoned" else None)
        return {
            "id": s.id,
            "ticket_id": s.ticket_id,
            "category": s.category,
            "language": s.language,
            "channel": s.channel,
            "question": s.question,
            "taxpayer": {
                "id": t.id,
                "id_type": t.id_type,
                "id_number_masked": identity.mask(t.id_number),
                "name": t.name,
            },
            "agent": None
            if u is None
            else {"id": u.id, "username": u.username, "display_name": u.display_name},
            "joined_at": _iso(s.joined_at),
            "offered_at": _iso(s.offered_at),
            "answered_at": _iso(s.answered_at),
            "ended_at": _iso(s.ended_at),
            "wait_s": _seconds(s.joined_at, wait_end),
            "duration_s": _seconds(s.answered_at, s.ended_at),
            "outcome": s.outcome,
            "end_reason": s.end_reason,
            "summary": None
            if summary is None
            else {
                "asked": summary.asked,
                "handled": summary.handled,
                "result": summary.result,
                "items": list(summary.items),
                "saved_at": _iso(summary.saved_at),
            },
            "rating": None
            if rating is None
            else {
                "score": rating.score,
                "comment": rating.comment,
                "rated_at": _iso(rating.rated_at),
            },
        }
