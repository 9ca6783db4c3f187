"""The job that sends the outbox's texts through the SMS sender (vtax/sms.py): any node may
run it; the outbox's leases keep two nodes from sending one message. A reminder for a booking
that is no longer coming (cancelled, moved) is skipped, not sent; the first reminder sent
moves the booking to `reminded`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from vtax.appointments.bookings import Bookings
from vtax.appointments.outbox import Claimed, Outbox
from vtax.appointments.texts import compose
from vtax.errors import DomainError
from vtax.sms import SmsError, SmsSender

log = logging.getLogger(__name__)
STILL_COMING = ("approved", "reminded")


class ReminderJob:
    def __init__(
        self,
        outbox: Outbox,
        bookings: Bookings,
        sms: SmsSender,
        tz: ZoneInfo,
        owner: str,
        *,
        lease_s: float = 60.0,
        retry_s: float = 60.0,
        batch: int = 20,
    ) -> None:
        self.outbox, self.bookings, self.sms, self.tz = outbox, bookings, sms, tz
        self.owner, self.lease_s, self.retry_s, self.batch = owner, lease_s, retry_s, batch

    async def _wanted(self, item: Claimed) -> bool:
        if item.booking_id is None or item.kind != "reminder":
            return True
        try:
            b = await self.bookings.get(item.booking_id)
        except DomainError:
            return False
        return b.state in STILL_COMING

    async def run_once(self, now: datetime) -> int:
        """Send what is due; the number sent."""
        sent = 0
        for item in await self.outbox.claim(self.owner, now, self.lease_s, self.batch):
            if not await self._wanted(item):
                await self.outbox.skipped(item.id, self.owner, now)
                continue
            try:
                text = compose(item.kind, item.locale, item.data, self.tz)
                await self.sms.send(item.phone, text)
            except (SmsError, KeyError, ValueError) as exc:
                log.warning("text %s (%s) not sent: %s", item.id, item.kind, exc)
                await self.outbox.failed(item, self.owner, now, str(exc), self.retry_s)
                continue
            if await self.outbox.sent(item.id, self.owner, now):
                sent += 1
            if item.kind == "reminder" and item.booking_id is not None:
                await self.bookings.reminded(item.booking_id, now)
        return sent

    async def run(
        self, stop: asyncio.Event, interval_s: float = 1.0, clock: Callable[[], float] | None = None
    ) -> None:
        """Until `stop` is set: send what is due every `interval_s` (errors logged, retried)."""
        while not stop.is_set():
            now = datetime.fromtimestamp(clock() if clock else datetime.now(UTC).timestamp(), UTC)
            try:
                await self.run_once(now)
            except Exception:
                log.exception("the reminder job failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass
