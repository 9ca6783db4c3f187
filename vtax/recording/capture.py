"""Encoded-frame capture from an aiortc RTCRtpReceiver, without decoding.

aiortc (1.16) hands a receiver's complete encoded frames, as they leave the jitter buffer, to a
decoder thread through a `queue.Queue`, and exposes only the decoded frames (aiortc issue 984).
`ReceiverTap` swaps two private objects of one receiver, before it starts receiving:

- the decoder queue, for an object whose `put()` passes each `(codec, JitterFrame)` straight to
  a sink on the event loop; the decoder thread, still started by aiortc, only ever gets the
  stop sentinel from it, so no frame is decoded and no thread hop happens per frame;
- the jitter buffer, for a subclass that also notes the RTP sequence numbers each frame spans,
  so a frame that does not follow the previous one without a gap is known (after a loss a
  decoder would error or show corruption; the recorder drops frames until the next keyframe).

NACKs, RTX, REMB and RTCP receiver reports stay aiortc's. Picture loss indications: aiortc still
sends one when its jitter buffer overflows or resets; since no decoder reports errors any more,
the recorder asks for a keyframe itself (`request_keyframe`) at the start of every segment and
after a loss. Installation checks the private attributes it needs and fails loudly if an aiortc
upgrade moved them (aiortc is pinned; tests/recording/test_capture.py covers this).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

log = logging.getLogger(__name__)

_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_STARTED_ATTR = "_RTCRtpReceiver__started"


class CaptureUnsupported(RuntimeError):
    """This aiortc version does not have the receiver internals the capture relies on."""


@dataclass(slots=True)
class EncodedFrame:
    """One complete encoded audio or video frame, as received."""

    kind: str  # "audio" | "video"
    codec: str  # "VP8", "H264", "opus", ...
    data: bytes
    timestamp: int  # RTP timestamp, unwrapped (aiortc maps it to start at 0)
    clock_rate: int
    keyframe: bool
    arrival: float  # time.monotonic() when the frame was complete
    continuous: bool  # no packet was lost between the previous frame and this one


FrameSink = Callable[[EncodedFrame], None]


# ---- bitstream facts (no decoding) -------------------------------------------------------


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if `data` is a VP8 key frame (RFC 6386 section 9.1), else None."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types in an Annex B byte stream (what aiortc's depayloader produces)."""
    types: list[int] = []
    i, n = 0, len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return types
        types.append(data[i + 3] & 0x1F)
        i += 3


class _Bits:
    """An RBSP bit reader with Exp-Golomb codes (H.264 section 9.1)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]  # IndexError on a truncated SPS
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def h264_sps_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SPS in an Annex B byte stream, else None."""
    i = 0
    while (i := data.find(b"\x00\x00\x01", i)) >= 0 and i + 3 < len(data):
        if data[i + 3] & 0x1F == 7:
            end = data.find(b"\x00\x00\x01", i + 3)
            nal = data[i + 4 : end if end >= 0 else len(data)]
            rbsp = nal.replace(b"\x00\x00\x03", b"\x00\x00")
            try:
                return _parse_sps(_Bits(rbsp))
            except (IndexError, ValueError):
                return None
        i += 3
    return None


def _parse_sps(b: _Bits) -> tuple[int, int]:
    profile = b.u(8)
    b.u(16)  # constraint flags, level
    b.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = b.ue()
        if chroma == 3:
            b.u(1)
        b.ue()
        b.ue()
        b.u(1)
        if b.u(1):  # seq_scaling_matrix_present_flag
            for n in range(8 if chroma != 3 else 12):
                if b.u(1):
                    last = nxt = 8
                    for _ in range(16 if n < 6 else 64):
                        if nxt:
                            nxt = (last + b.se() + 256) % 256
                        last = nxt or last
    b.ue()  # log2_max_frame_num_minus4
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1)
        b.se()
        b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue()  # max_num_ref_frames
    b.u(1)
    width_mbs, height_map = b.ue() + 1, b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)
    b.u(1)
    width, height = width_mbs * 16, height_map * 16 * (2 - frame_mbs_only)
    if b.u(1):  # frame_cropping_flag
        left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
        cx = 2 if chroma in (1, 2) else 1
        cy = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * cx
        height -= (top + bottom) * cy
    return width, height


def is_keyframe(codec: str, data: bytes) -> bool:
    name = codec.upper()
    if name == "VP8":
        return vp8_keyframe_size(data) is not None
    if name == "H264":
        return 5 in h264_nal_types(data)  # an IDR slice
    return True  # audio frames stand alone


# ---- the tap ------------------------------------------------------------------------------


class _SpanningJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, also noting on each frame the RTP sequence numbers
    [first_seq, end_seq) it was assembled from."""

    def __init__(self, like: JitterBuffer) -> None:
        super().__init__(
            capacity=like.capacity,
            prefetch=getattr(like, "_prefetch", 0),
            is_video=getattr(like, "_is_video", False),
        )

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        frame = super()._remove_frame(sequence_number)
        if frame is not None:
            frame.first_seq = origin  # type: ignore[attr-defined]
            frame.end_seq = self._origin  # type: ignore[attr-defined]
        return frame


class _FrameHandoff:
    """Takes the place of the receiver's decoder queue (see the module docstring)."""

    def __init__(self, deliver: Callable[[RTCRtpCodecParameters, JitterFrame], None]) -> None:
        self._deliver = deliver
        self._sentinel: queue.Queue[None] = queue.Queue()

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:  # aiortc stopping the decoder thread
            self._sentinel.put(None)
            return
        try:
            self._deliver(*item)
        except Exception:  # a sink bug must not kill aiortc's RTP handling
            log.exception("recording sink failed")

    def get(self, *args: Any, **kwargs: Any) -> None:
        return self._sentinel.get()  # the idle decoder thread blocks here until stop


class ReceiverTap:
    """Hands a receiver's encoded frames to `sink` instead of decoding them."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str, sink: FrameSink) -> None:
        for attr in (_QUEUE_ATTR, _JITTER_ATTR, _STARTED_ATTR):
            if not hasattr(receiver, attr):
                raise CaptureUnsupported(f"aiortc RTCRtpReceiver has no {attr}")
        if getattr(receiver, _STARTED_ATTR):
            raise CaptureUnsupported("the receiver already started: tap it on the track event")
        if not isinstance(getattr(receiver, _QUEUE_ATTR), queue.Queue):
            raise CaptureUnsupported("the receiver's decoder queue is not a queue.Queue")
        self.receiver = receiver
        self.kind = kind
        self.sink = sink
        self.frames = 0
        self.lost_gaps = 0
        self._end_seq: int | None = None
        setattr(receiver, _JITTER_ATTR, _SpanningJitterBuffer(getattr(receiver, _JITTER_ATTR)))
        setattr(receiver, _QUEUE_ATTR, _FrameHandoff(self._on_frame))

    def _on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        first = getattr(frame, "first_seq", None)
        continuous = self._end_seq is not None and first == self._end_seq
        if self._end_seq is not None and not continuous:
            self.lost_gaps += 1
        self._end_seq = getattr(frame, "end_seq", None)
        self.frames += 1
        self.sink(
            EncodedFrame(
                kind=self.kind,
                codec=codec.name,
                data=frame.data,
                timestamp=frame.timestamp,
                clock_rate=codec.clockRate,
                keyframe=is_keyframe(codec.name, frame.data),
                arrival=time.monotonic(),
                continuous=continuous,
            )
        )

    async def request_keyframe(self) -> bool:
        """Send an RTCP PLI for the stream's current SSRC; False if none is known yet."""
        rtx = getattr(self.receiver, "_RTCRtpReceiver__rtx_ssrc", {})
        sources = [s for s in self.receiver.getSynchronizationSources() if s.source not in rtx]
        if not sources:
            return False
        latest = max(sources, key=lambda s: s.timestamp)
        await self.receiver._send_rtcp_pli(latest.source)
        return True
