"""Media-leg CPU benchmark (issue 16): what monitoring costs the leg, per monitored session and
per additional monitor, for the two ways of fanning media out with aiortc:

  forward  this project's leg (vtax.media.leg): the agent page's encoded frames taken after the
           jitter buffer (ReceiverTap) and handed to every supervisor's sender as packets,
           which aiortc packetizes without encoding; nothing is decoded or encoded
  relay    aiortc's MediaRelay: each upstream track decoded once, and every supervisor's
           sender encodes it again (VP8 and Opus), the textbook aiortc fan-out

One leg process (pinned to core 1) runs one mode. The driver (core 0) plays what an agent's
page sends the leg, per session: two VP8 640x360 15 fps streams (the agent's camera and the
taxpayer's, as received) and two Opus streams, pre-encoded and packetised by aiortc (no
encoding in the driver); and M supervisors per session, each receiving the four tracks
(their frames are counted after the jitter buffer, not decoded). Each configuration runs a
warm-up, then the leg's process CPU (/proc/<pid>/stat, all threads) is read over a window.
Every configuration runs `--rounds` times; the medians are reported.

Run:  .venv/bin/python benchmarks/monitor.py [--rounds 3] [--window 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.recording_cpu import (  # noqa: E402
    VIDEO_BITRATE,
    PacedPackets,
    cpu_seconds,
    free_port,
    get_json,
    wait_up,
)
from vtax.media.leg import SOURCES, Fanout  # noqa: E402
from vtax.recording.capture import EncodedFrame, ReceiverTap  # noqa: E402


@functools.cache
def bitstreams() -> tuple[list[bytes], list[bytes]]:
    """VP8 640x360 15 fps at ~600 kbit/s (as benchmarks/recording_cpu.py), a keyframe every
    2 s: a pre-encoded sender cannot answer a PLI, so a supervisor that joins waits for the
    next one (a browser sends one at once)."""
    from tests.recording.media import opus_frames, vp8_frames

    video = vp8_frames(15 * 20, fps=15, gop=30, bit_rate=VIDEO_BITRATE, patch_size=200)
    return [d for d, _ in video], opus_frames(50 * 20)


BUNDLED = RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# ---- the leg process ----------------------------------------------------------------------------


class Leg:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sessions: dict[str, dict[str, Any]] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> Any:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def upstream(self, request: web.Request) -> web.Response:
        body = await request.json()
        sid = body["session"]
        pc = RTCPeerConnection(BUNDLED)
        self.pcs.append(pc)
        state: dict[str, Any] = {"fanouts": {n: Fanout(n, self.spawn) for n in SOURCES}}
        state["tracks"] = {}
        state["relay"] = MediaRelay()
        self.sessions[sid] = state

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for i, t in enumerate(pc.getTransceivers()):
                if t.receiver.track is track and i < len(SOURCES):
                    name = SOURCES[i]
                    if self.mode == "forward":
                        fan = state["fanouts"][name]
                        fan.tap = ReceiverTap(t.receiver, track.kind, fan.on_frame)
                    else:
                        state["tracks"][name] = track

        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def subscribe(self, request: web.Request) -> web.Response:
        body = await request.json()
        state = self.sessions[body["session"]]
        pc = RTCPeerConnection(BUNDLED)
        self.pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
        for name, t in zip(SOURCES, pc.getTransceivers(), strict=False):
            if self.mode == "forward":
                track: MediaStreamTrack = state["fanouts"][name].subscribe()
            else:
                track = state["relay"].subscribe(state["tracks"][name], buffered=False)
            t.sender.replaceTrack(track)
            t.direction = "sendonly"
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"pid": os.getpid(), "sessions": len(self.sessions)})


def run_leg(mode: str, port: int) -> None:
    leg = Leg(mode)
    app = web.Application()
    app.router.add_post("/upstream", leg.upstream)
    app.router.add_post("/subscribe", leg.subscribe)
    app.router.add_get("/stats", leg.stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def spawn_leg(mode: str, core: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, __file__, "leg", mode, str(port)]
    proc = subprocess.Popen(
        ["taskset", "-c", str(core), *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


# ---- the driver --------------------------------------------------------------------------------


class Counting:
    """A supervisor's received frames, counted after the jitter buffer (never decoded)."""

    def __init__(self) -> None:
        self.video = 0
        self.audio = 0

    def sink(self, frame: EncodedFrame) -> None:
        if frame.kind == "video":
            self.video += 1
        else:
            self.audio += 1


async def offer(http: Any, url: str, pc: RTCPeerConnection, body: dict[str, Any]) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(url, json={**body, "sdp": pc.localDescription.sdp}) as res:
        answer = await res.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))


async def run_config(
    mode: str, sessions: int, monitors: int, window: float, warmup: float
) -> dict[str, Any]:
    import aiohttp

    video, audio = bitstreams()
    proc, url = spawn_leg(mode, 1)
    pcs: list[RTCPeerConnection] = []
    counters: list[Counting] = []
    try:
        async with aiohttp.ClientSession() as http:
            await wait_up(http, url)
            pid = (await get_json(http, url + "/stats"))["pid"]
            t0 = time.monotonic()
            for s in range(sessions):
                up = RTCPeerConnection(BUNDLED)
                pcs.append(up)
                for kind in ("audio", "video", "audio", "video"):
                    track = (
                        PacedPackets("video", video, 90000 // 15, 90000, t0)
                        if kind == "video"
                        else PacedPackets("audio", audio, 960, 48000, t0)
                    )
                    up.addTransceiver(track, direction="sendonly")
                await offer(http, url + "/upstream", up, {"session": str(s)})
            await asyncio.sleep(1.0)
            for s in range(sessions):
                for _ in range(monitors):
                    pc = RTCPeerConnection(BUNDLED)
                    pcs.append(pc)
                    count = Counting()
                    counters.append(count)
                    for kind in ("audio", "video", "audio", "video"):
                        pc.addTransceiver(kind, direction="recvonly")

                    @pc.on("track")
                    def on_track(
                        track: MediaStreamTrack, pc: RTCPeerConnection = pc, c: Counting = count
                    ) -> None:
                        for t in pc.getTransceivers():
                            if t.receiver.track is track:
                                ReceiverTap(t.receiver, track.kind, c.sink)

                    await offer(http, url + "/subscribe", pc, {"session": str(s)})
            await asyncio.sleep(warmup)
            cpu0, frames0, at0 = cpu_seconds(pid), [c.video for c in counters], time.monotonic()
            await asyncio.sleep(window)
            cpu1, frames1, at1 = cpu_seconds(pid), [c.video for c in counters], time.monotonic()
    finally:
        for pc in pcs:
            await pc.close()
        proc.terminate()
        proc.wait(timeout=10)
    elapsed = at1 - at0
    fps = [(b - a) / elapsed / 2 for a, b in zip(frames0, frames1, strict=True)]  # 2 videos
    audio = [c.audio for c in counters]
    return {
        "mode": mode,
        "sessions": sessions,
        "monitors": monitors,
        "core": round((cpu1 - cpu0) / elapsed, 4),
        "slowest_fps": round(min(fps), 1) if fps else 0.0,
        "mean_fps": round(statistics.mean(fps), 1) if fps else 0.0,
        "audio_frames": sum(audio),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--modes", default="forward,relay")
    parser.add_argument("--configs", default="1x1,1x2,1x4,2x1", help="sessions x monitors")
    parser.add_argument("--nice", type=int, default=-10, help="as root: priority (0 = unchanged)")
    parser.add_argument("--json", type=Path)
    if len(sys.argv) > 1 and sys.argv[1] == "leg":
        run_leg(sys.argv[2], int(sys.argv[3]))
        return 0
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # the driver on core 0, the leg on core 1
    if args.nice and os.geteuid() == 0:
        # The machine is shared: the driver and the leg (which inherits it) ahead of the rest.
        os.nice(args.nice)
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    bitstreams()  # encode the test media once, before any measurement
    runs: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for mode in args.modes.split(","):
            for sessions, monitors in configs:
                result = asyncio.run(run_config(mode, sessions, monitors, args.window, args.warmup))
                result["round"] = round_no + 1
                runs.append(result)
                print(json.dumps(result), flush=True)
    medians: dict[str, dict[str, float]] = {}
    for mode in args.modes.split(","):
        for sessions, monitors in configs:
            cores = [
                r["core"]
                for r in runs
                if (r["mode"], r["sessions"], r["monitors"]) == (mode, sessions, monitors)
            ]
            medians.setdefault(mode, {})[f"{sessions}x{monitors}"] = statistics.median(cores)
    summary = {
        mode: {
            "per_monitored_session_1_monitor": m.get("1x1"),
            "per_additional_monitor": round((m["1x4"] - m["1x1"]) / 3, 4)
            if "1x4" in m and "1x1" in m
            else None,
            "second_session": round(m["2x1"] - m["1x1"], 4) if "2x1" in m and "1x1" in m else None,
        }
        for mode, m in medians.items()
    }
    out = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load": os.getloadavg(),
        },
        "medians_core": medians,
        "summary": summary,
        "runs": runs,
    }
    print(json.dumps({"medians_core": medians, "summary": summary}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
