"""What the web app keeps for its lifetime (on the app, never module-level state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from vtax.accounts import Accounts
from vtax.auth import TokenIssuer
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.review.records import SessionRecords


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    issuer: TokenIssuer
    accounts: Accounts
    records: SessionRecords
    catalog: Catalog
    hub: Any = None  # signaling.hub.Hub
    relay: Any = None  # signaling.sessions.SessionRelay
    queue: Any = None  # signaling.queueing.QueueHandlers
    redis: Any = None  # redis.asyncio.Redis when VTAX_REDIS_URL is set (shared by the node)
    draining: bool = False
    # Extra readiness checks for /readyz: each returns (name, "ok" or "failed: why").
    ready_checks: list[Callable[[], Awaitable[tuple[str, str]]]] = field(default_factory=list)


CONTEXT = web.AppKey("vtax", AppContext)
