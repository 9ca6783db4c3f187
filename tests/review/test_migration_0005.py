"""Migration 0005 runs forward on a populated database on both engines: it fills the leveled
KPI rollup (kpi_rollup, kpi_rollup_wait) from the sessions that exist, exactly as the
application's rebuild would, drops the 0003 tables, and the KPIs through the rollup equal the
raw aggregation; it also downgrades back to 0003's tables and upgrades again."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.review.test_migration import (
    T,
    at,
    downgrade,
    dump,
    engine_at,
    head_revision,
    populated,
)
from vtax.db import migrate, session_factory
from vtax.models import KPI_LEVELS
from vtax.review import rollup
from vtax.review.kpi import KpiQuery
from vtax.review.records import SessionRecords

ROLLUP = ("kpi_rollup", "kpi_rollup_wait", "kpi_occupancy")


async def _tables(conn) -> set[str]:
    return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_0005_fills_the_leveled_rollup_on_a_populated_database(empty_database_url):
    url = empty_database_url
    await populated(url, "0003", "head")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            assert version == head_revision(url)
            tables = await _tables(conn)
            assert {"kpi_journal", "kpi_rollup", "kpi_rollup_wait"} <= tables
            assert not {"kpi_daily", "kpi_daily_wait", "kpi_occupancy_daily"} & tables
            migrated = await dump(conn, ROLLUP)
            assert await conn.scalar(sa.text("SELECT count(*) FROM kpi_journal")) == 0
        # 6 sessions on 2 days of one month: a total row per day and one for the month
        assert {r[:3] for r in migrated["kpi_rollup"] if r[0] == "total"} == {
            ("total", "day", "2026-10-05"),
            ("total", "day", "2026-10-07"),
            ("total", "month", "2026-10"),
        }
        month = [r for r in migrated["kpi_rollup"] if r[:3] == ("total", "month", "2026-10")]
        assert month[0][3:7] == ("*", "*", "*", "*") and month[0][7] == 6  # sessions
        levels = {r[0] for r in migrated["kpi_rollup_wait"]}
        assert levels == set(KPI_LEVELS)
        # the same as recomputing with the application's rebuild
        async with engine.begin() as conn:
            await rollup.rebuild(conn)
        async with engine.connect() as conn:
            assert await dump(conn, ROLLUP) == migrated
        # and the KPIs through it equal the raw aggregation, for every grouping, threshold and
        # a pair of filters, over the days and over whole months
        records = SessionRecords(session_factory(engine))
        now = at(86400 * 5)
        ranges = [(T.date(), T.date() + timedelta(days=2)), (T.date().replace(day=1), T.date())]
        ranges.append((T.date().replace(month=9, day=1), T.date().replace(month=11, day=30)))
        for first, last in ranges:
            for group_by in ("day", "agent", "category", "channel"):
                for threshold in (1, 5, 11, 20, 300):
                    for filters in ({}, {"category": "invoices", "channel": "web"}):
                        q = KpiQuery(first, last, group_by, threshold, **filters)
                        served = await records.kpis.report(q, now, source="rollup")
                        assert served == await records.kpis.report(q, now, source="raw"), q
        total = (await records.kpis.report(KpiQuery(*ranges[0]), now))["total"]
        assert total["answered"] == 4 and total["abandoned"] == 1


async def test_0005_downgrades_to_0003s_tables_and_upgrades_again(empty_database_url):
    url = empty_database_url
    await populated(url, "head")

    await downgrade(url, "0004")
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            tables = await _tables(conn)
            assert {"kpi_daily", "kpi_daily_wait"} <= tables
            assert not {"kpi_journal", "kpi_rollup", "kpi_rollup_wait", "kpi_occupancy"} & tables
            assert "kpi_occupancy_daily" in tables
            daily = await conn.scalar(
                sa.text("SELECT sum(sessions) FROM kpi_daily WHERE dim = 'all'")
            )
            assert daily == 6
    await migrate(url)
    async with engine_at(url) as engine:
        async with engine.connect() as conn:
            assert (
                await conn.scalar(
                    sa.text(
                        "SELECT sessions FROM kpi_rollup WHERE level = 'total' AND grain = 'month'"
                    )
                )
                == 6
            )
