"""Bookings: a taxpayer takes a seat of a slot, staff pre-review it, the taxpayer checks in at
the time, the queue serves it. Every step is a compare-and-set on the booking's version (one
UPDATE ... WHERE version = v), so two nodes or two requests never both apply a step, on
SQLite and PostgreSQL alike.

No overselling: a slot's seats are one row; a booking takes a seat with
`UPDATE appointment_slots SET booked = booked + 1 WHERE id = :slot AND booked < :capacity`
in its transaction (PostgreSQL re-checks the condition after waiting for a concurrent
booker's row lock; SQLite has one writer). One active booking per taxpayer per day: a unique
constraint on (taxpayer_id, active_day), where active_day is NULL once the booking is over.
Every step is audited in appointment_events.

One module (~900 lines) on purpose: every step shares the same load-check-update-audit
transaction shape and the seat bookkeeping; splitting them by step would spread the one
invariant (no overselling, one booking a day) over several files."""

from __future__ import annotations

import calendar as stdlib_calendar
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from vtax.appointments import outbox, states
from vtax.appointments.slots import Slot
from vtax.appointments.states import BookingState
from vtax.appointments.tables import (
    AppointmentEvent,
    BlockLift,
    Booking,
    BookingMaterial,
    SlotSeats,
)
from vtax.appointments.timing import QueueEntry, TimingRules, Verdict, queue_entry, verdict
from vtax.db import retry_lost_races
from vtax.errors import DomainError
from vtax.review.audit import SYSTEM, Actor
from vtax.review.deliveries import DEFAULT_MAX_BYTES, DocumentStore, check_document, clean_filename


@dataclass(frozen=True, slots=True)
class BookingRules:
    cancel_cutoff_s: float = 7200.0
    no_show_limit: int = 3
    materials_max: int = 10
    material_max_bytes: int = DEFAULT_MAX_BYTES
    reminders_min: tuple[int, ...] = (1440, 15)  # minutes before T
    timing: TimingRules = field(default_factory=TimingRules)


@dataclass(frozen=True, slots=True)
class Strikes:
    taxpayer_id: str
    month: str  # YYYY-MM in the service time zone
    strikes: int
    forgiven: int
    limit: int

    @property
    def blocked(self) -> bool:
        return states.blocked(self.strikes, self.forgiven, self.limit)


@dataclass(frozen=True, slots=True)
class BookingRequest:
    taxpayer_id: str
    items: Sequence[str]
    question: str
    channel: str = "web"
    phone: str | None = None
    locale: str = "zh-CN"


def _ts(d: datetime) -> float:
    return d.timestamp()


def month_bounds(month: str) -> tuple[str, str]:
    """First and last day (YYYY-MM-DD) of a YYYY-MM month."""
    y, m = int(month[:4]), int(month[5:7])
    return f"{month}-01", f"{month}-{stdlib_calendar.monthrange(y, m)[1]:02d}"


class Bookings:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tz: ZoneInfo,
        rules: BookingRules | None = None,
        store: DocumentStore | None = None,
    ) -> None:
        self._sessions = sessions
        self.tz = tz
        self.rules = rules or BookingRules()
        self.store = store

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _event(
        db: AsyncSession,
        at: datetime,
        actor: Actor,
        kind: str,
        *,
        booking: Booking | None = None,
        taxpayer_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        db.add(
            AppointmentEvent(
                at=at,
                booking_id=booking.id if booking is not None else None,
                taxpayer_id=taxpayer_id or (booking.taxpayer_id if booking is not None else None),
                actor_role=actor.role,
                actor_id=actor.id,
                kind=kind,
                data=data or {},
            )
        )

    def month_of(self, now: datetime) -> str:
        return f"{now.astimezone(self.tz):%Y-%m}"

    def _message_data(self, b: Booking, **extra: Any) -> dict[str, Any]:
        return {
            "starts_at": b.starts_at.isoformat(),
            "category": b.category,
            "ref": b.id,
            "early": int(self.rules.timing.early_s // 60),
            **extra,
        }

    def _text(
        self,
        db: AsyncSession,
        b: Booking,
        kind: str,
        now: datetime,
        dedupe: str | None = None,
        **extra: Any,
    ) -> None:
        """Queue a text to the booking's phone (none without a phone); one per `dedupe` key
        (by default one of each kind per booking)."""
        if not b.phone:
            return
        outbox.enqueue(
            db,
            dedupe=dedupe or f"{b.id}:{kind}",
            kind=kind,
            phone=b.phone,
            locale=b.locale,
            due_at=now,
            booking_id=b.id,
            data=self._message_data(b, **extra),
        )

    def _reminders(self, db: AsyncSession, b: Booking, now: datetime) -> None:
        if not b.phone:
            return
        for minutes in self.rules.reminders_min:
            due = b.starts_at - timedelta(minutes=minutes)
            if due > now:
                outbox.enqueue(
                    db,
                    dedupe=f"{b.id}:reminder:{minutes}",
                    kind="reminder",
                    phone=b.phone,
                    locale=b.locale,
                    due_at=due,
                    booking_id=b.id,
                    data=self._message_data(b, minutes=minutes),
                )

    @staticmethod
    async def _take_seat(db: AsyncSession, slot: Slot) -> None:
        """Take one seat of `slot` at its current capacity, or `slot_full`."""
        dialect = db.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await db.execute(
            insert(SlotSeats)
            .values(
                id=slot.id,
                category=slot.category,
                language=slot.language,
                starts_at=slot.starts_at,
                capacity=slot.capacity,
                booked=0,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        s = SlotSeats
        taken = await db.execute(
            update(s)
            .where(s.id == slot.id, s.booked < slot.capacity)
            .values(booked=s.booked + 1, capacity=slot.capacity)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            raise DomainError("slot_full", "that slot has just been fully booked: pick another")

    @staticmethod
    async def _release_seat(db: AsyncSession, slot_id: str) -> None:
        s = SlotSeats
        await db.execute(
            update(s)
            .where(s.id == slot_id, s.booked > 0)
            .values(booked=s.booked - 1)
            .execution_options(synchronize_session=False)
        )

    async def _move(
        self,
        db: AsyncSession,
        b: Booking,
        to: BookingState,
        now: datetime,
        actor: Actor,
        data: dict[str, Any] | None = None,
        **values: Any,
    ) -> None:
        """One step of the state machine as a compare-and-set on the version."""
        states.require(b.state, to)  # type: ignore[arg-type]
        if to in states.RELEASES_SEAT:
            # The seat row first, then the booking: the order a booking takes them (seat, then
            # the one-a-day key). The other order deadlocked on PostgreSQL against a booking of
            # the same taxpayer and day in that slot (found by test_properties).
            await db.execute(
                select(SlotSeats.id).where(SlotSeats.id == b.slot_id).with_for_update()
            )
        changes: dict[str, Any] = {"state": to, "version": b.version + 1, "updated_at": now}
        if to not in states.ACTIVE:
            changes["active_day"] = None
        changes.update(values)
        result = await db.execute(
            update(Booking)
            .where(Booking.id == b.id, Booking.version == b.version)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise DomainError("invalid_state", "the booking changed meanwhile: reload it")
        before = b.state
        for key, value in changes.items():
            set_committed_value(b, key, value)
        if to in states.RELEASES_SEAT:
            await self._release_seat(db, b.slot_id)
        if to not in states.ACTIVE:
            await outbox.skip_pending(db, b.id, now)
        self._event(db, now, actor, to, booking=b, data={"from": before, **(data or {})})

    async def _load(
        self, db: AsyncSession, booking_id: str, taxpayer_id: str | None = None
    ) -> Booking:
        b = await db.get(Booking, booking_id, populate_existing=True)
        if b is None or (taxpayer_id is not None and b.taxpayer_id != taxpayer_id):
            raise DomainError("not_found", "no such booking")
        return b

    # ---- reading ----------------------------------------------------------------------------

    async def get(self, booking_id: str, taxpayer_id: str | None = None) -> Booking:
        """A booking; with `taxpayer_id`, only that taxpayer's (else not_found)."""
        async with self._sessions() as db:
            return await self._load(db, booking_id, taxpayer_id)

    async def of_taxpayer(self, taxpayer_id: str, limit: int = 50) -> list[Booking]:
        async with self._sessions() as db:
            rows = await db.execute(
                select(Booking)
                .where(Booking.taxpayer_id == taxpayer_id)
                .order_by(Booking.starts_at.desc(), Booking.id)
                .limit(limit)
            )
            return list(rows.scalars())

    async def listing(
        self,
        *,
        day: date | None = None,
        states_in: Iterable[str] | None = None,
        category: str | None = None,
        limit: int = 100,
    ) -> list[Booking]:
        """For staff: bookings of a day (service time zone) and states, in time order."""
        where: list[Any] = []
        if day is not None:
            where.append(Booking.local_day == day.isoformat())
        if states_in is not None:
            where.append(Booking.state.in_(list(states_in)))
        if category is not None:
            where.append(Booking.category == category)
        async with self._sessions() as db:
            rows = await db.execute(
                select(Booking).where(*where).order_by(Booking.starts_at, Booking.id).limit(limit)
            )
            return list(rows.scalars())

    async def seats(self, slot_ids: Sequence[str]) -> dict[str, int]:
        """Seats taken per slot id (absent: none)."""
        if not slot_ids:
            return {}
        async with self._sessions() as db:
            rows = await db.execute(
                select(SlotSeats.id, SlotSeats.booked).where(SlotSeats.id.in_(list(slot_ids)))
            )
            return {i: n for i, n in rows.all()}

    async def events(self, booking_id: str) -> list[AppointmentEvent]:
        async with self._sessions() as db:
            rows = await db.execute(
                select(AppointmentEvent)
                .where(AppointmentEvent.booking_id == booking_id)
                .order_by(AppointmentEvent.id)
            )
            return list(rows.scalars())

    async def strikes(self, taxpayer_id: str, now: datetime) -> Strikes:
        """The month's no-shows and how many staff forgave (the block is never silent)."""
        month = self.month_of(now)
        first, last = month_bounds(month)
        async with self._sessions() as db:
            count = await db.scalar(
                select(func.count())
                .select_from(Booking)
                .where(
                    Booking.taxpayer_id == taxpayer_id,
                    Booking.state == "no_show",
                    Booking.local_day >= first,
                    Booking.local_day <= last,
                )
            )
            forgiven = await db.scalar(
                select(func.coalesce(func.sum(BlockLift.forgiven), 0)).where(
                    BlockLift.taxpayer_id == taxpayer_id, BlockLift.month == month
                )
            )
        return Strikes(
            taxpayer_id, month, int(count or 0), int(forgiven or 0), self.rules.no_show_limit
        )

    # ---- the taxpayer's steps ------------------------------------------------------------------

    @retry_lost_races()
    async def book(self, slot: Slot, req: BookingRequest, now: datetime) -> Booking:
        """Take a seat of `slot` (a bookable slot, checked by the caller against the plan)."""
        strikes = await self.strikes(req.taxpayer_id, now)
        if strikes.blocked:
            raise DomainError(
                "booking_blocked",
                f"{strikes.strikes} missed appointments this month: booking is blocked until "
                "staff lift it",
            )
        b = Booking(
            id=str(uuid.uuid4()),
            taxpayer_id=req.taxpayer_id,
            slot_id=slot.id,
            category=slot.category,
            language=slot.language,
            channel=req.channel,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            local_day=slot.local_day.isoformat(),
            active_day=slot.local_day.isoformat(),
            state="requested",
            version=1,
            items=list(req.items),
            question=req.question,
            phone=req.phone,
            locale=req.locale,
            created_at=now,
            updated_at=now,
        )
        async with self._sessions() as db:
            try:
                async with db.begin():
                    await self._take_seat(db, slot)
                    db.add(b)
                    await db.flush()
                    self._event(
                        db, now, Actor("taxpayer", req.taxpayer_id), "requested", booking=b,
                        data={"slot_id": slot.id},
                    )  # fmt: skip
                    self._text(db, b, "confirmation", now)
            except IntegrityError as exc:
                if "active_day" in str(exc.orig) or "uq_bookings" in str(exc.orig):
                    raise DomainError(
                        "one_booking_a_day", "you already have an appointment on that day"
                    ) from None
                raise
        return b

    def _check_cutoff(self, b: Booking, now: datetime) -> None:
        if now > b.starts_at - timedelta(seconds=self.rules.cancel_cutoff_s):
            minutes = int(self.rules.cancel_cutoff_s // 60)
            raise DomainError(
                "cancellation_closed",
                f"an appointment can be changed until {minutes} minutes before its time",
            )

    @retry_lost_races()
    async def cancel(
        self,
        booking_id: str,
        actor: Actor,
        now: datetime,
        reason: str = "",
        *,
        taxpayer_id: str | None = None,
    ) -> Booking:
        """Cancel: the taxpayer (`taxpayer_id` given) until the cut-off; staff at any time
        before the queue."""
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id, taxpayer_id)
            allowed = states.CHANGEABLE | (
                frozenset() if actor.role == "taxpayer" else frozenset({"checked_in", "queued"})
            )
            if b.state not in allowed:
                raise DomainError("invalid_state", f"a {b.state} booking cannot be cancelled")
            if actor.role == "taxpayer":
                self._check_cutoff(b, now)
            await self._move(
                db,
                b,
                "cancelled",
                now,
                actor,
                {"reason": reason},
                cancel_reason=reason[:200] or None,
            )
            self._text(db, b, "cancelled", now)
            return b

    @retry_lost_races()
    async def reschedule(
        self, booking_id: str, taxpayer_id: str, slot: Slot, now: datetime
    ) -> Booking:
        """Move to another slot in one transaction: the new seat is taken or nothing changes.
        The pre-review result carries over; materials move with the booking."""
        actor = Actor("taxpayer", taxpayer_id)
        async with self._sessions() as db:
            try:
                async with db.begin():
                    old = await self._load(db, booking_id, taxpayer_id)
                    if old.state not in states.CHANGEABLE:
                        raise DomainError("invalid_state", f"a {old.state} booking cannot be moved")
                    if slot.id == old.slot_id:
                        raise DomainError("invalid_state", "that is the booking's own slot")
                    self._check_cutoff(old, now)
                    new_state = "approved" if old.state in ("approved", "reminded") else "requested"
                    new = Booking(
                        id=str(uuid.uuid4()),
                        taxpayer_id=taxpayer_id,
                        slot_id=slot.id,
                        category=slot.category,
                        language=slot.language,
                        channel=old.channel,
                        starts_at=slot.starts_at,
                        ends_at=slot.ends_at,
                        local_day=slot.local_day.isoformat(),
                        active_day=slot.local_day.isoformat(),
                        state=new_state,
                        version=1,
                        items=list(old.items),
                        question=old.question,
                        phone=old.phone,
                        locale=old.locale,
                        created_at=now,
                        updated_at=now,
                        reviewed_by=old.reviewed_by,
                        reviewed_at=old.reviewed_at,
                        review_note=old.review_note,
                        rescheduled_from=old.id,
                    )
                    # Both seat rows are locked in id order (take the new one first when its
                    # id sorts first): two taxpayers swapping slots never deadlock.
                    take_first = slot.id < old.slot_id
                    if take_first:
                        await self._take_seat(db, slot)
                    await self._move(
                        db, old, "rescheduled", now, actor, {"to": new.id}, rescheduled_to=new.id
                    )
                    if not take_first:
                        await self._take_seat(db, slot)
                    db.add(new)
                    await db.flush()
                    await db.execute(
                        update(BookingMaterial)
                        .where(BookingMaterial.booking_id == old.id)
                        .values(booking_id=new.id)
                        .execution_options(synchronize_session=False)
                    )
                    self._event(
                        db,
                        now,
                        actor,
                        new_state,
                        booking=new,
                        data={"from_booking": old.id, "slot_id": slot.id},
                    )
                    self._text(db, new, "confirmation", now)
                    if new_state == "approved":
                        self._reminders(db, new, now)
            except IntegrityError as exc:
                if "active_day" in str(exc.orig) or "uq_bookings" in str(exc.orig):
                    raise DomainError(
                        "one_booking_a_day", "you already have an appointment on that day"
                    ) from None
                raise
        return new

    async def check_in(
        self, booking_id: str, taxpayer_id: str, now: datetime
    ) -> tuple[Booking, QueueEntry]:
        """The taxpayer is here: how the booking enters the queue (too_early, no_show and a
        booking not approved are refused). A repeat gives the same entry."""
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id, taxpayer_id)
            t = _ts(b.starts_at)
            if b.state in ("checked_in", "queued") and b.checked_in_at is not None:
                was: Verdict = "on_time" if b.check_in == "on_time" else "walk_in"
                return b, queue_entry(was, _ts(b.checked_in_at), t)
            if b.state in ("requested", "pre_review"):
                raise DomainError("invalid_state", "the booking has not been approved yet")
            if b.state == "no_show":
                raise DomainError("no_show", "the time to check in for this booking is over")
            if b.state not in states.CHECK_IN_FROM:
                raise DomainError("invalid_state", f"a {b.state} booking cannot check in")
            v = verdict(_ts(now), t, self.rules.timing)
            if v == "too_early":
                opens = datetime.fromtimestamp(self.rules.timing.opens_at(t), UTC)
                raise DomainError(
                    "too_early", f"check-in opens at {opens.astimezone(self.tz):%H:%M}"
                )
            if v == "no_show":
                raise DomainError("no_show", "the time to check in for this booking is over")
            entry = queue_entry(v, _ts(now), t)
            await self._move(
                db, b, "checked_in", now, Actor("taxpayer", taxpayer_id), {"verdict": v},
                checked_in_at=now, check_in=v,
            )  # fmt: skip
            return b, entry

    async def attach(
        self, booking_id: str, taxpayer_id: str, filename: str, data: bytes, now: datetime
    ) -> BookingMaterial:
        """A material for pre-review, with the content checks of deliveries."""
        if self.store is None:
            raise DomainError("unavailable", "no document storage is configured")
        doc = check_document(data, self.rules.material_max_bytes)
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id, taxpayer_id)
            if b.state not in states.CHANGEABLE:
                raise DomainError(
                    "invalid_state", f"materials cannot be added to a {b.state} booking"
                )
            count = await db.scalar(
                select(func.count())
                .select_from(BookingMaterial)
                .where(BookingMaterial.booking_id == b.id)
            )
            if int(count or 0) >= self.rules.materials_max:
                raise DomainError(
                    "too_many_materials",
                    f"at most {self.rules.materials_max} materials per booking",
                )
            material_id = str(uuid.uuid4())
            m = BookingMaterial(
                id=material_id,
                booking_id=b.id,
                filename=clean_filename(filename, doc),
                media_type=doc.media_type,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                storage_key=f"bookings/{b.id}/{material_id}.{doc.extension}",
                created_at=now,
            )
            db.add(m)
            self._event(
                db, now, Actor("taxpayer", taxpayer_id), "material_added", booking=b,
                data={"material_id": material_id, "sha256": m.sha256, "size": len(data)},
            )  # fmt: skip
            # the file first: a failed write rolls the row back (as deliveries do)
            await self.store.put(m.storage_key, data)
            return m

    async def materials(self, booking_id: str) -> list[BookingMaterial]:
        async with self._sessions() as db:
            rows = await db.execute(
                select(BookingMaterial)
                .where(BookingMaterial.booking_id == booking_id)
                .order_by(BookingMaterial.created_at, BookingMaterial.id)
            )
            return list(rows.scalars())

    async def material(self, booking_id: str, material_id: str) -> tuple[BookingMaterial, bytes]:
        """A material's bytes, checked against its SHA-256 (as a delivery's download is)."""
        async with self._sessions() as db:
            m = await db.get(BookingMaterial, material_id)
        if m is None or m.booking_id != booking_id or self.store is None:
            raise DomainError("not_found", "no such material")
        try:
            data = await self.store.get(m.storage_key)
        except FileNotFoundError:
            data = b""
        if hashlib.sha256(data).hexdigest() != m.sha256:
            raise DomainError(
                "document_corrupted", "the stored material does not match its SHA-256"
            )
        return m, data

    async def _material_of(self, db: AsyncSession, b: Booking, material_id: str) -> BookingMaterial:
        """The booking's own material (a material of another booking is not_found here)."""
        m = await db.get(BookingMaterial, material_id, populate_existing=True)
        if m is None or m.booking_id != b.id:
            raise DomainError("not_found", "no such material")
        return m

    async def _touch(self, db: AsyncSession, b: Booking, now: datetime) -> None:
        """A change to a booking's materials is a step on its version too: a verdict, a
        replacement and the approval never interleave (the approval counts the files that
        need replacing in the version it moves)."""
        result = await db.execute(
            update(Booking)
            .where(Booking.id == b.id, Booking.version == b.version)
            .values(version=b.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise DomainError("invalid_state", "the booking changed meanwhile: reload it")
        set_committed_value(b, "version", b.version + 1)
        set_committed_value(b, "updated_at", now)

    async def review_material(
        self,
        booking_id: str,
        material_id: str,
        actor: Actor,
        verdict: str,
        now: datetime,
        *,
        reason: str | None = None,
        note: str = "",
    ) -> tuple[Booking, BookingMaterial]:
        """Staff's verdict on one file (accepted, or needs_replacing with a reason code and a
        note), while the booking is before its pre-review decision; a requested booking is
        taken up (pre_review). Audited; a text goes to the phone for a file to replace."""
        if verdict not in states.MATERIAL_VERDICTS:
            raise DomainError("invalid_payload", f"{verdict} is not a verdict on a material")
        if verdict == "needs_replacing" and not reason:
            raise DomainError("invalid_payload", "a file that needs replacing needs a reason")
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id)
            m = await self._material_of(db, b, material_id)
            if b.state not in states.MATERIALS_REVIEWABLE:
                raise DomainError(
                    "invalid_state", f"the materials of a {b.state} booking are not reviewed"
                )
            if b.state == "requested":
                await self._move(db, b, "pre_review", now, actor, reviewed_by=actor.id)
            await self._touch(db, b, now)
            replacing = verdict == "needs_replacing"
            values: dict[str, Any] = {
                "review": verdict,
                "review_reason": reason if replacing else None,
                "review_note": (note or None) if replacing else None,
                "reviewed_by": actor.id,
                "reviewed_at": now,
            }
            await db.execute(
                update(BookingMaterial)
                .where(BookingMaterial.id == m.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            for key, value in values.items():
                set_committed_value(m, key, value)
            self._event(
                db, now, actor, "material_reviewed", booking=b,
                data={
                    "material_id": m.id, "revision": m.revision, "sha256": m.sha256,
                    "verdict": verdict, "reason": values["review_reason"], "note": note,
                },
            )  # fmt: skip
            if replacing:  # one text per verdict (the booking's version names it)
                self._text(
                    db, b, "material_replace", now, dedupe=f"{b.id}:material:{b.version}",
                    filename=m.filename, issue=reason or "other", note=note,
                )  # fmt: skip
            return b, m

    async def replace_material(
        self,
        booking_id: str,
        material_id: str,
        taxpayer_id: str,
        filename: str,
        data: bytes,
        now: datetime,
    ) -> tuple[Booking, BookingMaterial]:
        """The booking's taxpayer replaces a file staff marked needs_replacing, while the
        booking is in pre-review, with the content checks of `attach`. The material keeps its
        id, turns pending and counts one more revision; the earlier file stays stored."""
        if self.store is None:
            raise DomainError("unavailable", "no document storage is configured")
        doc = check_document(data, self.rules.material_max_bytes)
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id, taxpayer_id)
            m = await self._material_of(db, b, material_id)
            if b.state not in states.MATERIALS_REVIEWABLE:
                raise DomainError(
                    "invalid_state", f"materials of a {b.state} booking cannot be replaced"
                )
            if m.review != "needs_replacing":
                raise DomainError(
                    "invalid_state", "only a file staff marked as needing replacing is replaced"
                )
            await self._touch(db, b, now)
            previous = m.sha256
            revision = m.revision + 1
            values: dict[str, Any] = {
                "filename": clean_filename(filename, doc),
                "media_type": doc.media_type,
                "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "storage_key": f"bookings/{b.id}/{m.id}-r{revision}.{doc.extension}",
                "revision": revision,
                "replaced_at": now,
                "review": "pending",
                "review_reason": None,
                "review_note": None,
                "reviewed_by": None,
                "reviewed_at": None,
            }
            changed = await db.execute(
                update(BookingMaterial)
                .where(BookingMaterial.id == m.id, BookingMaterial.revision == m.revision)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(changed, "rowcount", 0) != 1:
                raise DomainError("invalid_state", "the material changed meanwhile: reload it")
            for key, value in values.items():
                set_committed_value(m, key, value)
            self._event(
                db, now, Actor("taxpayer", taxpayer_id), "material_replaced", booking=b,
                data={
                    "material_id": m.id, "revision": revision, "sha256": m.sha256,
                    "previous_sha256": previous, "size": len(data),
                },
            )  # fmt: skip
            # the file last: a failed write rolls the row back (as attach does)
            await self.store.put(m.storage_key, data)
            return b, m

    # ---- staff -----------------------------------------------------------------------------

    async def review(
        self,
        booking_id: str,
        actor: Actor,
        decision: BookingState,
        now: datetime,
        *,
        note: str = "",
        route: str = "",
        reason: str = "",
    ) -> Booking:
        """Pre-review: `pre_review` takes the booking up (optional); a decision (approved,
        redirected_online with the route, rejected with the reason) closes the review."""
        if decision not in (*states.DECISIONS, "pre_review"):
            raise DomainError("invalid_payload", f"{decision} is not a pre-review decision")
        if decision == "redirected_online" and not route:
            raise DomainError("invalid_payload", "a redirect names the online route to use")
        if decision == "rejected" and not reason:
            raise DomainError("invalid_payload", "a rejection gives its reason")
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id)
            if decision == "approved":
                await self._no_file_to_replace(db, b)
            if b.state == "requested":
                await self._move(db, b, "pre_review", now, actor, reviewed_by=actor.id)
            if decision == "pre_review":
                if b.state != "pre_review":
                    states.require(b.state, "pre_review")  # type: ignore[arg-type]
                return b
            await self._move(
                db, b, decision, now, actor, {"note": note, "route": route, "reason": reason},
                reviewed_by=actor.id, reviewed_at=now, review_note=note or None,
                online_route=route or None, reject_reason=reason or None,
            )  # fmt: skip
            self._text(db, b, decision, now, route=route, reason=reason)
            if decision == "approved":
                self._reminders(db, b, now)
            return b

    @staticmethod
    async def _no_file_to_replace(db: AsyncSession, b: Booking) -> None:
        waiting = await db.scalar(
            select(func.count())
            .select_from(BookingMaterial)
            .where(BookingMaterial.booking_id == b.id, BookingMaterial.review == "needs_replacing")
        )
        if waiting:
            raise DomainError(
                "materials_need_replacing",
                f"{waiting} material(s) marked as needing replacing: the booking cannot be "
                "approved until the taxpayer replaces them (or staff accept them)",
            )

    async def lift_block(
        self, taxpayer_id: str, actor: Actor, reason: str, now: datetime
    ) -> Strikes:
        """Staff forgive the month's strikes so far; audited with the reason."""
        before = await self.strikes(taxpayer_id, now)
        if not before.blocked:
            raise DomainError("invalid_state", "that taxpayer is not blocked")
        async with self._sessions() as db, db.begin():
            lift = BlockLift(
                id=str(uuid.uuid4()),
                taxpayer_id=taxpayer_id,
                month=before.month,
                forgiven=before.strikes - before.forgiven,
                reason=reason,
                lifted_by=actor.id or "",
                lifted_at=now,
            )
            db.add(lift)
            self._event(
                db, now, actor, "block_lifted", taxpayer_id=taxpayer_id,
                data={"month": before.month, "forgiven": lift.forgiven, "reason": reason},
            )  # fmt: skip
        return await self.strikes(taxpayer_id, now)

    # ---- the queue and the clock --------------------------------------------------------------

    async def queued(self, booking_id: str, ticket_id: str, now: datetime) -> Booking:
        """The checked-in booking's ticket is in the live queue."""
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id)
            await self._move(
                db, b, "queued", now, SYSTEM, {"ticket_id": ticket_id}, ticket_id=ticket_id
            )
            return b

    async def served(self, booking_id: str, session_id: str, now: datetime) -> Booking:
        """An agent took the booking's ticket (the session started)."""
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id)
            await self._move(
                db, b, "served", now, SYSTEM, {"session_id": session_id},
                session_id=session_id, served_at=now,
            )  # fmt: skip
            return b

    async def left(self, booking_id: str, now: datetime, reason: str) -> Booking:
        """The taxpayer left the queue before being served."""
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id)
            await self._move(
                db, b, "cancelled", now, SYSTEM, {"reason": reason}, cancel_reason=reason[:200]
            )
            return b

    async def reminded(self, booking_id: str, now: datetime) -> bool:
        """A reminder went out: approved -> reminded (later reminders keep the state)."""
        async with self._sessions() as db, db.begin():
            b = await self._load(db, booking_id)
            if b.state != "approved":
                return False
            try:
                await self._move(db, b, "reminded", now, SYSTEM, reminded_at=now)
            except DomainError:
                return False
            return True

    async def sweep(self, now: datetime, limit: int = 200) -> list[Booking]:
        """At T + grace: an approved booking with no check-in is a no-show (a strike); one
        nobody reviewed is cancelled (no strike). Safe on many nodes at once."""
        cutoff = now - timedelta(seconds=self.rules.timing.grace_s)
        async with self._sessions() as db:
            rows = await db.execute(
                select(Booking.id)
                .where(
                    Booking.state.in_(("approved", "reminded", "requested", "pre_review")),
                    Booking.starts_at <= cutoff,
                )
                .order_by(Booking.starts_at)
                .limit(limit)
            )
            due = list(rows.scalars())
        done: list[Booking] = []
        for booking_id in due:
            try:
                async with self._sessions() as db, db.begin():
                    b = await self._load(db, booking_id)
                    if b.state in ("approved", "reminded"):
                        await self._move(db, b, "no_show", now, SYSTEM, {"strike": True})
                    elif b.state in ("requested", "pre_review"):
                        await self._move(
                            db, b, "cancelled", now, SYSTEM, {"reason": "not_reviewed"},
                            cancel_reason="not_reviewed",
                        )  # fmt: skip
                    else:
                        continue
                    done.append(b)
            except DomainError:
                continue  # another node took that step first
        return done
