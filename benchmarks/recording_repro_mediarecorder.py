"""Minimal reproduction: aiortc 1.16 MediaRecorder + PyAV 18 writes an EMPTY video stream
(WebM, audio fine) whenever the first audio frame reaches it before the first video frame,
which is what always happens with a WebRTC peer (video needs a whole keyframe first).

Cause: the first audio packet muxed makes PyAV write the file header, which opens every
stream's encoder, libvpx included. On its first video frame MediaRecorder then sets
`stream.width = frame.width`; PyAV 18 raises `RuntimeError: Cannot change width after codec is
open` (even for the same value). That happens inside MediaRecorder's per-track task, which is
never awaited, so the error is silent and the video track records nothing from then on.

Workaround for a MediaRecorder baseline (used by benchmarks/recording_cpu.py): set the stream
size before start and mark the track context started, so MediaRecorder never assigns it.

Second finding, printed at the end: PyAV 18 `add_mux_stream("opus")` (a stream for muxing
encoded packets, no encoder) writes WebM with `Channels: 0` and no OpusHead codec-private
data; vtax.recording.writer copies the stream from an unopened libopus stream instead.

Run: .venv/bin/python benchmarks/recording_repro_mediarecorder.py
"""

from __future__ import annotations

import asyncio
import fractions
import sys
import tempfile
from pathlib import Path

import av
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRecorder


class Video(MediaStreamTrack):
    kind = "video"

    def __init__(self, width: int, height: int, delay: float) -> None:
        super().__init__()
        self.size, self.delay, self.n = (width, height), delay, 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(self.delay if self.n == 0 else 1 / 15)
        frame = av.VideoFrame(*self.size, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = self.n * 6000, fractions.Fraction(1, 90000)
        self.n += 1
        return frame


class Audio(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def recv(self) -> av.AudioFrame:
        await asyncio.sleep(0.02)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = 48000, self.n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


async def record(
    path: Path, width: int, height: int, video_delay: float, workaround: bool = False
) -> dict[str, int]:
    recorder = MediaRecorder(str(path))
    recorder.addTrack(Audio())
    video = Video(width, height, video_delay)
    recorder.addTrack(video)
    if workaround:
        presize(recorder, video, width, height)
    await recorder.start()
    await asyncio.sleep(2.0)
    await recorder.stop()
    counts = {"video": 0, "audio": 0}
    with av.open(str(path)) as c:
        for packet in c.demux():
            for _ in packet.decode():
                counts[packet.stream.type] += 1
    return counts


def presize(recorder: MediaRecorder, track: MediaStreamTrack, width: int, height: int) -> None:
    """The workaround: give the video stream its size up front, so MediaRecorder never sets
    it after the header opened the encoder."""
    context = recorder._MediaRecorder__tracks[track]  # type: ignore[attr-defined]
    context.stream.width, context.stream.height = width, height
    context.started = True


def first_error(path: Path, width: int, height: int) -> str:
    """What the swallowed task error is: the same steps as MediaRecorder, in the open."""
    out = av.open(str(path), "w")
    audio = out.add_stream("libopus")
    video = out.add_stream("libvpx", rate=30)
    frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
    frame.planes[0].update(bytes(frame.planes[0].buffer_size))
    frame.sample_rate, frame.pts = 48000, 0
    for packet in audio.encode(frame):
        out.mux(packet)  # writes the header: opens libvpx as well
    try:
        video.width, video.height = width, height  # what MediaRecorder does on frame 1
        return "no error"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        out.close()


def opus_mux_stream(path: Path) -> str:
    """What `add_mux_stream("opus")` puts in the WebM header."""
    out = av.open(str(path), "w", format="webm")
    out.add_mux_stream("opus", rate=48000)
    packet = av.Packet(bytes([0xF8, 0xFF, 0xFE]))  # one 20 ms CELT frame (silence)
    packet.stream, packet.pts, packet.dts = out.streams[0], 0, 0
    packet.time_base = fractions.Fraction(1, 48000)
    out.mux(packet)
    out.close()
    data = path.read_bytes()
    at = data.index(b"A_OPUS")
    channels = data[at:].index(b"\x9f\x81")  # EBML id Channels (0x9F), 1-byte size
    return f"Channels={data[at + channels + 2]}, OpusHead present: {b'OpusHead' in data}"


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("640x360, audio first (as from Chromium)", 640, 360, 0.3, False),
            ("640x480, audio first", 640, 480, 0.3, False),
            ("640x360, audio first, with the workaround", 640, 360, 0.3, True),
        ]
        empty = False
        for i, (name, w, h, delay, fix) in enumerate(cases):
            counts = await record(Path(tmp) / f"{i}.webm", w, h, delay, fix)
            print(f"{name:44s} -> decoded frames {counts}")
            empty |= i == 0 and counts["video"] == 0
        print("the swallowed error:", first_error(Path(tmp) / "e.webm", 640, 360))
        print("PyAV add_mux_stream('opus') in WebM:", opus_mux_stream(Path(tmp) / "o.webm"))
    print(f"aiortc {__import__('aiortc').__version__}, PyAV {av.__version__}")
    print("REPRODUCED: empty video stream" if empty else "not reproduced")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
