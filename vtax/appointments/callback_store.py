"""The callbacks' records (appointment_callbacks) with the pure policy of callbacks.py applied
as compare-and-set steps, so any node may advance them. A notice also queues a text to the
taxpayer's phone (the outbox), in the same transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.appointments import callbacks, outbox
from vtax.appointments.callbacks import Action, Callback, CallbackRules
from vtax.appointments.tables import CallbackRow


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(d: datetime | None) -> float | None:
    return None if d is None else d.timestamp()


def _record(r: CallbackRow) -> Callback:
    return Callback(
        id=r.id,
        ticket_id=r.ticket_id,
        taxpayer_id=r.taxpayer_id,
        requested_at=r.requested_at.timestamp(),
        state=r.state,  # type: ignore[arg-type]
        attempts=r.attempts,
        notify_after=r.notify_after.timestamp(),
        window_ends_at=_ts(r.window_ends_at),
        connected_at=_ts(r.connected_at),
        phone=r.phone,
        locale=r.locale,
        version=r.version,
    )


class Callbacks:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], rules: CallbackRules | None = None
    ) -> None:
        self._sessions = sessions
        self.rules = rules or CallbackRules()

    async def request(
        self, ticket_id: str, taxpayer_id: str, now: datetime, phone: str | None, locale: str
    ) -> Callback:
        """The taxpayer asks to be called back for this ticket (a repeat returns the record)."""
        row = CallbackRow(
            id=str(uuid.uuid4()),
            ticket_id=ticket_id,
            taxpayer_id=taxpayer_id,
            requested_at=now,
            state="waiting",
            attempts=0,
            notify_after=now,
            phone=phone,
            locale=locale,
            version=1,
        )
        try:
            async with self._sessions() as db, db.begin():
                db.add(row)
        except IntegrityError:
            found = await self.get(ticket_id)
            assert found is not None
            return found
        return _record(row)

    async def get(self, ticket_id: str) -> Callback | None:
        async with self._sessions() as db:
            row = await db.scalar(select(CallbackRow).where(CallbackRow.ticket_id == ticket_id))
            return None if row is None else _record(row)

    async def _save(self, db: AsyncSession, before: Callback, after: Callback) -> bool:
        result = await db.execute(
            update(CallbackRow)
            .where(CallbackRow.id == before.id, CallbackRow.version == before.version)
            .values(
                state=after.state,
                attempts=after.attempts,
                notify_after=_dt(after.notify_after),
                window_ends_at=_dt(after.window_ends_at),
                connected_at=_dt(after.connected_at),
                version=before.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def _step(
        self, before: Callback, after: Callback, action: Action | None, now: datetime
    ) -> Action | None:
        if after == before:
            return None
        async with self._sessions() as db, db.begin():
            if not await self._save(db, before, after):
                return None  # another node advanced it first
            if action == "notify" and after.phone:
                outbox.enqueue(
                    db,
                    dedupe=f"callback:{after.id}:{after.attempts}",
                    kind="turn_near",
                    phone=after.phone,
                    locale=after.locale,
                    due_at=now,
                    data={"minutes": max(1, round(self.rules.window_s / 60))},
                )
        return action

    async def on_position(self, ticket_id: str, position: int, now: datetime) -> Action | None:
        """The queue reports the ticket's position: `notify` when the taxpayer is told now."""
        cb = await self.get(ticket_id)
        if cb is None:
            return None
        after, action = callbacks.on_position(cb, position, now.timestamp(), self.rules)
        return await self._step(cb, after, action, now)

    async def tick(self, now: datetime, limit: int = 200) -> list[tuple[str, Action]]:
        """Windows that ran out: retry later or abandon; (ticket_id, action) of each abandon."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(CallbackRow)
                .where(CallbackRow.state == "notified", CallbackRow.window_ends_at <= now)
                .limit(limit)
            )
            due = [_record(r) for r in rows.scalars()]
        out: list[tuple[str, Action]] = []
        for cb in due:
            after, action = callbacks.on_tick(cb, now.timestamp(), self.rules)
            if await self._step(cb, after, action, now) is not None and action is not None:
                out.append((cb.ticket_id, action))
        return out

    async def waiting(self, now: datetime, limit: int = 500) -> list[Callback]:
        """Callbacks waiting for their notice (past any retry delay): the queue reports their
        tickets' positions (`on_position`)."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(CallbackRow)
                .where(CallbackRow.state == "waiting")
                .order_by(CallbackRow.requested_at)
                .limit(limit)
            )
            found = [_record(r) for r in rows.scalars()]
        return [cb for cb in found if cb.notify_after <= now.timestamp()]

    async def connect(self, ticket_id: str, now: datetime) -> Callback | None:
        """The taxpayer is back on the page: the ticket may be offered again."""
        cb = await self.get(ticket_id)
        if cb is None:
            return None
        after = callbacks.on_connect(cb, now.timestamp())
        await self._step(cb, after, None, now)
        return await self.get(ticket_id)

    async def cancel(self, ticket_id: str, now: datetime) -> None:
        cb = await self.get(ticket_id)
        if cb is not None:
            await self._step(cb, callbacks.on_cancel(cb), None, now)

    def window(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.rules.window_s)
