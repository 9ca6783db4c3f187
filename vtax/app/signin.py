"""Staff sign-in: a password check that cannot be used to stall the node or to guess at speed.

Every attempt spends a token of its client address's bucket; every failed attempt spends one
of its username's bucket too (any address, so spreading a guessing run over many addresses
does not help), checked before the password is, so a throttled username answers at once and
costs no hash. A right password does not refill a username's bucket (a guesser who hits it
gets nothing the owner would not); the owner waits `retry_after_s` like anyone else.

The password check itself runs off the event loop with bounded concurrency
(`vtax.auth.Passwords`); when too many are waiting the attempt is refused as rate-limited.
The buckets are per node and in memory (bounded in size), with a clock seam for the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vtax.accounts import Accounts, StaffMember
from vtax.auth import Busy
from vtax.config import Settings
from vtax.errors import DomainError

Clock = Callable[[], float]


class RateLimited(DomainError):
    """Too many attempts: retry after `retry_after_s` seconds (whole, at least 1)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__("rate_limited", message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class InvalidCredentials(DomainError):
    def __init__(self) -> None:
        super().__init__("invalid_credentials", "wrong username or password")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class Buckets:
    """Token buckets by key: `rate` tokens a second up to `burst`. Full buckets carry no
    information and are dropped when the table grows past `max_keys` (then the oldest)."""

    def __init__(self, rate: float, burst: int, clock: Clock, max_keys: int = 50_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate > 0 and burst >= 1")
        self.rate, self.burst, self.clock, self.max_keys = rate, float(burst), clock, max_keys
        self._buckets: dict[str, _Bucket] = {}

    def _refill(self, key: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket

    def wait_s(self, key: str) -> float:
        """0 if `key` has a token now, else the seconds until it has one."""
        bucket = self._refill(key, self.clock())
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def take(self, key: str) -> float:
        """Spend a token: 0 if there was one, else (nothing spent) the seconds to wait."""
        now = self.clock()
        bucket = self._refill(key, now)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / self.rate
        bucket.tokens -= 1
        return 0.0

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.stamp) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:  # all busy: forget the oldest
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)


class SignIn:
    """The staff sign-in use case: `attempt` gives the account or raises `RateLimited` /
    `InvalidCredentials`."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        address_rate: float,
        address_burst: int,
        account_rate: float,
        account_burst: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self.accounts = accounts
        self.by_address = Buckets(address_rate, address_burst, clock)
        self.by_account = Buckets(account_rate, account_burst, clock)

    @classmethod
    def from_settings(cls, accounts: Accounts, settings: Settings, **kwargs: Any) -> SignIn:
        return cls(
            accounts,
            address_rate=settings.login_address_rate,
            address_burst=settings.login_address_burst,
            account_rate=settings.login_account_rate,
            account_burst=settings.login_account_burst,
            **kwargs,
        )

    def admit(self, address: str, username: str) -> None:
        """Raise `RateLimited` when this username failed too often, or this address tried too
        often (every attempt draws from the address's bucket)."""
        wait = self.by_account.wait_s(username.casefold())
        if wait:
            raise RateLimited("too many failed sign-ins for this username", wait)
        wait = self.by_address.take(address)
        if wait:
            raise RateLimited("too many sign-in attempts from this address", wait)

    def failed(self, username: str) -> None:
        """A failed attempt (wrong password or code) counts against the username."""
        self.by_account.take(username.casefold())

    async def attempt(self, address: str, username: str, password: str) -> StaffMember:
        self.admit(address, username)
        try:
            staff = await self.accounts.authenticate(username, password)
        except Busy as exc:
            raise RateLimited(str(exc), 1) from None
        if staff is None:
            self.failed(username)
            raise InvalidCredentials()
        return staff
