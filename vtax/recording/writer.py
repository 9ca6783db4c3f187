"""The container writer: muxes received encoded frames into WebM (VP8 + Opus) or Matroska
(H.264), through PyAV, without decoding or encoding anything.

A segment's video starts on a keyframe: frames before the first keyframe are dropped (the
caller asks the sender for one with a PLI while `wants_keyframe` is set), and so are frames
after a packet loss until the next keyframe. Audio that arrives before the first keyframe is
kept and written once the container header is known (the VP8 keyframe gives the picture size).
Timestamps: each stream keeps its RTP timing; its first frame is placed at the arrival time
relative to the segment's first frame, which lines audio and video up within network jitter.
"""

from __future__ import annotations

import io
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vtax.recording.capture import EncodedFrame, h264_sps_size, vp8_keyframe_size
from vtax.recording.store import AudioTrackInfo, VideoTrackInfo

# OpusHead (RFC 7845 section 5.1): version 1, 2 channels (WebRTC's opus/48000/2), no pre-skip
# (the stream is not an encoder's first output), 48 kHz, 0 dB gain, mapping family 0.
OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 0, 48000, 0, 0)
VIDEO_CODECS = {"VP8": "vp8", "H264": "h264"}
MAX_EARLY_AUDIO = 3000  # 60 s of 20 ms Opus frames kept while waiting for the first keyframe


def opus_samples(data: bytes) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 section 3.1)."""
    if not data:
        return 960
    config, code = data[0] >> 3, data[0] & 0x03
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        size = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        size = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        size = (120, 240, 480, 960)[config & 3]
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = data[1] & 0x3F if len(data) > 1 else 1
    return size * max(count, 1)


def container_for(video_codec: str | None) -> tuple[str, str]:
    """(PyAV format, file extension): WebM for VP8 or audio only, Matroska for H.264."""
    if video_codec is not None and video_codec.upper() == "H264":
        return "matroska", "mkv"
    return "webm", "webm"


@dataclass
class _Track:
    stream: Any
    clock_rate: int
    offset: int | None = None  # added to the RTP timestamp to get the pts
    first_pts: int | None = None
    last_pts: int | None = None
    last_delta: int = 0
    frames: int = 0
    keyframes: int = 0

    def pts_for(self, frame: EncodedFrame, origin: float) -> int:
        if self.offset is None:
            at = max(0, round((frame.arrival - origin) * self.clock_rate))
            self.offset = at - frame.timestamp
        pts = frame.timestamp + self.offset
        if self.last_pts is not None:
            if pts <= self.last_pts:  # never let a muxer see time go backwards
                pts = self.last_pts + 1
            self.last_delta = pts - self.last_pts
        if self.first_pts is None:
            self.first_pts = pts
        self.last_pts = pts
        return pts

    def end_s(self) -> float:
        if self.last_pts is None:
            return 0.0
        return (self.last_pts + self.last_delta) / self.clock_rate

    def span_s(self) -> float:
        if self.first_pts is None:
            return 0.0
        return self.end_s() - self.first_pts / self.clock_rate


@dataclass
class SegmentResult:
    path: Path
    container: str
    started_at: datetime
    ended_at: datetime
    duration_s: float
    video: VideoTrackInfo | None
    audio: AudioTrackInfo | None
    note: str = ""


@dataclass
class SegmentWriter:
    """One participant's segment file. `add` frames on the event loop; `close` in a thread."""

    path_stem: Path  # folder / "<role>-<participant>-<nnn>"; the extension is chosen here
    video_codec: str | None  # "VP8" | "H264" | None (no video sent)
    audio_codec: str | None  # "opus" | None
    keyframe_wait_s: float = 10.0
    clock: Any = time.monotonic
    path: Path = field(init=False)
    container_format: str = field(init=False)
    _out: Any = field(default=None, init=False)
    _video: _Track | None = field(default=None, init=False)
    _audio: _Track | None = field(default=None, init=False)
    _early_audio: deque[EncodedFrame] = field(default_factory=deque, init=False)
    _origin: float | None = field(default=None, init=False)
    _created: float = field(init=False)
    _need_keyframe: bool = field(default=True, init=False)
    _video_given_up: bool = field(default=False, init=False)
    _closed: bool = field(default=False, init=False)
    _size: tuple[int, int] = field(default=(0, 0), init=False)
    dropped_before_keyframe: int = field(default=0, init=False)
    dropped_after_loss: int = field(default=0, init=False)
    notes: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.video_codec is not None and self.video_codec.upper() not in VIDEO_CODECS:
            self.notes.append(f"video codec {self.video_codec} not recorded")
            self.video_codec = None
        if self.audio_codec is not None and self.audio_codec.lower() != "opus":
            self.notes.append(f"audio codec {self.audio_codec} not recorded")
            self.audio_codec = None
        self.container_format, ext = container_for(self.video_codec)
        self.path = self.path_stem.with_name(f"{self.path_stem.name}.{ext}")
        self._created = self.clock()

    # ---- state -------------------------------------------------------------------------

    @property
    def wants_keyframe(self) -> bool:
        """True while video is expected and the next video frame must be a keyframe."""
        return self.video_codec is not None and not self._video_given_up and self._need_keyframe

    @property
    def opened(self) -> bool:
        return self._out is not None

    def give_up_video_if_late(self) -> bool:
        """No keyframe within keyframe_wait_s: start the segment with audio only."""
        if self._out is not None or self.video_codec is None or self._video_given_up:
            return False
        if self.clock() - self._created < self.keyframe_wait_s:
            return False
        self._video_given_up = True
        self.notes.append(f"no video keyframe within {self.keyframe_wait_s:g} s: audio only")
        if self.audio_codec is not None and self._early_audio:
            self._open()
        return True

    # ---- frames ------------------------------------------------------------------------

    def add(self, frame: EncodedFrame) -> None:
        if self._closed:
            return
        if frame.kind == "audio":
            if self.audio_codec is None:
                return
            if self._out is None:
                if self.video_codec is not None and not self._video_given_up:
                    self._early_audio.append(frame)
                    if len(self._early_audio) > MAX_EARLY_AUDIO:
                        self._early_audio.popleft()
                    return
                self._early_audio.append(frame)
                self._open()
                return
            self._write(self._audio, frame)
            return
        if self.video_codec is None or self._video_given_up:
            return
        if self._need_keyframe or (self._out is not None and not frame.continuous):
            if not frame.keyframe:
                if self._out is None:
                    self.dropped_before_keyframe += 1
                else:
                    self.dropped_after_loss += 1
                self._need_keyframe = True
                return
            self._need_keyframe = False
        if self._out is None:
            if self.video_codec.upper() == "VP8":
                self._size = vp8_keyframe_size(frame.data) or (0, 0)
            else:
                self._size = h264_sps_size(frame.data) or (0, 0)
            if 0 in self._size:  # a keyframe without its size: wait for the next one
                self._need_keyframe = True
                self.dropped_before_keyframe += 1
                return
            self._open(first_video=frame)
            return
        self._write(self._video, frame)

    def _open(self, first_video: EncodedFrame | None = None) -> None:
        candidates = [f.arrival for f in self._early_audio]
        if first_video is not None:
            candidates.append(first_video.arrival)
        self._origin = min(candidates)
        out = av.open(str(self.path), mode="w", format=self.container_format)
        try:
            if self.video_codec is not None and not self._video_given_up:
                width, height = self._size
                vs = out.add_mux_stream(
                    VIDEO_CODECS[self.video_codec.upper()], width=width, height=height
                )
                vs.time_base = Fraction(1, 1000)
                self._video = _Track(vs, 90000)
            if self.audio_codec is not None:
                self._audio = _Track(_add_opus_stream(out), 48000)
        except Exception:
            out.close()
            self.path.unlink(missing_ok=True)
            raise
        self._out = out
        early, self._early_audio = self._early_audio, deque()
        pending = sorted([*early, *([first_video] if first_video else [])], key=lambda f: f.arrival)
        for f in pending:
            self._write(self._video if f.kind == "video" else self._audio, f)

    def _write(self, track: _Track | None, frame: EncodedFrame) -> None:
        if track is None or self._origin is None:
            return
        pts = track.pts_for(frame, self._origin)
        packet = av.Packet(frame.data)
        packet.stream = track.stream
        packet.time_base = Fraction(1, track.clock_rate)
        packet.pts = packet.dts = pts
        if frame.kind == "audio":
            packet.duration = opus_samples(frame.data)  # the muxer keeps the last frame's end
        packet.is_keyframe = frame.keyframe
        self._out.mux(packet)
        track.frames += 1
        if frame.keyframe and frame.kind == "video":
            track.keyframes += 1

    # ---- end ---------------------------------------------------------------------------

    def close(self) -> SegmentResult | None:
        """Write the trailer. None (and no file) if no frame was ever written."""
        if self._closed:
            return None
        self._closed = True
        if self._out is None:
            return None
        self._out.close()
        assert self._origin is not None
        wall_origin = datetime.now(UTC) - timedelta(seconds=self.clock() - self._origin)
        tracks = [t for t in (self._video, self._audio) if t is not None]
        duration = max((t.end_s() for t in tracks), default=0.0)
        video = audio = None
        if self._video is not None:
            video = VideoTrackInfo(
                codec=self.video_codec or "",
                frames=self._video.frames,
                keyframes=self._video.keyframes,
                width=self._size[0],
                height=self._size[1],
                starts_with_keyframe=True,
                dropped_before_keyframe=self.dropped_before_keyframe,
                dropped_after_loss=self.dropped_after_loss,
                duration_s=round(self._video.span_s(), 3),
            )
        if self._audio is not None:
            audio = AudioTrackInfo(
                codec="opus", frames=self._audio.frames, duration_s=round(self._audio.span_s(), 3)
            )
        return SegmentResult(
            path=self.path,
            container=self.container_format,
            started_at=wall_origin,
            ended_at=wall_origin + timedelta(seconds=duration),
            duration_s=round(duration, 3),
            video=video,
            audio=audio,
            note="; ".join(self.notes),
        )


def _add_opus_stream(out: Any) -> Any:
    """An Opus stream with a proper OpusHead and channel count, and no encoder.

    PyAV 18's `add_mux_stream("opus")` leaves the channel count at 0 and the codec private
    data empty, so the WebM says 0 channels and has no OpusHead (browsers then refuse the
    audio). A stream copied from an (unopened) libopus encoder's stream carries the channel
    layout, is marked template-initialised so PyAV never opens an encoder for it, and takes
    our OpusHead as extradata.
    """
    scratch = av.open(io.BytesIO(), mode="w", format="webm")
    try:
        template = scratch.add_stream("libopus", rate=48000)
        stream = out.add_stream_from_template(template)
    finally:
        scratch.close()
    stream.codec_context.extradata = OPUS_HEAD
    stream.time_base = Fraction(1, 1000)
    return stream
