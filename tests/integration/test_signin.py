"""Staff sign-in under abuse: bad logins in a flood must not stall signaling (the password
check runs off the event loop, bounded), and logins are rate-limited per client address and
per username, with 429 `rate_limited` and Retry-After (vtax/app/signin.py)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.databases import Templates
from vtax.contract.http import ErrorOut
from vtax.db import migrate

# argon2 at the production cost (the defaults of the settings), not the tests' cheap one.
PRODUCTION_COST = {
    "password_hash_time_cost": 3,
    "password_hash_memory_kib": 65536,
    "password_hash_parallelism": 4,
}


@pytest.fixture
async def database_url(tmp_path: Path, templates: Templates) -> AsyncIterator[str]:
    """Sign-in does not depend on the database engine: SQLite only (overrides the root)."""
    await templates.sqlite_copy("migrated", migrate, tmp_path / "vtax.db")
    yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"


async def login(
    http: aiohttp.ClientSession, url: str, username: str, password: str
) -> tuple[int, dict[str, Any], Any]:
    async with http.post(
        f"{url}/api/auth/login", json={"username": username, "password": password}
    ) as r:
        return r.status, dict(r.headers), await r.json()


@pytest.mark.parametrize("settings_overrides", [PRODUCTION_COST])
async def test_a_flood_of_bad_sign_ins_does_not_stall_signaling(server, clients):
    accounts = server.ctx.accounts
    await accounts.add_user("agent1", "agent", "the-right-password")
    # What one check costs here and now (the probe's bound is relative to it: the machine
    # is shared, its speed varies).
    stored = await accounts.passwords.hash("x")
    started = time.perf_counter()
    await accounts.passwords.verify(stored, "y")
    check_s = time.perf_counter() - started
    assert check_s > 0.05, f"a check took {check_s:.3f} s: not the production cost"

    taxpayer = await clients(server, await server.taxpayer())

    async def probe() -> float:
        started = time.perf_counter()
        ack = await taxpayer.call(
            "rtc:signal", {"session_id": "no-such-session", "type": "candidate", "data": {}}
        )
        assert not ack["ok"]
        return time.perf_counter() - started

    quiet = [await probe() for _ in range(5)]

    flood_size = 3 * accounts.passwords.threads  # more than can run at once: some wait
    flood = asyncio.gather(
        *(
            login(server.http, server.url, "agent1" if n % 2 else f"nobody{n}", f"guess-{n}")
            for n in range(flood_size)
        )
    )
    during: list[float] = []
    health: list[float] = []
    while not flood.done():
        during.append(await probe())
        started = time.perf_counter()
        async with server.http.get(f"{server.url}/healthz") as r:
            assert r.status == 200
        health.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    answers = await flood
    assert [status for status, _, _ in answers] == [401] * flood_size
    # Inline, every check held the loop for `check_s`: a probe waited up to several of them.
    bound = max(check_s / 2, 5 * statistics.median(quiet))
    assert max(during) < bound, (max(during), check_s, statistics.median(quiet))
    assert max(health) < bound, (max(health), check_s)
    assert len(during) >= 5, "the flood ended before the probes could measure it"


@pytest.mark.parametrize(
    "settings_overrides", [{"login_address_rate": 0.01, "login_address_burst": 3}]
)
async def test_sign_ins_are_rate_limited_per_client_address(server):
    await server.ctx.accounts.add_user("agent1", "agent", "the-right-password")
    answers = [await login(server.http, server.url, f"user{n}", "wrong") for n in range(3)]
    assert [status for status, _, _ in answers] == [401, 401, 401]
    status, headers, body = await login(server.http, server.url, "agent1", "the-right-password")
    assert status == 429
    assert body["error"]["code"] == "rate_limited"
    retry = int(headers["Retry-After"])
    assert 1 <= retry <= 101 and body["error"]["retry_after_s"] == retry
    assert ErrorOut.model_validate(body).error.retry_after_s == retry  # the contract's model
    # another address is not held back by this one's attempts
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        status, _, body = await login(other, server.url, "agent1", "the-right-password")
        assert status == 200, body


@pytest.mark.parametrize(
    "settings_overrides", [{"login_account_rate": 0.01, "login_account_burst": 2}]
)
async def test_failed_sign_ins_are_rate_limited_per_username_from_any_address(server):
    await server.ctx.accounts.add_user("agent1", "agent", "the-right-password")
    await server.ctx.accounts.add_user("agent2", "agent", "another-password")
    assert (await login(server.http, server.url, "agent1", "the-right-password"))[0] == 200
    assert (await login(server.http, server.url, "agent1", "wrong"))[0] == 401
    assert (await login(server.http, server.url, "Agent1", "wrong"))[0] == 401  # same name
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        # from another address, even with the right password: the username waits
        status, headers, body = await login(other, server.url, "agent1", "the-right-password")
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert int(headers["Retry-After"]) >= 1
        # other usernames are not held back, and an unknown one is limited the same way
        assert (await login(other, server.url, "agent2", "another-password"))[0] == 200
        for _ in range(2):
            assert (await login(other, server.url, "nobody", "wrong"))[0] == 401
        assert (await login(other, server.url, "nobody", "wrong"))[0] == 429


@pytest.mark.parametrize(
    "settings_overrides",
    [{**PRODUCTION_COST, "password_hash_threads": 1, "password_hash_max_waiting": 1}],
)
async def test_checks_beyond_the_waiting_room_are_refused_at_once(server):
    answers = await asyncio.gather(
        *(login(server.http, server.url, f"nobody{n}", "wrong") for n in range(6))
    )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(401) >= 2 and statuses.count(429) >= 1, statuses
    refused = next(a for a in answers if a[0] == 429)
    assert refused[2]["error"]["code"] == "rate_limited" and refused[1]["Retry-After"] == "1"
