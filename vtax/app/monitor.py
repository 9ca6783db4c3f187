"""Monitor and whisper: a supervisor watches a live call through a server media leg, and may
talk to the agent alone (docs/recording.md, "The media leg"; docs/protocol.md).

- The leg is a job for a media-leg worker (`vtax recorder`, vtax/media/leg.py), one per
  monitored session whatever the number of supervisors. It is no participant of the live
  session: its signals (`monitor:signal`) bypass the session's `rtc:signal` sequence and resume
  buffer, and no `session:participant` announces it, so the taxpayer's connection gets nothing
  that would show it, not even a gap in `seq`.
- The agent's page feeds the leg (its own tracks and the taxpayer's, as received): the
  taxpayer uploads nothing more for monitoring. The leg forwards the encoded frames to every
  monitoring supervisor and a whispering supervisor's voice to the agent's page only.
- Every monitor start and stop, whisper on and off, is in the session's audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from vtax.app.calls import Calls
from vtax.app.ports import Caller, Notifier
from vtax.config import Settings
from vtax.contract import client_events as ce
from vtax.contract import server_events as se
from vtax.contract.monitor import LegJoined, MonitorView
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.live import LiveParticipant, LiveSession
from vtax.media.monitors import Leg, LegWorker, Monitor, Monitoring, MonitorStore
from vtax.review import audit
from vtax.review.audit import Actor
from vtax.review.records import SessionRecords

log = logging.getLogger(__name__)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


class MonitorCalls:
    """The monitor use cases of one node."""

    def __init__(
        self,
        settings: Settings,
        calls: Calls,
        store: MonitorStore,
        records: SessionRecords,
        notifier: Notifier,
    ) -> None:
        self.settings, self.calls, self.store = settings, calls, store
        self.records, self.notifier = records, notifier
        self.watching: dict[str, set[str]] = {}  # supervisor sid on this node -> session ids
        self.legs_here: dict[str, set[str]] = {}  # worker sid on this node -> session ids
        self._sweeper: asyncio.Task[None] | None = None
        calls.on_started.append(self.session_started)
        calls.on_resumed.append(self.participant_resumed)
        calls.on_session_ended.append(self.session_ended)
        calls.on_node_dead.append(self.node_dead)

    # ---- audit and notices -------------------------------------------------------------

    async def audit(self, session_id: str, kind: str, actor: Actor, **data: Any) -> None:
        try:
            async with self.records.sessionmaker() as db, db.begin():
                audit.append(db, session_id, datetime.now(UTC), actor, kind, data)
        except Exception:
            log.exception("monitor audit %s of %s failed", kind, session_id)

    async def _tell_agent(self, live: LiveSession | None, record: Monitoring | None) -> None:
        if live is None:
            return
        agent = next((p for p in live.media_participants() if p.role == "agent"), None)
        if agent is None or agent.sid is None:
            return
        monitors = len(record.monitors) if record else 0
        leg_id = record.leg.leg_id if record and record.leg else None
        message = se.MonitorAgentNotice(
            session_id=live.id,
            leg_id=leg_id,
            monitors=monitors,
            whispering=bool(record and record.whisperer()),
        )
        await self.notifier.to_connections([agent.sid], message)

    async def _tell_leg(self, record: Monitoring) -> None:
        if record.leg is None or record.leg.leg_id is None:
            return
        whisperer = record.whisperer()
        message = se.LegMonitors(
            session_id=record.session_id,
            monitors=sorted(record.monitors),
            whisper_from=whisperer.monitor_id if whisperer else None,
        )
        await self.notifier.to_connections([record.leg.worker_sid], message)

    def _view(self, record: Monitoring, monitor: Monitor, me: str) -> MonitorView:
        leg_id = record.leg.leg_id if record.leg else None
        return MonitorView.model_validate(
            {
                "session_id": record.session_id,
                "monitor_id": monitor.monitor_id,
                "state": "live" if leg_id else "connecting",
                "leg_id": leg_id,
                "whisper": monitor.whispering,
                "ice_servers": ice_servers(self.settings, me),
            }
        )

    async def _live(self, session_id: str) -> LiveSession:
        live = await self.calls.get(session_id)
        if live is None:
            raise DomainError("not_found", "no such live session")
        return live

    # ---- the call's start: the notice ------------------------------------------------------

    async def session_started(self, live: LiveSession) -> None:
        if not (self.settings.monitor_allowed and self.settings.monitor_notice):
            return
        for p in live.media_participants():
            if p.role == "taxpayer" and p.sid is not None:
                notice = se.MonitoringNotice(session_id=live.id, notice="may_be_monitored")
                await self.notifier.to_connections([p.sid], notice)

    async def participant_resumed(self, live: LiveSession, me: LiveParticipant) -> None:
        """An agent back on a new connection (a reload, another node) while monitored is told
        again, so that its page opens a new feed to the leg (the leg takes the new peer
        connection in place of the old one: a new SDP session)."""
        if me.role != "agent":
            return
        record = await self.store.get(live.id)
        if record is not None and record.monitors:
            await self._tell_agent(live, record)

    # ---- supervisors ---------------------------------------------------------------------

    async def start(self, caller: Caller, p: ce.MonitorStart) -> MonitorView:
        if not self.settings.monitor_allowed:
            raise DomainError("monitor_disabled", "monitoring is not allowed on this service")
        live = await self._live(p.session_id)
        workers = await self.store.workers()
        free = [w for w in workers if w.legs < w.capacity]
        worker = min(free, key=lambda w: w.legs / w.capacity) if free else None
        monitor = Monitor(_new_id("m"), caller.subject, caller.conn or "", time.time())
        job_id = _new_id("lj")
        limit = self.settings.monitor_max_per_session

        def add(record: Monitoring | None) -> tuple[Monitoring | None, tuple[str, Monitoring]]:
            record = record or Monitoring(session_id=live.id)
            mine = record.of_sid(caller.conn)
            if mine is not None:
                return record, ("again", record)
            if len(record.monitors) >= limit:
                return record, ("full", record)
            if record.leg is None:
                if worker is None:
                    return (record if record.monitors else None), ("no_worker", record)
                record.leg = Leg(job_id=job_id, worker_sid=worker.sid, sent_at=time.time())
                record.monitors[monitor.monitor_id] = monitor
                return record, ("dispatch", record)
            record.monitors[monitor.monitor_id] = monitor
            return record, ("added", record)

        outcome, record = await self.store.update(live.id, add)
        if outcome == "full":
            raise DomainError("monitor_full", "as many supervisors as allowed already monitor")
        if outcome == "no_worker":
            raise DomainError("monitor_unavailable", "no media-leg worker is connected")
        mine = record.of_sid(caller.conn)
        assert mine is not None
        if outcome == "again":
            return self._view(record, mine, mine.monitor_id)
        self.watching.setdefault(caller.conn or "", set()).add(live.id)
        await self.audit(
            live.id,
            "monitor_started",
            caller.actor,
            monitor_id=monitor.monitor_id,
            supervisors=len(record.monitors),
        )
        if outcome == "dispatch" and worker is not None:
            await self._send_job(live.id, job_id, worker.sid)
        else:
            await self._tell_leg(record)
        await self._tell_agent(live, record)
        return self._view(record, mine, mine.monitor_id)

    async def stop(self, caller: Caller, p: ce.MonitorStop) -> ce.Done:
        if not await self._remove(p.session_id, caller.conn, caller.actor, "stopped"):
            raise DomainError("not_monitoring", "you do not monitor that session")
        return ce.Done()

    async def _remove(self, session_id: str, sid: str | None, actor: Actor, reason: str) -> bool:
        def drop(record: Monitoring | None) -> tuple[Monitoring | None, Any]:
            mine = record.of_sid(sid) if record else None
            if record is None or mine is None:
                return record, None
            del record.monitors[mine.monitor_id]
            return (record if record.monitors else None), (mine, record)

        found = await self.store.update(session_id, drop)
        self.watching.get(sid or "", set()).discard(session_id)
        if found is None:
            return False
        mine, record = found
        if mine.whispering:
            await self.audit(
                session_id, "monitor_whisper_stopped", actor, monitor_id=mine.monitor_id
            )
        await self.audit(
            session_id,
            "monitor_stopped",
            actor,
            monitor_id=mine.monitor_id,
            reason=reason,
            seconds=round(time.time() - mine.started_at, 1),
        )
        if record.monitors:
            await self._tell_leg(record)
        elif record.leg is not None:
            await self.notifier.to_connections(
                [record.leg.worker_sid], se.LegStop(session_id=session_id)
            )
            await self.store.count_leg(record.leg.worker_sid, -1)
        await self._tell_agent(
            await self.calls.get(session_id), record if record.monitors else None
        )
        return True

    async def whisper(self, caller: Caller, p: ce.MonitorWhisper) -> MonitorView:
        live = await self._live(p.session_id)

        def press(record: Monitoring | None) -> tuple[Monitoring | None, Any]:
            mine = record.of_sid(caller.conn) if record else None
            if record is None or mine is None:
                return record, "not_monitoring"
            other = record.whisperer()
            if p.on and other is not None and other is not mine:
                return record, "busy"
            changed = mine.whispering != p.on
            mine.whispering = p.on
            return record, (record, mine, changed)

        found = await self.store.update(live.id, press)
        if found == "not_monitoring":
            raise DomainError("not_monitoring", "you do not monitor that session")
        if found == "busy":
            raise DomainError("whisper_busy", "another supervisor is whispering to the agent")
        record, mine, changed = found
        if changed:
            kind = "monitor_whisper_started" if p.on else "monitor_whisper_stopped"
            await self.audit(live.id, kind, caller.actor, monitor_id=mine.monitor_id)
            await self._tell_leg(record)
            await self._tell_agent(live, record)
        return self._view(record, mine, mine.monitor_id)

    # ---- signals between the leg and the agent or a supervisor ----------------------------

    async def signal(self, caller: Caller, p: ce.MonitorSignal) -> ce.Done:
        record = await self.store.get(p.session_id)
        live = await self.calls.get(p.session_id)
        leg = record.leg if record else None
        if record is None or live is None or leg is None or leg.leg_id is None:
            raise DomainError("not_monitoring", "nobody monitors that session")
        agent = next((x for x in live.media_participants() if x.role == "agent"), None)
        sender = target = None
        if caller.role == "recorder" and caller.conn == leg.worker_sid:
            sender = leg.leg_id
            if p.to in record.monitors:
                target = record.monitors[p.to].sid
            elif agent is not None and p.to == agent.id:
                target = agent.sid
        elif caller.role == "supervisor" and p.to == leg.leg_id:
            mine = record.of_sid(caller.conn)
            sender = mine.monitor_id if mine else None
            target = leg.worker_sid
        elif (
            caller.role == "agent"
            and agent is not None
            and agent.sid == caller.conn
            and p.to == leg.leg_id
        ):
            sender, target = agent.id, leg.worker_sid
        if sender is None or target is None:
            raise DomainError("not_monitoring", "no such monitoring connection")
        message = se.MonitorRelayedSignal.model_validate(
            {"session_id": p.session_id, "from": sender, "type": p.type, "data": p.data}
        )
        await self.notifier.to_connections([target], message)
        return ce.Done()

    # ---- the media-leg workers -------------------------------------------------------------

    async def leg_hello(self, caller: Caller, p: ce.LegHello) -> ce.Done:
        assert caller.conn is not None
        await self.store.add_worker(
            LegWorker(caller.conn, p.worker, p.capacity, node=self.calls.node_id)
        )
        self.legs_here.setdefault(caller.conn, set())
        return ce.Done()

    async def leg_join(self, caller: Caller, p: ce.LegJoin) -> LegJoined:
        live = await self._live(p.session_id)
        agent = next((x for x in live.media_participants() if x.role == "agent"), None)
        leg_id = _new_id("leg")

        def join(record: Monitoring | None) -> tuple[Monitoring | None, Monitoring | None]:
            if record is None or record.leg is None or record.leg.job_id != p.job_id:
                return record, None
            if record.leg.worker_sid != caller.conn or record.leg.leg_id is not None:
                return record, None
            record.leg.leg_id = leg_id
            return record, record

        record = await self.store.update(live.id, join)
        if record is None or agent is None:
            raise DomainError("invalid_state", "that media-leg job is not current")
        self.legs_here.setdefault(caller.conn or "", set()).add(live.id)
        await self.audit(live.id, "monitor_leg_joined", caller.actor, leg_id=leg_id)
        for monitor in record.monitors.values():
            state = se.MonitorState(
                session_id=live.id, monitor_id=monitor.monitor_id, state="live", leg_id=leg_id
            )
            await self.notifier.to_connections([monitor.sid], state)
        await self._tell_agent(live, record)
        whisperer = record.whisperer()
        return LegJoined(
            leg_id=leg_id,
            agent_id=agent.id,
            monitors=sorted(record.monitors),
            whisper_from=whisperer.monitor_id if whisperer else None,
        )

    # ---- ends --------------------------------------------------------------------------------

    async def session_ended(self, live: LiveSession, reason: str) -> None:
        def clear(record: Monitoring | None) -> tuple[None, Monitoring | None]:
            return None, record

        record = await self.store.update(live.id, clear)
        if record is None:
            return
        for monitor in record.monitors.values():
            self.watching.get(monitor.sid, set()).discard(live.id)
            actor = Actor("supervisor", monitor.subject)
            await self.audit(
                live.id,
                "monitor_stopped",
                actor,
                monitor_id=monitor.monitor_id,
                reason="session_ended",
                seconds=round(time.time() - monitor.started_at, 1),
            )
            ended = se.MonitorState(
                session_id=live.id,
                monitor_id=monitor.monitor_id,
                state="ended",
                leg_id=None,
                reason="session_ended",
            )
            await self.notifier.to_connections([monitor.sid], ended)
        if record.leg is not None:
            await self.notifier.to_connections(
                [record.leg.worker_sid], se.LegStop(session_id=live.id)
            )
            await self.store.count_leg(record.leg.worker_sid, -1)

    async def disconnected(self, caller: Caller) -> None:
        sid = caller.conn or ""
        if caller.role == "supervisor":
            for session_id in sorted(self.watching.pop(sid, set())):
                await self._remove(session_id, sid, caller.actor, "disconnected")
        elif caller.role == "recorder" and sid in self.legs_here:
            await self.store.remove_worker(sid)
            for session_id in sorted(self.legs_here.pop(sid, set())):
                await self._leg_lost(session_id, sid)

    async def node_dead(self, node: str) -> None:
        """A node died without a word: the workers connected to it are gone with it (their
        legs go to other workers at the next sweep: their worker is no longer registered)."""
        for worker in await self.store.workers():
            if worker.node == node:
                log.warning("media-leg worker %s went with node %s", worker.worker, node)
                await self.store.remove_worker(worker.sid)

    async def _leg_lost(self, session_id: str, worker_sid: str) -> None:
        """The worker running a session's leg is gone: the monitors wait for a new leg."""
        record = await self.store.get(session_id)
        if record is not None and record.leg is not None and record.leg.worker_sid == worker_sid:
            await self._reassign(session_id, record.leg, await self.store.workers(), "leg_lost")

    async def _send_job(self, session_id: str, job_id: str, worker_sid: str) -> None:
        await self.store.count_leg(worker_sid, 1)
        job = se.MonitorJob.model_validate(
            {
                "job_id": job_id,
                "session_id": session_id,
                "ice_servers": ice_servers(self.settings, "leg-" + session_id),
            }
        )
        await self.notifier.to_connections([worker_sid], job)

    async def _reassign(
        self, session_id: str, expected: Leg | None, workers: list[LegWorker], reason: str
    ) -> None:
        """Give the session's leg to another worker: the one it had (`expected`, None: it has
        none) is gone (`leg_lost`) or did not join in time (`leg_late`), or a worker came for
        monitors left waiting (`waiting`). Compare-and-set on the record: of several nodes
        sweeping, one sends the job. A worker that did not join is passed over while another
        has room; alone, it gets the new job (it may only have been slow)."""
        passed = expected.worker_sid if expected is not None else None
        others = [w for w in workers if w.legs < w.capacity and w.sid != passed]
        same = [w for w in workers if w.sid == passed and reason == "leg_late"]
        free = others or same
        worker = min(free, key=lambda w: w.legs / w.capacity) if free else None
        if expected is None and worker is None:
            return  # monitors waiting, still no worker with room
        job_id = _new_id("lj")

        def replace(record: Monitoring | None) -> tuple[Monitoring | None, Monitoring | None]:
            if record is None or not record.monitors or record.leg != expected:
                return record, None
            record.leg = Leg(job_id, worker.sid, sent_at=time.time()) if worker else None
            return record, record

        record = await self.store.update(session_id, replace)
        if record is None:
            return  # changed meanwhile (joined, stopped, ended, or another node did it)
        if expected is not None:
            await self.store.count_leg(expected.worker_sid, -1)
            kind = "monitor_leg_lost" if reason == "leg_lost" else "monitor_leg_resent"
            await self.audit(session_id, kind, Actor("system", None), reason=reason)
            if reason == "leg_late":
                # Should it join after all, its join is refused (the job is not current).
                await self.notifier.to_connections(
                    [expected.worker_sid], se.LegStop(session_id=session_id)
                )
        else:
            await self.audit(session_id, "monitor_leg_resent", Actor("system", None), reason=reason)
        if expected is not None and expected.leg_id is not None:
            for monitor in record.monitors.values():
                state = se.MonitorState(
                    session_id=session_id,
                    monitor_id=monitor.monitor_id,
                    state="connecting",
                    leg_id=None,
                    reason="leg_lost",
                )
                await self.notifier.to_connections([monitor.sid], state)
            await self._tell_agent(await self.calls.get(session_id), record)
        if worker is not None:
            log.info("monitoring job of %s sent to %s (%s)", session_id, worker.worker, reason)
            await self._send_job(session_id, job_id, worker.sid)

    # ---- the sweep: jobs nobody joined, monitors waiting for a worker -----------------------

    def start_background(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="monitor-leg-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep_forever(self, interval_s: float = 2.0) -> None:
        while True:
            try:
                await self.sweep(time.time())
            except Exception:
                log.exception("monitor leg sweep failed; retrying")
            await asyncio.sleep(interval_s)

    async def sweep(self, now: float) -> None:
        """Every monitored session whose leg is not served: a job sent `monitor_leg_join_s`
        ago and not joined (the worker died before `leg:join`, or hangs), a worker that is no
        longer registered (it left from a node that died), or no leg at all (no worker had
        room when the last one was lost): send the job again. Safe on every node at once."""
        ids = await self.store.monitored()
        if not ids:
            return
        workers = await self.store.workers()
        registered = {w.sid for w in workers}
        for session_id in ids:
            record = await self.store.get(session_id)
            if record is None or not record.monitors:
                continue
            if await self.calls.get(session_id) is None:
                continue  # the call ended: session_ended clears the record
            leg = record.leg
            if leg is None:
                await self._reassign(session_id, None, workers, "waiting")
            elif leg.worker_sid not in registered:
                await self._reassign(session_id, leg, workers, "leg_lost")
            elif leg.leg_id is None and now - leg.sent_at > self.settings.monitor_leg_join_s:
                await self._reassign(session_id, leg, workers, "leg_late")


__all__ = ["MonitorCalls"]
