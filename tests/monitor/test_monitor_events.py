"""Monitor and whisper through the contract, with real Socket.IO clients on SQLite and
PostgreSQL, the monitoring store in memory and in Redis: state changes, who is told what,
refusals, audit rows, and the taxpayer's event stream clean of any sign of a monitor. The
leg's signaling is played by a client with a recorder token (tests/monitor/test_leg_media.py
runs the real worker and media)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import poll_until
from tests.monitor.conftest import assert_taxpayer_clean, leg_client, monitored_call
from vtax.models import SessionEvent


async def audit_rows(server: Any, session_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with server.ctx.records.sessionmaker() as db:
        rows = await db.execute(
            select(SessionEvent.kind, SessionEvent.actor_role, SessionEvent.data)
            .where(SessionEvent.session_id == session_id, SessionEvent.kind.like("monitor_%"))
            .order_by(SessionEvent.id)
        )
        return [(k, r, d) for k, r, d in rows.all()]


async def signal_pair(
    taxpayer: Any, agent: Any, session_id: str, t_id: str, a_id: str, own: list[int]
) -> None:
    """One call signal each way; the taxpayer's own seqs go to `own` (with the ones it
    receives they must have no gap a monitor's signals made)."""
    for sender, to in ((agent, t_id), (taxpayer, a_id)):
        ack = await sender.call(
            "rtc:signal",
            {"session_id": session_id, "to": to, "type": "candidate", "data": None},
        )
        assert ack["ok"], ack
        if sender is taxpayer:
            own.append(ack["seq"])


async def test_monitor_whisper_and_stop(server, clients):
    leg = await leg_client(server, clients)
    taxpayer, agent, t_start, a_start = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    t_id, a_id = t_start["participant_id"], a_start["participant_id"]
    notice = await taxpayer.wait_for("session:notice")
    assert notice == {"session_id": session_id, "notice": "may_be_monitored"}
    assert "session:notice" not in agent.received
    own: list[int] = []
    await signal_pair(taxpayer, agent, session_id, t_id, a_id, own)

    sup1 = await clients(server, await server.staff("sup1", "supervisor"))
    sup2 = await clients(server, await server.staff("sup2", "supervisor"))
    first = await sup1.call("monitor:start", {"session_id": session_id})
    assert first["ok"] and first["state"] == "connecting" and first["leg_id"] is None, first
    assert first["whisper"] is False and first["ice_servers"] == []
    m1 = first["monitor_id"]
    told = await agent.wait_for("monitor:agent")
    assert told == {"session_id": session_id, "leg_id": None, "monitors": 1, "whispering": False}

    job = await leg.wait_for("monitor:job")
    assert job["session_id"] == session_id
    wrong = await leg.call("leg:join", {"session_id": session_id, "job_id": "lj-nope"})
    assert wrong["ok"] is False and wrong["error"]["code"] == "invalid_state"
    joined = await leg.call("leg:join", {"session_id": session_id, "job_id": job["job_id"]})
    assert joined["ok"], joined
    leg_id = joined["leg_id"]
    assert joined["agent_id"] == a_id and joined["monitors"] == [m1]
    assert joined["whisper_from"] is None
    live = await sup1.wait_for("monitor:state", lambda m: m["state"] == "live")
    assert live == {"session_id": session_id, "monitor_id": m1, "state": "live", "leg_id": leg_id}
    await agent.wait_for("monitor:agent", lambda m: m["leg_id"] == leg_id)

    # The same supervisor connection again: the same monitoring, no second row.
    again = await sup1.call("monitor:start", {"session_id": session_id})
    assert again["monitor_id"] == m1 and again["state"] == "live"

    second = await sup2.call("monitor:start", {"session_id": session_id})
    assert second["ok"] and second["state"] == "live" and second["leg_id"] == leg_id
    m2 = second["monitor_id"]
    await leg.wait_for("leg:monitors", lambda m: m["monitors"] == sorted([m1, m2]))
    assert len(leg.received["monitor:job"]) == 1  # one leg for the session, not per monitor
    await agent.wait_for("monitor:agent", lambda m: m["monitors"] == 2)

    # Signals: supervisor <-> leg <-> agent, stamped with `from`; nobody else.
    offer = {"type": "offer", "sdp": "v=0"}
    ack = await sup1.call(
        "monitor:signal", {"session_id": session_id, "to": leg_id, "type": "offer", "data": offer}
    )
    assert ack == {"ok": True}
    got = await leg.wait_for("monitor:signal", lambda m: m["from"] == m1)
    assert got == {"session_id": session_id, "from": m1, "type": "offer", "data": offer}
    ack = await leg.call(
        "monitor:signal", {"session_id": session_id, "to": m1, "type": "answer", "data": offer}
    )
    assert ack["ok"]
    assert (await sup1.wait_for("monitor:signal"))["from"] == leg_id
    ack = await agent.call(
        "monitor:signal", {"session_id": session_id, "to": leg_id, "type": "offer", "data": offer}
    )
    assert ack["ok"]
    await leg.wait_for("monitor:signal", lambda m: m["from"] == a_id)
    ack = await leg.call(
        "monitor:signal", {"session_id": session_id, "to": a_id, "type": "answer", "data": offer}
    )
    assert ack["ok"]
    assert (await agent.wait_for("monitor:signal"))["from"] == leg_id
    for sender, to in ((sup1, a_id), (sup1, m2), (agent, m1), (leg, t_id)):
        refused = await sender.call(
            "monitor:signal", {"session_id": session_id, "to": to, "type": "offer", "data": None}
        )
        assert refused["ok"] is False and refused["error"]["code"] == "not_monitoring", refused
    assert "monitor:signal" not in sup2.received

    # Whisper: one at a time; the agent and the leg are told, the taxpayer is not.
    on = await sup1.call("monitor:whisper", {"session_id": session_id, "on": True})
    assert on["ok"] and on["whisper"] is True
    await leg.wait_for("leg:monitors", lambda m: m["whisper_from"] == m1)
    await agent.wait_for("monitor:agent", lambda m: m["whispering"] is True)
    busy = await sup2.call("monitor:whisper", {"session_id": session_id, "on": True})
    assert busy["ok"] is False and busy["error"]["code"] == "whisper_busy"
    off = await sup1.call("monitor:whisper", {"session_id": session_id, "on": False})
    assert off["ok"] and off["whisper"] is False
    await leg.wait_for(
        "leg:monitors", lambda m: m["whisper_from"] is None and len(m["monitors"]) == 2
    )

    # Stop, and a supervisor whose connection closes: the leg is told to stop when none is left.
    assert (await sup1.call("monitor:stop", {"session_id": session_id})) == {"ok": True}
    not_any_more = await sup1.call("monitor:stop", {"session_id": session_id})
    assert not_any_more["error"]["code"] == "not_monitoring"
    await sup2.close()
    await leg.wait_for("leg:stop", timeout=5)
    await agent.wait_for("monitor:agent", lambda m: m["monitors"] == 0 and m["leg_id"] is None)

    await signal_pair(taxpayer, agent, session_id, t_id, a_id, own)
    await taxpayer.wait_for("rtc:signal", lambda m: m["seq"] > own[0])
    seqs = sorted([m["seq"] for m in taxpayer.received["rtc:signal"]] + own)
    assert seqs == [1, 2, 3, 4], seqs  # no gap: no hidden signal went through the call's seq
    assert_taxpayer_clean(taxpayer, m1, m2, leg_id, "sup1", "sup2")

    rows = await poll_until(lambda: _rows_with(server, session_id, "monitor_stopped", 2), timeout=5)
    kinds = [k for k, _, _ in rows]
    assert kinds == [
        "monitor_started",
        "monitor_leg_joined",
        "monitor_started",
        "monitor_whisper_started",
        "monitor_whisper_stopped",
        "monitor_stopped",
        "monitor_stopped",
    ], kinds
    assert [r for k, r, _ in rows if k == "monitor_started"] == ["supervisor", "supervisor"]
    stopped = [d for k, _, d in rows if k == "monitor_stopped"]
    assert [(d["monitor_id"], d["reason"]) for d in stopped] == [
        (m1, "stopped"),
        (m2, "disconnected"),
    ]


def set_monitor_settings(server: Any, **values: Any) -> None:
    """The monitor settings of the running node's use case (settings are frozen)."""
    monitor = server.ctx.services.monitor
    monitor.settings = monitor.settings.model_copy(update=values)


async def _rows_with(server: Any, session_id: str, kind: str, count: int) -> Any:
    rows = await audit_rows(server, session_id)
    return rows if sum(1 for k, _, _ in rows if k == kind) >= count else None


async def test_the_session_end_ends_monitoring(server, clients):
    leg = await leg_client(server, clients)
    taxpayer, _, t_start, _ = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    sup = await clients(server, await server.staff("sup1", "supervisor"))
    m1 = (await sup.call("monitor:start", {"session_id": session_id}))["monitor_id"]
    job = await leg.wait_for("monitor:job")
    assert (await leg.call("leg:join", {"session_id": session_id, "job_id": job["job_id"]}))["ok"]
    assert (await taxpayer.call("session:end", {"session_id": session_id}))["ok"]
    ended = await sup.wait_for("monitor:state", lambda m: m["state"] == "ended")
    assert ended["reason"] == "session_ended" and ended["monitor_id"] == m1
    await leg.wait_for("leg:stop")
    gone = await sup.call("monitor:whisper", {"session_id": session_id, "on": True})
    assert gone["error"]["code"] == "not_found"
    rows = await poll_until(lambda: _rows_with(server, session_id, "monitor_stopped", 1), 5)
    assert rows[-1][2]["reason"] == "session_ended"
    assert_taxpayer_clean(taxpayer, m1)


async def test_an_agent_back_on_a_new_connection_is_told_of_the_leg_again(server, clients):
    leg = await leg_client(server, clients)
    taxpayer, agent, t_start, a_start = await monitored_call(server, clients)
    session_id, a_id = t_start["session_id"], a_start["participant_id"]
    sup = await clients(server, await server.staff("sup1", "supervisor"))
    m1 = (await sup.call("monitor:start", {"session_id": session_id}))["monitor_id"]
    job = await leg.wait_for("monitor:job")
    joined = await leg.call("leg:join", {"session_id": session_id, "job_id": job["job_id"]})
    leg_id = joined["leg_id"]
    await agent.wait_for("monitor:agent", lambda m: m["leg_id"] == leg_id)

    # The agent's page reloads: a new connection resumes the call and hears of the leg again,
    # so that it feeds the leg anew; its offer reaches the leg from the same participant.
    await agent.close()
    back = await clients(server, agent.token)
    resumed = await back.call("session:resume", {"session_id": session_id, "last_seq": 0})
    assert resumed["ok"] and resumed["participant_id"] == a_id, resumed
    told = await back.wait_for("monitor:agent", lambda m: m["leg_id"] == leg_id)
    assert told == {"session_id": session_id, "leg_id": leg_id, "monitors": 1, "whispering": False}
    offer = {"type": "offer", "sdp": "v=0"}
    ack = await back.call(
        "monitor:signal", {"session_id": session_id, "to": leg_id, "type": "offer", "data": offer}
    )
    assert ack == {"ok": True}
    await leg.wait_for("monitor:signal", lambda m: m["from"] == a_id)
    # A taxpayer back on a new connection hears nothing of it.
    await taxpayer.close()
    again = await clients(server, taxpayer.token)
    assert (await again.call("session:resume", {"session_id": session_id, "last_seq": 0}))["ok"]
    await asyncio.sleep(0.3)
    assert_taxpayer_clean(again, m1, leg_id)
    assert_taxpayer_clean(taxpayer, m1, leg_id)


async def test_a_job_nobody_joined_goes_to_another_worker(server, clients):
    """The worker sent the job does not join within `monitor_leg_join_s` (it hangs): the job
    goes to another worker, the first is told to stop and its late join is refused."""
    set_monitor_settings(server, monitor_leg_join_s=1.0)
    slow = await leg_client(server, clients)
    _, _, t_start, _ = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    sup = await clients(server, await server.staff("sup1", "supervisor"))
    started = await sup.call("monitor:start", {"session_id": session_id})
    assert started["ok"] and started["state"] == "connecting", started
    first = await slow.wait_for("monitor:job")
    other = await leg_client(server, clients)
    second = await other.wait_for("monitor:job", timeout=10)
    assert second["session_id"] == session_id and second["job_id"] != first["job_id"]
    await slow.wait_for("leg:stop")
    late = await slow.call("leg:join", {"session_id": session_id, "job_id": first["job_id"]})
    assert late["ok"] is False and late["error"]["code"] == "invalid_state", late
    joined = await other.call("leg:join", {"session_id": session_id, "job_id": second["job_id"]})
    assert joined["ok"], joined
    live = await sup.wait_for("monitor:state", lambda m: m["state"] == "live")
    assert live["leg_id"] == joined["leg_id"]
    assert len(other.received["monitor:job"]) == 1  # sent once, not at every sweep
    rows = await poll_until(lambda: _rows_with(server, session_id, "monitor_leg_joined", 1), 5)
    resent = [d for k, _, d in rows if k == "monitor_leg_resent"]
    assert resent == [{"reason": "leg_late"}], rows


async def test_a_worker_gone_before_joining_the_monitors_wait_for_the_next(server, clients):
    """The worker dies between the job and `leg:join`; no other worker is there: the
    monitors wait (connecting) and the next worker to say hello gets the job."""
    doomed = await leg_client(server, clients)
    _, _, t_start, _ = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    sup = await clients(server, await server.staff("sup1", "supervisor"))
    assert (await sup.call("monitor:start", {"session_id": session_id}))["ok"]
    await doomed.wait_for("monitor:job")
    await doomed.close()
    store = server.ctx.services.monitor.store

    async def dropped() -> bool:
        record = await store.get(session_id)
        return record is not None and record.leg is None

    await poll_until(dropped, timeout=10)
    assert [m["state"] for m in sup.received["monitor:state"]] == []  # still connecting
    newcomer = await leg_client(server, clients)
    job = await newcomer.wait_for("monitor:job", timeout=10)
    joined = await newcomer.call("leg:join", {"session_id": session_id, "job_id": job["job_id"]})
    assert joined["ok"], joined
    await sup.wait_for("monitor:state", lambda m: m["state"] == "live")
    rows = await audit_rows(server, session_id)
    kinds = [(k, d.get("reason")) for k, _, d in rows if k.startswith("monitor_leg")]
    assert kinds == [
        ("monitor_leg_lost", "leg_lost"),
        ("monitor_leg_resent", "waiting"),
        ("monitor_leg_joined", None),
    ], kinds


async def test_refusals(server, clients):
    taxpayer, agent, t_start, _ = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    sup = await clients(server, await server.staff("sup1", "supervisor"))
    # Only supervisors monitor; the taxpayer may not even signal the leg.
    for who in (taxpayer, agent):
        for event, payload in (
            ("monitor:start", {"session_id": session_id}),
            ("monitor:whisper", {"session_id": session_id, "on": True}),
        ):
            ack = await who.call(event, payload)
            assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    ack = await taxpayer.call(
        "monitor:signal", {"session_id": session_id, "to": "leg-x", "type": "offer"}
    )
    assert ack["error"]["code"] == "forbidden"
    ack = await taxpayer.call("leg:join", {"session_id": session_id, "job_id": "j"})
    assert ack["error"]["code"] == "forbidden"
    # No media-leg worker connected: refused with a code, nothing kept.
    ack = await sup.call("monitor:start", {"session_id": session_id})
    assert ack["ok"] is False and ack["error"]["code"] == "monitor_unavailable", ack
    assert await server.ctx.services.monitor.store.get(session_id) is None
    assert "monitor:agent" not in agent.received
    # Bad payloads and unknown sessions; the connection survives.
    for payload in ({}, {"session_id": ""}, {"session_id": session_id, "extra": 1}):
        ack = await sup.call("monitor:start", payload)
        assert ack["error"]["code"] == "invalid_payload", ack
    ack = await sup.call("monitor:whisper", {"session_id": session_id, "on": "yes"})
    assert ack["error"]["code"] == "invalid_payload"
    ack = await sup.call("monitor:start", {"session_id": "s-unknown"})
    assert ack["error"]["code"] == "not_found"
    ack = await sup.call("monitor:stop", {"session_id": session_id})
    assert ack["error"]["code"] == "not_monitoring"
    # A worker may only join a job it was given; a supervisor cannot play the leg.
    leg = await leg_client(server, clients)
    ack = await leg.call("leg:join", {"session_id": session_id, "job_id": "lj-none"})
    assert ack["error"]["code"] == "invalid_state"
    ack = await sup.call("leg:join", {"session_id": session_id, "job_id": "lj-none"})
    assert ack["error"]["code"] == "forbidden"
    # Another supervisor's monitoring is not theirs to stop or whisper on.
    m = await sup.call("monitor:start", {"session_id": session_id})
    assert m["ok"], m
    other = await clients(server, await server.staff("sup2", "supervisor"))
    ack = await other.call("monitor:whisper", {"session_id": session_id, "on": True})
    assert ack["error"]["code"] == "not_monitoring"
    ack = await other.call("monitor:stop", {"session_id": session_id})
    assert ack["error"]["code"] == "not_monitoring"
    assert sup.sio.connected and taxpayer.sio.connected
    assert_taxpayer_clean(taxpayer, m["monitor_id"])


async def test_limit_per_session(server, clients):
    set_monitor_settings(server, monitor_max_per_session=1)
    await leg_client(server, clients)
    _, _, t_start, _ = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    one = await clients(server, await server.staff("sup1", "supervisor"))
    two = await clients(server, await server.staff("sup2", "supervisor"))
    assert (await one.call("monitor:start", {"session_id": session_id}))["ok"]
    ack = await two.call("monitor:start", {"session_id": session_id})
    assert ack["error"]["code"] == "monitor_full"


@pytest.mark.parametrize("notice", [True, False])
async def test_monitoring_switched_off(server, clients, notice):
    """`VTAX_MONITOR_ALLOWED=false`: refused with `monitor_disabled`, and no notice either;
    with monitoring allowed but `VTAX_MONITOR_NOTICE=false`, no notice."""
    # notice=True: monitoring allowed, only the notice off
    set_monitor_settings(server, monitor_allowed=notice, monitor_notice=False)
    await leg_client(server, clients)
    taxpayer, _, t_start, _ = await monitored_call(server, clients)
    sup = await clients(server, await server.staff("sup1", "supervisor"))
    ack = await sup.call("monitor:start", {"session_id": t_start["session_id"]})
    if notice:
        assert ack["ok"], ack
    else:
        assert ack["ok"] is False and ack["error"]["code"] == "monitor_disabled", ack
    await asyncio.sleep(0.2)
    assert "session:notice" not in taxpayer.received
