"""Agent state history through the real hook: the queue's state changes are stored, the
wrap-up after a session is attributed to it, and a disconnect is recorded as offline."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import poll_until
from tests.review.helpers import people
from vtax.models import AgentStateChange, ServiceSession

JOIN = {"category": "invoices", "language": "zh-CN", "channel": "kiosk", "question": "VAT?"}


@pytest.fixture
def settings_overrides(tmp_path: Any) -> dict[str, Any]:
    return {"documents_dir": tmp_path / "documents", "wrapup_s": 0.4}


async def states(server, agent_id):
    async with server.ctx.records.sessionmaker() as db:
        rows = await db.scalars(
            select(AgentStateChange)
            .where(AgentStateChange.agent_id == agent_id)
            .order_by(AgentStateChange.id)
        )
        return [(r.status, r.reason) for r in rows]


async def test_state_history_and_wrap_up_from_the_hook(server, clients, cast):
    p = await people(server, cast)
    agent = await clients(server, p.agent)
    taxpayer = await clients(server, p.taxpayer)
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    assert (await taxpayer.call("queue:join", JOIN))["ok"]
    offer = await agent.wait_for("offer:new")
    assert (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
    start = await agent.wait_for("session:start")
    assert (await agent.call("session:end", {"session_id": start["session_id"]}))["ok"]
    await agent.wait_for("agent:status", lambda s: s["status"] == "wrap_up")
    await agent.wait_for("agent:status", lambda s: s["status"] == "available", timeout=5)

    async def wrap_ms():
        async with server.ctx.records.sessionmaker() as db:
            return await db.scalar(
                select(ServiceSession.wrap_ms).where(ServiceSession.id == start["session_id"])
            )

    wrapped = await poll_until(wrap_ms)
    assert 300 <= wrapped <= 3000  # wrapup_s = 0.4, with some scheduling slack
    history = [s for s, _ in await states(server, p.agent_id)]
    assert history[-3:] == ["busy", "wrap_up", "available"]
    assert "reserved" in history and history[0] == "available"
    await agent.close()
    await poll_until(lambda: _last_is_offline(server, p.agent_id))
    status, view = await _view(server, p, start["session_id"])
    assert status == 200 and view["wrap_up_s"] == wrapped / 1000


async def _last_is_offline(server, agent_id):
    history = await states(server, agent_id)
    return bool(history) and history[-1] == ("offline", "disconnected")


async def _view(server, p, sid):
    async with server.http.get(
        f"{server.url}/api/sessions/{sid}", headers={"Authorization": f"Bearer {p.supervisor}"}
    ) as r:
        return r.status, await r.json()
