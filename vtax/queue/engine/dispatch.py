"""Dispatch: which ticket goes to which agent, and the atomic claim that makes the offer."""

from __future__ import annotations

import uuid
from functools import partial

from vtax.queue import keys, policy
from vtax.queue.engine.core import EngineCore, _Step
from vtax.queue.kv import Tx
from vtax.queue.model import PRIORITY_LEVELS, AgentState, Offer

SPREAD_MAX = 16  # after lost races, a dispatcher picks among at most this many candidates


class Dispatch(EngineCore):
    """Make offers from the few best candidates (`policy`)."""

    async def dispatch_ticket(self, ticket_id: str) -> bool:
        """Offer a ready ticket to the best agent who may take it now, if any. After a lost
        race (another node or task claimed that agent first) the next try picks among the
        best few (`policy.best_agent`), so a burst of joins does not herd."""
        for attempt in range(16):
            ticket = await self._ticket(self.kv, ticket_id)
            if ticket is None or ticket.offer_id is not None or ticket.conn_id is None:
                return False
            config = self._config(ticket)
            now = self._clock()
            levels = policy.eligible_levels(config, now - ticket.joined_at)
            pools = [
                keys.pool(ticket.category if level else "*", ticket.language, level)
                for level in levels
            ]
            k = self._spread(attempt)
            candidates = [
                policy.AgentHead(member, level, score)
                for level, rows in zip(levels, await self.kv.tops(pools, k), strict=True)
                for member, score in rows
            ]
            choice = policy.best_agent(config.strategy, candidates, k, self._rng)
            if choice is None:
                return False
            if await self._offer_pair(ticket_id, choice.agent_id):
                return True
        # Lost every race for an agent (a burst): look again on the next tick.
        await self.kv.run(partial(self._retry, member="escalate:" + ticket_id))
        return False

    @staticmethod
    def _spread(attempt: int) -> int:
        """How many of the best candidates a dispatcher picks among: the best first, then more
        after each race lost to another dispatcher."""
        return 1 if attempt == 0 else min(2 ** (attempt + 1), SPREAD_MAX)

    def _ready_lines(self, agent: AgentState) -> list[tuple[str, str, int]]:
        cats = [c for c, level in agent.skills.items() if level >= 1]
        if self.book.any_widens:
            cats += [
                c
                for c in self.categories
                if c not in agent.skills and self.book.of(c).widens_to_any
            ]
        return [(c, lang, p) for c in cats for lang in agent.languages for p in PRIORITY_LEVELS]

    async def dispatch_agent(self, agent_id: str) -> bool:
        """Offer an available agent the first ready ticket they may take, if any (after a
        lost race, one of the first few: `policy.best_ticket`)."""
        for attempt in range(16):
            agent = await self._agent_of(self.kv, agent_id)
            now = self._clock()
            if (
                agent is None
                or agent.status != "available"
                or agent.offer_id is not None
                or agent.ready_at > now
            ):
                return False
            lines = self._ready_lines(agent)
            k = self._spread(attempt)
            tops = await self.kv.tops([keys.ready(*line) for line in lines], k)
            candidates = [
                policy.TicketHead(member, line[0], line[1], line[2], score)
                for line, rows in zip(lines, tops, strict=True)
                for member, score in rows
            ]
            choice = policy.best_ticket(agent, candidates, self.book, now, k, self._rng)
            if choice is None:
                return False
            if await self._offer_pair(choice.ticket_id, agent_id):
                return True
        await self.kv.run(partial(self._retry, member="ready:" + agent_id))
        return False

    async def _retry(self, tx: Tx, *, member: str) -> None:
        tx.zadd(keys.TIMERS, {member: self._clock()})

    async def _offer_pair(self, ticket_id: str, agent_id: str) -> bool:
        """The atomic claim: if the ticket is still ready and the agent still free and
        eligible, reserve one for the other. False if either changed meanwhile."""
        now = self._clock()

        async def tx_offer(tx: Tx, step: _Step) -> bool:
            await tx.watch(keys.ticket(ticket_id), keys.agent(agent_id))
            ticket = await self._ticket(tx, ticket_id)
            agent = await self._agent_of(tx, agent_id)
            if ticket is None or agent is None:
                return False
            if ticket.offer_id is not None or ticket.conn_id is None:
                return False
            if agent.status != "available" or agent.offer_id is not None or agent.ready_at > now:
                return False
            need = self._config(ticket).required_level(now - ticket.joined_at)
            if not policy.eligible(agent, ticket, need):
                return False
            offer = Offer(str(uuid.uuid4()), ticket.id, agent.id, now, now + self.offer_timeout_s)
            tx.hset(keys.offer(offer.id), offer.to_fields())
            tx.zadd(keys.TIMERS, {"offer:" + offer.id: offer.expires_at})
            ticket.offer_id = offer.id
            tx.hset(keys.ticket(ticket.id), {"offer_id": offer.id})
            self._unready(tx, ticket)
            agent.offer_id, agent.last_offer_at = offer.id, now
            self._set_status(tx, step, agent, "reserved", "", now)
            self._count(tx, ticket.category, now, offers=1)
            step.notes.append(lambda: self._events.offer_new(agent, offer, ticket))
            return True

        made: bool = await self._do(tx_offer)
        return made
