"""Per-file pre-review of a booking's materials

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:30:00

Columns on booking_materials (vtax/appointments/tables.py): staff's verdict on each file
(`review`: pending | accepted | needs_replacing, `review_reason` a code of
vtax/contract/appointments.py `MaterialIssue`, `review_note`, `reviewed_by`, `reviewed_at`)
and the file's `revision` (1, then one more per replacement, with `replaced_at`). Materials
attached before this revision are pending, revision 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

COLUMNS = (
    "review",
    "review_reason",
    "review_note",
    "reviewed_by",
    "reviewed_at",
    "revision",
    "replaced_at",
)


def upgrade() -> None:
    with op.batch_alter_table("booking_materials") as batch:
        batch.add_column(
            sa.Column("review", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("review_reason", sa.String(32), nullable=True))
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(36), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (PostgreSQL, SQLite >= 3.35), as in 0014 and 0016.
    for name in reversed(COLUMNS):
        op.execute(f"ALTER TABLE booking_materials DROP COLUMN {name}")
