"""Screen share, the pointer and call quality through real Socket.IO clients and REST, on
SQLite and PostgreSQL: relayed to the other side only, validated, rate-limited, refused to
anyone outside the session; quality samples kept and summarised by the server, read by the
supervisor in the session detail and the KPI."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import RESIDENT_ID, poll_until
from tests.integration.test_loop import JOIN, start_session
from vtax.review.call_quality import estimated_mos

# Each test needs more samples than the default bucket (3 at once) unless it tests the bucket.
ROOMY = {"quality_rate": 1000.0, "quality_burst": 1000}


async def get(server, path, token):
    async with server.http.get(
        server.url + path, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status, await r.json()


def sample(**figures):
    base = {"rtt_ms": 40.0, "jitter_ms": 5.0, "loss_pct": 0.0, "out_kbps": 600.0, "fps": 15.0}
    return {**base, **figures}


async def test_share_state_and_pointer_reach_the_other_side_only(server, clients):
    agent, taxpayer, a_start, t_start = await start_session(server, clients)
    sid = a_start["session_id"]

    ack = await agent.call(
        "screen:share", {"session_id": sid, "sharing": True, "surface": "window"}
    )
    assert ack == {"ok": True}
    state = await taxpayer.wait_for("screen:state")
    assert state == {
        "session_id": sid,
        "participant_id": a_start["participant_id"],
        "role": "agent",
        "sharing": True,
        "surface": "window",
    }
    # The taxpayer points at the agent's screen; the agent sees where, nobody else is told.
    ack = await taxpayer.call("screen:pointer", {"session_id": sid, "x": 0.25, "y": 0.75})
    assert ack == {"ok": True}
    pointed = await agent.wait_for("screen:pointer")
    assert pointed == {
        "session_id": sid,
        "participant_id": t_start["participant_id"],
        "x": 0.25,
        "y": 0.75,
        "kind": "point",
    }
    assert (await taxpayer.call("screen:pointer", {"session_id": sid, "kind": "clear"}))["ok"]
    assert (await agent.wait_for("screen:pointer", lambda p: p["kind"] == "clear"))["x"] == 0.0
    # Either side shares: the taxpayer too, and stops.
    for sharing in (True, False):
        assert (await taxpayer.call("screen:share", {"session_id": sid, "sharing": sharing}))["ok"]
    await agent.wait_for("screen:state", lambda s: s["role"] == "taxpayer" and not s["sharing"])
    assert [s["sharing"] for s in agent.received["screen:state"]] == [True, False]
    assert len(taxpayer.received["screen:pointer"]) == 0  # its own pointer is not echoed
    assert len(taxpayer.received["screen:state"]) == 1


async def test_screen_events_are_validated_and_refused_outside_the_session(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    bad = [
        {"session_id": sid, "x": 1.5, "y": 0.5},  # off the picture
        {"session_id": sid, "x": -0.1, "y": 0.5},
        {"session_id": sid, "x": "0.5", "y": 0.5},  # not a number
        {"session_id": sid, "x": 0.5, "y": 0.5, "kind": "draw"},
        {"session_id": sid, "x": 0.5, "y": 0.5, "colour": "red"},  # unknown field
    ]
    for payload in bad:
        ack = await taxpayer.call("screen:pointer", payload)
        assert ack["error"]["code"] == "invalid_payload", (payload, ack)
    for payload in ({"session_id": sid, "sharing": "yes"}, {"session_id": sid}):
        assert (await agent.call("screen:share", payload))["error"]["code"] == "invalid_payload"
    # The connection survived every refusal.
    assert (await taxpayer.call("screen:pointer", {"session_id": sid, "x": 0.5, "y": 0.5}))["ok"]

    # A taxpayer of another session, another agent, a supervisor: refused, nothing relayed.
    stranger = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    other_agent = await clients(server, await server.staff("agent2"))
    supervisor = await clients(server, await server.staff("boss", "supervisor"))
    for who in (stranger, other_agent):
        for event, payload in (
            ("screen:share", {"session_id": sid, "sharing": True}),
            ("screen:pointer", {"session_id": sid, "x": 0.1, "y": 0.1}),
            ("call:quality", {"session_id": sid, "sample": sample()}),
        ):
            assert (await who.call(event, payload))["error"]["code"] == "not_in_session"
    for event, payload in (
        ("screen:share", {"session_id": sid, "sharing": True}),
        ("call:quality", {"session_id": sid, "sample": sample()}),
    ):
        assert (await supervisor.call(event, payload))["error"]["code"] == "forbidden"
    assert len(agent.received["screen:pointer"]) == 1
    assert agent.received["screen:state"] == [] and taxpayer.received["screen:state"] == []


@pytest.mark.parametrize("settings_overrides", [{"pointer_rate": 0.01, "pointer_burst": 3}])
async def test_the_pointer_is_rate_limited(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    answers = [
        await taxpayer.call("screen:pointer", {"session_id": sid, "x": 0.5, "y": 0.5})
        for _ in range(5)
    ]
    assert [a["ok"] for a in answers] == [True, True, True, False, False]
    assert answers[3]["error"]["code"] == "rate_limited"
    await poll_until(lambda: len(agent.received["screen:pointer"]) == 3)


@pytest.mark.parametrize("settings_overrides", [ROOMY])
async def test_quality_samples_are_summarised_by_the_server(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    clock = [datetime(2030, 1, 2, 3, 0, 0, tzinfo=UTC).timestamp()]
    server.ctx.services.quality.clock = lambda: clock[0]

    # Minute 0: a good call from both sides; minute 1: lossy on the taxpayer's side;
    # minute 2: good again.
    plan = [
        (0, agent, sample(rtt_ms=40.0)),
        (10, taxpayer, sample(rtt_ms=60.0, jitter_ms=10.0)),
        (65, taxpayer, sample(rtt_ms=300.0, jitter_ms=40.0, loss_pct=8.0, fps=4.0)),
        (70, agent, sample(rtt_ms=280.0, jitter_ms=30.0, loss_pct=6.0)),
        (130, agent, sample(rtt_ms=50.0, out_kbps=900.0, screen_out_kbps=350.0)),
    ]
    answers = []
    for offset, who, figures in plan:
        clock[0] = datetime(2030, 1, 2, 3, 0, 0, tzinfo=UTC).timestamp() + offset
        answers.append(await who.call("call:quality", {"session_id": sid, "sample": figures}))
    assert all(a["ok"] for a in answers), answers
    expected = [estimated_mos(f["rtt_ms"], f["jitter_ms"], f["loss_pct"]) for _, _, f in plan]
    assert [a["mos"] for a in answers] == expected
    assert answers[0]["level"] == "good" and answers[2]["level"] == "poor"

    supervisor = await server.staff("boss", "supervisor")
    status, detail = await get(server, f"/api/review/sessions/{sid}", supervisor)
    assert status == 200, detail
    q = detail["call_quality"]
    assert q["samples"] == 5 and q["by_role"] == {"agent": 3, "taxpayer": 2}
    assert q["mos_median"] == sorted(expected)[2]
    assert q["mos_min"] == min(expected)
    assert q["worst_minute"] == {
        "minute": 1,
        "at": "2030-01-02T03:01:00+00:00",
        "mos": round((expected[2] + expected[3]) / 2, 2),
        "samples": 2,
    }
    assert q["rtt_ms_median"] == 60.0 and q["loss_pct_median"] == 0.0
    assert q["out_kbps_median"] == 600.0 and q["fps_median"] == 15.0
    assert q["poor_share"] == 0.4 and q["level"] == "good"
    assert q["first_at"] == "2030-01-02T03:00:00+00:00"
    assert q["last_at"] == "2030-01-02T03:02:10+00:00"

    # The detail is the supervisor's; an agent or the taxpayer is refused.
    assert (await get(server, f"/api/review/sessions/{sid}", agent.token))[0] == 403
    assert (await get(server, f"/api/review/sessions/{sid}", taxpayer.token))[0] == 403


@pytest.mark.parametrize("settings_overrides", [ROOMY])
async def test_quality_samples_are_validated_and_nothing_bad_is_stored(server, clients):
    _agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    bad = [
        sample(rtt_ms=-1.0),
        sample(loss_pct=101.0),
        sample(fps=1000.0),
        {**sample(), "mos": 4.5},  # the client does not get to say its MOS
        {**sample(), "width": True},
        {**sample(), "width": 1.5},
        {**sample(), "height": 100000},
        {**sample(), "rtt_ms": "40"},
    ]
    for figures in bad:
        ack = await taxpayer.call("call:quality", {"session_id": sid, "sample": figures})
        assert ack["error"]["code"] == "invalid_payload", (figures, ack)
    assert (await taxpayer.call("call:quality", {"session_id": sid}))["error"]["code"] == (
        "invalid_payload"
    )
    # An empty sample is kept (nothing measured yet): no MOS.
    ack = await taxpayer.call("call:quality", {"session_id": sid, "sample": {}})
    assert ack == {"ok": True, "mos": None, "level": None}
    ack = await taxpayer.call(
        "call:quality", {"session_id": sid, "sample": {**sample(), "width": 640, "height": 360}}
    )
    assert ack["ok"] and ack["level"] == "good"
    summary = await server.ctx.services.quality.summary(sid)
    assert summary is not None and summary.samples == 2 and summary.by_role == {"taxpayer": 2}
    assert summary.mos_median == ack["mos"]


async def test_quality_samples_draw_from_a_token_bucket(server, clients):
    agent, _taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    answers = [
        await agent.call("call:quality", {"session_id": sid, "sample": sample()}) for _ in range(5)
    ]
    # the default bucket: 3 at once, then one per 5 s
    assert [a["ok"] for a in answers] == [True, True, True, False, False]
    assert answers[3]["error"]["code"] == "rate_limited"
    summary = await server.ctx.services.quality.summary(sid)
    assert summary is not None and summary.samples == 3


@pytest.mark.parametrize("settings_overrides", [{**ROOMY, "quality_max_samples": 2}])
async def test_a_session_keeps_a_bounded_number_of_samples(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    acks = [
        await who.call("call:quality", {"session_id": sid, "sample": sample()})
        for who in (agent, taxpayer, agent)
    ]
    assert [a["ok"] for a in acks] == [True, True, False]
    assert acks[2]["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("settings_overrides", [ROOMY])
async def test_the_quality_kpi_sits_beside_the_av_quality_rating(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    for rtt in (40.0, 50.0, 60.0):
        assert (
            await agent.call("call:quality", {"session_id": sid, "sample": sample(rtt_ms=rtt)})
        )["ok"]
    assert (await agent.call("session:end", {"session_id": sid}))["ok"]
    rated = await taxpayer.call(
        "session:rate", {"session_id": sid, "score": 4, "dimensions": {"av_quality": 3}}
    )
    assert rated["ok"], rated
    await agent.wait_for("agent:status", lambda s: s["status"] == "available")

    # A second session with no samples (a taxpayer on an old page) counts as unmeasured.
    joined = await taxpayer.call("queue:join", {**JOIN, "question": "again"})
    assert joined["ok"], joined
    offer = await agent.wait_for("offer:new", lambda o: o["ticket"]["question"] == "again")
    assert (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]

    supervisor = await server.staff("boss", "supervisor")
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the service zone's day
    status, kpi = await get(
        server, f"/api/stats/kpi/call-quality?from={day}&to={day}&group_by=agent", supervisor
    )
    assert status == 200, kpi
    mos = estimated_mos(50.0, 5.0, 0.0)
    figures = {
        "sessions": 2,
        "measured": 1,
        "mos_mean": mos,
        "poor_sessions": 0,
        "poor_rate": 0.0,
        "av_ratings": 1,
        "av_quality_mean": 3.0,
    }
    assert kpi["total"] == figures
    assert kpi["rows"] == [{"key": await agent_id(server), **figures}]
    assert kpi["from"] == day and kpi["group_by"] == "agent" and kpi["timezone"] == "Asia/Shanghai"
    assert (await get(server, "/api/stats/kpi/call-quality", agent.token))[0] == 403
    status, err = await get(
        server, "/api/stats/kpi/call-quality?from=2030-01-02&to=2030-01-01", supervisor
    )
    assert status == 400 and err["error"]["code"] == "invalid_payload"


async def agent_id(server, username="agent1"):
    staff = await server.ctx.accounts.staff_list("agent")
    return next(a.id for a in staff if a.username == username)
