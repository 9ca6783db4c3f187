"""KPIs against hand-computed values on a small fixed data set, on both engines.

The data (T = 20 s unless said otherwise), days D1 = 2026-11-02 and D2 = 2026-11-03:

| s | day | agent | category | channel | wait | talk | outcome | rating | summary |
|---|---|---|---|---|---|---|---|---|---|
| s1 | D1 | A | invoices | web | 10 | 300 | completed | 5 | resolved |
| s2 | D1 | A | invoices | kiosk | 30 | 600 | completed | 2 | follow_up |
| s3 | D1 | B | vat | web | 20 | 240 | dropped | 4 | resolved, but recontacted |
| s4 | D1 | - | invoices | web | 15 | - | abandoned | | |
| s5 | D1 | - | vat | mobile | 60 | - | abandoned | | |
| s6 | D2 | B | vat | mobile | 5 | 600 | transferred | | transferred |
| s7 | D2 | A | invoices | web | 40 | live | live | | |
| s8 | D2 | - | vat | kiosk | - | - | waiting | | |

Agent state history (wrap-up is attributed to the session ended just before): A wraps up
60 s after s1 and 30 s after s2; B 60 s after s3 and after s6. Times in each state are in
the comments of the occupancy test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.review.helpers import call, people
from vtax.contract.review import KpiReport
from vtax.models import ServiceSession, SessionRating, SessionSummary
from vtax.review import kpi, rollup
from vtax.review.kpi import KpiQuery, rollup_plan

D1, D2 = date(2026, 11, 2), date(2026, 11, 3)
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def t(day: date, hms: str) -> datetime:
    h, m, s = map(int, hms.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC)


async def load(store):
    A, B = store.agent, store.other_agent
    rows = [
        # id, day, agent, category, channel, joined, wait_s, talk_s, outcome, rating, result
        ("s1", D1, A, "invoices", "web", "09:00:00", 10, 300, "completed", 5, "resolved"),
        ("s2", D1, A, "invoices", "kiosk", "09:10:00", 30, 600, "completed", 2, "follow_up"),
        ("s3", D1, B, "vat", "web", "09:00:00", 20, 240, "dropped", 4, "resolved"),
        ("s4", D1, None, "invoices", "web", "09:30:00", 15, None, "abandoned", None, None),
        ("s5", D1, None, "vat", "mobile", "09:40:00", 60, None, "abandoned", None, None),
        ("s6", D2, B, "vat", "mobile", "10:00:00", 5, 600, "transferred", None, "transferred"),
        ("s7", D2, A, "invoices", "web", "11:00:00", 40, None, "live", None, None),
        ("s8", D2, None, "vat", "kiosk", "12:00:00", None, None, "waiting", None, None),
    ]
    async with store.records.sessionmaker() as db, db.begin():
        for sid, day, agent, cat, channel, hms, wait, talk, outcome, score, result in rows:
            joined = t(day, hms)
            answered = joined + timedelta(seconds=wait) if agent and wait is not None else None
            ended = None
            if outcome == "abandoned":
                ended = joined + timedelta(seconds=wait)
            elif answered is not None and talk is not None:
                ended = answered + timedelta(seconds=talk)
            db.add(
                ServiceSession(
                    id=sid,
                    ticket_id=str(uuid.uuid4()),
                    taxpayer_id=store.taxpayer,
                    agent_id=agent,
                    category=cat,
                    language="zh-CN",
                    channel=channel,
                    question="q",
                    joined_at=joined,
                    joined_day=day.isoformat(),
                    answered_at=answered,
                    ended_at=ended,
                    outcome=outcome,
                    wait_ms=None if wait is None else wait * 1000,
                    talk_ms=None if talk is None else talk * 1000,
                    rating_score=score,
                    summary_result=result,
                    recontacted=sid == "s3",
                )
            )
            await db.flush()
            if score is not None:
                db.add(SessionRating(session_id=sid, score=score, comment="", rated_at=ended))
            if result is not None:
                db.add(
                    SessionSummary(
                        session_id=sid,
                        agent_id=agent,
                        asked="a",
                        handled="h",
                        result=result,
                        items=[],
                        saved_at=ended,
                    )
                )
    # written straight to the tables, not through the steps: recompute the rollup (the wrap-up
    # attributed below then goes through the incremental path)
    async with store.engine.begin() as conn:
        await rollup.rebuild(conn)
    history = store.records.agent_history
    for agent, day, hms, status in [
        (A, D1, "08:55:00", "available"),
        (A, D1, "09:00:01", "reserved"),
        (A, D1, "09:00:10", "busy"),
        (A, D1, "09:05:10", "wrap_up"),
        (A, D1, "09:06:10", "available"),
        (A, D1, "09:10:01", "reserved"),
        (A, D1, "09:10:30", "busy"),
        (A, D1, "09:20:30", "wrap_up"),
        (A, D1, "09:21:00", "away"),
        (A, D1, "09:30:00", "offline"),
        (B, D1, "08:50:00", "available"),
        (B, D1, "09:00:20", "busy"),
        (B, D1, "09:04:20", "wrap_up"),
        (B, D1, "09:05:20", "available"),
        (B, D1, "10:00:00", "offline"),
        (B, D2, "09:55:00", "available"),
        (B, D2, "10:00:05", "busy"),
        (B, D2, "10:10:05", "wrap_up"),
        (B, D2, "10:11:05", "offline"),
        (A, D2, "10:30:00", "available"),
        (A, D2, "11:00:40", "busy"),
    ]:
        assert await history.record(agent, status, "", t(day, hms))
    assert not await history.record(A, "busy", "", t(D2, "11:30:00"))  # no change, no row


async def kpi_report(store, q, now=NOW):
    """The report through the rollup, checked identical to the raw aggregation."""
    assert rollup_plan(q) is not None, q
    kpis = store.records.kpis
    served = await kpis.report(q, now, source="rollup")
    assert served == await kpis.report(q, now, source="raw"), q
    assert served == await kpis.report(q, now)
    return served


def fig(
    sessions,
    answered,
    abandoned,
    handled,
    sl,
    sl2,
    asa,
    aht,
    talk,
    wrap,
    ab,
    ratings,
    csat,
    summarised,
    fcr,
    **extra,
):
    return {
        "sessions": sessions,
        "answered": answered,
        "abandoned": abandoned,
        "handled": handled,
        "service_level": sl,
        "service_level_with_abandoned": sl2,
        "asa_s": asa,
        "aht_s": aht,
        "talk_s": talk,
        "wrap_up_s": wrap,
        "abandonment_rate": ab,
        "ratings": ratings,
        "csat": csat,
        "summarised": summarised,
        "fcr": fcr,
        **extra,
    }


TOTAL = fig(8, 5, 2, 4, 0.6, 0.5714, 21.0, 487.5, 435.0, 52.5, 0.2857, 3, 0.6667, 4, 0.25)


async def test_by_day_with_occupancy(store):
    await load(store)
    report = await kpi_report(store, KpiQuery(D1, D2, "day", 20))
    d1, d2 = report["rows"]
    # occupancy D1: A busy 300+600, wrap 60+30 of staffed 1560 s (avail 301+231, reserved
    # 9+29); B busy 240, wrap 60 of 4200 (avail 620+3280): 1290 / 5760
    assert d1 == {
        "key": "2026-11-02",
        **fig(5, 3, 2, 3, 0.6667, 0.6, 20.0, 430.0, 380.0, 50.0, 0.4, 3, 0.6667, 3, 0.3333),
        "occupancy": 0.224,
    }
    # occupancy D2 (until NOW): A avail 1840 + busy 3560; B avail 305, busy 600, wrap 60:
    # 4220 / 6365
    assert d2 == {
        "key": "2026-11-03",
        **fig(3, 2, 0, 1, 0.5, 0.5, 22.5, 660.0, 600.0, 60.0, 0.0, 0, None, 1, 0.0),
        "occupancy": 0.663,
    }
    # whole window: (990 + 3560 + 300 + 660) / (1560 + 5400 + 4200 + 965)
    assert report["total"] == TOTAL | {"occupancy": 0.4544}
    assert report["threshold_s"] == 20 and report["group_by"] == "day"


async def test_by_agent(store):
    await load(store)
    report = await kpi_report(store, KpiQuery(D1, D2, "agent", 20))
    rows = {r["key"]: r for r in report["rows"]}
    a, b = store.agent, store.other_agent
    assert rows[a] == {
        "key": a,
        "label": "Agent One",
        **fig(3, 3, 0, 2, 0.3333, 0.3333, 26.667, 495.0, 450.0, 45.0, 0.0, 2, 0.5, 2, 0.5),
        "occupancy": 0.6537,  # 4550 / 6960
    }
    assert rows[b] == {
        "key": b,
        "label": "Agent Two",
        **fig(2, 2, 0, 2, 1.0, 1.0, 12.5, 480.0, 420.0, 60.0, 0.0, 1, 1.0, 2, 0.0),
        "occupancy": 0.1859,  # 960 / 5165
    }
    assert rows[None] == {
        "key": None,
        "label": "unassigned",
        **fig(3, 0, 2, 0, None, 0.5, None, None, None, None, 1.0, 0, None, 0, None),
        "occupancy": None,
    }
    assert [r["key"] for r in report["rows"]][-1] is None  # unassigned last on both engines


async def test_by_category_and_channel(store):
    await load(store)
    by_cat = {r["key"]: r for r in (await kpi_report(store, KpiQuery(D1, D2, "category")))["rows"]}
    assert by_cat == {
        "invoices": {
            "key": "invoices",
            **fig(4, 3, 1, 2, 0.3333, 0.5, 26.667, 495.0, 450.0, 45.0, 0.25, 2, 0.5, 2, 0.5),
        },
        "vat": {
            "key": "vat",
            **fig(4, 2, 1, 2, 1.0, 0.6667, 12.5, 480.0, 420.0, 60.0, 0.3333, 1, 1.0, 2, 0.0),
        },
    }
    by_ch = {r["key"]: r for r in (await kpi_report(store, KpiQuery(D1, D2, "channel")))["rows"]}
    assert by_ch["web"] == {
        "key": "web",
        **fig(4, 3, 1, 2, 0.6667, 0.75, 23.333, 330.0, 270.0, 60.0, 0.25, 2, 1.0, 2, 0.5),
    }
    assert by_ch["kiosk"] == {
        "key": "kiosk",
        **fig(2, 1, 0, 1, 0.0, 0.0, 30.0, 630.0, 600.0, 30.0, 0.0, 1, 0.0, 1, 0.0),
    }
    assert by_ch["mobile"] == {
        "key": "mobile",
        **fig(2, 1, 1, 1, 1.0, 0.5, 5.0, 660.0, 600.0, 60.0, 0.5, 0, None, 1, 0.0),
    }


async def test_threshold_and_filters(store):
    await load(store)
    # thresholds between and outside the kept columns read the wait histogram: still exact
    for t in (1, 4, 5, 9, 11, 15, 19, 21, 30, 59, 61, 599, 3599, 3600):
        await kpi_report(store, KpiQuery(D1, D2, "category", t))
    d1 = (await kpi_report(store, KpiQuery(D1, D1, "day", 30)))["rows"][0]
    assert (d1["service_level"], d1["service_level_with_abandoned"]) == (1.0, 0.8)
    d1 = (await kpi_report(store, KpiQuery(D1, D1, "day", 9)))["rows"][0]
    assert (d1["service_level"], d1["service_level_with_abandoned"]) == (0.0, 0.0)
    web = await kpi_report(store, KpiQuery(D1, D2, "day", 20, channel="web"))
    assert web["total"]["sessions"] == 4 and web["total"]["service_level"] == 0.6667
    empty = await kpi_report(store, KpiQuery(date(2026, 1, 1), date(2026, 1, 2), "day"))
    assert empty["rows"] == [] and empty["total"]["sessions"] == 0
    assert empty["total"]["service_level"] is None and empty["total"]["occupancy"] is None


async def test_a_query_shape_is_built_once_and_its_values_are_bound(store):
    """Days, filter values and wait buckets are parameters of a statement cached per shape:
    the second query of a shape builds nothing, and each gets its own figures."""
    await load(store)
    kpi._counts_statement.cache_clear()
    kpi._waits_statement.cache_clear()
    cases = [  # (query, sessions, answered within T)
        (KpiQuery(D1, D1, "day", 25, channel="web"), 3, 2),  # s1, s3 (s4 abandoned)
        (KpiQuery(D2, D2, "day", 25, channel="web"), 1, 0),  # s7: 40 s
        (KpiQuery(D1, D1, "day", 25, channel="kiosk"), 1, 0),  # s2: 30 s
        (KpiQuery(D1, D1, "day", 35, channel="kiosk"), 1, 1),  # buckets 31..35
    ]
    for q, sessions, within in cases:
        total = (await kpi_report(store, q))["total"]
        assert (total["sessions"], round(total["service_level"] * total["answered"])) == (
            sessions,
            within,
        ), q
    # one shape: day rows of the `channel` level filtered on channel, kept threshold 20 or 30
    assert kpi._counts_statement.cache_info().currsize == 2
    assert kpi._waits_statement.cache_info().currsize == 1  # a gap of a few buckets
    assert kpi._counts_statement.cache_info().hits >= 2


async def test_the_http_endpoint_gives_the_same_figures(server, cast, store):
    await load(store)
    p = await people(server, cast)
    status, report = await call(
        server,
        "GET",
        "/api/stats/kpi?from=2026-11-02&to=2026-11-03&group_by=category",
        p.supervisor,
    )
    assert status == 200, report
    direct = await store.records.kpis.report(KpiQuery(D1, D2, "category"), NOW)
    # The same figures, as the contract's model says them (a row not grouped by agent has
    # neither label nor occupancy: null).
    # The days are the service zone's (the default, Asia/Shanghai), and the answer says so.
    said = KpiReport.model_validate(direct).model_dump(by_alias=True)
    assert report["rows"] == said["rows"] and report["timezone"] == "Asia/Shanghai"
    assert direct["timezone"] == "Asia/Shanghai"
    for field in TOTAL:
        assert report["total"][field] == TOTAL[field], field


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-11-03&to=2026-11-02",
        "from=2025-01-01&to=2026-11-02",
        "from=1999-12-31",
        "from=9999-12-31",
        "from=tomorrow",
        "group_by=taxpayer",
        "threshold_s=0",
        "threshold_s=20;DROP TABLE users",
        "category=' OR 1=1 --",
        "channel=fax",
        "sort=score",
    ],
)
async def test_bad_kpi_queries(server, cast, query):
    p = await people(server, cast)
    status, err = await call(server, "GET", "/api/stats/kpi?" + query, p.supervisor)
    assert status == 400 and err["error"]["code"] == "invalid_payload", (query, err)


async def test_daily_totals_match_the_raw_history(store):
    """The KPIs read daily totals kept as states end; they equal a scan of the history over
    each of the service zone's days (Asia/Shanghai: 16:00 UTC the day before to 16:00)."""
    from vtax.review.agent_history import time_in_states
    from vtax.review.days import window

    await load(store)
    history = store.records.agent_history
    totals = await history.time_by_day(D1, D2, NOW)
    for day in (D1, D2):
        start, end = window(day, day, history.zone)
        assert start == t(day, "00:00:00") - timedelta(hours=8)
        end = min(end, NOW)
        raw = await history.changes(start, end, lookback=timedelta(days=3))
        for agent, changes in raw.items():
            expected = {k: v for k, v in time_in_states(changes, start, end).items() if v}
            assert totals.get((agent, day.isoformat()), {}) == expected, (agent, day)


@pytest.mark.parametrize("agent_filter", [False, True])
async def test_totals_summed_in_the_database_equal_the_daily_rows(store, agent_filter):
    """Occupancy reads `totals` (grouped in SQL); it equals summing `time_by_day`."""
    await load(store)
    history = store.records.agent_history
    agent = store.agent if agent_filter else None
    per_day = await history.time_by_day(D1, D2, NOW, agent)
    for by in (None, "day", "agent"):
        expected: dict = {}
        for (a, day), states in per_day.items():
            keys = ["*"] + ([day] if by == "day" else [a] if by == "agent" else [])
            for key in keys:
                for status, ms in states.items():
                    expected.setdefault(key, {})
                    expected[key][status] = expected[key].get(status, 0) + ms
        assert await history.totals(D1, D2, NOW, agent, by) == expected, by
