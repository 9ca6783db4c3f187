"""The text outbox and the reminder job on both engines and two nodes: leases, no double
sends, retries, skips; texts in four languages; the callback records."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.appointments.conftest import NOW, SH, Db
from tests.appointments.test_bookings import AGENT, req, slot
from vtax.appointments import outbox
from vtax.appointments.callback_store import Callbacks
from vtax.appointments.callbacks import CallbackRules
from vtax.appointments.outbox import Outbox
from vtax.appointments.reminders import ReminderJob
from vtax.appointments.texts import LOCALES, compose
from vtax.db import make_engine, session_factory
from vtax.sms import SmsError


class FakeSms:
    """Implements SmsSender; remembers what it was given, fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    async def send(self, phone: str, text: str) -> None:
        await asyncio.sleep(0.005)  # a gateway takes a moment: let the nodes interleave
        if self.fail:
            raise SmsError("gateway down")
        self.sent.append((phone, text))


async def fill(db: Db, n: int) -> None:
    async with db.sessions() as session, session.begin():
        for i in range(n):
            outbox.enqueue(
                session, dedupe=f"m{i}", kind="turn_near", phone="+8613800138000",
                locale="en", due_at=NOW - timedelta(seconds=i), data={"minutes": 2},
            )  # fmt: skip


async def test_two_nodes_claim_disjoint_batches_of_at_most_the_limit(db: Db) -> None:
    await fill(db, 10)
    other = make_engine(db.url)
    try:
        a, b = Outbox(db.sessions), Outbox(session_factory(other))
        got_a, got_b = await asyncio.gather(a.claim("a", NOW, 60, 3), b.claim("b", NOW, 60, 3))
        assert len(got_a) == 3 and len(got_b) == 3
        assert not {x.id for x in got_a} & {x.id for x in got_b}
        # the leased ones are not claimed again while the lease runs; the rest are
        rest = await a.claim("c", NOW, 60, 100)
        assert len(rest) == 4
        assert await a.claim("d", NOW + timedelta(seconds=59), 60, 100) == []
        # the lease ran out: another node takes them; the first owner can no longer finish
        again = await b.claim("e", NOW + timedelta(seconds=61), 60, 100)
        assert {x.id for x in again} == {x.id for x in got_a + got_b + rest}
        assert not await a.sent(got_a[0].id, "a", NOW)
        assert await b.sent(got_a[0].id, "e", NOW)
        assert not await b.sent(got_a[0].id, "e", NOW)  # once
    finally:
        await other.dispose()


async def test_not_yet_due_is_not_claimed(db: Db) -> None:
    async with db.sessions() as session, session.begin():
        outbox.enqueue(
            session, dedupe="later", kind="turn_near", phone="+8613800138000", locale="en",
            due_at=NOW + timedelta(minutes=5),
        )  # fmt: skip
    box = Outbox(db.sessions)
    assert await box.claim("a", NOW, 60) == []
    assert len(await box.claim("a", NOW + timedelta(minutes=5), 60)) == 1


async def test_two_reminder_jobs_send_each_text_once(db: Db) -> None:
    tps = await db.taxpayers(6)
    bookings = db.bookings()
    made = []
    for i, tp in enumerate(tps):
        b = await bookings.book(
            slot(["0900", "0930", "1000"][i % 3]), req(tp, locale=list(LOCALES)[i % 4]), NOW
        )
        await bookings.review(b.id, AGENT, "approved", NOW)
        made.append(b)
    other = make_engine(db.url)
    sms = FakeSms()
    try:
        jobs = [
            ReminderJob(Outbox(db.sessions), bookings, sms, SH, "node-a", batch=2),
            ReminderJob(
                Outbox(session_factory(other)), db.bookings(other), sms, SH, "node-b", batch=2
            ),
        ]
        for _ in range(6):
            await asyncio.gather(*(j.run_once(NOW) for j in jobs))
    finally:
        await other.dispose()
    # a confirmation and an approval per booking, each exactly once; reminders are not due
    assert len(sms.sent) == 12 == len(set(sms.sent))
    assert all(phone == "+8613800138000" for phone, _ in sms.sent)
    assert any("2026-12-07 09:00" in text and "预审" in text for _, text in sms.sent)
    # the day-before reminder at T - 24 h; the booking becomes `reminded`
    day_before = max(b.starts_at for b in made) - timedelta(minutes=1440)
    job = ReminderJob(Outbox(db.sessions), bookings, sms, SH, "node-a", batch=50)
    cancelled = made[1]
    await bookings.cancel(cancelled.id, AGENT, day_before - timedelta(minutes=1))
    sent = await job.run_once(day_before)
    assert sent == 1 + 5  # five reminders and the cancellation notice
    assert (await bookings.get(made[0].id)).state == "reminded"
    assert (await bookings.get(made[2].id)).state == "reminded"
    states = await Outbox(db.sessions).states(cancelled.id)
    assert ("reminder", "skipped") in states and ("cancelled", "sent") in states
    # the 15-minute reminder keeps the state reminded
    assert await job.run_once(max(b.starts_at for b in made) - timedelta(minutes=15)) == 5
    assert (await bookings.get(made[0].id)).state == "reminded"


async def test_a_failing_gateway_is_retried_then_given_up(db: Db) -> None:
    await fill(db, 1)
    box = Outbox(db.sessions, max_attempts=2)
    sms = FakeSms(fail=True)
    job = ReminderJob(box, db.bookings(), sms, SH, "n", retry_s=30)
    assert await job.run_once(NOW) == 0
    assert await box.claim("x", NOW + timedelta(seconds=29), 60) == []  # waiting to retry
    assert await job.run_once(NOW + timedelta(seconds=31)) == 0
    assert await job.run_once(NOW + timedelta(seconds=120)) == 0
    from sqlalchemy import select

    from vtax.appointments.tables import OutboxMessage

    async with db.sessions() as session:
        row = await session.scalar(select(OutboxMessage))
        assert row is not None and (row.state, row.attempts) == ("failed", 2)
        assert row.last_error == "gateway down"


def test_texts_in_four_languages_in_the_service_time_zone() -> None:
    data = {"starts_at": "2026-12-07T01:00:00+00:00", "category": "invoices", "ref": "abcdef12-x",
            "route": "https://etax.example", "reason": "r", "early": 10, "minutes": 2}  # fmt: skip
    for kind in (
        "confirmation",
        "approved",
        "redirected_online",
        "rejected",
        "reminder",
        "cancelled",
        "material_replace",
    ):
        texts = {loc: compose(kind, loc, data, SH) for loc in LOCALES}
        assert len(set(texts.values())) == 4, kind
        assert all("2026-12-07 09:00" in t for t in texts.values()), kind
    # the category in the page language's own name (vtax/data/catalog.json has all four)
    assert "發票辦理" in compose("reminder", "zh-HK", data, SH)
    assert "Faturas" in compose("reminder", "pt", data, SH)
    assert "ABCDEF12" in compose("confirmation", "pt", data, SH)
    assert compose("reminder", "fr", data, SH) == compose("reminder", "en", data, SH)
    assert "2 minutes" in compose("turn_near", "en", data, SH)


async def test_callback_records_advance_once_across_nodes(db: Db) -> None:
    rules = CallbackRules(notify_positions=3, window_s=120, attempts=2, retry_delay_s=60)
    other = make_engine(db.url)
    try:
        a, b = Callbacks(db.sessions, rules), Callbacks(session_factory(other), rules)
        cb = await a.request("ticket-1", "tp-1", NOW, "+85291234567", "zh-HK")
        assert (await b.request("ticket-1", "tp-1", NOW, None, "en")).id == cb.id
        actions = await asyncio.gather(
            a.on_position("ticket-1", 1, NOW), b.on_position("ticket-1", 1, NOW)
        )
        assert sorted(map(str, actions)) == ["None", "notify"]
        assert await a.tick(NOW + timedelta(seconds=119)) == []
        assert await a.tick(NOW + timedelta(seconds=120)) == []  # a retry, not an abandon
        waiting = await a.get("ticket-1")
        assert waiting is not None and waiting.state == "waiting" and waiting.attempts == 1
        t2 = NOW + timedelta(seconds=180)
        assert await b.on_position("ticket-1", 0, t2) == "notify"
        assert await a.tick(t2 + timedelta(seconds=120)) == [("ticket-1", "abandon")]
        sms = FakeSms()
        job = ReminderJob(Outbox(db.sessions), db.bookings(), sms, SH, "n")
        assert await job.run_once(t2) == 2
        assert all(t.endswith("請於2分鐘內返回頁面接通視像。") for _, t in sms.sent)
        c = await a.request("ticket-2", "tp-2", NOW, None, "en")
        await a.on_position("ticket-2", 0, NOW)
        back = await b.connect("ticket-2", NOW + timedelta(seconds=30))
        assert back is not None and back.state == "connected" and back.id == c.id
    finally:
        await other.dispose()
