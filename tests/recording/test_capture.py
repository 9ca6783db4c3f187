"""The encoded-frame capture on two directly connected aiortc peers: frames arrive encoded (no
decoder runs), a PLI from the tap makes the sender send a keyframe, and the version guard."""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack

from tests.conftest import poll_until
from vtax.recording.capture import (
    CaptureUnsupported,
    EncodedFrame,
    ReceiverTap,
    h264_sps_size,
    vp8_keyframe_size,
)
from vtax.recording.writer import opus_samples


class PatternTrack(VideoStreamTrack):
    """Raw frames that aiortc encodes itself (so it honours PLI with a keyframe)."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(320, 180, "yuv420p")
        for i, plane in enumerate(frame.planes):
            plane.update(bytes([(pts // 3000 + 40 * i) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


async def connect(sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)


async def test_tap_hands_on_encoded_frames_and_pli_brings_a_keyframe() -> None:
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sender.addTransceiver(PatternTrack(), direction="sendonly")
    frames: list[EncodedFrame] = []
    taps: list[ReceiverTap] = []
    tracks: list[Any] = []

    @receiver.on("track")
    def on_track(track: Any) -> None:
        tracks.append(track)
        for t in receiver.getTransceivers():
            if t.receiver.track is track:
                taps.append(ReceiverTap(t.receiver, track.kind, frames.append))

    try:
        await connect(sender, receiver)
        await poll_until(lambda: len(frames) >= 15, 15)
        assert frames[0].keyframe and frames[0].codec == "VP8"
        assert vp8_keyframe_size(frames[0].data) == (320, 180)
        assert all(f.continuous for f in frames[1:])
        assert tracks[0]._queue.qsize() == 0  # nothing was decoded for the track
        # No keyframe comes by itself for a while...
        keys = sum(f.keyframe for f in frames)
        await asyncio.sleep(1.0)
        assert sum(f.keyframe for f in frames) == keys
        # ...and one comes right after a PLI.
        asked = time.monotonic()
        assert await taps[0].request_keyframe()
        key = await poll_until(
            lambda: next((f for f in frames if f.keyframe and f.arrival > asked), None), 3
        )
        assert key.arrival - asked < 1.0
    finally:
        await sender.close()
        await receiver.close()


async def test_tapping_a_started_receiver_is_refused() -> None:
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sender.addTransceiver(PatternTrack(), direction="sendonly")
    try:
        await connect(sender, receiver)
        await poll_until(lambda: receiver.connectionState == "connected", 15)
        rtp_receiver = receiver.getTransceivers()[0].receiver
        # aiortc has no public "started"; its private flag says the receiver runs.
        await poll_until(lambda: rtp_receiver._RTCRtpReceiver__started, 5)  # type: ignore[attr-defined]
        with pytest.raises(CaptureUnsupported):
            ReceiverTap(rtp_receiver, "video", lambda f: None)
    finally:
        await sender.close()
        await receiver.close()


def test_bitstream_facts() -> None:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 640, 360, "yuv420p"
    enc.time_base = fractions.Fraction(1, 15)
    frame = av.VideoFrame(640, 360, "yuv420p")
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*enc.encode(frame), *enc.encode(None)])
    assert h264_sps_size(data) == (640, 360)
    assert h264_sps_size(b"\x00\x00\x01\x67") is None  # truncated SPS: no size, no crash
    assert opus_samples(bytes([0xF8])) == 960  # CELT 20 ms, one frame
    assert opus_samples(bytes([0xF9])) == 1920  # two frames
    assert opus_samples(bytes([0x08])) == 960  # SILK 20 ms
