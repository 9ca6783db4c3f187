"""Bookings on SQLite and PostgreSQL: seats, one a day, pre-review, cancel and reschedule,
check-in timing, no-shows and the block staff lift, materials, the audit."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.appointments.conftest import CAL, NOW, PDF, PLAN, SLOT_RULES, Db
from vtax.appointments.bookings import BookingRequest
from vtax.appointments.outbox import Outbox
from vtax.appointments.slots import Slot, find_slot, slots_of_day
from vtax.appointments.tables import SlotSeats
from vtax.db import make_engine
from vtax.errors import DomainError
from vtax.review.audit import Actor

AGENT = Actor("agent", "agent-1")
MONDAY = date(2026, 12, 7)


def slot(hhmm: str = "0900", day: date = MONDAY) -> Slot:
    found = find_slot(
        CAL, PLAN, SLOT_RULES, NOW, f"invoices~zh-CN~{day:%Y%m%d}T{hhmm}",
        lead_days=1, horizon_days=5,
    )  # fmt: skip
    assert found is not None
    return found


def req(
    taxpayer: str, phone: str | None = "+8613800138000", locale: str = "zh-CN"
) -> BookingRequest:
    return BookingRequest(taxpayer, ["invoices.apply"], "need more invoices", "web", phone, locale)


async def code_of(coro: object) -> str:
    try:
        await coro  # type: ignore[misc]
    except DomainError as exc:
        return exc.code
    raise AssertionError("no DomainError")


async def test_book_takes_a_seat_and_queues_the_confirmation(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    bookings = db.bookings()
    b = await bookings.book(slot(), req(tp), NOW)
    assert b.state == "requested" and b.local_day == "2026-12-07" and b.active_day == "2026-12-07"
    assert await bookings.seats([b.slot_id]) == {b.slot_id: 1}
    assert await Outbox(db.sessions).states(b.id) == [("confirmation", "pending")]
    assert [e.kind for e in await bookings.events(b.id)] == ["requested"]
    assert (await bookings.get(b.id, tp)).id == b.id
    assert await code_of(bookings.get(b.id, "somebody-else")) == "not_found"


async def test_a_full_slot_is_refused(db: Db) -> None:
    tps = await db.taxpayers(3)
    bookings = db.bookings()
    s = slot()
    assert s.capacity == 2
    await bookings.book(s, req(tps[0]), NOW)
    await bookings.book(s, req(tps[1]), NOW)
    assert await code_of(bookings.book(s, req(tps[2]), NOW)) == "slot_full"
    assert await bookings.seats([s.id]) == {s.id: 2}


async def test_concurrent_bookers_on_two_nodes_never_oversell(db: Db) -> None:
    """40 taxpayers book the same 2-seat slot at once through two engines (two nodes' pools)."""
    tps = await db.taxpayers(40)
    other = make_engine(db.url)
    try:
        nodes = [db.bookings(), db.bookings(other)]
        s = slot()

        async def one(i: int) -> str:
            try:
                await nodes[i % 2].book(s, req(tps[i]), NOW)
                return "ok"
            except DomainError as exc:
                return exc.code

        results = await asyncio.gather(*(one(i) for i in range(40)))
    finally:
        await other.dispose()
    assert results.count("ok") == 2 and results.count("slot_full") == 38
    async with db.sessions() as session:
        seats = await session.get(SlotSeats, s.id)
        assert seats is not None and seats.booked == 2


async def test_one_active_booking_per_taxpayer_per_day_even_at_once(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    bookings = db.bookings()
    results = await asyncio.gather(
        *(bookings.book(slot(h), req(tp), NOW) for h in ("0900", "0930", "1000", "1400")),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(ok) == 1 and len(refused) == 3
    assert {r.code for r in refused} == {"one_booking_a_day"}
    # the refused ones gave their seats back (rolled back)
    seats = await bookings.seats([slot(h).id for h in ("0900", "0930", "1000", "1400")])
    assert sum(seats.values()) == 1
    # another day is fine; after cancelling, the same day is free again
    await bookings.book(slot("0900", date(2026, 12, 8)), req(tp), NOW)
    await bookings.cancel(ok[0].id, Actor("taxpayer", tp), NOW, taxpayer_id=tp)
    again = await bookings.book(slot("1000"), req(tp), NOW)
    assert again.state == "requested"


async def test_pre_review_decisions(db: Db) -> None:
    tps = await db.taxpayers(3)
    bookings = db.bookings()
    s = slot()
    a = await bookings.book(s, req(tps[0]), NOW)
    r = await bookings.book(s, req(tps[1]), NOW)
    assert (
        await code_of(bookings.review(r.id, AGENT, "redirected_online", NOW)) == "invalid_payload"
    )
    assert await code_of(bookings.review(r.id, AGENT, "rejected", NOW)) == "invalid_payload"
    assert await code_of(bookings.review(r.id, AGENT, "served", NOW)) == "invalid_payload"  # type: ignore[arg-type]

    taken = await bookings.review(a.id, AGENT, "pre_review", NOW)
    assert taken.state == "pre_review" and taken.reviewed_by == "agent-1"
    approved = await bookings.review(a.id, AGENT, "approved", NOW, note="ok")
    assert approved.state == "approved"
    assert (
        await code_of(bookings.review(a.id, AGENT, "rejected", NOW, reason="x")) == "invalid_state"
    )
    # approval queues both reminders (the day before and 15 min before), after the result
    kinds = await Outbox(db.sessions).states(a.id)
    assert ("approved", "pending") in kinds and kinds.count(("reminder", "pending")) == 2

    redirected = await bookings.review(
        r.id, AGENT, "redirected_online", NOW, route="https://etax.example/invoices"
    )
    assert redirected.state == "redirected_online" and redirected.online_route
    assert redirected.active_day is None
    # the redirect gave the seat back: a third taxpayer gets it
    assert await bookings.seats([s.id]) == {s.id: 1}
    c = await bookings.book(s, req(tps[2]), NOW)
    rejected = await bookings.review(c.id, AGENT, "rejected", NOW, reason="needs the hall")
    assert rejected.reject_reason == "needs the hall"
    assert [e.kind for e in await bookings.events(a.id)] == ["requested", "pre_review", "approved"]


async def test_cancel_until_the_cut_off_then_only_staff(db: Db) -> None:
    tps = await db.taxpayers(2)
    bookings = db.bookings()
    s = slot()
    b = await bookings.book(s, req(tps[0]), NOW)
    late = s.starts_at - timedelta(minutes=119)
    assert (
        await code_of(bookings.cancel(b.id, Actor("taxpayer", tps[0]), late, taxpayer_id=tps[0]))
        == "cancellation_closed"
    )
    assert (
        await code_of(bookings.cancel(b.id, Actor("taxpayer", tps[1]), NOW, taxpayer_id=tps[1]))
        == "not_found"
    )
    done = await bookings.cancel(b.id, AGENT, late, "agent unavailable")
    assert done.state == "cancelled" and done.cancel_reason == "agent unavailable"
    assert await bookings.seats([s.id]) == {s.id: 0}
    assert await Outbox(db.sessions).states(b.id) == [
        ("confirmation", "skipped"),
        ("cancelled", "pending"),
    ]
    assert await code_of(bookings.cancel(b.id, AGENT, late)) == "invalid_state"


async def test_reschedule_is_all_or_nothing_and_keeps_the_review(db: Db) -> None:
    tps = await db.taxpayers(3)
    bookings = db.bookings()
    b = await bookings.book(slot("0900"), req(tps[0]), NOW)
    await bookings.review(b.id, AGENT, "approved", NOW)
    await bookings.attach(b.id, tps[0], "id.pdf", PDF, NOW)
    full = slot("1400")  # 1 seat
    await bookings.book(full, req(tps[1]), NOW)
    assert await code_of(bookings.reschedule(b.id, tps[0], full, NOW)) == "slot_full"
    assert (await bookings.get(b.id)).state == "approved"
    assert await bookings.seats([b.slot_id]) == {b.slot_id: 1}

    moved = await bookings.reschedule(b.id, tps[0], slot("1000"), NOW)
    assert moved.state == "approved" and moved.rescheduled_from == b.id
    old = await bookings.get(b.id)
    assert old.state == "rescheduled" and old.rescheduled_to == moved.id
    assert await bookings.seats([b.slot_id, moved.slot_id]) == {b.slot_id: 0, moved.slot_id: 1}
    assert [m.filename for m in await bookings.materials(moved.id)] == ["id.pdf"]
    # to another day that already has a booking of the taxpayer: refused, nothing moves
    await bookings.book(slot("0900", date(2026, 12, 8)), req(tps[0]), NOW)
    assert (
        await code_of(bookings.reschedule(moved.id, tps[0], slot("0930", date(2026, 12, 8)), NOW))
        == "one_booking_a_day"
    )
    assert (await bookings.get(moved.id)).state == "approved"


async def test_check_in_timing(db: Db) -> None:
    tps = await db.taxpayers(3)
    bookings = db.bookings()
    s = slot()
    t = s.starts_at
    a = await bookings.book(s, req(tps[0]), NOW)
    assert await code_of(bookings.check_in(a.id, tps[0], t)) == "invalid_state"  # not approved
    await bookings.review(a.id, AGENT, "approved", NOW)
    assert await code_of(bookings.check_in(a.id, tps[0], t - timedelta(minutes=11))) == "too_early"
    b, entry = await bookings.check_in(a.id, tps[0], t - timedelta(minutes=5))
    assert b.state == "checked_in" and entry.on_time and entry.joined_at == t.timestamp()
    again, same = await bookings.check_in(a.id, tps[0], t)
    assert same == entry and again.state == "checked_in"
    queued = await bookings.queued(a.id, "ticket-1", t)
    assert queued.ticket_id == "ticket-1"
    served = await bookings.served(a.id, "session-1", t + timedelta(minutes=2))
    assert served.state == "served" and served.active_day is None

    late = await bookings.book(s, req(tps[1]), NOW)
    await bookings.review(late.id, AGENT, "approved", NOW)
    _, walk_in = await bookings.check_in(late.id, tps[1], t + timedelta(minutes=12))
    assert not walk_in.on_time and walk_in.priority == 0
    assert walk_in.joined_at == (t + timedelta(minutes=12)).timestamp()

    gone = await bookings.book(slot("0930"), req(tps[2]), NOW)
    await bookings.review(gone.id, AGENT, "approved", NOW)
    t2 = slot("0930").starts_at
    assert (
        await code_of(bookings.check_in(gone.id, tps[2], t2 + timedelta(minutes=15))) == "no_show"
    )
    await bookings.sweep(t2 + timedelta(minutes=15))
    assert (await bookings.get(gone.id)).state == "no_show"
    after = t2 + timedelta(minutes=16)
    assert await code_of(bookings.check_in(gone.id, tps[2], after)) == "no_show"


async def test_no_shows_strike_block_and_staff_lift_it(db: Db) -> None:
    [tp, other] = await db.taxpayers(2)
    bookings = db.bookings()
    ids = []
    for day in (date(2026, 12, 7), date(2026, 12, 8)):
        b = await bookings.book(slot("0900", day), req(tp), NOW)
        await bookings.review(b.id, AGENT, "approved", NOW)
        ids.append(b.id)
    unreviewed = await bookings.book(slot("0900", date(2026, 12, 9)), req(other), NOW)
    after = slot("0900", date(2026, 12, 9)).starts_at + timedelta(minutes=16)
    assert (await bookings.strikes(tp, after)).strikes == 0
    swept = await bookings.sweep(after)
    assert {b.id: b.state for b in swept} == {
        ids[0]: "no_show",
        ids[1]: "no_show",
        unreviewed.id: "cancelled",
    }
    assert await bookings.sweep(after) == []  # once only
    strikes = await bookings.strikes(tp, after)
    assert (strikes.strikes, strikes.blocked, strikes.month) == (2, True, "2026-12")
    assert not (await bookings.strikes(other, after)).blocked  # not reviewed: no strike
    later_now = after
    nxt = find_slot(
        CAL,
        PLAN,
        SLOT_RULES,
        later_now,
        "invoices~zh-CN~20261214T0900",
        lead_days=1,
        horizon_days=5,
    )
    assert nxt is not None
    assert await code_of(bookings.book(nxt, req(tp), later_now)) == "booking_blocked"
    assert await code_of(bookings.lift_block(other, AGENT, "why", later_now)) == "invalid_state"
    lifted = await bookings.lift_block(
        tp, Actor("supervisor", "sup-1"), "phoned, was ill", later_now
    )
    assert (lifted.strikes, lifted.forgiven, lifted.blocked) == (2, 2, False)
    assert (await bookings.book(nxt, req(tp), later_now)).state == "requested"
    # next month starts clean
    assert (await bookings.strikes(tp, later_now + timedelta(days=31))).strikes == 0
    async with db.sessions() as session:
        from vtax.appointments.tables import AppointmentEvent

        kinds = (
            await session.execute(
                select(AppointmentEvent.kind, AppointmentEvent.actor_id).where(
                    AppointmentEvent.taxpayer_id == tp, AppointmentEvent.kind == "block_lifted"
                )
            )
        ).all()
        assert kinds == [("block_lifted", "sup-1")]


async def test_materials_use_the_document_checks(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    bookings = db.bookings()
    b = await bookings.book(slot(), req(tp), NOW)
    m = await bookings.attach(b.id, tp, "../../etc/passwd.exe", PDF, NOW)
    assert m.media_type == "application/pdf" and m.filename == "passwd.pdf"
    meta, data = await bookings.material(b.id, m.id)
    assert data == PDF and meta.sha256 == m.sha256
    assert (
        await code_of(bookings.attach(b.id, tp, "x.pdf", b"MZ\x90\x00" * 10, NOW))
        == "unsupported_media_type"
    )
    assert await code_of(bookings.attach(b.id, tp, "x.pdf", b"", NOW)) == "invalid_payload"
    assert (
        await code_of(bookings.attach(b.id, tp, "x.pdf", PDF + b"x" * 5000, NOW))
        == "payload_too_large"
    )
    assert await code_of(bookings.attach(b.id, "intruder", "x.pdf", PDF, NOW)) == "not_found"
    await bookings.attach(b.id, tp, "two.png", b"\x89PNG\r\n\x1a\n" + b"0" * 20, NOW)
    assert await code_of(bookings.attach(b.id, tp, "three.pdf", PDF, NOW)) == "too_many_materials"
    # a corrupted file is never served
    assert bookings.store is not None
    await bookings.store.put(m.storage_key, b"%PDF-tampered")
    assert await code_of(bookings.material(b.id, m.id)) == "document_corrupted"
    assert await code_of(bookings.material(b.id, "nope")) == "not_found"


@pytest.mark.parametrize("hhmm", ["0900"])
async def test_slots_of_the_day_match_the_plan(hhmm: str) -> None:
    assert slot(hhmm) in slots_of_day(CAL, PLAN, SLOT_RULES, MONDAY, "invoices", "zh-CN")


async def test_crossing_reschedules_do_not_deadlock(db: Db) -> None:
    """Taxpayers in slot A move to B while others in B move to A, at once, back and forth:
    the seats are locked in one order, so PostgreSQL never has to break a deadlock."""
    pairs = [("0900", "0930"), ("1000", "1030"), ("1100", "1130")]
    tps = await db.taxpayers(2 * len(pairs))
    bookings = db.bookings()
    current = {}
    for i, (a, b) in enumerate(pairs):
        current[tps[2 * i]] = (await bookings.book(slot(a), req(tps[2 * i]), NOW)).id
        current[tps[2 * i + 1]] = (await bookings.book(slot(b), req(tps[2 * i + 1]), NOW)).id
    for round_ in range(6):

        async def move(i: int, j: int, forth: bool) -> None:
            a, b = pairs[i]
            tp = tps[2 * i + j]
            target = (b if j == 0 else a) if forth else (a if j == 0 else b)
            moved = await bookings.reschedule(current[tp], tp, slot(target), NOW)
            current[tp] = moved.id

        forth = round_ % 2 == 0
        await asyncio.gather(*(move(i, j, forth) for i in range(len(pairs)) for j in (0, 1)))
    seats = await bookings.seats([slot(h).id for p in pairs for h in p])
    assert set(seats.values()) == {1}
