"""Recording jobs and recording states: what a signaling node asks a recorder worker to do, how
it gets there, and what each live session's recording is doing.

`RecordingJobs` is the one interface; the caller chooses an implementation once:

- `MemoryRecordingJobs` (the embedded default): one node. The node hands a job over Socket.IO
  (`recording:job`) to its connected worker with the most free capacity; a job no worker can
  take yet waits here until a worker says hello.
- `RedisRecordingJobs` (VTAX_REDIS_URL): states are shared by the nodes (the node that takes
  the consent and the node the recorder joins through agree), and jobs wait on a Redis list
  that idle workers take from. A job is taken WITH A LEASE, as the queue's timers are: taking
  moves it atomically from the list to a set of leases with a deadline; the node that lets the
  worker join settles it. A worker that dies between taking a job and joining does not lose
  it: once the lease has expired, the next `take` (by any worker) puts it back at the head of
  the list, with a fresh expiry.

`take` only hands out a job that is still current (its session's state names it, consent
stands, no recorder has joined) and not expired; others are dropped on the way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

Clock = Callable[[], float]
STATE_TTL_S = 86400  # a recording state expires a day after its last write (Redis)
POLL_S = 0.1  # how often a waiting `take` looks again (Redis)


# Redis keys (all of them; one module, one comment on each shape). `p` is VTAX_REDIS_PREFIX.
def jobs_key(p: str) -> str:
    """LIST of RecordingJob JSON: nodes LPUSH, workers take from the right (oldest first)."""
    return f"{p}recording:jobs"


def leases_key(p: str) -> str:
    """ZSET job_id -> lease deadline (unix time) of the jobs taken and not yet settled."""
    return f"{p}recording:leases"


def leased_key(p: str) -> str:
    """HASH job_id -> RecordingJob JSON of the jobs under lease (to put back on expiry)."""
    return f"{p}recording:leased"


def state_key(p: str, session_id: str) -> str:
    """STRING, JSON of a live session's recording state (consent, current job, recorder),
    shared by the nodes; expires a day after its last write."""
    return f"{p}recording:state:{session_id}"


class RecordingJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(default_factory=lambda: "j-" + uuid.uuid4().hex[:16])
    session_id: str
    node_url: str = ""  # the signaling node that holds the live session ("" = the one I'm on)
    started_at: str  # ISO time the session started (names the yyyy/mm folder)
    consent: dict[str, str] = Field(default_factory=dict)  # {at, taxpayer_id}
    ice_servers: list[dict[str, Any]] = Field(default_factory=list)
    expires_at: float = 0.0  # unix time; an unclaimed job after this is dropped

    def expired(self, now: float | None = None) -> bool:
        return bool(self.expires_at) and (now or time.time()) > self.expires_at


class RecordingState(BaseModel):
    """What one live session's recording is doing."""

    session_id: str
    consent: bool | None = None
    job: RecordingJob | None = None
    recorder_sid: str | None = None
    recorder_participant: str | None = None


def is_current(job: RecordingJob, state: RecordingState | None, now: float) -> bool:
    """The job is the one its session's recording waits for, and a worker may still take it."""
    return (
        state is not None
        and bool(state.consent)
        and state.job is not None
        and state.job.job_id == job.job_id
        and state.recorder_participant is None
        and not job.expired(now)
    )


class RecordingJobs(Protocol):
    """Recording states and the jobs that wait for a worker."""

    @property
    def shared(self) -> bool:
        """True when workers take jobs themselves (`take`) and nodes share the states; False
        when the node hands jobs to its own connected workers."""
        ...

    async def get(self, session_id: str) -> RecordingState | None:
        """The session's recording state (a copy: change it, then `put` it)."""
        ...

    async def put(self, state: RecordingState) -> None: ...

    async def delete(self, session_id: str) -> RecordingState | None:
        """Forget the session's state; return what it was."""
        ...

    async def push(self, job: RecordingJob) -> None:
        """Queue a job for the next worker that takes one."""
        ...

    async def take(self, *, lease_s: float, timeout_s: float = 0.0) -> RecordingJob | None:
        """The oldest current job, leased for `lease_s`: unless `settle`d by then, it comes
        back to the queue. Waits up to `timeout_s` for one; None if none came."""
        ...

    async def settle(self, job_id: str) -> None:
        """A taken job is done with (its worker joined, or it was handed on): end its lease."""
        ...

    async def drop(self, session_id: str) -> None:
        """Forget every queued or leased job of the session."""
        ...

    async def backlog(self) -> int:
        """Jobs waiting for a worker (stale ones included until a worker skips them): the
        recorder backlog /metrics exports."""
        ...


class MemoryRecordingJobs:
    """In this process (the embedded default)."""

    shared = False

    def __init__(self, *, job_ttl_s: float = 60.0, clock: Clock = time.time) -> None:
        self.job_ttl_s, self.clock = job_ttl_s, clock
        self.states: dict[str, RecordingState] = {}
        self.queued: deque[RecordingJob] = deque()
        self.leased: dict[str, tuple[float, RecordingJob]] = {}  # job_id -> (deadline, job)

    async def get(self, session_id: str) -> RecordingState | None:
        state = self.states.get(session_id)
        return state.model_copy(deep=True) if state else None

    async def put(self, state: RecordingState) -> None:
        self.states[state.session_id] = state.model_copy(deep=True)

    async def delete(self, session_id: str) -> RecordingState | None:
        state = self.states.pop(session_id, None)
        return state.model_copy(deep=True) if state else None

    async def push(self, job: RecordingJob) -> None:
        self.queued.append(job.model_copy(deep=True))

    async def backlog(self) -> int:
        return len(self.queued)

    def _reclaim(self, now: float) -> None:
        for job_id, (deadline, job) in list(self.leased.items()):
            if deadline <= now:
                del self.leased[job_id]
                self.queued.appendleft(job.model_copy(update={"expires_at": now + self.job_ttl_s}))

    async def take(self, *, lease_s: float, timeout_s: float = 0.0) -> RecordingJob | None:
        until = self.clock() + timeout_s
        while True:
            now = self.clock()
            self._reclaim(now)
            while self.queued:
                job = self.queued.popleft()
                if is_current(job, self.states.get(job.session_id), now):
                    self.leased[job.job_id] = (now + lease_s, job)
                    return job.model_copy(deep=True)
            if now >= until:
                return None
            await asyncio.sleep(min(POLL_S, until - now))

    async def settle(self, job_id: str) -> None:
        self.leased.pop(job_id, None)

    async def drop(self, session_id: str) -> None:
        self.queued = deque(j for j in self.queued if j.session_id != session_id)
        for job_id, (_, job) in list(self.leased.items()):
            if job.session_id == session_id:
                del self.leased[job_id]


# Take the oldest job and lease it, in one step (no other taker can get it; a taker that dies
# after this leaves the job in the leases, not lost).
TAKE = """
local raw = redis.call('RPOP', KEYS[1])
if not raw then return false end
local id = cjson.decode(raw)['job_id']
redis.call('ZADD', KEYS[2], ARGV[1], id)
redis.call('HSET', KEYS[3], id, raw)
return raw
"""

# Put an expired lease's job back at the head of the list (only if the lease is still there and
# still expired: another taker may have put it back, or its node settled it, meanwhile).
RETURN = """
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('RPUSH', KEYS[1], ARGV[3])
return 1
"""


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class RedisRecordingJobs:
    """In Redis, shared by the nodes and the workers (keys above, under `prefix`)."""

    shared = True

    def __init__(
        self,
        redis: Any,
        prefix: str = "vtax:",
        *,
        job_ttl_s: float = 60.0,
        clock: Clock = time.time,
    ) -> None:
        self.redis, self.prefix = redis, prefix
        self.job_ttl_s, self.clock = job_ttl_s, clock
        self._keys = [jobs_key(prefix), leases_key(prefix), leased_key(prefix)]
        self._take = redis.register_script(TAKE)
        self._return = redis.register_script(RETURN)

    async def get(self, session_id: str) -> RecordingState | None:
        raw = await self.redis.get(state_key(self.prefix, session_id))
        return RecordingState.model_validate_json(raw) if raw else None

    async def put(self, state: RecordingState) -> None:
        await self.redis.set(
            state_key(self.prefix, state.session_id), state.model_dump_json(), ex=STATE_TTL_S
        )

    async def delete(self, session_id: str) -> RecordingState | None:
        state = await self.get(session_id)
        await self.redis.delete(state_key(self.prefix, session_id))
        return state

    async def push(self, job: RecordingJob) -> None:
        await self.redis.lpush(self._keys[0], job.model_dump_json())

    async def backlog(self) -> int:
        return int(await self.redis.llen(self._keys[0]))

    async def _reclaim(self, now: float) -> None:
        for raw_id in await self.redis.zrangebyscore(self._keys[1], "-inf", now):
            job_id = _text(raw_id)
            raw = await self.redis.hget(self._keys[2], job_id)
            if raw is None:  # settled meanwhile: a stray lease
                await self.redis.zrem(self._keys[1], job_id)
                continue
            job = RecordingJob.model_validate_json(raw)
            fresh = job.model_copy(update={"expires_at": now + self.job_ttl_s})
            await self._return(keys=self._keys, args=[job_id, now, fresh.model_dump_json()])

    async def take(self, *, lease_s: float, timeout_s: float = 0.0) -> RecordingJob | None:
        until = self.clock() + timeout_s
        while True:
            now = self.clock()
            await self._reclaim(now)
            while (raw := await self._take(keys=self._keys, args=[now + lease_s])) is not None:
                job = RecordingJob.model_validate_json(raw)
                if is_current(job, await self.get(job.session_id), now):
                    return job
                await self.settle(job.job_id)
            if now >= until:
                return None
            await asyncio.sleep(min(POLL_S, until - now))

    async def settle(self, job_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys[1], job_id)
            pipe.hdel(self._keys[2], job_id)
            await pipe.execute()

    async def drop(self, session_id: str) -> None:
        for raw in await self.redis.lrange(self._keys[0], 0, -1):
            if RecordingJob.model_validate_json(raw).session_id == session_id:
                await self.redis.lrem(self._keys[0], 1, raw)
        for raw_id, raw in (await self.redis.hgetall(self._keys[2])).items():
            if RecordingJob.model_validate_json(raw).session_id == session_id:
                await self.settle(_text(raw_id))
