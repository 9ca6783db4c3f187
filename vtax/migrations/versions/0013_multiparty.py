"""Multiparty: every participant of a session (role, user, join and leave, the span an agent
handled it)

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-03 11:40:00

A new table only; nothing existing changes. The shape is written out here, not imported from
the models: what this migration did must not change when they do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "session_participants",
        sa.Column("id", auto_id, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("part", sa.String(120), nullable=False),
        sa.Column("joined_at", utc, nullable=False),
        sa.Column("left_at", utc, nullable=True),
        sa.Column("handled_from", utc, nullable=True),
        sa.Column("handled_to", utc, nullable=True),
        sa.UniqueConstraint("session_id", "participant_id", name="uq_session_participants_pid"),
    )
    op.create_index(
        "ix_session_participants_user", "session_participants", ["user_id", "joined_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_session_participants_user", table_name="session_participants")
    op.drop_table("session_participants")
