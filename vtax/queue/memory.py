"""The embedded backend: the queue's keys in process memory (one node, no services).

Sorted sets keep (score, member) pairs in a bucketed sorted list, so inserts, removals and
ranks stay cheap at 100,000 members, and ties order by member as in Redis."""

from __future__ import annotations

import math
import time
from bisect import bisect_left, insort
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_Key = tuple[float, str]


class SortedKeys:
    """A sorted list of (score, member) in buckets of at most 2 * LOAD items."""

    LOAD = 256

    def __init__(self) -> None:
        self._lists: list[list[_Key]] = []
        self._maxes: list[_Key] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[_Key]:
        for bucket in self._lists:
            yield from bucket

    def add(self, key: _Key) -> None:
        if not self._lists:
            self._lists.append([key])
            self._maxes.append(key)
        else:
            i = bisect_left(self._maxes, key)
            if i == len(self._maxes):
                i -= 1
                self._lists[i].append(key)
                self._maxes[i] = key
            else:
                insort(self._lists[i], key)
            bucket = self._lists[i]
            if len(bucket) > 2 * self.LOAD:
                self._lists[i : i + 1] = [bucket[: self.LOAD], bucket[self.LOAD :]]
                self._maxes[i : i + 1] = [bucket[self.LOAD - 1], bucket[-1]]
        self._len += 1

    def remove(self, key: _Key) -> None:
        i = bisect_left(self._maxes, key)
        bucket = self._lists[i]
        del bucket[bisect_left(bucket, key)]
        if bucket:
            self._maxes[i] = bucket[-1]
        else:
            del self._lists[i]
            del self._maxes[i]
        self._len -= 1

    def rank(self, key: _Key) -> int:
        """How many keys are smaller."""
        i = bisect_left(self._maxes, key)
        before = sum(len(b) for b in self._lists[:i])
        return before + (bisect_left(self._lists[i], key) if i < len(self._lists) else 0)

    def first(self) -> _Key | None:
        return self._lists[0][0] if self._lists else None

    def slice(self, start: int, stop: int) -> list[_Key]:
        """Keys at ranks start..stop inclusive (non-negative)."""
        out: list[_Key] = []
        seen = 0
        for bucket in self._lists:
            if seen + len(bucket) > start:
                lo = max(start - seen, 0)
                out.extend(bucket[lo : stop - seen + 1])
                if seen + len(bucket) > stop:
                    break
            seen += len(bucket)
        return out


class ZSet:
    __slots__ = ("keys", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.keys = SortedKeys()

    def add(self, member: str, score: float) -> None:
        old = self.scores.get(member)
        if old is not None:
            if old == score:
                return
            self.keys.remove((old, member))
        self.scores[member] = score
        self.keys.add((score, member))

    def remove(self, member: str) -> None:
        old = self.scores.pop(member, None)
        if old is not None:
            self.keys.remove((old, member))


def _count_le(keys: SortedKeys, high: float) -> int:
    return keys.rank((math.nextafter(high, math.inf), ""))


class MemoryKV:
    """Process-local storage: one dict of strings, hashes, sets and sorted sets."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.data: dict[str, Any] = {}
        self._expiry: dict[str, float] = {}
        self._clock = clock or time.monotonic
        self.transactions = 0
        self.conflicts = 0  # never: a transaction runs without yielding

    # ---- reads ------------------------------------------------------------------------

    def _live(self, key: str) -> Any:
        due = self._expiry.get(key)
        if due is not None and due <= self._clock():
            self.data.pop(key, None)
            self._expiry.pop(key, None)
        return self.data.get(key)

    async def get(self, key: str) -> str | None:
        value = self._live(key)
        return value if isinstance(value, str) else None

    async def hgetall(self, key: str) -> dict[str, str]:
        value = self._live(key)
        return dict(value) if isinstance(value, dict) else {}

    async def smembers(self, key: str) -> set[str]:
        value = self._live(key)
        return set(value) if isinstance(value, set) else set()

    async def zscore(self, key: str, member: str) -> float | None:
        z = self._live(key)
        return z.scores.get(member) if isinstance(z, ZSet) else None

    async def zcard(self, key: str) -> int:
        z = self._live(key)
        return len(z.scores) if isinstance(z, ZSet) else 0

    async def zcount(self, key: str, low: float, high: float) -> int:
        z = self._live(key)
        if not isinstance(z, ZSet):
            return 0
        return _count_le(z.keys, high) - z.keys.rank((low, ""))

    async def tops(self, keys: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        return [await self.zrange_withscores(key, 0, n - 1) for key in keys]

    async def zranks(self, pairs: Sequence[tuple[str, str]]) -> list[int | None]:
        out: list[int | None] = []
        for key, member in pairs:
            z = self.data.get(key)
            score = z.scores.get(member) if isinstance(z, ZSet) else None
            out.append(None if z is None or score is None else z.keys.rank((score, member)))
        return out

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        return [await self.hgetall(k) for k in keys]

    async def zrange_withscores(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        z = self._live(key)
        if not isinstance(z, ZSet):
            return []
        n = len(z.keys)
        start, stop = (start + n if start < 0 else start), (stop + n if stop < 0 else stop)
        return [(m, s) for s, m in z.keys.slice(max(start, 0), stop)] if stop >= 0 else []

    # ---- writes -----------------------------------------------------------------------

    def _zset(self, key: str) -> ZSet:
        z = self.data.get(key)
        if isinstance(z, ZSet):
            return z
        fresh = self.data[key] = ZSet()
        return fresh

    def _set(self, key: str, value: str, ttl_s: float | None) -> None:
        self.data[key] = value
        if ttl_s is not None:
            self._expiry[key] = self._clock() + ttl_s
        else:
            self._expiry.pop(key, None)

    def _delete(self, key: str) -> None:
        self.data.pop(key, None)
        self._expiry.pop(key, None)

    def _hset(self, key: str, mapping: dict[str, str]) -> None:
        h = self.data.get(key)
        if isinstance(h, dict):
            h.update(mapping)
        else:
            self.data[key] = dict(mapping)

    def _hincrby(self, key: str, field: str, amount: int) -> None:
        h = self.data.setdefault(key, {})
        h[field] = str(int(h.get(field) or 0) + amount)

    def _hincrbyfloat(self, key: str, field: str, amount: float) -> None:
        h = self.data.setdefault(key, {})
        h[field] = repr(float(h.get(field) or 0) + amount)

    def _zadd(self, key: str, mapping: dict[str, float]) -> None:
        z = self._zset(key)
        for member, score in mapping.items():
            z.add(member, score)

    def _zrem(self, key: str, *members: str) -> None:
        found = self.data.get(key)
        if isinstance(found, ZSet):
            for member in members:
                found.remove(member)
            if not found.scores:
                del self.data[key]

    def _sadd(self, key: str, *members: str) -> None:
        self.data.setdefault(key, set()).update(members)

    def _srem(self, key: str, *members: str) -> None:
        s = self.data.get(key)
        if isinstance(s, set):
            s.difference_update(members)
            if not s:
                del self.data[key]

    def _expire(self, key: str, seconds: float) -> None:
        if key in self.data:
            self._expiry[key] = self._clock() + seconds

    async def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        tx = _MemoryTx(self)
        result = await fn(tx)  # never yields: nothing else runs until the writes are applied
        for write, key, args in tx.writes:
            write(key, *args)
        self.transactions += 1
        return result

    async def claim_due(self, key: str, now: float, lease_s: float, limit: int) -> list[str]:
        z = self.data.get(key)
        if not isinstance(z, ZSet):
            return []
        due = [m for s, m in z.keys.slice(0, limit - 1) if s <= now]
        for member in due:
            z.add(member, now + lease_s)
        return due

    async def claim_once(self, name: str, ttl_s: float) -> bool:
        key = "q:claim:" + name
        if self._live(key) is not None:
            return False
        self._set(key, "1", ttl_s)
        return True

    async def aclose(self) -> None:
        return None


class _MemoryTx:
    """Reads straight from the store; writes kept until the transaction function returns."""

    def __init__(self, kv: MemoryKV) -> None:
        self.kv = kv
        self.writes: list[tuple[Callable[..., None], str, tuple[Any, ...]]] = []
        self.get = kv.get
        self.hgetall = kv.hgetall
        self.smembers = kv.smembers
        self.zscore = kv.zscore
        self.zcard = kv.zcard
        self.zcount = kv.zcount

    async def watch(self, *keys: str) -> None:
        return None

    def set(self, key: str, value: str, ttl_s: int | None = None) -> None:
        self.writes.append((self.kv._set, key, (value, ttl_s)))

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.writes.append((self.kv._delete, key, ()))

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.writes.append((self.kv._hset, key, (dict(mapping),)))

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.writes.append((self.kv._hincrby, key, (field, amount)))

    def hincrbyfloat(self, key: str, field: str, amount: float) -> None:
        self.writes.append((self.kv._hincrbyfloat, key, (field, amount)))

    def zadd(self, key: str, mapping: dict[str, float]) -> None:
        self.writes.append((self.kv._zadd, key, (dict(mapping),)))

    def zrem(self, key: str, *members: str) -> None:
        self.writes.append((self.kv._zrem, key, members))

    def sadd(self, key: str, *members: str) -> None:
        self.writes.append((self.kv._sadd, key, members))

    def srem(self, key: str, *members: str) -> None:
        self.writes.append((self.kv._srem, key, members))

    def expire(self, key: str, seconds: int) -> None:
        self.writes.append((self.kv._expire, key, (seconds,)))
