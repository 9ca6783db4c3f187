"""The composition root: the one place that turns settings into backends and use cases.

Embedded default: SQLite, the in-memory queue and live store. Scaled out (`VTAX_REDIS_URL`):
the queue, the live sessions and the Socket.IO fan-out over Redis, the database on
PostgreSQL. The transport (signaling/node.py) makes the notifier and asks for the services;
nothing else chooses a backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from vtax import redis_client
from vtax.accounts import Accounts
from vtax.app.appointments import Appointments, AppointmentSettings
from vtax.app.booked_queue import BookedQueue
from vtax.app.calls import Calls
from vtax.app.chat import Chat
from vtax.app.confirmation import Confirmation, SessionMaterials
from vtax.app.consultation import Consultations, ConsultationSettings, KnowledgeBase
from vtax.app.consulting import Consulting
from vtax.app.desk import Desk
from vtax.app.identity import IdentityError
from vtax.app.identity_wiring import IdentityServices, build_identity
from vtax.app.loop import ReviewLoop
from vtax.app.materials import Materials
from vtax.app.monitor import MonitorCalls
from vtax.app.multiparty import Multiparty
from vtax.app.ports import Notifier
from vtax.app.quality import CallQualityService
from vtax.app.queueing import Queueing, QueueNotices
from vtax.app.screen import ScreenShare
from vtax.app.stats import LiveFigures
from vtax.app.step_up import StepUpGate
from vtax.appointments.bookings import Bookings
from vtax.appointments.callback_store import Callbacks
from vtax.appointments.outbox import Outbox
from vtax.appointments.planning import Planning
from vtax.appointments.reminders import ReminderJob
from vtax.assistant.conversations import ConsultationStore
from vtax.assistant.keeper import IndexKeeper
from vtax.assistant.seed import ensure_seeded
from vtax.assistant.store import KbStore
from vtax.auth import STAFF_ROLES, Passwords, Principal, TokenIssuer, Unauthorized
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.confirmation.forms import shipped as shipped_forms
from vtax.confirmation.store import FormStore
from vtax.db import make_engine, session_factory
from vtax.errors import DomainError
from vtax.identity.registry import Registry
from vtax.live import LiveStore
from vtax.live.memory import MemoryLiveStore
from vtax.live.redis_store import RedisLiveStore
from vtax.media.monitors import MemoryMonitorStore, MonitorStore, RedisMonitorStore
from vtax.queue import QueueBook, QueueEngine, QueueEvents
from vtax.queue.kv import KV
from vtax.queue.memory import MemoryKV
from vtax.queue.redis_store import RedisKV
from vtax.recording.jobs import MemoryRecordingJobs, RecordingJobs, RedisRecordingJobs
from vtax.review.call_quality import CallQualityStore
from vtax.review.chat_log import ChatLog
from vtax.review.deliveries import Deliveries, DocumentStore
from vtax.review.materials import MaterialStore
from vtax.review.participants import ParticipantRecords
from vtax.review.records import SessionRecords
from vtax.review.rollup import Folder, ZoneMismatch, stored_zone
from vtax.sms import sms_sender
from vtax.unreachable import exc_line


@dataclass
class Backends:
    """What the settings chose; `redis` is None on the embedded default."""

    settings: Settings
    db: AsyncEngine
    redis: Any  # redis.asyncio.Redis | None, shared by the node (live store, recording jobs)
    live: LiveStore
    queue_kv: KV
    recording_jobs: RecordingJobs  # recording states and waiting jobs (leased on Redis)

    @property
    def scaled_out(self) -> bool:
        return self.redis is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        db = make_engine(settings.resolved_database_url)
        if settings.redis_url:
            redis = redis_client.connect(
                settings.redis_url, max_connections=settings.redis_max_connections
            )
            live: LiveStore = RedisLiveStore(
                redis, settings.redis_prefix, settings.resume_buffer, settings.resume_buffer_bytes
            )
            kv: KV = RedisKV.from_url(
                settings.redis_url, settings.redis_prefix, settings.redis_max_connections
            )
            jobs: RecordingJobs = RedisRecordingJobs(
                redis, settings.redis_prefix, job_ttl_s=settings.recording_job_ttl_s
            )
        else:
            redis = None
            live = MemoryLiveStore(settings.resume_buffer, settings.resume_buffer_bytes)
            kv = MemoryKV()
            jobs = MemoryRecordingJobs(job_ttl_s=settings.recording_job_ttl_s)
        return cls(settings, db, redis, live, kv, jobs)


def queue_engine(
    settings: Settings, events: QueueEvents, kv: KV, categories: list[str]
) -> QueueEngine:
    book = QueueBook.load(settings.queues_file) if settings.queues_file else QueueBook()
    book.check_categories(categories)
    return QueueEngine(
        events,
        kv=kv,
        book=book,
        categories=categories,
        offer_timeout_s=settings.offer_timeout_s,
        wrapup_s=settings.wrapup_s,
        handle_s=settings.default_handle_s,
        grace_s=settings.queue_grace_s,
        missed_offers_limit=settings.missed_offers_limit,
        reject_delay_s=settings.reject_delay_s,
        no_answer_delay_s=settings.no_answer_delay_s,
        update_interval_s=settings.queue_update_interval_s,
        tick_s=settings.queue_tick_s,
        stats_interval_s=settings.stats_push_s,
        timezone=settings.service_timezone,
    )


class AppointmentTasks:
    """The appointments' background work on one node (all of it safe on many nodes at once:
    the outbox is leased, the sweep and the callback steps are guarded database updates):
    texts from the outbox (`ReminderJob`), the no-show sweep every `sweep_s` and the callback
    windows every `tick_s`, whose abandoned tickets leave the queue."""

    def __init__(
        self,
        appointments: Appointments,
        reminders: ReminderJob,
        engine: QueueEngine,
        *,
        sweep_s: float = 30.0,
        tick_s: float = 1.0,
    ) -> None:
        self.appointments, self.reminders, self.engine = appointments, reminders, engine
        self.sweep_s, self.tick_s = sweep_s, tick_s
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(
                # the use cases' clock, read at each step (a test may set it)
                self.reminders.run(self._stop, clock=lambda: self.appointments.clock()),
                name="appointment-texts",
            ),
            asyncio.create_task(self._every(self.sweep_s, self.sweep), name="appointment-sweep"),
            asyncio.create_task(self._every(self.tick_s, self.callback_tick), name="callback-tick"),
        ]

    async def sweep(self) -> None:
        await self.appointments.sweep()

    async def callback_tick(self) -> list[str]:
        """Tell the taxpayers whose callback tickets near the head (their pages are closed,
        so no `queue:update` reaches them); take the tickets whose last window ran out out of
        the queue; end the callbacks of tickets that left."""
        for ticket_id in await self.appointments.callbacks_waiting():
            try:
                position, _ = await self.engine.estimate(ticket_id)
            except DomainError:  # served or gone
                await self.appointments.callback_gone(ticket_id)
                continue
            await self.appointments.callback_position(ticket_id, position - 1)  # 0: next
        gone = await self.appointments.callback_tick()
        for ticket_id in gone:
            with contextlib.suppress(DomainError):  # served or gone meanwhile
                await self.engine.leave(ticket_id)
        return gone

    async def _every(self, interval_s: float, step: Callable[[], Awaitable[Any]]) -> None:
        while not self._stop.is_set():
            try:
                await step()
            except Exception:
                log.exception("appointment task %s failed; retrying", step.__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval_s)

    async def close(self) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)


@dataclass
class Services:
    """The application layer of one node, over its backends."""

    settings: Settings
    backends: Backends
    node_id: str
    issuer: TokenIssuer
    accounts: Accounts
    records: SessionRecords
    catalog: Catalog
    deliveries: Deliveries
    calls: Calls
    multiparty: Multiparty  # invitations, barge, hand-over: three or more in a call
    notices: QueueNotices
    queue: QueueEngine
    queueing: Queueing
    loop: ReviewLoop
    figures: LiveFigures
    desk: Desk
    folder: Folder
    identity: IdentityServices  # sign-in: SMS, OIDC, kiosk; taxpayer tokens; staff factor
    appointments: Appointments
    booked_queue: BookedQueue  # check-in into the queue, callbacks, the tickets' fate
    confirmation: Confirmation  # the confirmation form during the call
    appointment_tasks: AppointmentTasks = field(repr=False)
    monitor: MonitorCalls  # monitor and whisper through the media leg (vtax/app/monitor.py)

    async def authenticate(self, token: object) -> Principal:
        """The caller behind a bearer token (REST, Socket.IO connect, `session:resume`), or
        Unauthorized. Staff: the signature, and the account still enabled in that role.
        Taxpayers: `signin.authenticate` (token version, the sign-in still alive, the kiosk,
        the grant acted under). A taxpayer token without a version (the removed
        `POST /api/auth/taxpayer` gave those) proves no identity and is refused."""
        principal = self.issuer.verify(token)
        if principal.role in STAFF_ROLES:
            staff = await self.accounts.staff(principal.subject)
            if staff is None or staff.role != principal.role:
                raise Unauthorized("the account is disabled")
            return principal
        if principal.role == "taxpayer":
            if principal.version < 0:
                raise Unauthorized("this token proves no identity; sign in again")
            try:
                return await self.identity.signin.authenticate(token)
            except IdentityError as exc:
                raise Unauthorized(exc.message) from None
        return principal

    kb_store: KbStore
    kb_keeper: IndexKeeper  # this node's retrieval index, following the knowledge base
    consultations: Consultations
    knowledge_base: KnowledgeBase
    consulting: Consulting  # the assistant's conversation with its hand-off into the queue
    materials: Materials  # what the taxpayer hands in during the call, reviewed by the agent
    chat: Chat  # in-call chat between the participants of a live session
    # screen share and call quality inside the call (docs/protocol.md, docs/review.md)
    screen: ScreenShare
    quality: CallQualityService
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def check_days_zone(self) -> None:
        """At node start, after the migrations: the stored days (joined_day, agent-state
        daily totals, the KPI rollup) must be the service zone's, or the node does not start
        (ZoneMismatch: this node would write its days into another zone's; docs/review.md,
        Days). A database that cannot be read now (unreachable, not migrated yet) is logged
        and left to the KPI reads, which check again on every report."""
        try:
            async with self.backends.db.connect() as conn:
                stored = await stored_zone(conn)
        except Exception as exc:
            log.warning("could not check the zone of the KPI days at start: %s", exc_line(exc))
            return
        if stored != self.settings.service_timezone:
            raise ZoneMismatch(stored or "unstamped", self.settings.service_timezone)

    async def start_assistant(self) -> None:
        """At node start, after the migrations: seed an empty knowledge base (safe on many
        nodes) and build the index in the background (segmenting the seed takes seconds; the
        first question waits for it only if it comes sooner)."""
        if self.settings.assistant_seed:
            await ensure_seeded(self.kb_store)
        task = asyncio.create_task(self._warm(), name="assistant-index-warm")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _warm(self) -> None:
        try:
            await self.kb_keeper.refresh(force=True)
        except Exception:
            # The first question builds it again (IndexKeeper.index); a node still starts.
            log.exception("could not build the assistant's index at start")

    async def close(self) -> None:
        """Stop background work, then close the backends (the live store closes the shared
        Redis client)."""
        await self.appointment_tasks.close()
        await self.identity.aclose()
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.queue.close()
        await self.folder.close()
        await self.multiparty.close()
        await self.monitor.close()
        await self.calls.close()
        await self.backends.db.dispose()


def build(
    settings: Settings,
    notifier: Notifier,
    node_id: str,
    *,
    catalog: Catalog | None = None,
    on_revoked: Callable[[str], Awaitable[None]] | None = None,
) -> Services:
    """`on_revoked(person_id)`: every token of that person died (signed out everywhere,
    disabled); the transport cuts their open connections on every node."""
    backends = Backends.from_settings(settings)
    sessions = session_factory(backends.db)
    catalog = catalog or Catalog.load()
    accounts = Accounts(sessions, Passwords.from_settings(settings))
    records = SessionRecords(sessions, settings.service_timezone)  # its days: docs/review.md
    deliveries = Deliveries(
        sessions, DocumentStore(settings.documents_dir), settings.documents_max_bytes
    )
    calls = Calls(settings, backends.live, records, accounts, notifier, node_id)
    notices = QueueNotices(records, notifier)
    engine = queue_engine(settings, notices, backends.queue_kv, sorted(catalog.categories))
    calls.on_ended.append(engine.session_ended)
    step_up = StepUpGate(
        settings.step_up_acr, settings.step_up_max_age_s, audit=Registry(sessions).audit
    )
    queueing = Queueing(
        engine, notices, calls, records, accounts, catalog, notifier, step_up=step_up
    )
    materials = Materials(
        MaterialStore(
            sessions,
            DocumentStore(settings.documents_dir),
            max_bytes=settings.materials_max_bytes,
            max_count=settings.materials_max,
        ),
        backends.live,
        notifier,
    )
    confirmation = Confirmation(
        FormStore(sessions),
        shipped_forms(frozenset().union(*catalog.items_by_category.values())),
        SessionMaterials(materials),  # a form links the session's materials by id and hash
        notifier,
    )
    loop = ReviewLoop(
        records,
        deliveries,
        catalog,
        notifier,
        form_check=confirmation.summary_form,
        step_up=step_up if settings.step_up_receipts else None,
    )
    figures = LiveFigures(settings, engine, backends.live, notifier)
    notices.stats_hooks.append(figures.push)
    notices.agent_state_hooks.append(_history(records))
    appointments = _appointments(settings, sessions, catalog, engine, notifier)
    tasks = AppointmentTasks(
        appointments,
        ReminderJob(
            Outbox(sessions, settings.appointment_send_attempts),
            appointments.bookings,
            sms_sender(settings.sms_http_url, settings.sms_http_token, settings.sms_timeout_s),
            appointments.bookings.tz,
            owner=node_id,
            lease_s=settings.appointment_outbox_lease_s,
        ),
        engine,
    )
    issuer = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
    identity = build_identity(
        settings,
        sessions,
        issuer,
        redis=backends.redis,
        accounts=accounts,
        on_revoked=on_revoked,
    )
    tz = ZoneInfo(settings.service_timezone)
    kb_store = KbStore(sessions)
    keeper = _index_keeper(settings, kb_store)
    consultations = Consultations(
        ConsultationStore(sessions),
        keeper,
        queues=engine.book,
        settings=ConsultationSettings(max_failures=settings.assistant_max_failures, timezone=tz),
    )
    return Services(
        settings=settings,
        backends=backends,
        node_id=node_id,
        issuer=issuer,
        accounts=accounts,
        records=records,
        catalog=catalog,
        deliveries=deliveries,
        calls=calls,
        multiparty=Multiparty(
            settings, calls, engine, accounts, ParticipantRecords(sessions), notifier
        ),
        notices=notices,
        queue=engine,
        queueing=queueing,
        loop=loop,
        figures=figures,
        desk=Desk(settings, records, backends.live),
        folder=Folder(backends.db, settings.kpi_fold_interval_s),
        identity=identity,
        appointments=appointments,
        booked_queue=BookedQueue(appointments, queueing),
        confirmation=confirmation,
        appointment_tasks=tasks,
        kb_store=kb_store,
        kb_keeper=keeper,
        consultations=consultations,
        knowledge_base=KnowledgeBase(kb_store, timezone=tz),
        consulting=Consulting(consultations, queueing),
        materials=materials,
        chat=Chat(settings, calls, ChatLog(sessions), notifier),
        monitor=MonitorCalls(settings, calls, _monitor_store(backends), records, notifier),
        screen=ScreenShare(calls, notifier),
        quality=CallQualityService(
            calls,
            CallQualityStore(sessions, settings.quality_max_samples),
            zone=settings.service_timezone,
        ),
    )


def _monitor_store(backends: Backends) -> MonitorStore:
    """Who monitors which session: shared through Redis when scaled out."""
    if backends.redis is not None:
        return RedisMonitorStore(backends.redis, backends.settings.redis_prefix)
    return MemoryMonitorStore()


def _appointments(
    settings: Settings, sessions: Any, catalog: Catalog, engine: QueueEngine, notifier: Notifier
) -> Appointments:
    """Bookings, planning and callbacks over the node's database; slots follow the queues'
    opening hours; the clock is the queue engine's (one time for both)."""
    config = AppointmentSettings.of(settings)
    tz = ZoneInfo(settings.service_timezone)
    bookings = Bookings(sessions, tz, config.bookings, DocumentStore(settings.documents_dir))
    return Appointments(
        bookings,
        Planning(sessions, settings.service_timezone),
        Callbacks(sessions, config.callbacks),
        catalog,
        config,
        hours_of=lambda category: engine.book.of(category).hours,
        notifier=notifier,
        clock=engine._clock,
    )


def _index_keeper(settings: Settings, kb_store: KbStore) -> IndexKeeper:
    embedder = None
    if settings.assistant_retrieval != "bm25":
        from vtax.assistant.embedding import E5Embedder  # the `embeddings` extra

        embedder = E5Embedder()
    return IndexKeeper(
        kb_store,
        threshold=settings.assistant_threshold,
        refresh_s=settings.assistant_refresh_s,
        mode=settings.assistant_retrieval,
        embedder=embedder,
        embedding_threshold=settings.assistant_embedding_threshold,
    )


log = logging.getLogger(__name__)


def _history(records: SessionRecords) -> Any:
    """The agent state history (occupancy, docs/review.md) as an agent-state hook."""

    async def record(agent_id: str, status: str, reason: str, when: datetime) -> None:
        # History must never break the queue: a failure is logged, the state change stands.
        try:
            await records.agent_history.record(agent_id, status, reason, when)
        except Exception:
            log.exception("could not record agent %s state %s", agent_id, status)

    return record
