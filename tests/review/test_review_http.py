"""The loop and the supervisor's review through the real interfaces (HTTP and Socket.IO)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.review.helpers import SUMMARY, T0, call, people, served
from vtax.models import ServiceSession, SessionCheck, SessionEvent


@pytest.fixture
async def p(server, cast):
    return await people(server, cast)


async def test_the_loop_over_http(server, p):
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id)
    base = f"/api/sessions/{sid}"
    summary = SUMMARY | {
        "result": "follow_up",
        "follow_up_due": "2026-11-09",
        "category": "invoices",
        "actions": ["sent the form"],
    }
    status, saved = await call(server, "POST", base + "/summary", p.agent, json=summary)
    assert (status, saved) == (200, {"version": 1})
    status, err = await call(
        server, "POST", base + "/summary", p.agent, json=summary | {"items": ["invoices.nope"]}
    )
    # an unknown catalog item is refused by the body's model, which names it in the details
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    assert any("invoices.nope" in d["msg"] for d in err["error"]["details"]), err
    status, err = await call(
        server, "POST", base + "/summary", p.agent, json=summary | {"category": "astrology"}
    )
    assert status == 400
    status, checked = await call(
        server, "POST", base + "/check", p.taxpayer, json={"decision": "confirm", "version": 1}
    )
    assert (status, checked) == (200, {"check": "confirmed", "summary_version": 1})
    status, err = await call(server, "POST", base + "/summary", p.agent, json=summary)
    assert status == 409 and err["error"]["code"] == "invalid_state"
    rating = {"score": 4, "comment": "ok", "dimensions": {"professionalism": 5, "av_quality": 3}}
    status, rated = await call(server, "POST", base + "/rating", p.taxpayer, json=rating)
    assert (status, rated) == (200, {"flagged": False})
    status, err = await call(
        server, "POST", base + "/rating", p.taxpayer, json=rating | {"score": 1}
    )
    assert status == 409 and err["error"]["code"] == "already_rated"
    status, mine = await call(server, "GET", base, p.taxpayer)
    assert mine["loop"]["follow_up"] == {"status": "open", "due": "2026-11-09", "done_at": None}
    assert mine["summary"]["category"] == "invoices" and mine["loop"]["stage"] == "done"
    status, done = await call(server, "POST", base + "/follow-up", p.agent, json={"note": "ok"})
    assert status == 200 and done["status"] == "done"
    status, err = await call(server, "POST", base + "/follow-up", p.agent, json={})
    assert status == 409 and err["error"]["code"] == "invalid_state"
    status, detail = await call(server, "GET", f"/api/review/sessions/{sid}", p.supervisor)
    assert status == 200
    assert [c["decision"] for c in detail["checks"]] == ["confirmed"]
    assert [e["kind"] for e in detail["audit"]] == [
        "joined",
        "offered",
        "answered",
        "ended",
        "summary_saved",
        "checked",
        "rated",
        "follow_up_closed",
    ]
    assert detail["audit"][0]["actor"] == {"role": "taxpayer", "id": p.taxpayer_id}


async def test_check_over_socketio_and_the_supervisor_follow_up(server, clients, p):
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id)
    agent = await clients(server, p.agent)
    taxpayer = await clients(server, p.taxpayer)
    assert (await agent.call("session:summary", {"session_id": sid, **SUMMARY})) == {
        "ok": True,
        "version": 1,
    }
    early = await taxpayer.call("session:check", {"session_id": sid, "decision": "dispute"})
    assert early["error"]["code"] == "invalid_payload"  # a dispute says what is wrong
    ack = await taxpayer.call(
        "session:check", {"session_id": sid, "decision": "dispute", "comment": "wrong matter"}
    )
    assert ack == {"ok": True, "check": "disputed", "summary_version": 1}
    bad = await taxpayer.call("session:check", {"session_id": sid, "decision": "maybe"})
    assert bad["error"]["code"] == "invalid_payload"
    # The agent (and the taxpayer, and a supervisor) read what was disputed; nobody else.
    for token in (p.agent, p.taxpayer, p.supervisor):
        status, body = await call(server, "GET", f"/api/sessions/{sid}/checks", token)
        assert status == 200
        assert [(c["decision"], c["comment"], c["summary_version"]) for c in body["checks"]] == [
            ("disputed", "wrong matter", 1)
        ]
    for token in (p.other_agent, p.other_taxpayer):
        status, _err = await call(server, "GET", f"/api/sessions/{sid}/checks", token)
        assert status == 404
    status, _err = await call(server, "GET", f"/api/sessions/{sid}/checks?all=1", p.agent)
    assert status == 400
    ack = await taxpayer.call(
        "session:rate", {"session_id": sid, "score": 1, "dimensions": {"attitude": 1}}
    )
    assert ack == {"ok": True, "flagged": True}
    status, page = await call(server, "GET", "/api/sessions?flag=open", p.supervisor)
    assert [s["id"] for s in page["sessions"]] == [sid]
    assert page["sessions"][0]["loop"]["flag"]["reasons"] == ["disputed", "low_rating"]
    status, _err = await call(
        server, "POST", f"/api/review/sessions/{sid}/flag/resolve", p.supervisor, json={}
    )
    assert status == 400  # a note is required
    status, done = await call(
        server,
        "POST",
        f"/api/review/sessions/{sid}/flag/resolve",
        p.supervisor,
        json={"note": "apologised, corrected the record"},
    )
    assert status == 200 and done["status"] == "done"
    status, page = await call(server, "GET", "/api/sessions?flag=done", p.supervisor)
    assert [s["id"] for s in page["sessions"]] == [sid]
    status, page = await call(server, "GET", "/api/sessions?flag=open", p.supervisor)
    assert page["sessions"] == []


async def test_quality_review_form(server, p):
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id)
    status, qform = await call(server, "GET", "/api/review/quality-form", p.supervisor)
    assert status == 200 and qform["max_total"] == 100
    scores = {item["code"]: item["max"] for item in qform["items"]}
    url = f"/api/review/sessions/{sid}/quality"
    status, review = await call(server, "POST", url, p.supervisor, json={"scores": scores})
    assert status == 201 and review["total"] == 100
    for bad in (
        {"scores": scores | {"accuracy": 999}},
        {"scores": scores | {"accuracy": "30"}},
        {"scores": {**scores, "extra": 1}},
        {"scores": scores, "comment": 5},
        {"scores": scores, "grade": "A"},
    ):
        status, err = await call(server, "POST", url, p.supervisor, json=bad)
        assert status == 400 and err["error"]["code"] == "invalid_payload", bad
    status, detail = await call(server, "GET", f"/api/review/sessions/{sid}", p.supervisor)
    assert len(detail["quality_reviews"]) == 1


async def test_agents_for_the_filters(server, p):
    status, body = await call(server, "GET", "/api/review/agents", p.supervisor)
    assert status == 200
    assert [(a["id"], a["username"], a["display_name"]) for a in body["agents"]] == [
        (p.agent_id, "agent1", "Agent One"),
        (p.other_agent_id, "agent2", "Agent Two"),
    ]  # by display name; supervisors are not listed
    status, err = await call(server, "GET", "/api/review/agents?role=agent", p.supervisor)
    assert status == 400 and err["error"]["code"] == "invalid_payload"


async def seed_filters(server, p):
    """Six sessions across two days, two agents, categories, channels, languages."""
    r = server.ctx.records
    ids = {
        "a": await served(r, p.taxpayer_id, p.agent_id, joined=T0),
        "b": await served(
            r,
            p.taxpayer_id,
            p.other_agent_id,
            joined=T0 + timedelta(hours=1),
            category="cross_border",
            channel="kiosk",
            language="yue",
        ),
        "c": await served(r, p.other_taxpayer_id, None, joined=T0 + timedelta(hours=2)),
        "d": await served(
            r,
            p.other_taxpayer_id,
            p.agent_id,
            joined=T0 + timedelta(days=1),
            channel="mobile",
            outcome="dropped",
        ),
        "e": await served(
            r,
            p.taxpayer_id,
            p.agent_id,
            joined=T0 + timedelta(days=1, hours=1),
            outcome="transferred",
            language="en",
        ),
        "f": await served(
            r,
            p.other_taxpayer_id,
            p.other_agent_id,
            joined=T0 + timedelta(days=1, hours=2),
            talk_s=None,
        ),
    }
    loop = r.loop
    await loop.rate(ids["a"], p.taxpayer_id, T0 + timedelta(days=2), score=5, comment="")
    await loop.rate(ids["b"], p.taxpayer_id, T0 + timedelta(days=2), score=2, comment="")
    await loop.rate(ids["d"], p.other_taxpayer_id, T0 + timedelta(days=2), score=3, comment="")
    return ids


FILTERS = [
    ("", "abcdef"),
    ("from=2026-11-02&to=2026-11-02", "abc"),
    ("from=2026-11-03", "def"),
    ("to=2026-11-02", "abc"),
    ("agent={agent}", "ade"),
    ("agent={other_agent}", "bf"),
    ("agent=nobody", ""),
    ("category=cross_border", "b"),
    ("channel=kiosk", "b"),
    ("channel=mobile", "d"),
    ("language=yue", "b"),
    ("language=en", "e"),
    ("rating=5", "a"),
    ("max_rating=2", "b"),
    ("min_rating=3", "ad"),
    ("min_rating=2&max_rating=3", "bd"),
    ("min_rating=3&max_rating=3", "d"),  # one score: an equality
    ("min_rating=4&max_rating=2", ""),
    ("rated=false", "cef"),
    ("flag=open", "b"),
    ("flag=none", "acdef"),
    ("outcome=abandoned", "c"),
    ("outcome=transferred", "e"),
    ("outcome=live", "f"),
    ("outcome=completed&from=2026-11-02&to=2026-11-02", "ab"),
    ("check=pending&agent={agent}&channel=web", "ae"),
    ("sort=oldest", "abcdef"),
]


async def test_supervisor_filters(server, p):
    """Every filter (one seeded data set; each query is its own case in the loop)."""
    ids = await seed_filters(server, p)
    for query, expected in FILTERS:
        query = query.format(agent=p.agent_id, other_agent=p.other_agent_id)
        status, page = await call(server, "GET", f"/api/sessions?{query}", p.supervisor)
        assert status == 200, (query, page)
        got = [s["id"] for s in page["sessions"]]
        want = [ids[k] for k in expected]
        assert got == (want if "sort=oldest" in query else list(reversed(want))), query
        # the same filters stream the same sessions as CSV
        status, raw = await call(server, "GET", f"/api/review/export.csv?{query}", p.supervisor)
        assert status == 200, query
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        assert [r["id"] for r in rows] == got, query


async def test_filters_stay_inside_the_callers_scope(server, p):
    ids = await seed_filters(server, p)
    status, page = await call(server, "GET", "/api/sessions?channel=kiosk", p.agent)
    assert status == 200 and page["sessions"] == []  # b is another agent's
    status, page = await call(server, "GET", "/api/sessions?sort=oldest", p.taxpayer)
    assert status == 200
    assert [s["id"] for s in page["sessions"]] == [ids["a"], ids["b"], ids["e"]]
    assert all("flag" not in s["loop"] for s in page["sessions"])


async def test_keyset_pages_with_filters_and_both_orders(server, p):
    ids = await seed_filters(server, p)
    for sort, order in (("newest", "fedcba"), ("oldest", "abcdef")):
        seen, cursor = [], None
        while True:
            q = f"/api/sessions?limit=2&sort={sort}" + (f"&before={cursor}" if cursor else "")
            status, page = await call(server, "GET", q, p.supervisor)
            assert status == 200 and len(page["sessions"]) <= 2
            seen += [s["id"] for s in page["sessions"]]
            cursor = page["next_before"]
            if cursor is None:
                break
        assert seen == [ids[k] for k in order]


BAD_FILTERS = [
    "sort=score",
    "sort=joined_at;DROP TABLE service_sessions",
    "rating=6",
    "rating=0",
    "rating=five",
    "rating=5&min_rating=1",
    "min_rating=-1",
    "flag=maybe",
    "outcome=exploded",
    "channel=fax",
    "language=fr",
    "category=' OR '1'='1",
    "category=invoices'--",
    "agent=" + "x" * 65,
    "from=2026-02-30",
    "from=2026-11-03&to=2026-11-02",
    "from=0001-01-01",
    "to=9999-12-31",
    "limit=0",
    "limit=201",
    "limit=2.5",
    "before=%27%20OR%201%3D1",
    "rated=perhaps",
    "admin=true",
    "flag=open&flag=none",
]


async def test_bad_filters_are_refused_clearly(server, p):
    await seed_filters(server, p)
    for query in BAD_FILTERS:
        for path in ("/api/sessions", "/api/review/export.csv"):
            if path.endswith(".csv") and query.startswith(("limit", "before")):
                continue
            status, err = await call(server, "GET", f"{path}?{query}", p.supervisor)
            assert status == 400, (path, query, err)
            assert err["error"]["code"] == "invalid_payload" and err["error"]["message"], query
    status, page = await call(server, "GET", "/api/sessions", p.supervisor)
    assert len(page["sessions"]) == 6  # nothing dropped, nothing changed


async def test_the_csv_export_streams_every_row_and_defuses_formulas(server, p):
    r = server.ctx.records
    async with r.sessionmaker() as db, db.begin():  # more than one page of the export
        for i in range(450):
            joined = T0 + timedelta(seconds=i)
            db.add(
                ServiceSession(
                    id=f"s{i:04}",
                    ticket_id=f"t{i:04}",
                    taxpayer_id=p.taxpayer_id,
                    category="invoices",
                    language="zh-CN",
                    channel="web",
                    question="=1+1",
                    joined_at=joined,
                    joined_day=joined.date().isoformat(),
                    ended_at=joined + timedelta(seconds=3),
                    wait_ms=3000,
                    outcome="abandoned",
                )
            )
    sid = await served(r, p.taxpayer_id, p.agent_id, joined=T0 + timedelta(hours=5))
    await r.loop.rate(sid, p.taxpayer_id, T0 + timedelta(hours=6), score=1, comment="=HYPERLINK()")
    async with server.http.get(
        server.url + "/api/review/export.csv", headers={"Authorization": f"Bearer {p.supervisor}"}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        raw = await resp.read()
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert len(rows) == 451
    assert rows[0]["id"] == sid and rows[0]["rating_comment"] == "'=HYPERLINK()"
    assert rows[0]["flag"] == "open" and rows[0]["flag_reasons"] == "low_rating"
    assert rows[1]["outcome"] == "abandoned" and rows[1]["agent_id"] == ""
    assert rows[1]["question"] == "'=1+1" and rows[1]["wait_s"] == "3.0"
    assert len({r["id"] for r in rows}) == 451


async def test_refused_loop_steps_store_nothing_over_http(server, p):
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id, talk_s=None)  # live
    base = f"/api/sessions/{sid}"
    for method, path, token, body, code in [
        ("POST", "/rating", p.taxpayer, {"score": 5}, "invalid_state"),
        ("POST", "/check", p.taxpayer, {"decision": "confirm"}, "invalid_state"),
        ("POST", "/rating", p.taxpayer, {"score": "5"}, "invalid_payload"),
        # JSON has one number type: 5.0 is the integer 5 (refused here by the live session);
        # 5.5 is not an integer
        ("POST", "/rating", p.taxpayer, {"score": 5.0}, "invalid_state"),
        ("POST", "/rating", p.taxpayer, {"score": 5.5}, "invalid_payload"),
        ("POST", "/rating", p.taxpayer, {"score": 9}, "invalid_payload"),
        ("POST", "/rating", p.taxpayer, {"score": 5, "dimensions": {"mood": 1}}, "invalid_payload"),
        (
            "POST",
            "/rating",
            p.taxpayer,
            {"score": 5, "dimensions": {"attitude": 0}},
            "invalid_payload",
        ),
        ("POST", "/summary", p.agent, SUMMARY | {"result": "done"}, "invalid_payload"),
        ("POST", "/summary", p.agent, SUMMARY | {"follow_up_due": "soon"}, "invalid_payload"),
        ("POST", "/summary", p.agent, SUMMARY | {"asked": ""}, "invalid_payload"),
        ("POST", "/check", p.taxpayer, {"decision": "confirm", "version": 0}, "invalid_payload"),
        ("POST", "/follow-up", p.agent, {}, "invalid_state"),
    ]:
        status, err = await call(server, method, base + path, token, json=body)
        assert 400 <= status < 500 and err["error"]["code"] == code, (path, body, err)
    async with server.ctx.records.sessionmaker() as db:
        kinds = (await db.scalars(select(SessionEvent.kind))).all()
        assert await db.scalar(select(func.count()).select_from(SessionCheck)) == 0
    assert kinds == ["joined", "offered", "answered"]


async def test_session_check_event_refuses_bad_payloads(server, clients, p):
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id)
    taxpayer = await clients(server, p.taxpayer)
    good = {"session_id": sid, "decision": "confirm"}
    for bad in (
        "confirm",
        None,
        [good],
        {**good, "decision": "yes"},
        {**good, "version": "1"},
        {**good, "version": 0},
        {**good, "comment": "x" * 1001},
        {**good, "comment": "a\x00b"},
        {**good, "admin": True},
        {"decision": "confirm"},
    ):
        ack = await taxpayer.call("session:check", bad)
        assert ack["error"]["code"] == "invalid_payload", bad
    ack = await taxpayer.call("session:check", good)
    assert ack["error"]["code"] == "invalid_state"  # no summary yet
    agent = await clients(server, p.agent)
    assert (await agent.call("session:check", good))["error"]["code"] == "forbidden"
    assert taxpayer.sio.connected and agent.sio.connected
