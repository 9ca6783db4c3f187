"""The recorder worker (`vtax recorder`): a separate process that joins consented sessions as
a hidden participant and writes each participant's media to disk without re-encoding.

It speaks the ordinary Socket.IO contract with a `recorder` token: it receives jobs
(`recording:job`, or from Redis when scaled out), joins with `recorder:join`, answers each
participant's send-only offer (`rtc:signal` with `to`), adds the candidates the browsers
trickle, and stops on `session:end`. aiortc sends no trickled candidates: its answer carries
all of them in the SDP.

One module of ~640 lines on purpose: the worker's life (connect, take jobs, join, answer
offers, stop, prune) is one state machine around one Socket.IO client and its peer
connections; split, each part would reach into the same per-session state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import socketio
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription, candidate_from_sdp

from vtax.auth import TokenIssuer
from vtax.config import Settings
from vtax.media.leg import LegRunner
from vtax.recording.capture import EncodedFrame, ReceiverTap
from vtax.recording.jobs import RecordingJob, RedisRecordingJobs
from vtax.recording.store import (
    Manifest,
    RecordingStore,
    Segment,
    append_audit,
    prune,
    segment_file_name,
    sha256_of,
)
from vtax.recording.writer import SegmentResult, SegmentWriter

log = logging.getLogger(__name__)
SDP_SESSION_ID = re.compile(r"^o=\S+ (\S+) ", re.MULTILINE)
PLI_INTERVAL_S = 0.5
RESTART_INTERVAL_S = 2.0
TICK_S = 0.25


def _received(sdp: str) -> list[Any]:
    """The m-lines of our answer we receive on."""
    return [
        m
        for m in SessionDescription.parse(sdp).media
        if m.port != 0 and m.direction in ("recvonly", "sendrecv", None)
    ]


def _screen_media(media: list[Any], screen_mid: str | None) -> Any:
    """The shared screen's m-line: the one the page names (`screen_mid` in its offer's data),
    else, for a page that does not name it, the second video m-line (docs/recording.md)."""
    if screen_mid is not None:
        return next((m for m in media if m.kind == "video" and m.rtp.muxId == screen_mid), None)
    videos = [m for m in media if m.kind == "video"]
    return videos[1] if len(videos) >= 2 else None


def _first_codec(media: Any) -> str | None:
    return next((c.name for c in media.rtp.codecs if c.name.lower() != "rtx"), None)


def negotiated_codecs(sdp: str, screen_mid: str | None = None) -> dict[str, str]:
    """kind -> codec name the remote side sends on its camera and microphone, from our answer
    (first non-RTX codec of each m-line we receive on; the shared screen's m-line is not one:
    a page without a camera sends its screen on the only video m-line there is)."""
    media = _received(sdp)
    screen = _screen_media(media, screen_mid)
    found: dict[str, str] = {}
    for m in media:
        codec = _first_codec(m) if m is not screen else None
        if codec is not None:
            found.setdefault(m.kind, codec)
    return found


def screen_codec(sdp: str, screen_mid: str | None = None) -> str | None:
    """The codec of the shared screen's m-line we receive on, None if the offer has none."""
    screen = _screen_media(_received(sdp), screen_mid)
    return _first_codec(screen) if screen is not None else None


def ice_servers(raw: list[dict[str, Any]]) -> list[RTCIceServer]:
    servers = []
    for s in raw:
        urls = s.get("urls")
        if urls:
            servers.append(RTCIceServer(urls, s.get("username"), s.get("credential")))
    return servers


@dataclass
class ParticipantLink:
    """One media participant's send-only peer connection to the recorder, and its segment."""

    session: SessionRecording
    participant_id: str
    role: str
    pc: RTCPeerConnection | None = None
    sdp_session: str | None = None
    taps: dict[str, ReceiverTap] = field(default_factory=dict)
    writer: SegmentWriter | None = None
    kinds: frozenset[str] = frozenset()
    # the shared screen: its own segment file, next to the camera's (docs/recording.md)
    screen_writer: SegmentWriter | None = None
    screen_mid: str | None = None  # the screen's m-line, as the page's offer names it
    pending_candidates: list[dict[str, Any] | None] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_pli: float = 0.0
    last_screen_pli: float = 0.0

    # ---- signaling -------------------------------------------------------------------

    async def on_offer(self, data: dict[str, Any]) -> None:
        sdp = str(data.get("sdp") or "")
        mid = data.get("screen_mid")
        # the page names its screen's m-line (a mid is a short token; anything else: unnamed)
        screen_mid = mid if isinstance(mid, str) and 0 < len(mid) <= 32 else None
        match = SDP_SESSION_ID.search(sdp)
        sdp_session = match.group(1) if match else None
        if self.pc is None or sdp_session != self.sdp_session:
            # A new peer connection (first, or after the participant resumed): new segment.
            await self.close_pc()
            self.pc = self._new_pc()
            self.sdp_session = sdp_session
        self.screen_mid = screen_mid  # before the tracks arrive (on_track reads it)
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        codecs = negotiated_codecs(answer.sdp, screen_mid)
        if frozenset(codecs) != self.kinds or (self.writer is None and codecs):
            await self.finish_segment()  # ready before any media can flow
            self.kinds = frozenset(codecs)
            # none: a page with neither camera nor microphone, only a screen to share
            self.writer = self.session.new_writer(self, codecs) if codecs else None
        screen = screen_codec(answer.sdp, screen_mid)
        if screen is not None and self.screen_writer is None:
            self.screen_writer = self.session.new_writer(self, {"video": screen}, track="screen")
        await self.session.signal(
            self.participant_id, "answer", {"type": answer.type, "sdp": answer.sdp}
        )
        for candidate in self.pending_candidates:
            await self._add_candidate(candidate)
        self.pending_candidates.clear()

    async def on_candidate(self, data: dict[str, Any] | None) -> None:
        if self.pc is None or self.pc.remoteDescription is None:
            self.pending_candidates.append(data)
            return
        await self._add_candidate(data)

    async def _add_candidate(self, data: dict[str, Any] | None) -> None:
        if self.pc is None:
            return
        text = str((data or {}).get("candidate") or "")
        if not text:  # end of candidates
            with contextlib.suppress(Exception):
                await self.pc.addIceCandidate(None)
            return
        try:
            candidate = candidate_from_sdp(text.split(":", 1)[1] if ":" in text else text)
        except (AssertionError, ValueError, IndexError):
            log.warning("ignoring a malformed candidate from %s", self.participant_id)
            return
        candidate.sdpMid = data.get("sdpMid") if data else None
        candidate.sdpMLineIndex = data.get("sdpMLineIndex") if data else None
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # an unresolvable mDNS name, an unknown mid
            log.info("candidate from %s not added: %s", self.participant_id, exc)

    def _new_pc(self) -> RTCPeerConnection:
        # MAX_BUNDLE: with aiortc's default (balanced), a second m-line of a kind keeps a
        # transport of its own that never starts (the shared screen's video would be lost).
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=self.session.ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            videos = [t for t in pc.getTransceivers() if t.kind == "video"]
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    # the shared screen's: the m-line the page named, else the second video
                    if self.screen_mid is not None:
                        screen = track.kind == "video" and transceiver.mid == self.screen_mid
                    else:
                        screen = track.kind == "video" and videos.index(transceiver) == 1
                    self.taps["screen" if screen else track.kind] = ReceiverTap(
                        transceiver.receiver,
                        track.kind,
                        self.on_screen_frame if screen else self.on_frame,
                    )

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is self.pc and pc.connectionState in ("failed", "closed"):
                async with self.lock:
                    if pc is self.pc:
                        await self.close_pc()
                await self.session.request_restart(self.participant_id)

        return pc

    # ---- media -----------------------------------------------------------------------

    def on_frame(self, frame: EncodedFrame) -> None:
        if self.writer is not None:
            self.writer.add(frame)
            self.session.worker.frames_received += 1

    def on_screen_frame(self, frame: EncodedFrame) -> None:
        if self.screen_writer is not None:
            self.screen_writer.add(frame)
            self.session.worker.frames_received += 1

    async def tick(self) -> None:
        """Ask for a keyframe while the segment needs one; give up video if none comes (not
        the screen's: it has frames only while the participant shares)."""
        writer, tap = self.writer, self.taps.get("video")
        now = time.monotonic()
        if writer is not None:  # none: a page with only a screen to share
            writer.give_up_video_if_late()
            if tap is not None and writer.wants_keyframe and now - self.last_pli >= PLI_INTERVAL_S:
                if await tap.request_keyframe():
                    self.last_pli = now
        screen, screen_tap = self.screen_writer, self.taps.get("screen")
        if screen is not None and screen_tap is not None and screen.wants_keyframe:
            if now - self.last_screen_pli >= PLI_INTERVAL_S and await screen_tap.request_keyframe():
                self.last_screen_pli = now

    async def finish_segment(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            result = await asyncio.to_thread(writer.close)
            if result is not None:
                await self.session.add_segment(self, result)
        screen, self.screen_writer = self.screen_writer, None
        if screen is not None:
            result = await asyncio.to_thread(screen.close)
            if result is not None:  # None: nothing was shared during this segment
                await self.session.add_segment(self, result, track="screen")

    async def close_pc(self) -> None:
        pc, self.pc = self.pc, None
        self.taps = {}
        self.sdp_session = None
        await self.finish_segment()
        self.kinds = frozenset()
        if pc is not None:
            await pc.close()


class SessionRecording:
    """One session being recorded by this worker."""

    def __init__(self, worker: RecorderWorker, job: RecordingJob, client: socketio.AsyncClient):
        self.worker = worker
        self.job = job
        self.client = client
        self.session_id = job.session_id
        self.ice_servers = ice_servers(job.ice_servers)
        self.participant_id = ""
        self.links: dict[str, ParticipantLink] = {}
        self.roles: dict[str, str] = {}
        started = datetime.fromisoformat(job.started_at)
        self.folder = worker.store.session_dir(self.session_id, started, create=True)
        self.manifest_lock = asyncio.Lock()
        self.manifest = worker.store.load_manifest(self.folder) or Manifest(
            session_id=self.session_id, started_at=started, consent=job.consent
        )
        self.segment_numbers: dict[str, int] = {}
        self.stopped = False
        self.joined = False
        self.restart_asked: dict[str, float] = {}
        self.early: list[dict[str, Any]] = []  # signals that beat the join ack

    async def join(self) -> bool:
        ack = await self.client.call(
            "recorder:join", {"session_id": self.session_id, "job_id": self.job.job_id}, timeout=10
        )
        if not ack or not ack.get("ok"):
            log.info("join %s refused: %s", self.session_id, (ack or {}).get("error"))
            return False
        self.participant_id = ack["participant_id"]
        for p in ack.get("participants", []):
            self.roles[p["participant_id"]] = p["role"]
            self.manifest.add_participant(p["participant_id"], p["role"])
        self.manifest.status = "recording"
        self.manifest.ended_at = None
        if self.worker.worker_id not in self.manifest.workers:
            self.manifest.workers.append(self.worker.worker_id)
        await self.save_manifest()
        self.joined = True
        early, self.early = self.early, []
        for msg in early:
            self.handle_signal(msg)
        return True

    async def signal(self, to: str, kind: str, data: dict[str, Any] | None) -> None:
        payload = {"session_id": self.session_id, "to": to, "type": kind, "data": data}
        ack = await self.client.call("rtc:signal", payload, timeout=10)
        if not ack or not ack.get("ok"):
            log.warning("rtc:signal to %s failed: %s", to, (ack or {}).get("error"))

    def handle_signal(self, msg: dict[str, Any]) -> None:
        """Queue one `rtc:signal` for its participant (processed in order, one at a time)."""
        if not self.joined:
            if len(self.early) < 200:
                self.early.append(msg)
            return
        sender = str(msg.get("from") or "")
        role = self.roles.get(sender)
        if self.stopped or role is None:
            return
        link = self.links.get(sender)
        if link is None:
            link = self.links[sender] = ParticipantLink(self, sender, role)
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
                    log.exception("signal %s from %s failed", kind, sender)

        self.worker.spawn(apply())

    def participant_joined(self, participant_id: str, role: str) -> None:
        self.roles[participant_id] = role

    async def request_restart(self, participant_id: str | None = None) -> None:
        """Ask a media participant (all of them if None) for a new peer connection, e.g. after
        a resume or a page reload; a page whose connection to us is healthy ignores it."""
        if self.stopped or not self.joined:
            return
        now = time.monotonic()
        targets = [participant_id] if participant_id else list(self.roles)
        for target in targets:
            if self.roles.get(target) not in ("taxpayer", "agent"):
                continue
            if now - self.restart_asked.get(target, 0.0) < RESTART_INTERVAL_S:
                continue
            self.restart_asked[target] = now
            with contextlib.suppress(Exception):
                await self.signal(target, "restart", None)

    def new_writer(
        self, link: ParticipantLink, codecs: dict[str, str], track: str = "camera"
    ) -> SegmentWriter:
        key = link.participant_id if track == "camera" else f"{link.participant_id}:{track}"
        number = max(self.manifest.next_segment(link.participant_id, track),
                     self.segment_numbers.get(key, 0) + 1)  # fmt: skip
        self.segment_numbers[key] = number
        owner = link.participant_id if track == "camera" else f"{link.participant_id}-{track}"
        name = segment_file_name(link.role, owner, number, "webm")
        return SegmentWriter(
            self.folder / name.removesuffix(".webm"),
            video_codec=codecs.get("video"),
            audio_codec=codecs.get("audio"),
            keyframe_wait_s=self.worker.settings.recording_keyframe_wait_s,
        )

    async def add_segment(
        self, link: ParticipantLink, result: SegmentResult, track: str = "camera"
    ) -> None:
        digest = await asyncio.to_thread(sha256_of, result.path)
        number = int(result.path.stem.rsplit("-", 1)[1])
        segment = Segment(
            file=result.path.name,
            participant_id=link.participant_id,
            role=link.role,
            segment=number,
            container="matroska" if result.container == "matroska" else "webm",
            started_at=result.started_at,
            ended_at=result.ended_at,
            duration_s=result.duration_s,
            video=result.video,
            audio=result.audio,
            bytes=result.path.stat().st_size,
            sha256=digest,
            note=result.note,
            track=track,  # type: ignore[arg-type]
        )
        async with self.manifest_lock:
            self.manifest.add_participant(link.participant_id, link.role)
            self.manifest.segments.append(segment)
        await self.save_manifest()
        log.info(
            "segment %s: %.1f s, video %s frames, audio %s frames",
            segment.file,
            segment.duration_s,
            segment.video.frames if segment.video else "-",
            segment.audio.frames if segment.audio else "-",
        )

    async def save_manifest(self) -> None:
        async with self.manifest_lock:
            snapshot = self.manifest.model_copy(deep=True)
        await asyncio.to_thread(self.worker.store.save_manifest, self.folder, snapshot)

    async def tick(self) -> None:
        for link in list(self.links.values()):
            await link.tick()

    async def stop(self, status: str = "complete") -> None:
        if self.stopped:
            return
        self.stopped = True
        for link in list(self.links.values()):
            async with link.lock:
                await link.close_pc()
        async with self.manifest_lock:
            self.manifest.status = status  # type: ignore[assignment]
            self.manifest.ended_at = datetime.now(UTC)
        await self.save_manifest()
        manifest_path = self.worker.store.relative(self.folder / "manifest.json")
        with contextlib.suppress(Exception):
            if self.client.connected:
                await self.client.call(
                    "recorder:saved",
                    {
                        "session_id": self.session_id,
                        "manifest": manifest_path,
                        "segments": len(self.manifest.segments),
                        "status": status,
                    },
                    timeout=5,
                )


class RecorderWorker:
    """Connects to signaling node(s), takes jobs, records sessions."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        capacity: int | None = None,
        worker_id: str | None = None,
        use_redis: bool | None = None,
    ) -> None:
        self.settings = settings
        self.url = url.rstrip("/")
        self.capacity = capacity or settings.recorder_capacity
        self.worker_id = worker_id or (
            f"recorder-{socket.gethostname()[:24]}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        self.store = RecordingStore(settings.recordings_dir)
        self.issuer = TokenIssuer(settings.signing_key(), max(settings.token_ttl_s, 24 * 3600))
        self.use_redis = bool(settings.redis_url) if use_redis is None else use_redis
        self.clients: dict[str, socketio.AsyncClient] = {}
        self.sessions: dict[str, SessionRecording] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.frames_received = 0
        self.ready = asyncio.Event()
        self._stopping = False
        # The media-leg role (monitoring supervisors; vtax/media/leg.py) rides on the same
        # connections.
        self.legs = LegRunner(self.worker_id, self.capacity, self.spawn)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ---- connections -----------------------------------------------------------------

    async def client_for(self, url: str) -> socketio.AsyncClient:
        url = (url or self.url).rstrip("/")
        client = self.clients.get(url)
        if client is not None and client.connected:
            return client
        client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5)
        self._register(client, url)
        delay = 0.2
        while True:
            try:
                await client.connect(
                    url,
                    auth=lambda: {"token": self.issuer.issue(self.worker_id, "recorder")},
                    transports=["websocket"],
                    wait_timeout=5,
                )
                break
            except socketio.exceptions.ConnectionError as exc:
                if self._stopping:
                    raise
                log.info("recorder: %s not reachable yet (%s); retrying", url, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.clients[url] = client
        return client

    def _register(self, client: socketio.AsyncClient, url: str) -> None:
        async def on_connect() -> None:
            if not self.use_redis:
                self.spawn(self._hello(client))
            if self.settings.monitor_allowed:
                self.spawn(self.legs.hello(client))

        async def on_job(data: Any) -> None:
            try:
                job = RecordingJob.model_validate(data)
            except ValueError:
                log.warning("ignoring a malformed job")
                return
            self.spawn(self.accept(job, client))

        async def on_signal(msg: Any) -> None:
            if isinstance(msg, dict):
                rec = self.sessions.get(str(msg.get("session_id")))
                if rec is not None and rec.client is client:
                    rec.handle_signal(msg)

        async def on_participant(msg: Any) -> None:
            if isinstance(msg, dict):
                rec = self.sessions.get(str(msg.get("session_id")))
                if rec is not None and msg.get("state") == "joined":
                    rec.participant_joined(str(msg.get("participant_id")), str(msg.get("role")))

        async def on_peer(msg: Any) -> None:
            # A participant came back (resume): it may need a new connection to us.
            if isinstance(msg, dict) and msg.get("state") == "back":
                rec = self.sessions.get(str(msg.get("session_id")))
                if rec is not None:
                    self.spawn(rec.request_restart())

        async def on_end(msg: Any) -> None:
            if isinstance(msg, dict):
                self.spawn(self.finish(str(msg.get("session_id"))))

        async def on_disconnect(*_: Any) -> None:
            # Our hidden participant is gone from the node: the node re-dispatches the job.
            for rec in [r for r in self.sessions.values() if r.client is client]:
                self.spawn(self.finish(rec.session_id, "interrupted"))
            self.spawn(self.legs.client_lost(client))

        client.on("connect", on_connect)
        client.on("recording:job", on_job)
        client.on("rtc:signal", on_signal)
        client.on("session:participant", on_participant)
        client.on("session:peer", on_peer)
        client.on("session:end", on_end)
        client.on("recording:stop", on_end)
        client.on("disconnect", on_disconnect)
        self.legs.register(client)

    async def _hello(self, client: socketio.AsyncClient) -> None:
        with contextlib.suppress(Exception):
            await client.call(
                "recorder:hello",
                {"worker": self.worker_id, "capacity": self.capacity, "active": len(self.sessions)},
                timeout=5,
            )
            self.ready.set()

    # ---- jobs ------------------------------------------------------------------------

    async def accept(self, job: RecordingJob, client: socketio.AsyncClient | None = None) -> bool:
        if job.expired() or job.session_id in self.sessions:
            return False
        if client is None:
            client = await self.client_for(job.node_url or self.url)
        rec = SessionRecording(self, job, client)
        self.sessions[job.session_id] = rec
        try:
            joined = await rec.join()
        except Exception:
            log.exception("joining %s failed", job.session_id)
            joined = False
        if not joined:
            self.sessions.pop(job.session_id, None)
            rec.stopped = True
            with contextlib.suppress(OSError):  # leave no empty folder behind
                rec.folder.rmdir()
        return joined

    async def finish(self, session_id: str, status: str = "complete") -> None:
        rec = self.sessions.get(session_id)
        if rec is None:
            return
        await rec.stop(status)
        self.sessions.pop(session_id, None)

    async def _redis_loop(self) -> None:
        from vtax.redis_client import connect

        redis = connect(str(self.settings.redis_url), max_connections=4)
        jobs = RedisRecordingJobs(
            redis, self.settings.redis_prefix, job_ttl_s=self.settings.recording_job_ttl_s
        )
        try:
            while not self._stopping:
                if len(self.sessions) >= self.capacity:
                    await asyncio.sleep(0.2)
                    continue
                try:
                    # Leased: if we die before joining, the job goes to another worker.
                    job = await jobs.take(
                        lease_s=self.settings.recording_job_lease_s, timeout_s=1.0
                    )
                except Exception as exc:
                    log.warning("redis job take failed: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                if job is not None:
                    self.spawn(self.accept(job))
        finally:
            await redis.aclose()

    async def _ticker(self) -> None:
        while not self._stopping:
            await asyncio.sleep(TICK_S)
            for rec in list(self.sessions.values()):
                try:
                    await rec.tick()
                except Exception:
                    log.exception("tick for %s failed", rec.session_id)

    async def _pruner(self) -> None:
        days = self.settings.recording_retention_days
        while not self._stopping:
            try:
                removed = await asyncio.to_thread(prune, self.store, days)
                for session_id, folder in removed:
                    await asyncio.to_thread(
                        append_audit,
                        self.store.root,
                        "recording_pruned",
                        session_id=session_id,
                        folder=str(folder.name),
                        retention_days=days,
                        by=self.worker_id,
                    )
            except Exception:
                log.exception("scheduled prune failed")
            await asyncio.sleep(self.settings.recording_prune_interval_s)

    async def run(self, stop: asyncio.Event, *, prune_schedule: bool = True) -> None:
        """Run until `stop` is set; then finish every recording (status `interrupted`)."""
        loops: list[Callable[[], Awaitable[None]]] = [self._ticker]
        if prune_schedule:
            loops.append(self._pruner)
        if self.use_redis:
            loops.append(self._redis_loop)
            if self.settings.monitor_allowed:  # legs come over a standing connection
                await self.client_for(self.url)
            self.ready.set()
        else:
            await self.client_for(self.url)
        background = [asyncio.ensure_future(loop()) for loop in loops]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            for session_id in list(self.sessions):
                await self.finish(session_id, "interrupted")
            await self.legs.close()
            # The Redis loop ends by itself within its take timeout (cancelling a Redis call
            # would leave its connection dangling); the others sleep and are cancelled.
            for loop, task in zip(loops, background, strict=True):
                if loop != self._redis_loop:
                    task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for client in self.clients.values():
                with contextlib.suppress(Exception):
                    await client.disconnect()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)


def serve_recorder(settings: Settings, url: str, capacity: int | None = None) -> int:
    """`vtax recorder`: run a worker until SIGINT/SIGTERM."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        worker = RecorderWorker(settings, url, capacity=capacity)
        log.info("recorder %s for %s (capacity %d)", worker.worker_id, url, worker.capacity)
        await worker.run(stop)

    asyncio.run(main())
    return 0


def default_node_url(settings: Settings) -> str:
    if settings.recorder_url:
        return settings.recorder_url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


__all__ = ["RecorderWorker", "default_node_url", "serve_recorder"]
