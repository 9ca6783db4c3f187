"""Recording, server side: the taxpayer's consent, recording jobs for recorder workers, the
recorder's join into a live session, and the supervisor-only playback endpoint.

No aiortc here: the media work happens in `vtax recorder` processes (vtax/recording/worker.py).
See docs/recording.md for the flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import importlib
import logging
import os
import re
import secrets
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from signaling.context import CONTEXT
from signaling.http_api import ApiError, json_response, principal
from signaling.hub import Ack, Connection, Hub
from vtax.app.calls import Calls
from vtax.config import Settings
from vtax.contract import client_events as ce
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.live import LiveSession
from vtax.recording.jobs import RecordingJob, push_redis, state_key
from vtax.recording.store import (
    CONTENT_TYPES,
    SEGMENT_FILE,
    SESSION_ID,
    RecordingStore,
    StorageError,
    append_audit,
)
from vtax.review.records import Actor

log = logging.getLogger(__name__)
TICKET_TTL_S = 600
_SUBJECT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class RecorderConn:
    """A recorder worker connected to this node (embedded dispatch)."""

    sid: str
    worker: str
    capacity: int
    active: set[str] = field(default_factory=set)


class RecordingState(BaseModel):
    """What one live session's recording is doing."""

    session_id: str
    consent: bool | None = None
    job: RecordingJob | None = None
    recorder_sid: str | None = None
    recorder_participant: str | None = None


class StateStore:
    """Recording states: in memory on the embedded default; in Redis when nodes scale out,
    so the node that takes the consent and the node the recorder joins through agree."""

    def __init__(self, redis: Any = None, prefix: str = "vtax:") -> None:
        self.redis, self.prefix = redis, prefix
        self.memory: dict[str, RecordingState] = {}

    async def get(self, session_id: str) -> RecordingState | None:
        if self.redis is None:
            state = self.memory.get(session_id)
            return state.model_copy(deep=True) if state else None
        raw = await self.redis.get(state_key(self.prefix, session_id))
        return RecordingState.model_validate_json(raw) if raw else None

    async def put(self, state: RecordingState) -> None:
        if self.redis is None:
            self.memory[state.session_id] = state.model_copy(deep=True)
            return
        await self.redis.set(
            state_key(self.prefix, state.session_id), state.model_dump_json(), ex=86400
        )

    async def delete(self, session_id: str) -> RecordingState | None:
        state = await self.get(session_id)
        if self.redis is None:
            self.memory.pop(session_id, None)
        else:
            await self.redis.delete(state_key(self.prefix, session_id))
        return state


class Recording:
    """Registered on the hub and the relay by `setup_recording`; kept on the app."""

    def __init__(self, hub: Hub, relay: Calls, settings: Settings, redis: Any = None) -> None:
        self.hub, self.relay, self.settings = hub, relay, settings
        self.store = RecordingStore(settings.recordings_dir)
        self.redis = redis
        self.states = StateStore(redis, settings.redis_prefix)
        self.recorders: dict[str, RecorderConn] = {}  # embedded dispatch: sid -> worker
        self.joined_here: dict[str, set[str]] = {}  # recorder sid -> sessions joined via me
        self.pending: deque[RecordingJob] = deque()
        self._ticket_key = hashlib.sha256(
            b"vtax recording ticket\0" + settings.signing_key().encode()
        ).digest()
        hub.event(ce.SessionConsent.event, ce.SessionConsent, ce.SessionConsent.roles, self.consent)
        hub.event(ce.RecorderHello.event, ce.RecorderHello, ce.RecorderHello.roles, self.hello)
        hub.event(ce.RecorderJoin.event, ce.RecorderJoin, ce.RecorderJoin.roles, self.join)
        hub.event(ce.RecorderSaved.event, ce.RecorderSaved, ce.RecorderSaved.roles, self.saved)
        relay.on_started.append(self.session_started)
        relay.on_session_ended.append(self.session_ended)
        hub.disconnect_hooks.append(self.on_disconnect)

    # ---- audit -------------------------------------------------------------------------

    async def audit(self, session_id: str, kind: str, actor: Actor, **data: Any) -> None:
        """Append to the session's audit log (session_events) and to the recordings' own
        trail (recordings/audit.jsonl, which also keeps what outlives a session row: prunes)."""
        await asyncio.to_thread(
            append_audit,
            self.store.root,
            kind,
            session_id=session_id,
            actor_role=actor.role,
            actor_id=actor.id,
            **data,
        )
        sessionmaker = getattr(self.relay.records, "sessionmaker", None)
        if sessionmaker is None:
            return
        try:
            # vtax.review.audit is the review module's append-only log (imported late: it is
            # that module's API, present when its records store offers `sessionmaker`).
            session_audit = importlib.import_module("vtax.review.audit")
            async with sessionmaker() as db, db.begin():
                session_audit.append(db, session_id, datetime.now(UTC), actor, kind, data)
        except Exception:
            log.exception("session audit of %s failed", kind)

    # ---- notifications -------------------------------------------------------------------

    async def notify(self, live: LiveSession, state: str, **extra: Any) -> None:
        """`session:recording` to the media participants (not the recorder)."""
        sids = [p.sid for p in live.media_participants() if p.sid and p.state == "connected"]
        payload = {"session_id": live.id, "state": state, **extra}
        await self.hub.send("session:recording", payload, sids)

    async def session_started(self, live: LiveSession) -> None:
        if self.settings.recording_mode == "off":
            return
        await self.states.put(RecordingState(session_id=live.id))
        for p in live.media_participants():
            if p.sid is None:
                continue
            payload = {
                "session_id": live.id,
                "state": "consent_requested" if p.role == "taxpayer" else "awaiting_consent",
                "on_refusal": self.settings.recording_on_refusal,
            }
            await self.hub.send("session:recording", payload, [p.sid])

    async def session_ended(self, live: LiveSession, reason: str) -> None:
        await self.states.delete(live.id)
        self.pending = deque(j for j in self.pending if j.session_id != live.id)
        for rec in self.recorders.values():
            rec.active.discard(live.id)
        for sessions in self.joined_here.values():
            sessions.discard(live.id)
        # A joined recorder is a participant: the relay already sent it `session:end`.

    # ---- consent -------------------------------------------------------------------------

    async def consent(self, conn: Connection, p: ce.SessionConsent) -> Ack:
        live = await self.relay.get(p.session_id)
        me = live.participant_of(conn.principal.subject, "taxpayer") if live else None
        if live is None or me is None or me.sid != conn.sid:
            raise DomainError("not_in_session", "you are not the taxpayer of that live session")
        if self.settings.recording_mode == "off":
            raise DomainError("invalid_state", "recording is switched off on this service")
        state = await self.states.get(live.id) or RecordingState(session_id=live.id)
        actor = Actor("taxpayer", me.subject)
        if state.consent is p.recording:
            return {"recording": self._public_state(state)}
        withdrawn = state.consent is True and not p.recording
        state.consent = p.recording
        if p.recording:
            await self.audit(live.id, "recording_consent", actor, participant_id=me.id)
            await self._start(live, state, me.subject)
            return {"recording": self._public_state(state)}
        kind = "recording_consent_withdrawn" if withdrawn else "recording_refused"
        policy = self.settings.recording_on_refusal
        await self.audit(live.id, kind, actor, participant_id=me.id, policy=policy)
        await self._stop(live, state)
        if policy == "end":
            await self.notify(live, "refused", session_continues=False)
            await self.relay.end(live.id, "recording_refused", "completed", me)
            return {"recording": "refused", "session_ended": True}
        await self.notify(live, "refused", session_continues=True)
        return {"recording": "refused", "session_ended": False}

    @staticmethod
    def _public_state(state: RecordingState) -> str:
        if state.consent is False:
            return "refused"
        if state.recorder_participant is not None:
            return "recording"
        return "starting" if state.consent else "consent_requested"

    async def _start(self, live: LiveSession, state: RecordingState, taxpayer_id: str) -> None:
        now = datetime.now(UTC)
        state.job = RecordingJob(
            session_id=live.id,
            started_at=datetime.fromtimestamp(live.started_at, UTC).isoformat(),
            consent={"at": now.isoformat(), "taxpayer_id": taxpayer_id},
            ice_servers=ice_servers(self.settings, "recorder"),
            expires_at=time.time() + self.settings.recording_job_ttl_s,
        )
        await self.states.put(state)
        await self.notify(live, "starting")
        await self.dispatch(state.job)

    async def _stop(self, live: LiveSession, state: RecordingState) -> None:
        state.job = None
        self.pending = deque(j for j in self.pending if j.session_id != live.id)
        sid, participant = state.recorder_sid, state.recorder_participant
        state.recorder_sid = state.recorder_participant = None
        await self.states.put(state)
        if sid is not None and participant is not None:
            await self.hub.send("recording:stop", {"session_id": live.id}, [sid])
            await self.relay.remove_participant(live.id, participant)
            self.joined_here.get(sid, set()).discard(live.id)
            if sid in self.recorders:
                self.recorders[sid].active.discard(live.id)

    # ---- jobs ----------------------------------------------------------------------------

    async def dispatch(self, job: RecordingJob) -> None:
        if self.redis is not None:
            await push_redis(self.redis, self.settings.redis_prefix, job)
            return
        free = [r for r in self.recorders.values() if len(r.active) < r.capacity]
        if not free:
            log.warning("no recorder worker with free capacity: job for %s waits", job.session_id)
            self.pending.append(job)
            return
        rec = min(free, key=lambda r: len(r.active) / r.capacity)
        rec.active.add(job.session_id)
        await self.hub.send("recording:job", job.model_dump(), [rec.sid])

    async def hello(self, conn: Connection, p: ce.RecorderHello) -> Ack:
        self.recorders[conn.sid] = RecorderConn(conn.sid, p.worker, p.capacity)
        waiting, self.pending = self.pending, deque()
        for job in waiting:
            state = await self.states.get(job.session_id)
            if state and state.job and state.job.job_id == job.job_id and not job.expired():
                await self.dispatch(job)
        return {}

    async def join(self, conn: Connection, p: ce.RecorderJoin) -> Ack:
        live = await self.relay.get(p.session_id)
        state = await self.states.get(p.session_id)
        if live is None or state is None:
            raise DomainError("not_found", "no such live session")
        if not state.consent or state.job is None or state.job.job_id != p.job_id:
            raise DomainError("invalid_state", "that recording job is not current")
        if state.recorder_participant is not None:
            raise DomainError("invalid_state", "another recorder already joined")
        participant = await self.relay.add_participant(
            live.id, "recorder", conn.principal.subject, conn.sid
        )
        state.recorder_sid, state.recorder_participant = conn.sid, participant.id
        await self.states.put(state)
        self.joined_here.setdefault(conn.sid, set()).add(live.id)
        if conn.sid in self.recorders:
            self.recorders[conn.sid].active.add(live.id)
        worker = self.recorders[conn.sid].worker if conn.sid in self.recorders else ""
        await self.audit(
            live.id,
            "recording_started",
            Actor("recorder", conn.principal.subject),
            recorder_participant_id=participant.id,
            worker=worker,
        )
        await self.notify(live, "recording", recorder_participant_id=participant.id)
        media = [{"participant_id": x.id, "role": x.role} for x in live.media_participants()]
        return {"participant_id": participant.id, "participants": media}

    async def saved(self, conn: Connection, p: ce.RecorderSaved) -> Ack:
        folder = self.store.find_session_dir(p.session_id)
        expected = self.store.relative(folder / "manifest.json") if folder else None
        if expected != p.manifest:
            raise DomainError("not_found", "no such recording manifest")
        actor = Actor("recorder", conn.principal.subject)
        link = getattr(self.relay.records, "set_recording", None)
        if link is not None:
            with contextlib.suppress(DomainError):  # the session row is gone: audit below
                await link(p.session_id, p.manifest, datetime.now(UTC), actor)
        await self.audit(
            p.session_id,
            "recording_saved",
            actor,
            manifest=p.manifest,
            segments=p.segments,
            status=p.status,
        )
        return {}

    async def on_disconnect(self, conn: Connection) -> None:
        if conn.principal.role != "recorder":
            return
        rec = self.recorders.pop(conn.sid, None)
        joined = self.joined_here.pop(conn.sid, set())
        dispatched = rec.active - joined if rec else set()
        for session_id in sorted(joined | dispatched):
            state = await self.states.get(session_id)
            live = await self.relay.get(session_id)
            if state is None or live is None or not state.consent:
                continue
            if session_id in joined and state.recorder_sid == conn.sid:
                participant = state.recorder_participant
                state.recorder_sid = state.recorder_participant = None
                if participant is not None:
                    await self.relay.remove_participant(live.id, participant)
                await self.audit(
                    live.id, "recording_interrupted", Actor("recorder", conn.principal.subject)
                )
                await self.notify(live, "interrupted")
            if state.job is not None and state.recorder_participant is None:
                # Another worker (or this one, back) continues in new segments.
                state.job = state.job.model_copy(
                    update={
                        "job_id": "j-" + secrets.token_hex(8),
                        "expires_at": time.time() + self.settings.recording_job_ttl_s,
                    }
                )
                await self.states.put(state)
                await self.dispatch(state.job)

    # ---- playback --------------------------------------------------------------------------

    def ticket(self, session_id: str, name: str, subject: str, now: float | None = None) -> str:
        """A short-lived signed permission to fetch one file (for <video src>, which cannot
        send an Authorization header). Bound to the file and the supervisor."""
        expires = int((now or time.time()) + TICKET_TTL_S)
        mac = hmac.new(
            self._ticket_key, f"{session_id}/{name}|{expires}|{subject}".encode(), "sha256"
        )
        return f"{expires}~{subject}~{mac.hexdigest()}"

    def ticket_subject(self, session_id: str, name: str, ticket: str) -> str | None:
        parts = ticket.split("~")
        if len(parts) != 3 or not parts[0].isdigit() or not _SUBJECT.match(parts[1]):
            return None
        expires, subject, mac = int(parts[0]), parts[1], parts[2]
        if expires < time.time():
            return None
        good = hmac.new(
            self._ticket_key, f"{session_id}/{name}|{expires}|{subject}".encode(), "sha256"
        ).hexdigest()
        return subject if hmac.compare_digest(good, mac) else None


RECORDING = web.AppKey("vtax.recording", Recording)


def _supervisor(request: web.Request) -> str:
    who = principal(request, request.app[CONTEXT])
    if who.role != "supervisor":
        raise ApiError(403, "forbidden", "recordings are for supervisors only")
    return who.subject


async def get_recording(request: web.Request) -> web.Response:
    """`GET /api/recordings/{session_id}`: the manifest, with a playback URL per file."""
    subject = _supervisor(request)
    rec = request.app[RECORDING]
    session_id = request.match_info["session_id"]
    folder = rec.store.find_session_dir(session_id)
    manifest = rec.store.load_manifest(folder) if folder else None
    if manifest is None:
        raise ApiError(404, "not_found", "no recording for that session")
    body = manifest.model_dump(mode="json")
    for seg in body["segments"]:
        ticket = rec.ticket(session_id, seg["file"], subject)
        seg["url"] = f"/api/recordings/{session_id}/files/{seg['file']}?ticket={ticket}"
    await rec.audit(session_id, "recording_opened", Actor("supervisor", subject))
    return json_response(body, headers={"Cache-Control": "no-store"})


async def get_recording_file(request: web.Request) -> web.StreamResponse:
    """`GET /api/recordings/{session_id}/files/{name}`: the file, with HTTP Range support."""
    rec = request.app[RECORDING]
    session_id, name = request.match_info["session_id"], request.match_info["name"]
    ticket = request.query.get("ticket")
    if ticket is not None and "Authorization" not in request.headers:
        if rec.ticket_subject(session_id, name, ticket) is None:
            raise ApiError(401, "unauthorized", "the playback ticket is not valid or expired")
    else:
        _supervisor(request)
    if not SESSION_ID.match(session_id) or not SEGMENT_FILE.match(name):
        raise ApiError(404, "not_found", "no such recording file")
    try:
        path = rec.store.segment_path(session_id, name)
    except StorageError:
        raise ApiError(404, "not_found", "no such recording file") from None
    ext = name.rsplit(".", 1)[1]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": CONTENT_TYPES[ext],
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def setup_recording(app: web.Application, hub: Hub, relay: Calls) -> Recording:
    """Wire consent, recorder jobs and playback into a node."""
    rec = Recording(hub, relay, hub.settings, app[CONTEXT].redis)
    app[RECORDING] = rec
    app.router.add_get("/api/recordings/{session_id}", get_recording)
    app.router.add_get("/api/recordings/{session_id}/files/{name}", get_recording_file)
    return rec


# ---- the embedded worker process -------------------------------------------------------------


def start_embedded_recorder(settings: Settings, port: int) -> subprocess.Popen[bytes] | None:
    """On the embedded default (no Redis), `vtax serve` runs one recorder worker process."""
    if settings.redis_url or not settings.recorder_autostart or settings.recording_mode == "off":
        return None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = settings.recorder_url or f"http://{host}:{port}"
    env = dict(os.environ, VTAX_RECORDER_URL=url)
    if not settings.secret_key:
        settings.signing_key()  # create the shared key file before the worker reads it
    log.info("starting the recorder worker for %s", url)
    return subprocess.Popen(
        [sys.executable, "-m", "vtax", "recorder"], env=env, preexec_fn=_parent_death_signal()
    )


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn giving the child SIGTERM if `vtax serve` dies without stopping it (Linux
    prctl PR_SET_PDEATHSIG). Resolved here, in the parent: the child only makes the call."""
    try:
        import ctypes
        import signal

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGTERM))


async def stop_embedded_recorder(
    proc: subprocess.Popen[bytes] | None, timeout_s: float = 10
) -> None:
    """Stop the worker (it closes its segments and manifests first)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        await asyncio.to_thread(proc.wait, timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(proc.wait, 5)
