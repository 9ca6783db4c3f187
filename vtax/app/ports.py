"""What the use cases need from the world outside the domain: who is asking, and a way to
tell people things. The transports implement these (signaling/events/hub.py is the
Socket.IO notifier); the unit tests implement them with in-memory fakes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from vtax.auth import Role
from vtax.contract.server_events import ServerEvent
from vtax.review.audit import Actor


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a request: a verified identity, and over Socket.IO its connection."""

    subject: str
    role: Role
    conn: str | None = None  # the Socket.IO connection id; None over REST
    name: str = ""
    expires_at: float = math.inf
    # a taxpayer acting for an enterprise (the token's `act`, `act_role`); "": for themselves
    acting_for: str = ""
    acting_role: str = ""
    # how sure and since when (the token's `acr`, `auth_time`): the step-up gate reads them
    acr: int = 0
    auth_time: float = 0.0

    @property
    def actor(self) -> Actor:
        return Actor(self.role, self.subject)


class Notifier(Protocol):
    """Pushes to people. Every method reaches the connection on whichever node it is."""

    async def to_user(self, subject: str, message: ServerEvent) -> None:
        """Every connection of one account (a taxpayer's, an agent's)."""
        ...

    async def to_connections(self, sids: Sequence[str], message: ServerEvent) -> None:
        """Exactly these connections."""
        ...

    async def relay(self, sids: Sequence[str], signal: dict[str, Any]) -> None:
        """The relay's hot path: a `rtc:signal` (`RelayedSignal`) as a ready dict, checked
        against its model only when outgoing validation is on."""
        ...

    async def to_role(self, role: str, message: ServerEvent) -> None:
        """Every connection of a role (supervisors)."""
        ...

    async def to_everyone_here(self, message: ServerEvent) -> None:
        """Every connection of this node (the drain notice)."""
        ...

    async def disconnect(self, sid: str) -> None:
        """Close a connection (on any node)."""
        ...

    def is_here(self, sid: str) -> bool:
        """The connection is on this node."""
        ...

    def has_connection_here(self, subject: str) -> bool:
        """The account has another connection on this node."""
        ...


def at(ts: float) -> datetime:
    """A Unix time as an aware UTC datetime (what the records store)."""
    return datetime.fromtimestamp(ts, UTC)
