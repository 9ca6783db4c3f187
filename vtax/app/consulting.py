"""The assistant's conversation as the taxpayer's pages reach it (`consultation:*`), with the
hand-off into the queue: when a hand-off's route is `queue`, the taxpayer joins the queue
exactly as with `queue:join`, with the ticket the conversation built (category, service
language, channel, and the summary and transcript as the question the agent reads in
`offer:new`), and the conversation's id on the ticket. A refusal of the queue (full, wait too
long, no agents, closed) falls back to the callback offer: the hand-off still stands and the
assistant keeps answering.

Out of hours (`route == "callback"`) nothing joins: the page offers a callback or an
appointment (the appointments' use cases) with the same ticket text."""

from __future__ import annotations

import logging

from vtax.app.consultation import Consultations
from vtax.app.ports import Caller
from vtax.app.queueing import Queueing, acting_of
from vtax.assistant.dialogue import say
from vtax.contract.consultation import (
    ConsultationAskIn,
    ConsultationCloseIn,
    ConsultationFeedbackIn,
    ConsultationHandoffIn,
    ConsultationStartIn,
    ConsultationView,
    FeedbackView,
    HandoffView,
    QueuePlace,
    ReplyView,
)
from vtax.errors import DomainError

log = logging.getLogger(__name__)


class Consulting:
    """`Consultations` for a connected taxpayer, each hand-off carried into the queue."""

    def __init__(self, consultations: Consultations, queueing: Queueing) -> None:
        self.consultations = consultations
        self.queueing = queueing

    async def start(self, caller: Caller, body: ConsultationStartIn) -> ConsultationView:
        return await self.consultations.start(caller, body)

    async def ask(self, caller: Caller, body: ConsultationAskIn) -> ReplyView:
        reply = await self.consultations.ask(caller, body)
        if reply.handoff is not None:
            reply = reply.model_copy(update={"handoff": await self.join(caller, reply.handoff)})
        return reply

    async def feedback(self, caller: Caller, body: ConsultationFeedbackIn) -> FeedbackView:
        view = await self.consultations.feedback(caller, body)
        if view.handoff is not None:
            view = view.model_copy(update={"handoff": await self.join(caller, view.handoff)})
        return view

    async def hand_off(self, caller: Caller, body: ConsultationHandoffIn) -> HandoffView:
        return await self.join(caller, await self.consultations.hand_off(caller, body))

    async def close(self, caller: Caller, body: ConsultationCloseIn) -> ConsultationView:
        return await self.consultations.close(caller, body)

    async def join(self, caller: Caller, handoff: HandoffView) -> HandoffView:
        """Join the queue with the hand-off's ticket (route `queue`); on a refusal, offer the
        callback instead and record that route on the conversation."""
        if handoff.route != "queue":
            return handoff
        draft = handoff.ticket
        try:
            ticket = await self.queueing.new_ticket(
                caller,
                draft.category,
                draft.language,
                draft.channel,
                draft.question,
                consultation_id=handoff.conversation_id,
            )
            position, eta = await self.queueing.enqueue(ticket, acting_of(caller))
        except DomainError as exc:
            if exc.code in ("already_queued", "in_session"):  # waiting or in a call already
                return handoff.model_copy(update={"queue_refused": exc.code})
            log.info("hand-off %s: the queue refused (%s)", handoff.conversation_id, exc.code)
            await self.consultations.fell_back(handoff.conversation_id)
            page = await self.consultations.page_language(handoff.conversation_id)
            return handoff.model_copy(
                update={
                    "route": "callback",
                    "queue_refused": exc.code,
                    "message": say("handoff_callback", page),
                }
            )
        place = QueuePlace(ticket_id=ticket.id, position=position, eta_s=eta)
        return handoff.model_copy(update={"queued": place})
