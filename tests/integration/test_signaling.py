"""Signaling in depth: ordering, isolation, resume with replay, grace, expiry, limits, origins."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.conftest import RESIDENT_ID, Client, poll_until
from tests.integration.test_loop import JOIN, start_session


async def test_a_burst_of_candidates_never_overtakes_its_offer(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    acks: list[dict] = []
    # Fire without waiting: python-socketio would run these concurrently by default.
    await agent.sio.emit(
        "rtc:signal",
        {
            "session_id": sid,
            "type": "offer",
            "data": {"type": "offer", "sdp": "v=0 " + "x" * 20_000},
        },
        callback=acks.append,
    )
    for n in range(60):
        await agent.sio.emit(
            "rtc:signal",
            {"session_id": sid, "type": "candidate", "data": {"candidate": f"c{n}"}},
            callback=acks.append,
        )
    await poll_until(lambda: len(taxpayer.received["rtc:signal"]) == 61)
    got = taxpayer.received["rtc:signal"]
    assert got[0]["type"] == "offer"
    assert [m["data"]["candidate"] for m in got[1:]] == [f"c{n}" for n in range(60)]
    assert [m["seq"] for m in got] == list(range(1, 62))
    await poll_until(lambda: len(acks) == 61)
    assert [a["seq"] for a in acks] == list(range(1, 62))


async def test_a_third_party_reads_nothing_of_a_session(server, clients):
    outsider = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    await agent.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {"sdp": "x"}})
    resume = await outsider.call("session:resume", {"session_id": sid, "last_seq": 0})
    assert resume["error"]["code"] == "not_in_session"
    await taxpayer.wait_for("rtc:signal")
    assert outsider.received["rtc:signal"] == [] and outsider.received["session:start"] == []


@pytest.mark.parametrize("settings_overrides", [{"resume_grace_s": 5.0}])
async def test_resume_replays_what_was_missed_and_both_sides_hear_of_it(server, clients):
    agent, taxpayer, a_start, t_start = await start_session(server, clients)
    sid = a_start["session_id"]
    await agent.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {"n": 1}})
    await taxpayer.wait_for("rtc:signal")
    await taxpayer.close()
    await agent.wait_for("session:peer", lambda p: p["state"] == "reconnecting")
    for n in (2, 3, 4):
        ack = await agent.call(
            "rtc:signal", {"session_id": sid, "type": "candidate", "data": {"n": n}}
        )
        assert ack["ok"]
    back = await clients(server, taxpayer.token)  # a new connection: a reloaded page
    resumed = await back.call("session:resume", {"session_id": sid, "last_seq": 1})
    assert resumed["ok"], resumed
    assert [m["data"]["n"] for m in resumed["replay"]] == [2, 3, 4]
    assert [m["seq"] for m in resumed["replay"]] == [2, 3, 4]
    assert resumed["participant_id"] == t_start["participant_id"]
    assert resumed["peer"]["participant_id"] == a_start["participant_id"]
    assert resumed["ice_restart"] is True and resumed["polite"] is True
    peer = await agent.wait_for("session:peer", lambda p: p["state"] == "back")
    assert peer["ice_restart"] is True
    # The relay works again both ways on the new connection.
    assert (await back.call("rtc:signal", {"session_id": sid, "type": "answer", "data": {"n": 5}}))[
        "ok"
    ]
    assert (await agent.wait_for("rtc:signal"))["data"] == {"n": 5}
    await agent.call("rtc:signal", {"session_id": sid, "type": "candidate", "data": {"n": 6}})
    assert (await back.wait_for("rtc:signal"))["data"] == {"n": 6}
    # Ending after the resume is recorded as completed, not dropped.
    assert (await back.call("session:end", {"session_id": sid}))["ok"]
    await agent.wait_for("session:end")
    row = await server.ctx.records.get(sid, _supervisor())
    assert row["outcome"] == "completed"


def _supervisor():
    from vtax.review.records import Scope

    return Scope("supervisor", "x")


@pytest.mark.parametrize("settings_overrides", [{"resume_grace_s": 5.0}])
async def test_resuming_on_a_second_connection_closes_the_first(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    second = await clients(server, taxpayer.token)
    assert (await second.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
    await poll_until(lambda: not taxpayer.sio.connected)
    await agent.call("rtc:signal", {"session_id": sid, "type": "candidate", "data": {}})
    await second.wait_for("rtc:signal")


@pytest.mark.parametrize("settings_overrides", [{"resume_grace_s": 0.4}])
async def test_after_the_grace_a_resume_is_too_late(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    await taxpayer.close()
    await agent.wait_for("session:end", timeout=5)
    back = await clients(server, taxpayer.token)
    late = await back.call("session:resume", {"session_id": sid, "last_seq": 0})
    assert late["error"]["code"] == "session_ended"
    row = await server.ctx.records.get(sid, _supervisor())
    assert (row["outcome"], row["end_reason"]) == ("dropped", "peer_lost")


async def test_an_expired_token_cannot_resume(server, clients):
    _agent, _taxpayer, a_start, _ = await start_session(server, clients)
    # The same taxpayer signed in again, the token issued as if the sign-in were older: it
    # expires 2-3 s from now (whole seconds): time to connect on a loaded machine (1 s was
    # not, under two xdist workers); then wait until just past the expiry. A clock seam
    # would make this instant: docs/benchmarks.md, "Real sleeps".
    tokens = server.ctx.services.identity.tokens
    real_clock = tokens.clock
    tokens.clock = lambda: real_clock() - tokens.access_ttl_s + 3
    try:
        almost = await server.taxpayer()
    finally:
        tokens.clock = real_clock
    short = await clients(server, almost)
    # the hub's timer cuts the socket when its token expires: nothing to resume with
    await poll_until(lambda: not short.sio.connected, timeout=3)
    with pytest.raises(socketio.exceptions.BadNamespaceError):
        await short.call("session:resume", {"session_id": a_start["session_id"], "last_seq": 0})
    late = Client(server.url, almost)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await late.connect()


@pytest.mark.parametrize("settings_overrides", [{"signal_rate": 5.0, "signal_burst": 10}])
async def test_signal_floods_are_rate_limited_and_the_connection_survives(server, clients):
    agent, _taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    codes = []
    for _ in range(30):
        ack = await agent.call("rtc:signal", {"session_id": sid, "type": "candidate", "data": {}})
        codes.append("ok" if ack["ok"] else ack["error"]["code"])
    assert codes[:10] == ["ok"] * 10
    assert codes.count("rate_limited") >= 15
    assert agent.sio.connected
    await asyncio.sleep(0.5)  # the bucket refills
    assert (await agent.call("rtc:signal", {"session_id": sid, "type": "candidate", "data": {}}))[
        "ok"
    ]


@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": ["https://tax.example"]}])
async def test_only_allowed_origins_may_connect(server):
    token = await server.taxpayer()
    good = socketio.AsyncClient(reconnection=False)
    await good.connect(
        server.url,
        auth={"token": token},
        transports=["websocket"],
        headers={"Origin": "https://tax.example"},
        wait_timeout=5,
    )
    assert good.connected
    await good.disconnect()
    bad = socketio.AsyncClient(reconnection=False)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.connect(
                server.url,
                auth={"token": token},
                transports=["websocket"],
                headers={"Origin": "https://evil.example"},
                wait_timeout=5,
            )
    finally:
        if bad.eio.http is not None:  # a refused handshake leaves the HTTP session open
            await bad.eio.http.close()


async def test_draining_refuses_new_work_and_moves_clients(server, clients):
    taxpayer = await clients(server, await server.taxpayer())
    await server.ctx.hub.drain(0.0)
    await poll_until(lambda: taxpayer.received["server:draining"])
    await poll_until(lambda: not taxpayer.sio.connected)
    again = Client(server.url, taxpayer.token)
    await again.connect()
    ack = await again.call(
        "queue:join",
        {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "q"},
    )
    assert ack["error"]["code"] == "draining"
    await again.close()


async def test_metrics_count_what_happened(server, clients):
    agent, _taxpayer, a_start, _ = await start_session(server, clients)
    await agent.call(
        "rtc:signal", {"session_id": a_start["session_id"], "type": "offer", "data": {}}
    )
    async with server.http.get(server.url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")
    assert float(lines['vtax_connected_clients{role="agent"}']) == 1
    assert float(lines['vtax_connected_clients{role="taxpayer"}']) == 1
    assert float(lines["vtax_signals_relayed_total"]) == 1
    assert float(lines["vtax_dispatch_seconds_count"]) >= 1
    assert "vtax_queue_depth" in text and "vtax_rate_limited_total" in text
    assert float(lines["vtax_queue_conflicts_total"]) == 0  # the in-memory queue never conflicts
    assert float(lines["vtax_queue_transactions_total"]) >= 4  # status, join, offer, accept


@pytest.mark.parametrize("settings_overrides", [{"join_rate": 0.01, "join_burst": 2}])
async def test_queue_joins_are_rate_limited(server, clients):
    taxpayer = await clients(server, await server.taxpayer())
    join = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "q"}
    codes = []
    for _ in range(4):
        ack = await taxpayer.call("queue:join", join)
        codes.append(ack["error"]["code"] if not ack["ok"] else "ok")
        if ack["ok"]:
            await taxpayer.call("queue:leave", {"ticket_id": ack["ticket_id"]})
    assert codes == ["ok", "ok", "rate_limited", "rate_limited"]


@pytest.mark.parametrize("settings_overrides", [{"resume_grace_s": 5.0, "wrapup_s": 30.0}])
async def test_an_agent_who_reloads_mid_call_stays_busy(server, clients):
    agent, _taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    await agent.close()
    back = await clients(server, agent.token)
    assert (await back.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
    refused = await back.call("agent:status", {"status": "available"})
    assert refused["error"]["code"] == "invalid_state"  # still busy: no offers mid-call
    assert (await back.call("session:end", {"session_id": sid}))["ok"]
    await back.wait_for("agent:status", lambda s: s["status"] == "wrap_up")


@pytest.mark.parametrize("settings_overrides", [{"resume_grace_s": 0.3}])
async def test_an_agent_who_never_comes_back_ends_offline(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    await agent.close()
    await taxpayer.wait_for("session:end")
    engine = server.ctx.queue.engine
    state = await poll_until(lambda: _agent_status(engine, a_start), timeout=5)
    assert state == "offline"


async def _agent_status(engine, a_start):
    from vtax.queue import keys

    agents = await engine.kv.smembers(keys.AGENTS)
    for agent_id in agents:
        fields = await engine.kv.hgetall(keys.agent(agent_id))
        if fields.get("status") in ("offline", "available", "wrap_up"):
            return fields["status"]
    return None


async def test_after_a_fanout_gap_call_participants_resync_and_pending_offers_come_again(
    server, clients
):
    """What signaling/app.py runs once its pub/sub subscription is back after a gap (a Redis
    restart; tests/multinode/test_redis_restart.py makes the real gap)."""
    from signaling.events import after_fanout_gap

    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    other = await clients(server, await server.staff("agent2"))
    waiting = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    assert (await other.call("agent:status", {"status": "available"}))["ok"]
    assert (await waiting.call("queue:join", {**JOIN, "question": "offered twice"}))["ok"]
    first = await other.wait_for("offer:new")

    told, offers = await after_fanout_gap(server.ctx.hub, server.ctx.services, 1.5)
    assert (told, offers) == (2, 1)
    for side in (agent, taxpayer):
        assert await side.wait_for("session:resync") == {"session_id": sid, "gap_s": 1.5}
    again = await other.wait_for("offer:new", lambda o: o is not first)
    assert again["offer_id"] == first["offer_id"] and again["ticket"] == {
        **first["ticket"],
        "waited_s": again["ticket"]["waited_s"],
    }
    assert 0 < again["expires_in_s"] <= first["expires_in_s"]
    assert waiting.received["session:resync"] == []  # not in a call: nothing to resync
    # The offer taken from the second copy works: it is the same reservation.
    assert (await other.call("offer:accept", {"offer_id": again["offer_id"]}))["ok"]
    await waiting.wait_for("session:start")


async def test_a_renewed_token_keeps_the_socket_past_the_first_ones_expiry(server, clients):
    """`auth:renew`: the page's refreshed access token carried onto its socket re-arms the
    expiry cut; another account's token is refused, and so is one that does not verify."""
    tokens = server.ctx.services.identity.tokens
    real_clock = tokens.clock
    tokens.clock = lambda: real_clock() - tokens.access_ttl_s + 3  # expires in 2-3 s
    try:
        session = await server.taxpayer_session()
    finally:
        tokens.clock = real_clock
    socket = await clients(server, session["access_token"])
    fresh = await server._post("/api/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert await socket.call("auth:renew", {"token": fresh["access_token"]}) == {"ok": True}
    other = await server.taxpayer(RESIDENT_ID, "resident_id")
    refused = await socket.call("auth:renew", {"token": other})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    forged = await socket.call("auth:renew", {"token": "x" * 40})
    assert forged["ok"] is False and forged["error"]["code"] == "unauthorized"
    cut_before = server.ctx.hub.expired_cut
    await asyncio.sleep(4)  # past the first token's expiry
    assert socket.sio.connected and server.ctx.hub.expired_cut == cut_before
    assert (await socket.call("queue:leave", {"ticket_id": "t-none"}))["error"]["code"] != (
        "unauthorized"
    )
