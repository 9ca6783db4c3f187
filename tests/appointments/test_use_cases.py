"""The use cases through the contract models, on both engines, with an in-memory notifier
and a clock the test sets: plan, import a calendar, list slots, book, pre-review, check in
at the time, be queued and served; who may do what."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.appointments.conftest import NOW, PDF, RULES, SH, SLOT_RULES, Db
from vtax.app.appointments import Appointments, AppointmentSettings
from vtax.app.ports import Caller
from vtax.appointments.calendar import shipped_years
from vtax.appointments.callback_store import Callbacks
from vtax.appointments.planning import Planning
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.contract.appointments import (
    BookIn,
    BookingListQuery,
    CallbackIn,
    CancelIn,
    FiguresQuery,
    LiftBlockIn,
    PreReviewIn,
    RescheduleIn,
    SlotQuery,
    StaffingPlanIn,
)
from vtax.contract.server_events import ServerEvent
from vtax.errors import DomainError

ITEM = "invoices.invoice_collection"
SUPERVISOR = Caller("sup-1", "supervisor")
AGENT = Caller("agent-1", "agent")


class FakeNotifier:
    """The Notifier port in memory: what each account was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ServerEvent]] = []

    async def to_user(self, subject: str, message: ServerEvent) -> None:
        self.sent.append((subject, message))

    async def to_connections(self, sids: Sequence[str], message: ServerEvent) -> None:
        raise AssertionError("not used")

    async def relay(self, sids: Sequence[str], signal: dict[str, Any]) -> None:
        raise AssertionError("not used")

    async def to_role(self, role: str, message: ServerEvent) -> None:
        raise AssertionError("not used")

    async def to_everyone_here(self, message: ServerEvent) -> None:
        raise AssertionError("not used")

    async def disconnect(self, sid: str) -> None:
        raise AssertionError("not used")

    def is_here(self, sid: str) -> bool:
        return True

    def has_connection_here(self, subject: str) -> bool:
        return True


class Clock:
    def __init__(self, at: datetime) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, at: datetime) -> None:
        self.t = at.timestamp()


def app(db: Db, clock: Clock, notifier: FakeNotifier) -> Appointments:
    config = AppointmentSettings(slots=SLOT_RULES, lead_days=1, horizon_days=5, bookings=RULES)
    return Appointments(
        db.bookings(),
        Planning(db.sessions, "Asia/Shanghai"),
        Callbacks(db.sessions, config.callbacks),
        Catalog.load(),
        config,
        notifier=notifier,
        clock=clock,
    )


PLAN = StaffingPlanIn.model_validate(
    {
        "periods": [
            {"days": "mon-fri", "start": "09:00", "end": "12:00", "category": "invoices",
             "language": "zh-CN", "agents": 1},
        ]
    }
)  # fmt: skip


async def code_of(coro: Any) -> str:
    try:
        await coro
    except DomainError as exc:
        return exc.code
    raise AssertionError("no DomainError")


async def test_the_booking_story(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    taxpayer = Caller(tp, "taxpayer")
    clock, notes = Clock(NOW), FakeNotifier()
    a = app(db, clock, notes)
    q = SlotQuery(category="invoices", language="zh-CN")
    assert (await a.list_slots(taxpayer, q)).slots == []  # nothing planned yet
    assert await code_of(a.set_staffing(AGENT, PLAN)) == "forbidden"
    await a.set_staffing(SUPERVISOR, PLAN)
    assert (await a.staffing(AGENT)).periods == PLAN.periods

    slots = await a.list_slots(taxpayer, q)
    assert slots.days == ["2026-12-04", "2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10"]
    assert slots.provisional_days == []
    first = slots.slots[0]
    assert (first.id, first.starts_at, first.capacity, first.remaining) == (
        "invoices~zh-CN~20261204T0900", "2026-12-04T09:00:00+08:00", 1, 1,
    )  # fmt: skip

    body = BookIn(
        slot_id=first.id, items=[ITEM], question="发票领用", phone="+8613800138000", locale="zh-HK"
    )
    assert await code_of(a.book(AGENT, body)) == "forbidden"
    wrong = body.model_copy(update={"items": ["registration.new_taxpayer"]})
    assert await code_of(a.book(taxpayer, wrong)) == "invalid_payload"
    gone = body.model_copy(update={"slot_id": "invoices~zh-CN~20261203T0900"})
    assert await code_of(a.book(taxpayer, gone)) == "slot_unavailable"
    booked = await a.book(taxpayer, body)
    assert booked.state == "requested" and booked.starts_at == "2026-12-04T09:00:00+08:00"
    assert notes.sent[-1][0] == tp and notes.sent[-1][1].event == "appointment:update"
    assert (await a.list_slots(taxpayer, q)).slots[0].remaining == 0
    material = await a.attach(taxpayer, booked.id, "invoice.pdf", PDF)

    # staff see it waiting for pre-review, with the materials and the strikes
    waiting = await a.review_list(AGENT, BookingListQuery())
    assert [w.id for w in waiting] == [booked.id]
    assert waiting[0].materials[0].id == material.id and waiting[0].strikes == 0
    assert await code_of(a.review_list(taxpayer, BookingListQuery())) == "forbidden"
    meta, data = await a.material(AGENT, booked.id, material.id)
    assert data == PDF and meta.sha256 == material.sha256
    approved = await a.pre_review(AGENT, booked.id, PreReviewIn(decision="approved"))
    assert approved.state == "approved" and approved.taxpayer_id == tp
    assert (
        await code_of(a.pre_review(taxpayer, booked.id, PreReviewIn(decision="approved")))
        == "forbidden"
    )

    t = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
    clock.set(t - timedelta(minutes=20))
    assert await code_of(a.check_in(taxpayer, booked.id)) == "too_early"
    clock.set(t - timedelta(minutes=3))
    checked = await a.check_in(taxpayer, booked.id)
    assert (checked.verdict, checked.priority, checked.joined_at) == (
        "on_time", 1, "2026-12-04T09:00:00+08:00",
    )  # fmt: skip
    queued = await a.queued(booked.id, "ticket-9")
    assert queued.state == "queued" and queued.ticket_id == "ticket-9"
    served = await a.served(booked.id, "session-9")
    assert served.state == "served"
    states = [m.booking.state for _, m in notes.sent if hasattr(m, "booking")]  # type: ignore[attr-defined]
    assert states == ["requested", "approved", "checked_in", "queued", "served"]
    assert [b.state for b in (await a.mine(taxpayer)).bookings] == ["served"]
    assert (await a.get(taxpayer, booked.id)).id == booked.id
    assert await code_of(a.get(Caller("other", "taxpayer"), booked.id)) == "not_found"


async def test_cancel_reschedule_no_show_and_lift(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    taxpayer = Caller(tp, "taxpayer")
    clock, notes = Clock(NOW), FakeNotifier()
    a = app(db, clock, notes)
    await a.set_staffing(SUPERVISOR, PLAN)
    b = await a.book(taxpayer, BookIn(slot_id="invoices~zh-CN~20261207T0900", question="q"))
    moved = await a.reschedule(taxpayer, b.id, RescheduleIn(slot_id="invoices~zh-CN~20261207T1000"))
    assert moved.rescheduled_from == b.id
    assert (
        await code_of(
            a.reschedule(
                taxpayer, moved.id, RescheduleIn(slot_id="registration~zh-CN~20261207T1000")
            )
        )
        == "slot_unavailable"
    )
    cancelled = await a.cancel(taxpayer, moved.id, CancelIn(reason="changed my mind"))
    assert cancelled.state == "cancelled"

    # two no-shows in December block the taxpayer (limit 2 in the test rules)
    for slot_id in ("invoices~zh-CN~20261208T0900", "invoices~zh-CN~20261209T0900"):
        x = await a.book(taxpayer, BookIn(slot_id=slot_id, question="q"))
        await a.pre_review(AGENT, x.id, PreReviewIn(decision="approved"))
    clock.set(datetime(2026, 12, 9, 1, 16, tzinfo=UTC))
    swept = await a.sweep()
    assert [s.state for s in swept] == ["no_show", "no_show"]
    strikes = await a.strikes(AGENT, tp)
    assert (strikes.strikes, strikes.blocked) == (2, True)
    assert (await a.strikes(taxpayer, tp)).blocked
    assert await code_of(a.strikes(Caller("x", "taxpayer"), tp)) == "not_found"
    later = BookIn(slot_id="invoices~zh-CN~20261211T0900", question="q")
    assert await code_of(a.book(taxpayer, later)) == "booking_blocked"
    assert await code_of(a.lift_block(taxpayer, tp, LiftBlockIn(reason="me"))) == "forbidden"
    lifted = await a.lift_block(SUPERVISOR, tp, LiftBlockIn(reason="was in hospital"))
    assert not lifted.blocked and lifted.forgiven == 2
    assert (await a.book(taxpayer, later)).state == "requested"


async def test_a_supervisor_imports_a_calendar_year(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    clock = Clock(datetime(2026, 12, 28, 2, tzinfo=UTC))  # Monday 28 Dec 2026
    a = app(db, clock, FakeNotifier())
    await a.set_staffing(SUPERVISOR, PLAN)
    q = SlotQuery(category="invoices", language="zh-CN")
    before = await a.list_slots(Caller(tp, "taxpayer"), q)
    assert "2027-01-04" in before.provisional_days
    raw = shipped_years()[2027].model_dump(mode="json", by_alias=True)
    raw["status"] = "official"
    raw["holidays"][0]["off"] = ["2027-01-01", "2027-01-04"]  # pretend the notice adds Monday
    assert await code_of(a.import_calendar(AGENT, json.dumps(raw).encode())) == "forbidden"
    bad = dict(raw, holidays=[dict(raw["holidays"][0], working=["2027-01-06"])])
    with pytest.raises(DomainError) as err:
        await a.import_calendar(SUPERVISOR, json.dumps(bad).encode())
    assert err.value.code == "invalid_calendar" and "not a weekend day" in err.value.message
    out = await a.import_calendar(SUPERVISOR, json.dumps(raw).encode())
    assert (out.year, out.status, out.days_off) == (2027, "official", 4 + 4 + 1 + 2 + 1 + 1 + 3)
    after = await a.list_slots(Caller(tp, "taxpayer"), q)
    assert "2027-01-04" not in after.days and after.provisional_days == []
    # importing again replaces it
    raw["holidays"][0]["off"] = ["2027-01-01", "2027-01-01"]
    await a.import_calendar(SUPERVISOR, json.dumps(raw).encode())
    assert "2027-01-04" in (await a.list_slots(Caller(tp, "taxpayer"), q)).days


async def test_staffing_and_bodies_are_validated(db: Db) -> None:
    a = app(db, Clock(NOW), FakeNotifier())
    bad = StaffingPlanIn.model_validate(
        {"periods": [{"days": "mon", "start": "09:00", "end": "10:00", "category": "nope",
                      "language": "zh-CN", "agents": 1}]}
    )  # fmt: skip
    assert await code_of(a.set_staffing(SUPERVISOR, bad)) == "unknown_category"
    for wrong in [
        {"slot_id": "x", "question": "q"},
        {"slot_id": "invoices~zh-CN~20261207T0900", "question": ""},
        {"slot_id": "invoices~zh-CN~20261207T0900", "question": "q", "phone": "12345"},
        {"slot_id": "invoices~zh-CN~20261207T0900", "question": "q", "locale": "fr"},
        {"slot_id": "invoices~zh-CN~20261207T0900", "question": "q", "extra": 1},
        {"slot_id": "invoices~zh-CN~20261207T0900", "question": "q\x00"},
    ]:
        with pytest.raises(ValidationError):
            BookIn.model_validate(wrong)


async def test_callback_is_offered_only_when_the_wait_is_long(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    a = app(db, Clock(NOW), FakeNotifier())
    me = Caller(tp, "taxpayer")
    body = CallbackIn(ticket_id="ticket-1", phone="+85366123456", locale="pt")
    assert await code_of(a.request_callback(me, body, eta_s=30, queue_open=True)) == "invalid_state"
    out = await a.request_callback(me, body, eta_s=900, queue_open=True)
    assert (out.ticket_id, out.state, out.attempts) == ("ticket-1", "waiting", 0)
    other = Caller("someone", "taxpayer")
    assert (
        await code_of(a.request_callback(other, body, eta_s=900, queue_open=False)) == "not_found"
    )


def test_settings_map_onto_the_rules() -> None:
    s = Settings.from_env(
        {"VTAX_APPOINTMENT_REMINDER_MINUTES": "15,1440", "VTAX_APPOINTMENT_LIVE_SHARE": "0.25"}
    )
    config = AppointmentSettings.of(s)
    assert config.bookings.reminders_min == (1440, 15)
    assert config.slots.live_share == 0.25 and config.timezone == "Asia/Shanghai"
    assert config.bookings.timing.grace_s == 900
    with pytest.raises(ValueError):
        Settings.from_env(
            {"VTAX_APPOINTMENT_GRACE_MINUTES": "5", "VTAX_APPOINTMENT_LATE_MINUTES": "10"}
        )
    with pytest.raises(ValueError):
        Settings.from_env({"VTAX_SERVICE_TIMEZONE": "Mars/Olympus"})
    assert SH.key == "Asia/Shanghai"


async def test_figures_of_a_day(db: Db) -> None:
    tps = await db.taxpayers(4)
    clock, notes = Clock(NOW), FakeNotifier()
    a = app(db, clock, notes)
    plan = StaffingPlanIn.model_validate(
        {"periods": [{"days": "mon-fri", "start": "09:00", "end": "12:00", "category": "invoices",
                      "language": "zh-CN", "agents": 4}]}
    )  # fmt: skip
    await a.set_staffing(SUPERVISOR, plan)
    slot_id = "invoices~zh-CN~20261207T0900"
    made = [
        await a.book(Caller(tp, "taxpayer"), BookIn(slot_id=slot_id, question="q")) for tp in tps
    ]
    await a.pre_review(AGENT, made[0].id, PreReviewIn(decision="approved"))
    await a.pre_review(AGENT, made[1].id, PreReviewIn(decision="approved"))
    await a.pre_review(AGENT, made[2].id, PreReviewIn(decision="redirected_online", route="etax"))
    await a.pre_review(AGENT, made[3].id, PreReviewIn(decision="rejected", reason="hall only"))
    t = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    clock.set(t)
    await a.check_in(Caller(tps[0], "taxpayer"), made[0].id)
    await a.queued(made[0].id, "tk")
    clock.set(t + timedelta(minutes=4))
    await a.served(made[0].id, "s")
    clock.set(t + timedelta(minutes=16))
    await a.sweep()
    await a.callbacks.request("ticket-x", tps[0], t, None, "en")
    await a.callbacks.on_position("ticket-x", 0, t)
    await a.callbacks.connect("ticket-x", t + timedelta(seconds=5))
    q = FiguresQuery.model_validate({"from": "2026-12-07", "to": "2026-12-07"})
    assert await code_of(a.figures(AGENT, q)) == "forbidden"
    f = await a.figures(SUPERVISOR, q)
    [day] = f.days
    assert (day.booked, day.approved, day.redirected_online, day.rejected) == (4, 2, 1, 1)
    assert (day.no_show, day.no_show_rate, day.served, day.on_time_rate) == (1, 0.5, 1, 1.0)
    assert (f.callbacks.asked, f.callbacks.told, f.callbacks.connected) == (1, 1, 1)
    strict = FiguresQuery.model_validate(
        {"from": "2026-12-07", "to": "2026-12-07", "on_time_minutes": 3}
    )
    assert (await a.figures(SUPERVISOR, strict)).days[0].on_time_rate == 0.0


async def test_a_callback_keeps_the_place_is_told_near_the_head_and_comes_back(db: Db) -> None:
    [tp] = await db.taxpayers(1)
    clock, notes = Clock(NOW), FakeNotifier()
    a = app(db, clock, notes)
    me = Caller(tp, "taxpayer")
    await a.request_callback(
        me, CallbackIn(ticket_id="tk-1", locale="en"), eta_s=None, queue_open=False
    )
    assert not await a.callback_position("tk-1", 10)
    assert await a.callback_position("tk-1", 1)
    subject, notice = notes.sent[-1]
    assert subject == tp and notice.event == "callback:turn"
    assert notice.window_ends_at == "2026-12-03T10:02:00+08:00"  # type: ignore[attr-defined]
    assert not await a.callback_position("tk-1", 0)  # told once per attempt
    clock.set(NOW + timedelta(seconds=121))
    assert await a.callback_tick() == []  # one more attempt after the delay
    clock.set(NOW + timedelta(seconds=250))
    assert await a.callback_position("tk-1", 0)
    assert await a.callback_back(Caller("other", "taxpayer"), "tk-1") is None
    back = await a.callback_back(me, "tk-1")
    assert back is not None and back.state == "connected" and back.attempts == 2
    await a.request_callback(me, CallbackIn(ticket_id="tk-2"), eta_s=None, queue_open=False)
    await a.callback_position("tk-2", 0)
    clock.set(NOW + timedelta(seconds=400))
    await a.callback_tick()
    clock.set(NOW + timedelta(seconds=600))
    await a.callback_position("tk-2", 0)
    clock.set(NOW + timedelta(seconds=800))
    assert await a.callback_tick() == ["tk-2"]
