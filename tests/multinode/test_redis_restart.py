"""Redis restarted under two live nodes (its own redis-server with AOF, not the machine's):
what must survive survives, clients get error codes rather than hangs during the outage, and
the nodes recover without a restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from deploy.stack import http_status
from tests.conftest import Client
from tests.identity.numbers import uscc_n
from tests.multinode.conftest import free_port
from tests.multinode.test_two_nodes import JOIN, session_across, session_row, signed_in, tokens

pytestmark = [
    pytest.mark.multinode,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server"),
]


#: Longer than the suite's 3 s, so a loaded test machine does not miss heartbeats on its own.
NODE_TIMEOUT_S = 6


@dataclass
class OwnRedis:
    """A redis-server of the test's own, appendonly, restartable on the same port and folder."""

    dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.dir),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    "--save",
                    "",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True
                ).stdout.strip()
                == b"PONG"
            ):
                return self
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def forget(self) -> None:
        """Its data gone, as a Redis restarted without persistence (or a fresh replica)."""
        shutil.rmtree(self.dir / "appendonlydir", ignore_errors=True)

    def stop(self) -> None:
        """A clean shutdown (the AOF is flushed)."""
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True)
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path / "redis", free_port()).start()
    yield r
    r.stop()


def ready(url: str) -> int:
    return http_status(url + "/readyz", timeout=2)


async def until(check, within: float, what: str):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {within} s")


async def test_redis_restarted_mid_session(cluster, own_redis) -> None:
    """A session across two nodes and a waiting ticket; Redis shut down for longer than the
    node timeout, then started again on its AOF."""
    cluster.env["VTAX_REDIS_URL"] = own_redis.url
    cluster.env["VTAX_NODE_TIMEOUT_S"] = str(NODE_TIMEOUT_S)
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    waiting = await Client(a.url, await taxpayer_token_of(cluster, a, 1)).connect()
    late = await Client(b.url, await taxpayer_token_of(cluster, b, 2)).connect()
    try:
        queued = await waiting.call("queue:join", {**JOIN, "question": "waits through it"})
        assert queued["ok"], queued  # the only agent is busy: the ticket waits

        own_redis.stop()
        down_at = time.monotonic()
        # Not ready while Redis is away (the balancer stops sending new clients).
        await until(
            lambda: asyncio.to_thread(lambda: ready(a.url) == ready(b.url) == 503),
            within=5,
            what="both nodes not ready",
        )
        # Events that need Redis answer at once with a code, not a hang nor `internal`.
        for client, event, payload in (
            (taxpayer, "rtc:signal", {"session_id": sid, "type": "offer", "data": {"sdp": "x"}}),
            (late, "queue:join", {**JOIN, "question": "during the outage"}),
        ):
            t0 = time.monotonic()
            ack = await client.call(event, payload, timeout=10)
            assert not ack["ok"] and ack["error"]["code"] == "unavailable", (event, ack)
            assert time.monotonic() - t0 < 5, (event, time.monotonic() - t0)
        # Longer than VTAX_NODE_TIMEOUT_S: every node's heartbeat goes stale.
        await asyncio.sleep(max(0.0, NODE_TIMEOUT_S + 2 - (time.monotonic() - down_at)))
        own_redis.start()
        up_at = time.monotonic()
        await until(
            lambda: asyncio.to_thread(lambda: ready(a.url) == ready(b.url) == 200),
            within=10,
            what="both nodes ready again",
        )
        print(f"ready again {time.monotonic() - up_at:.2f} s after Redis came back")

        # The live session survived on both nodes (nobody was declared dead): a signal from
        # the agent (node a) reaches the taxpayer (node b), directly or, if b's subscription
        # was not back yet, by the replay after the session:resync b sends once it is.
        sent = await agent.call(
            "rtc:signal", {"session_id": sid, "type": "offer", "data": {"sdp": "after"}}
        )
        assert sent["ok"], sent

        async def delivered() -> str | None:
            if any(m["data"] == {"sdp": "after"} for m in taxpayer.received["rtc:signal"]):
                return "direct"
            if taxpayer.received["session:resync"]:
                resumed = await taxpayer.call("session:resume", {"session_id": sid, "last_seq": 0})
                assert resumed["ok"], resumed
                if any(m["data"] == {"sdp": "after"} for m in resumed["replay"]):
                    return "replayed after session:resync"
            return None

        print("the signal arrived:", await until(delivered, within=10, what="signal delivered"))
        for c in (agent, taxpayer):
            assert not c.received["session:end"], c.received["session:end"]

        # The waiting ticket survived (AOF): when the call ends, the agent is offered it.
        assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
        await agent.wait_for("session:end", timeout=10)
        offer = await agent.wait_for(
            "offer:new", lambda o: o["ticket"]["question"] == "waits through it", timeout=30
        )
        accepted = await agent.call("offer:accept", {"offer_id": offer["offer_id"]})
        assert accepted["ok"], accepted
        await waiting.wait_for("session:start", timeout=10)
        row = await session_row(b, boss, sid)
        assert row["outcome"] == "completed" and row["end_reason"] == "hangup", row

        # The late taxpayer retries and gets in the queue.
        again = await late.call("queue:join", {**JOIN, "question": "after the outage"})
        assert again["ok"], again
        # One line per outage, not a traceback per event and per loop.
        for node in (a, b):
            text = node.log.read_text()
            assert "Traceback" not in text, text[-3000:]
            assert "is silent" not in text, text[-3000:]
    finally:
        for c in (agent, taxpayer, waiting, late):
            await c.close()


async def test_redis_restarted_empty_the_nodes_reconcile_and_tell_everyone(
    cluster, own_redis
) -> None:
    """Redis comes back with nothing: the tickets and live sessions it held are gone. The
    nodes notice (the store's generation marker), close the records with reason state_lost
    (once, by one node), tell the people, register their connections again, and serve."""
    cluster.env["VTAX_REDIS_URL"] = own_redis.url
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    waiting = await Client(a.url, await taxpayer_token_of(cluster, a, 3)).connect()
    try:
        queued = await waiting.call("queue:join", {**JOIN, "question": "forgotten"})
        assert queued["ok"], queued
        ticket_id = queued["ticket_id"]

        own_redis.stop()
        own_redis.forget()
        own_redis.start()

        for c in (agent, taxpayer):
            ended = await c.wait_for("session:end", timeout=30)
            assert ended == {"session_id": sid, "reason": "state_lost", "ended_by": None}, ended
        left = await waiting.wait_for("queue:left", timeout=30)
        assert left == {"ticket_id": ticket_id, "reason": "state_lost"}, left
        status = await agent.wait_for(
            "agent:status", lambda m: m["reason"] == "state_lost", timeout=30
        )
        assert status["status"] == "offline", status

        row = await session_row(b, boss, sid)
        assert (row["outcome"], row["end_reason"]) == ("dropped", "state_lost"), row
        detail = await review_detail(b, boss, sid)
        assert [e["kind"] for e in detail["audit"]].count("ended") == 1, detail["audit"]
        listed = await session_list(a, boss)
        forgotten = [s for s in listed if s["question"] == "forgotten"]
        assert len(forgotten) == 1 and forgotten[0]["outcome"] == "abandoned", forgotten
        assert forgotten[0]["end_reason"] == "state_lost", forgotten

        # And the service goes on: the agent is available again, the taxpayer joins again.
        assert (await agent.call("agent:status", {"status": "available"}))["ok"]
        again = await waiting.call("queue:join", {**JOIN, "question": "again"})
        assert again["ok"], again
        offer = await agent.wait_for(
            "offer:new", lambda o: o["ticket"]["question"] == "again", timeout=10
        )
        assert (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
        start = await waiting.wait_for("session:start", timeout=10)
        assert start["session_id"] != sid
        for node in (a, b):
            assert "Traceback" not in node.log.read_text(), node.log.read_text()[-3000:]
    finally:
        for c in (agent, taxpayer, waiting):
            await c.close()


async def review_detail(node, boss: str, sid: str) -> dict:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{node.url}/api/review/sessions/{sid}", headers={"Authorization": f"Bearer {boss}"}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def session_list(node, boss: str) -> list[dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{node.url}/api/sessions?limit=50", headers={"Authorization": f"Bearer {boss}"}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return list((await r.json())["sessions"])


async def taxpayer_token_of(cluster, node, n: int) -> str:
    """The n-th enterprise's representative, signed in by SMS code on `node`."""
    async with aiohttp.ClientSession() as http:
        return await signed_in(cluster, node, http, uscc_n(n))
