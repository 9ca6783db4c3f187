"""`session:loop` tells the other side of a session that a review step changed, over the
socket or the REST API, so the pages refresh at once instead of at their next poll."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from sqlalchemy import event

from tests.integration.test_loop import start_session
from tests.review.helpers import PDF


async def test_each_step_is_announced_to_the_other_side(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    await agent.wait_for("session:end")

    summary = {"session_id": sid, "asked": "a", "handled": "h", "result": "resolved"}
    assert (await agent.call("session:summary", summary))["ok"]
    got = await taxpayer.wait_for("session:loop")
    assert got == {"session_id": sid, "step": "summary"}

    assert (await taxpayer.call("session:check", {"session_id": sid, "decision": "confirm"}))["ok"]
    assert await agent.wait_for("session:loop", lambda m: m["step"] == "check")
    assert (await taxpayer.call("session:rate", {"session_id": sid, "score": 5}))["ok"]
    assert await agent.wait_for("session:loop", lambda m: m["step"] == "rating")
    # Each side hears only of the other's steps.
    assert [m["step"] for m in taxpayer.received["session:loop"]] == ["summary"]

    # Over REST too: the agent delivers, the taxpayer acknowledges, the agent hears of it.
    headers = {"Authorization": f"Bearer {agent.token}"}
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="notice.pdf", content_type="application/pdf")
    async with server.http.post(
        f"{server.url}/api/sessions/{sid}/deliveries", data=form, headers=headers
    ) as r:
        assert r.status == 201, await r.text()
        delivery = await r.json()
    # signing the receipt needs a fresh high-level sign-in (docs/identity.md, Step-up)
    tp_headers = {"Authorization": f"Bearer {await server.stepped_up(taxpayer.token)}"}
    async with server.http.get(
        f"{server.url}/api/deliveries/{delivery['id']}/content", headers=tp_headers
    ) as r:
        assert r.status == 200 and await r.read() == PDF
    async with server.http.post(
        f"{server.url}/api/deliveries/{delivery['id']}/ack",
        json={"sha256": delivery["sha256"]},
        headers=tp_headers,
    ) as r:
        assert r.status == 200, await r.text()
    assert await agent.wait_for("session:loop", lambda m: m["step"] == "delivery_ack")


async def test_a_refused_step_announces_nothing(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    # Not ended yet: rating is out of order.
    ack = await taxpayer.call("session:rate", {"session_id": sid, "score": 5})
    assert ack["error"]["code"] == "invalid_state"
    ack = await agent.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {}})
    assert ack["ok"]  # a round trip after the refusal: anything sent would have arrived
    await taxpayer.wait_for("rtc:signal")
    assert agent.received["session:loop"] == [] and taxpayer.received["session:loop"] == []


@contextlib.contextmanager
def statements(engine):
    """The SQL statements `engine` runs inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


def session_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith("SELECT") and "FROM service_sessions" in s]


async def test_the_announcement_reuses_the_row_the_step_loaded(server, clients):
    """A step loads its session row once, under its lock; the `session:loop` announcement
    takes the parties from there instead of reading the row again (one statement less a step)."""
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    await agent.wait_for("session:end")
    await asyncio.sleep(0.2)  # the agent's state history after the end settles
    engine = server.ctx.engine

    summary = {"session_id": sid, "asked": "a", "handled": "h", "result": "follow_up"}
    steps = [
        (agent, "session:summary", summary, taxpayer, "summary"),
        (taxpayer, "session:check", {"session_id": sid, "decision": "confirm"}, agent, "check"),
        (taxpayer, "session:rate", {"session_id": sid, "score": 4}, agent, "rating"),
    ]
    for sender, name, payload, other, step in steps:
        with statements(engine) as seen:
            assert (await sender.call(name, payload))["ok"]
            await other.wait_for("session:loop", lambda m, step=step: m["step"] == step)
        print(f"{name}: {len(seen)} statements")
        assert len(session_reads(seen)) == 1, seen  # the step's own locked load

    # Over REST: the visibility check reads the row too, then the step's locked load.
    headers = {"Authorization": f"Bearer {agent.token}"}
    with statements(engine) as seen:
        async with server.http.post(
            f"{server.url}/api/sessions/{sid}/follow-up", json={}, headers=headers
        ) as r:
            assert r.status == 200, await r.text()
        await taxpayer.wait_for("session:loop", lambda m: m["step"] == "follow_up")
    print(f"follow-up done (REST): {len(seen)} statements")
    assert len(session_reads(seen)) == 2, seen

    # A delivery's receipt: the delivery row names both parties; the session is not read on
    # its own (who may see the delivery is a subquery of the delivery's own locked load: the
    # sessions the caller may see, an enterprise's included).
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="notice.pdf", content_type="application/pdf")
    async with server.http.post(
        f"{server.url}/api/sessions/{sid}/deliveries", data=form, headers=headers
    ) as r:
        delivery = await r.json()
    # signing the receipt needs a fresh high-level sign-in (docs/identity.md, Step-up)
    tp_headers = {"Authorization": f"Bearer {await server.stepped_up(taxpayer.token)}"}
    async with server.http.get(
        f"{server.url}/api/deliveries/{delivery['id']}/content", headers=tp_headers
    ) as r:
        assert r.status == 200
    with statements(engine) as seen:
        async with server.http.post(
            f"{server.url}/api/deliveries/{delivery['id']}/ack", json={}, headers=tp_headers
        ) as r:
            assert r.status == 200, await r.text()
        await agent.wait_for("session:loop", lambda m: m["step"] == "delivery_ack")
    print(f"delivery ack (REST): {len(seen)} statements")
    loads = [s for s in seen if s.startswith("SELECT deliveries.")]
    assert len(loads) == 1 and "IN (SELECT service_sessions.id" in loads[0], seen
    assert [s for s in session_reads(seen) if s not in loads] == [], seen
