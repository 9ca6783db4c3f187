"""Two nodes (two apps in this process) over one Redis prefix: the agent and the taxpayer on
node A, the supervisor and the media-leg worker on node B. The monitoring record, the workers
and every push cross the nodes; the taxpayer hears of none of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import RunningServer
from tests.monitor.conftest import assert_taxpayer_clean, recorder_token
from tests.queue.test_two_nodes import nodes  # noqa: F401 - the two-node fixture
from tests.recording.conftest import JOIN


async def start_session(server: RunningServer, clients: Callable[..., Any]) -> tuple[Any, ...]:
    """As tests/recording's, accepting the next offer when one expired first (the two-node
    fixture's offers last 0.4 s)."""
    agent = await clients(server, await server.staff("agent1"))
    taxpayer = await clients(server, await server.taxpayer())
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    assert (await taxpayer.call("queue:join", JOIN))["ok"]
    tried: set[str] = set()
    for _ in range(20):
        offer = await agent.wait_for("offer:new", lambda o: o["offer_id"] not in tried, 10)
        tried.add(offer["offer_id"])
        if (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]:
            break
        await agent.call("agent:status", {"status": "available"})  # after missed offers
    t_start = await taxpayer.wait_for("session:start")
    a_start = await agent.wait_for("session:start")
    return taxpayer, agent, t_start, a_start


async def test_monitoring_across_nodes(nodes, clients):  # noqa: F811
    a, b = nodes
    leg = await clients(b, recorder_token(b))
    assert (await leg.call("leg:hello", {"worker": "leg-b", "capacity": 2}))["ok"]
    taxpayer, agent, t_start, a_start = await start_session(a, clients)
    session_id = t_start["session_id"]
    sup = await clients(b, await b.staff("sup1", "supervisor"))

    view = await sup.call("monitor:start", {"session_id": session_id})
    assert view["ok"] and view["state"] == "connecting", view
    job = await leg.wait_for("monitor:job")
    joined = await leg.call("leg:join", {"session_id": session_id, "job_id": job["job_id"]})
    assert joined["ok"] and joined["agent_id"] == a_start["participant_id"], joined
    leg_id = joined["leg_id"]
    await sup.wait_for("monitor:state", lambda m: m["state"] == "live")
    await agent.wait_for("monitor:agent", lambda m: m["leg_id"] == leg_id)  # B -> A

    ack = await agent.call(
        "monitor:signal",
        {"session_id": session_id, "to": leg_id, "type": "offer", "data": {"sdp": "v=0"}},
    )
    assert ack["ok"], ack
    await leg.wait_for("monitor:signal", lambda m: m["from"] == a_start["participant_id"])
    assert (await sup.call("monitor:whisper", {"session_id": session_id, "on": True}))["ok"]
    await agent.wait_for("monitor:agent", lambda m: m["whispering"] is True)

    # The session ends on node A: the supervisor and the leg on node B are told.
    assert (await taxpayer.call("session:end", {"session_id": session_id}))["ok"]
    await sup.wait_for("monitor:state", lambda m: m["state"] == "ended")
    await leg.wait_for("leg:stop")
    assert await a.ctx.services.monitor.store.get(session_id) is None
    assert_taxpayer_clean(taxpayer, leg_id, view["monitor_id"], "sup1")
