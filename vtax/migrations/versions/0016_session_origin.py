"""Sessions record where they came from: the assistant's conversation, the appointment

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 22:00:00

Two nullable columns on service_sessions (vtax/models.py): `consultation_id` (the assistant's
conversation the taxpayer was handed off from; the supervisor reads its transcript with the
session) and `booking_id` (the appointment checked in). Null: a walk-in, or a session made
before this revision (the booking side has always kept its session id, so those are filled
from `bookings` here; a consultation did not keep its session).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_sessions") as batch:
        batch.add_column(sa.Column("consultation_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("booking_id", sa.String(36), nullable=True))
    op.create_index("ix_service_sessions_booking", "service_sessions", ["booking_id"])
    op.create_index("ix_service_sessions_consultation", "service_sessions", ["consultation_id"])
    op.execute(
        "UPDATE service_sessions SET booking_id = ("
        " SELECT b.id FROM bookings b WHERE b.session_id = service_sessions.id)"
        " WHERE booking_id IS NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_service_sessions_consultation", table_name="service_sessions")
    op.drop_index("ix_service_sessions_booking", table_name="service_sessions")
    # Plain ALTER TABLE ... DROP COLUMN (PostgreSQL, SQLite >= 3.35), as in 0014.
    op.execute("ALTER TABLE service_sessions DROP COLUMN booking_id")
    op.execute("ALTER TABLE service_sessions DROP COLUMN consultation_id")
