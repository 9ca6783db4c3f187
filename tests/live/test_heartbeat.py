"""The node's heartbeat goes on while its reaper is busy (vtax/app/calls.py).

A reap that takes long (the state-loss hooks closing records on a loaded machine) once made
the other node judge this one silent, forget the connections it had just registered again,
and fail the next offer:accept (tests/multinode/test_redis_restart.py in a clean-clone run)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from vtax.app.calls import Calls
from vtax.config import Settings
from vtax.live.redis_store import RedisLiveStore

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_a_stuck_reap_does_not_stop_the_heartbeat() -> None:
    prefix = f"vtaxtest:{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(REDIS_URL)
    store = RedisLiveStore(redis, prefix)
    stuck = asyncio.Event()

    async def slow_claim(now: float) -> list[Any]:
        stuck.set()
        await asyncio.sleep(3600)  # the reap never finishes
        return []

    store.claim_expired = slow_claim  # type: ignore[method-assign]
    calls = Calls(Settings(node_timeout_s=1.0), store, None, None, None, "n1")  # type: ignore[arg-type]
    watcher = RedisLiveStore(redis, prefix)
    try:
        calls.start_background()
        await asyncio.wait_for(stuck.wait(), 5)
        await asyncio.sleep(2.5)  # longer than the node timeout, with the reaper stuck
        assert await watcher.claim_dead_nodes(time.time(), 1.0) == []
    finally:
        await calls.close()
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await redis.aclose()
