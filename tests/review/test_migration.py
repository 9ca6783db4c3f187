"""Migrations 0002 and 0003 run forward on a populated 0001 database, on both engines: 0002
backfills the KPI columns from the rows that exist, 0003 the per-day KPI rollup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vtax.db import make_engine, migrate, session_factory
from vtax.review.kpi import KpiQuery
from vtax.review.records import Scope, SessionFilter, SessionRecords

T = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)


def head_revision(url: str) -> str:
    """The latest migration (the tests run forward to it, whichever it is)."""
    from alembic.script import ScriptDirectory

    from vtax.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


async def downgrade(url: str, revision: str) -> None:
    """Alembic's downgrade (it runs its own event loop: in a thread)."""
    from alembic import command

    from vtax.db import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


@asynccontextmanager
async def engine_at(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database, disposed after (migrations need it closed)."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def dump(conn: AsyncConnection, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Every row of each table, sorted (integers as int: the engines' numeric types differ)."""
    out = {}
    for table in tables:
        rows = (await conn.execute(sa.text(f"SELECT * FROM {table}"))).all()
        out[table] = sorted(tuple(int(v) if isinstance(v, int) else v for v in r) for r in rows)
    return out


async def populated(url: str, *revisions: str) -> None:
    """A database at 0001 with `populate_0001`'s sessions, then migrated to each revision in
    turn ("head": the latest)."""
    await migrate(url, "0001")
    await populate_0001(url)
    for revision in revisions:
        await migrate(url, revision)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


async def populate_0001(url: str) -> None:
    async with engine_at(url) as engine:
        md = sa.MetaData()
        async with engine.begin() as conn:
            await conn.run_sync(md.reflect)
            t = md.tables
            await conn.execute(
                t["users"].insert(),
                [
                    {
                        "id": "u1",
                        "username": "agent",
                        "display_name": "Agent",
                        "role": "agent",
                        "password_hash": "x",
                        "skills": {},
                        "languages": [],
                        "disabled": False,
                        "created_at": T,
                    }
                ],
            )
            await conn.execute(
                t["taxpayers"].insert(),
                [
                    {
                        "id": "p1",
                        "id_type": "uscc",
                        "id_number": "91350100M000100Y43",
                        "name": "Acme",
                        "created_at": T,
                    }
                ],
            )

            def row(sid, joined, answered, ended, outcome, agent="u1", category="invoices"):
                return {
                    "id": sid,
                    "ticket_id": "t-" + sid,
                    "taxpayer_id": "p1",
                    "agent_id": agent,
                    "category": category,
                    "language": "zh-CN",
                    "channel": "web",
                    "question": "q",
                    "joined_at": joined,
                    "offered_at": None,
                    "answered_at": answered,
                    "ended_at": ended,
                    "outcome": outcome,
                    "end_reason": None,
                }

            await conn.execute(
                t["service_sessions"].insert(),
                [
                    row("done", at(0), at(12), at(312), "completed"),
                    row("again", at(86400 * 2), at(86400 * 2 + 5), at(86400 * 2 + 65), "dropped"),
                    row("left", at(100), None, at(130), "abandoned", agent=None),
                    row("live", at(200), at(203), None, "live"),
                    row("wait", at(300), None, None, "waiting", agent=None),
                    row("other", at(400), at(410), at(470), "completed", category="vat"),
                ],
            )
            await conn.execute(
                t["session_ratings"].insert(),
                [
                    {"session_id": "done", "score": 1, "comment": "bad", "rated_at": at(400)},
                    {"session_id": "again", "score": 5, "comment": "", "rated_at": at(86400 * 3)},
                ],
            )
            await conn.execute(
                t["session_summaries"].insert(),
                [
                    {
                        "session_id": "done",
                        "agent_id": "u1",
                        "asked": "a",
                        "handled": "h",
                        "result": "follow_up",
                        "items": [],
                        "saved_at": at(320),
                    },
                    {
                        "session_id": "other",
                        "agent_id": "u1",
                        "asked": "a",
                        "handled": "h",
                        "result": "resolved",
                        "items": ["vat.x"],
                        "saved_at": at(480),
                    },
                ],
            )
            await conn.execute(
                t["session_events"].insert(),
                [
                    {
                        "session_id": "done",
                        "at": at(0),
                        "actor_role": "taxpayer",
                        "actor_id": "p1",
                        "kind": "joined",
                        "data": {},
                    },
                    {
                        "session_id": "done",
                        "at": at(312),
                        "actor_role": "agent",
                        "actor_id": "u1",
                        "kind": "ended",
                        "data": {"outcome": "completed"},
                    },
                ],
            )


async def test_0002_runs_forward_on_a_populated_0001_database(empty_database_url):
    url = empty_database_url
    await populated(url, "head")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            assert version == head_revision(url)
            rows = {
                r.id: r
                for r in (
                    await conn.execute(
                        sa.text(
                            "SELECT id, joined_day, wait_ms, talk_ms, rating_score, flag, "
                            "follow_up_status, check_status, recontacted, summary_result "
                            "FROM service_sessions"
                        )
                    )
                ).all()
            }
        assert (rows["done"].joined_day, rows["done"].wait_ms, rows["done"].talk_ms) == (
            "2026-10-05",
            12000,
            300000,
        )
        assert rows["done"].rating_score == 1 and rows["done"].flag == "open"
        assert rows["done"].follow_up_status == "open" and rows["done"].check_status == "pending"
        assert bool(rows["done"].recontacted) is True  # same matter again within 7 days
        assert bool(rows["other"].recontacted) is False
        assert (rows["done"].summary_result, rows["other"].summary_result) == (
            "follow_up",
            "resolved",
        )
        assert rows["left"].summary_result is None
        assert rows["left"].wait_ms == 30000 and rows["left"].talk_ms is None
        assert rows["live"].wait_ms == 3000 and rows["live"].talk_ms is None
        assert rows["wait"].wait_ms is None and rows["wait"].flag == "none"
        assert rows["again"].rating_score == 5 and rows["again"].flag == "none"

        # the migrated data works with the new code, and the audit log is now append-only
        records = SessionRecords(session_factory(engine))
        page, _ = await records.list(Scope("supervisor", ""))
        assert len(page) == 6
        done = await records.get("done", Scope("supervisor", ""))
        assert done["loop"]["flag"]["reasons"] == ["low_rating"]
        assert done["summary"]["version"] == 1 and done["summary"]["actions"] == []
        report = await records.kpis.report(
            KpiQuery(T.date(), T.date() + timedelta(days=2), "day"), now=at(86400 * 5)
        )
        assert report["total"]["answered"] == 4 and report["total"]["abandoned"] == 1
        async with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError):
                await conn.execute(sa.text("DELETE FROM session_events"))


async def test_0002_downgrades_and_upgrades_again(empty_database_url):
    url = empty_database_url
    await populated(url, "head")
    await downgrade(url, "0001")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM service_sessions")) == 6
            assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0001"
    await migrate(url)


async def test_0003_backfills_the_rollup_on_a_populated_database(empty_database_url):
    url = empty_database_url
    await populated(url, "0002")
    async with engine_at(url) as engine:
        async with engine.begin() as conn:  # agent-state daily totals as 0002 kept them
            await conn.execute(
                sa.text("INSERT INTO agent_state_days VALUES (:a, :d, :s, :ms)"),
                [
                    {"a": "u1", "d": "2026-10-05", "s": "available", "ms": 600_000},
                    {"a": "u1", "d": "2026-10-05", "s": "busy", "ms": 300_000},
                    {"a": "u1", "d": "2026-10-05", "s": "wrap_up", "ms": 60_000},
                    {"a": "u1", "d": "2026-10-05", "s": "away", "ms": 900_000},
                    {"a": "u1", "d": "2026-10-06", "s": "offline", "ms": 1_000},
                ],
            )
    await migrate(url, "0003")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            assert version == "0003"
            migrated = await dump(conn, ("kpi_daily", "kpi_daily_wait", "kpi_occupancy_daily"))
        assert migrated["kpi_occupancy_daily"] == [  # dim, day, key, shard, then the sums
            ("agent", "2026-10-05", "u1", 0, 360_000, 960_000, 4),
            ("agent", "2026-10-06", "u1", 0, 0, 0, 1),
            ("all", "2026-10-05", "", 0, 360_000, 960_000, 4),
            ("all", "2026-10-06", "", 0, 0, 0, 1),
        ]
        # 6 sessions on 2 days: 'all' has a row per day, agent per (day, agent or none)...
        assert {r[:3] for r in migrated["kpi_daily"] if r[0] == "all"} == {
            ("all", "2026-10-05", ""),
            ("all", "2026-10-07", ""),
        }
        assert len(migrated["kpi_daily_wait"]) > 0
        # (0005 replaces kpi_daily and kpi_daily_wait: tests/review/test_migration_0005.py)


async def test_0004_backfills_the_final_category_and_downgrades(empty_database_url):
    """final_category: the summary's refined category (one summary row per session, revised
    in place, so it is the latest version), else the asked category; indexed with
    joined_at; the migrated data filters with the new code; down and up again."""
    url = empty_database_url
    await populated(url, "0003")
    async with engine_at(url) as engine:
        async with engine.begin() as conn:  # refined categories as 0002's summaries keep them
            await conn.execute(
                sa.text(
                    "UPDATE session_summaries SET category = 'vat', version = 2 "
                    "WHERE session_id = 'done'"
                )
            )
            await conn.execute(
                sa.text("UPDATE session_summaries SET category = '' WHERE session_id = 'other'")
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO session_summaries (session_id, agent_id, asked, handled, "
                    "result, items, saved_at, category) VALUES ('again', 'u1', 'a', 'h', "
                    "'resolved', '[]', :at, NULL)"
                ),
                {"at": at(86400 * 2 + 70)},
            )
    await migrate(url, "0004")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0004"
            rows = dict(
                (
                    await conn.execute(sa.text("SELECT id, final_category FROM service_sessions"))
                ).all()
            )
            indexes = await conn.run_sync(
                lambda c: {
                    ix["name"]: ix["column_names"]
                    for ix in sa.inspect(c).get_indexes("service_sessions")
                }
            )
        assert rows == {
            "done": "vat",  # refined in the summary
            "other": "vat",  # asked vat; an empty refinement is none
            "again": "invoices",  # a summary without a category
            "left": "invoices",
            "live": "invoices",
            "wait": "invoices",
        }
        assert indexes["ix_service_sessions_final_category"] == ["final_category", "joined_at"]
        # Today's code reads today's schema (later migrations add columns): the data 0004
        # backfilled, carried to the head, filters with it.
        await migrate(url)
        records = SessionRecords(session_factory(engine))
        sup = Scope("supervisor", "")
        page, _ = await records.list(sup, filters=SessionFilter(category="vat", sort="oldest"))
        assert [s["id"] for s in page] == ["done", "other"]
        page, _ = await records.list(sup, filters=SessionFilter(asked_category="invoices"))
        assert {s["id"] for s in page} == {"done", "again", "left", "live", "wait"}
        done = await records.get("done", sup)
        assert (done["category"], done["final_category"]) == ("invoices", "vat")

    await downgrade(url, "0003")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns("service_sessions")}
            )
            assert await conn.scalar(sa.text("SELECT count(*) FROM service_sessions")) == 6
        assert "final_category" not in columns and "category" in columns
    await migrate(url, "0004")
