"""The in-call chat's messages, kept with the session record (table `chat_messages`).

The order of a session's messages is the database's: each insert takes the next `seq` after the
session's highest in the same statement, and the unique (session_id, seq) makes two inserts
that raced for one number (PostgreSQL, read committed) keep one and retry the other. A
sender's `client_id` is unique within the session, so a re-send finds the stored row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.models import ChatMessageRow
from vtax.review.views import iso

INSERT_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Sender:
    participant_id: str
    role: str
    subject: str
    name: str


def message_view(row: ChatMessageRow) -> dict[str, Any]:
    """A stored message as the contract's `ChatMessageView` (and `chat:message`)."""
    return {
        "session_id": row.session_id,
        "seq": row.seq,
        "client_id": row.client_id,
        "from": row.participant_id,
        "role": row.sender_role,
        "name": row.sender_name,
        "text": row.body,
        "sent_at": iso(row.sent_at),
    }


class ChatLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(
        self, session_id: str, client_id: str, sender: Sender, text: str, at: datetime
    ) -> tuple[dict[str, Any], bool]:
        """Store a message (or find it stored under the same client id): (its view,
        whether it was there already)."""
        row = ChatMessageRow
        values: dict[str, Any] = {
            "session_id": session_id,
            "client_id": client_id,
            "participant_id": sender.participant_id,
            "sender_role": sender.role,
            "sender_id": sender.subject,
            "sender_name": sender.name[:100],
            "body": text,
            "sent_at": at,
        }
        next_seq = (
            select(func.coalesce(func.max(row.seq), 0) + 1)
            .where(row.session_id == session_id)
            .scalar_subquery()
        )
        for _ in range(INSERT_ATTEMPTS):
            # The common case is one statement and its commit (on SQLite it opens the write
            # transaction at once); a conflict is a re-send (the client id is stored) or a
            # seq another insert took first (then again, with the next one).
            try:
                async with self._sessions.begin() as db:
                    seq = (
                        await db.execute(
                            insert(row).values(seq=next_seq, **values).returning(row.seq)
                        )
                    ).scalar_one()
            except IntegrityError:
                found = await self._by_client_id(session_id, sender.subject, client_id)
                if found is not None:
                    return message_view(found), True
                continue
            return message_view(row(seq=seq, **values)), False
        raise RuntimeError(f"could not store a chat message of session {session_id}")

    async def _by_client_id(
        self, session_id: str, sender_id: str, client_id: str
    ) -> ChatMessageRow | None:
        row = ChatMessageRow
        async with self._sessions() as db:
            found: ChatMessageRow | None = await db.scalar(
                select(row).where(
                    row.session_id == session_id,
                    row.sender_id == sender_id,
                    row.client_id == client_id,
                )
            )
            return found

    async def after(
        self, session_id: str, after_seq: int, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Messages with seq > after_seq in order, at most `limit`; and whether more follow."""
        row = ChatMessageRow
        async with self._sessions() as db:
            rows: Sequence[ChatMessageRow] = (
                await db.scalars(
                    select(row)
                    .where(row.session_id == session_id, row.seq > after_seq)
                    .order_by(row.seq)
                    .limit(limit + 1)
                )
            ).all()
        return [message_view(r) for r in rows[:limit]], len(rows) > limit
