"""The media leg with real media: the recorder worker (in this process) runs the leg; an aiortc
peer plays the agent's page (its own VP8 + Opus and the taxpayer's, sent to the leg, and the
whisper m-line it receives on), two aiortc peers play monitoring supervisors. Both supervisors
decode both sides' video (told apart by their sizes); the whisper reaches the agent's
connection only while the supervisor holds the button, and nothing else carries it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import cache
from typing import Any

import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from tests.conftest import Client, RunningServer, poll_until
from tests.monitor.conftest import assert_taxpayer_clean, monitored_call
from tests.recording.conftest import FPS, PacketTrack, audio_bitstream, video_bitstream
from tests.recording.media import vp8_frames
from vtax.recording.worker import RecorderWorker

# One transport for every m-line, as a browser does (aiortc's default "balanced" policy left
# the second video m-line of a kind without a transport).
BUNDLED = RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"recorder_autostart": False}


@cache
def small_video() -> list[bytes]:
    """The taxpayer's camera, as the agent's page receives it: 320x180 (the agent's is 640x360)."""
    return [d for d, _ in vp8_frames(FPS * 4, fps=FPS, gop=FPS * 2, size=(320, 180))]


@pytest.fixture(scope="module", autouse=True)
def _media() -> None:
    video_bitstream()
    audio_bitstream()
    small_video()


@pytest.fixture
async def worker(server: RunningServer):
    w = RecorderWorker(server.ctx.settings, server.url, capacity=4, use_redis=False)
    stop = asyncio.Event()
    task = asyncio.ensure_future(w.run(stop, prune_schedule=False))
    store = server.ctx.services.monitor.store

    async def registered() -> bool:
        return bool(await store.workers())

    deadline = asyncio.get_running_loop().time() + 10
    while not await registered():
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    yield w
    stop.set()
    await asyncio.wait_for(task, 20)


class Receiving:
    """Reads (and decodes) every frame of a remote track; notes sizes and audio energy."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.frames = 0
        self.sizes: set[tuple[int, int]] = set()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await self.track.recv()
                self.frames += 1
                if isinstance(frame, av.VideoFrame):
                    self.sizes.add((frame.width, frame.height))

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def negotiate(client: Client, session_id: str, leg_id: str, pc: RTCPeerConnection) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    seen = len(client.received["monitor:signal"])
    ack = await client.call(
        "monitor:signal",
        {
            "session_id": session_id,
            "to": leg_id,
            "type": "offer",
            "data": {"type": "offer", "sdp": pc.localDescription.sdp},
        },
    )
    assert ack["ok"], ack

    def answer() -> Any:
        return next(
            (
                m
                for m in client.received["monitor:signal"][seen:]
                if m["from"] == leg_id and m["type"] == "answer"
            ),
            None,
        )

    msg = await poll_until(answer, 10)
    await pc.setRemoteDescription(RTCSessionDescription(**msg["data"]))
    await poll_until(lambda: pc.connectionState == "connected", 10)


def on_tracks(pc: RTCPeerConnection, into: list[Receiving]) -> Callable[..., None]:
    @pc.on("track")
    def track(t: MediaStreamTrack) -> None:
        into.append(Receiving(t))

    return track


async def test_two_supervisors_see_both_sides_and_whisper_reaches_the_agent(
    server, clients, worker
):
    taxpayer, agent, t_start, _ = await monitored_call(server, clients)
    session_id = t_start["session_id"]
    sups = [await clients(server, await server.staff(f"sup{i}", "supervisor")) for i in (1, 2)]
    views = [await s.call("monitor:start", {"session_id": session_id}) for s in sups]
    assert all(v["ok"] for v in views), views
    told = await agent.wait_for("monitor:agent", lambda m: m["leg_id"], timeout=10)
    leg_id = told["leg_id"]
    for s, view in zip(sups, views, strict=True):
        if view["state"] != "live":  # the leg joined after this supervisor started
            await s.wait_for("monitor:state", lambda m: m["state"] == "live")

    pcs: list[RTCPeerConnection] = []
    receiving: list[Receiving] = []
    try:
        # The agent's page: its tracks, the taxpayer's tracks, and the whisper it receives.
        agent_pc = RTCPeerConnection(BUNDLED)
        pcs.append(agent_pc)
        step, rate = 90000 // FPS, 90000
        for track in (
            PacketTrack("audio", audio_bitstream(), 960, 48000),
            PacketTrack("video", [d for d, _ in video_bitstream()], step, rate),
            PacketTrack("audio", audio_bitstream(), 960, 48000),
            PacketTrack("video", small_video(), step, rate),
        ):
            agent_pc.addTransceiver(track, direction="sendonly")
        agent_pc.addTransceiver("audio", direction="recvonly")
        whisper_in: list[Receiving] = []
        on_tracks(agent_pc, whisper_in)
        await negotiate(agent, session_id, leg_id, agent_pc)

        per_sup: list[list[Receiving]] = []
        for s in sups:
            pc = RTCPeerConnection(BUNDLED)
            pcs.append(pc)
            for kind in ("audio", "video", "audio", "video"):
                pc.addTransceiver(kind, direction="recvonly")
            pc.addTransceiver(PacketTrack("audio", audio_bitstream(), 960, 48000), "sendonly")
            got: list[Receiving] = []
            on_tracks(pc, got)
            per_sup.append(got)
            await negotiate(s, session_id, leg_id, pc)
        receiving = [r for got in per_sup for r in got] + whisper_in

        def both_sides_flow() -> bool:
            return all(len(got) == 4 and all(r.frames >= 2 * FPS for r in got) for got in per_sup)

        await poll_until(both_sides_flow, 15)
        for got in per_sup:
            videos = [r for r in got if r.track.kind == "video"]
            assert [sorted(v.sizes) for v in videos] == [[(640, 360)], [(320, 180)]]
        leg = worker.legs.legs[session_id]
        assert leg.whisper_frames == 0
        quiet = whisper_in[0].frames if whisper_in else 0
        assert quiet == 0  # nobody whispers: nothing reaches the agent's whisper m-line

        ack = await sups[1].call("monitor:whisper", {"session_id": session_id, "on": True})
        assert ack["ok"], ack
        await poll_until(lambda: whisper_in and whisper_in[0].frames >= 25, 10)
        off = await sups[1].call("monitor:whisper", {"session_id": session_id, "on": False})
        assert off["ok"]
        await asyncio.sleep(0.5)
        stopped_at = whisper_in[0].frames
        await asyncio.sleep(1.0)
        assert whisper_in[0].frames - stopped_at <= 5  # in flight at release, no more
        assert leg.whisper_frames >= 25
    finally:
        for r in receiving:
            await r.close()
        for pc in pcs:
            await pc.close()

    # One supervisor leaves: the other's media goes on; the last one stops the leg.
    assert (await sups[0].call("monitor:stop", {"session_id": session_id}))["ok"]
    assert (await sups[1].call("monitor:stop", {"session_id": session_id}))["ok"]
    await poll_until(lambda: session_id not in worker.legs.legs, 10)
    assert_taxpayer_clean(taxpayer, leg_id, *(v["monitor_id"] for v in views))
