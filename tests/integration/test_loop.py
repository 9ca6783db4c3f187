"""The whole service loop through the real interfaces: HTTP, Socket.IO, on both databases."""

from __future__ import annotations

import pytest

from tests.conftest import RESIDENT_ID, USCC, poll_until
from tests.signin import person_for
from vtax.identity import mask

JOIN = {
    "category": "invoices",
    "language": "zh-CN",
    "channel": "web",
    "question": "How do I issue a red-letter invoice?",
}


async def start_session(server, clients, taxpayer_id=USCC):
    agent = await clients(server, await server.staff("agent1"))
    taxpayer = await clients(server, await server.taxpayer(taxpayer_id))
    assert (await agent.call("agent:status", {"status": "available"})) == {
        "ok": True,
        "status": "available",
    }
    joined = await taxpayer.call("queue:join", JOIN)
    assert joined["ok"] and joined["position"] == 1
    offer = await agent.wait_for("offer:new")
    assert offer["ticket"]["question"] == JOIN["question"]
    assert offer["ticket"]["category"] == "invoices" and offer["expires_in_s"] > 0
    accepted = await agent.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert accepted["ok"], accepted
    t_start = await taxpayer.wait_for("session:start")
    a_start = await agent.wait_for("session:start")
    return agent, taxpayer, a_start, t_start


async def test_whole_loop_reaches_the_supervisor(server, clients):
    agent, taxpayer, a_start, t_start = await start_session(server, clients)
    session_id = a_start["session_id"]
    assert t_start["session_id"] == session_id
    assert (t_start["polite"], a_start["polite"]) == (True, False)
    assert t_start["peer"]["participant_id"] == a_start["participant_id"]
    assert t_start["peer"]["display_name"] == "Agent1"
    assert isinstance(t_start["ice_servers"], list)

    # Signals are relayed to the other side only, stamped with sender and sequence.
    ack = await agent.call(
        "rtc:signal",
        {"session_id": session_id, "type": "offer", "data": {"type": "offer", "sdp": "v=0"}},
    )
    assert ack == {"ok": True, "seq": 1}
    relayed = await taxpayer.wait_for("rtc:signal")
    assert relayed == {
        "session_id": session_id,
        "from": a_start["participant_id"],
        "seq": 1,
        "type": "offer",
        "data": {"type": "offer", "sdp": "v=0"},
    }
    assert agent.received["rtc:signal"] == []

    assert (await taxpayer.call("session:end", {"session_id": session_id}))["ok"]
    for side in (agent, taxpayer):
        end = await side.wait_for("session:end")
        assert end["reason"] == "hangup" and end["ended_by"] == t_start["participant_id"]
    assert await agent.wait_for("agent:status", lambda s: s["status"] == "available")

    summary = {
        "session_id": session_id,
        "asked": "red-letter invoice",
        "handled": "explained the steps",
        "result": "resolved",
        "items": ["invoices.red_letter_invoice"],
    }
    assert (await agent.call("session:summary", summary)) == {"ok": True, "version": 1}
    wrong_item = await agent.call("session:summary", {**summary, "items": ["invoices.nope"]})
    assert wrong_item["error"]["code"] == "invalid_payload"
    rate = {"session_id": session_id, "score": 4, "comment": "clear and quick"}
    assert (await taxpayer.call("session:rate", rate)) == {"ok": True, "flagged": False}
    assert (await taxpayer.call("session:rate", rate)) == {
        "ok": True,
        "flagged": False,
    }  # idempotent
    again = await taxpayer.call("session:rate", {**rate, "score": 5})
    assert again["error"]["code"] == "already_rated"

    sup = await server.staff("boss", "supervisor")
    async with server.http.get(
        f"{server.url}/api/sessions", headers={"Authorization": f"Bearer {sup}"}
    ) as r:
        assert r.status == 200
        rows = (await r.json())["sessions"]
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == session_id and row["outcome"] == "completed"
    assert row["agent"]["username"] == "agent1" and row["category"] == "invoices"
    assert row["rating"]["score"] == 4 and row["rating"]["comment"] == "clear and quick"
    assert row["summary"]["handled"] == "explained the steps"
    assert row["wait_s"] >= 0 and row["duration_s"] >= 0
    # the taxpayer of the session is the person who signed in (acting for the enterprise of
    # USCC as its legal representative, tests/signin.py), shown masked
    person = person_for(USCC)
    assert row["taxpayer"]["id_number_masked"] == mask(person.document)
    assert row["taxpayer"]["name"] == person.name


async def test_sessions_are_scoped_by_role(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    other_taxpayer = await server.taxpayer(RESIDENT_ID, "resident_id")
    other_agent = await server.staff("agent2")
    for token, visible in (
        (taxpayer.token, 1),
        (agent.token, 1),
        (other_taxpayer, 0),
        (other_agent, 0),
    ):
        headers = {"Authorization": f"Bearer {token}"}
        async with server.http.get(f"{server.url}/api/sessions", headers=headers) as r:
            assert len((await r.json())["sessions"]) == visible
        async with server.http.get(f"{server.url}/api/sessions/{sid}", headers=headers) as r:
            assert r.status == (200 if visible else 404)


async def test_keyset_pagination_walks_every_session_once(server, clients):
    taxpayer = await clients(server, await server.taxpayer())
    for _ in range(5):
        joined = await taxpayer.call("queue:join", JOIN)
        assert (await taxpayer.call("queue:leave", {"ticket_id": joined["ticket_id"]}))["ok"]
    sup = await server.staff("boss", "supervisor")
    headers = {"Authorization": f"Bearer {sup}"}
    seen, before = [], None
    while True:
        params = {"limit": "2", **({"before": before} if before else {})}
        async with server.http.get(
            f"{server.url}/api/sessions", headers=headers, params=params
        ) as r:
            page = await r.json()
        seen += [s["id"] for s in page["sessions"]]
        assert all(s["outcome"] == "abandoned" for s in page["sessions"])
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == len(set(seen)) == 5


async def test_offer_expiry_reoffers_the_ticket_to_another_agent(server, clients):
    server.ctx.queue.engine.offer_timeout_s = 0.3
    first = await clients(server, await server.staff("first"))
    await first.call("agent:status", {"status": "available"})
    second = await clients(server, await server.staff("second"))
    await second.call("agent:status", {"status": "available"})
    taxpayer = await clients(server, await server.taxpayer())
    await taxpayer.call("queue:join", JOIN)
    offer = await first.wait_for("offer:new")
    revoked = await first.wait_for("offer:revoked")
    assert revoked == {"offer_id": offer["offer_id"], "reason": "expired"}
    late = await first.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert late["error"]["code"] == "offer_expired"
    second_offer = await second.wait_for("offer:new")
    assert (await second.call("offer:accept", {"offer_id": second_offer["offer_id"]}))["ok"]
    await taxpayer.wait_for("session:start")


async def test_rejecting_passes_the_ticket_on(server, clients):
    first = await clients(server, await server.staff("first"))
    await first.call("agent:status", {"status": "available"})
    second = await clients(server, await server.staff("second"))
    await second.call("agent:status", {"status": "available"})
    taxpayer = await clients(server, await server.taxpayer())
    await taxpayer.call("queue:join", JOIN)
    offer = await first.wait_for("offer:new")
    assert (await first.call("offer:reject", {"offer_id": offer["offer_id"]}))["ok"]
    await second.wait_for("offer:new")


async def test_queue_position_updates_when_the_one_ahead_leaves(server, clients):
    first = await clients(server, await server.taxpayer())
    second = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    a = await first.call("queue:join", JOIN)
    b = await second.call("queue:join", JOIN)
    assert (a["position"], b["position"]) == (1, 2)
    assert (await first.call("queue:join", JOIN))["error"]["code"] == "already_queued"
    await first.call("queue:leave", {"ticket_id": a["ticket_id"]})
    update = await second.wait_for("queue:update", lambda u: u["position"] == 1)
    assert update["ticket_id"] == b["ticket_id"]


@pytest.mark.parametrize("settings_overrides", [{"resume_grace_s": 0.3}])
async def test_a_dropped_taxpayer_ends_the_session_as_dropped(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    await taxpayer.close()
    states = lambda: [p["state"] for p in agent.received["session:peer"]]  # noqa: E731
    await poll_until(lambda: states() == ["reconnecting", "left"])
    end = await agent.wait_for("session:end")
    assert end["reason"] == "peer_lost"
    sup = await server.staff("boss", "supervisor")
    async with server.http.get(
        f"{server.url}/api/sessions/{a_start['session_id']}",
        headers={"Authorization": f"Bearer {sup}"},
    ) as r:
        assert (await r.json())["outcome"] == "dropped"


@pytest.mark.parametrize("settings_overrides", [{"queue_grace_s": 0.3}])
async def test_a_waiting_taxpayer_who_disconnects_is_abandoned_after_the_grace(server, clients):
    from vtax.review.records import Scope

    taxpayer = await clients(server, await server.taxpayer())
    joined = await taxpayer.call("queue:join", JOIN)
    await taxpayer.close()

    async def outcome():
        rows, _ = await server.ctx.records.list(Scope("supervisor", "x"), 10)
        row = next(r for r in rows if r["ticket_id"] == joined["ticket_id"])
        return row["outcome"] == "abandoned" and row

    row = await poll_until(outcome, timeout=10)
    assert row["end_reason"] == "disconnected" and row["wait_s"] >= 0.3


@pytest.mark.parametrize("role", ["taxpayer", "agent"])
async def test_an_outsider_cannot_signal_into_a_session(server, clients, role):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    if role == "taxpayer":
        outsider = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    else:
        outsider = await clients(server, await server.staff("intruder"))
    ack = await outsider.call(
        "rtc:signal", {"session_id": a_start["session_id"], "type": "candidate", "data": None}
    )
    assert ack["error"]["code"] == "not_in_session"
    end = await outsider.call("session:end", {"session_id": a_start["session_id"]})
    assert end["error"]["code"] == "not_in_session"
    assert taxpayer.received["rtc:signal"] == [] and agent.received["rtc:signal"] == []


async def test_the_agent_can_summarise_after_the_taxpayer_rated(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    assert (await agent.call("session:end", {"session_id": sid}))["ok"]
    await taxpayer.wait_for("session:end")
    assert (await taxpayer.call("session:rate", {"session_id": sid, "score": 5}))["ok"]
    summary = {"session_id": sid, "asked": "a", "handled": "h", "result": "resolved"}
    assert (await agent.call("session:summary", summary)) == {"ok": True, "version": 1}
    edit = await agent.call("session:summary", {**summary, "handled": "changed later"})
    assert edit["error"]["code"] == "invalid_state"


async def test_rating_a_live_session_is_refused(server, clients):
    _agent, taxpayer, a_start, _ = await start_session(server, clients)
    ack = await taxpayer.call("session:rate", {"session_id": a_start["session_id"], "score": 5})
    assert ack["error"]["code"] == "invalid_state"
