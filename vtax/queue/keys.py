"""Every key of the queue's state, with its shape. Both backends use this layout; the Redis
backend puts `VTAX_REDIS_PREFIX` (default `vtax:`) in front of each key.

Times are Unix seconds; `{cat}` a business category, `{lang}` a language code, `{prio}` a
priority level (0, 1), `{level}` a proficiency 1..5 (0: the pool of any agent with the
language, used by the last escalation step)."""

from __future__ import annotations


def ticket(ticket_id: str) -> str:
    """HASH: the ticket's fields (model.Ticket.to_fields)."""
    return f"q:ticket:{ticket_id}"


def taxpayer(taxpayer_id: str) -> str:
    """STRING: the id of the taxpayer's waiting ticket (one at a time)."""
    return f"q:taxpayer:{taxpayer_id}"


def line(category: str, language: str) -> str:
    """ZSET ticket id -> order score (joined_at - priority * aging_s): every waiting ticket of
    the line, offered and dropped ones included; ZRANK is the position."""
    return f"q:line:{category}:{language}"


def ready(category: str, language: str, priority: int) -> str:
    """ZSET ticket id -> joined_at: the tickets that may be offered now (connected, no offer)."""
    return f"q:ready:{category}:{language}:{priority}"


def waiting(category: str) -> str:
    """ZSET ticket id -> joined_at: every waiting ticket of the queue (length, longest wait)."""
    return f"q:waiting:{category}"


def agent(agent_id: str) -> str:
    """HASH: the agent's profile and state (model.AgentState.to_fields)."""
    return f"q:agent:{agent_id}"


def agent_conns(agent_id: str) -> str:
    """SET: the agent's open connections (`node/sid`); the agent is offline when it empties."""
    return f"q:agentconns:{agent_id}"


AGENTS = "q:agents"
"""SET: every agent id the queue has seen."""


def pool(category: str, language: str, level: int) -> str:
    """ZSET agent id -> policy.pool_score: agents that may be offered a ticket now (available,
    no cool-down) with this proficiency in the category; `pool("*", lang, 0)` holds every such
    agent who speaks the language, by idle time."""
    return f"q:pool:{category}:{language}:{level}"


def staffing(category: str, language: str) -> str:
    """HASH status -> count of agents (not offline) with the category and language (the ETA)."""
    return f"q:staff:{category}:{language}"


def queue_agents(category: str) -> str:
    """HASH status -> count of agents (not offline) with the category (live statistics)."""
    return f"q:staff:{category}"


def offer(offer_id: str) -> str:
    """HASH: an open offer (model.Offer.to_fields)."""
    return f"q:offer:{offer_id}"


TIMERS = "q:timers"
"""ZSET `kind:id` -> due time: offer expiry (`offer:`), wrap-up end (`wrapup:`), cool-down end
(`ready:`), grace end of a dropped ticket (`grace:`), next escalation step (`escalate:`),
maximum wait (`maxwait:`). Every node polls it and claims due members atomically."""


def stats(category: str, day: str) -> str:
    """HASH counter -> number, for one queue and one local day (kept 8 days)."""
    return f"q:stats:{category}:{day}"


def handle_times(category: str, hour: int) -> str:
    """HASH {sum, n}: handle times (talk + wrap-up) finished in one hour (Unix hour number),
    kept 3 hours: the recent handle time of the ETA."""
    return f"q:handle:{category}:{hour}"


def claim(name: str) -> str:
    """STRING with a TTL: a once-per-period job claimed by one node (e.g. the stats push)."""
    return f"q:claim:{name}"
