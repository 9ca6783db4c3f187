"""Fixtures of the queue tests: the engine on each backend (in memory, real Redis with its own
key prefix), a clock the test moves, and events recorded as they are sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from vtax.queue import AgentState, Offer, QueueBook, QueueEngine, Ticket
from vtax.queue.kv import KV
from vtax.queue.memory import MemoryKV
from vtax.queue.redis_store import RedisKV

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC: a Friday, 16:00 in Shanghai


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """QueueEvents that keeps everything."""

    def __init__(self) -> None:
        self.offers: list[tuple[AgentState, Offer, Ticket]] = []
        self.revoked: list[tuple[str, str, str]] = []
        self.updates: list[tuple[str, int, float, float]] = []
        self.left: list[tuple[str, str]] = []
        self.statuses: list[tuple[str, str, str]] = []
        self.stats: list[dict[str, Any]] = []
        self.clock: Callable[[], float] = lambda: 0.0
        self.on_offer: list[Callable[[AgentState, Offer, Ticket], Any]] = []

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        self.offers.append((agent, offer, ticket))
        for hook in self.on_offer:
            result = hook(agent, offer, ticket)
            if hasattr(result, "__await__"):
                await result

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        self.revoked.append((agent_id, offer_id, reason))

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        self.updates.append((ticket.id, position, eta_s, self.clock()))

    async def queue_left(self, ticket: Ticket, reason: str, at: float) -> None:
        self.left.append((ticket.id, reason))

    async def agent_status(self, agent: AgentState) -> None:
        self.statuses.append((agent.id, agent.status, agent.reason))

    async def queue_stats(self, stats: dict[str, Any]) -> None:
        self.stats.append(stats)

    def offers_to(self, agent_id: str) -> list[Offer]:
        return [o for a, o, _ in self.offers if a.id == agent_id]

    def last_offer(self, agent_id: str) -> Offer:
        return self.offers_to(agent_id)[-1]


async def redis_kv(prefix: str) -> RedisKV:
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    return RedisKV(client, prefix)


@pytest.fixture(params=["memory", "redis"])
async def make_kv(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Any]]:
    """Factory of backends sharing one state: call it twice for two nodes."""
    prefix = f"vtax-test-{uuid.uuid4().hex[:10]}:"
    memory = MemoryKV()
    made: list[RedisKV] = []

    async def make() -> KV:
        if request.param == "memory":
            return memory
        kv = await redis_kv(prefix)
        made.append(kv)
        return kv

    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    if made:
        await made[0].delete_prefix()
    for kv in made:
        await kv.client.aclose()


class Harness:
    """An engine, its clock and its recorded events, with helpers for tickets and agents."""

    def __init__(self, engine: QueueEngine, clock: FakeClock, events: Recorder) -> None:
        self.engine, self.clock, self.events = engine, clock, events
        self._n = 0

    def ticket(
        self,
        category: str = "invoices",
        language: str = "zh-CN",
        priority: int = 0,
        taxpayer: str | None = None,
    ) -> Ticket:
        self._n += 1
        return Ticket(
            id=f"t{self._n}-{uuid.uuid4().hex[:6]}",
            session_id=f"s{self._n}",
            taxpayer_id=taxpayer or f"tp{self._n}-{uuid.uuid4().hex[:6]}",
            category=category,
            language=language,
            channel="web",
            question="?",
            joined_at=self.clock(),
            priority=priority,
            conn_id=f"conn-{self._n}",
        )

    async def join(self, **kw: Any) -> Ticket:
        t = self.ticket(**kw)
        await self.engine.join(t)
        return t

    async def agent(
        self,
        agent_id: str,
        skills: dict[str, int] | None = None,
        languages: tuple[str, ...] = ("zh-CN",),
        available: bool = True,
    ) -> AgentState:
        profile = AgentState(agent_id, agent_id, skills or {"invoices": 3}, frozenset(languages))
        await self.engine.agent_online(profile, "conn-" + agent_id)
        if available:
            return await self.engine.set_status(agent_id, "available")
        return profile

    async def at(self, seconds: float) -> None:
        """Move the clock and run the timers that came due."""
        self.clock.advance(seconds)
        await self.engine.fire_due()

    async def status(self, agent_id: str) -> str:
        agent = await self.engine.agent(agent_id)
        assert agent is not None
        return agent.status


@pytest.fixture
def book() -> QueueBook:
    return QueueBook()


@pytest.fixture
def engine_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def q(
    make_kv: Callable[[], Any], book: QueueBook, engine_options: dict[str, Any]
) -> AsyncIterator[Harness]:
    clock = FakeClock()
    events = Recorder()
    events.clock = clock
    options: dict[str, Any] = {
        "offer_timeout_s": 15.0,
        "wrapup_s": 30.0,
        "handle_s": 300.0,
        "grace_s": 60.0,
        "reject_delay_s": 10.0,
        "no_answer_delay_s": 10.0,
        "update_interval_s": 2.0,
        "categories": ["invoices", "registration", "declarations"],
        **engine_options,
    }
    engine = QueueEngine(events, kv=await make_kv(), book=book, clock=clock, **options)
    yield Harness(engine, clock, events)
