"""An agent transfers a live session to another queue: the call ends `transferred`, the
taxpayer waits in the target queue with priority, and the next agent takes it up."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.test_loop import start_session


async def _supervisor_get(server, path):
    token = await server.staff(f"sup-{uuid.uuid4().hex[:6]}", "supervisor")
    async with server.http.get(
        server.url + path, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_a_transfer_hands_the_taxpayer_to_the_target_queue(server, clients):
    specialist = await clients(server, await server.staff("agent2", skills={"cross_border": 4}))
    assert (await specialist.call("agent:status", {"status": "available"}))["ok"]
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    first = a_start["session_id"]

    ack = await agent.call(
        "session:transfer",
        {"session_id": first, "category": "cross_border", "note": "needs a refund specialist"},
    )
    assert ack["ok"], ack
    second = ack["session_id"]
    assert second != first and ack["ticket_id"]

    for side in (agent, taxpayer):
        end = await side.wait_for("session:end")
        assert (end["session_id"], end["reason"]) == (first, "transferred")
    moved = await taxpayer.wait_for("queue:transferred")
    assert moved["from_session_id"] == first and moved["session_id"] == second
    assert (moved["category"], moved["note"]) == ("cross_border", "needs a refund specialist")

    offer = await specialist.wait_for("offer:new")
    assert offer["ticket"]["category"] == "cross_border"
    assert (await specialist.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
    started = await taxpayer.wait_for("session:start", lambda p: p["session_id"] == second)
    assert started["peer"]["display_name"] == "Agent2"
    # The first agent is free again (wrap-up is 0 in the tests) and no longer in a session.
    ack = await agent.call("rtc:signal", {"session_id": first, "type": "offer", "data": {}})
    assert ack["error"]["code"] == "not_in_session"

    old = await _supervisor_get(server, f"/api/review/sessions/{first}")
    new = await _supervisor_get(server, f"/api/review/sessions/{second}")
    assert old["session"]["outcome"] == "transferred"
    assert new["session"]["category"] == "cross_border"
    assert new["session"]["question"] == old["session"]["question"]
    out = [e for e in old["audit"] if e["kind"] == "transferred_out"]
    into = [e for e in new["audit"] if e["kind"] == "transferred_in"]
    assert (
        out
        and out[0]["data"]["to"] == second
        and out[0]["actor"]["id"] == old["session"]["agent"]["id"]
    )
    assert old["session"]["agent"]["username"] == "agent1"
    assert into and into[0]["data"]["from"] == first
    # The agent still writes the first session's summary, with the result `transferred`.
    ack = await agent.call(
        "session:summary",
        {"session_id": first, "asked": "refund", "handled": "sent on", "result": "transferred"},
    )
    assert ack["ok"], ack


async def test_a_transfer_is_the_session_agents_alone(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    ack = await taxpayer.call("session:transfer", {"session_id": sid, "category": "invoices"})
    assert ack["error"]["code"] == "forbidden"
    other = await clients(server, await server.staff("agent9"))
    ack = await other.call("session:transfer", {"session_id": sid, "category": "invoices"})
    assert ack["error"]["code"] == "not_in_session"
    for bad, code in [
        ({"session_id": sid, "category": "astrology"}, "unknown_category"),
        ({"session_id": sid, "category": "invoices", "language": "fr"}, "unknown_language"),
        ({"session_id": sid, "category": "invoices", "note": "x" * 501}, "invalid_payload"),
        ({"session_id": sid}, "invalid_payload"),
    ]:
        ack = await agent.call("session:transfer", bad)
        assert ack["error"]["code"] == code, (bad, ack)
    # Nothing happened to the call.
    ack = await agent.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {}})
    assert ack["ok"]
    assert taxpayer.received["session:end"] == [] and taxpayer.received["queue:transferred"] == []


@pytest.mark.parametrize(
    "settings_overrides", [{"queues_file": Path(__file__).parent / "data/queues-unstaffed.toml"}]
)
async def test_a_transfer_the_target_queue_refuses_leaves_the_call_as_it_was(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    ack = await agent.call("session:transfer", {"session_id": sid, "category": "cross_border"})
    assert ack["error"]["code"] == "no_agents", ack
    ack = await agent.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {}})
    assert ack["ok"]
    assert taxpayer.received["session:end"] == []
    # The refused attempt is on record as an abandoned (refused) session, not a lost one.
    listed = await _supervisor_get(server, "/api/sessions?outcome=abandoned")
    assert [s["category"] for s in listed["sessions"]] == ["cross_border"]
    # ... and not linked from the call, which was not transferred.
    old = await _supervisor_get(server, f"/api/review/sessions/{sid}")
    assert not [e for e in old["audit"] if e["kind"] == "transferred_out"]
