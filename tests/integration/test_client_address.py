"""The client address behind a trusted proxy, on a real node (signaling/http_api.py
`client_address`): the SMS per-address limits and the staff sign-in gate count the client
nginx names in `X-Forwarded-For` when the peer is a trusted proxy, and the peer otherwise;
a client talking to the node directly cannot pick its address with the header.

The test's own connections stand in for the proxy (127.0.0.1, trusted here) and for a client
that is not a proxy (127.0.0.2, bound with aiohttp's `local_addr`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.databases import Templates
from vtax.db import migrate

LIMITS = {
    "identity_providers": ["sms"],
    "sign_in_code_per_address": 2,
    "sign_in_code_per_number": 100,
    "sign_in_code_resend_s": 0.0,
    "login_address_rate": 0.001,
    "login_address_burst": 2,
}
BEHIND_NGINX = {**LIMITS, "trusted_proxies": ["127.0.0.1"]}


@pytest.fixture
async def database_url(tmp_path: Path, templates: Templates) -> AsyncIterator[str]:
    """The address is the transport's business: SQLite only (overrides the root)."""
    await templates.sqlite_copy("migrated", migrate, tmp_path / "vtax.db")
    yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"


@pytest.fixture
async def direct() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that is not a proxy: another loopback address."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        yield http


class Phones:
    """A fresh (unregistered) mainland number each time: the per-number limits stay out of
    the way, and an unknown number is answered like a known one."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"+86139{self.n:08d}"


async def ask_code(
    http: aiohttp.ClientSession, url: str, phone: str, forwarded: str | None
) -> tuple[int, Any]:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    async with http.post(url + "/api/auth/sms/code", json={"phone": phone}, headers=headers) as r:
        return r.status, await r.json()


async def login(
    http: aiohttp.ClientSession, url: str, password: str, forwarded: str | None
) -> tuple[int, Any]:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    async with http.post(
        url + "/api/auth/login",
        json={"username": "agent1", "password": password},
        headers=headers,
    ) as r:
        return r.status, await r.json()


def limited(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return status == 429 and body["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("settings_overrides", [BEHIND_NGINX])
async def test_sms_codes_are_counted_per_forwarded_client(server, direct):
    phone = Phones()
    proxy = server.http  # from 127.0.0.1: the trusted proxy
    first, second = "198.51.100.1", "198.51.100.2"
    assert [(await ask_code(proxy, server.url, phone(), first))[0] for _ in range(2)] == [200] * 2
    refused = await ask_code(proxy, server.url, phone(), first)
    assert limited(refused) and "address" in refused[1]["error"]["message"], refused
    # another client behind the same proxy has its own limit; a chain through the proxy
    # names the client at its right end
    assert (await ask_code(proxy, server.url, phone(), second))[0] == 200
    assert (await ask_code(proxy, server.url, phone(), f"6.6.6.6, {second}"))[0] == 200
    assert limited(await ask_code(proxy, server.url, phone(), second))
    # an IPv6 client is counted by its /64 (one subscriber's prefix)
    assert (await ask_code(proxy, server.url, phone(), "2001:db8:1:2::10"))[0] == 200
    assert (await ask_code(proxy, server.url, phone(), "[2001:db8:1:2::11]:4433"))[0] == 200
    assert limited(await ask_code(proxy, server.url, phone(), "2001:db8:1:2::12"))
    # garbage from the proxy: the proxy itself is counted (its own, still fresh, limit)
    assert (await ask_code(proxy, server.url, phone(), "unknown"))[0] == 200
    assert (await ask_code(proxy, server.url, phone(), None))[0] == 200  # no header: the peer
    assert limited(await ask_code(proxy, server.url, phone(), "not-an-address"))

    # A client that is not a trusted proxy: its header is ignored. Naming the exhausted
    # address does not charge it, naming fresh ones does not escape its own limit.
    assert (await ask_code(direct, server.url, phone(), first))[0] == 200
    assert (await ask_code(direct, server.url, phone(), "198.51.100.77"))[0] == 200
    assert limited(await ask_code(direct, server.url, phone(), "198.51.100.78"))
    assert limited(await ask_code(proxy, server.url, phone(), first))  # still its own


@pytest.mark.parametrize("settings_overrides", [BEHIND_NGINX])
async def test_the_staff_sign_in_gate_counts_the_forwarded_client(server, direct):
    await server.ctx.accounts.add_user("agent1", "agent", "the-right-password")
    proxy = server.http
    guesser, owner = "203.0.113.50", "203.0.113.60"
    assert [(await login(proxy, server.url, "wrong", guesser))[0] for _ in range(2)] == [401] * 2
    assert limited(await login(proxy, server.url, "the-right-password", guesser))
    # the guesser's address is held back, not everybody behind the proxy
    status, body = await login(proxy, server.url, "the-right-password", owner)
    assert status == 200, body
    # a direct client naming the owner's address spends its own budget, not the owner's
    for _ in range(2):
        assert (await login(direct, server.url, "wrong", owner))[0] == 401
    assert limited(await login(direct, server.url, "the-right-password", "203.0.113.99"))
    assert (await login(proxy, server.url, "the-right-password", owner))[0] == 200


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_without_trusted_proxies_the_header_is_ignored(server):
    phone = Phones()
    assert (await ask_code(server.http, server.url, phone(), "198.51.100.1"))[0] == 200
    assert (await ask_code(server.http, server.url, phone(), "198.51.100.2"))[0] == 200
    assert limited(await ask_code(server.http, server.url, phone(), "198.51.100.3"))
