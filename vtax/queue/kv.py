"""The storage interface of the queue: a few Redis-shaped data types, and transactions.

A transaction is a function of a `Tx`: it reads first (every key it reads is watched), then
queues writes, which are applied all at once, or not at all if a watched key changed
meanwhile, in which case the function runs again. The in-memory backend never yields inside a
transaction, so it is atomic as it stands; the Redis backend uses WATCH/MULTI/EXEC. So the
queue's logic is written once and both backends only store and make atomic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Conflict(Exception):
    """A transaction kept losing to concurrent writers."""


class Reads(Protocol):
    """Reads, inside a transaction (watched) or outside (a snapshot of one key each)."""

    async def get(self, key: str) -> str | None: ...
    async def hgetall(self, key: str) -> dict[str, str]: ...
    async def smembers(self, key: str) -> set[str]: ...
    async def zscore(self, key: str, member: str) -> float | None: ...
    async def zcard(self, key: str) -> int: ...
    async def zcount(self, key: str, low: float, high: float) -> int: ...


class Tx(Reads, Protocol):
    """One transaction: reads, then writes queued until commit."""

    async def watch(self, *keys: str) -> None:
        """Watch keys about to be read, in one round trip (reads watch their key anyway)."""
        ...

    def set(self, key: str, value: str, ttl_s: int | None = None) -> None: ...
    def delete(self, *keys: str) -> None: ...
    def hset(self, key: str, mapping: dict[str, str]) -> None: ...
    def hincrby(self, key: str, field: str, amount: int) -> None: ...
    def hincrbyfloat(self, key: str, field: str, amount: float) -> None: ...
    def zadd(self, key: str, mapping: dict[str, float]) -> None: ...
    def zrem(self, key: str, *members: str) -> None: ...
    def sadd(self, key: str, *members: str) -> None: ...
    def srem(self, key: str, *members: str) -> None: ...
    def expire(self, key: str, seconds: int) -> None: ...


class KV(Reads, Protocol):
    """A backend: reads, batched reads, transactions and the timer claim."""

    transactions: int  # transactions committed (or read-only) by this client, for /metrics
    conflicts: int  # transactions run again because a watched key changed (0 in memory)

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run a transaction to commit (retrying on conflict); return what `fn` returned."""
        ...

    async def zranks(self, pairs: Sequence[tuple[str, str]]) -> list[int | None]:
        """ZRANK of (key, member) pairs, in one round trip."""
        ...

    async def tops(self, keys: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        """The `n` lowest-scored members of each ZSET with their scores, in one round trip."""
        ...

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]: ...

    async def zrange_withscores(
        self, key: str, start: int, stop: int
    ) -> list[tuple[str, float]]: ...

    async def claim_due(self, key: str, now: float, lease_s: float, limit: int) -> list[str]:
        """Members of a timer ZSET due by `now`, each pushed `lease_s` into the future in the
        same atomic step: one node gets each; if it dies, another retries after the lease."""
        ...

    async def claim_once(self, name: str, ttl_s: float) -> bool:
        """True for the one caller that claims `name` in a period of `ttl_s`."""
        ...

    async def aclose(self) -> None: ...
