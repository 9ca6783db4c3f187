"""review loop: check, deliveries, quality reviews, agent state history and daily totals,
KPI columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 16:00:00

Runs forward on a populated 0001 database: new columns get literal server defaults (so
SQLite adds them with ALTER TABLE instead of copying the table), and the KPI
columns (joined_day, wait_ms, talk_ms, rating_score, flags) are backfilled from the rows
that exist, in Python so the result is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

import vtax.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RECONTACT_WINDOW = timedelta(days=7)
APPEND_ONLY = (
    "session_events",
    "session_checks",
    "delivery_receipts",
    "quality_reviews",
    "agent_state_changes",
)
BATCH = 1000
DROPPED = {
    "session_ratings": ("professionalism", "attitude", "efficiency", "av_quality"),
    "session_summaries": ("category", "actions", "follow_up_due", "version"),
    "service_sessions": (
        "joined_day",
        "wait_ms",
        "talk_ms",
        "wrap_ms",
        "recording_url",
        "check_status",
        "follow_up_status",
        "follow_up_due",
        "follow_up_done_at",
        "flag",
        "flag_reasons",
        "flag_done_at",
        "flag_done_by",
        "flag_note",
        "rating_score",
        "summary_result",
        "recontacted",
    ),
}


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(round((end - start).total_seconds() * 1000), 0)


def _add_columns() -> None:
    with op.batch_alter_table("service_sessions") as b:
        b.add_column(sa.Column("joined_day", sa.String(10), nullable=True))
        b.add_column(sa.Column("wait_ms", sa.Integer(), nullable=True))
        b.add_column(sa.Column("talk_ms", sa.Integer(), nullable=True))
        b.add_column(sa.Column("wrap_ms", sa.Integer(), nullable=True))
        b.add_column(sa.Column("recording_url", sa.String(500), nullable=True))
        b.add_column(
            sa.Column("check_status", sa.String(12), nullable=False, server_default="pending")
        )
        b.add_column(
            sa.Column("follow_up_status", sa.String(8), nullable=False, server_default="none")
        )
        b.add_column(sa.Column("follow_up_due", sa.Date(), nullable=True))
        b.add_column(
            sa.Column("follow_up_done_at", vtax.db.UTCDateTime(timezone=True), nullable=True)
        )
        b.add_column(sa.Column("flag", sa.String(8), nullable=False, server_default="none"))
        b.add_column(sa.Column("flag_reasons", sa.JSON(), nullable=False, server_default="[]"))
        b.add_column(sa.Column("flag_done_at", vtax.db.UTCDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("flag_done_by", sa.String(36), nullable=True))
        b.add_column(sa.Column("flag_note", sa.Text(), nullable=True))
        b.add_column(sa.Column("rating_score", sa.SmallInteger(), nullable=True))
        b.add_column(sa.Column("summary_result", sa.String(16), nullable=True))
        b.add_column(sa.Column("recontacted", sa.Boolean(), nullable=False, server_default="0"))
    with op.batch_alter_table("session_summaries") as b:
        b.add_column(sa.Column("category", sa.String(64), nullable=True))
        b.add_column(sa.Column("actions", sa.JSON(), nullable=False, server_default="[]"))
        b.add_column(sa.Column("follow_up_due", sa.Date(), nullable=True))
        b.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("session_ratings") as b:
        for name in ("professionalism", "attitude", "efficiency", "av_quality"):
            b.add_column(sa.Column(name, sa.SmallInteger(), nullable=True))


def _create_tables() -> None:
    utc = vtax.db.UTCDateTime(timezone=True)
    op.create_table(
        "session_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, primary_key=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("taxpayer_id", sa.String(36), sa.ForeignKey("taxpayers.id"), nullable=False),
        sa.Column("summary_version", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(12), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", utc, nullable=False),
    )
    op.create_index("ix_session_checks_session_id", "session_checks", ["session_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("taxpayer_id", sa.String(36), sa.ForeignKey("taxpayers.id"), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("first_downloaded_at", utc, nullable=True),
        sa.Column("download_count", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", utc, nullable=True),
    )
    op.create_index("ix_deliveries_session", "deliveries", ["session_id", "created_at"])
    op.create_index("ix_deliveries_taxpayer", "deliveries", ["taxpayer_id", "acknowledged_at"])
    op.create_index("ix_deliveries_agent", "deliveries", ["agent_id", "acknowledged_at"])
    op.create_index("ix_deliveries_created", "deliveries", ["created_at", "id"])
    op.create_table(
        "delivery_receipts",
        sa.Column("delivery_id", sa.String(36), sa.ForeignKey("deliveries.id"), primary_key=True),
        sa.Column("taxpayer_id", sa.String(36), sa.ForeignKey("taxpayers.id"), nullable=False),
        sa.Column("id_type", sa.String(16), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("taxpayer_name", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("acknowledged_at", utc, nullable=False),
    )
    op.create_table(
        "quality_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, primary_key=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("service_sessions.id"), nullable=False
        ),
        sa.Column("reviewer_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("max_total", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", utc, nullable=False),
    )
    op.create_index("ix_quality_reviews_session_id", "quality_reviews", ["session_id"])
    op.create_table(
        "agent_state_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("at", utc, nullable=False),
    )
    op.create_index("ix_agent_state_changes_agent", "agent_state_changes", ["agent_id", "at"])
    op.create_index("ix_agent_state_changes_at", "agent_state_changes", ["at"])
    op.create_table(
        "agent_state_days",
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("ms", sa.Integer(), nullable=False),
    )
    op.create_table(
        "agent_current_states",
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("since", utc, nullable=False),
    )


def _create_indexes() -> None:
    op.create_index("ix_service_sessions_day", "service_sessions", ["joined_day", "agent_id"])
    op.create_index("ix_service_sessions_flag", "service_sessions", ["flag", "joined_at"])
    op.create_index("ix_service_sessions_rating", "service_sessions", ["rating_score", "joined_at"])
    op.create_index("ix_service_sessions_category", "service_sessions", ["category", "joined_at"])
    op.create_index("ix_service_sessions_outcome", "service_sessions", ["outcome", "joined_at"])


def _append_only_triggers(dialect: str) -> None:
    """The audit-type tables refuse UPDATE and DELETE in the database itself."""
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION vtax_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION vtax_append_only()"
            )
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def _backfill() -> None:
    """Fill the KPI columns of the sessions that exist (same Python code on both engines)."""
    conn = op.get_bind()
    utc = vtax.db.UTCDateTime(timezone=True)
    sessions = sa.table(
        "service_sessions",
        sa.column("id", sa.String()),
        sa.column("taxpayer_id", sa.String()),
        sa.column("category", sa.String()),
        sa.column("joined_at", utc),
        sa.column("answered_at", utc),
        sa.column("ended_at", utc),
        sa.column("outcome", sa.String()),
        sa.column("joined_day", sa.String()),
        sa.column("wait_ms", sa.Integer()),
        sa.column("talk_ms", sa.Integer()),
        sa.column("rating_score", sa.SmallInteger()),
        sa.column("summary_result", sa.String()),
        sa.column("flag", sa.String()),
        sa.column("flag_reasons", sa.JSON()),
        sa.column("follow_up_status", sa.String()),
        sa.column("recontacted", sa.Boolean()),
    )
    ratings = sa.table("session_ratings", sa.column("session_id"), sa.column("score"))
    summaries = sa.table("session_summaries", sa.column("session_id"), sa.column("result"))
    score_of = dict(conn.execute(sa.select(ratings.c.session_id, ratings.c.score)).all())
    result_of = dict(conn.execute(sa.select(summaries.c.session_id, summaries.c.result)).all())
    rows = conn.execute(
        sa.select(
            sessions.c.id,
            sessions.c.taxpayer_id,
            sessions.c.category,
            sessions.c.joined_at,
            sessions.c.answered_at,
            sessions.c.ended_at,
            sessions.c.outcome,
        )
    ).all()
    by_matter: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_matter[(row.taxpayer_id, row.category)].append(row)
    recontacted: set[str] = set()
    for group in by_matter.values():
        group.sort(key=lambda r: r.joined_at)
        for earlier, later in itertools.pairwise(group):
            if earlier.answered_at is not None and (
                later.joined_at - earlier.joined_at <= RECONTACT_WINDOW
            ):
                recontacted.add(earlier.id)
    params = []
    for row in rows:
        wait_end = row.answered_at or (row.ended_at if row.outcome == "abandoned" else None)
        score = score_of.get(row.id)
        low = score is not None and score <= 2
        params.append(
            {
                "b_id": row.id,
                "joined_day": row.joined_at.date().isoformat(),
                "wait_ms": _ms(row.joined_at, wait_end),
                "talk_ms": _ms(row.answered_at, row.ended_at),
                "rating_score": score,
                "flag": "open" if low else "none",
                "flag_reasons": ["low_rating"] if low else [],
                "follow_up_status": "open" if result_of.get(row.id) == "follow_up" else "none",
                "summary_result": result_of.get(row.id),
                "recontacted": row.id in recontacted,
            }
        )
    if not params:
        return
    # Bind names must differ from column names in an executemany UPDATE.
    columns = [k for k in params[0] if k != "b_id"]
    update = (
        sa.update(sessions)
        .where(sessions.c.id == sa.bindparam("b_id"))
        .values({k: sa.bindparam("b_" + k) for k in columns})
    )
    bound = [{"b_id": p["b_id"], **{"b_" + k: p[k] for k in columns}} for p in params]
    for start in range(0, len(bound), BATCH):
        conn.execute(update, bound[start : start + BATCH])


def upgrade() -> None:
    _add_columns()
    _create_tables()
    _create_indexes()
    _backfill()
    _append_only_triggers(op.get_bind().dialect.name)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        elif dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS vtax_append_only()")
    for name in ("day", "flag", "rating", "category", "outcome"):
        op.drop_index(f"ix_service_sessions_{name}", "service_sessions")
    for table in (
        "agent_current_states",
        "agent_state_days",
        "agent_state_changes",
        "quality_reviews",
        "delivery_receipts",
        "deliveries",
        "session_checks",
    ):
        op.drop_table(table)
    # Plain ALTER TABLE ... DROP COLUMN (PostgreSQL, SQLite >= 3.35): a batch "move and copy"
    # would drop service_sessions, which the foreign keys of other tables forbid.
    for table, columns in DROPPED.items():
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
