"""The link between a session an agent transferred and the session it continues in: one audit
event on each (the log is append-only, so the link is part of both histories)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.review import audit
from vtax.review.audit import Actor


async def link_transfer(
    sessions: async_sessionmaker[AsyncSession],
    from_session: str,
    to_session: str,
    at: datetime,
    actor: Actor,
    target: dict[str, Any],
) -> None:
    """`transferred_out` on the old session, `transferred_in` on the new one, in one
    transaction. `target` names the queue (category, language) and the agent's note."""
    async with sessions() as db, db.begin():
        audit.append(db, from_session, at, actor, "transferred_out", {"to": to_session, **target})
        audit.append(db, to_session, at, actor, "transferred_in", {"from": from_session, **target})
