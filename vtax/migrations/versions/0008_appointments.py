"""Appointments: imported calendar years, the staffing plan, slot seats, bookings with their
materials and audit, no-show block lifts, the text outbox and callbacks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 06:00:00

New tables only (vtax/appointments/tables.py); nothing existing changes. The shapes are written
out here, not imported from the models: what this migration did must not change when they do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = (
    "appointment_callbacks",
    "appointment_outbox",
    "appointment_block_lifts",
    "appointment_events",
    "booking_materials",
    "bookings",
    "appointment_slots",
    "appointment_plans",
    "calendar_years",
)


def upgrade() -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("imported_at", utc, nullable=False),
        sa.Column("imported_by", sa.String(36), nullable=False),
    )
    op.create_table(
        "appointment_plans",
        sa.Column("key", sa.String(16), primary_key=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("updated_by", sa.String(36), nullable=False),
    )
    op.create_table(
        "appointment_slots",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("starts_at", utc, nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("taxpayer_id", sa.String(36), sa.ForeignKey("taxpayers.id"), nullable=False),
        sa.Column("slot_id", sa.String(100), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("starts_at", utc, nullable=False),
        sa.Column("ends_at", utc, nullable=False),
        sa.Column("local_day", sa.String(10), nullable=False),
        sa.Column("active_day", sa.String(10), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("reviewed_by", sa.String(36), nullable=True),
        sa.Column("reviewed_at", utc, nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("online_route", sa.String(300), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.String(200), nullable=True),
        sa.Column("checked_in_at", utc, nullable=True),
        sa.Column("check_in", sa.String(10), nullable=True),
        sa.Column("ticket_id", sa.String(36), nullable=True),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("served_at", utc, nullable=True),
        sa.Column("reminded_at", utc, nullable=True),
        sa.Column("rescheduled_from", sa.String(36), nullable=True),
        sa.Column("rescheduled_to", sa.String(36), nullable=True),
        sa.UniqueConstraint("taxpayer_id", "active_day", name="uq_bookings_taxpayer_active_day"),
    )
    op.create_index("ix_bookings_state_starts", "bookings", ["state", "starts_at"])
    op.create_index("ix_bookings_taxpayer", "bookings", ["taxpayer_id", "starts_at"])
    op.create_index("ix_bookings_slot", "bookings", ["slot_id"])
    op.create_index("ix_bookings_day", "bookings", ["local_day", "category"])
    op.create_table(
        "booking_materials",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("booking_id", sa.String(36), sa.ForeignKey("bookings.id"), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("created_at", utc, nullable=False),
    )
    op.create_index("ix_booking_materials_booking_id", "booking_materials", ["booking_id"])
    op.create_table(
        "appointment_events",
        sa.Column("id", auto_id, primary_key=True, autoincrement=True),
        sa.Column("at", utc, nullable=False),
        sa.Column("booking_id", sa.String(36), nullable=True),
        sa.Column("taxpayer_id", sa.String(36), nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_appointment_events_booking", "appointment_events", ["booking_id", "id"])
    op.create_index("ix_appointment_events_taxpayer", "appointment_events", ["taxpayer_id", "id"])
    op.create_table(
        "appointment_block_lifts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("taxpayer_id", sa.String(36), sa.ForeignKey("taxpayers.id"), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("forgiven", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lifted_by", sa.String(36), nullable=False),
        sa.Column("lifted_at", utc, nullable=False),
    )
    op.create_index("ix_block_lifts_taxpayer", "appointment_block_lifts", ["taxpayer_id", "month"])
    op.create_table(
        "appointment_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dedupe", sa.String(120), nullable=False, unique=True),
        sa.Column("booking_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("due_at", utc, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", utc, nullable=True),
        sa.Column("sent_at", utc, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
    )
    op.create_index("ix_appointment_outbox_due", "appointment_outbox", ["state", "due_at"])
    op.create_table(
        "appointment_callbacks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("ticket_id", sa.String(36), nullable=False, unique=True),
        sa.Column("taxpayer_id", sa.String(36), nullable=False),
        sa.Column("requested_at", utc, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("notify_after", utc, nullable=False),
        sa.Column("window_ends_at", utc, nullable=True),
        sa.Column("connected_at", utc, nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_appointment_callbacks_state", "appointment_callbacks", ["state", "window_ends_at"]
    )


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
