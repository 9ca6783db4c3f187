"""Review-loop events over Socket.IO: the agent's summary ('handle'), the taxpayer's check of
it ('check') and rating ('evaluate'); and the agent state history for occupancy. The loop
itself lives in vtax.review."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from signaling import schemas
from signaling.hub import Ack, Connection, Hub, at

log = logging.getLogger(__name__)


class ReviewEvents:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        hub.event("session:summary", schemas.SessionSummaryIn, ("agent",), self.session_summary)
        hub.event("session:check", schemas.SessionCheckIn, ("taxpayer",), self.session_check)
        hub.event("session:rate", schemas.SessionRate, ("taxpayer",), self.session_rate)
        hub.agent_state_hooks.append(self.on_agent_state)
        hub.disconnect_hooks.append(self.on_disconnect)

    async def session_summary(self, conn: Connection, p: schemas.SessionSummaryIn) -> Ack:
        self.hub.catalog.check_categories(p.category)
        self.hub.catalog.check_items(p.items)
        saved = await self.hub.records.loop.save_summary(
            p.session_id,
            conn.principal.subject,
            at(time.time()),
            asked=p.asked,
            handled=p.handled,
            result=p.result,
            items=p.items,
            category=p.category,
            actions=p.actions,
            follow_up_due=p.follow_up_due,
        )
        await self.hub.loop_changed(p.session_id, "summary", saved.parties, "taxpayer")
        return {}  # the ack stays `{ok: true}` (contract v1); the version is in the REST view

    async def session_check(self, conn: Connection, p: schemas.SessionCheckIn) -> Ack:
        checked = await self.hub.records.loop.check(
            p.session_id,
            conn.principal.subject,
            at(time.time()),
            decision="confirmed" if p.decision == "confirm" else "disputed",
            comment=p.comment,
            version=p.version,
        )
        await self.hub.loop_changed(p.session_id, "check", checked.parties, "agent")
        return dict(checked)

    async def session_rate(self, conn: Connection, p: schemas.SessionRate) -> Ack:
        rated = await self.hub.records.loop.rate(
            p.session_id,
            conn.principal.subject,
            at(time.time()),
            score=p.score,
            comment=p.comment,
            dimensions=p.dimensions.model_dump(exclude_none=True) if p.dimensions else None,
        )
        await self.hub.loop_changed(p.session_id, "rating", rated.parties, "agent")
        return {}

    async def on_agent_state(self, agent_id: str, status: str, reason: str, when: datetime) -> None:
        # History must never break the queue: a failure is logged, the state change stands.
        try:
            await self.hub.records.agent_history.record(agent_id, status, reason, when)
        except Exception:
            log.exception("could not record agent %s state %s", agent_id, status)

    async def on_disconnect(self, conn: Connection) -> None:
        """The queue takes an agent offline on disconnect without an agent:status event."""
        subject = conn.principal.subject
        if conn.principal.role == "agent" and not self.hub.has_connection(subject):
            await self.on_agent_state(subject, "offline", "disconnected", at(time.time()))
