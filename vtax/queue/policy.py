"""Matching policy as pure functions of tickets and agents: no I/O, no clock of its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vtax.queue.model import AgentState, Ticket


def eligible(agent: AgentState, ticket: Ticket) -> bool:
    """The agent knows the business category and speaks the language."""
    return agent.skills.get(ticket.category, 0) >= 1 and ticket.language in agent.languages


def ticket_order_key(ticket: Ticket) -> tuple[int, float, str]:
    """Higher priority first, then longest waiting; the id makes the order total."""
    return (-ticket.priority, ticket.joined_at, ticket.id)


def choose_agent(candidates: Iterable[AgentState], ticket: Ticket) -> AgentState | None:
    """Longest idle among the available, eligible agents."""
    pool = [a for a in candidates if a.status == "available" and eligible(a, ticket)]
    if not pool:
        return None
    return min(pool, key=lambda a: (a.idle_since, a.id))


def plan_offers(
    tickets: Sequence[Ticket], agents: Sequence[AgentState]
) -> list[tuple[Ticket, AgentState]]:
    """Pairs to offer now: tickets in order, each to the best agent still free."""
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
    """1-based place of each ticket among the waiting tickets of its category."""
    result: dict[str, int] = {}
    per_category: dict[str, int] = {}
    for ticket in sorted(tickets, key=ticket_order_key):
        per_category[ticket.category] = per_category.get(ticket.category, 0) + 1
        result[ticket.id] = per_category[ticket.category]
    return result


def estimated_wait_s(
    position: int, staffed_eligible: int, idle_eligible: int, handle_s: float
) -> float:
    """Expected wait before an agent answers.

    Tickets ahead each take one start from the staffed agents, who free up every
    `handle_s / staffed` seconds on average; the first start itself comes at once if an
    eligible agent is idle, else after half a handle time per staffed agent:

        eta = (position - 1) * handle_s / staffed + (0 if idle else handle_s / (2 * staffed))

    with staffed = max(staffed_eligible, 1): with nobody staffed it assumes one comes on shift.
    """
    staffed = max(staffed_eligible, 1)
    first = 0.0 if idle_eligible > 0 else handle_s / (2 * staffed)
    return round(max(position - 1, 0) * handle_s / staffed + first, 1)
