"""In-call chat: the messages of a session, kept with its record

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:30:00

One new table (vtax/models.py ChatMessageRow); nothing existing changes. The shape is written
out here, not imported from the model: what this migration did must not change when it does.
Like the audit log, the messages are evidence of the call: the database refuses UPDATE and
DELETE on them (PostgreSQL: 0002's `vtax_append_only()`; SQLite: `RAISE(ABORT)`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("sender_role", sa.String(16), nullable=False),
        sa.Column("sender_id", sa.String(64), nullable=False),
        sa.Column("sender_name", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_at", vtax.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_chat_messages_session_seq"),
        sa.UniqueConstraint(
            "session_id", "sender_id", "client_id", name="uq_chat_messages_client_id"
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER chat_messages_append_only BEFORE UPDATE OR DELETE ON chat_messages "
            "FOR EACH ROW EXECUTE FUNCTION vtax_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER chat_messages_no_{action.lower()} BEFORE {action} ON "
                "chat_messages BEGIN SELECT RAISE(ABORT, 'chat_messages is append-only'); END"
            )


def downgrade() -> None:
    op.drop_table("chat_messages")  # its triggers go with it
