"""Appointments meet the live queue: a checked-in booking joins as a ticket (ahead of the
walk-ins of its line when on time, its wait counted from T), its fate goes back to the booking
(served on accept, cancelled when it leaves unserved), and a waiting taxpayer may ask for a
callback (docs/appointments.md, "Wiring")."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from vtax.app.appointments import Appointments
from vtax.app.ports import Caller
from vtax.app.queueing import Queueing, acting_of
from vtax.contract import client_events as ce
from vtax.contract.appointments import CallbackIn, CallbackOut
from vtax.errors import DomainError
from vtax.queue import Ticket
from vtax.queue.model import BOOKED_PRIORITY

log = logging.getLogger(__name__)


class BookedQueue:
    def __init__(self, appointments: Appointments, queueing: Queueing) -> None:
        self.appointments = appointments
        self.queueing = queueing
        queueing.accepted_hooks.append(self._accepted)
        queueing.notices.left_hooks.append(self._left)

    async def check_in(self, caller: Caller, p: ce.AppointmentCheckIn) -> ce.CheckedIn:
        """Check the booking in (the use case decides on time or walk-in) and queue its
        ticket with the booking's business; a repeat answers the ticket already waiting."""
        if caller.role != "taxpayer":
            raise DomainError("forbidden", "only the booking's taxpayer checks in")
        engine = self.queueing.engine
        if await self.queueing.calls.session_id_of(caller.subject) is not None:
            raise DomainError("in_session", "you are in a video session already")
        out = await self.appointments.check_in(caller, p.booking_id)
        b = out.booking
        if b.state == "queued" and b.ticket_id is not None:
            waiting = await engine.ticket(b.ticket_id)
            if waiting is not None:  # the same check-in again (a reload): the same ticket
                position, eta = await engine.estimate(waiting.id)
                return ce.CheckedIn(
                    booking=b,
                    verdict=out.verdict,
                    joined_at=out.joined_at,
                    ticket_id=waiting.id,
                    position=position,
                    eta_s=eta,
                )
            raise DomainError("invalid_state", "the booking's ticket has left the queue")
        held = await engine.waiting_ticket(caller.subject)
        if held is not None:
            raise DomainError(
                "already_queued", "you are already waiting in the queue with another ticket"
            )
        ticket = Ticket(
            id=str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
            taxpayer_id=caller.subject,
            category=b.category,
            language=b.language,
            channel=b.channel,
            question=b.question,
            joined_at=datetime.fromisoformat(out.joined_at).timestamp(),
            # on time: ahead of the walk-ins of the line, by T; late: a walk-in
            priority=BOOKED_PRIORITY if out.verdict == "on_time" else out.priority,
            conn_id=caller.conn,
            booking_id=b.id,
            booked_on_time=out.verdict == "on_time",
        )
        # A refusal (queue closed, full) leaves the booking checked in: the check-in may be
        # repeated and gives the same entry (the same place relative to T).
        position, eta = await self.queueing.enqueue(ticket, acting_of(caller))
        booking = await self.appointments.queued(b.id, ticket.id)
        return ce.CheckedIn(
            booking=booking,
            verdict=out.verdict,
            joined_at=out.joined_at,
            ticket_id=ticket.id,
            position=position,
            eta_s=eta,
        )

    async def request_callback(self, caller: Caller, p: ce.CallbackRequest) -> CallbackOut:
        """The caller's own waiting ticket only; the engine's estimate and the queue's hours
        decide whether a callback is offered."""
        engine = self.queueing.engine
        ticket = await engine.ticket(p.ticket_id)
        if ticket is None or ticket.taxpayer_id != caller.subject:
            raise DomainError("not_found", "no such waiting ticket")
        _, eta = await engine.estimate(ticket.id)
        hours = engine.book.of(ticket.category).hours
        queue_open = hours is None or hours.is_open(self.appointments.clock())
        body = CallbackIn(ticket_id=p.ticket_id, phone=p.phone, locale=p.locale)
        out = await self.appointments.request_callback(
            caller, body, eta_s=eta, queue_open=queue_open
        )
        if out.state in ("waiting", "notified"):
            # The place is kept while the page is closed; offered once the taxpayer is back.
            await engine.hold(ticket.id, caller.subject, True)
        return out

    async def rejoin(self, caller: Caller, p: ce.QueueRejoin) -> ce.Queued:
        """`queue:rejoin`: a taxpayer back for a callback ticket connects it (it may be
        offered again), then takes the ticket up as after any drop."""
        ticket = await self.queueing.engine.ticket(p.ticket_id)
        if ticket is not None and ticket.taxpayer_id == caller.subject and ticket.held:
            await self.appointments.callback_back(caller, ticket.id)
            await self.queueing.engine.hold(ticket.id, caller.subject, False)
        return await self.queueing.rejoin(caller, p)

    async def _accepted(self, ticket: Ticket, session_id: str) -> None:
        if not ticket.booking_id:
            return
        try:  # the session runs whatever happens to the booking's record
            await self.appointments.served(ticket.booking_id, session_id)
        except Exception:
            log.exception("booking %s: could not record it served", ticket.booking_id)

    async def _left(self, ticket: Ticket, reason: str) -> None:
        if not ticket.booking_id:
            return
        try:
            await self.appointments.left(ticket.booking_id, reason)
        except Exception:
            log.exception("booking %s: could not record it left (%s)", ticket.booking_id, reason)
