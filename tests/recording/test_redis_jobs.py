"""Scaled out: recording jobs go through Redis; with two workers waiting, a job is taken by
exactly one of them, and the recording state is shared through Redis. A worker that dies
between taking a job and joining does not lose it (the job is taken with a lease)."""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import poll_until
from tests.recording.conftest import start_session
from vtax.recording.jobs import RedisRecordingJobs, jobs_key
from vtax.recording.worker import RecorderWorker

REDIS_URL = "redis://127.0.0.1:6379/0"
PREFIX = f"vtaxtest-{secrets.token_hex(4)}:"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - the machine runs Redis (DESIGN.md)
        await client.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield client
    keys = [k async for k in client.scan_iter(match=f"{PREFIX}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def settings_overrides(redis: Redis) -> dict[str, Any]:
    return {"redis_url": REDIS_URL, "redis_prefix": PREFIX}


@pytest.fixture
def collect_leaks() -> Iterator[None]:
    """Collect garbage inside this test: a Redis connection left open by the node or the
    workers would warn here (an error in the tests), not at the end of the session."""
    yield
    gc.collect()


async def test_a_job_is_taken_by_one_worker(collect_leaks, server, clients, redis):
    stop = asyncio.Event()
    workers = [
        RecorderWorker(server.ctx.settings, server.url, capacity=2, use_redis=True)
        for _ in range(2)
    ]
    tasks = [asyncio.ensure_future(w.run(stop, prune_schedule=False)) for w in workers]
    try:
        taxpayer, _, t_start, _ = await start_session(server, clients)
        session_id = t_start["session_id"]
        ack = await taxpayer.call("session:consent", {"session_id": session_id, "recording": True})
        assert ack["ok"], ack
        await taxpayer.wait_for(
            "session:participant", lambda m: m["role"] == "recorder", timeout=10
        )
        await asyncio.sleep(1.5)  # time for a second claim, if the job could be taken twice
        holders = [w for w in workers if session_id in w.sessions]
        assert len(holders) == 1
        assert len(taxpayer.received["session:participant"]) == 1
        assert await redis.llen(jobs_key(PREFIX)) == 0
        assert await redis.exists(f"{PREFIX}recording:state:{session_id}")
        assert (await taxpayer.call("session:end", {"session_id": session_id}))["ok"]
        await poll_until(lambda: not holders[0].sessions, 10)
        assert not await redis.exists(f"{PREFIX}recording:state:{session_id}")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


async def test_a_job_taken_by_a_worker_that_died_goes_to_another(
    collect_leaks, server, clients, redis
):
    taxpayer, _, t_start, _ = await start_session(server, clients)
    session_id = t_start["session_id"]
    ack = await taxpayer.call("session:consent", {"session_id": session_id, "recording": True})
    assert ack["ok"], ack
    # A worker takes the job and dies before it joins (it never settles, never joins).
    dead = RedisRecordingJobs(redis, PREFIX, job_ttl_s=server.ctx.settings.recording_job_ttl_s)
    taken = await dead.take(lease_s=1.0, timeout_s=5.0)
    assert taken is not None and taken.session_id == session_id
    assert await redis.llen(jobs_key(PREFIX)) == 0
    stop = asyncio.Event()
    worker = RecorderWorker(server.ctx.settings, server.url, capacity=2, use_redis=True)
    task = asyncio.ensure_future(worker.run(stop, prune_schedule=False))
    try:
        joined = await taxpayer.wait_for(
            "session:participant", lambda m: m["role"] == "recorder", timeout=15
        )
        assert joined["role"] == "recorder"
        assert session_id in worker.sessions
        assert worker.sessions[session_id].job.job_id == taken.job_id
        assert await redis.zcard(f"{PREFIX}recording:leases") == 0  # the join settled it
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
