"""Sessions record the enterprise the person acted for, and in which role

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 19:00:00

Two nullable columns on service_sessions (vtax/models.py): `enterprise_id` (an
identity_enterprises id; null: the person acted for themselves) and `acting_role`, and an
index for an enterprise's sessions. Existing sessions keep null: they were made before anyone
acted for an enterprise.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_sessions") as batch:
        batch.add_column(sa.Column("enterprise_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("acting_role", sa.String(24), nullable=True))
    op.create_index(
        "ix_service_sessions_enterprise", "service_sessions", ["enterprise_id", "joined_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_sessions_enterprise", table_name="service_sessions")
    with op.batch_alter_table("service_sessions") as batch:
        batch.drop_column("acting_role")
        batch.drop_column("enterprise_id")
