"""The routing engine: tickets, agents, offers and the matching policy. No transport code."""

from vtax.queue.engine import QueueEngine, QueueEvents
from vtax.queue.model import AgentState, AgentStatus, Offer, Ticket

__all__ = ["AgentState", "AgentStatus", "Offer", "QueueEngine", "QueueEvents", "Ticket"]
