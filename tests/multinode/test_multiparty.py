"""Three people in one call over two real nodes: the invitee on the other node than the agent
who invites, signals across nodes, kill -9 of the node holding the taxpayer and the invitee
(both resume on the survivor), then a warm transfer."""

from __future__ import annotations

import signal

import aiohttp
import pytest

from tests.conftest import Client, poll_until
from tests.multinode.test_two_nodes import session_across, session_row, tokens

pytestmark = pytest.mark.multinode


async def login(node, username: str, password: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            node.url + "/api/auth/login", json={"username": username, "password": password}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


async def test_an_invitee_on_another_node_survives_kill_9_and_takes_over(cluster):
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    cluster.cli(
        "user", "add", "lingua", "--role", "agent", "--skill", "invoices=1",
        "--language", "yue", "--language", "zh-CN", stdin="lingua-password\n",
    )  # fmt: skip
    lingua_token = await login(b, "lingua", "lingua-password")
    lingua = await Client(b.url, lingua_token).connect()
    # The agent on node a; the taxpayer and the interpreter on node b.
    agent, taxpayer, a_start, t_start = await session_across(a, b, agent_token, taxpayer_token)
    sid, tpid, apid = a_start["session_id"], t_start["participant_id"], a_start["participant_id"]
    clients = [agent, taxpayer, lingua]
    try:
        assert (await lingua.call("agent:status", {"status": "available"}))["ok"]
        invited = await agent.call("session:invite", {"session_id": sid, "language": "yue"})
        assert invited["ok"], invited
        offer = await lingua.wait_for("invite:new", timeout=10)
        joined = await lingua.call("invite:accept", {"invite_id": offer["invite_id"]})
        assert joined["ok"], joined
        lpid = joined["participant_id"]
        await agent.wait_for("invite:update", lambda m: m["state"] == "accepted", timeout=10)
        await agent.wait_for("session:roster", lambda m: len(m["participants"]) == 3, timeout=10)
        # Agent (node a) -> interpreter (node b) and back.
        ack = await agent.call(
            "rtc:signal", {"session_id": sid, "to": lpid, "type": "offer", "data": {"n": 1}}
        )
        assert ack["ok"], ack
        assert (await lingua.wait_for("rtc:signal", timeout=10))["from"] == apid
        ack = await lingua.call(
            "rtc:signal", {"session_id": sid, "to": apid, "type": "answer", "data": {"n": 2}}
        )
        assert ack["ok"], ack
        await agent.wait_for("rtc:signal", lambda m: m["from"] == lpid, timeout=10)

        b.kill(signal.SIGKILL)  # the node of the taxpayer and the interpreter dies
        await b.wait(10)
        for gone in (tpid, lpid):
            await agent.wait_for(
                "session:peer",
                lambda m, g=gone: m["participant_id"] == g and m["state"] == "reconnecting",
                timeout=15,
            )
        await agent.call(
            "rtc:signal", {"session_id": sid, "to": lpid, "type": "candidate", "data": {"n": 3}}
        )
        taxpayer2 = await Client(a.url, taxpayer_token).connect()
        lingua2 = await Client(a.url, lingua_token).connect()
        clients += [taxpayer2, lingua2]
        resumed = await lingua2.call("session:resume", {"session_id": sid, "last_seq": 1})
        assert resumed["ok"], resumed
        assert resumed["participant_id"] == lpid
        assert [m["data"]["n"] for m in resumed["replay"]] == [3]
        assert (await taxpayer2.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
        await poll_until(
            lambda: any(
                len(m["participants"]) == 3
                and all(p["state"] == "connected" for p in m["participants"])
                for m in agent.received["session:roster"]
            ),
            timeout=10,
        )

        # Warm transfer on the survivor: the interpreter owns the session, the agent leaves.
        handed = await agent.call("session:handover", {"session_id": sid, "to": lpid})
        assert handed["ok"], handed
        await taxpayer2.wait_for("session:roster", lambda m: m["owner"] == lpid, timeout=10)
        assert (await taxpayer2.call("rtc:signal", {"session_id": sid, "type": "offer"}))["ok"]
        await lingua2.wait_for("rtc:signal", lambda m: m["from"] == tpid, timeout=10)
        assert (await lingua2.call("session:end", {"session_id": sid}))["ok"]
        await taxpayer2.wait_for("session:end", timeout=10)
        row = await session_row(a, boss, sid)
        assert row["outcome"] == "completed"
        assert row["agent"]["username"] == "lingua"
    finally:
        for client in clients:
            await client.close()
