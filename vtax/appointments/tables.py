"""The appointments' tables (migration 0008). Slots are generated, not stored: a slot gets a
row the first time somebody books it, holding its current capacity and the seats taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vtax.db import Base, UTCDateTime

AutoId = BigInteger().with_variant(Integer(), "sqlite")


class CalendarYearRow(Base):
    """An imported year file; it replaces the shipped file of its year."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[str] = mapped_column(String(36))


class AppointmentPlan(Base):
    """The supervisors' staffing plan (one document, replaced as a whole)."""

    __tablename__ = "appointment_plans"

    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(36))


class SlotSeats(Base):
    """Seats taken of a slot; `booked` never exceeds the capacity of the plan at booking time
    (the conditional UPDATE in bookings.py is the only writer)."""

    __tablename__ = "appointment_slots"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        # One active booking per taxpayer per day: `active_day` is the service time zone's
        # day while the booking is active, NULL after (NULLs never collide, on both engines).
        UniqueConstraint("taxpayer_id", "active_day", name="uq_bookings_taxpayer_active_day"),
        Index("ix_bookings_state_starts", "state", "starts_at"),
        Index("ix_bookings_taxpayer", "taxpayer_id", "starts_at"),
        Index("ix_bookings_slot", "slot_id"),
        Index("ix_bookings_day", "local_day", "category"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    slot_id: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    local_day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, service time zone
    active_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    question: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    online_route: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    check_in: Mapped[str | None] = mapped_column(String(10), nullable=True)  # on_time | walk_in
    ticket_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    served_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rescheduled_from: Mapped[str | None] = mapped_column(String(36), nullable=True)
    rescheduled_to: Mapped[str | None] = mapped_column(String(36), nullable=True)


class BookingMaterial(Base):
    """A document the taxpayer attached for pre-review (checked as deliveries are)."""

    __tablename__ = "booking_materials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Staff's verdict on this file (migration 0017): pending | accepted | needs_replacing, with
    # a reason code and a note for the taxpayer. A replacement keeps the material's id, takes
    # the new bytes (a new storage key; the old file stays for the audit) and turns pending.
    review: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    review_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AppointmentEvent(Base):
    """The appointments' audit log: every step, strike, block lift, import and plan change,
    who and when. Only inserted."""

    __tablename__ = "appointment_events"
    __table_args__ = (
        Index("ix_appointment_events_booking", "booking_id", "id"),
        Index("ix_appointment_events_taxpayer", "taxpayer_id", "id"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    booking_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    taxpayer_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BlockLift(Base):
    """Staff lifted a taxpayer's no-show block: the month's strikes so far are forgiven."""

    __tablename__ = "appointment_block_lifts"
    __table_args__ = (Index("ix_block_lifts_taxpayer", "taxpayer_id", "month"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(ForeignKey("taxpayers.id"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, service time zone
    forgiven: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    lifted_by: Mapped[str] = mapped_column(String(36))
    lifted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """A text to send (confirmation, reminder, pre-review result, callback notice). Claimed
    with a lease, so one node sends it; `dedupe` makes enqueueing idempotent."""

    __tablename__ = "appointment_outbox"
    __table_args__ = (Index("ix_appointment_outbox_due", "state", "due_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe: Mapped[str] = mapped_column(String(120), unique=True)
    booking_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(24))
    phone: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(8))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10))  # pending | sent | skipped | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)


class CallbackRow(Base):
    """The record of a callback (vtax/appointments/callbacks.py `Callback`)."""

    __tablename__ = "appointment_callbacks"
    __table_args__ = (Index("ix_appointment_callbacks_state", "state", "window_ends_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36), unique=True)
    taxpayer_id: Mapped[str] = mapped_column(String(36))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    notify_after: Mapped[datetime] = mapped_column(UTCDateTime)
    window_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    locale: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer, default=1)
