"""Call quality: the samples both pages send during a call and the session's summary

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-03 11:40:00

New tables only (vtax/models.py, section 0012); nothing existing changes. The shapes are
written out here, not imported from the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    auto_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "call_quality_samples",
        sa.Column("id", auto_id, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("at", utc, nullable=False),
        *(
            sa.Column(name, sa.Float(), nullable=True)
            for name in (
                "rtt_ms",
                "jitter_ms",
                "loss_pct",
                "out_kbps",
                "in_kbps",
                "screen_out_kbps",
                "fps",
            )
        ),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("mos", sa.Float(), nullable=True),
    )
    op.create_index("ix_call_quality_samples_session", "call_quality_samples", ["session_id", "at"])
    op.create_table(
        "call_quality",
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), primary_key=True
        ),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("mos_median", sa.Float(), nullable=True),
        sa.Column("level", sa.String(8), nullable=True),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("call_quality")
    op.drop_index("ix_call_quality_samples_session", table_name="call_quality_samples")
    op.drop_table("call_quality_samples")
