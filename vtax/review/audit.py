"""The append-only audit log of a session: who did what, when. Rows are only ever inserted
(the database refuses UPDATE and DELETE on the table, see migration 0002)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vtax.models import SessionEvent


@dataclass(frozen=True, slots=True)
class Actor:
    role: str
    id: str | None


SYSTEM = Actor("system", None)


def append(
    db: AsyncSession,
    session_id: str,
    at: datetime,
    actor: Actor,
    kind: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Add one audit event to the caller's transaction."""
    db.add(
        SessionEvent(
            session_id=session_id,
            at=at,
            actor_role=actor.role,
            actor_id=actor.id,
            kind=kind,
            data=data or {},
        )
    )
