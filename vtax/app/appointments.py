"""Use cases of appointments (预约) and callbacks: list slots, book, cancel, reschedule, attach
materials, pre-review (of the booking and of each material), check in, the staff's view with the strikes, lift a block, import a
calendar year, plan staffing, ask for a callback. Each takes the `Caller`, validates what the
contract model cannot (the catalog's items of the category, the slot against the plan),
checks who may do it, and returns a contract model. The taxpayer hears of every change of a
booking through the `Notifier` (`appointment:update`) when one is given.

The queue wiring calls `check_in` (which says how the ticket joins), then `queued`,
`served` or `left` with the ticket's fate, `sweep` on a timer, and the callback steps.

One module (~540 lines) on purpose: every use case runs the same who-may-do-it checks and
pushes the same `appointment:update`; they are the one front door of the bookings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vtax.app.ports import Caller, Notifier
from vtax.appointments import callbacks as callback_policy
from vtax.appointments.bookings import BookingRequest, BookingRules, Bookings, Strikes
from vtax.appointments.calendar import CalendarYear
from vtax.appointments.callback_store import Callbacks
from vtax.appointments.figures import figures
from vtax.appointments.planning import Planning
from vtax.appointments.slots import SlotRules, StaffingPlan, bookable_slots, find_slot
from vtax.appointments.tables import Booking, BookingMaterial
from vtax.appointments.timing import TimingRules
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.contract.appointments import (
    AppointmentUpdate,
    BookIn,
    BookingListQuery,
    BookingOut,
    BookingsOut,
    CalendarYearOut,
    CalendarYearsOut,
    CallbackFiguresOut,
    CallbackIn,
    CallbackNotice,
    CallbackOut,
    CancelIn,
    CheckInOut,
    DayFiguresOut,
    FiguresOut,
    FiguresQuery,
    HolidayOut,
    LiftBlockIn,
    MaterialLimitsOut,
    MaterialOut,
    MaterialVerdictIn,
    PreReviewIn,
    RescheduleIn,
    SlotOut,
    SlotQuery,
    SlotsOut,
    StaffBookingOut,
    StaffingPlanIn,
    StaffingPlanOut,
    StrikesOut,
)
from vtax.errors import DomainError
from vtax.queue.queues import OpeningHours
from vtax.review.deliveries import DOCUMENT_MEDIA_TYPES

STAFF = ("agent", "supervisor")


@dataclass(frozen=True, slots=True)
class AppointmentSettings:
    timezone: str = "Asia/Shanghai"
    slots: SlotRules = field(default_factory=SlotRules)
    lead_days: int = 1
    horizon_days: int = 5
    bookings: BookingRules = field(default_factory=BookingRules)
    callbacks: callback_policy.CallbackRules = field(default_factory=callback_policy.CallbackRules)

    @classmethod
    def of(cls, s: Settings) -> AppointmentSettings:
        return cls(
            timezone=s.service_timezone,
            slots=SlotRules(
                slot_minutes=s.appointment_slot_minutes,
                handle_minutes=s.appointment_handle_minutes,
                live_share=s.appointment_live_share,
            ),
            lead_days=s.appointment_lead_working_days,
            horizon_days=s.appointment_horizon_working_days,
            bookings=BookingRules(
                cancel_cutoff_s=s.appointment_cancel_cutoff_minutes * 60.0,
                no_show_limit=s.appointment_no_show_limit,
                materials_max=s.appointment_materials_max,
                material_max_bytes=s.documents_max_bytes,
                reminders_min=s.appointment_reminders,
                timing=TimingRules(
                    early_s=s.appointment_checkin_early_minutes * 60.0,
                    late_s=s.appointment_late_minutes * 60.0,
                    grace_s=s.appointment_grace_minutes * 60.0,
                ),
            ),
            callbacks=callback_policy.CallbackRules(
                offer_wait_s=s.callback_offer_wait_s,
                notify_positions=s.callback_notify_positions,
                window_s=s.callback_window_s,
                attempts=s.callback_attempts,
                retry_delay_s=s.callback_retry_delay_s,
            ),
        )


def _require(caller: Caller, *roles: str) -> None:
    if caller.role not in roles:
        raise DomainError("forbidden", "your role may not do this")


class Appointments:
    def __init__(
        self,
        bookings: Bookings,
        planning: Planning,
        callbacks: Callbacks,
        catalog: Catalog,
        config: AppointmentSettings,
        *,
        hours_of: Callable[[str], OpeningHours | None] = lambda _category: None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bookings = bookings
        self.planning = planning
        self.callbacks = callbacks
        self.catalog = catalog
        self.config = config
        self.hours_of = hours_of
        self.notifier = notifier
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _time(self, d: datetime) -> str:
        return d.astimezone(self.bookings.tz).isoformat()

    # ---- views --------------------------------------------------------------------------------

    def _material(self, m: BookingMaterial) -> MaterialOut:
        return MaterialOut(
            id=m.id,
            filename=m.filename,
            media_type=m.media_type,
            size_bytes=m.size_bytes,
            sha256=m.sha256,
            created_at=self._time(m.created_at),
            review=m.review,  # type: ignore[arg-type]
            review_reason=m.review_reason,  # type: ignore[arg-type]
            review_note=m.review_note,
            reviewed_at=self._time(m.reviewed_at) if m.reviewed_at else None,
            revision=m.revision,
            replaced_at=self._time(m.replaced_at) if m.replaced_at else None,
        )

    def _fields(self, b: Booking, materials: list[BookingMaterial]) -> dict[str, Any]:
        return {
            "id": b.id,
            "state": b.state,
            "slot_id": b.slot_id,
            "category": b.category,
            "language": b.language,
            "channel": b.channel,
            "starts_at": self._time(b.starts_at),
            "ends_at": self._time(b.ends_at),
            "day": b.local_day,
            "items": list(b.items),
            "question": b.question,
            "locale": b.locale,
            "created_at": self._time(b.created_at),
            "review_note": b.review_note,
            "online_route": b.online_route,
            "reject_reason": b.reject_reason,
            "cancel_reason": b.cancel_reason,
            "check_in": b.check_in,
            "ticket_id": b.ticket_id,
            "rescheduled_from": b.rescheduled_from,
            "rescheduled_to": b.rescheduled_to,
            "materials": [self._material(m) for m in materials],
        }

    async def _view(self, b: Booking) -> BookingOut:
        return BookingOut(**self._fields(b, await self.bookings.materials(b.id)))

    async def _staff_view(self, b: Booking) -> StaffBookingOut:
        strikes = await self.bookings.strikes(b.taxpayer_id, self.now())
        return StaffBookingOut(
            **self._fields(b, await self.bookings.materials(b.id)),
            taxpayer_id=b.taxpayer_id,
            strikes=strikes.strikes - strikes.forgiven,
            blocked=strikes.blocked,
        )

    @staticmethod
    def _strikes(s: Strikes) -> StrikesOut:
        return StrikesOut(
            taxpayer_id=s.taxpayer_id,
            month=s.month,
            strikes=s.strikes,
            forgiven=s.forgiven,
            limit=s.limit,
            blocked=s.blocked,
        )

    async def _tell(self, b: Booking) -> BookingOut:
        view = await self._view(b)
        if self.notifier is not None:
            await self.notifier.to_user(b.taxpayer_id, AppointmentUpdate(booking=view))
        return view

    # ---- slots ----------------------------------------------------------------------------------

    async def _slot(self, slot_id: str, now: datetime) -> Any:
        calendar = await self.planning.calendar()
        plan = await self.planning.staffing()
        category = slot_id.split("~", 1)[0]
        slot = find_slot(
            calendar,
            plan,
            self.config.slots,
            now,
            slot_id,
            lead_days=self.config.lead_days,
            horizon_days=self.config.horizon_days,
            hours_of={category: self.hours_of(category)},
        )
        if slot is None:
            raise DomainError("slot_unavailable", "that slot cannot be booked now: pick another")
        return slot

    async def list_slots(self, caller: Caller, q: SlotQuery) -> SlotsOut:
        """The bookable slots with their remaining seats (anyone signed in may look)."""
        now = self.now()
        calendar = await self.planning.calendar()
        plan = await self.planning.staffing()
        slots = bookable_slots(
            calendar,
            plan,
            self.config.slots,
            now,
            category=q.category,
            language=q.language,
            lead_days=self.config.lead_days,
            horizon_days=self.config.horizon_days,
            hours=self.hours_of(q.category),
            days=[q.day] if q.day is not None else None,
        )
        taken = await self.bookings.seats([s.id for s in slots])
        days = calendar.bookable_days(now, self.config.lead_days, self.config.horizon_days)
        return SlotsOut(
            timezone=self.config.timezone,
            days=[d.isoformat() for d in days],
            provisional_days=[d.isoformat() for d in days if calendar.provisional(d)],
            slots=[
                SlotOut(
                    id=s.id,
                    category=s.category,
                    language=s.language,
                    starts_at=self._time(s.starts_at),
                    ends_at=self._time(s.ends_at),
                    capacity=s.capacity,
                    remaining=max(0, s.capacity - taken.get(s.id, 0)),
                )
                for s in slots
            ],
        )

    # ---- the taxpayer ---------------------------------------------------------------------------

    async def book(self, caller: Caller, body: BookIn) -> BookingOut:
        _require(caller, "taxpayer")
        now = self.now()
        slot = await self._slot(body.slot_id, now)
        items = self.catalog.items_by_category.get(slot.category, frozenset())
        wrong = [i for i in body.items if i not in items]
        if wrong:
            raise DomainError(
                "invalid_payload", f"not items of {slot.category}: {', '.join(wrong)[:200]}"
            )
        b = await self.bookings.book(
            slot,
            BookingRequest(
                taxpayer_id=caller.subject,
                items=body.items,
                question=body.question,
                channel=body.channel,
                phone=body.phone,
                locale=body.locale,
            ),
            now,
        )
        return await self._tell(b)

    async def mine(self, caller: Caller) -> BookingsOut:
        _require(caller, "taxpayer")
        rows = await self.bookings.of_taxpayer(caller.subject)
        rules = self.bookings.rules
        return BookingsOut(
            bookings=[await self._view(b) for b in rows],
            material_limits=MaterialLimitsOut(
                max_bytes=rules.material_max_bytes,
                max_count=rules.materials_max,
                media_types=list(DOCUMENT_MEDIA_TYPES),
            ),
        )

    async def get(self, caller: Caller, booking_id: str) -> BookingOut:
        """The taxpayer's own booking; staff see any, with the strikes (the agent who takes
        the ticket reads the business and the materials here before accepting)."""
        if caller.role == "taxpayer":
            return await self._view(await self.bookings.get(booking_id, caller.subject))
        _require(caller, *STAFF)
        return await self._staff_view(await self.bookings.get(booking_id))

    async def cancel(self, caller: Caller, booking_id: str, body: CancelIn) -> BookingOut:
        if caller.role == "taxpayer":
            b = await self.bookings.cancel(
                booking_id, caller.actor, self.now(), body.reason, taxpayer_id=caller.subject
            )
        else:
            _require(caller, *STAFF)
            b = await self.bookings.cancel(booking_id, caller.actor, self.now(), body.reason)
        return await self._tell(b)

    async def reschedule(self, caller: Caller, booking_id: str, body: RescheduleIn) -> BookingOut:
        _require(caller, "taxpayer")
        now = self.now()
        current = await self.bookings.get(booking_id, caller.subject)
        slot = await self._slot(body.slot_id, now)
        if slot.category != current.category:
            raise DomainError("slot_unavailable", "a booking moves to a slot of its category")
        return await self._tell(
            await self.bookings.reschedule(booking_id, caller.subject, slot, now)
        )

    async def attach(
        self, caller: Caller, booking_id: str, filename: str, data: bytes
    ) -> MaterialOut:
        _require(caller, "taxpayer")
        m = await self.bookings.attach(booking_id, caller.subject, filename, data, self.now())
        return self._material(m)

    async def replace_material(
        self, caller: Caller, booking_id: str, material_id: str, filename: str, data: bytes
    ) -> MaterialOut:
        """The booking's taxpayer replaces a file staff marked needs_replacing."""
        _require(caller, "taxpayer")
        b, m = await self.bookings.replace_material(
            booking_id, material_id, caller.subject, filename, data, self.now()
        )
        await self._tell(b)
        return self._material(m)

    async def material(
        self, caller: Caller, booking_id: str, material_id: str
    ) -> tuple[MaterialOut, bytes]:
        """A material's bytes: to its taxpayer and to staff."""
        if caller.role == "taxpayer":
            await self.bookings.get(booking_id, caller.subject)
        else:
            _require(caller, *STAFF)
        m, data = await self.bookings.material(booking_id, material_id)
        return self._material(m), data

    async def check_in(self, caller: Caller, booking_id: str) -> CheckInOut:
        """The taxpayer is at the page at the time: how the ticket joins the queue."""
        _require(caller, "taxpayer")
        b, entry = await self.bookings.check_in(booking_id, caller.subject, self.now())
        view = await self._tell(b)
        return CheckInOut(
            booking=view,
            verdict="on_time" if entry.on_time else "walk_in",
            joined_at=self._time(datetime.fromtimestamp(entry.joined_at, UTC)),
            priority=entry.priority,
        )

    # ---- staff -----------------------------------------------------------------------------------

    async def pre_review(
        self, caller: Caller, booking_id: str, body: PreReviewIn
    ) -> StaffBookingOut:
        _require(caller, *STAFF)
        b = await self.bookings.review(
            booking_id,
            caller.actor,
            body.decision,
            self.now(),
            note=body.note,
            route=body.route,
            reason=body.reason,
        )
        await self._tell(b)
        return await self._staff_view(b)

    async def review_material(
        self, caller: Caller, booking_id: str, material_id: str, body: MaterialVerdictIn
    ) -> StaffBookingOut:
        """Staff's verdict on one file of the booking; the taxpayer hears of it."""
        _require(caller, *STAFF)
        b, _m = await self.bookings.review_material(
            booking_id,
            material_id,
            caller.actor,
            body.verdict,
            self.now(),
            reason=body.reason,
            note=body.note,
        )
        await self._tell(b)
        return await self._staff_view(b)

    async def review_list(self, caller: Caller, q: BookingListQuery) -> list[StaffBookingOut]:
        """Staff's list of a day's bookings (default: those waiting for pre-review)."""
        _require(caller, *STAFF)
        wanted = [q.state] if q.state is not None else ["requested", "pre_review"]
        rows = await self.bookings.listing(
            day=q.day, states_in=wanted, category=q.category, limit=q.limit
        )
        return [await self._staff_view(b) for b in rows]

    async def strikes(self, caller: Caller, taxpayer_id: str) -> StrikesOut:
        if caller.role == "taxpayer" and caller.subject != taxpayer_id:
            raise DomainError("not_found", "no such taxpayer")
        if caller.role != "taxpayer":
            _require(caller, *STAFF)
        return self._strikes(await self.bookings.strikes(taxpayer_id, self.now()))

    async def lift_block(self, caller: Caller, taxpayer_id: str, body: LiftBlockIn) -> StrikesOut:
        _require(caller, *STAFF)
        s = await self.bookings.lift_block(taxpayer_id, caller.actor, body.reason, self.now())
        return self._strikes(s)

    async def import_calendar(self, caller: Caller, raw: bytes) -> CalendarYearOut:
        _require(caller, "supervisor")
        return self._year(await self.planning.import_year(raw, caller.actor, self.now()))

    async def calendar_years(self, caller: Caller) -> CalendarYearsOut:
        """The years in force, so staff see which are provisional (slots name those days)."""
        _require(caller, *STAFF)
        calendar = await self.planning.calendar()
        return CalendarYearsOut(
            years=[self._year(calendar.years[y]) for y in sorted(calendar.years)]
        )

    @staticmethod
    def _year(year: CalendarYear) -> CalendarYearOut:
        return CalendarYearOut(
            year=year.year,
            status=year.status,
            source=year.source,
            note=year.note,
            days_off=len(year.off),
            working_weekend_days=len(year.working),
            holidays=[
                HolidayOut(
                    code=h.code,
                    name={loc: h.name.of(loc) for loc in ("zh-CN", "zh-HK", "en", "pt")},
                    off_first=h.off[0],
                    off_last=h.off[1],
                    working=sorted(h.working),
                )
                for h in sorted(year.holidays, key=lambda h: h.off[0])
            ],
        )

    async def staffing(self, caller: Caller) -> StaffingPlanOut:
        _require(caller, *STAFF)
        return StaffingPlanOut(periods=list((await self.planning.staffing()).periods))

    async def set_staffing(self, caller: Caller, body: StaffingPlanIn) -> StaffingPlanOut:
        _require(caller, "supervisor")
        for p in body.periods:
            if p.category not in self.catalog.categories:
                raise DomainError("unknown_category", f"no business category {p.category!r}")
            if p.language not in self.catalog.languages:
                raise DomainError("unknown_language", f"no service language {p.language!r}")
        plan = await self.planning.set_staffing(
            StaffingPlan(periods=body.periods), caller.actor, self.now()
        )
        return StaffingPlanOut(periods=list(plan.periods))

    async def figures(self, caller: Caller, q: FiguresQuery) -> FiguresOut:
        """Bookings per day, pre-review outcomes, no-shows, on-time starts, callbacks."""
        _require(caller, "supervisor")
        if q.date_to < q.date_from or (q.date_to - q.date_from).days > 366:
            raise DomainError("invalid_payload", "from..to is a range of at most a year")
        f = await figures(
            self.bookings.sessions,
            self.bookings.tz,
            q.date_from,
            q.date_to,
            q.on_time_minutes * 60.0,
        )
        return FiguresOut(
            days=[
                DayFiguresOut(
                    day=d.day,
                    booked=d.booked,
                    states=d.states,
                    approved=d.approved,
                    redirected_online=d.redirected_online,
                    rejected=d.rejected,
                    no_show=d.no_show,
                    no_show_rate=d.no_show_rate,
                    served=d.served,
                    served_on_time=d.served_on_time,
                    on_time_rate=d.on_time_rate,
                )
                for d in f.days
            ],
            callbacks=CallbackFiguresOut(
                asked=f.callbacks.asked,
                told=f.callbacks.told,
                connected=f.callbacks.connected,
                abandoned=f.callbacks.abandoned,
            ),
        )

    # ---- the queue's side (called by the wiring, not by a page) -----------------------------------

    async def queued(self, booking_id: str, ticket_id: str) -> BookingOut:
        return await self._tell(await self.bookings.queued(booking_id, ticket_id, self.now()))

    async def served(self, booking_id: str, session_id: str) -> BookingOut:
        return await self._tell(await self.bookings.served(booking_id, session_id, self.now()))

    async def left(self, booking_id: str, reason: str) -> BookingOut:
        return await self._tell(await self.bookings.left(booking_id, self.now(), reason))

    async def sweep(self) -> list[BookingOut]:
        """No-shows and unreviewed bookings past T + grace (run on a timer, any node)."""
        return [await self._tell(b) for b in await self.bookings.sweep(self.now())]

    # ---- callbacks ----------------------------------------------------------------------------------

    async def request_callback(
        self, caller: Caller, body: CallbackIn, *, eta_s: float | None, queue_open: bool
    ) -> CallbackOut:
        """The taxpayer of a waiting ticket (the wiring checks the ticket is theirs and passes
        the queue's estimate) asks to be called back instead of waiting on the page."""
        _require(caller, "taxpayer")
        if not callback_policy.offer(eta_s, queue_open, self.callbacks.rules):
            raise DomainError("invalid_state", "the wait is short: a callback is not offered")
        cb = await self.callbacks.request(
            body.ticket_id, caller.subject, self.now(), body.phone, body.locale
        )
        if cb.taxpayer_id != caller.subject:
            raise DomainError("not_found", "no such ticket")
        return self._callback(cb)

    async def callback_position(self, ticket_id: str, position: int) -> bool:
        """The queue reports a callback ticket's position (0: next); True when the taxpayer
        is told now (`callback:turn` pushed; the text is in the outbox)."""
        now = self.now()
        if await self.callbacks.on_position(ticket_id, position, now) != "notify":
            return False
        cb = await self.callbacks.get(ticket_id)
        if cb is not None and cb.window_ends_at is not None and self.notifier is not None:
            ends = datetime.fromtimestamp(cb.window_ends_at, UTC)
            await self.notifier.to_user(
                cb.taxpayer_id, CallbackNotice(ticket_id=ticket_id, window_ends_at=self._time(ends))
            )
        return True

    async def callbacks_waiting(self) -> list[str]:
        """The tickets whose callbacks wait for their notice (the queue reports where they
        stand with `callback_position`)."""
        return [cb.ticket_id for cb in await self.callbacks.waiting(self.now())]

    async def callback_gone(self, ticket_id: str) -> None:
        """The ticket left the queue (served elsewhere, left, timed out): its callback ends."""
        await self.callbacks.cancel(ticket_id, self.now())

    async def callback_tick(self) -> list[str]:
        """Windows that ran out: the tickets to take out of the queue (abandoned)."""
        return [t for t, action in await self.callbacks.tick(self.now()) if action == "abandon"]

    async def callback_back(self, caller: Caller, ticket_id: str) -> CallbackOut | None:
        """The taxpayer is back on the page for the ticket: it may be offered again."""
        _require(caller, "taxpayer")
        cb = await self.callbacks.get(ticket_id)
        if cb is None or cb.taxpayer_id != caller.subject:
            return None
        back = await self.callbacks.connect(ticket_id, self.now())
        return self._callback(back) if back is not None else None

    def _callback(self, cb: callback_policy.Callback) -> CallbackOut:
        ends = cb.window_ends_at
        return CallbackOut(
            ticket_id=cb.ticket_id,
            state=cb.state,
            attempts=cb.attempts,
            window_ends_at=self._time(datetime.fromtimestamp(ends, UTC)) if ends else None,
        )
