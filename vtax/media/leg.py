"""The media leg (worker side): fans a live call's media out to monitoring supervisors and
carries a whispering supervisor's voice to the agent, without decoding or encoding anything.

One `MonitorLeg` per monitored session, run by a `vtax recorder` process (`LegRunner`, bound to
the worker's Socket.IO clients). Peer connections, all answered by aiortc here:

- upstream, from the AGENT's page: five m-lines in this order: the agent's audio and video,
  the taxpayer's audio and video as the agent's page receives them (send-only from the page),
  and one audio m-line the page receives on (the whisper);
- one per monitoring supervisor: four m-lines the supervisor receives on (the same four
  sources, in the same order) and one it sends on (its microphone, for the whisper).

The frames are taken encoded from the receivers (`vtax.recording.capture.ReceiverTap`, as the
recorder does) and handed to aiortc senders as packets (`av.Packet`), which aiortc packetizes
without encoding (`RTCRtpSender` calls the codec's `pack`). A supervisor that joins, or loses
a packet, gets frames from the next keyframe on, which the leg asks the agent's page for (RTCP
PLI); a supervisor's own PLI is passed upstream the same way. The pages offer VP8 only, so
the codec is the same on both sides. benchmarks/monitor.py compares this with decoding once
and re-encoding for each supervisor (aiortc's MediaRelay); docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any, Protocol

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import candidate_from_sdp

from vtax.recording.capture import EncodedFrame, ReceiverTap

log = logging.getLogger(__name__)
SOURCES = ("agent-audio", "agent-video", "taxpayer-audio", "taxpayer-video")
KEYFRAME_ASK_S = 0.5
QUEUE_FRAMES = 90  # ~3 s of 30 fps video; a sender that falls further behind skips ahead
SDP_SESSION_ID = re.compile(r"^o=\S+ (\S+) ", re.MULTILINE)
Send = Callable[[str, str, dict[str, Any] | None], Awaitable[None]]


class LegClient(Protocol):
    """What the leg needs of the worker's Socket.IO client (socketio.AsyncClient): the domain
    does not import socketio."""

    def on(self, event: str, handler: Callable[..., Any]) -> Any: ...

    async def call(self, event: str, data: Any = None, *, timeout: int = 60) -> Any: ...  # noqa: ASYNC109 - socketio's own signature


class ForwardTrack(MediaStreamTrack):
    """Encoded frames in, `av.Packet`s out (aiortc sends them without encoding). Video starts
    at a keyframe and, after a lost frame, waits for the next one; timestamps stay monotonic
    across a change of source (a new upstream connection, another whisperer)."""

    def __init__(self, kind: str, ask_keyframe: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self.ask_keyframe = ask_keyframe
        self.queue: asyncio.Queue[EncodedFrame] = asyncio.Queue(QUEUE_FRAMES)
        self.need_keyframe = kind == "video"
        self.offset = 0
        self.last_out = -1
        self.forwarded = 0

    def push(self, frame: EncodedFrame) -> None:
        if self.readyState != "live":
            return
        if self.kind == "video":
            if not frame.continuous:
                self.need_keyframe = True
            if self.need_keyframe:
                if not frame.keyframe:
                    self.ask_keyframe()
                    return
                self.need_keyframe = False
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            if self.kind == "video":  # a reference frame is gone
                self.need_keyframe = True
                return
        self.queue.put_nowait(frame)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        frame = await self.queue.get()
        step = 3000 if frame.kind == "video" else 960
        if frame.timestamp + self.offset <= self.last_out:
            self.offset = self.last_out + step - frame.timestamp
        pts = frame.timestamp + self.offset
        self.last_out = pts
        packet = av.Packet(frame.data)
        packet.pts = pts
        packet.time_base = Fraction(1, frame.clock_rate)
        self.forwarded += 1
        return packet


class Fanout:
    """One source (e.g. the taxpayer's video): its upstream receiver, and the tracks it feeds."""

    def __init__(self, name: str, spawn: Callable[[Awaitable[Any]], Any]) -> None:
        self.name = name
        self.kind = name.rsplit("-", 1)[1]
        self.spawn = spawn
        self.tap: ReceiverTap | None = None
        self.tracks: set[ForwardTrack] = set()
        self.frames = 0
        self._asked = 0.0

    def on_frame(self, frame: EncodedFrame) -> None:
        self.frames += 1
        for track in list(self.tracks):
            track.push(frame)

    def ask_keyframe(self) -> None:
        now = time.monotonic()
        if self.tap is None or self.kind != "video" or now - self._asked < KEYFRAME_ASK_S:
            return
        self._asked = now
        self.spawn(self.tap.request_keyframe())

    def subscribe(self) -> ForwardTrack:
        track = ForwardTrack(self.kind, self.ask_keyframe)
        self.tracks.add(track)
        if self.kind == "video":
            self.ask_keyframe()
        return track

    def unsubscribe(self, track: ForwardTrack) -> None:
        self.tracks.discard(track)
        track.stop()


async def add_candidate(pc: RTCPeerConnection, data: dict[str, Any] | None) -> None:
    """A trickled browser candidate (RTCIceCandidateInit), or the end of them (None)."""
    text = str((data or {}).get("candidate") or "")
    if not text:
        with contextlib.suppress(Exception):
            await pc.addIceCandidate(None)  # type: ignore[arg-type]
        return
    try:
        candidate = candidate_from_sdp(text.split(":", 1)[1] if ":" in text else text)
    except (AssertionError, ValueError, IndexError):
        return
    candidate.sdpMid = data.get("sdpMid") if data else None
    candidate.sdpMLineIndex = data.get("sdpMLineIndex") if data else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    with contextlib.suppress(Exception):  # an unresolvable mDNS name, an unknown mid
        await pc.addIceCandidate(candidate)


def rtc_ice_servers(raw: list[dict[str, Any]]) -> list[RTCIceServer]:
    return [
        RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
        for s in raw
        if isinstance(s, dict) and s.get("urls")
    ]


def _offered(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the offer leaves to us (`sendonly`: we send on it)."""
    return getattr(transceiver, "_offerDirection", None)


class PeerLink:
    """One answered peer connection (the agent's, or one supervisor's) and its signals."""

    def __init__(self, leg: MonitorLeg, peer_id: str) -> None:
        self.leg, self.peer_id = leg, peer_id
        self.pc: RTCPeerConnection | None = None
        self.sdp_session: str | None = None
        self.lock = asyncio.Lock()
        self.pending: list[dict[str, Any] | None] = []
        self.outputs: list[tuple[Fanout, ForwardTrack]] = []
        self.whisper_out: ForwardTrack | None = None

    async def on_offer(self, data: dict[str, Any]) -> None:
        sdp = str(data.get("sdp") or "")
        match = SDP_SESSION_ID.search(sdp)
        session = match.group(1) if match else None
        if self.pc is None or session != self.sdp_session:
            await self.close()
            self.pc = self._new_pc()
            self.sdp_session = session
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.leg.attach_outputs(self, pc)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        await self.leg.send(self.peer_id, "answer", {"type": answer.type, "sdp": answer.sdp})
        pending, self.pending = self.pending, []
        for candidate in pending:
            await add_candidate(pc, candidate)

    async def on_candidate(self, data: dict[str, Any] | None) -> None:
        if self.pc is None or self.pc.remoteDescription is None:
            self.pending.append(data)
        else:
            await add_candidate(self.pc, data)

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=self.leg.ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for index, transceiver in enumerate(pc.getTransceivers()):
                if transceiver.receiver.track is track:
                    self.leg.tap_input(self, index, transceiver)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is self.pc and pc.connectionState == "failed":
                await self.leg.send(self.peer_id, "restart", None)

        return pc

    async def close(self) -> None:
        pc, self.pc = self.pc, None
        for fanout, track in self.outputs:
            fanout.unsubscribe(track)
        self.outputs = []
        if self.whisper_out is not None:
            self.whisper_out.stop()
            self.whisper_out = None
        self.leg.inputs_closed(self)
        if pc is not None:
            await pc.close()


class MonitorLeg:
    """One monitored session on this worker."""

    def __init__(
        self,
        session_id: str,
        leg_id: str,
        agent_id: str,
        ice_servers: list[Any],
        send: Send,
        spawn: Callable[[Awaitable[Any]], Any],
    ) -> None:
        self.session_id, self.leg_id, self.agent_id = session_id, leg_id, agent_id
        self.ice_servers, self._send, self.spawn = ice_servers, send, spawn
        self.sources = {name: Fanout(name, spawn) for name in SOURCES}
        self.links: dict[str, PeerLink] = {}
        self.monitors: set[str] = set()
        self.whisper_from: str | None = None
        self.whisper_frames = 0
        self.stopped = False

    async def send(self, to: str, kind: str, data: dict[str, Any] | None) -> None:
        with contextlib.suppress(Exception):
            await self._send(to, kind, data)

    # ---- wiring of tracks ------------------------------------------------------------------

    def attach_outputs(self, link: PeerLink, pc: RTCPeerConnection) -> None:
        """After the offer: put our tracks on the m-lines the page receives on."""
        if link.outputs or link.whisper_out is not None:
            return  # the same connection renegotiated: the tracks stay
        receiving = [t for t in pc.getTransceivers() if _offered(t) in ("sendonly", "sendrecv")]
        if link.peer_id == self.agent_id:
            for transceiver in receiving[:1]:  # the whisper m-line
                link.whisper_out = ForwardTrack("audio", lambda: None)
                transceiver.sender.replaceTrack(link.whisper_out)
                transceiver.direction = "sendonly"
            return
        for name, transceiver in zip(SOURCES, receiving, strict=False):
            fanout = self.sources[name]
            if transceiver.kind != fanout.kind:
                log.warning("monitor %s: m-line %s is not %s", link.peer_id, transceiver.mid, name)
                continue
            track = fanout.subscribe()
            transceiver.sender.replaceTrack(track)
            transceiver.direction = "sendonly"
            link.outputs.append((fanout, track))
            sender = transceiver.sender
            # The supervisor's browser asks for a keyframe (PLI): a packet-fed sender cannot
            # make one, so the leg asks the agent's page.
            forward = sender._send_keyframe

            def on_pli(forward: Callable[[], None] = forward, track: ForwardTrack = track) -> None:
                forward()
                track.need_keyframe = track.kind == "video"

            sender._send_keyframe = on_pli  # type: ignore[method-assign]

    def tap_input(self, link: PeerLink, index: int, transceiver: RTCRtpTransceiver) -> None:
        """A track the page sends us: a source (the agent's link) or a supervisor's voice."""
        kind = transceiver.kind
        if link.peer_id == self.agent_id:
            if index < len(SOURCES) and self.sources[SOURCES[index]].kind == kind:
                fanout = self.sources[SOURCES[index]]
                fanout.tap = ReceiverTap(transceiver.receiver, kind, fanout.on_frame)
            return
        if kind == "audio":
            monitor_id = link.peer_id

            def whisper(frame: EncodedFrame) -> None:
                agent = self.links.get(self.agent_id)
                if self.whisper_from == monitor_id and agent and agent.whisper_out:
                    self.whisper_frames += 1
                    agent.whisper_out.push(frame)

            ReceiverTap(transceiver.receiver, kind, whisper)

    def inputs_closed(self, link: PeerLink) -> None:
        if link.peer_id == self.agent_id:
            for fanout in self.sources.values():
                fanout.tap = None

    # ---- signals and membership -------------------------------------------------------------

    def handle_signal(self, msg: dict[str, Any]) -> None:
        sender = str(msg.get("from") or "")
        if self.stopped or not sender:  # the node relays only the agent's and monitors'
            return
        link = self.links.get(sender)
        if link is None:
            link = self.links[sender] = PeerLink(self, sender)
        kind, data = msg.get("type"), msg.get("data")

        async def apply() -> None:
            async with link.lock:
                if self.stopped:
                    return
                try:
                    if kind == "offer" and isinstance(data, dict):
                        await link.on_offer(data)
                    elif kind == "candidate":
                        await link.on_candidate(data if isinstance(data, dict) else None)
                except Exception:
                    log.exception("monitor signal %s from %s failed", kind, sender)

        self.spawn(apply())

    async def set_monitors(self, monitors: list[str], whisper_from: str | None) -> None:
        self.monitors = set(monitors)
        self.whisper_from = whisper_from if whisper_from in self.monitors else None
        for gone in [m for m in self.links if m != self.agent_id and m not in self.monitors]:
            link = self.links.pop(gone)
            async with link.lock:
                await link.close()

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for link in list(self.links.values()):
            async with link.lock:
                await link.close()
        self.links.clear()

    def counters(self) -> dict[str, Any]:
        return {
            "sources": {n: f.frames for n, f in self.sources.items()},
            "forwarded": {
                peer: [t.forwarded for _, t in link.outputs] for peer, link in self.links.items()
            },
            "whisper_frames": self.whisper_frames,
        }


class LegRunner:
    """The media-leg role of a worker process: jobs over the worker's Socket.IO clients."""

    def __init__(self, worker_id: str, capacity: int, spawn: Callable[[Awaitable[Any]], Any]):
        self.worker_id, self.capacity, self.spawn = worker_id, capacity, spawn
        self.legs: dict[str, MonitorLeg] = {}
        self.clients: dict[str, LegClient] = {}  # session id -> its client
        self.early: dict[str, dict[str, Any]] = {}  # `leg:monitors` that beat the join ack

    def register(self, client: LegClient) -> None:
        async def on_job(data: Any) -> None:
            if isinstance(data, dict):
                self.spawn(self.accept(client, data))

        async def on_signal(msg: Any) -> None:
            if isinstance(msg, dict):
                leg = self.legs.get(str(msg.get("session_id")))
                if leg is not None and self.clients.get(leg.session_id) is client:
                    leg.handle_signal(msg)

        async def on_monitors(msg: Any) -> None:
            if not isinstance(msg, dict):
                return
            leg = self.legs.get(str(msg.get("session_id")))
            if leg is None:
                if len(self.early) < 100:
                    self.early[str(msg.get("session_id"))] = msg
                return
            monitors = [str(m) for m in msg.get("monitors") or []]
            await leg.set_monitors(monitors, msg.get("whisper_from"))

        async def on_stop(msg: Any) -> None:
            if isinstance(msg, dict):
                await self.finish(str(msg.get("session_id")))

        client.on("monitor:job", on_job)
        client.on("monitor:signal", on_signal)
        client.on("leg:monitors", on_monitors)
        client.on("leg:stop", on_stop)

    async def hello(self, client: LegClient) -> None:
        with contextlib.suppress(Exception):
            await client.call(
                "leg:hello", {"worker": self.worker_id, "capacity": self.capacity}, timeout=5
            )

    async def accept(self, client: LegClient, job: dict[str, Any]) -> bool:
        session_id = str(job.get("session_id") or "")
        if not session_id or session_id in self.legs:
            return False
        ack = await client.call(
            "leg:join", {"session_id": session_id, "job_id": str(job.get("job_id"))}, timeout=10
        )
        if not ack or not ack.get("ok"):
            log.info("leg join %s refused: %s", session_id, (ack or {}).get("error"))
            return False

        async def send(to: str, kind: str, data: dict[str, Any] | None) -> None:
            payload = {"session_id": session_id, "to": to, "type": kind, "data": data}
            await client.call("monitor:signal", payload, timeout=10)

        leg = MonitorLeg(
            session_id,
            ack["leg_id"],
            ack["agent_id"],
            rtc_ice_servers(job.get("ice_servers") or []),
            send,
            self.spawn,
        )
        self.legs[session_id] = leg
        self.clients[session_id] = client
        latest = self.early.pop(session_id, None) or ack
        await leg.set_monitors(list(latest.get("monitors") or []), latest.get("whisper_from"))
        return True

    async def finish(self, session_id: str) -> None:
        leg = self.legs.pop(session_id, None)
        self.clients.pop(session_id, None)
        if leg is not None:
            await leg.stop()

    async def client_lost(self, client: LegClient) -> None:
        for session_id in [s for s, c in self.clients.items() if c is client]:
            await self.finish(session_id)

    async def close(self) -> None:
        for session_id in list(self.legs):
            await self.finish(session_id)


__all__ = ["Fanout", "ForwardTrack", "LegRunner", "MonitorLeg"]
