"""Who took part in a session, and who handled which part of it (docs/review.md, "Participants").

A row per participant of the live session (`session_participants`): the taxpayer and the agent
who answered from the start; invitees (a colleague, an interpreter) and barging supervisors when
they join. The session's owner (`service_sessions.agent_id`, whom the review loop credits) moves
with a warm transfer or a take-over; the row of each owner keeps the span it handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.errors import DomainError
from vtax.models import ServiceSession, SessionParticipantRow
from vtax.review import audit
from vtax.review.audit import Actor
from vtax.review.rollup import snapshot, write_change
from vtax.review.views import iso


@dataclass(frozen=True, slots=True)
class Joined:
    """A participant who joined: the record's role (taxpayer, agent, supervisor, invitee)."""

    session_id: str
    participant_id: str
    role: str
    user_id: str
    display_name: str = ""
    part: str = ""
    handles: bool = False  # owns the session from now on (the answering agent)


def participant_view(row: SessionParticipantRow) -> dict[str, Any]:
    return {
        "participant_id": row.participant_id,
        "role": row.role,
        "user_id": row.user_id,
        "display_name": row.display_name,
        "part": row.part,
        "joined_at": iso(row.joined_at),
        "left_at": iso(row.left_at),
        "handled_from": iso(row.handled_from),
        "handled_to": iso(row.handled_to),
    }


class ParticipantRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def joined(self, who: Joined, at: datetime, actor: Actor) -> None:
        """Add a participant's row (once per live participant id) and an audit event."""
        async with self._sessions() as db, db.begin():
            found = await db.scalar(
                select(SessionParticipantRow.id).where(
                    SessionParticipantRow.session_id == who.session_id,
                    SessionParticipantRow.participant_id == who.participant_id,
                )
            )
            if found is not None:
                return
            db.add(
                SessionParticipantRow(
                    session_id=who.session_id,
                    participant_id=who.participant_id,
                    role=who.role,
                    user_id=who.user_id,
                    display_name=who.display_name,
                    part=who.part,
                    joined_at=at,
                    handled_from=at if who.handles else None,
                )
            )
            if who.role in ("invitee", "supervisor"):
                data = {"participant_id": who.participant_id, "role": who.role, "part": who.part}
                audit.append(db, who.session_id, at, actor, "participant_joined", data)

    async def left(self, session_id: str, participant_id: str, at: datetime) -> None:
        """The participant left (or the session ended with it inside); an open span closes."""
        async with self._sessions() as db, db.begin():
            await self._close(
                db, session_id, at, SessionParticipantRow.participant_id == participant_id
            )

    async def session_over(self, session_id: str, at: datetime) -> None:
        """The session ended: everyone still in it leaves now."""
        async with self._sessions() as db, db.begin():
            await self._close(db, session_id, at, SessionParticipantRow.left_at.is_(None))

    @staticmethod
    async def _close(db: AsyncSession, session_id: str, at: datetime, which: Any) -> None:
        p = SessionParticipantRow
        base = (p.session_id == session_id, which)
        # The span first: `which` may select by `left_at` still being empty.
        await db.execute(
            update(p)
            .where(*base, p.handled_from.is_not(None), p.handled_to.is_(None))
            .values(handled_to=at)
        )
        await db.execute(update(p).where(*base, p.left_at.is_(None)).values(left_at=at))

    async def handed_over(
        self, session_id: str, from_pid: str, to_pid: str, to_user: str, at: datetime, actor: Actor
    ) -> None:
        """The session's owner changes (warm transfer, take-over): the record's agent becomes
        `to_user` (the review loop credits them), the old span closes, the new one opens."""
        p = SessionParticipantRow
        async with self._sessions() as db, db.begin():
            row = await db.get(ServiceSession, session_id, with_for_update=True)
            if row is None:
                raise DomainError("not_found", "no such session")
            before = snapshot(row)
            row.agent_id = to_user
            await write_change(db, before, row)
            await db.execute(
                update(p)
                .where(p.session_id == session_id, p.participant_id == from_pid)
                .values(handled_to=at)
            )
            await db.execute(
                update(p)
                .where(p.session_id == session_id, p.participant_id == to_pid)
                .values(handled_from=at, handled_to=None)
            )
            data = {"from": from_pid, "to": to_pid, "agent_id": to_user}
            audit.append(db, session_id, at, actor, "handed_over", data)

    async def of_session(self, session_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as db:
            rows = await db.scalars(
                select(SessionParticipantRow)
                .where(SessionParticipantRow.session_id == session_id)
                .order_by(SessionParticipantRow.joined_at, SessionParticipantRow.id)
            )
            return [participant_view(r) for r in rows]
