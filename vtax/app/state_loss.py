"""When Redis forgets: the live state (queue tickets, live sessions, which node holds which
connection, agents' presence) is gone, but the database still says `waiting` and `live`.

Redis restarted without its data (no AOF, a flush, a fail-over to an empty replica) used to
lose calls and tickets silently: neither side was told, their rows stayed `live`/`waiting` for
ever, agents stayed "available" on their pages while the queue knew none of them. The store
keeps a generation marker (`LiveStore.epoch`); each node's reaper (vtax/app/calls.py) sees it
change and calls the hooks registered for it:

- on the one node whose new marker won (`winner`), `StateLoss.reconcile`: every record still
  waiting or live whose ticket or live session the store no longer has is closed, a waiting
  one `abandoned` and a live one `dropped`, both with reason `state_lost`, in the audit log,
  and its people are told (`queue:left` / `session:end` with that reason);
- on every node, the transport re-registers its own connections (signaling/events.py), so
  agents are online again (not available: they press Available once more, and are told).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from vtax.app.ports import Notifier, at
from vtax.contract import server_events as se
from vtax.live import LiveStore
from vtax.queue.engine import QueueEngine
from vtax.review.audit import Actor
from vtax.review.records import SessionRecords

log = logging.getLogger(__name__)
REASON = "state_lost"


@dataclass
class Reconciled:
    tickets: int = 0  # waiting records closed (abandoned)
    sessions: int = 0  # live records closed (dropped)
    kept: int = 0  # open records the store still knew (joined after the loss)


class StateLoss:
    def __init__(
        self, records: SessionRecords, engine: QueueEngine, store: LiveStore, notifier: Notifier
    ) -> None:
        self.records, self.engine, self.store, self.notifier = records, engine, store, notifier

    async def reconcile(self, now: float | None = None) -> Reconciled:
        """Close what the store forgot (see the module's doc). Records the store still knows
        (a ticket joined or a call started since Redis came back empty) are kept."""
        now = time.time() if now is None else now
        done = Reconciled()
        for row in await self.records.open_calls(before=at(now)):
            if row.outcome == "waiting":
                ticket = await self.engine.ticket(row.ticket_id)
                if ticket is not None:
                    done.kept += 1
                    continue
                if await self.records.abandoned(row.id, at(now), REASON):
                    done.tickets += 1
                    left = se.QueueLeft(ticket_id=row.ticket_id, reason=REASON)
                    await self.notifier.to_user(row.taxpayer_id, left)
            else:
                if await self.store.get(row.id) is not None:
                    done.kept += 1
                    continue
                system = Actor("system", None)
                if await self.records.ended(row.id, at(now), "dropped", REASON, system):
                    done.sessions += 1
                    ended = se.SessionEnded(session_id=row.id, reason=REASON, ended_by=None)
                    for subject in (row.taxpayer_id, row.agent_id):
                        if subject is not None:
                            await self.notifier.to_user(subject, ended)
        log.warning(
            "state lost: %d waiting tickets and %d live sessions closed (%s), %d kept",
            done.tickets,
            done.sessions,
            REASON,
            done.kept,
        )
        return done
