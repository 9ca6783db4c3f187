"""Matching policy as pure functions of tickets and agents: no I/O, no clock of its own.

The engine reads a few candidates from its backend (the head of each ready line, the best
agent of each pool) and asks these functions which pair to make."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vtax.queue.model import BOOKED_PRIORITY, AgentState, Ticket
from vtax.queue.queues import QueueBook, QueueConfig, Strategy

DEFAULT_AGING_S = 120.0


@dataclass(frozen=True, slots=True)
class TicketHead:
    """The oldest ready ticket of one (category, language, priority) line."""

    ticket_id: str
    category: str
    language: str
    priority: int
    joined_at: float


@dataclass(frozen=True, slots=True)
class AgentHead:
    """The best available agent of one (category, language, level) pool."""

    agent_id: str
    level: int  # 0 for the pool of any agent with the language
    score: float


def eligible(agent: AgentState, ticket: Ticket, min_level: int = 1) -> bool:
    """The agent speaks the language and has the category at `min_level` (0: any agent)."""
    if ticket.language not in agent.languages:
        return False
    return min_level == 0 or agent.level(ticket.category) >= max(min_level, 1)


BOOKED_AHEAD_S = 1e10  # ~317 years: more than any aging, and floats keep microseconds


def ticket_score(joined_at: float, priority: int, aging_s: float = DEFAULT_AGING_S) -> float:
    """Order of service: earlier is first. A priority level counts as `aging_s` of waiting,
    so priority goes first yet a normal ticket that waited `aging_s` longer goes before it.
    An on-time appointment (`BOOKED_PRIORITY`) goes before every other ticket of its line, in
    the order of the booked times (its `joined_at` is T)."""
    if priority >= BOOKED_PRIORITY:
        return joined_at - BOOKED_AHEAD_S
    return joined_at - priority * aging_s


def ticket_order_key(ticket: Ticket, aging_s: float = DEFAULT_AGING_S) -> tuple[float, str]:
    """Total order of waiting tickets; the id breaks ties (as a Redis ZSET does)."""
    return (ticket_score(ticket.joined_at, ticket.priority, aging_s), ticket.id)


def pool_score(strategy: Strategy, agent: AgentState) -> float:
    """Where an available agent stands in a pool; the lowest score is offered first.

    Ties in the main criterion go to the agent idle longest (`idle_since / 1e10` stays below
    1 until the year 2286 and keeps 10 ms resolution in a double)."""
    idle = agent.idle_since / 1e10
    if strategy == "fewest_sessions":
        return agent.sessions_today + idle
    if strategy == "round_robin":
        return agent.last_offer_at  # the agent offered least recently is next
    return agent.idle_since  # longest_idle; highest_proficiency orders pools by level first


def best_agent(
    strategy: Strategy,
    candidates: Sequence[AgentHead],
    k: int = 1,
    rng: random.Random | None = None,
) -> AgentHead | None:
    """The agent to offer a ticket to: the strategy's best of the candidates (the top of each
    eligible pool) or, with `k` > 1, one of the `k` best at random. Dispatchers that all lost
    the same best agent would otherwise all go for the same next one (a burst of n joins
    costing n^2/2 claims); spread over the best few, they mostly claim different agents."""
    best: dict[str, AgentHead] = {}
    for head in sorted(candidates, key=_agent_key(strategy)):
        best.setdefault(head.agent_id, head)
        if len(best) == k:
            break
    return _one_of(list(best.values()), rng)


def _one_of(ranked: list[Any], rng: random.Random | None) -> Any:
    if not ranked:
        return None
    return ranked[0] if len(ranked) == 1 or rng is None else rng.choice(ranked)


def _agent_key(strategy: Strategy) -> Callable[[AgentHead], tuple[Any, ...]]:
    if strategy == "highest_proficiency":
        return lambda h: (-h.level, h.score, h.agent_id)
    return lambda h: (h.score, h.agent_id)


def eligible_levels(config: QueueConfig, waited_s: float) -> tuple[int, ...]:
    """Pools that may take a ticket now: proficiency levels, and 0 for any-language agents."""
    need = config.required_level(waited_s)
    return tuple(range(max(need, 1), 6)) + ((0,) if need == 0 else ())


def _ticket_key(
    agent: AgentState, head: TicketHead, book: QueueBook, now: float
) -> tuple[float, str] | None:
    """The order of a ready ticket for this agent, or None if the agent may not take it now."""
    if head.language not in agent.languages:
        return None
    config = book.of(head.category)
    need = config.required_level(now - head.joined_at)
    if need > 0 and agent.level(head.category) < need:
        return None
    return (ticket_score(head.joined_at, head.priority, config.aging_s), head.ticket_id)


def best_ticket(
    agent: AgentState,
    candidates: Iterable[TicketHead],
    book: QueueBook,
    now: float,
    k: int = 1,
    rng: random.Random | None = None,
) -> TicketHead | None:
    """The ticket to offer an agent: of the ready tickets it may take now, the first in order
    or, with `k` > 1, one of the first `k` at random (agents freed at once would otherwise all
    claim the same next ticket)."""
    keyed = [(key, head) for head in candidates if (key := _ticket_key(agent, head, book, now))]
    keyed.sort(key=lambda pair: pair[0])
    return _one_of([head for _, head in keyed[:k]], rng)


def choose_agent(
    candidates: Iterable[AgentState], ticket: Ticket, strategy: Strategy = "longest_idle"
) -> AgentState | None:
    """Among the available, eligible agents, the one the strategy puts first."""
    pool = [a for a in candidates if a.status == "available" and eligible(a, ticket)]
    if not pool:
        return None
    if strategy == "highest_proficiency":
        return min(pool, key=lambda a: (-a.level(ticket.category), a.idle_since, a.id))
    return min(pool, key=lambda a: (pool_score(strategy, a), a.id))


def plan_offers(
    tickets: Sequence[Ticket], agents: Sequence[AgentState]
) -> list[tuple[Ticket, AgentState]]:
    """Pairs to offer now: tickets in order, each to the best agent still free.

    The reference planner (single step, longest idle): the engine reaches the same pairs
    incrementally, and the property tests hold it to that."""
    free = [a for a in agents if a.status == "available"]
    pairs: list[tuple[Ticket, AgentState]] = []
    for ticket in sorted((t for t in tickets if t.offer_id is None), key=ticket_order_key):
        agent = choose_agent(free, ticket)
        if agent is not None:
            pairs.append((ticket, agent))
            free.remove(agent)
            if not free:
                break
    return pairs


def positions(tickets: Iterable[Ticket]) -> dict[str, int]:
    """1-based place of each ticket among the waiting tickets of its category and language."""
    result: dict[str, int] = {}
    per_line: dict[tuple[str, str], int] = {}
    for ticket in sorted(tickets, key=ticket_order_key):
        line = (ticket.category, ticket.language)
        per_line[line] = per_line.get(line, 0) + 1
        result[ticket.id] = per_line[line]
    return result


def estimated_wait_s(
    position: int,
    staffed_eligible: int,
    idle_eligible: int,
    handle_s: float,
    reserved_eligible: int = 0,
    offered: bool = False,
) -> float:
    """Expected wait before an agent answers (docs/routing.md, "Estimated wait").

    A ticket under offer waits for nobody: 0. Otherwise the tickets ahead of it that no
    reserved agent is taking yet (`position - 1 - reserved`) go first; idle agents take
    some at once; each of the rest, and then this ticket, needs an agent to free up. With
    `staffed` agents cycling through handle times `handle_s`, one frees up every
    `handle_s / staffed` seconds, the first after half that on average (a session in progress
    is half done):

        need = max(position - 1 - reserved - idle, -1) + 1
        eta  = 0 if need == 0 else (need - 1) * handle_s / staffed + handle_s / (2 * staffed)

    with staffed = max(staffed_eligible, 1): with nobody staffed it assumes one comes on shift.
    """
    if offered:
        return 0.0
    ahead = max(position - 1 - reserved_eligible, 0)
    if idle_eligible > ahead:
        return 0.0
    staffed = max(staffed_eligible, 1)
    need = ahead - idle_eligible + 1
    return round((need - 1) * handle_s / staffed + handle_s / (2 * staffed), 1)
