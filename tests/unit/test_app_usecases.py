"""The application layer without a server: the use cases over the embedded backends (SQLite
file, in-memory queue and live store) with a notifier that records what people are told.
What a transport adds (auth, validation, acks) is tested in tests/integration."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from vtax import compose
from vtax.app.ports import Caller
from vtax.config import Settings
from vtax.contract import client_events as ce
from vtax.contract import server_events as se
from vtax.db import migrate
from vtax.errors import DomainError
from vtax.review.records import Scope
from tests.conftest import poll_until


class RecordingNotifier:
    """A `Notifier` that keeps every message by recipient; every connection is 'here'."""

    def __init__(self) -> None:
        self.users: dict[str, list[se.ServerEvent]] = defaultdict(list)
        self.conns: dict[str, list[Any]] = defaultdict(list)
        self.roles: dict[str, list[se.ServerEvent]] = defaultdict(list)
        self.connected: dict[str, str] = {}  # sid -> subject
        self.closed: list[str] = []

    async def to_user(self, subject: str, message: se.ServerEvent) -> None:
        self.users[subject].append(message)

    async def to_connections(self, sids: Sequence[str], message: se.ServerEvent) -> None:
        for sid in sids:
            self.conns[sid].append(message)

    async def relay(self, sids: Sequence[str], signal: dict[str, Any]) -> None:
        se.RelayedSignal.model_validate(signal)  # what the hub checks when validation is on
        for sid in sids:
            self.conns[sid].append(signal)

    async def to_role(self, role: str, message: se.ServerEvent) -> None:
        self.roles[role].append(message)

    async def to_everyone_here(self, message: se.ServerEvent) -> None:
        for sid in self.connected:
            self.conns[sid].append(message)

    async def disconnect(self, sid: str) -> None:
        self.closed.append(sid)

    def is_here(self, sid: str) -> bool:
        return sid in self.connected

    def has_connection_here(self, subject: str) -> bool:
        return subject in self.connected.values()

    def of(self, where: dict[str, list[Any]], key: str, kind: type) -> list[Any]:
        return [m for m in where[key] if isinstance(m, kind)]


@pytest.fixture
async def app(tmp_path: Any) -> AsyncIterator[tuple[compose.Services, RecordingNotifier]]:
    queues = tmp_path / "queues.toml"
    queues.write_text("[queues.social_insurance]\njoin_when_unstaffed = false\n")
    settings = Settings.from_env(
        {},
        data_dir=tmp_path,
        secret_key="k" * 40,
        documents_dir=tmp_path / "documents",
        wrapup_s=0.0,
        offer_timeout_s=5.0,
        queues_file=queues,
    )
    await migrate(settings.resolved_database_url)
    notifier = RecordingNotifier()
    services = compose.build(settings, notifier, "node-test")
    yield services, notifier
    await services.close()


async def online_agent(
    services: compose.Services, notifier: RecordingNotifier, sid: str = "sid-agent"
) -> Caller:
    staff = await services.accounts.add_user(
        "ada", "agent", "pw-123456", skills={"invoices": 3}, languages=["zh-CN"]
    )
    agent = Caller(staff.id, "agent", sid)
    notifier.connected[sid] = staff.id
    await services.queueing.connected(agent)
    await services.queueing.set_status(agent, ce.AgentStatusChange(status="available"))
    return agent


async def connected_taxpayer(
    services: compose.Services, notifier: RecordingNotifier, sid: str = "sid-tp"
) -> Caller:
    subject = await services.accounts.taxpayer_for("uscc", "91350100M000100Y43")
    notifier.connected[sid] = subject
    taxpayer = Caller(subject, "taxpayer", sid)
    await services.calls.connected(taxpayer)
    return taxpayer


def join(category: str = "invoices") -> ce.QueueJoin:
    return ce.QueueJoin(category=category, language="zh-CN", channel="web", question="发票")


async def test_join_offer_accept_call_and_loop_without_a_server(app):
    services, notifier = app
    agent = await online_agent(services, notifier)
    taxpayer = await connected_taxpayer(services, notifier)

    queued = await services.queueing.join(taxpayer, join())
    assert queued.position == 1
    await services.queue.tick()
    offers = await poll_until(lambda: notifier.of(notifier.users, agent.subject, se.OfferNew))
    assert offers[0].ticket.question == "发票"

    accepted = await services.queueing.accept(agent, ce.OfferAccept(offer_id=offers[0].offer_id))
    starts = {
        sid: notifier.of(notifier.conns, sid, se.SessionStart)[0] for sid in ("sid-tp", "sid-agent")
    }
    assert {s.role for s in starts.values()} == {"taxpayer", "agent"}
    assert starts["sid-tp"].polite and not starts["sid-agent"].polite
    assert starts["sid-tp"].session_id == accepted.session_id

    sent = await services.calls.signal(
        taxpayer,
        ce.RtcSignal(session_id=accepted.session_id, type="offer", data={"sdp": "v=0"}),
    )
    relayed = [m for m in notifier.conns["sid-agent"] if isinstance(m, dict)]
    assert relayed[0]["from"] == starts["sid-tp"].participant_id and relayed[0]["seq"] == sent.seq

    await services.calls.hang_up(agent, ce.SessionEnd(session_id=accepted.session_id))
    ended = notifier.of(notifier.conns, "sid-tp", se.SessionEnded)
    assert ended and ended[0].reason == "hangup"

    body = ce.SummaryBody(asked="红字发票", handled="讲解步骤", result="resolved")
    saved = await services.loop.summary(agent, accepted.session_id, body)
    assert saved == {"version": 1}
    told = notifier.of(notifier.users, taxpayer.subject, se.LoopChanged)
    assert [m.step for m in told] == ["summary"]
    checked = await services.loop.check(
        taxpayer, accepted.session_id, ce.CheckBody(decision="confirm", version=1)
    )
    assert checked["check"] == "confirmed"
    rated = await services.loop.rate(taxpayer, accepted.session_id, ce.RatingBody(score=2))
    assert rated == {"flagged": True}
    steps = [m.step for m in notifier.of(notifier.users, agent.subject, se.LoopChanged)]
    assert steps == ["check", "rating"]


async def test_a_stranger_cannot_speak_in_or_end_a_session(app):
    services, notifier = app
    agent = await online_agent(services, notifier)
    taxpayer = await connected_taxpayer(services, notifier)
    await services.queueing.join(taxpayer, join())
    await services.queue.tick()
    offer = (await poll_until(lambda: notifier.of(notifier.users, agent.subject, se.OfferNew)))[0]
    accepted = await services.queueing.accept(agent, ce.OfferAccept(offer_id=offer.offer_id))
    stranger = Caller("someone-else", "taxpayer", "sid-stranger")
    with pytest.raises(DomainError) as refused:
        await services.calls.signal(
            stranger, ce.RtcSignal(session_id=accepted.session_id, type="offer", data={})
        )
    assert refused.value.code == "not_in_session"
    with pytest.raises(DomainError):
        await services.calls.hang_up(stranger, ce.SessionEnd(session_id=accepted.session_id))
    assert await services.calls.get(accepted.session_id) is not None  # the call goes on
    with pytest.raises(DomainError) as twice:
        await services.queueing.join(taxpayer, join())
    assert twice.value.code == "in_session"


async def test_live_figures_show_who_is_on_duty_and_the_live_sessions(app):
    services, notifier = app
    agent = await online_agent(services, notifier)
    stats = await services.figures.figures()
    assert [(a.agent_id, a.status) for a in stats.agents] == [(agent.subject, "available")]
    assert stats.sessions == [] and stats.timezone == "Asia/Shanghai"
    taxpayer = await connected_taxpayer(services, notifier)
    await services.queueing.join(taxpayer, join())
    await services.queue.tick()
    offer = (await poll_until(lambda: notifier.of(notifier.users, agent.subject, se.OfferNew)))[0]
    accepted = await services.queueing.accept(agent, ce.OfferAccept(offer_id=offer.offer_id))
    stats = await services.figures.figures()
    assert [a.session_id for a in stats.agents] == [accepted.session_id]
    assert [(s.session_id, s.category) for s in stats.sessions] == [
        (accepted.session_id, "invoices")
    ]
    await services.figures.push(await services.queue.live_stats())
    pushed = notifier.roles["supervisor"]
    assert isinstance(pushed[-1], se.QueueStats) and pushed[-1].sessions == stats.sessions
    assert services.figures.depth_by_queue()["invoices"] == 0


async def test_a_refused_join_is_recorded_abandoned_and_raised(app):
    services, notifier = app
    taxpayer = await connected_taxpayer(services, notifier)
    with pytest.raises(DomainError) as refused:  # nobody is on duty: the queue refuses
        await services.queueing.join(taxpayer, join("social_insurance"))
    assert refused.value.code == "no_agents"
    rows, _ = await services.records.list(Scope("taxpayer", taxpayer.subject))
    assert [(r["outcome"], r["end_reason"]) for r in rows] == [("abandoned", "refused")]
