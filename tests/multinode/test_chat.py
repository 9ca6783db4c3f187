"""In-call chat across two real nodes over the real Redis and PostgreSQL: the agent on one
node, the taxpayer on the other; messages cross both ways in one order, and a taxpayer who
resumes on the agent's node gets what it missed."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import Client, poll_until
from tests.multinode.test_two_nodes import session_across, tokens

pytestmark = pytest.mark.multinode


def send(sid: str, client_id: str, text: str) -> dict[str, str]:
    return {"session_id": sid, "client_id": client_id, "text": text}


async def test_chat_across_two_nodes_and_a_resume_on_the_other(cluster):
    # generous waits: on a loaded machine a push across Redis has taken seconds
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    back = None
    try:
        for n in range(5):
            assert (await agent.call("chat:send", send(sid, f"a{n}", f"from a {n}")))["ok"]
            assert (await taxpayer.call("chat:send", send(sid, f"t{n}", f"from b {n}")))["ok"]
        await poll_until(lambda: len(taxpayer.received["chat:message"]) == 5, timeout=20)
        await poll_until(lambda: len(agent.received["chat:message"]) == 5, timeout=20)
        assert [m["seq"] for m in taxpayer.received["chat:message"]] == [1, 3, 5, 7, 9]
        assert [m["seq"] for m in agent.received["chat:message"]] == [2, 4, 6, 8, 10]
        # The taxpayer's page reloads onto node a (the agent's): resume, then the history.
        await taxpayer.close()
        await agent.wait_for("session:peer", lambda p: p["state"] == "reconnecting", timeout=20)
        assert (await agent.call("chat:send", send(sid, "a-missed", "while you were away")))["ok"]
        back = await Client(a.url, taxpayer_token).connect()
        assert (await back.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
        missed = await back.call("chat:history", {"session_id": sid, "after_seq": 10})
        assert [m["text"] for m in missed["messages"]] == ["while you were away"]
        # and the agent, now on the same node as the taxpayer, still hears it
        assert (await back.call("chat:send", send(sid, "t-back", "back")))["ok"]
        assert (await agent.wait_for("chat:message", lambda m: m["seq"] == 12, timeout=20))[
            "text"
        ] == "back"
        # The supervisor reads the whole conversation on node b.
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{b.url}/api/sessions/{sid}/messages", headers={"Authorization": f"Bearer {boss}"}
            ) as r,
        ):
            assert r.status == 200
            body = await r.json()
        assert [m["seq"] for m in body["messages"]] == list(range(1, 13))
    finally:
        for client in (agent, taxpayer, back):
            if client is not None:
                await client.close()
