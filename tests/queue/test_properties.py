"""Random operation sequences on both backends, checked after every step against the rules a
reference model states: no ticket offered to two agents, no agent holding two offers, no
ticket lost or finished twice, offers in order, and no idle agent left beside a ticket it
could take (the dispatcher is work-conserving)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="pip install hypothesis (test extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.queue.conftest import FakeClock, Recorder, redis_kv  # noqa: E402
from vtax.errors import DomainError  # noqa: E402
from vtax.queue import AgentState, Offer, QueueEngine, Ticket, keys, policy  # noqa: E402
from vtax.queue.memory import MemoryKV  # noqa: E402

AGENTS = {
    "a1": ("zh-CN",),
    "a2": ("zh-CN", "yue"),
    "a3": ("yue",),
    "a4": ("zh-CN",),
}
TAXPAYERS = [f"tp{i}" for i in range(8)]

op = st.one_of(
    st.tuples(
        st.just("join"),
        st.sampled_from(TAXPAYERS),
        st.sampled_from(["zh-CN", "yue"]),
        st.integers(0, 1),
    ),
    st.tuples(st.just("leave"), st.sampled_from(TAXPAYERS)),
    st.tuples(st.just("drop"), st.sampled_from(TAXPAYERS)),
    st.tuples(st.just("rejoin"), st.sampled_from(TAXPAYERS)),
    st.tuples(st.sampled_from(["available", "away", "offline"]), st.sampled_from(list(AGENTS))),
    st.tuples(st.sampled_from(["accept", "reject", "hangup"]), st.sampled_from(list(AGENTS))),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 5.0, 10.0, 15.0, 40.0, 70.0])),
)


class Model:
    """What the test knows from outside: tickets joined, served and finished."""

    def __init__(self) -> None:
        self.joined: dict[str, str] = {}  # ticket id -> taxpayer
        self.served: list[str] = []
        self.left: list[str] = []
        self.tickets_of: dict[str, str] = {}  # taxpayer -> latest ticket id


async def check(engine: QueueEngine, model: Model, events: Recorder, now: float) -> None:
    kv = engine.kv
    # Finished exactly once; never lost.
    assert len(model.served) == len(set(model.served))
    left = [tid for tid, _ in events.left]
    assert len(left) == len(set(left)), "a ticket left twice"
    assert not set(left) & set(model.served), "a ticket both served and left"
    waiting = {tid for tid in model.joined if await engine.ticket(tid) is not None}
    assert waiting | set(left) | set(model.served) == set(model.joined), "a ticket was lost"
    assert not waiting & (set(left) | set(model.served))
    # One offer per ticket and per agent, both sides agreeing.
    offered: dict[str, str] = {}
    for agent_id in AGENTS:
        agent = await engine.agent(agent_id)
        if agent is None or agent.offer_id is None:
            continue
        assert agent.status == "reserved"
        offer = Offer.from_fields(await kv.hgetall(keys.offer(agent.offer_id)))
        ticket = await engine.ticket(offer.ticket_id)
        assert ticket is not None and ticket.offer_id == offer.id
        assert offer.ticket_id not in offered, "one ticket offered to two agents"
        offered[offer.ticket_id] = agent_id
    for tid in waiting:
        ticket = await engine.ticket(tid)
        assert ticket is not None
        if ticket.offer_id is not None:
            assert offered.get(tid) is not None, "a ticket holds an offer no agent holds"
    # Work-conserving: an agent free to take offers has nothing it could take.
    for agent_id in AGENTS:
        agent = await engine.agent(agent_id)
        if agent and agent.status == "available" and agent.ready_at <= now and not agent.offer_id:
            assert await best_for(engine, agent, now) is None, f"{agent_id} idle beside work"


async def best_for(engine: QueueEngine, agent: AgentState, now: float) -> policy.TicketHead | None:
    lines = engine._ready_lines(agent)
    found = await engine.kv.tops([keys.ready(*line) for line in lines], 1)
    heads = [
        policy.TicketHead(member, line[0], line[1], line[2], score)
        for line, rows in zip(lines, found, strict=True)
        for member, score in rows
    ]
    return policy.best_ticket(agent, heads, engine.book, now)


async def run(backend: str, ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    events = Recorder()
    model = Model()
    kv: Any = (
        MemoryKV() if backend == "memory" else await redis_kv(f"vtax-prop-{uuid.uuid4().hex[:8]}:")
    )
    engine = QueueEngine(
        events, kv=kv, clock=clock, categories=["invoices"], wrapup_s=20.0, grace_s=60.0
    )

    async def in_order(agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        # The ticket offered goes first among those this agent could take right now.
        better = await best_for(engine, agent, clock.now)
        if better is not None:
            mine = (policy.ticket_score(ticket.joined_at, ticket.priority), ticket.id)
            theirs = (policy.ticket_score(better.joined_at, better.priority), better.ticket_id)
            assert mine <= theirs, "an offer skipped a ticket ahead"

    events.on_offer.append(in_order)
    try:
        for name in AGENTS:
            profile = AgentState(name, name, {"invoices": 3}, frozenset(AGENTS[name]))
            await engine.agent_online(profile, "c-" + name)
        for step in ops:
            await apply(engine, model, events, clock, step)
            await check(engine, model, events, clock.now)
    finally:
        if backend == "redis":
            await kv.delete_prefix()
            await kv.client.aclose()


async def apply(
    engine: QueueEngine, model: Model, events: Recorder, clock: FakeClock, step: tuple[Any, ...]
) -> None:
    kind = step[0]
    try:
        if kind == "join":
            _, taxpayer, language, priority = step
            tid = f"{taxpayer}-{len(model.joined)}"
            ticket = Ticket(
                tid,
                "s" + tid,
                taxpayer,
                "invoices",
                language,
                "web",
                "?",
                clock.now,
                priority,
                conn_id="c-" + tid,
            )
            await engine.join(ticket)
            model.joined[tid] = taxpayer
            model.tickets_of[taxpayer] = tid
        elif kind in ("leave", "drop", "rejoin"):
            held = model.tickets_of.get(step[1])
            if held is None:
                return
            if kind == "leave":
                await engine.leave(held, step[1])
            elif kind == "drop":
                await engine.taxpayer_dropped(step[1], "c-" + held)
            else:
                await engine.rejoin(held, step[1], "c-" + held)
        elif kind in ("available", "away", "offline"):
            await engine.set_status(step[1], kind)
        elif kind == "accept":
            agent = await engine.agent(step[1])
            if agent and agent.offer_id:
                model.served.append((await engine.accept(step[1], agent.offer_id)).id)
        elif kind == "reject":
            agent = await engine.agent(step[1])
            if agent and agent.offer_id:
                await engine.reject(step[1], agent.offer_id)
        elif kind == "hangup":
            await engine.session_ended(step[1])
        elif kind == "wait":
            clock.advance(step[1])
            await engine.fire_due()
    except DomainError:
        pass  # refused steps must leave the state consistent: check() looks


COMMON = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same sequences on every run and in CI
    database=None,
)


@settings(COMMON, max_examples=60)
@given(st.lists(op, min_size=5, max_size=40))
def test_random_sequences_in_memory(ops):
    asyncio.run(run("memory", ops))


@settings(COMMON, max_examples=20)
@given(st.lists(op, min_size=5, max_size=30))
def test_random_sequences_on_redis(ops):
    asyncio.run(run("redis", ops))
