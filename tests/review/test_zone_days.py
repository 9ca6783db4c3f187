"""The service time zone's days (docs/review.md, "Days"), on both engines.

A session at 23:30 UTC on 2 December is at 07:30 on 3 December in Beijing: it counts on
3 December in joined_day, the KPI report (raw and rollup), the rollup rows, the session
filters and the CSV, and the agent's state time is cut at Beijing's midnight (16:00 UTC).
Changing the zone later: `rezone` moves every stored day, and until then nothing reads or
writes another zone's days (the KPIs answer 503, a node does not start, `vtax kpi rebuild`
refuses). A zone with daylight saving (Europe/Lisbon) has days of 23 and 25 hours.
"""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiohttp import web

from signaling.app import create_app
from tests.conftest import test_settings
from tests.review.helpers import call, people, served
from tests.review.test_migration import downgrade
from tests.review.test_rollup import vtax as run_vtax
from vtax.db import make_engine, migrate, session_factory
from vtax.review import rollup
from vtax.review.agent_history import AgentStateHistory
from vtax.review.days import day_start, split_by_day, window
from vtax.review.kpi import KpiQuery, KpiReport, call_quality_kpi
from vtax.review.records import SessionRecords
from vtax.review.rollup import ZoneMismatch

SHANGHAI, LISBON = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Lisbon")
D2, D3 = date(2026, 12, 2), date(2026, 12, 3)
LATE = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # 07:30 on 3 December in Beijing
DAYTIME = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # 18:00 on 2 December in Beijing
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def load(records: SessionRecords, agent: str, taxpayer: str) -> dict[str, str]:
    """The late session and a daytime one, through the steps; the agent's states around the
    late one (Beijing's midnight, 16:00 UTC, falls in the first `available`)."""
    history = records.agent_history
    ids = {"day": await served(records, taxpayer, agent, joined=DAYTIME, wait_s=5, talk_s=30)}
    for at, status in [
        ("2026-12-02T15:30:00", "available"),
        ("2026-12-02T23:30:10", "busy"),
    ]:
        assert await history.record(agent, status, "", utc(at))
    ids["late"] = await served(records, taxpayer, agent, joined=LATE, wait_s=10, talk_s=60)
    for at, status in [
        ("2026-12-02T23:31:10", "wrap_up"),  # the late session ended then
        ("2026-12-02T23:32:10", "available"),
        ("2026-12-03T00:30:00", "offline"),
    ]:
        assert await history.record(agent, status, "", utc(at))
    return ids


async def both_ways(kpis: KpiReport, q: KpiQuery) -> dict:
    """The report from the rollup, checked identical to the raw aggregation."""
    served_ = await kpis.report(q, NOW, source="rollup")
    assert served_ == await kpis.report(q, NOW, source="raw"), q
    return served_


async def test_a_session_at_2330_utc_counts_on_the_next_beijing_day(store):
    ids = await load(store.records, store.agent, store.taxpayer)
    async with store.engine.connect() as conn:
        days = dict(
            (await conn.execute(sa.text("SELECT id, joined_day FROM service_sessions"))).all()
        )
    assert days == {ids["day"]: "2026-12-02", ids["late"]: "2026-12-03"}

    kpis = store.records.kpis
    for folded in (False, True):  # from the journal, then from the folded rollup rows
        if folded:
            await rollup.fold_all(store.engine)
        report = await both_ways(kpis, KpiQuery(D2, D3, "day"))
        assert report["timezone"] == "Asia/Shanghai"
        by_day = {r["key"]: r for r in report["rows"]}
        assert set(by_day) == {"2026-12-02", "2026-12-03"}
        assert by_day["2026-12-03"]["sessions"] == 1
        assert by_day["2026-12-03"]["asa_s"] == 10.0  # the late one's wait
        assert by_day["2026-12-03"]["aht_s"] == 120.0  # 60 s talk + 60 s wrap-up
        assert by_day["2026-12-02"]["asa_s"] == 5.0
        # occupancy: 2 Dec 15:30-16:00 UTC available; 3 Dec (from 16:00 UTC) 120 s busy and
        # in wrap-up of 8.5 h staffed
        assert by_day["2026-12-02"]["occupancy"] == 0.0
        assert by_day["2026-12-03"]["occupancy"] == round(120 / 30_600, 4)
        only_d2 = await both_ways(kpis, KpiQuery(D2, D2, "agent"))
        assert only_d2["total"]["sessions"] == 1  # UTC days would have counted both here

    async with store.engine.connect() as conn:
        rows = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT period, sessions FROM kpi_rollup WHERE level = 'total' "
                        "AND grain = 'day'"
                    )
                )
            ).all()
        )
    assert rows == {"2026-12-02": 1, "2026-12-03": 1}

    spent = await store.records.agent_history.time_by_day(D2, D3, NOW)
    assert spent == {
        (store.agent, "2026-12-02"): {"available": 1_800_000},
        (store.agent, "2026-12-03"): {
            "available": 27_010_000 + 3_470_000,  # 16:00-23:30:10, 23:32:10-00:30
            "busy": 60_000,
            "wrap_up": 60_000,
            "offline": 41_400_000,  # still open: 00:30 UTC until NOW
        },
    }
    quality = await call_quality_kpi(store.records.sessionmaker, D3, D3, "day")
    assert quality["timezone"] == "Asia/Shanghai"
    assert [(r["key"], r["sessions"]) for r in quality["rows"]] == [("2026-12-03", 1)]


async def test_filters_csv_and_kpis_over_http_use_the_same_days(server, cast, store):
    ids = await load(store.records, store.agent, store.taxpayer)
    boss = (await people(server, cast)).supervisor
    status, page = await call(server, "GET", "/api/sessions?from=2026-12-03&to=2026-12-03", boss)
    assert status == 200 and [s["id"] for s in page["sessions"]] == [ids["late"]]
    status, page = await call(server, "GET", "/api/sessions?from=2026-12-02&to=2026-12-02", boss)
    assert status == 200 and [s["id"] for s in page["sessions"]] == [ids["day"]]
    status, body = await call(server, "GET", "/api/review/export.csv?from=2026-12-03", boss)
    assert status == 200
    exported = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["id"] for r in exported] == [ids["late"]]
    status, report = await call(
        server, "GET", "/api/stats/kpi?from=2026-12-03&to=2026-12-03&group_by=day", boss
    )
    assert status == 200, report
    assert report["timezone"] == "Asia/Shanghai"
    assert [(r["key"], r["sessions"]) for r in report["rows"]] == [("2026-12-03", 1)]
    status, quality = await call(
        server, "GET", "/api/stats/kpi/call-quality?from=2026-12-02&to=2026-12-02", boss
    )
    assert status == 200 and quality["timezone"] == "Asia/Shanghai"
    assert quality["total"]["sessions"] == 1


async def test_rezone_moves_every_day_and_nothing_mixes_meanwhile(
    server, cast, store, database_url, tmp_path
):
    ids = await load(store.records, store.agent, store.taxpayer)
    await rollup.fold_all(store.engine)
    q = KpiQuery(D2, D3, "day")
    in_beijing = await both_ways(store.records.kpis, q)
    before = await store.records.agent_history.time_by_day(D2, D3, NOW)

    async with store.engine.begin() as conn:
        done = await rollup.rezone(conn, "UTC")
    assert (done["from_zone"], done["zone"], done["sessions_moved"]) == ("Asia/Shanghai", "UTC", 1)
    async with store.engine.connect() as conn:
        days = dict(
            (await conn.execute(sa.text("SELECT id, joined_day FROM service_sessions"))).all()
        )
        assert await rollup.stored_zone(conn) == "UTC"
    assert days == {ids["day"]: "2026-12-02", ids["late"]: "2026-12-02"}
    in_utc = KpiReport(store.records.sessionmaker, "UTC")
    report = await both_ways(in_utc, q)
    assert report["timezone"] == "UTC"
    assert [(r["key"], r["sessions"]) for r in report["rows"]] == [("2026-12-02", 2)]
    utc_history = AgentStateHistory(store.records.sessionmaker, "UTC")
    assert await utc_history.time_by_day(D2, D3, NOW) == {
        (store.agent, "2026-12-02"): {
            "available": 28_810_000 + 1_670_000,  # 15:30-23:30:10, 23:32:10-24:00
            "busy": 60_000,
            "wrap_up": 60_000,
        },
        (store.agent, "2026-12-03"): {"available": 1_800_000, "offline": 41_400_000},
    }

    # a reader, `rebuild`, the HTTP endpoints and a node still in Beijing time refuse
    with pytest.raises(ZoneMismatch):
        await store.records.kpis.report(q, NOW)
    with pytest.raises(ZoneMismatch):
        await call_quality_kpi(store.records.sessionmaker, D2, D3, "day")
    async with store.engine.begin() as conn:
        with pytest.raises(ZoneMismatch):
            await rollup.rebuild(conn, zone="Asia/Shanghai")
    boss = (await people(server, cast)).supervisor
    for path in ("/api/stats/kpi?from=2026-12-02", "/api/stats/kpi/call-quality?from=2026-12-02"):
        status, err = await call(server, "GET", path, boss)
        assert status == 503 and err["error"]["code"] == "unavailable", err
        assert "vtax kpi rezone" in err["error"]["message"]
    app = create_app(test_settings(database_url, tmp_path / "node"), migrate_on_start=False)
    runner = web.AppRunner(app)
    with pytest.raises(ZoneMismatch):  # a node of the Beijing setting does not start
        await runner.setup()
    await runner.cleanup()

    async with store.engine.begin() as conn:  # and back: the same figures as before
        done = await rollup.rezone(conn, "Asia/Shanghai")
    assert done["sessions_moved"] == 1
    assert await both_ways(store.records.kpis, q) == in_beijing
    assert await store.records.agent_history.time_by_day(D2, D3, NOW) == before


def vtax(database_url: str, zone: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vtax(database_url, *args, VTAX_SERVICE_TIMEZONE=zone)


async def test_cli_rezone_after_the_setting_changed(store, database_url):
    ids = await load(store.records, store.agent, store.taxpayer)
    refused = vtax(database_url, "Europe/Lisbon", "kpi", "rebuild")
    assert refused.returncode != 0 and "vtax kpi rezone" in refused.stderr, refused.stderr
    done = vtax(database_url, "Europe/Lisbon", "kpi", "rezone")
    assert done.returncode == 0, done.stderr
    assert "from Asia/Shanghai to Europe/Lisbon" in done.stdout
    async with store.engine.connect() as conn:
        assert await rollup.stored_zone(conn) == "Europe/Lisbon"
        late = await conn.scalar(
            sa.text("SELECT joined_day FROM service_sessions WHERE id = :id"), {"id": ids["late"]}
        )
    assert late == "2026-12-02"  # 23:30 in Lisbon (WET, UTC+0)
    rebuilt = vtax(database_url, "Europe/Lisbon", "kpi", "rebuild")
    assert rebuilt.returncode == 0 and "Europe/Lisbon days" in rebuilt.stdout, rebuilt.stderr


# ---- a zone with daylight saving -------------------------------------------------------------


def test_days_of_23_and_25_hours():
    hours = {
        d: (window(d, d, LISBON)[1] - window(d, d, LISBON)[0]) / timedelta(hours=1)
        for d in (date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 25), date(2026, 10, 26))
    }
    assert hours == {
        date(2026, 3, 28): 24,
        date(2026, 3, 29): 23,  # 01:00 -> 02:00
        date(2026, 10, 25): 25,  # 02:00 -> 01:00
        date(2026, 10, 26): 24,
    }
    assert day_start(date(2026, 10, 25), LISBON) == utc("2026-10-24T23:00:00")  # WEST
    assert day_start(date(2026, 10, 26), LISBON) == utc("2026-10-26T00:00:00")  # WET
    assert day_start(date(2026, 12, 3), SHANGHAI) == utc("2026-12-02T16:00:00")
    pieces = list(split_by_day(utc("2026-10-24T22:00:00"), utc("2026-10-26T01:00:00"), LISBON))
    assert pieces == [
        ("2026-10-24", 3_600_000),
        ("2026-10-25", 25 * 3_600_000),
        ("2026-10-26", 3_600_000),
    ]
    pieces = list(split_by_day(utc("2026-03-28T23:00:00"), utc("2026-03-30T00:00:00"), LISBON))
    assert pieces == [
        ("2026-03-28", 3_600_000),
        ("2026-03-29", 23 * 3_600_000),
        ("2026-03-30", 3_600_000),
    ]


async def test_dst_days_in_the_records_the_rollup_and_state_time(store):
    async with store.engine.begin() as conn:
        await rollup.rezone(conn, "Europe/Lisbon")
    records = SessionRecords(store.records.sessionmaker, "Europe/Lisbon")
    # abandoned sessions (no agent): 00:30 WEST and 23:30 WET on 25 Oct, 00:30 WET on 26 Oct
    for joined in ("2026-10-24T23:30:00", "2026-10-25T23:30:00", "2026-10-26T00:30:00"):
        await served(records, store.taxpayer, None, joined=utc(joined), wait_s=20)
    history = records.agent_history
    for agent, at, status in [
        (store.agent, "2026-10-24T22:00:00", "available"),
        (store.agent, "2026-10-26T01:00:00", "offline"),
        (store.other_agent, "2026-03-28T23:00:00", "busy"),
        (store.other_agent, "2026-03-30T00:00:00", "offline"),
    ]:
        assert await history.record(agent, status, "", utc(at))
    now = utc("2026-11-01T00:00:00")
    for folded in (False, True):
        if folded:
            await rollup.fold_all(store.engine)
        q = KpiQuery(date(2026, 10, 24), date(2026, 10, 26), "day")
        report = await records.kpis.report(q, now, source="rollup")
        assert report == await records.kpis.report(q, now, source="raw")
        assert report["timezone"] == "Europe/Lisbon"
        assert {r["key"]: r["sessions"] for r in report["rows"]} == {
            "2026-10-25": 2,
            "2026-10-26": 1,
        }
        march = KpiQuery(date(2026, 3, 1), date(2026, 3, 31), "agent")
        assert await records.kpis.report(march, now, source="rollup") == (
            await records.kpis.report(march, now, source="raw")
        )
    spent = await history.time_by_day(date(2026, 3, 28), date(2026, 10, 26), now)
    staffed = {  # the offline time since (still open until `now`) is not the point here
        k: v
        for k, states in spent.items()
        if (v := {s: ms for s, ms in states.items() if s != "offline"})
    }
    assert staffed == {
        (store.agent, "2026-10-24"): {"available": 3_600_000},
        (store.agent, "2026-10-25"): {"available": 25 * 3_600_000},
        (store.agent, "2026-10-26"): {"available": 3_600_000},
        (store.other_agent, "2026-03-28"): {"busy": 3_600_000},
        (store.other_agent, "2026-03-29"): {"busy": 23 * 3_600_000},
        (store.other_agent, "2026-03-30"): {"busy": 3_600_000},
    }
    # a rebuild from the session rows gives the same rollup as the steps wrote
    async with store.engine.connect() as conn:
        incremental = await _rollup_rows(conn)
    async with store.engine.begin() as conn:
        await rollup.rebuild(conn, zone="Europe/Lisbon")
    async with store.engine.connect() as conn:
        assert await _rollup_rows(conn) == incremental


ROLLUP_KEYS = {
    "kpi_rollup": ("level", "grain", "period", "agent", "category", "channel", "language"),
    "kpi_rollup_wait": (
        "level", "grain", "wait_s", "period", "agent", "category", "channel", "language",
    ),
    "kpi_occupancy": ("grain", "dim", "period", "key"),
}  # fmt: skip


async def _rollup_rows(conn) -> dict:
    """Every rollup table's rows by key, counters summed over the shards, zero rows left out
    (a fold can leave a row whose sessions moved away at zero)."""
    out = {}
    for table, keys in ROLLUP_KEYS.items():
        rows = (await conn.execute(sa.text(f"SELECT * FROM {table}"))).mappings().all()
        summed: dict = {}
        for r in rows:
            key = tuple(r[k] for k in keys)
            values = [int(v) for k, v in sorted(r.items()) if k not in keys and k != "shard"]
            held = summed.get(key)
            summed[key] = (
                values if held is None else [a + b for a, b in zip(held, values, strict=True)]
            )
        out[table] = {k: v for k, v in summed.items() if any(v)}
    return out


# ---- the migration -------------------------------------------------------------------------


async def test_0015_moves_existing_days_to_the_zone_and_back(empty_database_url):
    """At 0014 (the head before), sessions and agent states as the code before kept them (UTC
    days: the same steps with the zone UTC), a rollup built from them; 0015 recomputes
    joined_day and the agent-state daily totals in the configured zone and rebuilds the
    rollup; the downgrade goes back to UTC days; up again in another zone."""
    from tests.conftest import RESIDENT_ID, cheap_passwords
    from vtax.accounts import Accounts

    url = empty_database_url
    # Written by today's code at the head (its models have the columns of later revisions),
    # the steps in the zone UTC, then down to 0014: what the code before 0015 left.
    await migrate(url)
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        accounts = Accounts(sessions, cheap_passwords())
        agent = (await accounts.add_user("a1", "agent", "pw-123456")).id
        taxpayer = await accounts.taxpayer_for("resident_id", RESIDENT_ID)
        old = SessionRecords(sessions, "UTC")  # what the code at 0014 wrote
        ids = await load(old, agent, taxpayer)
        await rollup.fold_all(engine)
        async with engine.connect() as conn:
            assert (
                await conn.scalar(
                    sa.text("SELECT joined_day FROM service_sessions WHERE id = :id"),
                    {"id": ids["late"]},
                )
                == "2026-12-02"
            )
    finally:
        await engine.dispose()
    await downgrade(url, "0014")

    await migrate(url)  # no zone given: VTAX_SERVICE_TIMEZONE or the default, Asia/Shanghai
    engine = make_engine(url)
    try:
        records = SessionRecords(session_factory(engine))
        async with engine.connect() as conn:
            assert await rollup.stored_zone(conn) == "Asia/Shanghai"
            days = dict(
                (await conn.execute(sa.text("SELECT id, joined_day FROM service_sessions"))).all()
            )
            state_days = sorted(
                (await conn.execute(sa.text("SELECT day, status, ms FROM agent_state_days"))).all()
            )
            assert await conn.scalar(sa.text("SELECT count(*) FROM kpi_journal")) == 0
        assert days == {ids["day"]: "2026-12-02", ids["late"]: "2026-12-03"}
        assert [tuple(r) for r in state_days] == [
            ("2026-12-02", "available", 1_800_000),
            ("2026-12-03", "available", 30_480_000),
            ("2026-12-03", "busy", 60_000),
            ("2026-12-03", "wrap_up", 60_000),
        ]
        report = await both_ways(records.kpis, KpiQuery(D2, D3, "day"))
        assert {r["key"]: r["sessions"] for r in report["rows"]} == {
            "2026-12-02": 1,
            "2026-12-03": 1,
        }
        # the rollup the migration built is the one the steps would have written
        async with engine.connect() as conn:
            migrated = await _rollup_rows(conn)
        async with engine.begin() as conn:
            await rollup.rebuild(conn, zone="Asia/Shanghai")
        async with engine.connect() as conn:
            assert await _rollup_rows(conn) == migrated
    finally:
        await engine.dispose()

    await downgrade(url, "0014")
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            late = await conn.scalar(
                sa.text("SELECT joined_day FROM service_sessions WHERE id = :id"),
                {"id": ids["late"]},
            )
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert late == "2026-12-02" and "kpi_meta" not in tables
    finally:
        await engine.dispose()

    await migrate(url, timezone="Europe/Lisbon")
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            assert await rollup.stored_zone(conn) == "Europe/Lisbon"
        lisbon = KpiReport(session_factory(engine), "Europe/Lisbon")
        report = await both_ways(lisbon, KpiQuery(D2, D3, "day"))
        assert {r["key"]: r["sessions"] for r in report["rows"]} == {"2026-12-02": 2}
    finally:
        await engine.dispose()
