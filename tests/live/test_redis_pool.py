"""A burst of commands larger than the Redis pool waits for a connection; it never fails.

redis-py 8 bounds `Redis.from_url`'s pool at 100 connections and raises `MaxConnectionsError`
on the 101st command in flight. A node with a few hundred clients hit that under load: joins
failed with `internal` and hang-ups left connection registrations behind. Every client the
node builds now sits on a blocking pool (vtax/redis_client.py)."""

from __future__ import annotations

import asyncio
import gc
import uuid

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError

from signaling.app import create_app
from signaling.context import CONTEXT
from vtax.config import Settings
from vtax.live.redis_store import RedisLiveStore
from vtax.queue.redis_store import RedisKV
from vtax.redis_client import connect

REDIS_URL = "redis://127.0.0.1:6379/0"


async def test_the_library_default_pool_refuses_a_burst_beyond_100():
    """The minimal reproduction of what the node hit (kept to notice if redis-py changes)."""
    redis = Redis.from_url(REDIS_URL)
    key = f"vtaxtest:{uuid.uuid4().hex}:empty"
    try:
        results = await asyncio.gather(
            *(redis.blpop([key], timeout=0.3) for _ in range(130)), return_exceptions=True
        )
    finally:
        await redis.aclose()
    assert any(isinstance(r, MaxConnectionsError) for r in results)


async def test_a_burst_through_the_live_store_waits_for_a_connection():
    redis = connect(REDIS_URL, max_connections=4)
    prefix = f"vtaxtest:{uuid.uuid4().hex[:8]}:"
    store = RedisLiveStore(redis, prefix)
    try:
        sids = [f"sid-{i}" for i in range(300)]
        await asyncio.gather(*(store.register_connection(s, "n1") for s in sids))
        nodes = await asyncio.gather(*(store.node_of(s) for s in sids))
        assert nodes == ["n1"] * 300
        await asyncio.gather(*(store.unregister_connection(s) for s in sids))
        assert await asyncio.gather(*(store.node_of(s) for s in sids[:10])) == [None] * 10
        assert len(redis.connection_pool._in_use_connections) == 0
    finally:
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await store.close()


async def test_queue_transactions_beyond_the_pool_size_all_commit():
    kv = RedisKV.from_url(REDIS_URL, f"vtaxtest:{uuid.uuid4().hex[:8]}:", max_connections=4)

    async def bump(tx, i):
        await tx.get(f"n{i}")
        tx.set(f"n{i}", str(i))

    try:
        await asyncio.gather(*(kv.run(lambda tx, i=i: bump(tx, i)) for i in range(200)))
        assert [await kv.get(f"n{i}") for i in range(200)] == [str(i) for i in range(200)]
    finally:
        await kv.delete_prefix()
        await kv.aclose()


@pytest.mark.parametrize("size", [4, 64])
async def test_the_node_builds_its_redis_clients_on_blocking_pools(tmp_path, size):
    settings = Settings(
        data_dir=tmp_path,
        redis_url=REDIS_URL,
        redis_prefix=f"vtaxtest:{uuid.uuid4().hex[:8]}:",
        redis_max_connections=size,
    )
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    ctx = app[CONTEXT]
    try:
        pool = ctx.redis.connection_pool
        assert pool.max_connections == size and hasattr(pool, "timeout")
        await asyncio.gather(*(ctx.redis.get(f"{settings.redis_prefix}x") for _ in range(150)))
    finally:
        await server.close()
        gc.collect()  # a connection left open would warn (an error in the tests) here
