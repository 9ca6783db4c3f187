"""The loop steps after the call: handle (summary), check, evaluate (rating), the follow-ups,
and the supervisor's quality review. Each step locks the session row, checks the transition
with `vtax.review.loop.require`, writes, and appends an audit event, in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.errors import DomainError
from vtax.models import (
    ChatMessageRow,
    Delivery,
    DeliveryReceipt,
    QualityReview,
    ServiceSession,
    SessionCheck,
    SessionEvent,
    SessionParticipantRow,
    SessionRating,
    SessionSummary,
)
from vtax.review import audit
from vtax.review.audit import Actor
from vtax.review.chat_log import message_view
from vtax.review.loop import Step, require
from vtax.review.participants import participant_view
from vtax.review.quality import MAX_TOTAL, score_form
from vtax.review.rollup import snapshot, write_change
from vtax.review.views import (
    DIMENSIONS,
    check_view,
    delivery_view,
    event_view,
    loop_state,
    quality_view,
    session_view,
    view_query,
)

SummaryResult = Literal["resolved", "follow_up", "transferred"]
CheckDecision = Literal["confirmed", "disputed"]
DETAIL_MESSAGES = 500  # chat messages in the supervisor's detail; the rest over REST
LOW_RATING = 2  # a rating at or below this flags the session for supervisor follow-up
# The confirmation form as a summary records it, read under the summary's lock (or refused):
# (db, session_id, result) -> the record, or None when the session has no form.
FormCheck = Callable[[AsyncSession, str, str], Awaitable[dict[str, Any] | None]]


class Parties(NamedTuple):
    taxpayer_id: str
    agent_id: str | None


class StepResult(dict[str, Any]):
    """A step's answer (the dict the API returns), carrying the session's parties as the step
    read them under its lock: whoever announces the step (`session:loop`) needs no query."""

    __slots__ = ("parties",)

    def __init__(self, answer: dict[str, Any], row: ServiceSession) -> None:
        super().__init__(answer)
        self.parties = Parties(row.taxpayer_id, row.agent_id)


def _flag(row: ServiceSession, reason: str) -> None:
    """Open (or reopen) the supervisor follow-up flag with one more reason."""
    reasons = list(row.flag_reasons or [])
    if reason not in reasons:
        reasons.append(reason)
    row.flag_reasons = reasons
    if row.flag != "open":
        row.flag, row.flag_done_at, row.flag_done_by, row.flag_note = "open", None, None, None


class ServiceLoop:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _load(
        self, db: AsyncSession, session_id: str
    ) -> tuple[ServiceSession | None, SessionSummary | None, SessionRating | None]:
        row = await db.get(ServiceSession, session_id, with_for_update=True)
        if row is None:
            return None, None, None
        return (
            row,
            await db.get(SessionSummary, session_id),
            await db.get(SessionRating, session_id),
        )

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
        category: str | None = None,
        actions: list[str] | None = None,
        follow_up_due: date | None = None,
        form_check: FormCheck | None = None,
    ) -> StepResult:
        """'Handle': the serving agent's record (and refinement of the ask). Each save is a new
        version; a revision after a dispute reopens the taxpayer's check. `form_check` gives
        the confirmation form it records (vtax/app/confirmation.py `summary_form`)."""
        async with self._sessions() as db, db.begin():
            row, summary, rating = await self._load(db, session_id)
            if row is None or row.agent_id != agent_id:
                raise DomainError("not_in_session", "only the agent who served it can summarise")
            require(loop_state(row, summary, rating is not None), Step.SUMMARISE)
            form = await form_check(db, session_id, result) if form_check else None
            before = snapshot(row)
            if summary is None:
                summary = SessionSummary(session_id=session_id, agent_id=agent_id, version=0)
                db.add(summary)
            summary.version = (summary.version or 0) + 1
            summary.asked, summary.handled, summary.result = asked, handled, result
            summary.items, summary.actions = list(items), list(actions or [])
            summary.category, summary.follow_up_due, summary.saved_at = category, follow_up_due, at
            row.summary_result = result
            # the category the list filters on: the refinement, or the asked one again when a
            # revision drops it (KPIs stay by the asked category, the queue)
            row.final_category = category or row.category
            if row.check_status == "disputed":
                row.check_status = "pending"
            if result == "follow_up":
                if row.follow_up_status != "done":
                    row.follow_up_status = "open"
                row.follow_up_due = follow_up_due
            elif row.follow_up_status == "open":
                row.follow_up_status, row.follow_up_due = "none", None
            audit.append(
                db,
                session_id,
                at,
                Actor("agent", agent_id),
                "summary_saved",
                {
                    "version": summary.version,
                    "result": result,
                    "items": list(items),
                    "category": category,
                    "follow_up_due": follow_up_due.isoformat() if follow_up_due else None,
                    **(
                        {"form_version": form["version"], "form_sha256": form["sha256"]}
                        if form
                        else {}
                    ),
                },
            )
            await write_change(db, before, row)
            return StepResult({"version": summary.version}, row)

    async def check(
        self,
        session_id: str,
        taxpayer_id: str,
        at: datetime,
        *,
        decision: CheckDecision,
        comment: str = "",
        version: int | None = None,
    ) -> StepResult:
        """'Check': the taxpayer confirms the summary or disputes it with a comment. The same
        decision again is a no-op; a dispute flags the session for supervisor follow-up."""
        if decision == "disputed" and not comment:
            raise DomainError("invalid_payload", "say what is wrong when disputing a summary")
        async with self._sessions() as db, db.begin():
            row, summary, rating = await self._load(db, session_id)
            if row is None or row.taxpayer_id != taxpayer_id:
                raise DomainError("not_in_session", "only the taxpayer served can check it")
            if summary is not None and version is not None and version != summary.version:
                raise DomainError(
                    "invalid_state",
                    f"the summary is at version {summary.version}; check that version",
                )
            if summary is not None and row.check_status == decision:
                last = await db.scalar(
                    select(SessionCheck)
                    .where(SessionCheck.session_id == session_id)
                    .order_by(SessionCheck.id.desc())
                    .limit(1)
                )
                if last is not None and last.summary_version == summary.version:
                    if last.comment == comment:
                        answer = {"check": decision, "summary_version": summary.version}
                        return StepResult(answer, row)
                    raise DomainError("invalid_state", "this summary was checked already")
            step = Step.CONFIRM if decision == "confirmed" else Step.DISPUTE
            require(loop_state(row, summary, rating is not None), step)
            assert summary is not None  # the guard requires a summary
            db.add(
                SessionCheck(
                    session_id=session_id,
                    taxpayer_id=taxpayer_id,
                    summary_version=summary.version,
                    decision=decision,
                    comment=comment,
                    at=at,
                )
            )
            row.check_status = decision
            actor = Actor("taxpayer", taxpayer_id)
            data = {"decision": decision, "summary_version": summary.version}
            audit.append(db, session_id, at, actor, "checked", data)
            if decision == "disputed":
                _flag(row, "disputed")
                audit.append(db, session_id, at, audit.SYSTEM, "flagged", {"reason": "disputed"})
            return StepResult({"check": decision, "summary_version": summary.version}, row)

    async def rate(
        self,
        session_id: str,
        taxpayer_id: str,
        at: datetime,
        *,
        score: int,
        comment: str,
        dimensions: dict[str, int] | None = None,
    ) -> StepResult:
        """'Evaluate': one rating per session; the same one again is a no-op, a different one
        is refused; a score of 2 or less flags the session for supervisor follow-up."""
        dims = {k: v for k, v in (dimensions or {}).items() if v is not None}
        if set(dims) - set(DIMENSIONS) or not all(1 <= v <= 5 for v in dims.values()):
            raise DomainError(
                "invalid_payload", "dimensions are 1..5 each: " + ", ".join(DIMENSIONS)
            )
        for attempt in range(2):  # a concurrent duplicate insert loses once, then compares
            try:
                return await self._rate(session_id, taxpayer_id, at, score, comment, dims)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _rate(
        self,
        session_id: str,
        taxpayer_id: str,
        at: datetime,
        score: int,
        comment: str,
        dims: dict[str, int],
    ) -> StepResult:
        async with self._sessions() as db, db.begin():
            row, summary, existing = await self._load(db, session_id)
            if row is None or row.taxpayer_id != taxpayer_id or row.agent_id is None:
                raise DomainError("not_in_session", "only the taxpayer served can rate")
            if existing is not None:
                old = {
                    d: getattr(existing, d) for d in DIMENSIONS if getattr(existing, d) is not None
                }
                if (existing.score, existing.comment, old) == (score, comment, dims):
                    return StepResult({"flagged": row.flag == "open"}, row)
                raise DomainError("already_rated", "this session has a different rating already")
            require(loop_state(row, summary, False), Step.RATE)
            db.add(
                SessionRating(
                    session_id=session_id, score=score, comment=comment, rated_at=at, **dims
                )
            )
            before = snapshot(row)
            row.rating_score = score
            actor = Actor("taxpayer", taxpayer_id)
            audit.append(db, session_id, at, actor, "rated", {"score": score, **dims})
            if score <= LOW_RATING:
                _flag(row, "low_rating")
                audit.append(db, session_id, at, audit.SYSTEM, "flagged", {"reason": "low_rating"})
            await db.flush()
            await write_change(db, before, row)
            return StepResult({"flagged": row.flag == "open"}, row)

    async def close_follow_up(
        self, session_id: str, actor: Actor, at: datetime, note: str = ""
    ) -> StepResult:
        """The follow-up the summary promised is done (by the serving agent or a supervisor)."""
        async with self._sessions() as db, db.begin():
            row, summary, rating = await self._load(db, session_id)
            if row is None or (actor.role != "supervisor" and row.agent_id != actor.id):
                raise DomainError("not_found", "no such session")
            require(loop_state(row, summary, rating is not None), Step.CLOSE_FOLLOW_UP)
            row.follow_up_status, row.follow_up_done_at = "done", at
            audit.append(db, session_id, at, actor, "follow_up_closed", {"note": note})
            return StepResult({"status": "done", "done_at": at.isoformat()}, row)

    async def resolve_flag(
        self, session_id: str, supervisor_id: str, at: datetime, note: str
    ) -> dict[str, Any]:
        """A supervisor followed up a flagged session."""
        async with self._sessions() as db, db.begin():
            row, summary, rating = await self._load(db, session_id)
            if row is None:
                raise DomainError("not_found", "no such session")
            require(loop_state(row, summary, rating is not None), Step.RESOLVE_FLAG)
            row.flag, row.flag_done_at, row.flag_done_by, row.flag_note = (
                "done",
                at,
                supervisor_id,
                note,
            )
            actor = Actor("supervisor", supervisor_id)
            audit.append(db, session_id, at, actor, "flag_resolved", {"note": note})
            return {"status": "done", "done_at": at.isoformat()}

    async def review_quality(
        self, session_id: str, reviewer_id: str, at: datetime, scores: dict[str, int], comment: str
    ) -> dict[str, Any]:
        """A supervisor's quality-review form; every review is kept (the latest counts)."""
        total = score_form(scores)
        async with self._sessions() as db, db.begin():
            row, summary, rating = await self._load(db, session_id)
            if row is None:
                raise DomainError("not_found", "no such session")
            require(loop_state(row, summary, rating is not None), Step.REVIEW_QUALITY)
            review = QualityReview(
                session_id=session_id,
                reviewer_id=reviewer_id,
                scores=dict(scores),
                total=total,
                max_total=MAX_TOTAL,
                comment=comment,
                created_at=at,
            )
            db.add(review)
            actor = Actor("supervisor", reviewer_id)
            audit.append(db, session_id, at, actor, "quality_reviewed", {"total": total})
            await db.flush()
            return quality_view(review)

    async def detail(self, session_id: str) -> dict[str, Any]:
        """A session's whole loop for a supervisor: record, checks, deliveries with receipts,
        quality reviews and the audit log."""
        async with self._sessions() as db:
            row = (await db.execute(view_query().where(ServiceSession.id == session_id))).first()
            if row is None:
                raise DomainError("not_found", "no such session")
            checks = await db.scalars(
                select(SessionCheck)
                .where(SessionCheck.session_id == session_id)
                .order_by(SessionCheck.id)
            )
            reviews = await db.scalars(
                select(QualityReview)
                .where(QualityReview.session_id == session_id)
                .order_by(QualityReview.id)
            )
            deliveries = await db.execute(
                select(Delivery, DeliveryReceipt)
                .outerjoin(DeliveryReceipt, DeliveryReceipt.delivery_id == Delivery.id)
                .where(Delivery.session_id == session_id)
                .order_by(Delivery.created_at, Delivery.id)
            )
            events = await db.scalars(
                select(SessionEvent)
                .where(SessionEvent.session_id == session_id)
                .order_by(SessionEvent.id)
            )
            people = await db.scalars(  # multiparty: who took part, who handled which part
                select(SessionParticipantRow)
                .where(SessionParticipantRow.session_id == session_id)
                .order_by(SessionParticipantRow.joined_at, SessionParticipantRow.id)
            )
            chat = await db.scalars(
                select(ChatMessageRow)
                .where(ChatMessageRow.session_id == session_id)
                .order_by(ChatMessageRow.seq)
                .limit(DETAIL_MESSAGES)
            )
            return {
                "participants": [participant_view(p) for p in people],
                "session": session_view(*row),
                "checks": [check_view(c) for c in checks],
                "deliveries": [delivery_view(d, r) for d, r in deliveries.all()],
                "quality_reviews": [quality_view(q) for q in reviews],
                "audit": [event_view(e) for e in events],
                "messages": [message_view(m) for m in chat],
            }
