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
