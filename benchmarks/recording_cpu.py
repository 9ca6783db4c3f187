"""Recording CPU benchmark (issue 6).

Part 1, side by side in one run: headless Chromium (fake camera 640x360 at 15 fps plus fake
microphone, Debian's /usr/bin/chromium) sends the same camera and microphone over one
send-only peer connection to each of three receiver processes:

  decode         aiortc receives and decodes (what any aiortc consumer pays), records nothing
  mediarecorder  aiortc's MediaRecorder to WebM: decode, then encode again (VP8 + Opus);
                 with the size set up front (benchmarks/recording_repro_mediarecorder.py:
                 unpatched it records no video at all)
  passthrough    this project's recorder: encoded frames after the jitter buffer, muxed into
                 WebM without decoding (vtax.recording.capture + vtax.recording.writer)

Chromium and this driver are pinned to core 0, the receivers to core 1. Each round measures
every receiver's process CPU time (/proc/<pid>/stat, all threads) over the same window.

Part 2, capacity: how many concurrent two-party sessions (2 participant streams each) one
core records without dropping frames. Chromium cannot source dozens of streams on one core,
so a sender process plays pre-encoded VP8 (640x360, 15 fps, made once with libvpx) and Opus
through aiortc (packetised, not encoded) to one passthrough recorder process on core 1, with
more sessions each step, until the recorder misses frames or its core is full.

Run:  .venv/bin/python benchmarks/recording_cpu.py [--rounds 3] [--window 15] [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from vtax.recording.capture import EncodedFrame, ReceiverTap  # noqa: E402
from vtax.recording.writer import SegmentWriter  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
VIDEO_BITRATE = 600_000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads


# ---- a receiver process ----------------------------------------------------------------------


class Receiver:
    """POST /offer {sdp} -> {sdp}; GET /stats. One peer connection per offer."""

    def __init__(self, mode: str, out: Path) -> None:
        self.mode, self.out = mode, out
        self.pcs: list[RTCPeerConnection] = []
        self.frames = {"video": 0, "audio": 0}
        self.recorders: list[Any] = []
        self.writers: list[SegmentWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.per_pc: list[dict[str, int]] = []
        self.taps: list[ReceiverTap] = []

    async def offer(self, request: web.Request) -> web.Response:
        body = await request.json()
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        n = len(self.pcs)
        tracks: list[MediaStreamTrack] = []
        writer: SegmentWriter | None = None
        if self.mode == "passthrough":
            writer = SegmentWriter(self.out / f"pass-{n:03d}", "VP8", "opus")
            self.writers.append(writer)

        mine = {"video": 0, "audio": 0}
        self.per_pc.append(mine)

        def sink(frame: EncodedFrame) -> None:
            self.frames[frame.kind] += 1
            mine[frame.kind] += 1
            assert writer is not None
            writer.add(frame)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            tracks.append(track)
            if self.mode == "passthrough":
                for t in pc.getTransceivers():
                    if t.receiver.track is track:
                        self.taps.append(ReceiverTap(t.receiver, track.kind, sink))
            elif self.mode == "decode":
                self._spawn(self._drain(track))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
        if self.mode == "mediarecorder":
            recorder = MediaRecorder(str(self.out / f"mr-{n:03d}.webm"))
            for track in tracks:
                recorder.addTrack(track)
                if track.kind == "video":  # the workaround, see the repro script
                    ctx = recorder._MediaRecorder__tracks[track]  # type: ignore[attr-defined]
                    ctx.stream.width, ctx.stream.height, ctx.started = 640, 360, True
            self.recorders.append(recorder)
            await recorder.start()
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response(
            {"sdp": pc.localDescription.sdp},
            headers={"Access-Control-Allow-Origin": "*"},
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _drain(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.frames[track.kind] += 1

    async def stats(self, request: web.Request) -> web.Response:
        states = [pc.connectionState for pc in self.pcs]
        return web.json_response(
            {
                "frames": self.frames,
                "states": states,
                "cpu_s": cpu_seconds(os.getpid()),
                "per_pc": self.per_pc,
                "gaps": sum(t.lost_gaps for t in self.taps),
            },
            headers={"Access-Control-Allow-Origin": "*"},
        )

    async def stop(self, request: web.Request) -> web.Response:
        for recorder in self.recorders:
            await recorder.stop()
        results = []
        for writer in self.writers:
            r = writer.close()
            if r is not None:
                results.append({"file": r.path.name, "video": r.video and r.video.frames})
        for pc in self.pcs:
            await pc.close()
        return web.json_response({"closed": results})

    @staticmethod
    async def preflight(request: web.Request) -> web.Response:
        return web.Response(
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Allow-Methods": "POST, GET",
            }
        )


def run_receiver(mode: str, port: int, out: Path) -> None:
    receiver = Receiver(mode, out)
    app = web.Application()
    app.router.add_post("/offer", receiver.offer)
    app.router.add_route("OPTIONS", "/offer", receiver.preflight)
    app.router.add_get("/stats", receiver.stats)
    app.router.add_post("/stop", receiver.stop)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ---- part 1: Chromium, three receivers side by side --------------------------------------------

PAGE = """<!doctype html><meta charset=utf-8><title>rec bench</title><script>
window.bench = {pcs: []};
async function connect(url) {
  if (!window.stream) window.stream = await navigator.mediaDevices.getUserMedia(
      {audio: true, video: {width: 640, height: 360, frameRate: 15}});
  const pc = new RTCPeerConnection();
  for (const t of window.stream.getTracks())
    pc.addTransceiver(t, {direction: 'sendonly', streams: [window.stream]});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const res = await fetch(url + '/offer', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({sdp: pc.localDescription.sdp})});
  await pc.setRemoteDescription({type: 'answer', sdp: (await res.json()).sdp});
  window.bench.pcs.push(pc);
  return window.bench.pcs.length - 1;
}
async function sent(i) {
  let out = {framesSent: 0, framesEncoded: 0, w: 0, h: 0, fps: 0, state: window.bench.pcs[i].connectionState};
  for (const r of (await window.bench.pcs[i].getStats()).values())
    if (r.type === 'outbound-rtp' && r.kind === 'video')
      Object.assign(out, {framesSent: r.framesSent, framesEncoded: r.framesEncoded,
                          w: r.frameWidth, h: r.frameHeight, fps: r.framesPerSecond});
  return out;
}
</script>"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_receiver(
    mode: str, out: Path, core: int, nice: int = 0
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    prefix = ["nice", "-n", str(nice)] if nice else []
    command = [sys.executable, __file__, "receiver", mode, str(port), str(out)]
    proc = subprocess.Popen(
        [*prefix, "taskset", "-c", str(core), *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


async def get_json(session: Any, url: str) -> Any:
    async with session.get(url) as res:
        return await res.json()


async def wait_up(session: Any, url: str) -> None:
    for _ in range(200):
        try:
            await get_json(session, url + "/stats")
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def part_chromium(rounds: int, window: float, warmup: float) -> dict[str, Any]:
    import aiohttp
    from playwright.async_api import async_playwright

    modes = ["decode", "mediarecorder", "passthrough"]
    results: dict[str, list[float]] = {m: [] for m in modes}
    frames: dict[str, list[int]] = {m: [] for m in modes}
    sent_fps: list[float] = []
    files: dict[str, Any] = {}
    page_app = web.Application()
    page_app.router.add_get("/", lambda r: web.Response(text=PAGE, content_type="text/html"))
    runner = web.AppRunner(page_app, access_log=None)
    await runner.setup()
    page_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", page_port).start()
    with tempfile.TemporaryDirectory() as tmp:
        procs = {m: spawn_receiver(m, Path(tmp), 1) for m in modes}
        async with aiohttp.ClientSession() as http, async_playwright() as pw:
            try:
                for _, url in procs.values():
                    await wait_up(http, url)
                browser = await pw.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{page_port}/")
                index = {}
                for m in modes:
                    index[m] = await page.evaluate("u => connect(u)", procs[m][1])
                await asyncio.sleep(warmup)
                for _ in range(rounds):
                    before = {m: await get_json(http, procs[m][1] + "/stats") for m in modes}
                    sent0 = await page.evaluate("i => sent(i)", index["passthrough"])
                    t0 = time.monotonic()
                    await asyncio.sleep(window)
                    after = {m: await get_json(http, procs[m][1] + "/stats") for m in modes}
                    sent1 = await page.evaluate("i => sent(i)", index["passthrough"])
                    dt = time.monotonic() - t0
                    sent_fps.append((sent1["framesSent"] - sent0["framesSent"]) / dt)
                    for m in modes:
                        results[m].append((after[m]["cpu_s"] - before[m]["cpu_s"]) / dt)
                        frames[m].append(after[m]["frames"]["video"] - before[m]["frames"]["video"])
                sent_info = await page.evaluate("i => sent(i)", index["passthrough"])
                await browser.close()
                for m in modes:
                    async with http.post(procs[m][1] + "/stop") as res:
                        files[m] = await res.json()
            finally:
                for proc, _ in procs.values():
                    proc.terminate()
                    proc.wait(timeout=10)
        counts = await asyncio.to_thread(count_all, Path(tmp))
        kbps = {
            name: round(8 * (Path(tmp) / name).stat().st_size / (c["video"] / 15) / 1000)
            for name, c in counts.items()
            if c.get("video")
        }
    await runner.cleanup()
    med = {m: statistics.median(v) for m, v in results.items()}
    return {
        "cpu_core_fraction_per_stream": {m: [round(x, 4) for x in v] for m, v in results.items()},
        "median": {m: round(v, 4) for m, v in med.items()},
        "ratio_passthrough_to_mediarecorder": round(med["passthrough"] / med["mediarecorder"], 3),
        # (MediaRecorder consumes its tracks itself: its count is in files_decoded_frames.)
        "video_frames_received_per_round": {
            m: v for m, v in frames.items() if m != "mediarecorder"
        },
        "chromium_sent_fps": [round(x, 2) for x in sent_fps],
        "chromium_last_outbound": sent_info,
        "files_decoded_frames": counts,
        "files_kbit_per_s": kbps,
    }


def count_all(folder: Path) -> dict[str, dict[str, int]]:
    return {f.name: count_frames(f) for f in sorted(folder.iterdir()) if f.suffix == ".webm"}


def count_frames(path: Path) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    try:
        with av.open(str(path)) as c:
            for packet in c.demux():
                for _ in packet.decode():
                    counts[packet.stream.type] = counts.get(packet.stream.type, 0) + 1
    except av.FFmpegError as exc:
        counts["error"] = str(exc)  # type: ignore[assignment]
    return counts


# ---- part 2: capacity of one core --------------------------------------------------------------


class PacedPackets(MediaStreamTrack):
    def __init__(self, kind: str, packets: list[bytes], step: int, rate: int, t0: float) -> None:
        super().__init__()
        self.kind, self.packets, self.step, self.rate, self.t0 = kind, packets, step, rate, t0
        self.i = 0

    async def recv(self) -> av.Packet:
        await asyncio.sleep(max(0.0, self.t0 + self.i * self.step / self.rate - time.monotonic()))
        p = av.Packet(self.packets[self.i % len(self.packets)])
        p.pts, p.time_base = self.i * self.step, Fraction(1, self.rate)
        self.i += 1
        return p


def bitstreams() -> tuple[list[bytes], list[bytes]]:
    from tests.recording.media import opus_frames, vp8_frames

    # About what Chromium sends to aiortc at 640x360/15 fps (part 1 reports it): ~600 kbit/s.
    video = [
        d
        for d, _ in vp8_frames(15 * 20, fps=15, gop=15 * 10, bit_rate=VIDEO_BITRATE, patch_size=200)
    ]
    return video, opus_frames(50 * 20)


async def part_capacity(step_s: float, max_sessions: int, nice: int) -> dict[str, Any]:
    import aiohttp

    video, audio = bitstreams()
    steps = []
    if nice and os.geteuid() == 0:
        # The machine is shared: raise the sender's and the recorder's priority so that
        # "one core" is (nearly) one core for them, whatever else runs.
        os.nice(nice)
    else:
        nice = 0
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = spawn_receiver("passthrough", Path(tmp), 1, nice)
        pcs: list[RTCPeerConnection] = []
        video_tracks: list[PacedPackets] = []
        try:
            async with aiohttp.ClientSession() as http:
                await wait_up(http, url)
                sessions = 0
                for target in (2, 4, 8, 12, 16, 24, 32, 48, 64):
                    if target > max_sessions:
                        break
                    while sessions < target:
                        for _ in range(2):  # two participants per session
                            pc = RTCPeerConnection()
                            t0 = time.monotonic()
                            track = PacedPackets("video", video, 6000, 90000, t0)
                            video_tracks.append(track)
                            pc.addTransceiver(track, direction="sendonly")
                            pc.addTransceiver(
                                PacedPackets("audio", audio, 960, 48000, t0), direction="sendonly"
                            )
                            await pc.setLocalDescription(await pc.createOffer())
                            async with http.post(
                                url + "/offer", json={"sdp": pc.localDescription.sdp}
                            ) as res:
                                answer = await res.json()
                            await pc.setRemoteDescription(
                                RTCSessionDescription(sdp=answer["sdp"], type="answer")
                            )
                            pcs.append(pc)
                        sessions += 1
                    await asyncio.sleep(3.0)  # connect and settle
                    a = await get_json(http, url + "/stats")
                    sent0 = sum(t.i for t in video_tracks)
                    me0 = cpu_seconds(os.getpid())
                    t0 = time.monotonic()
                    await asyncio.sleep(step_s)
                    b = await get_json(http, url + "/stats")
                    sent = sum(t.i for t in video_tracks) - sent0
                    dt = time.monotonic() - t0
                    sender_cpu = (cpu_seconds(os.getpid()) - me0) / dt
                    streams = 2 * sessions
                    got_v = (b["frames"]["video"] - a["frames"]["video"]) / dt
                    got_a = (b["frames"]["audio"] - a["frames"]["audio"]) / dt
                    per_pc = [
                        (y["video"] - x["video"]) / dt
                        for x, y in zip(a["per_pc"], b["per_pc"], strict=False)
                    ]
                    step = {
                        "slowest_stream_video_fps": round(min(per_pc), 2) if per_pc else None,
                        "loss_gaps_total": b["gaps"],
                        "sessions": sessions,
                        "streams": streams,
                        "recorder_core_fraction": round((b["cpu_s"] - a["cpu_s"]) / dt, 3),
                        "sender_core_fraction": round(sender_cpu, 3),
                        "video_fps_sent_per_stream": round(sent / dt / streams, 2),
                        "video_fps_received_per_stream": round(got_v / streams, 2),
                        "video_received_of_sent": round(got_v * dt / max(sent, 1), 4),
                        "audio_fps_received_per_stream": round(got_a / streams, 2),
                        "connected": sum(s == "connected" for s in b["states"]),
                    }
                    steps.append(step)
                    print("  capacity step", json.dumps(step), flush=True)
                    recorder_dropped = step["video_received_of_sent"] < 0.99
                    sender_behind = step["video_fps_sent_per_stream"] < 15 * 0.99
                    step["limit"] = ", ".join(
                        reason
                        for reason, hit in (
                            ("the sender could not keep 15 fps", sender_behind),
                            ("the recorder received < 99 % of what was sent", recorder_dropped),
                        )
                        if hit
                    )
                    if recorder_dropped or sender_behind or step["recorder_core_fraction"] > 0.9:
                        break
                async with http.post(url + "/stop") as res:
                    await res.json()
        finally:
            for pc in pcs:
                await pc.close()
            proc.terminate()
            proc.wait(timeout=10)
    ok = [s for s in steps if not s["limit"]]
    best = ok[-1] if ok else None
    per_session = (
        statistics.median(s["recorder_core_fraction"] / s["sessions"] for s in steps)
        if steps
        else None
    )
    return {
        "video_kbit_per_s": round(8 * sum(map(len, video)) / (len(video) / 15) / 1000),
        "steps": steps,
        "most_sessions_without_drops": best["sessions"] if best else 0,
        "nice": nice,
        "stopped_by": steps[-1]["limit"] or "end of the steps" if steps else "",
        "recorder_core_fraction_per_session_median": round(per_session, 4) if per_session else None,
        "extrapolated_sessions_per_core": int(0.9 / per_session) if per_session else None,
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        run_receiver(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--capacity-step", type=float, default=12.0)
    parser.add_argument(
        "--nice", type=int, default=-10, help="part 2 priority (as root; 0 = unchanged)"
    )
    parser.add_argument("--max-sessions", type=int, default=64)
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--skip-chromium", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # the driver and Chromium on core 0
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.platform()}",
        "command": "python " + " ".join(sys.argv),
        "versions": {
            "aiortc": __import__("aiortc").__version__,
            "av": av.__version__,
            "python": platform.python_version(),
        },
    }
    if not args.skip_chromium:
        print("part 1: Chromium 640x360@15 + audio, three receivers side by side", flush=True)
        report["chromium"] = asyncio.run(part_chromium(args.rounds, args.window, args.warmup))
        print(json.dumps(report["chromium"], indent=2), flush=True)
    if not args.skip_capacity:
        print("part 2: concurrent two-party sessions on one recorder core", flush=True)
        report["capacity"] = asyncio.run(
            part_capacity(args.capacity_step, args.max_sessions, args.nice)
        )
        print(json.dumps(report["capacity"], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
