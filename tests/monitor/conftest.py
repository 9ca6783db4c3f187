"""Monitor fixtures: a node on SQLite and PostgreSQL (tests/conftest.py), with the in-memory
or the Redis monitoring store; a Socket.IO client that plays the media leg's signaling (the
worker test uses the real worker); the taxpayer's whole event stream, checked clean."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import Client, RunningServer
from tests.recording.conftest import start_session

REDIS_URL = "redis://127.0.0.1:6379/0"

# What a taxpayer's connection may receive during a monitored call: the call's own events.
TAXPAYER_EVENTS = {
    "queue:update",
    "session:start",
    "session:recording",
    "session:notice",
    "session:peer",
    "session:end",
    "rtc:signal",
    "session:loop",
    "session:roster",  # who is in the call (multiparty): the visible people only
}


@pytest.fixture(params=["memory", "redis"])
async def settings_overrides(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The monitoring store in memory, and in Redis (a key prefix per test)."""
    if request.param == "memory":
        yield {"recorder_autostart": False}
        return
    prefix = f"vtaxmon-{secrets.token_hex(4)}:"
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - the machine runs Redis (DESIGN.md)
        await client.aclose()
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield {"redis_url": REDIS_URL, "redis_prefix": prefix, "recorder_autostart": False}
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def recorder_token(server: RunningServer, worker: str = "leg-test") -> str:
    return server.ctx.issuer.issue(worker, "recorder")


async def leg_client(server: RunningServer, clients: Callable[..., Any]) -> Client:
    leg = await clients(server, recorder_token(server))
    ack = await leg.call("leg:hello", {"worker": "leg-test", "capacity": 4})
    assert ack == {"ok": True}, ack
    return leg


async def monitored_call(
    server: RunningServer, clients: Callable[..., Any]
) -> tuple[Client, Client, dict[str, Any], dict[str, Any]]:
    return await start_session(server, clients)  # type: ignore[return-value]


def assert_taxpayer_clean(taxpayer: Client, *secrets_: str) -> None:
    """Every event the taxpayer's connection received is one of the call's own, and none
    carries a monitor's, the leg's or a supervisor's id, or a word of monitoring beyond the
    notice every call gets."""
    assert set(taxpayer.received) <= TAXPAYER_EVENTS, set(taxpayer.received)
    text = json.dumps(taxpayer.received, default=str)
    for secret in secrets_:
        assert secret not in text, secret
    for word in ("monitor:", "leg", "whisper", "supervisor"):
        assert word not in text, word
    for notice in taxpayer.received.get("session:notice", []):
        assert set(notice) == {"session_id", "notice"}, notice
        assert notice["notice"] == "may_be_monitored"
