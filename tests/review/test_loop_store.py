"""The loop steps against the database, on both engines: transitions, idempotency, flags,
follow-ups, the audit log, and that a refused step writes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.review.helpers import T0, served
from vtax.errors import DomainError
from vtax.models import ServiceSession, SessionEvent
from vtax.review.audit import Actor
from vtax.review.records import Scope

LATER = T0 + timedelta(minutes=30)


async def events(store, sid):
    async with store.records.sessionmaker() as db:
        rows = await db.scalars(
            select(SessionEvent).where(SessionEvent.session_id == sid).order_by(SessionEvent.id)
        )
        return [e.kind for e in rows]


async def refused(coro, code="invalid_state"):
    with pytest.raises(DomainError) as exc:
        await coro
    assert exc.value.code == code, exc.value.message
    return exc.value.message


async def summarise(store, sid, agent=None, **kw):
    values = {"asked": "a", "handled": "h", "result": "resolved", "items": []} | kw
    return await store.records.loop.save_summary(sid, agent or store.agent, LATER, **values)


async def test_the_whole_loop_in_order_and_its_audit_log(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    loop = store.records.loop
    assert await summarise(store, sid, category="invoices", actions=["checked the invoice"]) == {
        "version": 1
    }
    checked = await loop.check(sid, store.taxpayer, LATER, decision="confirmed", version=1)
    assert checked == {"check": "confirmed", "summary_version": 1}
    assert await loop.rate(
        sid, store.taxpayer, LATER, score=5, comment="great", dimensions={"attitude": 5}
    ) == {"flagged": False}
    view = await store.records.get(sid, Scope("taxpayer", store.taxpayer))
    assert view["loop"]["stage"] == "done" and view["loop"]["check"] == "confirmed"
    assert view["rating"]["dimensions"] == {"attitude": 5}
    assert view["summary"]["actions"] == ["checked the invoice"]
    assert "flag" not in view["loop"]  # the supervisor's flag is not shown to taxpayers
    assert view["wait_s"] == 10.0 and view["duration_s"] == 60.0
    assert await events(store, sid) == [
        "joined",
        "offered",
        "answered",
        "ended",
        "summary_saved",
        "checked",
        "rated",
    ]
    async with store.records.sessionmaker() as db:
        row = await db.get(ServiceSession, sid)
        assert (row.summary_result, row.rating_score) == ("resolved", 5)  # the KPI copies


async def test_steps_out_of_order_are_refused_and_write_nothing(store):
    records, loop = store.records, store.records.loop
    sid = await served(store.records, store.taxpayer, store.agent, talk_s=None)  # still live
    await refused(loop.rate(sid, store.taxpayer, LATER, score=4, comment=""))
    await refused(loop.check(sid, store.taxpayer, LATER, decision="confirmed"))
    await refused(loop.review_quality(sid, store.supervisor, LATER, {}, ""), "invalid_payload")
    await refused(loop.resolve_flag(sid, store.supervisor, LATER, "n"))
    await refused(loop.close_follow_up(sid, Actor("agent", store.agent), LATER))
    assert await events(store, sid) == ["joined", "offered", "answered"]
    # ended once; a second end, answer or abandon is not a silent write
    assert await records.ended(sid, LATER, "transferred", "to tier 2", Actor("agent", store.agent))
    assert not await records.ended(sid, LATER, "completed", "again", Actor("agent", store.agent))
    assert not await records.abandoned(sid, LATER, "left")
    assert not await records.offered(sid, store.agent, LATER)
    await refused(records.answered(sid, store.agent, LATER))
    await refused(loop.check(sid, store.taxpayer, LATER, decision="confirmed"))  # no summary
    assert await events(store, sid) == ["joined", "offered", "answered", "ended"]
    view = await records.get(sid, Scope("supervisor", ""))
    assert view["outcome"] == "transferred" and view["end_reason"] == "to tier 2"
    with pytest.raises(ValueError):
        await records.ended(sid, LATER, "exploded", "", Actor("agent", store.agent))


async def test_an_abandoned_request_cannot_be_summarised_rated_or_checked(store):
    sid = await served(store.records, store.taxpayer, None)
    loop = store.records.loop
    await refused(summarise(store, sid), "not_in_session")
    await refused(loop.rate(sid, store.taxpayer, LATER, score=1, comment=""), "not_in_session")
    await refused(loop.check(sid, store.taxpayer, LATER, decision="confirmed"))
    await refused(loop.review_quality(sid, store.supervisor, LATER, _form(), ""))
    assert await events(store, sid) == ["joined", "abandoned"]


async def test_only_the_people_of_the_session_may_act(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    loop = store.records.loop
    await refused(summarise(store, sid, agent=store.other_agent), "not_in_session")
    await refused(
        loop.rate(sid, store.other_taxpayer, LATER, score=5, comment=""), "not_in_session"
    )
    await summarise(store, sid)
    await refused(
        loop.check(sid, store.other_taxpayer, LATER, decision="confirmed"), "not_in_session"
    )
    await refused(loop.close_follow_up(sid, Actor("agent", store.other_agent), LATER), "not_found")


async def test_rating_is_once_idempotent_and_low_scores_flag(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    loop = store.records.loop
    rate = {"score": 2, "comment": "slow", "dimensions": {"efficiency": 1, "av_quality": 3}}
    assert await loop.rate(sid, store.taxpayer, LATER, **rate) == {"flagged": True}
    assert await loop.rate(sid, store.taxpayer, LATER, **rate) == {"flagged": True}  # same
    for other in ({"score": 3}, {"comment": "ok"}, {"dimensions": {"efficiency": 2}}):
        message = await refused(
            loop.rate(sid, store.taxpayer, LATER, **(rate | other)), "already_rated"
        )
        assert "different rating" in message
    await refused(
        loop.rate(sid, store.taxpayer, LATER, score=5, comment="", dimensions={"mood": 5}),
        "invalid_payload",
    )
    view = await store.records.get(sid, Scope("supervisor", ""))
    assert view["loop"]["flag"]["status"] == "open"
    assert view["loop"]["flag"]["reasons"] == ["low_rating"]
    assert view["rating"]["score"] == 2
    assert await events(store, sid) == [
        "joined",
        "offered",
        "answered",
        "ended",
        "rated",
        "flagged",
    ]
    done = await loop.resolve_flag(sid, store.supervisor, LATER, "called the taxpayer back")
    assert done["status"] == "done"
    await refused(loop.resolve_flag(sid, store.supervisor, LATER, "again"))
    view = await store.records.get(sid, Scope("supervisor", ""))
    assert view["loop"]["flag"]["done_by"] == store.supervisor
    assert view["loop"]["flag"]["note"] == "called the taxpayer back"


@pytest.mark.parametrize("score", [1, 2, 3, 4, 5])
async def test_flag_threshold(store, score):
    sid = await served(store.records, store.taxpayer, store.agent)
    flagged = await store.records.loop.rate(sid, store.taxpayer, LATER, score=score, comment="")
    assert flagged == {"flagged": score <= 2}


async def test_a_dispute_flags_and_a_revision_reopens_the_check(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    loop = store.records.loop
    await summarise(store, sid)
    await refused(
        loop.check(sid, store.taxpayer, LATER, decision="disputed", comment=""), "invalid_payload"
    )
    disputed = await loop.check(
        sid, store.taxpayer, LATER, decision="disputed", comment="I asked about refunds"
    )
    assert disputed == {"check": "disputed", "summary_version": 1}
    again = await loop.check(
        sid, store.taxpayer, LATER, decision="disputed", comment="I asked about refunds"
    )
    assert again == disputed  # idempotent
    await refused(loop.check(sid, store.taxpayer, LATER, decision="confirmed"))  # not pending
    view = await store.records.get(sid, Scope("agent", store.agent))
    assert view["loop"]["flag"]["reasons"] == ["disputed"] and view["loop"]["check"] == "disputed"
    assert await summarise(store, sid, asked="refunds") == {"version": 2}
    view = await store.records.get(sid, Scope("agent", store.agent))
    assert view["loop"]["check"] == "pending" and view["loop"]["stage"] == "check"
    await refused(loop.check(sid, store.taxpayer, LATER, decision="confirmed", version=1))
    await loop.check(sid, store.taxpayer, LATER, decision="confirmed", version=2)
    await refused(summarise(store, sid, asked="edit after confirmation"))
    await refused(loop.check(sid, store.taxpayer, LATER, decision="disputed", comment="x"))


async def test_summary_edits_stop_at_the_rating(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    await store.records.loop.rate(sid, store.taxpayer, LATER, score=5, comment="")
    assert await summarise(store, sid) == {"version": 1}  # the first save is always taken
    message = await refused(summarise(store, sid, handled="changed"))
    assert "rated" in message


async def test_follow_up_is_open_until_done_and_visible_to_the_taxpayer(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    due = date(2026, 11, 9)
    await summarise(store, sid, result="follow_up", follow_up_due=due)
    mine = await store.records.get(sid, Scope("taxpayer", store.taxpayer))
    assert mine["loop"]["follow_up"] == {"status": "open", "due": "2026-11-09", "done_at": None}
    done = await store.records.loop.close_follow_up(
        sid, Actor("agent", store.agent), LATER, "certificate issued"
    )
    assert done["status"] == "done"
    await refused(store.records.loop.close_follow_up(sid, Actor("agent", store.agent), LATER))
    mine = await store.records.get(sid, Scope("taxpayer", store.taxpayer))
    assert mine["loop"]["follow_up"]["status"] == "done"
    rows, _ = await store.records.list(Scope("taxpayer", store.taxpayer))
    assert [r["loop"]["follow_up"]["status"] for r in rows] == ["done"]


def _form():
    return {
        "greeting": 10,
        "accuracy": 25,
        "completeness": 20,
        "communication": 15,
        "compliance": 10,
        "record": 5,
    }


async def test_quality_reviews_are_checked_and_kept(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    loop = store.records.loop
    review = await loop.review_quality(sid, store.supervisor, LATER, _form(), "good")
    assert review["total"] == 85 and review["max_total"] == 100
    for bad in (
        _form() | {"accuracy": 31},
        _form() | {"bonus": 1},
        {k: v for k, v in _form().items() if k != "record"},
        _form() | {"greeting": -1},
    ):
        await refused(loop.review_quality(sid, store.supervisor, LATER, bad, ""), "invalid_payload")
    await loop.review_quality(sid, store.supervisor, LATER, _form() | {"record": 10}, "better")
    detail = await loop.detail(sid)
    assert [q["total"] for q in detail["quality_reviews"]] == [85, 90]
    assert [e["kind"] for e in detail["audit"]][-2:] == ["quality_reviewed", "quality_reviewed"]


async def test_the_audit_log_is_append_only_in_the_database(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    async with store.engine.connect() as conn:
        for statement in (
            update(SessionEvent).values(kind="forged"),
            delete(SessionEvent),
        ):
            with pytest.raises((DBAPIError, IntegrityError)) as exc:
                await conn.execute(statement)
            assert "append-only" in str(exc.value)
            await conn.rollback()
        count = await conn.scalar(select(func.count()).select_from(SessionEvent))
    assert count == 4
    assert await events(store, sid) == ["joined", "offered", "answered", "ended"]


async def test_coming_back_with_the_same_matter_within_a_week_marks_a_recontact(store):
    first = await served(store.records, store.taxpayer, store.agent)
    other_matter = await served(
        store.records, store.taxpayer, store.agent, joined=T0 + timedelta(days=1), category="vat"
    )
    await served(store.records, store.taxpayer, None, joined=T0 + timedelta(days=6))
    late = await served(store.records, store.taxpayer, store.agent, joined=T0 + timedelta(days=20))
    async with store.records.sessionmaker() as db:
        marks = dict(
            (await db.execute(select(ServiceSession.id, ServiceSession.recontacted))).all()
        )
    assert marks[first] is True
    assert marks[other_matter] is False and marks[late] is False


async def test_recording_link(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    await store.records.set_recording(sid, "/api/recordings/x", LATER, Actor("system", None))
    view = await store.records.get(sid, Scope("agent", store.agent))
    assert view["recording_url"] == "/api/recordings/x"
    await refused(
        store.records.set_recording("nope", "u", LATER, Actor("system", None)), "not_found"
    )


async def test_database_is_the_same_after_refusals(store):
    sid = await served(store.records, store.taxpayer, store.agent)
    async with store.engine.connect() as conn:
        before = (await conn.execute(text("SELECT * FROM service_sessions"))).all()
    await refused(store.records.loop.check(sid, store.taxpayer, LATER, decision="confirmed"))
    await refused(store.records.loop.resolve_flag(sid, store.supervisor, LATER, "x"))
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT * FROM service_sessions"))).all() == before
