"""In-call chat through real Socket.IO clients and REST, on SQLite and PostgreSQL: order and
acks, idempotent re-sends, replay after a resume or a reload, the record (supervisor detail,
CSV count, REST), and the refusals (outsiders, too long, too fast, empty, wrong types)."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pytest

from tests.conftest import RESIDENT_ID, USCC, poll_until
from tests.identity.numbers import uscc_n
from tests.integration.test_loop import JOIN


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # the rate limit has its own test below
    return {"chat_rate": 1000.0, "chat_burst": 1000, "resume_grace_s": 5.0}


async def pair(server, clients, agent_name="agent1", taxpayer_id=USCC, category="invoices"):
    """An agent and a taxpayer in a live session: (agent, taxpayer, agent's start,
    taxpayer's start)."""
    agent = await clients(server, await server.staff(agent_name))
    taxpayer = await clients(server, await server.taxpayer(taxpayer_id))
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    assert (await taxpayer.call("queue:join", {**JOIN, "category": category}))["ok"]
    offer = await agent.wait_for("offer:new")
    assert (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
    return (
        agent,
        taxpayer,
        await agent.wait_for("session:start"),
        await taxpayer.wait_for("session:start"),
    )


def send(sid: str, client_id: str, text: Any) -> dict[str, Any]:
    return {"session_id": sid, "client_id": client_id, "text": text}


async def supervisor_get(server, path: str, token: str) -> tuple[int, Any]:
    async with server.http.get(
        server.url + path, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status, (
            await r.json() if r.content_type == "application/json" else await r.text()
        )


async def test_messages_both_ways_in_order_with_acks_and_kept_with_the_record(server, clients):
    agent, taxpayer, a_start, t_start = await pair(server, clients)
    sid = a_start["session_id"]
    ack = await taxpayer.call("chat:send", send(sid, "t-1", "  您好 我想开红字发票  "))
    assert ack["ok"] and ack["duplicate"] is False
    message = ack["message"]
    assert message["seq"] == 1 and message["text"] == "您好 我想开红字发票"
    assert message["from"] == t_start["participant_id"] and message["role"] == "taxpayer"
    pushed = await agent.wait_for("chat:message")
    assert pushed == message  # the push is the stored message, as acknowledged
    ack = await agent.call("chat:send", send(sid, "a-1", "Sure, let me look.\nOne moment."))
    assert ack["message"]["seq"] == 2 and ack["message"]["name"] == "Agent1"
    assert (await taxpayer.wait_for("chat:message"))["text"] == "Sure, let me look.\nOne moment."
    # Ten in a row from each side, without waiting for acks: one order, every seq once.
    for n in range(10):
        await taxpayer.sio.emit("chat:send", send(sid, f"t-{n + 2}", f"t{n}"))
        await agent.sio.emit("chat:send", send(sid, f"a-{n + 2}", f"a{n}"))
    await poll_until(lambda: len(agent.received["chat:message"]) == 11)
    await poll_until(lambda: len(taxpayer.received["chat:message"]) == 11)
    # a sender's own messages keep the order it sent them in
    assert [m["text"] for m in agent.received["chat:message"][1:]] == [f"t{n}" for n in range(10)]
    assert [m["text"] for m in taxpayer.received["chat:message"][1:]] == [
        f"a{n}" for n in range(10)
    ]
    history = await taxpayer.call("chat:history", {"session_id": sid})
    assert history["ok"] and history["more"] is False
    assert [m["seq"] for m in history["messages"]] == list(range(1, 23))
    assert sorted(m["client_id"] for m in history["messages"]) == sorted(
        [f"t-{n}" for n in range(1, 12)] + [f"a-{n}" for n in range(1, 12)]
    )
    assert taxpayer.received["chat:message"] == [
        m for m in history["messages"] if m["role"] == "agent"
    ]
    # The sender never hears its own message back.
    assert all(m["role"] == "taxpayer" for m in agent.received["chat:message"])
    async with server.http.get(server.url + "/metrics") as r:
        assert "vtax_chat_messages_total 22.0" in await r.text()

    # The record: the supervisor's detail, the REST transcript and the CSV count.
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    supervisor = await server.staff("boss", "supervisor")
    status, detail = await supervisor_get(server, f"/api/review/sessions/{sid}", supervisor)
    assert status == 200 and detail["messages"] == history["messages"]
    status, page = await supervisor_get(
        server, f"/api/sessions/{sid}/messages?after_seq=20&limit=1", supervisor
    )
    assert status == 200 and page["more"] is True
    assert [m["seq"] for m in page["messages"]] == [21]
    status, text = await supervisor_get(server, "/api/review/export.csv", supervisor)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["id"], r["chat_messages"]) for r in rows] == [(sid, "22")]


async def test_concurrent_senders_get_distinct_seqs_from_the_database(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    acks = await asyncio.gather(
        *[taxpayer.call("chat:send", send(sid, f"t{n}", f"t{n}")) for n in range(15)],
        *[agent.call("chat:send", send(sid, f"a{n}", f"a{n}")) for n in range(15)],
    )
    assert all(a["ok"] for a in acks), acks
    assert sorted(a["message"]["seq"] for a in acks) == list(range(1, 31))


async def test_a_resend_after_a_reconnect_is_the_same_message(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    first = await taxpayer.call("chat:send", send(sid, "m-1", "my invoice number is 044001"))
    await agent.wait_for("chat:message")
    # The page lost its connection before the ack arrived: it resumes and sends again.
    await taxpayer.close()
    back = await clients(server, taxpayer.token)
    assert (await back.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
    again = await back.call("chat:send", send(sid, "m-1", "my invoice number is 044001"))
    assert again["ok"] and again["duplicate"] is True
    assert again["message"] == first["message"]
    # pushed again (the first push may be what was lost); the same seq: one message on a page
    await poll_until(lambda: len(agent.received["chat:message"]) == 2)
    assert agent.received["chat:message"][0] == agent.received["chat:message"][1]
    history = await agent.call("chat:history", {"session_id": sid, "after_seq": 0})
    assert [m["client_id"] for m in history["messages"]] == ["m-1"]
    # The same id for another text is refused, and nothing changes.
    other = await back.call("chat:send", send(sid, "m-1", "something else"))
    assert other["error"]["code"] == "chat_id_reused"
    # Another participant may use the same client id: ids are the sender's own.
    theirs = await agent.call("chat:send", send(sid, "m-1", "thanks"))
    assert theirs["ok"] and theirs["duplicate"] is False and theirs["message"]["seq"] == 2


async def test_history_after_a_resume_and_after_a_reload(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    await agent.call("chat:send", send(sid, "a1", "first"))
    seen = await taxpayer.wait_for("chat:message")
    await taxpayer.close()
    await agent.wait_for("session:peer", lambda p: p["state"] == "reconnecting")
    for n in (2, 3, 4):
        ack = await agent.call("chat:send", send(sid, f"a{n}", f"missed {n}"))
        assert ack["ok"]  # stored while the taxpayer is away; no one to push to
    back = await clients(server, taxpayer.token)
    # Before the resume the new connection is nobody in the session.
    early = await back.call("chat:history", {"session_id": sid, "after_seq": 0})
    assert early["error"]["code"] == "not_in_session"
    assert (await back.call("session:resume", {"session_id": sid, "last_seq": 0}))["ok"]
    missed = await back.call("chat:history", {"session_id": sid, "after_seq": seen["seq"]})
    assert [m["text"] for m in missed["messages"]] == ["missed 2", "missed 3", "missed 4"]
    # A reloaded page has nothing: it asks from 0, in pages.
    first = await back.call("chat:history", {"session_id": sid, "after_seq": 0, "max_messages": 3})
    assert [m["seq"] for m in first["messages"]] == [1, 2, 3] and first["more"] is True
    rest = await back.call("chat:history", {"session_id": sid, "after_seq": 3, "max_messages": 3})
    assert [m["seq"] for m in rest["messages"]] == [4] and rest["more"] is False
    # and it is a participant again: it sends and the agent hears it
    assert (await back.call("chat:send", send(sid, "t1", "back again")))["ok"]
    assert (await agent.wait_for("chat:message"))["text"] == "back again"


async def test_nobody_outside_the_session_reads_or_writes(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    assert (await agent.call("chat:send", send(sid, "a1", "private")))["ok"]
    # a taxpayer of another live session, and that session's agent
    agent2, taxpayer2, b_start, _ = await pair(
        server, clients, "agent2", uscc_n(7), category="invoices"
    )
    # the session's id is no key: not the other session's taxpayer, agent, a supervisor
    # who is not a participant, nor a taxpayer with no session at all
    supervisor_token = await server.staff("boss", "supervisor")
    supervisor = await clients(server, supervisor_token)
    nobody = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    for outsider in (taxpayer2, agent2, supervisor, nobody):
        for event, payload in (
            ("chat:send", send(sid, "x1", "let me in")),
            ("chat:history", {"session_id": sid, "after_seq": 0}),
        ):
            answer = await outsider.call(event, payload)
            assert answer["error"]["code"] == "not_in_session", (event, answer)
    await asyncio.sleep(0.2)
    for outsider in (taxpayer2, agent2, supervisor, nobody):
        assert outsider.received["chat:message"] == []
    history = await taxpayer.call("chat:history", {"session_id": sid})
    assert [m["text"] for m in history["messages"]] == ["private"]
    # Over REST: the supervisor reads any session; the other session's people get 404.
    status, _ = await supervisor_get(server, f"/api/sessions/{sid}/messages", supervisor_token)
    assert status == 200
    for token in (taxpayer2.token, agent2.token, nobody.token):
        status, body = await supervisor_get(server, f"/api/sessions/{sid}/messages", token)
        assert status == 404 and body["error"]["code"] == "not_found"
    # the session's own taxpayer and agent read their own transcript
    for token in (taxpayer.token, agent.token):
        status, body = await supervisor_get(server, f"/api/sessions/{sid}/messages", token)
        assert status == 200 and [m["text"] for m in body["messages"]] == ["private"]
    # b's session has no messages from the attempts
    b_history = await taxpayer2.call("chat:history", {"session_id": b_start["session_id"]})
    assert b_history["messages"] == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "message_empty"),
        ("   \n\t  ", "message_empty"),
        ("\x07\x1b\u202e\u200b", "message_empty"),
        ("x" * 2001, "message_too_long"),
        ("x" * 10_001, "invalid_payload"),  # over the contract's ceiling
        (42, "invalid_payload"),
        (None, "invalid_payload"),
        (["a"], "invalid_payload"),
        ("a\x00b", "invalid_payload"),
    ],
)
async def test_bad_messages_are_refused_and_the_connection_survives(server, clients, text, code):
    _agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    answer = await taxpayer.call("chat:send", send(sid, "t1", text))
    assert answer["ok"] is False and answer["error"]["code"] == code, answer
    # still connected, nothing stored, and the same client id still free
    ok = await taxpayer.call("chat:send", send(sid, "t1", "x" * 2000))
    assert ok["ok"] and ok["message"]["seq"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"session_id": "s", "text": "no client id"},
        {"session_id": "s", "client_id": "has space", "text": "x"},
        {"session_id": "s", "client_id": "x" * 65, "text": "x"},
        {"session_id": "s", "client_id": "c", "text": "x", "from": "someone else"},
        {"session_id": 7, "client_id": "c", "text": "x"},
        "a string",
    ],
)
async def test_wrong_shapes_are_invalid_payload(server, clients, payload):
    _agent, taxpayer, a_start, _ = await pair(server, clients)
    if isinstance(payload, dict) and payload.get("session_id") == "s":
        payload = {**payload, "session_id": a_start["session_id"]}
    answer = await taxpayer.call("chat:send", payload)
    assert answer["error"]["code"] == "invalid_payload", answer
    bad_history = await taxpayer.call(
        "chat:history", {"session_id": a_start["session_id"], "after_seq": -1}
    )
    assert bad_history["error"]["code"] == "invalid_payload"
    assert (await taxpayer.call("chat:send", send(a_start["session_id"], "c", "fine")))["ok"]


async def test_control_characters_are_removed_and_text_is_kept_as_text(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    raw = "<b>a</b>\x07 \u202eevil\u202c\r\nnext\n\n\n\nlast 👩\u200d💻 "
    ack = await taxpayer.call("chat:send", send(sid, "t1", raw))
    assert ack["ok"], ack
    # markup stays as written (pages render text, never HTML); controls and bidi overrides
    # are gone; line breaks are \n, at most one empty line
    assert ack["message"]["text"] == "<b>a</b> evil\nnext\n\nlast 👩\u200d💻"
    assert (await agent.wait_for("chat:message"))["text"] == ack["message"]["text"]
    # a lone surrogate (PostgreSQL could not store it) never reaches the use case
    lone = await taxpayer.call("chat:send", send(sid, "t2", "a \ud800 b"))
    assert lone["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize(
    "settings_overrides", [{"chat_rate": 0.01, "chat_burst": 3, "chat_max_chars": 20}]
)
async def test_too_fast_is_rate_limited_and_the_limit_is_a_setting(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    answers = [await taxpayer.call("chat:send", send(sid, f"t{n}", f"m{n}")) for n in range(4)]
    assert [a["ok"] for a in answers] == [True, True, True, False]
    assert answers[3]["error"]["code"] == "rate_limited"
    # the agent has a bucket of its own; the size limit follows VTAX_CHAT_MAX_CHARS
    too_long = await agent.call("chat:send", send(sid, "a1", "x" * 21))
    assert too_long["error"]["code"] == "message_too_long"
    assert "20" in too_long["error"]["message"]
    assert (await agent.call("chat:send", send(sid, "a2", "x" * 20)))["ok"]
    assert len(agent.received["chat:message"]) == 3


async def test_after_the_end_nobody_writes(server, clients):
    agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    assert (await agent.call("chat:send", send(sid, "a1", "bye")))["ok"]
    assert (await agent.call("session:end", {"session_id": sid}))["ok"]
    await taxpayer.wait_for("session:end")
    for who in (agent, taxpayer):
        late = await who.call("chat:send", send(sid, "late", "one more"))
        assert late["error"]["code"] in ("not_in_session", "session_ended")
    status, body = await supervisor_get(server, f"/api/sessions/{sid}/messages", taxpayer.token)
    assert status == 200 and [m["text"] for m in body["messages"]] == ["bye"]


async def test_the_recorder_is_no_reader(server, clients):
    _agent, taxpayer, a_start, _ = await pair(server, clients)
    sid = a_start["session_id"]
    recorder_sid = "recorder-conn"
    live = server.ctx.services.calls
    hidden = await live.add_participant(sid, "recorder", "rec-1", recorder_sid)
    assert (await taxpayer.call("chat:send", send(sid, "t1", "hello")))["ok"]
    from vtax.app.ports import Caller

    with pytest.raises(Exception) as refused:
        await server.ctx.services.chat.history(
            Caller("rec-1", "recorder", recorder_sid),  # type: ignore[arg-type]
            _history(sid),
        )
    assert getattr(refused.value, "code", None) == "not_in_session"
    assert hidden.role == "recorder"


def _history(sid: str) -> Any:
    from vtax.contract.client_events import ChatHistory

    return ChatHistory(session_id=sid)
