"""The `RecordingJobs` contract, run on both implementations: in memory, and on the real Redis
with a key prefix of its own. A clock the test moves drives the leases."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from vtax.recording.jobs import (
    MemoryRecordingJobs,
    RecordingJob,
    RecordingJobs,
    RecordingState,
    RedisRecordingJobs,
    jobs_key,
    leases_key,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
TTL_S = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def jobs(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RecordingJobs]:
    if request.param == "memory":
        yield MemoryRecordingJobs(job_ttl_s=TTL_S, clock=clock)
        return
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - the machine runs Redis (DESIGN.md)
        await client.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"vtaxtest-jobs-{secrets.token_hex(4)}:"
    try:
        yield RedisRecordingJobs(client, prefix, job_ttl_s=TTL_S, clock=clock)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def recorded(jobs: RecordingJobs, clock: FakeClock, session_id: str) -> RecordingJob:
    """A session whose taxpayer consented: its state names the job, which is queued."""
    job = RecordingJob(
        session_id=session_id,
        started_at="2026-12-03T06:00:00+00:00",
        consent={"at": "2026-12-03T06:00:01+00:00", "taxpayer_id": "tp-1"},
        ice_servers=[{"urls": ["stun:stun.example.org"]}],
        expires_at=clock.now + TTL_S,
    )
    await jobs.put(RecordingState(session_id=session_id, consent=True, job=job))
    await jobs.push(job)
    return job


async def test_states_are_kept_as_copies_and_deleted(jobs: RecordingJobs):
    assert await jobs.get("s-1") is None
    state = RecordingState(session_id="s-1", consent=True, recorder_sid="sid-1")
    await jobs.put(state)
    got = await jobs.get("s-1")
    assert got == state
    assert got is not None
    got.consent = False  # changing a copy changes nothing stored
    assert (await jobs.get("s-1")) == state
    assert await jobs.delete("s-1") == state
    assert await jobs.get("s-1") is None
    assert await jobs.delete("s-1") is None


async def test_jobs_are_taken_oldest_first_and_once(jobs: RecordingJobs, clock: FakeClock):
    first = await recorded(jobs, clock, "s-1")
    second = await recorded(jobs, clock, "s-2")
    assert await jobs.backlog() == 2
    taken = [await jobs.take(lease_s=30), await jobs.take(lease_s=30)]
    assert taken == [first, second]
    assert await jobs.backlog() == 0
    assert await jobs.take(lease_s=30) is None


async def test_concurrent_takers_share_the_jobs_without_a_double(
    jobs: RecordingJobs, clock: FakeClock
):
    queued = {(await recorded(jobs, clock, f"s-{i}")).job_id for i in range(12)}
    results = await asyncio.gather(*(jobs.take(lease_s=30) for _ in range(20)))
    got = [j.job_id for j in results if j is not None]
    assert sorted(got) == sorted(queued)


async def test_a_job_not_settled_comes_back_after_its_lease(jobs: RecordingJobs, clock: FakeClock):
    """A worker that took a job and died before joining: after the lease the job is taken
    again, first, with a fresh expiry; once settled it never comes back."""
    job = await recorded(jobs, clock, "s-1")
    other = await recorded(jobs, clock, "s-2")
    assert await jobs.take(lease_s=30) == job
    clock.now += 29
    assert await jobs.take(lease_s=30) == other  # still leased: not handed out twice
    assert await jobs.take(lease_s=30) is None
    clock.now += 2  # the first lease is over; the second (taken at +29) is not
    again = await jobs.take(lease_s=30)
    assert again is not None and again.job_id == job.job_id
    assert again.expires_at == pytest.approx(clock.now + TTL_S)
    await jobs.settle(again.job_id)
    clock.now += 31  # now the second lease is over too; the first was settled
    back = await jobs.take(lease_s=30)
    assert back is not None and back.job_id == other.job_id
    await jobs.settle(back.job_id)
    clock.now += 1000
    assert await jobs.take(lease_s=30) is None


async def test_a_stale_job_is_never_handed_out(jobs: RecordingJobs, clock: FakeClock):
    replaced = await recorded(jobs, clock, "s-1")
    current = await recorded(jobs, clock, "s-1")  # re-dispatched: the state names this one
    joined = await recorded(jobs, clock, "s-2")
    state = await jobs.get("s-2")
    assert state is not None
    state.recorder_participant = "p-rec"  # a recorder already joined
    await jobs.put(state)
    await recorded(jobs, clock, "s-3")
    await jobs.delete("s-3")  # the session ended
    refused = await recorded(jobs, clock, "s-4")
    await jobs.put(RecordingState(session_id="s-4", consent=False))
    assert replaced.job_id != current.job_id and joined and refused
    assert await jobs.take(lease_s=30) == current
    assert await jobs.take(lease_s=30) is None


async def test_an_expired_job_is_dropped(jobs: RecordingJobs, clock: FakeClock):
    await recorded(jobs, clock, "s-1")
    clock.now += TTL_S + 1
    assert await jobs.take(lease_s=30) is None


async def test_drop_forgets_queued_and_leased_jobs_of_a_session(
    jobs: RecordingJobs, clock: FakeClock
):
    a = await recorded(jobs, clock, "s-1")
    await recorded(jobs, clock, "s-2")
    b = await recorded(jobs, clock, "s-1")
    await jobs.put(RecordingState(session_id="s-1", consent=True, job=b))
    assert a.job_id != b.job_id
    await jobs.drop("s-2")
    taken = await jobs.take(lease_s=30)
    assert taken == b  # a was stale (skipped), s-2 dropped
    await jobs.drop("s-1")  # the leased one too
    clock.now += 31
    assert await jobs.take(lease_s=30) is None


async def test_take_waits_for_a_job(jobs: RecordingJobs, clock: FakeClock):
    clock.now = time.time()

    async def later() -> None:
        await asyncio.sleep(0.2)
        await recorded(jobs, clock, "s-1")

    pushing = asyncio.ensure_future(later())
    job = await jobs.take(lease_s=30, timeout_s=3.0)
    await pushing
    assert job is not None and job.session_id == "s-1"


async def test_redis_keys_after_a_take_and_settle(clock: FakeClock):
    """On Redis a taken job sits in the leases until it is settled (the worker joined)."""
    client = Redis.from_url(REDIS_URL)
    prefix = f"vtaxtest-jobs-{secrets.token_hex(4)}:"
    jobs = RedisRecordingJobs(client, prefix, job_ttl_s=TTL_S, clock=clock)
    try:
        job = await recorded(jobs, clock, "s-1")
        assert await client.llen(jobs_key(prefix)) == 1
        assert await jobs.take(lease_s=30) == job
        assert await client.llen(jobs_key(prefix)) == 0
        assert await client.zscore(leases_key(prefix), job.job_id) == pytest.approx(clock.now + 30)
        await jobs.settle(job.job_id)
        assert await client.zcard(leases_key(prefix)) == 0
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
