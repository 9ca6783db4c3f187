"""Queue entities. Times are Unix seconds (floats) from the engine's clock.

Tickets and agents travel between the engine and a backend as flat string maps (a Redis hash
is one), so both backends store exactly the same fields."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

AgentStatus = Literal["offline", "available", "reserved", "busy", "wrap_up", "away"]
AGENT_STATUSES: tuple[AgentStatus, ...] = (
    "offline",
    "available",
    "reserved",
    "busy",
    "wrap_up",
    "away",
)
# Priority classes a taxpayer may declare at join; the number is the priority level.
PRIORITY_CLASSES: dict[str, int] = {"normal": 0, "elderly": 1, "accessibility": 1}
# An appointment checked in on time (inside [T - early, T + late]) is served at the level
# above every class, by its time T, before the walk-ins of its line however long they waited
# (docs/appointments.md); it is never a class a taxpayer declares.
BOOKED_PRIORITY = 2
PRIORITY_LEVELS: tuple[int, ...] = (0, 1, BOOKED_PRIORITY)
# A taxpayer an agent transferred to another queue is served at level 1 there (counted as
# `aging_s` of waiting), so they do not start again from the back of the line.
TRANSFER_PRIORITY = 1
# Proficiency levels an agent may have in a business category.
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)


def _num(text: str | None, default: float = 0.0) -> float:
    return float(text) if text else default


# Profiles change rarely and are read on every step: parse and print each shape once.
@lru_cache(maxsize=4096)
def _skills_of(text: str) -> tuple[tuple[str, int], ...]:
    return tuple((k, int(v)) for k, v in json.loads(text or "{}").items())


@lru_cache(maxsize=4096)
def _languages_of(text: str) -> frozenset[str]:
    return frozenset(json.loads(text or "[]"))


@lru_cache(maxsize=4096)
def _skills_text(items: tuple[tuple[str, int], ...]) -> str:
    return json.dumps(dict(items), sort_keys=True)


@lru_cache(maxsize=4096)
def _languages_text(languages: frozenset[str]) -> str:
    return json.dumps(sorted(languages))


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
    conn_id: str | None = None  # the taxpayer connection waiting; None while dropped
    dropped_at: float | None = None  # when the connection dropped (grace runs from here)
    booking_id: str = ""  # the appointment it came from ("" for a walk-in)
    booked_on_time: bool = False  # checked in inside [T - early, T + late]: ahead of walk-ins
    held: bool = False  # a callback keeps the place: not offered, not dropped while away
    consultation_id: str | None = None  # the assistant's conversation it was handed off from

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "taxpayer_id": self.taxpayer_id,
            "category": self.category,
            "language": self.language,
            "channel": self.channel,
            "question": self.question,
            "joined_at": repr(self.joined_at),
            "priority": str(self.priority),
            "offer_id": self.offer_id or "",
            "conn_id": self.conn_id or "",
            "dropped_at": "" if self.dropped_at is None else repr(self.dropped_at),
            "booking_id": self.booking_id,
            "booked_on_time": "1" if self.booked_on_time else "",
            "held": "1" if self.held else "",
            "consultation_id": self.consultation_id or "",
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> Ticket:
        return cls(
            id=f["id"],
            session_id=f["session_id"],
            taxpayer_id=f["taxpayer_id"],
            category=f["category"],
            language=f["language"],
            channel=f["channel"],
            question=f["question"],
            joined_at=float(f["joined_at"]),
            priority=int(f.get("priority") or 0),
            offer_id=f.get("offer_id") or None,
            conn_id=f.get("conn_id") or None,
            dropped_at=float(f["dropped_at"]) if f.get("dropped_at") else None,
            booking_id=f.get("booking_id") or "",
            booked_on_time=f.get("booked_on_time") == "1",
            held=f.get("held") == "1",
            consultation_id=f.get("consultation_id") or None,
        )


@dataclass(slots=True)
class AgentState:
    """An agent's profile (skills, languages, capacity) and routing state."""

    id: str
    name: str
    skills: dict[str, int]  # category -> proficiency 1..5
    languages: frozenset[str]
    capacity: int = 1  # simultaneous sessions; a video agent serves one at a time
    status: AgentStatus = "offline"
    reason: str = ""
    idle_since: float = 0.0  # when the agent last became available
    offer_id: str | None = None
    session_id: str | None = None
    sessions_today: int = 0
    sessions_day: str = ""  # the day sessions_today counts
    missed_offers: int = 0  # offers in a row that expired unanswered
    last_offer_at: float = 0.0
    ready_at: float = 0.0  # no offers before this (cool-down after a reject or a miss)
    answered_at: float = 0.0  # start of the current session (handle time)
    ended_at: float = 0.0  # end of the last session (wrap-up time)
    ticket_category: str = ""  # category of the current or last session
    status_since: float = 0.0  # when the agent entered its current status

    def level(self, category: str) -> int:
        return self.skills.get(category, 0)

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "skills": _skills_text(tuple(sorted(self.skills.items()))),
            "languages": _languages_text(self.languages),
            "capacity": str(self.capacity),
            "status": self.status,
            "reason": self.reason,
            "idle_since": repr(self.idle_since),
            "offer_id": self.offer_id or "",
            "session_id": self.session_id or "",
            "sessions_today": str(self.sessions_today),
            "sessions_day": self.sessions_day,
            "missed_offers": str(self.missed_offers),
            "last_offer_at": repr(self.last_offer_at),
            "ready_at": repr(self.ready_at),
            "answered_at": repr(self.answered_at),
            "ended_at": repr(self.ended_at),
            "ticket_category": self.ticket_category,
            "status_since": repr(self.status_since),
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> AgentState:
        return cls(
            id=f["id"],
            name=f.get("name", ""),
            skills=dict(_skills_of(f.get("skills") or "")),
            languages=_languages_of(f.get("languages") or ""),
            capacity=int(f.get("capacity") or 1),
            status=f.get("status", "offline"),  # type: ignore[arg-type]
            reason=f.get("reason", ""),
            idle_since=_num(f.get("idle_since")),
            offer_id=f.get("offer_id") or None,
            session_id=f.get("session_id") or None,
            sessions_today=int(f.get("sessions_today") or 0),
            sessions_day=f.get("sessions_day", ""),
            missed_offers=int(f.get("missed_offers") or 0),
            last_offer_at=_num(f.get("last_offer_at")),
            ready_at=_num(f.get("ready_at")),
            answered_at=_num(f.get("answered_at")),
            ended_at=_num(f.get("ended_at")),
            ticket_category=f.get("ticket_category", ""),
            status_since=_num(f.get("status_since")),
        )


@dataclass(slots=True)
class Offer:
    """A reservation of one ticket for one agent, until it is accepted or expires."""

    id: str
    ticket_id: str
    agent_id: str
    created_at: float
    expires_at: float
    revoked: bool = field(default=False)

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "ticket_id": self.ticket_id,
            "agent_id": self.agent_id,
            "created_at": repr(self.created_at),
            "expires_at": repr(self.expires_at),
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> Offer:
        return cls(
            f["id"], f["ticket_id"], f["agent_id"], float(f["created_at"]), float(f["expires_at"])
        )
