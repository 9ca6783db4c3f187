"""Review-loop events over Socket.IO: the agent's summary ('handle') and the taxpayer's
rating ('evaluate'). The loop itself lives in vtax.review."""

from __future__ import annotations

import time

from signaling import schemas
from signaling.hub import Ack, Connection, Hub, at
from vtax.errors import DomainError


class ReviewEvents:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        hub.event("session:summary", schemas.SessionSummaryIn, ("agent",), self.session_summary)
        hub.event("session:rate", schemas.SessionRate, ("taxpayer",), self.session_rate)

    async def session_summary(self, conn: Connection, p: schemas.SessionSummaryIn) -> Ack:
        known = self.hub.catalog.items_by_category
        unknown = [i for i in p.items if not any(i in items for items in known.values())]
        if unknown:
            raise DomainError("invalid_payload", f"unknown catalog items: {', '.join(unknown)}")
        await self.hub.records.save_summary(
            p.session_id,
            conn.principal.subject,
            at(time.time()),
            asked=p.asked,
            handled=p.handled,
            result=p.result,
            items=p.items,
        )
        return {}

    async def session_rate(self, conn: Connection, p: schemas.SessionRate) -> Ack:
        await self.hub.records.rate(
            p.session_id, conn.principal.subject, at(time.time()), score=p.score, comment=p.comment
        )
        return {}
