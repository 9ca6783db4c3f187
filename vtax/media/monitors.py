"""Who monitors which live session, and through which media leg: one record per monitored
session, and the connected media-leg workers. Storage and atomicity only; the use case
(vtax/app/monitor.py) decides. Two implementations behind one Protocol, chosen where the node
is wired (vtax/compose.py): in memory (one node) and Redis (every node sees the same record,
so a supervisor on one node monitors a call whose agent is on another).

Redis keys (prefix `p`, VTAX_REDIS_PREFIX):
- `<p>monitor:s:<session id>`  STRING: the session's record as JSON; changed only inside a
  WATCH/MULTI transaction (`update`), expires a day after its last change.
- `<p>monitor:workers`         HASH: worker connection sid -> JSON {worker, capacity, node}.
- `<p>monitor:load`            HASH: worker connection sid -> legs it runs (HINCRBY).
- `<p>monitor:sessions`        SET: the session ids that have a record (kept with it in the
  same transaction), for the sweep that re-sends jobs nobody joined (vtax/app/monitor.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

from redis.exceptions import WatchError

T = TypeVar("T")
RECORD_TTL_S = 24 * 3600


@dataclass(slots=True)
class Monitor:
    """One supervisor connection monitoring a session."""

    monitor_id: str
    subject: str  # the supervisor's user id
    sid: str  # the supervisor's Socket.IO connection
    started_at: float
    whispering: bool = False


@dataclass(slots=True)
class Leg:
    """The media-leg worker job serving a session (joined once `leg_id` is set)."""

    job_id: str
    worker_sid: str
    leg_id: str | None = None
    sent_at: float = 0.0  # when the job went to the worker (a record of before: 0, long ago)


@dataclass(slots=True)
class Monitoring:
    session_id: str
    monitors: dict[str, Monitor] = field(default_factory=dict)
    leg: Leg | None = None

    def whisperer(self) -> Monitor | None:
        return next((m for m in self.monitors.values() if m.whispering), None)

    def of_sid(self, sid: str | None) -> Monitor | None:
        return next((m for m in self.monitors.values() if m.sid == sid), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Monitoring:
        data = json.loads(raw)
        leg = data.get("leg")
        return cls(
            session_id=data["session_id"],
            monitors={k: Monitor(**v) for k, v in data.get("monitors", {}).items()},
            leg=Leg(**leg) if leg else None,
        )


@dataclass(frozen=True, slots=True)
class LegWorker:
    sid: str
    worker: str
    capacity: int
    legs: int = 0
    node: str = ""  # the node it is connected to (its workers go when the node is dead)


Change = Callable[[Monitoring | None], tuple[Monitoring | None, T]]


class MonitorStore(Protocol):
    async def get(self, session_id: str) -> Monitoring | None: ...

    async def update(self, session_id: str, change: Change[T]) -> T:
        """Apply `change` to the session's record (None: there is none) atomically: it
        returns the new record (None: delete it) and a result handed back to the caller. It
        may be called more than once (Redis retries on a conflict): no side effects in it."""
        ...

    async def add_worker(self, worker: LegWorker) -> None: ...

    async def remove_worker(self, sid: str) -> None: ...

    async def workers(self) -> list[LegWorker]: ...

    async def count_leg(self, sid: str, delta: int) -> None: ...

    async def monitored(self) -> list[str]:
        """The ids of the sessions that have a record."""
        ...


class MemoryMonitorStore:
    def __init__(self) -> None:
        self._records: dict[str, Monitoring] = {}
        self._workers: dict[str, LegWorker] = {}
        self._load: dict[str, int] = {}

    async def get(self, session_id: str) -> Monitoring | None:
        found = self._records.get(session_id)
        return Monitoring.from_json(found.to_json()) if found else None  # a copy

    async def update(self, session_id: str, change: Change[T]) -> T:
        current = await self.get(session_id)
        new, result = change(current)
        if new is None:
            self._records.pop(session_id, None)
        else:
            self._records[session_id] = new
        return result

    async def add_worker(self, worker: LegWorker) -> None:
        self._workers[worker.sid] = worker
        self._load.setdefault(worker.sid, 0)

    async def remove_worker(self, sid: str) -> None:
        self._workers.pop(sid, None)
        self._load.pop(sid, None)

    async def workers(self) -> list[LegWorker]:
        return [
            LegWorker(w.sid, w.worker, w.capacity, self._load.get(w.sid, 0), w.node)
            for w in self._workers.values()
        ]

    async def count_leg(self, sid: str, delta: int) -> None:
        if sid in self._workers:
            self._load[sid] = max(0, self._load.get(sid, 0) + delta)

    async def monitored(self) -> list[str]:
        return sorted(self._records)


class RedisMonitorStore:
    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.p = redis, prefix

    def _key(self, session_id: str) -> str:
        return f"{self.p}monitor:s:{session_id}"

    async def get(self, session_id: str) -> Monitoring | None:
        raw = await self.redis.get(self._key(session_id))
        return Monitoring.from_json(raw) if raw else None

    async def update(self, session_id: str, change: Change[T]) -> T:
        key = self._key(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    new, result = change(Monitoring.from_json(raw) if raw else None)
                    pipe.multi()
                    if new is None:
                        pipe.delete(key)
                        pipe.srem(f"{self.p}monitor:sessions", session_id)
                    else:
                        pipe.set(key, new.to_json(), ex=RECORD_TTL_S)
                        pipe.sadd(f"{self.p}monitor:sessions", session_id)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue

    async def add_worker(self, worker: LegWorker) -> None:
        info = json.dumps(
            {"worker": worker.worker, "capacity": worker.capacity, "node": worker.node}
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{self.p}monitor:workers", worker.sid, info)
            pipe.hsetnx(f"{self.p}monitor:load", worker.sid, 0)
            await pipe.execute()

    async def remove_worker(self, sid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(f"{self.p}monitor:workers", sid)
            pipe.hdel(f"{self.p}monitor:load", sid)
            await pipe.execute()

    async def workers(self) -> list[LegWorker]:
        infos = await self.redis.hgetall(f"{self.p}monitor:workers")
        loads = await self.redis.hgetall(f"{self.p}monitor:load")
        found = []
        for sid, raw in infos.items():
            info = json.loads(raw)
            sid_s = sid.decode() if isinstance(sid, bytes) else sid
            load = int(loads.get(sid, 0) or 0)
            node = str(info.get("node") or "")
            found.append(LegWorker(sid_s, info["worker"], int(info["capacity"]), load, node))
        return found

    async def count_leg(self, sid: str, delta: int) -> None:
        if await self.redis.hexists(f"{self.p}monitor:workers", sid):
            await self.redis.hincrby(f"{self.p}monitor:load", sid, delta)

    async def monitored(self) -> list[str]:
        members = await self.redis.smembers(f"{self.p}monitor:sessions")
        found = []
        for member in members:
            session_id = member.decode() if isinstance(member, bytes) else str(member)
            if await self.redis.exists(self._key(session_id)):
                found.append(session_id)
            else:  # the record expired (a day without a change): forget its id too
                await self.redis.srem(f"{self.p}monitor:sessions", session_id)
        return sorted(found)


__all__ = [
    "Leg",
    "LegWorker",
    "MemoryMonitorStore",
    "Monitor",
    "MonitorStore",
    "Monitoring",
    "RedisMonitorStore",
]
