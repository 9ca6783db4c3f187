"""The assistant wired into a running node (docs/assistant.md, Wiring): the `consultation:*`
events with real Socket.IO clients, the hand-off into the queue (the agent's offer carries
the conversation), and the REST routes with their authorization and bad input, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RESIDENT_ID, Client, RunningServer, poll_until
from vtax.assistant import kbfile
from vtax.assistant.seed import load_seed

UNSTAFFED = Path(__file__).parent / "data/queues-invoices-unstaffed.toml"
# Every node follows an edit within `assistant_refresh_s`: here at once.
FAST = {"assistant_refresh_s": 0.01}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(FAST)


def small_kb() -> bytes:
    """The seed's invoice entries (30), as a knowledge-base file."""
    return kbfile.dump(e for e in load_seed() if e.category == "invoices").encode()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def request(
    srv: RunningServer,
    method: str,
    path: str,
    token: str | None,
    *,
    json_body: Any = None,
    data: bytes | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = auth(token) if token else {}
    async with srv.http.request(
        method, f"{srv.url}{path}", headers=headers, json=json_body, data=data, params=params
    ) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def import_small_kb(srv: RunningServer, supervisor: str) -> None:
    status, answer = await request(srv, "POST", "/api/kb/import", supervisor, data=small_kb())
    assert status == 200, answer
    assert len(answer["created"]) == 30 and "inv-type-add-special" in answer["created"]


async def available_agent(
    srv: RunningServer, clients: Any, name: str = "agent1", languages: tuple[str, ...] = ("zh-CN",)
) -> Client:
    agent = await clients(srv, await srv.staff(name, languages=list(languages)))
    ack = await agent.call("agent:status", {"status": "available"})
    assert ack["ok"], ack
    return agent


# ---- Socket.IO: ask, answer, feedback, hand-off into the queue ---------------------------------


async def test_a_taxpayer_asks_gets_an_answer_votes_and_hands_off_to_an_agent(server, clients):
    supervisor = await server.staff("sup", "supervisor")
    await import_small_kb(server, supervisor)
    agent = await available_agent(server, clients)
    agent_token = await server.staff("agent2")
    taxpayer = await clients(server, await server.taxpayer())

    started = await taxpayer.call("consultation:start", {"language": "zh-CN", "channel": "web"})
    assert started["ok"], started
    assert started["state"] == "open" and started["message"]
    cid = started["conversation_id"]

    reply = await taxpayer.call(
        "consultation:ask", {"conversation_id": cid, "text": "小规模纳税人可以开专票吗"}
    )
    assert reply["ok"], reply
    assert reply["kind"] == "answer"
    assert reply["entry"]["key"] == "inv-type-add-special"
    assert reply["ask_feedback"] and reply["offer_person"]
    assert reply["handoff"] is None

    voted = await taxpayer.call(
        "consultation:feedback", {"conversation_id": cid, "seq": reply["seq"], "helpful": True}
    )
    assert voted["ok"] and voted["helpful"] is True and voted["handoff"] is None

    handed = await taxpayer.call("consultation:handoff", {"conversation_id": cid})
    assert handed["ok"], handed
    assert handed["route"] == "queue" and handed["reason"] == "customer_request"
    assert handed["ticket"]["category"] == "invoices"
    assert handed["queue_refused"] is None
    queued = handed["queued"]
    assert queued["ticket_id"] and queued["position"] >= 0 and queued["eta_s"] >= 0

    # The agent is offered the ticket with the conversation: summary and transcript.
    offer = await agent.wait_for("offer:new")
    ticket = offer["ticket"]
    assert ticket["ticket_id"] == queued["ticket_id"]
    assert ticket["consultation_id"] == cid
    assert ticket["category"] == "invoices" and ticket["language"] == "zh-CN"
    assert "小规模纳税人可以开专票吗" in ticket["question"]
    assert "inv-type-add-special" in ticket["question"]

    # ... and may read the whole conversation before accepting.
    status, transcript = await request(server, "GET", f"/api/consultations/{cid}", agent_token)
    assert status == 200, transcript
    kinds = [t["kind"] for t in transcript["turns"]]
    assert kinds[:2] == ["question", "answer"] and kinds[-1] == "handoff"
    assert transcript["state"] == "handed_off"
    assert transcript["turns"][1]["helpful"] is True

    # One hand-off per conversation; the taxpayer is waiting in the queue.
    again = await taxpayer.call("consultation:handoff", {"conversation_id": cid})
    assert again["ok"] is False and again["error"]["code"] == "invalid_state"

    accepted = await agent.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert accepted["ok"], accepted
    start = await taxpayer.wait_for("session:start")

    closed = await taxpayer.call("consultation:close", {"conversation_id": cid})
    assert closed["ok"] and closed["state"] == "handed_off"

    # The session's record keeps where it came from: the supervisor reviewing it reads the
    # conversation before the hand-off (and the taxpayer sees the link on their own record).
    sid = start["session_id"]
    status, detail = await request(server, "GET", f"/api/review/sessions/{sid}", supervisor)
    assert status == 200, detail
    assert detail["session"]["consultation_id"] == cid
    assert detail["session"]["booking_id"] is None
    status, own = await request(server, "GET", f"/api/sessions/{sid}", taxpayer.token)
    assert status == 200, own
    assert own["consultation_id"] == cid
    status, listed = await request(server, "GET", "/api/sessions", supervisor)
    assert status == 200, listed
    assert [s["consultation_id"] for s in listed["sessions"] if s["id"] == sid] == [cid]


async def test_asking_for_a_person_joins_the_queue_at_once(server, clients):
    supervisor = await server.staff("sup", "supervisor")
    await import_small_kb(server, supervisor)
    agent = await available_agent(server, clients, languages=("en",))
    taxpayer = await clients(server, await server.taxpayer())
    cid = (await taxpayer.call("consultation:start", {"language": "en", "channel": "web"}))[
        "conversation_id"
    ]
    first = await taxpayer.call(
        "consultation:ask", {"conversation_id": cid, "text": "Can I collect paper invoices online?"}
    )
    assert first["kind"] == "answer", first
    reply = await taxpayer.call(
        "consultation:ask", {"conversation_id": cid, "text": "I want to talk to a person"}
    )
    assert reply["ok"] and reply["kind"] == "handoff", reply
    handoff = reply["handoff"]
    assert handoff["reason"] == "customer_request" and handoff["route"] == "queue"
    assert handoff["ticket"]["language"] == "en"
    offer = await agent.wait_for("offer:new")
    assert offer["ticket"]["ticket_id"] == handoff["queued"]["ticket_id"]
    assert offer["ticket"]["consultation_id"] == cid
    # Joining again by hand is refused: the hand-off's ticket is waiting.
    join = await taxpayer.call(
        "queue:join",
        {"category": "invoices", "language": "en", "channel": "web", "question": "again"},
    )
    assert join["ok"] is False and join["error"]["code"] == "already_queued"


async def test_repeated_failure_hands_off_and_no_category_asks_for_one(server, clients):
    supervisor = await server.staff("sup", "supervisor")
    await import_small_kb(server, supervisor)
    taxpayer = await clients(server, await server.taxpayer())
    cid = (await taxpayer.call("consultation:start", {"language": "zh-CN", "channel": "kiosk"}))[
        "conversation_id"
    ]
    # Nothing known yet about the category: the page must ask for it.
    refused = await taxpayer.call("consultation:handoff", {"conversation_id": cid})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "category_required", refused

    reply = await taxpayer.call(
        "consultation:ask", {"conversation_id": cid, "text": "纸质发票能在网上领吗"}
    )
    assert reply["kind"] == "answer", reply
    voted = await taxpayer.call(
        "consultation:feedback", {"conversation_id": cid, "seq": reply["seq"], "helpful": False}
    )
    assert voted["ok"] and voted["handoff"] is None  # one failure
    again = await taxpayer.call(
        "consultation:ask", {"conversation_id": cid, "text": "纸质发票能在网上领吗"}
    )
    voted = await taxpayer.call(
        "consultation:feedback", {"conversation_id": cid, "seq": again["seq"], "helpful": False}
    )
    assert voted["ok"], voted
    handoff = voted["handoff"]
    assert handoff["reason"] == "repeated_failure" and handoff["route"] == "queue"
    assert handoff["queued"]["ticket_id"]  # no agent on duty: the default queue still takes it


@pytest.mark.parametrize("settings_overrides", [{"queues_file": UNSTAFFED, **FAST}])
async def test_a_queue_refusal_falls_back_to_the_callback_offer(server, clients):
    supervisor = await server.staff("sup", "supervisor")
    await import_small_kb(server, supervisor)
    taxpayer = await clients(server, await server.taxpayer())
    cid = (await taxpayer.call("consultation:start", {"language": "pt", "channel": "web"}))[
        "conversation_id"
    ]
    handed = await taxpayer.call(
        "consultation:handoff", {"conversation_id": cid, "category": "invoices"}
    )
    assert handed["ok"], handed
    assert handed["route"] == "callback" and handed["queue_refused"] == "no_agents"
    assert handed["queued"] is None and handed["message"]
    # The conversation's route is the callback offer; the KPI counts it so.
    status, kpi = await request(server, "GET", "/api/stats/consultations", supervisor)
    assert status == 200, kpi
    assert kpi["handoffs_by_route"] == {"queue": 0, "callback": 0}, kpi
    # (a conversation with no question is not counted: ask one in another conversation)
    cid2 = (await taxpayer.call("consultation:start", {"language": "zh-CN", "channel": "web"}))[
        "conversation_id"
    ]
    await taxpayer.call("consultation:ask", {"conversation_id": cid2, "text": "新公司怎么申请发票"})
    reply = await taxpayer.call("consultation:ask", {"conversation_id": cid2, "text": "转人工"})
    assert reply["kind"] == "handoff" and reply["handoff"]["route"] == "callback", reply
    status, kpi = await request(server, "GET", "/api/stats/consultations", supervisor)
    assert kpi["handoffs_by_route"] == {"queue": 0, "callback": 1}, kpi
    assert kpi["handoffs_by_reason"]["customer_request"] == 1


async def test_consultation_events_refuse_bad_input_and_other_people(server, clients):
    taxpayer = await clients(server, await server.taxpayer())
    other = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    agent = await clients(server, await server.staff("agent1"))
    cid = (await taxpayer.call("consultation:start", {"language": "zh-CN", "channel": "web"}))[
        "conversation_id"
    ]
    cases: list[tuple[Client, str, Any, str]] = [
        (agent, "consultation:start", {"language": "zh-CN", "channel": "web"}, "forbidden"),
        (taxpayer, "consultation:start", {"language": "xx", "channel": "web"}, "invalid_payload"),
        (taxpayer, "consultation:ask", {"conversation_id": cid, "text": ""}, "invalid_payload"),
        (
            taxpayer,
            "consultation:ask",
            {"conversation_id": cid, "text": "x" * 501},
            "invalid_payload",
        ),
        (taxpayer, "consultation:ask", {"conversation_id": "nope", "text": "hi"}, "not_found"),
        (other, "consultation:ask", {"conversation_id": cid, "text": "发票"}, "not_found"),
        (other, "consultation:handoff", {"conversation_id": cid}, "not_found"),
        (other, "consultation:close", {"conversation_id": cid}, "not_found"),
        (
            taxpayer,
            "consultation:feedback",
            {"conversation_id": cid, "seq": "1", "helpful": True},
            "invalid_payload",
        ),
        (
            taxpayer,
            "consultation:handoff",
            {"conversation_id": cid, "category": "no_such_category"},
            "unknown_category",
        ),
    ]
    for client, event, payload, code in cases:
        ack = await client.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)


@pytest.mark.parametrize("settings_overrides", [{"assistant_seed": True}])
async def test_a_node_seeds_an_empty_knowledge_base_and_warms_its_index(server):
    keeper = server.ctx.services.kb_keeper
    await poll_until(lambda: keeper.revision is not None, timeout=60)
    agent = await server.staff("agent1")
    status, listed = await request(server, "GET", "/api/kb/entries", agent)
    assert status == 200 and len(listed["entries"]) == len(load_seed())
    assert listed["revision"] == keeper.revision


# ---- REST --------------------------------------------------------------------------------------


def draft(key: str = "inv-test-entry", answer: str = "登录电子税务局办理。") -> dict[str, Any]:
    return {
        "key": key,
        "category": "invoices",
        "items": [],
        "texts": {"zh-CN": {"question": "测试用的发票问题怎么办理？", "answer": answer}},
    }


async def test_supervisors_edit_the_knowledge_base_and_others_may_not(server):
    supervisor = await server.staff("sup", "supervisor")
    agent = await server.staff("agent1")
    taxpayer = await server.taxpayer()
    base = "/api/kb/entries"

    for token in (agent, taxpayer, None):
        status, answer = await request(server, "POST", base, token, json_body=draft())
        assert status in (401, 403), (token, status, answer)
    status, created = await request(server, "POST", base, supervisor, json_body=draft())
    assert status == 201, created
    assert created["version"] == 1 and created["updated_by"]
    status, dup = await request(server, "POST", base, supervisor, json_body=draft())
    assert status == 409 and dup["error"]["code"] == "kb_entry_exists"

    status, got = await request(server, "GET", f"{base}/inv-test-entry", agent)
    assert status == 200 and got["version"] == 1
    status, _ = await request(server, "GET", f"{base}/inv-test-entry", taxpayer)
    assert status == 403
    status, missing = await request(server, "GET", f"{base}/no-such-entry", agent)
    assert status == 404 and missing["error"]["code"] == "not_found"
    status, _ = await request(server, "GET", f"{base}/Bad%20Key", agent)
    assert status == 404

    change = {"expected_version": 1, "entry": draft(answer="先登录电子税务局，再办理。")}
    status, _ = await request(server, "PUT", f"{base}/inv-test-entry", agent, json_body=change)
    assert status == 403
    status, updated = await request(
        server, "PUT", f"{base}/inv-test-entry", supervisor, json_body=change
    )
    assert status == 200 and updated["version"] == 2, updated
    status, stale = await request(
        server, "PUT", f"{base}/inv-test-entry", supervisor, json_body=change
    )
    assert status == 409 and stale["error"]["code"] == "kb_version_conflict"
    status, wrong_key = await request(
        server,
        "PUT",
        f"{base}/inv-test-entry",
        supervisor,
        json_body={"expected_version": 2, "entry": draft("inv-other")},
    )
    assert status == 400 and wrong_key["error"]["code"] == "invalid_payload"
    status, bad = await request(
        server, "PUT", f"{base}/inv-test-entry", supervisor, json_body={"expected_version": 0}
    )
    assert status == 400 and bad["error"]["code"] == "invalid_payload"

    status, retired = await request(
        server,
        "POST",
        f"{base}/inv-test-entry/retire",
        supervisor,
        json_body={"expected_version": 2},
    )
    assert status == 200 and retired["retired"] is True
    status, listed = await request(server, "GET", base, agent)
    assert status == 200 and listed["entries"] == []
    status, listed = await request(
        server, "GET", base, supervisor, params={"include_retired": "true"}
    )
    assert [e["key"] for e in listed["entries"]] == ["inv-test-entry"]
    status, _ = await request(server, "GET", base, supervisor, params={"category": "nope"})
    assert status == 400

    status, history = await request(server, "GET", f"{base}/inv-test-entry/history", supervisor)
    assert status == 200
    assert [v["change"] for v in history["versions"]] == ["created", "updated", "retired"]
    status, _ = await request(server, "GET", f"{base}/inv-test-entry/history", agent)
    assert status == 403


async def test_import_and_export_take_files_up_to_the_documents_limit(server):
    supervisor = await server.staff("sup", "supervisor")
    agent = await server.staff("agent1")
    seed = kbfile.dump(load_seed()).encode()
    assert len(seed) > 64 * 1024  # larger than a JSON body may be

    status, _ = await request(server, "POST", "/api/kb/import", agent, data=seed)
    assert status == 403
    status, dry = await request(
        server, "POST", "/api/kb/import", supervisor, data=seed, params={"dry_run": "true"}
    )
    assert status == 200 and dry["dry_run"] and dry["entries"] == len(load_seed()), dry
    status, listed = await request(server, "GET", "/api/kb/entries", supervisor)
    assert listed["entries"] == []  # a dry run changes nothing

    status, done = await request(server, "POST", "/api/kb/import", supervisor, data=seed)
    assert status == 200 and len(done["created"]) == len(load_seed()), done

    status, exported = await request(server, "GET", "/api/kb/export", supervisor)
    assert status == 200 and exported["format"] == "vtax-kb"
    assert len(exported["entries"]) == len(load_seed())
    status, _ = await request(server, "GET", "/api/kb/export", agent)
    assert status == 403
    status, again = await request(
        server, "POST", "/api/kb/import", supervisor, data=json.dumps(exported).encode()
    )
    assert status == 200 and again["created"] == [] and again["updated"] == [], again

    broken = b'{"format": "vtax-kb", "version": 1, "entries": [{"key": "x"'
    status, report = await request(
        server, "POST", "/api/kb/import", supervisor, data=broken, params={"dry_run": "true"}
    )
    assert status == 200 and report["problems"] and "line 1" in report["problems"][0]["where"]
    status, refused = await request(server, "POST", "/api/kb/import", supervisor, data=broken)
    assert status == 400 and refused["error"]["code"] == "kb_file_invalid"
    status, empty = await request(server, "POST", "/api/kb/import", supervisor, data=b"")
    assert status == 400 and empty["error"]["code"] == "invalid_payload"
    status, bad_query = await request(
        server, "POST", "/api/kb/import", supervisor, data=seed, params={"dry_run": "maybe"}
    )
    assert status == 400 and bad_query["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize("settings_overrides", [{"documents_max_bytes": 4096}])
async def test_an_import_larger_than_the_documents_limit_is_refused(server):
    supervisor = await server.staff("sup", "supervisor")
    status, answer = await request(server, "POST", "/api/kb/import", supervisor, data=small_kb())
    assert len(small_kb()) > 4096
    assert status == 413 and answer["error"]["code"] == "payload_too_large"


async def test_transcripts_suggestions_and_figures_over_http(server, clients):
    supervisor = await server.staff("sup", "supervisor")
    agent = await server.staff("agent1")
    await import_small_kb(server, supervisor)
    owner_token = await server.taxpayer()
    other_token = await server.taxpayer(RESIDENT_ID, "resident_id")
    owner = await clients(server, owner_token)
    cid = (await owner.call("consultation:start", {"language": "zh-CN", "channel": "web"}))[
        "conversation_id"
    ]
    answered = await owner.call(
        "consultation:ask", {"conversation_id": cid, "text": "新公司怎么申请开发票"}
    )
    assert answered["kind"] == "answer", answered
    unanswered = await owner.call(
        "consultation:ask", {"conversation_id": cid, "text": "遗产税的申报期限是多久"}
    )
    assert unanswered["kind"] == "no_answer", unanswered

    path = f"/api/consultations/{cid}"
    status, mine = await request(server, "GET", path, owner_token)
    assert status == 200 and mine["conversation_id"] == cid and len(mine["turns"]) == 4
    status, theirs = await request(server, "GET", path, other_token)
    assert status == 404 and theirs["error"]["code"] == "not_found"
    status, _ = await request(server, "GET", path, None)
    assert status == 401
    status, _ = await request(server, "GET", path, supervisor)
    assert status == 200
    status, _ = await request(server, "GET", "/api/consultations/no-such-one", owner_token)
    assert status == 404

    status, suggested = await request(
        server, "GET", "/api/kb/suggest", agent, params={"q": "小规模能开专票吗"}
    )
    assert status == 200 and suggested["entries"][0]["key"] == "inv-type-add-special", suggested
    assert suggested["entries"][0]["answer"]
    status, _ = await request(server, "GET", "/api/kb/suggest", owner_token, params={"q": "发票"})
    assert status == 403
    for params in ({}, {"q": ""}, {"q": "发票", "language": "fr"}, {"q": "发票", "x": "1"}):
        status, bad = await request(server, "GET", "/api/kb/suggest", agent, params=params)
        assert status == 400 and bad["error"]["code"] == "invalid_payload", params

    status, listed = await request(server, "GET", "/api/consultations/unanswered", supervisor)
    assert status == 200, listed
    assert [q["question"] for q in listed["questions"]] == ["遗产税的申报期限是多久"]
    status, _ = await request(server, "GET", "/api/consultations/unanswered", agent)
    assert status == 403

    status, kpi = await request(server, "GET", "/api/stats/consultations", supervisor)
    assert status == 200, kpi
    assert kpi["conversations"] == 1 and kpi["answers"] == 1 and kpi["no_answers"] == 1
    assert kpi["contained"] == 1 and kpi["handoffs"] == 0
    status, _ = await request(server, "GET", "/api/stats/consultations", agent)
    assert status == 403
    for params in (
        {"from": "2026-13-01"},
        {"from": "2026-12-03", "to": "2026-12-01"},
        {"from": "2024-01-01", "to": "2026-01-01"},
    ):
        status, bad = await request(
            server, "GET", "/api/stats/consultations", supervisor, params=params
        )
        assert status == 400 and bad["error"]["code"] == "invalid_payload", (params, bad)


@pytest.mark.parametrize(
    "settings_overrides", [{"assistant_rate": 0.01, "assistant_burst": 3, **FAST}]
)
async def test_questions_beyond_the_connections_budget_are_refused(server, clients):
    taxpayer = await clients(server, await server.taxpayer())
    cid = (await taxpayer.call("consultation:start", {"language": "zh-CN", "channel": "web"}))[
        "conversation_id"
    ]
    acks = [
        await taxpayer.call("consultation:ask", {"conversation_id": cid, "text": f"发票 {n}"})
        for n in range(3)
    ]
    assert [a["ok"] for a in acks] == [True, True, False]
    assert acks[-1]["error"]["code"] == "rate_limited"
    # closing draws from no budget
    closed = await taxpayer.call("consultation:close", {"conversation_id": cid})
    assert closed["ok"] and closed["state"] == "closed"
