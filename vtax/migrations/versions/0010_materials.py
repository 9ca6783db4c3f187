"""Materials the taxpayer hands in during the call (uploads and camera stills), each accepted
or rejected by the session's agent

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-03 11:30:00

One new table; nothing existing changes. The shape is written out here, not imported from
the models: what this migration did must not change when they do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0010"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    op.create_table(
        "session_materials",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("taxpayer_id", sa.String(36), sa.ForeignKey("taxpayers.id"), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column(
            "replaces",
            sa.String(36),
            sa.ForeignKey("session_materials.id"),
            nullable=True,
            unique=True,
        ),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(36), nullable=True),
        sa.Column("reviewed_at", utc, nullable=True),
        sa.Column("created_at", utc, nullable=False),
    )
    op.create_index(
        "ix_session_materials_session", "session_materials", ["session_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_session_materials_session", table_name="session_materials")
    op.drop_table("session_materials")
