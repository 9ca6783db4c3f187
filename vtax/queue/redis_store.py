"""The scaled-out backend: the queue's keys in Redis, shared by every node.

Transactions use WATCH/MULTI/EXEC: every key a transaction reads is watched, its writes go
out in one MULTI, and a conflict runs the transaction again. The timer claim and the
once-per-period claim are single atomic commands (a Lua script, SET NX). No KEYS: tests
clean up their prefix with SCAN."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import WatchError

from vtax.queue.kv import Conflict
from vtax.redis_client import connect

T = TypeVar("T")
MAX_ATTEMPTS = 100

# KEYS[1] timers; ARGV now, lease, limit. Due members move to now + lease and are returned.
CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local due_again = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, member in ipairs(due) do
  redis.call("ZADD", KEYS[1], due_again, member)
end
return due
"""


class RedisKV:
    def __init__(self, client: aioredis.Redis, prefix: str = "vtax:") -> None:
        self.client: Any = client  # decode_responses=True: str in, str out
        self.prefix = prefix
        self._claim_due = client.register_script(CLAIM_DUE)
        self.transactions = 0  # committed (or read-only) transactions
        self.conflicts = 0  # runs again after a watched key changed (WATCH/EXEC)

    @classmethod
    def from_url(cls, url: str, prefix: str = "vtax:", max_connections: int = 64) -> RedisKV:
        """A client whose pool makes a burst wait for a free connection (a transaction holds
        one from WATCH to EXEC) instead of failing with "too many connections"."""
        return cls(connect(url, max_connections=max_connections, decode_responses=True), prefix)

    def k(self, key: str) -> str:
        return self.prefix + key

    # ---- reads outside transactions ----------------------------------------------------

    async def get(self, key: str) -> str | None:
        value: str | None = await self.client.get(self.k(key))
        return value

    async def hgetall(self, key: str) -> dict[str, str]:
        value: dict[str, str] = await self.client.hgetall(self.k(key))
        return value

    async def smembers(self, key: str) -> set[str]:
        value: set[str] = await self.client.smembers(self.k(key))
        return value

    async def zscore(self, key: str, member: str) -> float | None:
        value: float | None = await self.client.zscore(self.k(key), member)
        return value

    async def zcard(self, key: str) -> int:
        value: int = await self.client.zcard(self.k(key))
        return value

    async def zcount(self, key: str, low: float, high: float) -> int:
        value: int = await self.client.zcount(self.k(key), low, high)
        return value

    async def tops(self, keys: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrange(self.k(key), 0, n - 1, withscores=True)
            results = await pipe.execute()
        return [[(m, float(sc)) for m, sc in rows] for rows in results]

    async def zranks(self, pairs: Sequence[tuple[str, str]]) -> list[int | None]:
        if not pairs:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key, member in pairs:
                pipe.zrank(self.k(key), member)
            return list(await pipe.execute())

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.k(key))
            return list(await pipe.execute())

    async def zrange_withscores(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        rows = await self.client.zrange(self.k(key), start, stop, withscores=True)
        return [(m, float(s)) for m, s in rows]

    # ---- transactions and claims -------------------------------------------------------

    async def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        fresh_connection = False
        for attempt in range(MAX_ATTEMPTS):
            async with self.client.pipeline(transaction=True) as pipe:
                tx = _RedisTx(self, pipe)
                try:
                    result = await fn(tx)
                except RedisConnectionError:
                    # A pooled connection that died with a Redis restart fails its first
                    # command (the WATCH or a read): nothing was written yet, so once more on
                    # a fresh connection (redis-py drops the broken one). Never after EXEC:
                    # there the outcome is unknown.
                    if fresh_connection:
                        raise
                    fresh_connection = True
                    continue
                if not tx.writes:
                    await pipe.reset()
                    self.transactions += 1
                    return result
                pipe.multi()
                for op, args in tx.writes:
                    getattr(pipe, op)(*args)
                try:
                    await pipe.execute()
                except WatchError:
                    # Back off a little, more each time, so contenders spread out.
                    self.conflicts += 1
                    await _pause(attempt)
                    continue
                self.transactions += 1
                return result
        raise Conflict("the queue is too busy; try again")

    async def claim_due(self, key: str, now: float, lease_s: float, limit: int) -> list[str]:
        due: list[str] = await self._claim_due(keys=[self.k(key)], args=[now, lease_s, limit])
        return due

    async def claim_once(self, name: str, ttl_s: float) -> bool:
        ok = await self.client.set(self.k("q:claim:" + name), "1", nx=True, px=int(ttl_s * 1000))
        return bool(ok)

    async def delete_prefix(self) -> int:
        """Delete every key under the prefix (SCAN, never KEYS); for tests and `simulate`."""
        n = 0
        async for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            n += await self.client.unlink(key)
        return n

    async def aclose(self) -> None:
        await self.client.aclose()


async def _pause(attempt: int) -> None:
    import asyncio

    if attempt:
        await asyncio.sleep(random.uniform(0, min(0.0005 * 2**attempt, 0.02)))


class _RedisTx:
    """Reads watch their key and run at once; writes wait for MULTI."""

    def __init__(self, kv: RedisKV, pipe: Any) -> None:
        self.kv = kv
        self.pipe = pipe
        self.watched: set[str] = set()
        self.writes: list[tuple[str, tuple[Any, ...]]] = []

    async def watch(self, *keys: str) -> None:
        fresh = [self.kv.k(k) for k in keys if self.kv.k(k) not in self.watched]
        if fresh:
            await self.pipe.watch(*fresh)
            self.watched.update(fresh)

    async def _watch(self, key: str) -> str:
        full = self.kv.k(key)
        if full not in self.watched:
            await self.pipe.watch(full)
            self.watched.add(full)
        return full

    async def get(self, key: str) -> str | None:
        value: str | None = await self.pipe.get(await self._watch(key))
        return value

    async def hgetall(self, key: str) -> dict[str, str]:
        value: dict[str, str] = await self.pipe.hgetall(await self._watch(key))
        return value

    async def smembers(self, key: str) -> set[str]:
        value: set[str] = await self.pipe.smembers(await self._watch(key))
        return value

    async def zscore(self, key: str, member: str) -> float | None:
        value: float | None = await self.pipe.zscore(await self._watch(key), member)
        return value

    async def zcard(self, key: str) -> int:
        value: int = await self.pipe.zcard(await self._watch(key))
        return value

    async def zcount(self, key: str, low: float, high: float) -> int:
        value: int = await self.pipe.zcount(await self._watch(key), low, high)
        return value

    def set(self, key: str, value: str, ttl_s: int | None = None) -> None:
        self.writes.append(("set", (self.kv.k(key), value, ttl_s)))

    def delete(self, *keys: str) -> None:
        self.writes.append(("delete", tuple(self.kv.k(k) for k in keys)))

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.writes.append(("hset", (self.kv.k(key), None, None, dict(mapping))))

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.writes.append(("hincrby", (self.kv.k(key), field, amount)))

    def hincrbyfloat(self, key: str, field: str, amount: float) -> None:
        self.writes.append(("hincrbyfloat", (self.kv.k(key), field, amount)))

    def zadd(self, key: str, mapping: dict[str, float]) -> None:
        self.writes.append(("zadd", (self.kv.k(key), dict(mapping))))

    def zrem(self, key: str, *members: str) -> None:
        if members:
            self.writes.append(("zrem", (self.kv.k(key), *members)))

    def sadd(self, key: str, *members: str) -> None:
        if members:
            self.writes.append(("sadd", (self.kv.k(key), *members)))

    def srem(self, key: str, *members: str) -> None:
        if members:
            self.writes.append(("srem", (self.kv.k(key), *members)))

    def expire(self, key: str, seconds: int) -> None:
        self.writes.append(("expire", (self.kv.k(key), seconds)))
