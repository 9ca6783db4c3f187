"""The sign-in use case on a fake clock and fake accounts: buckets per address and per
username, refill, the retry time, the bounded table, and a busy password checker."""

from __future__ import annotations

import asyncio

import pytest

from vtax.accounts import StaffMember
from vtax.app.signin import Buckets, InvalidCredentials, RateLimited, SignIn
from vtax.auth import Busy, Passwords


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeAccounts:
    def __init__(self) -> None:
        self.checks = 0
        self.busy = False

    async def authenticate(self, username: str, password: str) -> StaffMember | None:
        if self.busy:
            raise Busy("too many")
        self.checks += 1
        if password != "right":
            return None
        return StaffMember("u1", username, username, "agent", {}, [])


def sign_in(clock: Clock, accounts: FakeAccounts) -> SignIn:
    return SignIn(
        accounts,  # type: ignore[arg-type]
        address_rate=0.5,
        address_burst=3,
        account_rate=0.1,
        account_burst=2,
        clock=clock,
    )


def test_a_bucket_refills_at_its_rate_and_says_how_long_to_wait():
    clock = Clock()
    b = Buckets(rate=2.0, burst=2, clock=clock)
    assert (b.take("a"), b.take("a")) == (0.0, 0.0)
    assert b.take("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert b.wait_s("a") == pytest.approx(0.25) and b.take("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert b.take("a") == 0.0
    clock.now += 100
    assert b.take("a") == 0.0 and b.take("a") == 0.0 and b.take("a") > 0  # burst, no more
    assert b.take("b") == 0.0  # keys are separate


def test_the_table_of_buckets_stays_bounded():
    clock = Clock()
    b = Buckets(rate=1.0, burst=1, clock=clock, max_keys=100)
    for n in range(1000):
        b.take(f"k{n}")
        clock.now += 0.001
    assert len(b) <= 100
    assert b.take("k999") > 0  # the newest are kept (busy ones are dropped oldest first)
    clock.now += 10  # all full again: dropped to make room at once
    b.take("new")
    assert len(b) == 1


async def test_every_attempt_spends_the_address_budget():
    clock, accounts = Clock(), FakeAccounts()
    s = sign_in(clock, accounts)
    for n in range(3):
        with pytest.raises(InvalidCredentials):
            await s.attempt("10.0.0.1", f"user{n}", "wrong")
    with pytest.raises(RateLimited) as limited:
        await s.attempt("10.0.0.1", "user9", "right")
    assert limited.value.code == "rate_limited" and limited.value.retry_after_s == 2
    assert accounts.checks == 3  # a refused attempt costs no password check
    assert (await s.attempt("10.0.0.2", "user9", "right")).username == "user9"
    clock.now += 2
    assert (await s.attempt("10.0.0.1", "user9", "right")).username == "user9"


async def test_failures_spend_the_username_budget_from_any_address():
    clock, accounts = Clock(), FakeAccounts()
    s = sign_in(clock, accounts)
    await s.attempt("a1", "agent", "right")  # successes cost the username nothing
    for address in ("a1", "a2"):
        with pytest.raises(InvalidCredentials):
            await s.attempt(address, "agent", "wrong")
    with pytest.raises(RateLimited) as limited:
        await s.attempt("a3", "AGENT", "right")  # same username, another address
    assert limited.value.retry_after_s == 10
    clock.now += 10
    assert (await s.attempt("a3", "agent", "right")).username == "agent"


async def test_a_busy_checker_answers_rate_limited():
    accounts = FakeAccounts()
    accounts.busy = True
    with pytest.raises(RateLimited) as limited:
        await sign_in(Clock(), accounts).attempt("a", "agent", "right")
    assert limited.value.retry_after_s == 1


async def test_password_checks_run_on_bounded_threads():
    passwords = Passwords(1, 8, 1, threads=1, max_waiting=1)
    stored = passwords.hash_sync("pw")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert await passwords.verify(stored, "pw") and not await passwords.verify(stored, "no")
    assert not await passwords.verify("garbage", "pw")
    # a check holds the one thread, one more may wait, a third is refused at once (the
    # first two are in flight until the loop runs them on: the cost does not matter)
    slow = Passwords(1, 8, 1, threads=1, max_waiting=1)
    slow_hash = slow.hash_sync("pw")
    first = asyncio.ensure_future(slow.verify(slow_hash, "pw"))
    second = asyncio.ensure_future(slow.verify(slow_hash, "no"))
    await asyncio.sleep(0)
    with pytest.raises(Busy):
        await slow.verify(slow_hash, "pw")
    assert await first and not await second
    assert await slow.verify(slow_hash, "pw")  # room again
    slow.close()
    passwords.close()


def test_settings_refuse_argon2_memory_below_the_lanes():
    from vtax.config import Settings, SettingsError

    with pytest.raises(SettingsError, match="8 x parallelism"):
        Settings.from_env({"VTAX_PASSWORD_HASH_MEMORY_KIB": "8"})
    assert Settings.from_env({}).password_hash_memory_kib == 65536
