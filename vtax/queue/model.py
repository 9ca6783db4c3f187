"""Queue entities. Times are Unix seconds (floats) from the engine's clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AgentStatus = Literal["offline", "available", "reserved", "busy", "wrap_up", "away"]


@dataclass(slots=True)
class Ticket:
    """A taxpayer's request waiting for an agent."""

    id: str
    session_id: str
    taxpayer_id: str
    category: str
    language: str
    channel: str
    question: str
    joined_at: float
    priority: int = 0  # higher is served first (e.g. elderly, accessibility needs)
    offer_id: str | None = None  # the offer that currently reserves it


@dataclass(slots=True)
class AgentState:
    id: str
    name: str
    skills: dict[str, int]  # category -> proficiency 1..5
    languages: frozenset[str]
    status: AgentStatus = "offline"
    reason: str = ""
    idle_since: float = 0.0
    offer_id: str | None = None
    session_id: str | None = None
    sessions_today: int = 0
    missed_offers: int = 0


@dataclass(slots=True)
class Offer:
    """A reservation of one ticket for one agent, until it is accepted or expires."""

    id: str
    ticket_id: str
    agent_id: str
    created_at: float
    expires_at: float
    revoked: bool = field(default=False)
