"""The routing engine: tickets, agents, offers, the matching policy and two storage backends
(in memory; Redis for many nodes). No transport code."""

from vtax.queue.engine import QueueEngine, QueueEvents, QueueRefusal
from vtax.queue.model import AgentState, AgentStatus, Offer, Ticket
from vtax.queue.queues import QueueBook, QueueConfig

__all__ = [
    "AgentState",
    "AgentStatus",
    "Offer",
    "QueueBook",
    "QueueConfig",
    "QueueEngine",
    "QueueEvents",
    "QueueRefusal",
    "Ticket",
]
