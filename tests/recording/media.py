"""Test media: real VP8/H.264 and Opus bitstreams made with PyAV's encoders (test side only),
and helpers that open a recording with PyAV and count what is really in it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
from av.video.codeccontext import VideoCodecContext

from vtax.recording.capture import EncodedFrame, is_keyframe


def vp8_frames(
    count: int,
    fps: int = 15,
    gop: int = 30,
    size: tuple[int, int] = (640, 360),
    codec: str = "libvpx",
    bit_rate: int = 0,
    patch_size: int = 64,
) -> list[tuple[bytes, bool]]:
    """`count` encoded video frames (data, keyframe) of a moving pattern."""
    enc = cast(VideoCodecContext, av.CodecContext.create(codec, "w"))  # codec: a video codec
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps, 1)
    enc.gop_size = gop
    if bit_rate:
        enc.bit_rate = bit_rate
    enc.options = (
        {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        if codec == "libvpx"
        else {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    )
    width, height = size
    base = bytes((x * 255 // width) for x in range(width)) * height  # a gradient
    side = patch_size
    patch = os.urandom(side * side)  # a textured square that moves: real motion to encode
    out: list[tuple[bytes, bool]] = []
    for i in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma = bytearray(base)
        x0, y0 = (i * 8) % (width - side), (i * 4) % (height - side)
        for row in range(side):
            start = (y0 + row) * width + x0
            luma[start : start + side] = patch[row * side : (row + 1) * side]
        frame.planes[0].update(bytes(luma))
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = i
        out += [(bytes(p), p.is_keyframe) for p in enc.encode(frame)]
    out += [(bytes(p), p.is_keyframe) for p in enc.encode(None)]
    return out


def opus_frames(count: int) -> list[bytes]:
    """`count` 20 ms Opus packets of a tone."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "stereo"
    enc.format = "s16"
    enc.time_base = Fraction(1, 48000)
    out: list[bytes] = []
    tone = bytes((i * 37) % 256 for i in range(960 * 4))
    for i in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = i * 960
        out += [bytes(p) for p in enc.encode(frame)]
    return out[:count]


def encoded(
    kind: str, codec: str, data: bytes, ts: int, arrival: float, continuous: bool = True
) -> EncodedFrame:
    return EncodedFrame(
        kind=kind,
        codec=codec,
        data=data,
        timestamp=ts,
        clock_rate=90000 if kind == "video" else 48000,
        keyframe=is_keyframe(codec, data),
        arrival=arrival,
        continuous=continuous,
    )


@dataclass
class Probe:
    streams: dict[str, str]  # kind -> codec name
    frames: dict[str, int]  # decoded frames per kind
    duration_s: float
    first_video_keyframe: bool
    width: int
    height: int
    channels: int


def probe(path: Path) -> Probe:
    """Open a recording with PyAV and decode every frame of every stream."""
    streams: dict[str, str] = {}
    frames = {"video": 0, "audio": 0}
    first_key: Any = None
    width = height = channels = 0
    end = 0.0
    with av.open(str(path)) as c:
        for s in c.streams:
            streams[s.type] = s.codec_context.name
        if c.streams.video:
            width = c.streams.video[0].codec_context.width
            height = c.streams.video[0].codec_context.height
        if c.streams.audio:
            channels = c.streams.audio[0].codec_context.channels
        for packet in c.demux():
            if packet.stream.type == "video" and packet.size and first_key is None:
                first_key = packet.is_keyframe
            if packet.pts is not None and packet.time_base is not None:
                dur = packet.duration or 0
                end = max(end, float((packet.pts + dur) * packet.time_base))
            for frame in packet.decode():
                frames[packet.stream.type] = frames.get(packet.stream.type, 0) + 1
                if isinstance(frame, av.VideoFrame) and frame.width:
                    width, height = frame.width, frame.height
    return Probe(streams, frames, end, bool(first_key), width, height, channels)
