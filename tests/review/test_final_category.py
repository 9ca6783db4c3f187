"""The session's effective category (`final_category`: the agent's refinement in the summary,
else the category asked at join) on both engines: kept by the steps, filtered by `category`
(`asked_category` the asked one), shown in the list, the detail and the CSV, paged by keyset,
and served by its index on PostgreSQL. The KPIs stay by the asked category (the queue)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.review.helpers import SUMMARY, T0, call, people, served
from vtax.errors import DomainError
from vtax.models import ServiceSession
from vtax.review.kpi import KpiQuery
from vtax.review.records import Scope, SessionFilter
from vtax.review.views import view_query

SUP = Scope("supervisor", "")


@pytest.fixture
async def p(server, cast):
    return await people(server, cast)


async def final_of(records, sid: str) -> tuple[str, str]:
    async with records.sessionmaker() as db:
        row = (
            await db.execute(
                select(ServiceSession.category, ServiceSession.final_category).where(
                    ServiceSession.id == sid
                )
            )
        ).one()
    return row[0], row[1]


async def test_the_steps_keep_the_final_category(store):
    r = store.records
    sid = await served(r, store.taxpayer, store.agent, category="invoices")
    assert await final_of(r, sid) == ("invoices", "invoices")  # set at join
    at = T0 + timedelta(minutes=5)
    await r.loop.save_summary(sid, store.agent, at, **SUMMARY, category="registration")
    assert await final_of(r, sid) == ("invoices", "registration")
    await r.loop.save_summary(sid, store.agent, at, **SUMMARY, category="cross_border")
    assert await final_of(r, sid) == ("invoices", "cross_border")  # the latest version
    await r.loop.save_summary(sid, store.agent, at, **SUMMARY)  # a revision without one
    assert await final_of(r, sid) == ("invoices", "invoices")
    await r.loop.save_summary(sid, store.agent, at, **SUMMARY, category="registration")
    # a refused summary (another agent) changes nothing
    with pytest.raises(DomainError):
        await r.loop.save_summary(sid, store.other_agent, at, **SUMMARY, category="invoices")
    assert await final_of(r, sid) == ("invoices", "registration")
    view = await r.get(sid, SUP)
    assert (view["category"], view["final_category"]) == ("invoices", "registration")
    assert view["summary"]["category"] == "registration"
    # the KPIs count the session in the queue it was asked in
    report = await r.kpis.report(
        KpiQuery(T0.date(), T0.date(), "category"), now=T0 + timedelta(days=1)
    )
    assert [row["key"] for row in report["rows"]] == ["invoices"]


async def seed(server, p) -> dict[str, str]:
    """a: invoices; b: invoices refined to registration; c: registration refined to invoices; d: registration;
    e: invoices, refined to invoices; f: registration, abandoned."""
    r = server.ctx.records
    ids = {}
    for i, (key, category) in enumerate(
        (
            ("a", "invoices"),
            ("b", "invoices"),
            ("c", "registration"),
            ("d", "registration"),
            ("e", "invoices"),
        )
    ):
        ids[key] = await served(
            r, p.taxpayer_id, p.agent_id, joined=T0 + timedelta(hours=i), category=category
        )
    ids["f"] = await served(
        r, p.taxpayer_id, None, joined=T0 + timedelta(hours=5), category="registration"
    )
    at = T0 + timedelta(hours=8)
    for key, refined in (("b", "registration"), ("c", "invoices"), ("e", "invoices")):
        await r.loop.save_summary(ids[key], p.agent_id, at, **SUMMARY, category=refined)
    await r.loop.save_summary(ids["d"], p.agent_id, at, **SUMMARY)  # no refinement
    return ids


FILTERS = [
    ("category=invoices", "ace"),
    ("category=registration", "bdf"),
    ("asked_category=invoices", "abe"),
    ("asked_category=registration", "cdf"),
    ("category=registration&asked_category=invoices", "b"),
    ("category=invoices&asked_category=registration", "c"),
    ("category=cross_border", ""),
    ("category=registration&outcome=abandoned", "f"),
    ("category=invoices&from=2026-11-02&to=2026-11-02&sort=oldest", "ace"),
]


async def test_the_category_filter_matches_the_final_category(server, p):
    ids = await seed(server, p)
    for query, expected in FILTERS:
        status, page = await call(server, "GET", f"/api/sessions?{query}", p.supervisor)
        assert status == 200, (query, page)
        got = [s["id"] for s in page["sessions"]]
        want = [ids[k] for k in expected]
        assert got == (want if "sort=oldest" in query else want[::-1]), query
        status, raw = await call(server, "GET", f"/api/review/export.csv?{query}", p.supervisor)
        assert status == 200, query
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        assert [row["id"] for row in rows] == got, query
    # the list, the detail and the CSV show both
    status, page = await call(server, "GET", "/api/sessions?category=registration", p.supervisor)
    b = next(s for s in page["sessions"] if s["id"] == ids["b"])
    assert (b["category"], b["final_category"]) == ("invoices", "registration")
    status, mine = await call(server, "GET", f"/api/sessions/{ids['c']}", p.taxpayer)
    assert status == 200 and (mine["category"], mine["final_category"]) == (
        "registration",
        "invoices",
    )
    status, detail = await call(server, "GET", f"/api/review/sessions/{ids['b']}", p.supervisor)
    assert (detail["session"]["category"], detail["session"]["final_category"]) == (
        "invoices",
        "registration",
    )
    status, raw = await call(server, "GET", "/api/review/export.csv?sort=oldest", p.supervisor)
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert [(row["category"], row["final_category"]) for row in rows] == [
        ("invoices", "invoices"),
        ("invoices", "registration"),
        ("registration", "invoices"),
        ("registration", "registration"),
        ("invoices", "invoices"),
        ("registration", "registration"),
    ]
    # an agent's filter stays inside their own sessions
    status, page = await call(server, "GET", "/api/sessions?category=registration", p.other_agent)
    assert status == 200 and page["sessions"] == []


async def test_keyset_pages_over_the_final_category(server, p):
    ids = await seed(server, p)
    for sort, order in (("newest", "fdb"), ("oldest", "bdf")):
        for field, values in (("category", order), ("asked_category", None)):
            if values is None:
                values = "fdc" if sort == "newest" else "cdf"
            seen, cursor = [], None
            while True:
                q = f"/api/sessions?limit=1&sort={sort}&{field}=registration"
                status, page = await call(
                    server, "GET", q + (f"&before={cursor}" if cursor else ""), p.supervisor
                )
                assert status == 200 and len(page["sessions"]) <= 1, page
                seen += [s["id"] for s in page["sessions"]]
                cursor = page["next_before"]
                if cursor is None:
                    break
            assert seen == [ids[k] for k in values], (sort, field)


@pytest.mark.parametrize(
    "query",
    [
        "category=astrology",
        "asked_category=astrology",
        "asked_category=",
        "asked_category=' OR '1'='1",
        "asked_category=registration&asked_category=invoices",
        "asked_category=" + "x" * 65,
        "final_category=registration",  # not a parameter: `category` is the final one
        "asked_category=registration%00",
    ],
)
async def test_bad_category_filters_are_refused(server, p, query):
    for path in ("/api/sessions", "/api/review/export.csv", "/api/review/export-links"):
        method = "POST" if path.endswith("links") else "GET"
        status, err = await call(server, method, f"{path}?{query}", p.supervisor)
        assert status == 400, (path, query, err)
        assert err["error"]["code"] == "invalid_payload" and err["error"]["message"], query


async def test_the_category_filter_uses_its_index_on_postgresql(store):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    cats = ("invoices", "registration", "cross_border", "social_insurance")
    async with store.engine.begin() as conn:
        await conn.execute(
            ServiceSession.__table__.insert(),
            [
                {
                    "id": f"s{i:05}",
                    "ticket_id": f"t{i:05}",
                    "taxpayer_id": store.taxpayer,
                    "category": cats[i % 4],
                    "final_category": cats[(i // 3) % 4] if i % 40 else "rare",
                    "language": "zh-CN",
                    "channel": "web",
                    "question": "q",
                    "joined_at": T0 + timedelta(seconds=17 * i),
                    "joined_day": (T0 + timedelta(seconds=17 * i)).date().isoformat(),
                    "outcome": "abandoned",
                }
                for i in range(6000)
            ],
        )
        await conn.execute(text("ANALYZE service_sessions"))
    records = store.records
    # the list query as the API runs it (joins, keyset order, limit + 1), on a rare category
    query = (
        view_query()
        .where(*records._where(SUP, SessionFilter(category="rare"), None))
        .order_by(*records._order("newest"))
        .limit(51)
    )
    compiled = query.compile(store.engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with store.engine.connect() as conn:
        plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_service_sessions_final_category" in plan, plan
    page, cursor = await records.list(SUP, 50, None, SessionFilter(category="rare"))
    assert len(page) == 50 and cursor is not None
    page2, _ = await records.list(SUP, 100, cursor, SessionFilter(category="rare"))
    assert len(page) + len(page2) == 150
    assert not {s["id"] for s in page} & {s["id"] for s in page2}
