"""Agents: online and offline, the status they ask for, accepting and rejecting offers, the end of a
session (wrap-up)."""

from __future__ import annotations

from vtax.errors import DomainError
from vtax.queue import keys
from vtax.queue.engine.core import EngineCore, _Step
from vtax.queue.kv import Tx
from vtax.queue.model import AgentState, AgentStatus, Offer, Ticket


class Agents(EngineCore):
    """The agent's side of the queue."""

    async def agent(self, agent_id: str) -> AgentState | None:
        return await self._agent_of(self.kv, agent_id)

    async def pending_offer(self, agent_id: str) -> tuple[Offer, Ticket] | None:
        """The offer reserving a ticket for the agent now, with its ticket; None if none."""
        agent = await self._agent_of(self.kv, agent_id)
        if agent is None or agent.status != "reserved" or not agent.offer_id:
            return None
        offer = await self._offer(self.kv, agent.offer_id)
        if offer is None or offer.revoked or offer.expires_at <= self._clock():
            return None
        ticket = await self._ticket(self.kv, offer.ticket_id)
        return (offer, ticket) if ticket is not None else None

    async def agent_online(self, profile: AgentState, conn_id: str) -> AgentState:
        """A connection of an agent opened: register the agent (offline until they say
        available) or refresh a known agent's profile, keeping the state."""
        now = self._clock()

        async def tx_online(tx: Tx, step: _Step) -> AgentState:
            agent = await self._agent_of(tx, profile.id)
            tx.sadd(keys.agent_conns(profile.id), conn_id)
            tx.sadd(keys.AGENTS, profile.id)
            if agent is None:
                tx.hset(keys.agent(profile.id), profile.to_fields())
                return profile
            if (agent.skills, agent.languages) != (profile.skills, profile.languages):
                self._staff(tx, agent, agent.status, -1)
                self._unpool(tx, agent)
                agent.skills, agent.languages = profile.skills, profile.languages
                self._staff(tx, agent, agent.status, +1)
                if agent.status == "available" and agent.ready_at <= now:
                    self._pool(tx, agent)
                    step.agents.append(agent.id)
            agent.name, agent.capacity = profile.name, profile.capacity
            tx.hset(keys.agent(agent.id), agent.to_fields())
            return agent

        agent: AgentState = await self._do(tx_online)
        return agent

    async def agent_connection_closed(self, agent_id: str, conn_id: str) -> None:
        """An agent's connection closed; with none left (on any node) the agent is offline and
        an open offer goes to the next agent."""
        now = self._clock()

        async def tx_closed(tx: Tx, step: _Step) -> None:
            conns = await tx.smembers(keys.agent_conns(agent_id))
            agent = await self._agent_of(tx, agent_id)
            tx.srem(keys.agent_conns(agent_id), conn_id)
            if agent is None or conns - {conn_id}:
                return
            if agent.status == "busy":
                # In a call that may still be resumed (reload, network change): stay busy;
                # `session_ended` takes the agent offline if nobody is connected by then.
                return
            await self._go_offline(tx, step, agent, "disconnected", now)

        await self._do(tx_closed)

    async def _go_offline(
        self, tx: Tx, step: _Step, agent: AgentState, reason: str, now: float
    ) -> None:
        await self._withdraw_by_id(
            tx,
            step,
            agent.offer_id,
            "agent_offline",
            now,
            agent=agent,
            agent_next=("offline", reason),
        )
        if agent.status == "wrap_up":
            self._record_handle(tx, agent, now)
        tx.zrem(keys.TIMERS, "wrapup:" + agent.id)
        agent.session_id = None
        self._set_status(tx, step, agent, "offline", reason, now)

    async def set_status(self, agent_id: str, status: AgentStatus, reason: str = "") -> AgentState:
        """An agent asks to be available, away or offline."""
        if status not in ("available", "away", "offline"):
            raise DomainError("invalid_payload", "status must be available, away or offline")
        now = self._clock()

        async def tx_status(tx: Tx, step: _Step) -> AgentState:
            await tx.watch(keys.agent(agent_id))
            agent = await self._agent_of(tx, agent_id)
            if agent is None:
                raise DomainError("invalid_state", "agent is not connected")
            if agent.status == "busy":
                raise DomainError("invalid_state", "end the current session first")
            if status == "available" and agent.status in ("available", "reserved"):
                return agent  # already taking offers: nothing changes (flapping is harmless)
            if agent.status == "reserved":
                await self._withdraw_by_id(
                    tx,
                    step,
                    agent.offer_id,
                    "agent_" + status,
                    now,
                    agent=agent,
                    agent_next=(status, reason),
                )
                if agent.status == status:
                    return agent
            if agent.status == "wrap_up":
                self._record_handle(tx, agent, now)
                tx.zrem(keys.TIMERS, "wrapup:" + agent.id)
            if status == "available":
                agent.missed_offers, agent.ready_at = 0, 0.0
            self._set_status(tx, step, agent, status, reason, now)
            return agent

        agent: AgentState = await self._do(tx_status)
        return agent

    async def accept(self, agent_id: str, offer_id: str) -> Ticket:
        """The agent takes the offered ticket: it leaves the queue and the agent is busy."""
        now = self._clock()

        async def tx_accept(tx: Tx, step: _Step) -> Ticket:
            await tx.watch(keys.offer(offer_id), keys.agent(agent_id))
            offer = await self._offer(tx, offer_id)
            if offer is None or offer.agent_id != agent_id:
                raise DomainError("offer_expired", "this offer has expired or was withdrawn")
            agent = await self._agent_of(tx, agent_id)
            ticket = await self._ticket(tx, offer.ticket_id)
            if agent is None or agent.status != "reserved" or agent.offer_id != offer_id:
                raise DomainError("invalid_state", "you are not reserved for this offer")
            if ticket is None:
                raise DomainError("offer_expired", "the taxpayer has left")
            tx.delete(keys.offer(offer.id))
            tx.zrem(keys.TIMERS, "offer:" + offer.id)
            self._drop_ticket(tx, ticket)
            day = self._day(now)
            if agent.sessions_day != day:
                agent.sessions_day, agent.sessions_today = day, 0
            agent.sessions_today += 1
            agent.missed_offers = 0
            agent.offer_id, agent.session_id = None, ticket.session_id
            agent.answered_at, agent.ticket_category = now, ticket.category
            self._set_status(tx, step, agent, "busy", "", now)
            waited = max(now - ticket.joined_at, 0.0)  # a booking served before its T
            self._count(
                tx,
                ticket.category,
                now,
                answered=1,
                answered_in_sl=int(waited <= self._config(ticket).service_level_s),
                answered_wait_sum=waited,
                offers_accepted=1,
            )
            return ticket

        ticket: Ticket = await self._do(tx_accept)
        self._unwatch(ticket.id)
        return ticket

    async def reject(self, agent_id: str, offer_id: str) -> None:
        """The agent declines: the ticket goes to the next agent at once; this agent gets no
        offer for `reject_delay_s` (FreeSWITCH reject-delay-time)."""
        now = self._clock()

        async def tx_reject(tx: Tx, step: _Step) -> None:
            offer = await self._offer(tx, offer_id)
            if offer is None or offer.agent_id != agent_id:
                raise DomainError("offer_expired", "this offer has expired or was withdrawn")
            agent = await self._agent_of(tx, agent_id)
            ticket = await self._ticket(tx, offer.ticket_id)
            if agent is not None:
                agent.missed_offers, agent.ready_at = 0, now + self.reject_delay_s
            self._withdraw(tx, step, offer, ticket, agent, "rejected", now, notify_agent=False)
            if ticket is not None:
                self._count(tx, ticket.category, now, offers_rejected=1)

        await self._do(tx_reject)

    async def session_ended(self, agent_id: str) -> None:
        """The agent's session is over: wrap-up, then available again."""
        now = self._clock()

        async def tx_ended(tx: Tx, step: _Step) -> None:
            await tx.watch(keys.agent(agent_id), keys.agent_conns(agent_id))
            agent = await self._agent_of(tx, agent_id)
            if agent is None or agent.status != "busy":
                return
            agent.session_id, agent.ended_at = None, now
            if not await tx.smembers(keys.agent_conns(agent_id)):
                # The agent's connection dropped during the call and never came back.
                self._record_handle(tx, agent, now)
                self._set_status(tx, step, agent, "offline", "disconnected", now)
                return
            if self.wrapup_s <= 0:
                self._record_handle(tx, agent, now)
                self._set_status(tx, step, agent, "available", "", now)
            else:
                tx.zadd(keys.TIMERS, {"wrapup:" + agent_id: now + self.wrapup_s})
                self._set_status(tx, step, agent, "wrap_up", "", now)

        await self._do(tx_ended)
