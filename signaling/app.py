"""The aiohttp application: REST API, Socket.IO signaling, pages and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

from signaling import observability
from signaling.context import CONTEXT, AppContext
from signaling.http_api import add_routes, errors_middleware
from signaling.hub import Hub
from signaling.queueing import QueueHandlers
from signaling.recording import setup_recording
from signaling.review_events import ReviewEvents
from signaling.sessions import SessionRelay
from signaling.stats_api import add_stats_routes
from signaling.wire import FastJson, JsonPacket
from vtax import redis_client
from vtax.accounts import Accounts
from vtax.auth import TokenIssuer
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.db import make_engine, migrate, session_factory
from vtax.live import LiveStore
from vtax.live.memory import MemoryLiveStore
from vtax.live.redis_store import RedisLiveStore
from vtax.review.records import SessionRecords
from vtax.review.rollup import Folder

log = logging.getLogger(__name__)
PAGES = {
    "/": "index.html",
    "/taxpayer": "taxpayer.html",
    "/agent": "agent.html",
    "/supervisor": "supervisor.html",
}
SOCKET_IO_CLIENT = Path("node_modules/socket.io-client/dist/socket.io.min.js")
# Entries ported to TypeScript + Vue (web/pages/*.html, built by `npm run build` into web/dist,
# docs/frontend.md): route -> built file. Routes not listed here still serve web/<name>.
BUILT = Path("dist")
BUILT_PAGES: dict[str, str] = {
    "/taxpayer": "taxpayer.html",
    "/agent": "agent.html",
    "/kiosk": "kiosk.html",
    "/wallboard": "wallboard.html",
}


def _page(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return handler


def add_pages(app: web.Application, web_dir: Path) -> None:
    dist = web_dir / BUILT
    for route, name in PAGES.items():
        if route in BUILT_PAGES:
            continue
        app.router.add_get(route, _page(web_dir / name))
    for route, name in BUILT_PAGES.items():
        if not (dist / name).is_file():
            log.warning("%s is missing: run `npm run build` in %s", dist / name, web_dir)
        app.router.add_get(route, _page(dist / name))
    # Vite's hashed bundles: the names change with the content.
    if (dist / "assets").is_dir():
        app.router.add_static("/assets", dist / "assets")
    vendor = web_dir / SOCKET_IO_CLIENT
    if not vendor.is_file():
        log.warning("%s is missing: run `npm ci` in %s for the pages to work", vendor, web_dir)
    app.router.add_get("/vendor/socket.io.min.js", _page(vendor))
    for sub in ("js", "css"):
        if (web_dir / sub).is_dir():
            app.router.add_static(f"/static/{sub}", web_dir / sub)


async def _redis_ready(ctx: AppContext, sio: socketio.AsyncServer) -> tuple[str, str]:
    """Redis answers, and this node's pub/sub listener is alive (a dead listener is silent:
    the node would miss every emit from the other nodes)."""
    try:
        await ctx.redis.ping()
    except Exception as exc:
        return "redis", f"failed: {type(exc).__name__}"
    listener = getattr(sio.manager, "thread", None)
    if listener is None or listener.done():
        return "redis", "failed: pub/sub listener is not running"
    return "redis", "ok"


class RedisManager(socketio.AsyncRedisManager):
    """python-socketio's Redis manager, remembering every client it builds.

    It builds a new client on each (re)connect and keeps only the last: the first publish and
    the pub/sub listener each build one at start-up, so the first one's connection stayed
    open after shutdown (a `ResourceWarning` per node in the tests). `_redis_connect` is the
    pinned python-socketio's own hook (5.x)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clients: list[Any] = []

    def _redis_connect(self) -> None:
        super()._redis_connect()
        self.clients.extend([self.pubsub, self.redis])


async def _close_pubsub(manager: object) -> None:
    """python-socketio never stops its Redis listener; stop it and close its connections."""
    if not isinstance(manager, RedisManager):
        return
    listener = getattr(manager, "thread", None)
    if listener is not None:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
    for conn in manager.clients:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.aclose()


def create_app(settings: Settings, *, migrate_on_start: bool | None = None) -> web.Application:
    """Build a node. On the embedded default (SQLite) pending migrations run at start-up."""
    url = settings.resolved_database_url
    engine = make_engine(url)
    sessions = session_factory(engine)
    ctx = AppContext(
        settings=settings,
        engine=engine,
        issuer=TokenIssuer(settings.signing_key(), settings.token_ttl_s),
        accounts=Accounts(sessions),
        records=SessionRecords(sessions),
        catalog=Catalog.load(),
    )
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024)
    app[CONTEXT] = ctx
    node_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    store: LiveStore
    manager: socketio.AsyncManager | None = None
    if settings.redis_url:
        # Scaled out: fan-out through Redis pub/sub, live sessions in Redis.
        ctx.redis = redis_client.connect(
            settings.redis_url, max_connections=settings.redis_max_connections
        )
        store = RedisLiveStore(ctx.redis, settings.redis_prefix, settings.resume_buffer)
        manager = RedisManager(
            settings.redis_url,
            channel=f"{settings.redis_prefix}socketio",
            redis_options={"max_connections": redis_client.SOCKETIO_MAX_CONNECTIONS},
        )
    else:
        store = MemoryLiveStore(settings.resume_buffer)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        # Handlers of one connection run one at a time, in order: a burst of ICE candidates
        # can never overtake the offer they belong to.
        async_handlers=False,
        cors_allowed_origins=list(settings.allowed_origins) or None,
        ping_interval=settings.ping_interval_s,
        ping_timeout=settings.ping_timeout_s,
        max_http_buffer_size=max(settings.max_event_bytes * 4, 256 * 1024),
        # orjson, no binary-attachment search (signaling/wire.py; docs/benchmarks.md)
        serializer=JsonPacket,
        json=FastJson,
    )
    sio.attach(app, socketio_path="socket.io")
    hub = Hub(sio, settings, ctx.issuer, ctx.accounts, ctx.records, ctx.catalog)
    relay = SessionRelay(hub, store, node_id)
    ReviewEvents(hub)
    queueing = QueueHandlers(hub, relay)
    relay.on_ended.append(queueing.engine.session_ended)
    ctx.hub, ctx.relay, ctx.queue = hub, relay, queueing
    setup_recording(app, hub, relay)  # consent, recorder jobs, playback (docs/recording.md)
    add_routes(app)
    add_stats_routes(app)  # GET /api/stats/live; starts the queue engine (docs/routing.md)
    observability.install(app)
    if settings.redis_url:
        ctx.ready_checks.append(lambda: _redis_ready(ctx, sio))
    add_pages(app, settings.web_dir)
    do_migrate = settings.is_embedded_database if migrate_on_start is None else migrate_on_start
    folder = Folder(engine, settings.kpi_fold_interval_s)

    async def on_startup(app: web.Application) -> None:
        if do_migrate:
            await migrate(url)
        relay.start_background()
        folder.start()  # KPI journal -> rollup (vtax/review/rollup.py)
        if not sio.manager_initialized:
            # python-socketio starts the pub/sub listener at the first client; start it now so
            # /readyz can watch it and a fresh node hears the others from the first second.
            sio.manager_initialized = True
            sio.manager.initialize()

    async def on_cleanup(app: web.Application) -> None:
        await ctx.queue.engine.close()
        await folder.close()
        await relay.close()  # closes the store, and with it the shared Redis client
        await _close_pubsub(sio.manager)
        await engine.dispose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
