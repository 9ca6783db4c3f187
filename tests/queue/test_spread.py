"""Dispatchers that lose a race spread over the best few candidates instead of herding."""

from __future__ import annotations

import asyncio
import random

from tests.queue.conftest import Harness
from vtax.queue import AgentState, QueueBook
from vtax.queue.policy import AgentHead, TicketHead, best_agent, best_ticket


def test_best_agent_picks_among_the_k_best_only_and_each_agent_once():
    heads = [AgentHead(f"a{i}", 3, float(i)) for i in range(10)]
    heads += [AgentHead("a0", 0, 0.0)]  # the same agent in the any-agent pool too
    rng = random.Random(7)
    picks = {best_agent("longest_idle", heads, 4, rng).agent_id for _ in range(200)}
    assert picks == {"a0", "a1", "a2", "a3"}
    assert best_agent("longest_idle", [], 4, rng) is None


def test_best_agent_follows_the_strategy_order():
    heads = [AgentHead("low", 1, 0.0), AgentHead("high", 5, 9.0), AgentHead("mid", 3, 1.0)]
    rng = random.Random(1)
    picks = {best_agent("highest_proficiency", heads, 1, rng).agent_id for _ in range(20)}
    assert picks == {"high"}


def test_best_ticket_keeps_eligibility_and_order():
    agent = AgentState("a", "a", {"invoices": 3}, frozenset({"zh-CN"}))
    heads = [TicketHead(f"t{i}", "invoices", "zh-CN", 0, 100.0 + i) for i in range(6)]
    heads.append(TicketHead("en", "invoices", "en", 1, 0.0))  # a language the agent lacks
    rng = random.Random(3)
    picks = {best_ticket(agent, heads, QueueBook(), 200.0, 2, rng).ticket_id for _ in range(50)}
    assert picks == {"t0", "t1"}


async def test_a_burst_of_joins_costs_few_claims(q: Harness):
    """30 joins at once with 30 agents free: every ticket offered, and far fewer claims than
    the n^2/2 (465) that all-dispatchers-take-the-same-next-agent would cost on Redis."""
    for i in range(30):
        await q.agent(f"agent{i:02}")
    before = q.engine.kv.transactions
    tickets = [q.ticket() for _ in range(30)]
    await asyncio.gather(*(q.engine.join(t) for t in tickets))
    offered = {ticket.id for _agent, _offer, ticket in q.events.offers}
    assert offered == {t.id for t in tickets}
    assert len({agent.id for agent, _offer, _ticket in q.events.offers}) == 30
    claims = q.engine.kv.transactions - before
    assert claims < 30 * 8, claims
