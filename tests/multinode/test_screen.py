"""Screen share, the pointer and call-quality samples across two real nodes over the real
Redis and PostgreSQL: the agent on one node, the taxpayer on the other; the share state and the
pointer cross both ways to the other side only and go on after the taxpayer resumes on the
agent's node, and the samples sent to either node end in one summary of the record."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import Client, poll_until
from tests.integration.test_screen_quality import sample
from tests.multinode.test_two_nodes import session_across, tokens

pytestmark = pytest.mark.multinode


async def test_screen_pointer_and_quality_across_two_nodes(cluster):
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, t_start = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    back = None
    try:
        share = {"session_id": sid, "sharing": True, "surface": "monitor"}
        assert (await agent.call("screen:share", share)) == {"ok": True}
        state = await taxpayer.wait_for("screen:state", timeout=20)
        assert (state["role"], state["sharing"], state["surface"]) == ("agent", True, "monitor")
        assert state["participant_id"] == a_start["participant_id"]
        point = {"session_id": sid, "x": 0.5, "y": 0.125}
        assert (await taxpayer.call("screen:pointer", point)) == {"ok": True}
        pointed = await agent.wait_for("screen:pointer", timeout=20)
        assert (pointed["x"], pointed["y"], pointed["kind"]) == (0.5, 0.125, "point")
        assert pointed["participant_id"] == t_start["participant_id"]
        assert not agent.received["screen:state"] and not taxpayer.received["screen:pointer"]

        # Samples from both sides, each to its own node.
        for who in (agent, taxpayer, agent, taxpayer):
            ack = await who.call("call:quality", {"session_id": sid, "sample": sample()})
            assert ack["ok"], ack

        # The taxpayer's page reloads onto the agent's node; the pointer and the share state go
        # on from there (a page re-sends its own share after a resume: docs/protocol.md).
        await taxpayer.close()
        back = await Client(a.url, taxpayer_token).connect()
        assert (await back.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
        assert (await back.call("screen:pointer", {**point, "kind": "clear"}))["ok"]
        await agent.wait_for("screen:pointer", lambda p: p["kind"] == "clear", timeout=20)
        assert (await agent.call("screen:share", {"session_id": sid, "sharing": False}))["ok"]
        stopped = await back.wait_for("screen:state", lambda s: not s["sharing"], timeout=20)
        assert stopped["role"] == "agent"

        assert (await back.call("session:end", {"session_id": sid}))["ok"]
        headers = {"Authorization": f"Bearer {boss}"}

        async def summary() -> dict | None:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{b.url}/api/review/sessions/{sid}", headers=headers) as r,
            ):
                body = await r.json()
            q = body.get("call_quality")
            return q if q and q["samples"] == 4 else None

        q = await poll_until(summary, timeout=20)
        assert q["by_role"] == {"agent": 2, "taxpayer": 2}, q
    finally:
        for client in (agent, taxpayer, back):
            if client is not None:
                await client.close()
