"""The media-leg workers of a node that died without a word are forgotten when a node finds
it dead (vtax/app/calls.py reap -> vtax/app/monitor.py node_dead), so no job goes to them
again; the workers of the living nodes stay. Real Redis (the only store nodes share)."""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

from vtax.app.calls import Calls
from vtax.app.monitor import MonitorCalls
from vtax.config import Settings
from vtax.live.redis_store import RedisLiveStore
from vtax.media.monitors import LegWorker, RedisMonitorStore

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_a_dead_nodes_workers_are_forgotten() -> None:
    prefix = f"vtaxtest:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(REDIS_URL)
    settings = Settings(node_timeout_s=5.0)
    calls = Calls(settings, RedisLiveStore(redis, prefix), None, None, None, "alive")  # type: ignore[arg-type]
    monitors = RedisMonitorStore(redis, prefix)
    MonitorCalls(settings, calls, monitors, None, None)  # type: ignore[arg-type]
    try:
        await monitors.add_worker(LegWorker("w-dead", "leg-on-dead", 4, node="dead"))
        await monitors.add_worker(LegWorker("w-alive", "leg-on-alive", 4, node="alive"))
        now = time.time()
        await calls.store.node_heartbeat("dead", now - 60)
        await calls.reap(now - 10)  # this node's heartbeats go through from then on
        await calls.reap(now)
        assert [w.worker for w in await monitors.workers()] == ["leg-on-alive"]
        assert (await monitors.workers())[0].node == "alive"
    finally:
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await redis.aclose()
