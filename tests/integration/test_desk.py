"""The agent desk: the agent's own figures today, and the earlier sessions of the taxpayer
they are serving now (for that agent alone)."""

from __future__ import annotations

from tests.integration.test_loop import start_session


async def get(server, path, token):
    async with server.http.get(
        server.url + path, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status, await r.json()


async def test_the_agent_sees_the_taxpayers_earlier_sessions_while_serving_them(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    first = a_start["session_id"]
    status, history = await get(server, f"/api/desk/sessions/{first}/history", agent.token)
    assert status == 200 and history["sessions"] == [] and history["open_follow_ups"] == 0
    assert (await agent.call("session:end", {"session_id": first}))["ok"]
    summary = {
        "session_id": first,
        "asked": "red-letter invoice",
        "handled": "explained",
        "result": "follow_up",
        "follow_up_due": "2030-01-31",
    }
    assert (await agent.call("session:summary", summary))["ok"]
    await agent.wait_for("agent:status", lambda s: s["status"] == "available")

    joined = await taxpayer.call(
        "queue:join",
        {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "again"},
    )
    assert joined["ok"], joined
    offer = await agent.wait_for("offer:new", lambda o: o["ticket"]["question"] == "again")
    second = (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["session_id"]
    status, history = await get(server, f"/api/desk/sessions/{second}/history", agent.token)
    assert status == 200
    assert [s["id"] for s in history["sessions"]] == [first]
    assert history["open_follow_ups"] == 1

    # Nobody else learns anything about it: another agent, an ended session, a taxpayer.
    other = await server.staff("agent2")
    assert (await get(server, f"/api/desk/sessions/{second}/history", other))[0] == 404
    assert (await get(server, f"/api/desk/sessions/{first}/history", agent.token))[0] == 404
    assert (await get(server, f"/api/desk/sessions/{second}/history", taxpayer.token))[0] == 403

    status, today = await get(server, "/api/desk/today", agent.token)
    assert status == 200 and today["timezone"] == "Asia/Shanghai"
    assert today["answered"] == 2 and today["completed"] == 1
    assert today["follow_ups_open"] == 1 and today["summaries_pending"] == 0
    status, theirs = await get(server, "/api/desk/today", other)
    assert status == 200 and theirs["answered"] == 0
