"""The consultation assistant: knowledge base and consultations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 06:00:00

`kb_entries` (an entry's current content, languages as JSON), `kb_entry_versions` (every
version, written once), `kb_revision` (one row, bumped with every change: each node rebuilds
its in-process index when it moves), `consultations` and `consultation_turns` (the
conversation the hand-off carries to the agent). The shapes are written out here, not taken
from vtax.assistant.tables: what this migration did must not change when the models do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vtax.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_entries",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_kb_entries_category", "kb_entries", ["category", "key"])
    op.create_table(
        "kb_entry_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), sa.ForeignKey("kb_entries.key"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.UniqueConstraint("key", "version"),
    )
    op.create_table(
        "kb_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.execute(
        "INSERT INTO kb_revision (id, revision, changed_at) VALUES (1, 0, CURRENT_TIMESTAMP)"
    )
    op.create_table(
        "consultations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("taxpayer", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("handoff_reason", sa.String(32), nullable=True),
        sa.Column("handoff_route", sa.String(16), nullable=True),
        sa.Column("handoff_at", UTCDateTime(), nullable=True),
        sa.Column("ticket_question", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_consultations_taxpayer", "consultations", ["taxpayer", "started_at"])
    op.create_index("ix_consultations_started", "consultations", ["started_at", "id"])
    op.create_table(
        "consultation_turns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "consultation_id", sa.String(36), sa.ForeignKey("consultations.id"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("entry_key", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("consultation_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("consultation_turns")
    op.drop_index("ix_consultations_started", table_name="consultations")
    op.drop_index("ix_consultations_taxpayer", table_name="consultations")
    op.drop_table("consultations")
    op.drop_table("kb_revision")
    op.drop_table("kb_entry_versions")
    op.drop_index("ix_kb_entries_category", table_name="kb_entries")
    op.drop_table("kb_entries")
