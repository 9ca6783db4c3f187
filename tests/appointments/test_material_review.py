"""Per-file pre-review of a booking's materials, on SQLite and PostgreSQL: staff's verdict on
each file (accepted, or needs replacing with a reason), the taxpayer's replacement with the
checks of `attach`, no approval while a file needs replacing, the audit, the text and the
`appointment:update` push; who may do it, and never through another booking."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.appointments.conftest import NOW, PDF, SH, Db
from tests.appointments.test_bookings import AGENT, MONDAY, code_of, req, slot
from tests.appointments.test_use_cases import AGENT as AGENT_CALLER
from tests.appointments.test_use_cases import SUPERVISOR, Clock, FakeNotifier, app
from vtax.app.ports import Caller
from vtax.appointments.outbox import Outbox
from vtax.appointments.tables import OutboxMessage
from vtax.appointments.texts import compose
from vtax.contract.appointments import MaterialVerdictIn, PreReviewIn
from vtax.db import make_engine
from vtax.errors import DomainError

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 20


async def test_a_file_that_needs_replacing_blocks_approval_until_replaced(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    bookings = db.bookings()
    b = await bookings.book(slot(), req(tp, locale="en"), NOW)
    first = await bookings.attach(b.id, tp, "id.pdf", PDF, NOW)
    second = await bookings.attach(b.id, tp, "licence.png", PNG, NOW)
    assert (first.review, first.revision) == ("pending", 1)

    # a verdict takes a requested booking up
    b1, m1 = await bookings.review_material(b.id, first.id, AGENT, "accepted", NOW)
    assert b1.state == "pre_review" and (m1.review, m1.reviewed_by) == ("accepted", "agent-1")
    b2, m2 = await bookings.review_material(
        b.id, second.id, AGENT, "needs_replacing", NOW, reason="illegible", note="too dark"
    )
    assert (m2.review, m2.review_reason, m2.review_note) == (
        "needs_replacing",
        "illegible",
        "too dark",
    )
    assert b2.version == b1.version + 1

    assert (
        await code_of(bookings.review(b.id, AGENT, "approved", NOW)) == "materials_need_replacing"
    )
    assert (await bookings.get(b.id)).state == "pre_review"

    # the replacement: the same checks as attach
    assert (
        await code_of(
            bookings.replace_material(b.id, second.id, tp, "x.png", b"MZ\x90\x00" * 9, NOW)
        )
        == "unsupported_media_type"
    )
    assert (
        await code_of(bookings.replace_material(b.id, second.id, tp, "x", b"", NOW))
        == "invalid_payload"
    )
    assert (
        await code_of(
            bookings.replace_material(b.id, second.id, tp, "x.pdf", PDF + b"x" * 5000, NOW)
        )
        == "payload_too_large"
    )
    # only the booking's taxpayer, only a file marked needs_replacing
    assert (
        await code_of(bookings.replace_material(b.id, second.id, "intruder", "x.pdf", PDF, NOW))
        == "not_found"
    )
    assert (
        await code_of(bookings.replace_material(b.id, first.id, tp, "x.pdf", PDF, NOW))
        == "invalid_state"
    )

    new_pdf = PDF + b"v2"
    _, replaced = await bookings.replace_material(
        b.id, second.id, tp, "../licence v2.pdf", new_pdf, NOW
    )
    assert replaced.id == second.id and replaced.revision == 2
    assert (replaced.review, replaced.review_reason, replaced.review_note) == (
        "pending",
        None,
        None,
    )
    assert replaced.media_type == "application/pdf" and replaced.filename.endswith(".pdf")
    meta, data = await bookings.material(b.id, second.id)
    assert data == new_pdf and meta.sha256 == hashlib.sha256(new_pdf).hexdigest()
    # the earlier file stays stored (the audit names its SHA-256)
    assert bookings.store is not None
    assert await bookings.store.get(second.storage_key) == PNG
    # replaced once: not again until staff mark it again
    assert (
        await code_of(bookings.replace_material(b.id, second.id, tp, "y.pdf", PDF, NOW))
        == "invalid_state"
    )

    approved = await bookings.review(b.id, AGENT, "approved", NOW)
    assert approved.state == "approved"
    # after the decision, neither verdicts nor replacements
    assert (
        await code_of(bookings.review_material(b.id, first.id, AGENT, "accepted", NOW))
        == "invalid_state"
    )

    events = [(e.kind, e.actor_role, e.data) for e in await bookings.events(b.id)]
    kinds = [k for k, _, _ in events]
    assert kinds == [
        "requested", "material_added", "material_added", "pre_review", "material_reviewed",
        "material_reviewed", "material_replaced", "approved",
    ]  # fmt: skip
    verdict = events[5][2]
    assert verdict == {
        "material_id": second.id, "revision": 1, "sha256": second.sha256,
        "verdict": "needs_replacing", "reason": "illegible", "note": "too dark",
    }  # fmt: skip
    assert events[6][1] == "taxpayer" and events[6][2]["previous_sha256"] == second.sha256
    assert events[6][2]["sha256"] == replaced.sha256 and events[6][2]["revision"] == 2

    # the text to the phone for the file to replace, in the booking's language
    async with db.sessions() as s:
        texts = (
            (await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "material_replace")))
            .scalars()
            .all()
        )
    assert len(texts) == 1 and texts[0].locale == "en"
    body = compose("material_replace", "en", texts[0].data, SH)
    assert "licence.png" in body and "cannot be read (too dark)" in body
    assert ("material_replace", "pending") in await Outbox(db.sessions).states(b.id)


async def test_a_material_of_another_booking_is_not_found_through_this_one(db: Db) -> None:
    tp, other = await db.taxpayers(2)
    bookings = db.bookings()
    mine = await bookings.book(slot("0900"), req(tp), NOW)
    theirs = await bookings.book(slot("0930"), req(other), NOW)
    m = await bookings.attach(theirs.id, other, "theirs.pdf", PDF, NOW)
    assert (
        await code_of(bookings.review_material(mine.id, m.id, AGENT, "accepted", NOW))
        == "not_found"
    )
    assert (
        await code_of(
            bookings.review_material(mine.id, m.id, AGENT, "needs_replacing", NOW, reason="expired")
        )
        == "not_found"
    )
    # nothing changed on either booking
    assert (await bookings.get(mine.id)).state == "requested"
    assert [x.review for x in await bookings.materials(theirs.id)] == ["pending"]
    await bookings.review_material(theirs.id, m.id, AGENT, "needs_replacing", NOW, reason="expired")
    # the owner of `mine` cannot replace it through their booking, nor the other through it
    assert (
        await code_of(bookings.replace_material(mine.id, m.id, tp, "x.pdf", PDF, NOW))
        == "not_found"
    )
    assert (
        await code_of(bookings.replace_material(mine.id, m.id, other, "x.pdf", PDF, NOW))
        == "not_found"
    )
    assert (
        await code_of(bookings.review_material(mine.id, "nope", AGENT, "accepted", NOW))
        == "not_found"
    )


async def test_staff_change_a_verdict_and_the_other_decisions_stay_open(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    bookings = db.bookings()
    b = await bookings.book(slot(), req(tp, phone=None), NOW)
    m = await bookings.attach(b.id, tp, "id.pdf", PDF, NOW)
    await bookings.review_material(
        b.id, m.id, AGENT, "needs_replacing", NOW, reason="other", note="x"
    )
    # a verdict changed to accepted clears the reason and lets the approval through
    _, back = await bookings.review_material(b.id, m.id, AGENT, "accepted", NOW)
    assert (back.review, back.review_reason, back.review_note) == ("accepted", None, None)
    await bookings.review_material(b.id, m.id, AGENT, "needs_replacing", NOW, reason="expired")
    # no phone: no text; rejection is still possible with a file to replace
    assert await Outbox(db.sessions).states(b.id) == []
    rejected = await bookings.review(b.id, AGENT, "rejected", NOW, reason="wrong business")
    assert rejected.state == "rejected"
    assert (
        await code_of(bookings.replace_material(b.id, m.id, tp, "x.pdf", PDF, NOW))
        == "invalid_state"
    )
    assert (
        await code_of(bookings.review_material(b.id, m.id, AGENT, "maybe", NOW))
        == "invalid_payload"
    )


async def test_a_verdict_is_a_step_on_the_booking_version(db: Db) -> None:
    """The approval counts the files to replace in the booking's version, so a verdict moves
    the version too: an approval loaded before it fails its compare-and-set."""
    [tp] = await db.taxpayers(1)
    bookings = db.bookings()
    b = await bookings.book(slot(), req(tp), NOW)
    m = await bookings.attach(b.id, tp, "id.pdf", PDF, NOW)
    before = (await bookings.get(b.id)).version
    await bookings.review_material(b.id, m.id, AGENT, "needs_replacing", NOW, reason="illegible")
    assert (await bookings.get(b.id)).version == before + 2  # taken up, then the verdict


async def test_use_cases_staff_review_the_owner_replaces_and_hears_of_it(db: Db) -> None:
    tp, other = await db.taxpayers(2)
    taxpayer, stranger = Caller(tp, "taxpayer"), Caller(other, "taxpayer")
    notes = FakeNotifier()
    a = app(db, Clock(NOW), notes)
    b = await a.bookings.book(slot(), req(tp), NOW)
    m = await a.attach(taxpayer, b.id, "id.pdf", PDF)
    verdict = MaterialVerdictIn(
        verdict="needs_replacing", reason="wrong_document", note="bring the licence"
    )
    assert await code_of(a.review_material(taxpayer, b.id, m.id, verdict)) == "forbidden"
    seen = await a.review_material(AGENT_CALLER, b.id, m.id, verdict)
    assert seen.state == "pre_review" and seen.taxpayer_id == tp
    assert (seen.materials[0].review, seen.materials[0].review_reason) == (
        "needs_replacing",
        "wrong_document",
    )
    subject, pushed = notes.sent[-1]
    assert subject == tp and pushed.event == "appointment:update"
    told = pushed.booking.materials[0]  # type: ignore[attr-defined]
    assert (told.review, told.review_reason, told.review_note) == (
        "needs_replacing", "wrong_document", "bring the licence",
    )  # fmt: skip
    assert (
        await code_of(a.pre_review(SUPERVISOR, b.id, PreReviewIn(decision="approved")))
        == "materials_need_replacing"
    )
    assert await code_of(a.replace_material(AGENT_CALLER, b.id, m.id, "x.pdf", PDF)) == "forbidden"
    assert await code_of(a.replace_material(stranger, b.id, m.id, "x.pdf", PDF)) == "not_found"
    out = await a.replace_material(taxpayer, b.id, m.id, "licence.pdf", PDF + b"2")
    assert (out.review, out.revision, out.id) == ("pending", 2, m.id) and out.replaced_at
    assert notes.sent[-1][1].booking.materials[0].revision == 2  # type: ignore[attr-defined]
    ok = await a.review_material(SUPERVISOR, b.id, m.id, MaterialVerdictIn(verdict="accepted"))
    assert ok.materials[0].review == "accepted" and ok.materials[0].reviewed_at
    assert (
        await a.pre_review(SUPERVISOR, b.id, PreReviewIn(decision="approved"))
    ).state == "approved"


@pytest.mark.parametrize(
    "body",
    [
        {"verdict": "needs_replacing"},
        {"verdict": "needs_replacing", "reason": "other"},
        {"verdict": "needs_replacing", "reason": "blurry"},
        {"verdict": "accepted", "reason": "illegible"},
        {"verdict": "accepted", "note": "fine"},
        {"verdict": "maybe"},
        {"verdict": "needs_replacing", "reason": "other", "note": "x" * 501},
    ],
)
def test_verdict_bodies_are_validated(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        MaterialVerdictIn.model_validate(body)


async def test_an_approval_racing_a_verdict_on_two_nodes_never_passes_a_file_to_replace(
    db: Db,
) -> None:
    """Approve and mark a file at once through two engines (two nodes' pools), many times:
    a booking is never approved with a file that needs replacing."""
    tps = await db.taxpayers(8)
    other = make_engine(db.url)
    try:
        one, two = db.bookings(), db.bookings(other)
        for i, tp in enumerate(tps):
            b = await one.book(
                slot("0900" if i % 2 else "0930", MONDAY + timedelta(days=i // 2)), req(tp), NOW
            )
            m = await one.attach(b.id, tp, "id.pdf", PDF, NOW)
            await one.review(b.id, AGENT, "pre_review", NOW)

            async def approve(b_id: str = b.id) -> str:
                try:
                    await one.review(b_id, AGENT, "approved", NOW)
                    return "approved"
                except DomainError as exc:
                    return exc.code

            async def mark(b_id: str = b.id, m_id: str = m.id) -> str:
                try:
                    await two.review_material(
                        b_id, m_id, AGENT, "needs_replacing", NOW, reason="illegible"
                    )
                    return "marked"
                except DomainError as exc:
                    return exc.code

            results = await asyncio.gather(approve(), mark())
            state = (await one.get(b.id)).state
            [after] = await one.materials(b.id)
            assert not (state == "approved" and after.review == "needs_replacing"), results
            assert set(results) <= {
                "approved", "marked", "invalid_state", "materials_need_replacing",
            }, results  # fmt: skip
    finally:
        await other.dispose()
