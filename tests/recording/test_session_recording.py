"""A session between two aiortc peers, recorded by a recorder worker through the real
signaling node: consent, join, one send-only peer connection per participant, files checked
by opening them with PyAV and counting frames."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy import select

from tests.conftest import poll_until
from tests.recording.conftest import FPS, MediaPeer, close_all, start_session
from tests.recording.media import probe
from vtax.models import SessionEvent
from vtax.recording.store import RecordingStore, verify

MEDIA_S = 4.0


def recorder_joined(client: Any) -> Any:
    return client.wait_for("session:participant", lambda m: m["role"] == "recorder", timeout=10)


async def audit_kinds(server: Any, session_id: str) -> list[str]:
    async with server.ctx.records.sessionmaker() as db:
        rows = await db.execute(
            select(SessionEvent.kind)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.id)
        )
        return list(rows.scalars())


async def test_two_aiortc_peers_are_recorded(server, clients, recorder, store):
    taxpayer, agent, t_start, a_start = await start_session(server, clients)
    session_id = t_start["session_id"]
    asked = await taxpayer.wait_for("session:recording")
    assert asked["state"] == "consent_requested" and asked["on_refusal"] == "continue"
    assert (await agent.wait_for("session:recording"))["state"] == "awaiting_consent"

    ack = await taxpayer.call("session:consent", {"session_id": session_id, "recording": True})
    assert ack == {"ok": True, "recording": "starting"}
    joined = await recorder_joined(taxpayer)
    assert joined == (await recorder_joined(agent))
    peers = [MediaPeer(taxpayer, session_id), MediaPeer(agent, session_id)]
    try:
        await asyncio.gather(*(p.connect(joined["participant_id"]) for p in peers))
        await agent.wait_for("session:recording", lambda m: m["state"] == "recording")
        await asyncio.sleep(MEDIA_S)
        ended_at = time.monotonic()
        assert (await taxpayer.call("session:end", {"session_id": session_id}))["ok"]
        folder = await poll_until(lambda: store.find_session_dir(session_id), 10)

        def complete() -> Any:
            m = RecordingStore.load_manifest(folder)
            return m if m and m.status == "complete" and len(m.segments) == 2 else None

        manifest = await poll_until(complete, 15)
    finally:
        await close_all(*peers)

    assert {p.role for p in manifest.participants} == {"taxpayer", "agent"}
    assert manifest.consent["taxpayer_id"] and manifest.consent["at"]
    by_role = {s.role: s for s in manifest.segments}
    ids = {"taxpayer": t_start["participant_id"], "agent": a_start["participant_id"]}
    for role, seg in by_role.items():
        assert seg.file == f"{role}-{ids[role]}-001.webm"
        peer = peers[0] if role == "taxpayer" else peers[1]
        session_s = ended_at - (peer.connected_at or 0)
        info = probe(folder / seg.file)
        assert info.streams == {"video": "vp8", "audio": "opus"}, info
        assert info.first_video_keyframe and (info.width, info.height) == (640, 360)
        assert info.channels == 2
        # Frame counts within 10 % of duration x rate; duration within 1 s of the session's.
        assert abs(info.duration_s - session_s) <= 1.0, (info.duration_s, session_s)
        assert abs(info.frames["video"] - seg.duration_s * FPS) <= 0.1 * seg.duration_s * FPS
        assert abs(info.frames["audio"] - seg.duration_s * 50) <= 0.1 * seg.duration_s * 50
        # The manifest counts what is in the file.
        assert seg.video and seg.video.frames == info.frames["video"]
        assert seg.audio and seg.audio.frames == info.frames["audio"]
        assert seg.video.codec == "VP8" and seg.video.starts_with_keyframe
    assert verify(store, session_id) == (2, [])

    if hasattr(server.ctx.records, "sessionmaker"):  # the session's own audit log
        kinds = await poll_until(
            lambda: _has(audit_kinds(server, session_id), "recording_saved"), timeout=5
        )
        assert kinds.index("recording_consent") < kinds.index("recording_started")
    lines = (store.root / "audit.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines if session_id in x][:2] == [
        "recording_consent",
        "recording_started",
    ]


async def _has(kinds_coro: Any, kind: str) -> list[str] | None:
    kinds = await kinds_coro
    return kinds if kind in kinds else None


async def test_refused_consent_records_nothing_and_tells_the_agent(
    server, clients, recorder, store
):
    taxpayer, agent, t_start, _ = await start_session(server, clients)
    session_id = t_start["session_id"]
    ack = await taxpayer.call("session:consent", {"session_id": session_id, "recording": False})
    assert ack == {"ok": True, "recording": "refused", "session_ended": False}
    told = await agent.wait_for("session:recording", lambda m: m["state"] == "refused")
    assert told["session_continues"] is True
    # The same answer again is a no-op; the session goes on and ends normally.
    again = await taxpayer.call("session:consent", {"session_id": session_id, "recording": False})
    assert again == {"ok": True, "recording": "refused"}
    await asyncio.sleep(0.5)
    assert "session:participant" not in taxpayer.received
    assert (await taxpayer.call("session:end", {"session_id": session_id}))["ok"]
    await asyncio.sleep(0.3)
    assert store.find_session_dir(session_id) is None
    assert not list(store.root.glob("**/*.webm"))
    lines = [json.loads(x) for x in (store.root / "audit.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines if x["session_id"] == session_id] == ["recording_refused"]


async def test_refusal_can_end_the_session(server, clients, settings_overrides):
    server.app[_key()].settings = server.ctx.settings.model_copy(
        update={"recording_on_refusal": "end"}
    )
    taxpayer, agent, t_start, _ = await start_session(server, clients)
    session_id = t_start["session_id"]
    ack = await taxpayer.call("session:consent", {"session_id": session_id, "recording": False})
    assert ack == {"ok": True, "recording": "refused", "session_ended": True}
    ended = await agent.wait_for("session:end")
    assert ended["reason"] == "recording_refused"


def _key() -> Any:
    from signaling.recording import RECORDING

    return RECORDING


async def test_consent_input_is_validated_and_the_connection_survives(server, clients):
    taxpayer, agent, t_start, _ = await start_session(server, clients)
    session_id = t_start["session_id"]
    cases = [
        (agent, {"session_id": session_id, "recording": True}, "forbidden"),
        (taxpayer, {"session_id": session_id}, "invalid_payload"),
        (taxpayer, {"session_id": session_id, "recording": "yes"}, "invalid_payload"),
        (taxpayer, {"session_id": session_id, "recording": True, "x": 1}, "invalid_payload"),
        (taxpayer, {"session_id": "nope", "recording": True}, "not_in_session"),
        (taxpayer, ["not", "an", "object"], "invalid_payload"),
    ]
    for client, payload, code in cases:
        ack = await client.call("session:consent", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (payload, ack)
    for event, payload in (
        ("recorder:join", {"session_id": session_id, "job_id": "j-1"}),
        ("recorder:hello", {"worker": "w", "capacity": 1}),
        (
            "recorder:saved",
            {"session_id": session_id, "manifest": "x", "segments": 0, "status": "complete"},
        ),
    ):
        ack = await taxpayer.call(event, payload)
        assert ack["error"]["code"] == "forbidden", (event, ack)
    # Still connected and working.
    ok = await taxpayer.call("session:consent", {"session_id": session_id, "recording": False})
    assert ok["ok"] is True


async def test_recorder_join_needs_the_current_job(server, clients):
    from vtax.auth import TokenIssuer

    _, _, t_start, _ = await start_session(server, clients)
    settings = server.ctx.settings
    token = TokenIssuer(settings.signing_key(), 600).issue("rogue-recorder", "recorder")
    rogue = await clients(server, token)
    ack = await rogue.call("recorder:join", {"session_id": t_start["session_id"], "job_id": "j-x"})
    assert ack["error"]["code"] == "invalid_state"  # no consent yet, no job
    ack = await rogue.call("recorder:join", {"session_id": "missing", "job_id": "j-x"})
    assert ack["error"]["code"] == "not_found"
    ack = await rogue.call("recorder:join", {"session_id": "../../etc", "job_id": "j-x"})
    assert ack["error"]["code"] == "not_found"
    ack = await rogue.call(
        "recorder:saved",
        {"session_id": "../x", "manifest": "../../etc/passwd", "segments": 1, "status": "complete"},
    )
    assert ack["error"]["code"] == "not_found"


async def test_a_new_peer_connection_continues_in_a_new_segment(server, clients, recorder, store):
    """Resume, simulated at the media level: the taxpayer's page opens a new peer connection
    to the recorder (as after a reload or a resume); the recording goes on in segment 2."""
    taxpayer, agent, t_start, _ = await start_session(server, clients)
    session_id = t_start["session_id"]
    await taxpayer.call("session:consent", {"session_id": session_id, "recording": True})
    joined = await recorder_joined(taxpayer)
    first = MediaPeer(taxpayer, session_id)
    second = MediaPeer(taxpayer, session_id)
    try:
        await first.connect(joined["participant_id"])
        await asyncio.sleep(2.0)
        await first.close()
        await second.connect(joined["participant_id"])
        await asyncio.sleep(2.0)
        assert (await agent.call("session:end", {"session_id": session_id}))["ok"]
        folder = await poll_until(lambda: store.find_session_dir(session_id), 10)

        def complete() -> Any:
            m = RecordingStore.load_manifest(folder)
            return m if m and m.status == "complete" else None

        manifest = await poll_until(complete, 15)
    finally:
        await close_all(first, second)
    segments = sorted(manifest.segments, key=lambda s: s.segment)
    assert [s.segment for s in segments] == [1, 2]
    assert all(s.role == "taxpayer" for s in segments)
    assert segments[0].ended_at <= segments[1].started_at
    for seg in segments:
        info = probe(folder / seg.file)
        assert info.first_video_keyframe, seg.file
        assert info.frames["video"] >= 0.9 * seg.duration_s * FPS - 1, (seg.file, info)
        assert info.frames["audio"] >= 0.9 * seg.duration_s * 50 - 1, (seg.file, info)
        assert 1.0 <= seg.duration_s <= 3.0
    assert verify(store, session_id) == (2, [])


async def test_resume_through_signaling_continues_in_a_new_segment(
    server, clients, recorder, store
):
    """The taxpayer's socket drops and resumes (`session:resume`); the recorder hears
    `session:peer {back}` and asks for a new connection (`rtc:signal {type: "restart"}`); the
    taxpayer's new peer connection becomes segment 2. (The agent's healthy one stays in 1.)"""
    taxpayer, agent, t_start, _ = await start_session(server, clients)
    session_id = t_start["session_id"]
    await taxpayer.call("session:consent", {"session_id": session_id, "recording": True})
    joined = await recorder_joined(taxpayer)
    recorder_id = joined["participant_id"]
    first, agent_peer = MediaPeer(taxpayer, session_id), MediaPeer(agent, session_id)
    await asyncio.gather(first.connect(recorder_id), agent_peer.connect(recorder_id))
    await asyncio.sleep(1.5)

    await taxpayer.close()  # the connection drops (the media keeps flowing meanwhile)
    again = await clients(server, taxpayer.token)
    ack = await again.call("session:resume", {"session_id": session_id, "last_seq": 0})
    assert ack["ok"], ack
    restart = await again.wait_for(
        "rtc:signal", lambda m: m["type"] == "restart" and m["from"] == recorder_id, timeout=10
    )
    assert restart["data"] is None
    second = MediaPeer(again, session_id)
    try:
        await first.close()
        await second.connect(recorder_id)
        await asyncio.sleep(1.5)
        assert (await agent.call("session:end", {"session_id": session_id}))["ok"]
        folder = await poll_until(lambda: store.find_session_dir(session_id), 10)

        def complete() -> Any:
            m = RecordingStore.load_manifest(folder)
            return m if m and m.status == "complete" and len(m.segments) == 3 else None

        manifest = await poll_until(complete, 15)
    finally:
        await close_all(first, second, agent_peer)
    taxpayer_segments = sorted(
        (s for s in manifest.segments if s.role == "taxpayer"), key=lambda s: s.segment
    )
    assert [s.segment for s in taxpayer_segments] == [1, 2]
    assert [s.segment for s in manifest.segments if s.role == "agent"] == [1]
    for seg in manifest.segments:
        info = probe(folder / seg.file)
        assert info.first_video_keyframe and info.frames["video"] > 0, seg.file
        assert info.frames["audio"] > 0, seg.file
    assert verify(store, session_id) == (3, [])
