"""What the web app keeps for its lifetime (on the app, never module-level state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from vtax.accounts import Accounts
from vtax.app.calls import Calls
from vtax.app.queueing import Queueing
from vtax.auth import TokenIssuer
from vtax.catalog import Catalog
from vtax.compose import Services
from vtax.config import Settings
from vtax.review.records import SessionRecords

if TYPE_CHECKING:
    from signaling.hub import Hub

ReadyCheck = Callable[[], Awaitable[tuple[str, str]]]


@dataclass
class AppContext:
    """The node: its application services (vtax.compose) and its Socket.IO hub."""

    services: Services
    hub: Hub
    draining: bool = False
    # Extra readiness checks for /readyz: each returns (name, "ok" or "failed: why").
    ready_checks: list[ReadyCheck] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def engine(self) -> AsyncEngine:
        """The database engine."""
        return self.services.backends.db

    @property
    def issuer(self) -> TokenIssuer:
        return self.services.issuer

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts

    @property
    def records(self) -> SessionRecords:
        return self.services.records

    @property
    def catalog(self) -> Catalog:
        return self.services.catalog

    @property
    def relay(self) -> Calls:
        return self.services.calls

    @property
    def queue(self) -> Queueing:
        return self.services.queueing

    @property
    def redis(self) -> Any:
        """The node's shared redis.asyncio client, None on the embedded default."""
        return self.services.backends.redis


CONTEXT = web.AppKey("vtax", AppContext)
