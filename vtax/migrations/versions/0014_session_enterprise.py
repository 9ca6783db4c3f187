"""Sessions record the enterprise the person acted for, and in which role

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-04 19:00:00

Two nullable columns on service_sessions (vtax/models.py): `enterprise_id` (an
identity_enterprises id; null: the person acted for themselves) and `acting_role`, and an
index for an enterprise's sessions. Existing sessions keep null: they were made before anyone
acted for an enterprise.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
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
    # Plain ALTER TABLE ... DROP COLUMN (PostgreSQL, SQLite >= 3.35), as in 0004: a batch
    # "move and copy" would drop service_sessions, which other tables' foreign keys forbid.
    op.execute("ALTER TABLE service_sessions DROP COLUMN acting_role")
    op.execute("ALTER TABLE service_sessions DROP COLUMN enterprise_id")
