"""The composition root: the one place that turns settings into backends and use cases.

Embedded default: SQLite, the in-memory queue and live store. Scaled out (`VTAX_REDIS_URL`):
the queue, the live sessions and the Socket.IO fan-out over Redis, the database on
PostgreSQL. The transport (signaling/node.py) makes the notifier and asks for the services;
nothing else chooses a backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from vtax import redis_client
from vtax.accounts import Accounts
from vtax.app.calls import Calls
from vtax.app.consultation import Consultations, ConsultationSettings, KnowledgeBase
from vtax.app.consulting import Consulting
from vtax.app.desk import Desk
from vtax.app.loop import ReviewLoop
from vtax.app.ports import Notifier
from vtax.app.queueing import Queueing, QueueNotices
from vtax.app.stats import LiveFigures
from vtax.assistant.conversations import ConsultationStore
from vtax.assistant.keeper import IndexKeeper
from vtax.assistant.seed import ensure_seeded
from vtax.assistant.store import KbStore
from vtax.auth import TokenIssuer
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.db import make_engine, session_factory
from vtax.live import LiveStore
from vtax.live.memory import MemoryLiveStore
from vtax.live.redis_store import RedisLiveStore
from vtax.queue import QueueBook, QueueEngine, QueueEvents
from vtax.queue.kv import KV
from vtax.queue.memory import MemoryKV
from vtax.queue.redis_store import RedisKV
from vtax.recording.jobs import MemoryRecordingJobs, RecordingJobs, RedisRecordingJobs
from vtax.review.deliveries import Deliveries, DocumentStore
from vtax.review.records import SessionRecords
from vtax.review.rollup import Folder


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
    notices: QueueNotices
    queue: QueueEngine
    queueing: Queueing
    loop: ReviewLoop
    figures: LiveFigures
    desk: Desk
    folder: Folder
    kb_store: KbStore
    kb_keeper: IndexKeeper  # this node's retrieval index, following the knowledge base
    consultations: Consultations
    knowledge_base: KnowledgeBase
    consulting: Consulting  # the assistant's conversation with its hand-off into the queue
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

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
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.queue.close()
        await self.folder.close()
        await self.calls.close()
        await self.backends.db.dispose()


def build(
    settings: Settings, notifier: Notifier, node_id: str, *, catalog: Catalog | None = None
) -> Services:
    backends = Backends.from_settings(settings)
    sessions = session_factory(backends.db)
    catalog = catalog or Catalog.load()
    accounts = Accounts(sessions)
    records = SessionRecords(sessions)
    deliveries = Deliveries(
        sessions, DocumentStore(settings.documents_dir), settings.documents_max_bytes
    )
    calls = Calls(settings, backends.live, records, accounts, notifier, node_id)
    notices = QueueNotices(records, notifier)
    engine = queue_engine(settings, notices, backends.queue_kv, sorted(catalog.categories))
    calls.on_ended.append(engine.session_ended)
    queueing = Queueing(engine, notices, calls, records, accounts, catalog, notifier)
    loop = ReviewLoop(records, deliveries, catalog, notifier)
    figures = LiveFigures(settings, engine, backends.live, notifier)
    notices.stats_hooks.append(figures.push)
    notices.agent_state_hooks.append(_history(records))
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
        issuer=TokenIssuer(settings.signing_key(), settings.token_ttl_s),
        accounts=accounts,
        records=records,
        catalog=catalog,
        deliveries=deliveries,
        calls=calls,
        notices=notices,
        queue=engine,
        queueing=queueing,
        loop=loop,
        figures=figures,
        desk=Desk(settings, records, backends.live),
        folder=Folder(backends.db, settings.kpi_fold_interval_s),
        kb_store=kb_store,
        kb_keeper=keeper,
        consultations=consultations,
        knowledge_base=KnowledgeBase(kb_store, timezone=tz),
        consulting=Consulting(consultations, queueing),
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
