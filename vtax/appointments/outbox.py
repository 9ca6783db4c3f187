"""The text outbox: messages to phones (confirmations, reminders, pre-review results, callback
notices) written in the same transaction as the step that causes them, and sent by a job on
any node. A node claims due messages with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED, so two
nodes never take the same row; SQLite: one writer), sends, and marks them sent only while it
still holds the lease. A node that dies mid-send leaves the lease to run out and another
node takes the message again: at most one send is in flight per message at any time."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.appointments.tables import OutboxMessage
from vtax.db import UTCDateTime

MAX_ERROR = 300


def enqueue(
    db: AsyncSession,
    *,
    dedupe: str,
    kind: str,
    phone: str,
    locale: str,
    due_at: datetime,
    booking_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Add a message to the caller's transaction. `dedupe` is unique: a step that could run
    twice would fail its transaction on the second message, so each caller names one that
    its compare-and-set step makes happen once (booking id + kind, callback id + attempt)."""
    db.add(
        OutboxMessage(
            id=str(uuid.uuid4()),
            dedupe=dedupe[:120],
            booking_id=booking_id,
            kind=kind,
            phone=phone,
            locale=locale,
            data=data or {},
            due_at=due_at,
            state="pending",
            attempts=0,
        )
    )


async def skip_pending(db: AsyncSession, booking_id: str, now: datetime) -> None:
    """The booking's unsent messages are no longer wanted (cancelled, rescheduled)."""
    await db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.booking_id == booking_id, OutboxMessage.state == "pending")
        .values(state="skipped", sent_at=now, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    booking_id: str | None
    kind: str
    phone: str
    locale: str
    data: dict[str, Any]
    attempts: int


@functools.cache
def _pg_claim() -> Any:
    # A plain `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` may run
    # the sub-select more than once and lock more than n rows; MATERIALIZED runs it once.
    return text("""
        WITH due AS MATERIALIZED (
            SELECT id FROM appointment_outbox
            WHERE state = 'pending' AND due_at <= :now
              AND (lease_until IS NULL OR lease_until <= :now)
            ORDER BY due_at, id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        UPDATE appointment_outbox AS o
        SET lease_owner = :owner, lease_until = :until, attempts = o.attempts + 1
        FROM due WHERE o.id = due.id
        RETURNING o.id
    """).bindparams(
        bindparam("now", type_=UTCDateTime()),
        bindparam("until", type_=UTCDateTime()),
    )


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_attempts: int = 5) -> None:
        self._sessions = sessions
        self.max_attempts = max_attempts

    async def claim(
        self, owner: str, now: datetime, lease_s: float, limit: int = 20
    ) -> list[Claimed]:
        """Take up to `limit` due messages for `lease_s` seconds."""
        until = now + timedelta(seconds=lease_s)
        o = OutboxMessage
        async with self._sessions() as db, db.begin():
            if db.get_bind().dialect.name == "postgresql":
                params = {"now": now, "until": until, "owner": owner, "limit": limit}
                ids = list((await db.execute(_pg_claim(), params)).scalars())
            else:
                due = (
                    select(o.id)
                    .where(
                        o.state == "pending",
                        o.due_at <= now,
                        (o.lease_until.is_(None)) | (o.lease_until <= now),
                    )
                    .order_by(o.due_at, o.id)
                    .limit(limit)
                    .scalar_subquery()
                )
                ids = list(
                    (
                        await db.execute(
                            update(o)
                            .where(o.id.in_(due))
                            .values(lease_owner=owner, lease_until=until, attempts=o.attempts + 1)
                            .returning(o.id)
                            .execution_options(synchronize_session=False)
                        )
                    ).scalars()
                )
            if not ids:
                return []
            rows = (await db.execute(select(o).where(o.id.in_(ids)).order_by(o.due_at))).scalars()
            return [
                Claimed(r.id, r.booking_id, r.kind, r.phone, r.locale, dict(r.data), r.attempts)
                for r in rows
            ]

    async def _finish(self, item_id: str, owner: str, **values: Any) -> bool:
        o = OutboxMessage
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                update(o)
                .where(o.id == item_id, o.lease_owner == owner, o.state == "pending")
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    async def sent(self, item_id: str, owner: str, now: datetime) -> bool:
        """Mark sent; False if the lease was lost meanwhile (another node has it now)."""
        return await self._finish(
            item_id, owner, state="sent", sent_at=now, lease_owner=None, lease_until=None
        )

    async def skipped(self, item_id: str, owner: str, now: datetime) -> bool:
        return await self._finish(
            item_id, owner, state="skipped", sent_at=now, lease_owner=None, lease_until=None
        )

    async def failed(
        self, item: Claimed, owner: str, now: datetime, error: str, retry_s: float
    ) -> bool:
        """A send failed: try again after `retry_s`, or give up after `max_attempts`."""
        if item.attempts >= self.max_attempts:
            return await self._finish(
                item.id, owner, state="failed", last_error=error[:MAX_ERROR], lease_owner=None
            )
        return await self._finish(
            item.id,
            owner,
            last_error=error[:MAX_ERROR],
            lease_owner=None,
            lease_until=now + timedelta(seconds=retry_s),
        )

    async def states(self, booking_id: str) -> list[tuple[str, str]]:
        """(kind, state) of a booking's messages, oldest due first (for views and tests)."""
        o = OutboxMessage
        async with self._sessions() as db:
            rows = await db.execute(
                select(o.kind, o.state).where(o.booking_id == booking_id).order_by(o.due_at, o.kind)
            )
            return [(k, s) for k, s in rows.all()]
