"""service_sessions.final_category: the session's effective category

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:00:00

The category the agent refined in the summary if any, else the one asked at join; the
supervisor's `category` filter matches it (`asked_category` the asked one). Added with a
literal server default (so SQLite adds it with ALTER TABLE instead of copying the table),
then backfilled with one UPDATE, the same SQL on SQLite and PostgreSQL: the summary's
category (one summary row per session, revised in place: it is the latest), else the
asked category. Index (final_category, joined_at) for the filtered, keyset-paginated list.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_sessions") as b:
        b.add_column(sa.Column("final_category", sa.String(64), nullable=False, server_default=""))
    op.execute(
        "UPDATE service_sessions SET final_category = COALESCE("
        "(SELECT s.category FROM session_summaries s"
        " WHERE s.session_id = service_sessions.id"
        " AND s.category IS NOT NULL AND s.category <> ''),"
        " service_sessions.category)"
    )
    op.create_index(
        "ix_service_sessions_final_category", "service_sessions", ["final_category", "joined_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_sessions_final_category", table_name="service_sessions")
    # Plain ALTER TABLE ... DROP COLUMN (PostgreSQL, SQLite >= 3.35), as in 0002: a batch
    # "move and copy" would drop service_sessions, which other tables' foreign keys forbid.
    op.execute("ALTER TABLE service_sessions DROP COLUMN final_category")
