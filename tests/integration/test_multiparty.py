"""Three or more people in one live call, through real Socket.IO clients on SQLite and
PostgreSQL, with the live store and the queue in memory and on the real Redis: invite by skill
and by name, accept, decline, expiry, warm transfer, barge and take-over, drops and resume, and
the refusals. Every event the taxpayer's connection receives is checked to carry nothing of
the staff's side (user ids, usernames, invitations, colleagues)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.conftest import poll_until
from tests.integration.test_loop import start_session

REDIS_URL = "redis://127.0.0.1:6379/0"
# What a taxpayer's page may hear during a call of several people.
TAXPAYER_EVENTS = {
    "queue:update",
    "session:start",
    "rtc:signal",
    "session:peer",
    "session:participant",
    "session:roster",
    "session:end",
    "session:recording",
    "session:loop",
    # the notice every call's taxpayer gets that calls may be monitored (VTAX_MONITOR_NOTICE),
    # whether or not anyone monitors: it reveals no monitor
    "session:notice",
}


@pytest.fixture(params=["memory", "redis"])
async def settings_overrides(request: pytest.FixtureRequest) -> Any:
    """The live store, the queue and the Socket.IO fan-out in memory, or on the real Redis."""
    extra = {"resume_grace_s": 3.0, "invite_timeout_s": 30.0}
    if request.param == "memory":
        yield extra
        return
    prefix = f"vtaxtest-mp-{uuid.uuid4().hex[:8]}:"
    yield {**extra, "redis_url": REDIS_URL, "redis_prefix": prefix}
    redis = Redis.from_url(REDIS_URL)
    async for key in redis.scan_iter(match=prefix + "*"):
        await redis.delete(key)
    await redis.aclose()


async def user_id(server, username: str) -> str:
    for role in ("agent", "supervisor"):
        for s in await server.ctx.accounts.staff_list(role):
            if s.username == username:
                return s.id
    raise AssertionError(username)


async def detail(server, session_id: str) -> dict[str, Any]:
    token = await server.staff(f"sup-{uuid.uuid4().hex[:6]}", "supervisor")
    async with server.http.get(
        f"{server.url}/api/review/sessions/{session_id}",
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def assert_taxpayer_saw_nothing_of_staff(taxpayer, *secrets: str) -> None:
    """Every event the taxpayer received is one a taxpayer may hear, and none carries a staff
    user id, a username or anything of invitations and colleagues."""
    assert set(taxpayer.received) <= TAXPAYER_EVENTS, set(taxpayer.received) - TAXPAYER_EVENTS
    for notice in taxpayer.received.get("session:notice", []):
        assert set(notice) == {"session_id", "notice"} and notice["notice"] == "may_be_monitored"
    dumped = json.dumps({k: v for k, v in taxpayer.received.items() if k != "session:notice"})
    for secret in (*secrets, "invite_id", "inviter", "colleagues", "user_id", "monitor", "whisper"):
        assert secret not in dumped, (secret, dumped[max(dumped.find(secret) - 300, 0) :][:600])


def later(client, event: str, match=lambda _: True):
    """Wait for an `event` that arrives from now on (not one received before)."""
    seen = len(client.received[event])
    return lambda timeout=5.0: poll_until(
        lambda: next((m for m in client.received[event][seen:] if match(m)), None), timeout
    )


async def colleague(server, clients, username, languages, skills=None, available=True):
    c = await clients(
        server, await server.staff(username, languages=languages, skills=skills or {"invoices": 2})
    )
    if available:
        assert (await c.call("agent:status", {"status": "available"}))["ok"]
    return c


async def invite_and_accept(agent, invitee, sid, **how):
    invited = await agent.call("session:invite", {"session_id": sid, **how})
    assert invited["ok"], invited
    offer = await invitee.wait_for("invite:new", lambda m: m["invite_id"] == invited["invite_id"])
    joined = await invitee.call("invite:accept", {"invite_id": offer["invite_id"]})
    assert joined["ok"], joined
    return invited, offer, joined


async def test_an_interpreter_joins_by_language_and_takes_the_session_over(server, clients):
    interpreter = await colleague(server, clients, "lingua", ["yue", "zh-CN"])
    agent, taxpayer, a_start, t_start = await start_session(server, clients)
    sid, agent_pid, taxpayer_pid = (
        a_start["session_id"],
        a_start["participant_id"],
        t_start["participant_id"],
    )
    interp_id, agent_id = await user_id(server, "lingua"), await user_id(server, "agent1")

    found = await agent.call("session:colleagues", {"session_id": sid, "language": "yue"})
    assert found["ok"], found
    first = found["colleagues"][0]
    assert (first["user_id"], first["eligible"], first["status"]) == (
        interp_id,
        True,
        "available",
    )

    invited, offer, joined = await invite_and_accept(agent, interpreter, sid, language="yue")
    assert invited["invitee"] == {"user_id": interp_id, "display_name": "Lingua"}
    assert (offer["purpose"], offer["label"], offer["inviter"]) == (
        "interpreter",
        "interpreter: yue",
        "Agent1",
    )
    assert offer["question"] and offer["category"] == "invoices"
    interp_pid = joined["participant_id"]
    assert joined["owner"] == agent_pid and joined["role"] == "agent"
    assert [p["part"] for p in joined["participants"]] == ["taxpayer", "agent", "invitee"]
    assert isinstance(joined["ice_servers"], list) and joined["ticket"]["ticket_id"]
    await agent.wait_for("invite:update", lambda m: m["state"] == "accepted")
    joined_note = await agent.wait_for("session:participant", lambda m: m["role"] == "agent")
    assert (joined_note["participant_id"], joined_note["state"]) == (interp_pid, "joined")
    roster = await taxpayer.wait_for("session:roster", lambda m: len(m["participants"]) == 3)
    names = {p["participant_id"]: (p["part"], p["display_name"]) for p in roster["participants"]}
    assert names == {
        taxpayer_pid: ("taxpayer", ""),
        agent_pid: ("agent", "Agent1"),
        interp_pid: ("invitee", "Lingua"),
    }
    # The interpreter is busy in the call (the queue engine's state).
    await interpreter.wait_for("agent:status", lambda m: m["status"] == "busy")

    # With three people a signal must say to whom; addressed, it reaches that one only.
    ack = await taxpayer.call("rtc:signal", {"session_id": sid, "type": "offer", "data": {}})
    assert ack["error"]["code"] == "to_required"
    ack = await taxpayer.call(
        "rtc:signal", {"session_id": sid, "to": interp_pid, "type": "offer", "data": {"n": 1}}
    )
    assert ack["ok"], ack
    got = await interpreter.wait_for("rtc:signal")
    assert (got["from"], got["data"]) == (taxpayer_pid, {"n": 1})
    assert not agent.received["rtc:signal"]

    # Warm transfer: the agent hands over and leaves, the call goes on without a queue wait.
    handed = await agent.call("session:handover", {"session_id": sid, "to": interp_pid})
    assert handed == {"ok": True, "session_id": sid, "owner": interp_pid}
    roster = await taxpayer.wait_for("session:roster", lambda m: m["owner"] == interp_pid)
    assert [(p["participant_id"], p["part"]) for p in roster["participants"]] == [
        (taxpayer_pid, "taxpayer"),
        (interp_pid, "agent"),
    ]
    assert not taxpayer.received["session:end"] and not taxpayer.received["queue:update"]
    await agent.wait_for("agent:status", lambda m: m["status"] == "available")
    ack = await agent.call("rtc:signal", {"session_id": sid, "to": taxpayer_pid, "type": "offer"})
    assert ack["error"]["code"] == "not_in_session"
    # Two people again: an old page's signal without `to` reaches the one other person.
    assert (await taxpayer.call("rtc:signal", {"session_id": sid, "type": "answer"}))["ok"]
    await poll_until(lambda: len(interpreter.received["rtc:signal"]) == 2)

    assert (await interpreter.call("session:end", {"session_id": sid}))["ok"]
    await taxpayer.wait_for("session:end")
    # The review loop credits the owner at the end; the first agent may not summarise.
    summary = {"session_id": sid, "asked": "invoice", "handled": "explained", "result": "resolved"}
    assert (await agent.call("session:summary", summary))["error"]["code"] == "not_in_session"
    assert (await interpreter.call("session:summary", summary))["ok"]

    record = await detail(server, sid)
    assert record["session"]["agent"]["id"] == interp_id
    people = {p["participant_id"]: p for p in record["participants"]}
    assert [people[x]["role"] for x in (taxpayer_pid, agent_pid, interp_pid)] == [
        "taxpayer",
        "agent",
        "invitee",
    ]
    assert people[interp_pid]["user_id"] == interp_id
    assert people[interp_pid]["part"] == "interpreter: yue"
    assert people[agent_pid]["handled_to"] == people[interp_pid]["handled_from"]
    assert people[agent_pid]["left_at"] and people[interp_pid]["handled_to"]
    assert all(p["left_at"] for p in record["participants"])
    kinds = [e["kind"] for e in record["audit"]]
    assert "participant_joined" in kinds and "handed_over" in kinds
    assert_taxpayer_saw_nothing_of_staff(taxpayer, interp_id, agent_id, "lingua", "agent1")


async def test_invite_by_name_decline_and_expiry(server, clients, settings_overrides):
    expert = await colleague(server, clients, "expert", ["zh-CN"], {"cross_border": 5})
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    expert_id = await user_id(server, "expert")

    found = await agent.call("session:colleagues", {"session_id": sid, "category": "cross_border"})
    assert [(c["user_id"], c["eligible"]) for c in found["colleagues"]] == [(expert_id, True)]
    invited = await agent.call(
        "session:invite", {"session_id": sid, "user_id": expert_id, "note": "refund rules"}
    )
    assert invited["ok"], invited
    offer = await expert.wait_for("invite:new")
    assert (offer["purpose"], offer["note"]) == ("colleague", "refund rules")
    assert (await expert.call("invite:decline", {"invite_id": offer["invite_id"]}))["ok"]
    update = await agent.wait_for("invite:update")
    assert (update["state"], update["invitee"]) == ("declined", "Expert")
    again = await expert.call("invite:accept", {"invite_id": offer["invite_id"]})
    assert again["error"]["code"] == "invite_expired"

    # By skill: the expert of the category.
    invited = await agent.call("session:invite", {"session_id": sid, "category": "cross_border"})
    assert invited["invitee"]["user_id"] == expert_id, invited
    offer = await expert.wait_for("invite:new", lambda m: m["invite_id"] == invited["invite_id"])
    assert offer["purpose"] == "expert" and offer["label"] == "expert: cross_border"
    # Unanswered, it expires: both sides hear it once.
    await server.ctx.services.multiparty.expire(9e12)
    for side in (agent, expert):
        await side.wait_for(
            "invite:update",
            lambda m: m["state"] == "expired" and m["invite_id"] == offer["invite_id"],
        )
    ack = await expert.call("invite:accept", {"invite_id": offer["invite_id"]})
    assert ack["error"]["code"] == "invite_expired"
    assert_taxpayer_saw_nothing_of_staff(taxpayer, expert_id, "expert")


async def test_who_may_invite_and_whom(server, clients):
    away = await colleague(server, clients, "away1", ["zh-CN"])
    assert (await away.call("agent:status", {"status": "away"}))["ok"]
    await server.staff("offline1")  # never signed in on a socket
    helper = await colleague(server, clients, "helper", ["en"])
    agent, taxpayer, a_start, t_start = await start_session(server, clients)
    sid = a_start["session_id"]

    for event, payload in (
        ("session:invite", {"session_id": sid, "language": "en"}),
        ("session:colleagues", {"session_id": sid}),
        ("session:barge", {"session_id": sid}),
        ("session:handover", {"session_id": sid, "to": a_start["participant_id"]}),
        ("invite:accept", {"invite_id": "inv-x"}),
    ):
        ack = await taxpayer.call(event, payload)
        assert ack["error"]["code"] == "forbidden", (event, ack)
    # Only supervisors barge.
    assert (await agent.call("session:barge", {"session_id": sid}))["error"]["code"] == "forbidden"
    # An agent of no part in the session cannot invite into it.
    stranger = await colleague(server, clients, "stranger", ["zh-CN"])
    ack = await stranger.call("session:invite", {"session_id": sid, "language": "en"})
    assert ack["error"]["code"] == "not_in_session"
    # Busy (away), offline, nobody with the skill.
    ack = await agent.call(
        "session:invite", {"session_id": sid, "user_id": await user_id(server, "away1")}
    )
    assert ack["error"]["code"] == "invitee_busy"
    ack = await agent.call(
        "session:invite", {"session_id": sid, "user_id": await user_id(server, "offline1")}
    )
    assert ack["error"]["code"] == "invitee_offline"
    ack = await agent.call("session:invite", {"session_id": sid, "language": "pt"})
    assert ack["error"]["code"] == "no_colleague"
    ack = await agent.call("session:invite", {"session_id": sid})
    assert ack["error"]["code"] == "invalid_payload"
    # Someone else's invitation cannot be taken.
    invited = await agent.call("session:invite", {"session_id": sid, "language": "en"})
    assert invited["ok"], invited
    ack = await stranger.call("invite:accept", {"invite_id": invited["invite_id"]})
    assert ack["error"]["code"] == "forbidden"
    offer = await helper.wait_for("invite:new")
    joined = await helper.call("invite:accept", {"invite_id": offer["invite_id"]})
    assert joined["ok"], joined
    # The invitee does not own the session: no inviting, no handing over.
    ack = await helper.call("session:invite", {"session_id": sid, "language": "zh-CN"})
    assert ack["error"]["code"] == "forbidden"
    ack = await helper.call(
        "session:handover", {"session_id": sid, "to": a_start["participant_id"]}
    )
    assert ack["error"]["code"] == "forbidden"
    # The owner hands over to staff in the call only, and leaves only by handing over.
    for to in (t_start["participant_id"], "p-nobody", a_start["participant_id"]):
        ack = await agent.call("session:handover", {"session_id": sid, "to": to})
        assert ack["error"]["code"] == "invalid_state", (to, ack)
    ack = await agent.call("session:leave", {"session_id": sid})
    assert ack["error"]["code"] == "invalid_state"
    # The invitee leaves (or hangs up): the call goes on for the other two.
    two_again = later(taxpayer, "session:roster", lambda m: len(m["participants"]) == 2)
    assert (await helper.call("session:end", {"session_id": sid}))["ok"]
    roster = await two_again()
    assert roster["owner"] == a_start["participant_id"]
    assert not taxpayer.received["session:end"]
    await helper.wait_for("agent:status", lambda m: m["status"] == "available")
    assert (await taxpayer.call("rtc:signal", {"session_id": sid, "type": "offer"}))["ok"]
    assert_taxpayer_saw_nothing_of_staff(taxpayer, "helper", "away1", "stranger")


async def test_a_supervisor_barges_and_takes_over(server, clients):
    agent, taxpayer, a_start, t_start = await start_session(server, clients)
    sid = a_start["session_id"]
    boss = await clients(server, await server.staff("boss", "supervisor"))
    boss_id = await user_id(server, "boss")
    joined = await boss.call("session:barge", {"session_id": sid})
    assert joined["ok"], joined
    boss_pid = joined["participant_id"]
    assert joined["role"] == "supervisor"
    assert (await boss.call("session:barge", {"session_id": sid}))["error"]["code"] == (
        "invalid_state"
    )
    for side in (agent, taxpayer):
        roster = await side.wait_for("session:roster", lambda m: len(m["participants"]) == 3)
        boss_entry = next(p for p in roster["participants"] if p["participant_id"] == boss_pid)
        assert (boss_entry["part"], boss_entry["display_name"]) == ("supervisor", "Boss")
    # All three talk: the supervisor signals both.
    for to in (a_start["participant_id"], t_start["participant_id"]):
        ack = await boss.call("rtc:signal", {"session_id": sid, "to": to, "type": "offer"})
        assert ack["ok"], ack
    await taxpayer.wait_for("rtc:signal", lambda m: m["from"] == boss_pid)
    await agent.wait_for("rtc:signal", lambda m: m["from"] == boss_pid)

    # Take over: the agent leaves, the supervisor is the session's agent now.
    handed = await agent.call("session:handover", {"session_id": sid, "to": boss_pid})
    assert handed["ok"] and handed["owner"] == boss_pid
    roster = await taxpayer.wait_for("session:roster", lambda m: m["owner"] == boss_pid)
    assert [p["part"] for p in roster["participants"]] == ["taxpayer", "agent"]
    assert (await boss.call("session:end", {"session_id": sid}))["ok"]
    await taxpayer.wait_for("session:end")
    summary = {"session_id": sid, "asked": "dispute", "handled": "settled", "result": "resolved"}
    assert (await boss.call("session:summary", summary))["ok"]

    record = await detail(server, sid)
    assert record["session"]["agent"]["id"] == boss_id
    roles = [(p["role"], bool(p["handled_from"])) for p in record["participants"]]
    assert roles == [("taxpayer", False), ("agent", True), ("supervisor", True)]
    assert_taxpayer_saw_nothing_of_staff(taxpayer, boss_id, "agent1")


async def test_a_third_party_who_drops_resumes_or_is_dropped(server, clients):
    helper = await colleague(server, clients, "helper", ["zh-CN"])
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    _, _, joined = await invite_and_accept(
        agent, helper, sid, user_id=await user_id(server, "helper")
    )
    hpid = joined["participant_id"]
    await taxpayer.call("rtc:signal", {"session_id": sid, "to": hpid, "type": "offer"})
    await helper.wait_for("rtc:signal")

    helper_token = helper.token
    await helper.close()
    for side in (agent, taxpayer):
        await side.wait_for(
            "session:peer", lambda m: m["participant_id"] == hpid and m["state"] == "reconnecting"
        )
    # Missed while away, replayed on resume (any node, any connection).
    await taxpayer.call("rtc:signal", {"session_id": sid, "to": hpid, "type": "candidate"})
    back = await clients(server, helper_token)
    resumed = await back.call("session:resume", {"session_id": sid, "last_seq": 1})
    assert resumed["ok"], resumed
    assert resumed["participant_id"] == hpid
    assert [m["type"] for m in resumed["replay"]] == ["candidate"]
    await taxpayer.wait_for(
        "session:peer", lambda m: m["participant_id"] == hpid and m["state"] == "back"
    )
    await back.wait_for("session:roster", lambda m: len(m["participants"]) == 3)

    # Gone for longer than the grace: the call goes on for the other two.
    two_again = later(taxpayer, "session:roster", lambda m: len(m["participants"]) == 2)
    await back.close()
    roster = await two_again(timeout=10)
    assert roster["owner"] == a_start["participant_id"]
    assert not taxpayer.received["session:end"]
    record = await detail(server, sid)
    gone = next(p for p in record["participants"] if p["participant_id"] == hpid)
    assert gone["left_at"]
    assert (await agent.call("session:end", {"session_id": sid}))["ok"]
    await taxpayer.wait_for("session:end")
    assert_taxpayer_saw_nothing_of_staff(taxpayer, "helper")


async def test_the_end_releases_everyone_in_the_call(server, clients):
    helper = await colleague(server, clients, "helper", ["zh-CN"])
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    await invite_and_accept(agent, helper, sid, user_id=await user_id(server, "helper"))
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    for side in (agent, helper):
        await side.wait_for("session:end")
        await side.wait_for("agent:status", lambda m: m["status"] == "available")
    record = await detail(server, sid)
    assert len(record["participants"]) == 3 and all(p["left_at"] for p in record["participants"])


async def test_an_open_invitation_is_withdrawn_when_the_call_ends(server, clients):
    expert = await colleague(server, clients, "expert", ["zh-CN"], {"cross_border": 5})
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    invited = await agent.call(
        "session:invite", {"session_id": sid, "user_id": await user_id(server, "expert")}
    )
    assert invited["ok"], invited
    offer = await expert.wait_for("invite:new")
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    # Both sides hear at once that it was withdrawn (not 30 s later that it expired).
    for side in (agent, expert):
        update = await side.wait_for(
            "invite:update", lambda m: m["invite_id"] == offer["invite_id"], timeout=5
        )
        assert (update["state"], update["reason"]) == ("cancelled", "session_ended"), update
    ack = await expert.call("invite:accept", {"invite_id": offer["invite_id"]})
    assert ack["error"]["code"] == "invite_expired"
    # Nothing is left to expire later: the expirer says nothing more.
    await server.ctx.services.multiparty.expire(9e12)
    await asyncio.sleep(0.3)
    assert not [m for m in expert.received["invite:update"] if m["state"] == "expired"]
