"""Two nodes (two apps in this process) over one Redis prefix: what one node does reaches
clients on the other, timers fire once, and a taxpayer can rejoin on the other node."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from signaling.app import create_app
from tests.conftest import RESIDENT_ID, RunningServer, test_settings
from tests.queue.conftest import REDIS_URL, redis_kv
from tests.queue.test_socketio import FAST, JOIN


@pytest.fixture
async def nodes(tmp_path: Any) -> AsyncIterator[list[RunningServer]]:
    prefix = f"vtax-2n-{uuid.uuid4().hex[:8]}:"
    url = f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"
    runners: list[web.AppRunner] = []
    out: list[RunningServer] = []
    async with aiohttp.ClientSession() as http:
        try:
            for i in range(2):
                settings = test_settings(
                    url, tmp_path, redis_url=REDIS_URL, redis_prefix=prefix, **FAST
                )
                app = create_app(settings, migrate_on_start=i == 0)
                runner = web.AppRunner(app)
                await runner.setup()
                runners.append(runner)
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                out.append(RunningServer(f"http://127.0.0.1:{runner.addresses[0][1]}", app, http))
            yield out
        finally:
            for runner in runners:
                await asyncio.wait_for(runner.cleanup(), 20)
            for node in out:
                await asyncio.wait_for(close_socketio_manager(node.ctx.hub.sio.manager), 5)
            # Something in a node's shutdown (not the queue: its engine closes its client)
            # drops a Redis connection unclosed; collect it here, under this module's filter,
            # rather than in whatever test runs next.
            gc.collect()
            kv = await redis_kv(prefix)
            await kv.delete_prefix()
            await kv.client.aclose()


async def close_socketio_manager(manager: Any) -> None:
    """python-socketio leaves its Redis pub/sub listener and connections open at shutdown."""
    listener = getattr(manager, "thread", None)
    if listener is not None:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
    for name in ("pubsub", "redis"):
        conn = getattr(manager, name, None)
        if conn is not None:
            await conn.aclose()


async def test_offers_cross_nodes_and_an_expiry_fires_once(nodes, clients):
    a, b = nodes
    agent = await clients(b, await b.staff("agent1"))
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    taxpayer = await clients(a, await a.taxpayer())
    joined = await taxpayer.call("queue:join", JOIN)
    assert joined["ok"] and joined["eta_s"] == 0.0
    first = await agent.wait_for("offer:new")
    assert first["ticket"]["ticket_id"] == joined["ticket_id"]
    await agent.wait_for("offer:revoked", lambda r: r["offer_id"] == first["offer_id"])
    second = await agent.wait_for("offer:new", lambda o: o["offer_id"] != first["offer_id"])
    # accept at once (the offer lives 0.4 s: a loaded machine ran out of it while the test
    # slept first), then give a second firing of the first offer's timer time to show up
    accepted = await agent.call("offer:accept", {"offer_id": second["offer_id"]})
    assert accepted["ok"], accepted
    await asyncio.sleep(0.3)
    expired = [r for r in agent.received["offer:revoked"] if r["offer_id"] == first["offer_id"]]
    assert expired == [{"offer_id": first["offer_id"], "reason": "expired"}]  # once
    start = await taxpayer.wait_for("session:start")
    assert start["session_id"] == accepted["session_id"]
    stats = await b.ctx.queue.engine.live_stats()
    assert stats["queues"]["invoices"]["offers"]["expired"] == 1


async def test_a_taxpayer_rejoins_on_the_other_node_and_updates_follow(nodes, clients):
    a, b = nodes
    token = await a.taxpayer()
    first = await clients(a, token)
    second = await clients(b, await b.taxpayer(RESIDENT_ID, "resident_id"))
    joined = await first.call("queue:join", JOIN)
    assert (await second.call("queue:join", JOIN))["position"] == 2
    await first.close()
    again = await clients(b, token)  # back, on the other node
    back = await again.call("queue:rejoin", {"ticket_id": joined["ticket_id"]})
    assert back["ok"] and back["position"] == 1
    assert (await again.call("queue:leave", {"ticket_id": joined["ticket_id"]}))["ok"]
    left = await again.wait_for("queue:left")
    assert left == {"ticket_id": joined["ticket_id"], "reason": "left"}
    update = await second.wait_for("queue:update", lambda u: u["position"] == 1, timeout=3)
    assert update["eta_s"] == 150.0
