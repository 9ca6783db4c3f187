"""Two real nodes over the real Redis: a session across nodes, kill -9 and resume, drain."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from tests.conftest import USCC, Client, poll_until
from tests.signin import logged_texts, person_for, registry_csv, sms_sign_in

JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "invoice?"}
pytestmark = pytest.mark.multinode


async def tokens(cluster, node):
    cluster.cli(
        "user",
        "add",
        "agent1",
        "--role",
        "agent",
        "--skill",
        "invoices=4",
        "--language",
        "zh-CN",
        stdin="agent-password\n",
    )
    cluster.cli("user", "add", "boss", "--role", "supervisor", stdin="boss-password\n")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            node.url + "/api/auth/login", json={"username": "agent1", "password": "agent-password"}
        ) as r:
            agent = (await r.json())["token"]
        async with http.post(
            node.url + "/api/auth/login", json={"username": "boss", "password": "boss-password"}
        ) as r:
            boss = (await r.json())["token"]
        taxpayer = await signed_in(cluster, node, http)
    return agent, taxpayer, boss


async def signed_in(cluster, node, http, number: str = USCC) -> str:
    """A taxpayer's access token: the enterprise's representative registered with
    `vtax registry import`, then signed in by SMS code read from the nodes' logs."""
    person = person_for(number)
    path = cluster.tmp / f"registry-{number}.csv"
    path.write_text(registry_csv([person]), encoding="utf-8")
    cluster.cli("registry", "import", str(path))
    logs = [n.log for n in cluster.nodes]
    session = await sms_sign_in(http, node.url, person, lambda: logged_texts(logs, person.phone))
    return str(session["access_token"])


async def session_across(a, b, agent_token, taxpayer_token):
    """The agent on node a, the taxpayer on node b, in one session."""
    agent = await Client(a.url, agent_token).connect()
    taxpayer = await Client(b.url, taxpayer_token).connect()
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    joined = await taxpayer.call("queue:join", JOIN)
    assert joined["ok"], joined
    offer = await agent.wait_for("offer:new", timeout=10)
    accepted = await agent.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert accepted["ok"], accepted
    t_start = await taxpayer.wait_for("session:start", timeout=10)
    a_start = await agent.wait_for("session:start", timeout=10)
    return agent, taxpayer, a_start, t_start


async def session_row(node, boss, session_id):
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{node.url}/api/sessions/{session_id}", headers={"Authorization": f"Bearer {boss}"}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_a_session_across_two_nodes(cluster):
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    try:
        assert (
            await agent.call(
                "rtc:signal", {"session_id": sid, "type": "offer", "data": {"sdp": "from a"}}
            )
        )["ok"]
        assert (await taxpayer.wait_for("rtc:signal"))["data"] == {"sdp": "from a"}
        assert (
            await taxpayer.call(
                "rtc:signal", {"session_id": sid, "type": "answer", "data": {"sdp": "from b"}}
            )
        )["ok"]
        assert (await agent.wait_for("rtc:signal"))["data"] == {"sdp": "from b"}
        assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
        await agent.wait_for("session:end")
        assert (await taxpayer.call("session:rate", {"session_id": sid, "score": 5}))["ok"]
        row = await session_row(b, boss, sid)
        assert row["outcome"] == "completed" and row["rating"]["score"] == 5
    finally:
        await agent.close()
        await taxpayer.close()


async def test_kill_9_of_a_node_mid_session_and_resume_on_the_other(cluster):
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, t_start = await session_across(b, a, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    back = None
    try:
        await agent.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {"n": 1}})
        await taxpayer.wait_for("rtc:signal")
        a.kill(signal.SIGKILL)  # the taxpayer's node dies without a word
        await a.wait(10)
        await poll_until(lambda: not taxpayer.sio.connected, timeout=10)
        await agent.wait_for("session:peer", lambda p: p["state"] == "reconnecting", timeout=15)
        # While the taxpayer is away the agent keeps signalling; nothing is lost.
        await agent.call("rtc:signal", {"session_id": sid, "type": "candidate", "data": {"n": 2}})
        back = await Client(b.url, taxpayer_token).connect()
        resumed = await back.call("session:resume", {"session_id": sid, "last_seq": 1})
        assert resumed["ok"], resumed
        assert [m["data"]["n"] for m in resumed["replay"]] == [2]
        assert resumed["participant_id"] == t_start["participant_id"]
        await agent.wait_for("session:peer", lambda p: p["state"] == "back")
        assert (
            await back.call("rtc:signal", {"session_id": sid, "type": "answer", "data": {"n": 3}})
        )["ok"]
        assert (await agent.wait_for("rtc:signal"))["data"] == {"n": 3}
        assert (await agent.call("session:end", {"session_id": sid}))["ok"]
        await back.wait_for("session:end")
        assert (await back.call("session:rate", {"session_id": sid, "score": 4}))["ok"]
        row = await session_row(b, boss, sid)
        assert (row["outcome"], row["rating"]["score"]) == ("completed", 4)
        # The agent is served again: the queue on Redis survived the dead node.
        assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    finally:
        for c in (agent, taxpayer, back):
            if c is not None:
                await c.close()


async def test_a_participant_of_a_dead_node_who_never_returns_is_dropped(cluster):
    cluster.env["VTAX_RESUME_GRACE_S"] = "1"
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(b, a, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    try:
        # Stop the taxpayer's client from noticing anything first: freeze node a, then kill it.
        a.kill(signal.SIGSTOP)
        await asyncio.sleep(0.2)
        a.kill(signal.SIGKILL)
        end = await agent.wait_for("session:end", timeout=20)
        assert end["reason"] == "peer_lost"
        row = await session_row(b, boss, sid)
        assert row["outcome"] == "dropped"
    finally:
        await agent.close()
        await taxpayer.close()


async def test_sigterm_drains_within_a_bounded_time(cluster):
    a = cluster.node("a")
    _, taxpayer_token, _ = await tokens(cluster, a)
    taxpayer = await Client(a.url, taxpayer_token).connect()
    try:
        started = time.monotonic()
        a.kill(signal.SIGTERM)
        await taxpayer.wait_for("server:draining", timeout=5)
        assert await a.wait(15) == 0
        assert time.monotonic() - started < 2 + 3  # the drain timeout, and slack
    finally:
        await taxpayer.close()


async def test_a_transfer_across_nodes_reaches_an_agent_on_the_other_node(cluster):
    """Agent 1 on node a transfers the taxpayer (node b) to agent 2 on node b's queue side."""
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    cluster.cli(
        "user", "add", "agent2", "--role", "agent", "--skill", "cross_border=5",
        "--language", "zh-CN", stdin="agent2-password\n",
    )  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            b.url + "/api/auth/login", json={"username": "agent2", "password": "agent2-password"}
        ) as r,
    ):
        second_token = (await r.json())["token"]
    second = await Client(b.url, second_token).connect()
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    first = a_start["session_id"]
    try:
        assert (await second.call("agent:status", {"status": "available"}))["ok"]
        ack = await agent.call(
            "session:transfer", {"session_id": first, "category": "cross_border"}
        )
        assert ack["ok"], ack
        moved = await taxpayer.wait_for("queue:transferred", timeout=10)
        assert moved["session_id"] == ack["session_id"]
        end = await taxpayer.wait_for("session:end", timeout=10)
        assert end["reason"] == "transferred"
        offer = await second.wait_for("offer:new", timeout=10)
        assert (await second.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
        started = await taxpayer.wait_for(
            "session:start", lambda p: p["session_id"] == ack["session_id"], timeout=10
        )
        assert started["peer"]["display_name"]
        assert (await session_row(a, boss, first))["outcome"] == "transferred"
        assert (await session_row(b, boss, ack["session_id"]))["outcome"] == "live"
    finally:
        for client in (agent, taxpayer, second):
            await client.close()
