"""The identity domain's short-lived state behind one interface: sign-in codes and their
throttles, one-time values (OpenID Connect state, kiosk nonces, replay marks) and refresh
token families. `MemoryIdentityState` for one node, `RedisIdentityState`
(vtax/identity/redis_state.py) for many; the same contract suite runs on both.

Every operation is atomic on its own (one Lua script in Redis; no await inside a step in
memory), so two nodes never both accept one code, one state or one refresh token."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

IssueStatus = Literal["issued", "throttled", "number_limited", "address_limited"]
RotateStatus = Literal["rotated", "reused", "unknown"]


@dataclass(frozen=True, slots=True)
class CodeLimits:
    ttl_s: float  # a code is valid this long
    resend_s: float  # no new code for the same number before this
    window_s: float  # the window of the two counts below
    per_number: int  # codes per number per window
    per_address: int  # codes per client address per window


@dataclass(frozen=True, slots=True)
class Issued:
    status: IssueStatus
    retry_after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """The stored digest of the pending code and how many tries (this one included)."""

    digest: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Rotated:
    status: RotateStatus
    record: str = ""  # the family's record (JSON) when rotated


class IdentityState(Protocol):
    async def issue_code(self, phone: str, address: str, digest: str, limits: CodeLimits) -> Issued:
        """Store a new code's digest for `phone` (replacing a pending one) unless the resend
        throttle or a window limit refuses; counts toward both limits only when issued."""
        ...

    async def attempt_code(self, phone: str) -> Attempt | None:
        """Count one try at the pending code; None if there is none (expired, used, burnt)."""
        ...

    async def consume_code(self, phone: str, digest: str) -> bool:
        """Delete the pending code if it is still this one: True for exactly one caller."""
        ...

    async def burn_code(self, phone: str) -> None:
        """Delete the pending code (too many tries)."""
        ...

    async def put_once(self, kind: str, key: str, value: str, ttl_s: float) -> None:
        """Keep `value` under (kind, key) for `ttl_s`, to be taken once."""
        ...

    async def take_once(self, kind: str, key: str) -> str | None:
        """The value, deleted in the same step (a second take gets None)."""
        ...

    async def claim_once(self, kind: str, key: str, ttl_s: float) -> bool:
        """True the first time (kind, key) is claimed within `ttl_s`: replay marks."""
        ...

    async def put_family(self, family: str, record: str, current: str, ttl_s: float) -> None:
        """A new refresh token family: its record and the one refresh token id that is
        current."""
        ...

    async def rotate_family(self, family: str, presented: str, new: str, ttl_s: float) -> Rotated:
        """If `presented` is the family's current token, make `new` current (rotated, with
        the record); if it is an older one, a stolen copy is in use: the family is dropped
        (reused); no such family: unknown."""
        ...

    async def drop_family(self, family: str) -> None: ...

    async def family_alive(self, family: str) -> bool:
        """The family exists (its access tokens are still good)."""
        ...

    async def add_member(self, kind: str, key: str, member: str, ttl_s: float) -> None:
        """Add to the set (kind, key), which lives `ttl_s` from its latest addition (the
        refresh families of one provider session)."""
        ...

    async def take_members(self, kind: str, key: str) -> list[str]:
        """The set's members, deleted in the same step."""
        ...

    async def hit(self, kind: str, key: str, limit: int, window_s: float) -> float:
        """Count one event of (kind, key) in a fixed window that starts at its first event:
        0 if it is within `limit`, else the seconds until the window ends (not counted)."""
        ...


class MemoryIdentityState:
    """One node's identity state in dictionaries; expiry by a monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._codes: dict[str, tuple[str, int, float]] = {}  # phone -> digest, tries, expiry
        self._marks: dict[str, float] = {}  # resend throttle keys -> expiry
        self._counts: dict[str, tuple[int, float]] = {}  # window key -> count, expiry
        self._once: dict[tuple[str, str], tuple[str, float]] = {}
        self._families: dict[str, tuple[str, str, float]] = {}  # -> record, current, expiry
        self._sets: dict[tuple[str, str], tuple[set[str], float]] = {}
        self._ops = 0

    def _live(self, expiry: float) -> bool:
        return expiry > self._clock()

    def _sweep(self) -> None:
        """Drop what has expired, every 1000 operations (bounded memory, O(1) amortised)."""
        self._ops += 1
        if self._ops % 1000:
            return
        now = self._clock()
        for k in [k for k, e in self._marks.items() if e <= now]:
            del self._marks[k]
        for k in [k for k, v in self._counts.items() if v[1] <= now]:
            del self._counts[k]
        for k in [k for k, v in self._codes.items() if v[2] <= now]:
            del self._codes[k]
        for o in [k for k, v in self._once.items() if v[1] <= now]:
            del self._once[o]
        for k in [k for k, v in self._families.items() if v[2] <= now]:
            del self._families[k]
        for o in [k for k, v in self._sets.items() if v[1] <= now]:
            del self._sets[o]

    def _count(self, key: str) -> tuple[int, float]:
        n, expiry = self._counts.get(key, (0, 0.0))
        return (n, expiry) if self._live(expiry) else (0, 0.0)

    async def issue_code(self, phone: str, address: str, digest: str, limits: CodeLimits) -> Issued:
        self._sweep()
        now = self._clock()
        last = self._marks.get("resend:" + phone, 0.0)
        if last > now:
            return Issued("throttled", last - now)
        n, n_exp = self._count("n:" + phone)
        if n >= limits.per_number:
            return Issued("number_limited", n_exp - now)
        a, a_exp = self._count("a:" + address)
        if a >= limits.per_address:
            return Issued("address_limited", a_exp - now)
        self._codes[phone] = (digest, 0, now + limits.ttl_s)
        self._marks["resend:" + phone] = now + limits.resend_s
        self._counts["n:" + phone] = (n + 1, n_exp if n else now + limits.window_s)
        self._counts["a:" + address] = (a + 1, a_exp if a else now + limits.window_s)
        return Issued("issued")

    async def attempt_code(self, phone: str) -> Attempt | None:
        found = self._codes.get(phone)
        if found is None or not self._live(found[2]):
            self._codes.pop(phone, None)
            return None
        digest, tries, expiry = found
        self._codes[phone] = (digest, tries + 1, expiry)
        return Attempt(digest, tries + 1)

    async def consume_code(self, phone: str, digest: str) -> bool:
        found = self._codes.get(phone)
        if found is None or found[0] != digest or not self._live(found[2]):
            return False
        del self._codes[phone]
        return True

    async def burn_code(self, phone: str) -> None:
        self._codes.pop(phone, None)

    async def put_once(self, kind: str, key: str, value: str, ttl_s: float) -> None:
        self._sweep()
        self._once[(kind, key)] = (value, self._clock() + ttl_s)

    async def take_once(self, kind: str, key: str) -> str | None:
        found = self._once.pop((kind, key), None)
        return found[0] if found is not None and self._live(found[1]) else None

    async def claim_once(self, kind: str, key: str, ttl_s: float) -> bool:
        self._sweep()
        found = self._once.get((kind, key))
        if found is not None and self._live(found[1]):
            return False
        self._once[(kind, key)] = ("1", self._clock() + ttl_s)
        return True

    async def put_family(self, family: str, record: str, current: str, ttl_s: float) -> None:
        self._sweep()
        self._families[family] = (record, current, self._clock() + ttl_s)

    async def rotate_family(self, family: str, presented: str, new: str, ttl_s: float) -> Rotated:
        found = self._families.get(family)
        if found is None or not self._live(found[2]):
            self._families.pop(family, None)
            return Rotated("unknown")
        record, current, _ = found
        if current != presented:
            del self._families[family]
            return Rotated("reused")
        self._families[family] = (record, new, self._clock() + ttl_s)
        return Rotated("rotated", record)

    async def drop_family(self, family: str) -> None:
        self._families.pop(family, None)

    async def family_alive(self, family: str) -> bool:
        found = self._families.get(family)
        return found is not None and self._live(found[2])

    async def add_member(self, kind: str, key: str, member: str, ttl_s: float) -> None:
        self._sweep()
        members, expiry = self._sets.get((kind, key), (set(), 0.0))
        if not self._live(expiry):
            members = set()
        members.add(member)
        self._sets[(kind, key)] = (members, self._clock() + ttl_s)

    async def take_members(self, kind: str, key: str) -> list[str]:
        members, expiry = self._sets.pop((kind, key), (set(), 0.0))
        return sorted(members) if self._live(expiry) else []

    async def hit(self, kind: str, key: str, limit: int, window_s: float) -> float:
        self._sweep()
        n, expiry = self._count(f"hit:{kind}:{key}")
        if n >= limit:
            return max(expiry - self._clock(), 0.001)
        self._counts[f"hit:{kind}:{key}"] = (n + 1, expiry if n else self._clock() + window_s)
        return 0.0
