"""The confirmation form (业务办理服务确认单): its versions, the taxpayer's decisions, and the
form as the summary recorded it

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-03 11:30:00

New tables only; nothing existing changes. The shapes are written out here,
not imported from the models: what this migration did must not change when they do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    op.create_table(
        "confirmation_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("author_id", sa.String(36), nullable=False),
        sa.Column("proposed_at", utc, nullable=False),
        sa.UniqueConstraint("session_id", "version", name="uq_confirmation_version"),
    )
    op.create_table(
        "confirmation_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("taxpayer_id", sa.String(36), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("at", utc, nullable=False),
        sa.UniqueConstraint("session_id", "version", name="uq_confirmation_decision"),
    )
    op.create_table(
        "confirmation_records",
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), primary_key=True
        ),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("saved_at", utc, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("confirmation_records")
    op.drop_table("confirmation_decisions")
    op.drop_table("confirmation_versions")
