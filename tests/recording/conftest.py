"""Recording fixtures: a node on SQLite, an in-process recorder worker, and aiortc media peers
that play real (pre-encoded) VP8 and Opus at real-time pace to the recorder, the way a
browser's second, send-only peer connection does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from tests.conftest import Client, RunningServer, poll_until
from tests.databases import Templates
from tests.recording.media import opus_frames, vp8_frames
from vtax.db import migrate
from vtax.recording.store import RecordingStore
from vtax.recording.worker import RecorderWorker

FPS = 15
JOIN = {
    "category": "invoices",
    "language": "zh-CN",
    "channel": "web",
    "question": "Please record this session",
}


@pytest.fixture
async def database_url(tmp_path: Path, templates: Templates) -> AsyncIterator[str]:
    """Recording does not depend on the database engine: SQLite only, to keep it quick (a
    copy of the migrated template, tests/databases.py)."""
    await templates.sqlite_copy("migrated", migrate, tmp_path / "vtax.db")
    yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"


@cache
def video_bitstream() -> list[tuple[bytes, bool]]:
    """8 s of VP8 at 15 fps, a keyframe every 4 s; played in a loop."""
    return vp8_frames(FPS * 8, fps=FPS, gop=FPS * 4)


@cache
def audio_bitstream() -> list[bytes]:
    return opus_frames(50 * 8)


@pytest.fixture(scope="session", autouse=True)
def _bitstreams() -> None:
    """Encode the test media once, before any event loop runs (encoding inside a test would
    stall the loop that also runs the node and the worker)."""
    video_bitstream()
    audio_bitstream()


class PacketTrack(MediaStreamTrack):
    """Plays pre-encoded packets at real-time pace (aiortc packetizes them, no encoding)."""

    def __init__(self, kind: str, packets: list[bytes], step: int, rate: int) -> None:
        super().__init__()
        self.kind = kind
        self.packets, self.step, self.rate = packets, step, rate
        self.index = 0
        self.started: float | None = None
        self.sent = 0

    async def recv(self) -> av.Packet:
        if self.started is None:
            self.started = time.monotonic()
        due = self.started + self.index * self.step / self.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        packet = av.Packet(self.packets[self.index % len(self.packets)])
        packet.pts = self.index * self.step
        packet.time_base = Fraction(1, self.rate)
        self.index += 1
        self.sent += 1
        return packet


class MediaPeer:
    """A media participant's send-only peer connection to the recorder."""

    def __init__(self, client: Client, session_id: str) -> None:
        self.client, self.session_id = client, session_id
        self.pc: RTCPeerConnection | None = None
        self.tracks: list[PacketTrack] = []
        self.connected_at: float | None = None

    async def connect(self, recorder_id: str, timeout: float = 10.0) -> None:
        pc = self.pc = RTCPeerConnection()
        video = PacketTrack("video", [d for d, _ in video_bitstream()], 90000 // FPS, 90000)
        audio = PacketTrack("audio", audio_bitstream(), 960, 48000)
        self.tracks = [video, audio]
        pc.addTransceiver(video, direction="sendonly")
        pc.addTransceiver(audio, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        seen = len(self.client.received["rtc:signal"])
        ack = await self.client.call(
            "rtc:signal",
            {
                "session_id": self.session_id,
                "to": recorder_id,
                "type": "offer",
                "data": {"type": "offer", "sdp": pc.localDescription.sdp},
            },
        )
        assert ack["ok"], ack

        def answer() -> Any:
            for msg in self.client.received["rtc:signal"][seen:]:
                if msg["from"] == recorder_id and msg["type"] == "answer":
                    return msg
            return None

        msg = await poll_until(answer, timeout)
        await pc.setRemoteDescription(RTCSessionDescription(**msg["data"]))
        await poll_until(lambda: pc.connectionState == "connected", timeout)
        self.connected_at = time.monotonic()

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"recording_keyframe_wait_s": 5.0}


@pytest.fixture
async def recorder(server: RunningServer) -> AsyncIterator[RecorderWorker]:
    """A recorder worker in this process (in production it is its own process)."""
    worker = RecorderWorker(server.ctx.settings, server.url, capacity=4, use_redis=False)
    stop = asyncio.Event()
    task = asyncio.ensure_future(worker.run(stop, prune_schedule=False))
    await poll_until(lambda: worker.ready.is_set() or task.done(), 10)
    if task.done():
        task.result()
    yield worker
    stop.set()
    await asyncio.wait_for(task, 20)


@pytest.fixture
def store(server: RunningServer) -> RecordingStore:
    return RecordingStore(server.ctx.settings.recordings_dir)


async def start_session(server: RunningServer, clients: Callable[..., Any]) -> tuple[Any, ...]:
    agent = await clients(server, await server.staff("agent1"))
    taxpayer = await clients(server, await server.taxpayer())
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    assert (await taxpayer.call("queue:join", JOIN))["ok"]
    offer = await agent.wait_for("offer:new")
    assert (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
    t_start = await taxpayer.wait_for("session:start")
    a_start = await agent.wait_for("session:start")
    return taxpayer, agent, t_start, a_start


async def close_all(*peers: MediaPeer) -> None:
    for peer in peers:
        with contextlib.suppress(Exception):
            await peer.close()
