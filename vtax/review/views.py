"""JSON views of the review records (the shapes in docs/protocol.md and docs/review.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from vtax import identity
from vtax.identity.tables import Enterprise
from vtax.models import (
    Delivery,
    DeliveryReceipt,
    QualityReview,
    ServiceSession,
    SessionCheck,
    SessionEvent,
    SessionRating,
    SessionSummary,
    Taxpayer,
    User,
)
from vtax.review.loop import LoopState

DIMENSIONS = ("professionalism", "attitude", "efficiency", "av_quality")


def iso(t: datetime | date | None) -> str | None:
    return None if t is None else t.isoformat()


def seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def loop_state(s: ServiceSession, summary: SessionSummary | None, rated: bool) -> LoopState:
    return LoopState(
        call=s.outcome,
        summary_version=0 if summary is None else summary.version,
        check=s.check_status,
        rated=rated,
        follow_up=s.follow_up_status,
        flag=s.flag,
    )


def summary_view(summary: SessionSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "asked": summary.asked,
        "category": summary.category,
        "handled": summary.handled,
        "actions": list(summary.actions or []),
        "result": summary.result,
        "items": list(summary.items),
        "follow_up_due": iso(summary.follow_up_due),
        "version": summary.version,
        "saved_at": iso(summary.saved_at),
    }


def rating_view(rating: SessionRating | None) -> dict[str, Any] | None:
    if rating is None:
        return None
    dims = {d: getattr(rating, d) for d in DIMENSIONS if getattr(rating, d) is not None}
    return {
        "score": rating.score,
        "comment": rating.comment,
        "dimensions": dims,
        "rated_at": iso(rating.rated_at),
    }


def view_query() -> Any:
    """The rows `session_view` takes: the session with its person, agent, summary, rating and
    the enterprise acted for (the session list, one session, the review detail)."""
    return (
        select(ServiceSession, Taxpayer, User, SessionSummary, SessionRating, Enterprise)
        .join(Taxpayer, Taxpayer.id == ServiceSession.taxpayer_id)
        .outerjoin(User, User.id == ServiceSession.agent_id)
        .outerjoin(SessionSummary, SessionSummary.session_id == ServiceSession.id)
        .outerjoin(SessionRating, SessionRating.session_id == ServiceSession.id)
        .outerjoin(Enterprise, Enterprise.id == ServiceSession.enterprise_id)
    )


def session_view(
    s: ServiceSession,
    t: Taxpayer,
    u: User | None,
    summary: SessionSummary | None,
    rating: SessionRating | None,
    e: Enterprise | None = None,
    *,
    staff: bool = True,
) -> dict[str, Any]:
    """One session. `staff=False` (a taxpayer's view) leaves out the supervisor flag."""
    state = loop_state(s, summary, rating is not None)
    view: dict[str, Any] = {
        "id": s.id,
        "ticket_id": s.ticket_id,
        "category": s.category,
        "final_category": s.final_category,
        "language": s.language,
        "channel": s.channel,
        "question": s.question,
        "consultation_id": s.consultation_id,
        "booking_id": s.booking_id,
        "taxpayer": {
            "id": t.id,
            "id_type": t.id_type,
            "id_number_masked": identity.mask(t.id_number),
            "name": t.name,
        },
        "enterprise": None
        if e is None
        else {"id": e.id, "uscc": e.uscc, "name": e.name, "role": s.acting_role},
        "agent": None
        if u is None
        else {"id": u.id, "username": u.username, "display_name": u.display_name},
        "joined_at": iso(s.joined_at),
        "offered_at": iso(s.offered_at),
        "answered_at": iso(s.answered_at),
        "ended_at": iso(s.ended_at),
        "wait_s": seconds(s.wait_ms),
        "duration_s": seconds(s.talk_ms),
        "wrap_up_s": seconds(s.wrap_ms),
        "outcome": s.outcome,
        "end_reason": s.end_reason,
        "recording_url": s.recording_url,
        "summary": summary_view(summary),
        "rating": rating_view(rating),
        "loop": {
            "stage": state.stage,
            "check": s.check_status,
            "follow_up": {
                "status": s.follow_up_status,
                "due": iso(s.follow_up_due),
                "done_at": iso(s.follow_up_done_at),
            },
        },
    }
    if staff:
        view["loop"]["flag"] = {
            "status": s.flag,
            "reasons": list(s.flag_reasons or []),
            "done_at": iso(s.flag_done_at),
            "done_by": s.flag_done_by,
            "note": s.flag_note,
        }
    return view


def check_view(c: SessionCheck) -> dict[str, Any]:
    return {
        "decision": c.decision,
        "comment": c.comment,
        "summary_version": c.summary_version,
        "at": iso(c.at),
    }


def event_view(e: SessionEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": iso(e.at),
        "actor": {"role": e.actor_role, "id": e.actor_id},
        "kind": e.kind,
        "data": dict(e.data or {}),
    }


def quality_view(q: QualityReview) -> dict[str, Any]:
    return {
        "id": q.id,
        "reviewer_id": q.reviewer_id,
        "scores": dict(q.scores),
        "total": q.total,
        "max_total": q.max_total,
        "comment": q.comment,
        "created_at": iso(q.created_at),
    }


def receipt_view(r: DeliveryReceipt | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "acknowledged_at": iso(r.acknowledged_at),
        "sha256": r.sha256,
        "taxpayer": {
            "id": r.taxpayer_id,
            "id_type": r.id_type,
            "id_number_masked": identity.mask(r.id_number),
            "name": r.taxpayer_name,
        },
    }


def delivery_view(d: Delivery, receipt: DeliveryReceipt | None) -> dict[str, Any]:
    return {
        "id": d.id,
        "session_id": d.session_id,
        "agent_id": d.agent_id,
        "taxpayer_id": d.taxpayer_id,
        "filename": d.filename,
        "media_type": d.media_type,
        "size_bytes": d.size_bytes,
        "sha256": d.sha256,
        "note": d.note,
        "created_at": iso(d.created_at),
        "first_downloaded_at": iso(d.first_downloaded_at),
        "download_count": d.download_count,
        "status": "acknowledged"
        if d.acknowledged_at is not None
        else ("downloaded" if d.first_downloaded_at is not None else "pending"),
        "receipt": receipt_view(receipt),
    }
