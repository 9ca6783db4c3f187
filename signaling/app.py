"""The aiohttp application: REST API, Socket.IO signaling, pages and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

from signaling import events, observability
from signaling.appointments_api import add_appointment_routes
from signaling.assistant_api import add_assistant_routes
from signaling.chat_api import add_chat_routes
from signaling.confirmation_api import add_confirmation_routes
from signaling.context import CONTEXT, AppContext
from signaling.desk_api import add_desk_routes
from signaling.http_api import add_routes, check_bound, errors_middleware
from signaling.hub import CUT_EVENT, Hub, Server
from signaling.identity_api import add_identity_routes
from signaling.materials_api import add_materials_routes
from signaling.quality_api import add_quality_routes
from signaling.recording import setup_recording
from signaling.stats_api import add_stats_routes
from signaling.wire import FastJson, JsonPacket
from vtax import compose, redis_client
from vtax.config import Settings
from vtax.db import migrate
from vtax.logs import throttle_bad_input_logs
from vtax.review.rollup import ZoneMismatch
from vtax.unreachable import exc_line

log = logging.getLogger(__name__)
# The plain start page (web/index.html): links to the entries.
PAGES = {
    "/": "index.html",
}
# Entries ported to TypeScript + Vue (web/pages/*.html, built by `npm run build` into web/dist,
# docs/frontend.md): route -> built file. Routes not listed here still serve web/<name>.
BUILT = Path("dist")
BUILT_PAGES: dict[str, str] = {
    "/taxpayer": "taxpayer.html",
    "/agent": "agent.html",
    "/kiosk": "kiosk.html",
    "/wallboard": "wallboard.html",
    "/supervisor": "supervisor.html",
}


def _page(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return handler


def add_pages(app: web.Application, web_dir: Path) -> None:
    dist = web_dir / BUILT
    for route, name in PAGES.items():
        app.router.add_get(route, _page(web_dir / name))
    for route, name in BUILT_PAGES.items():
        if not (dist / name).is_file():
            log.warning("%s is missing: run `npm run build` in %s", dist / name, web_dir)
        app.router.add_get(route, _page(dist / name))
    # Vite's hashed bundles: the names change with the content.
    if (dist / "assets").is_dir():
        app.router.add_static("/assets", dist / "assets")
    # the plain start page's stylesheet
    if (web_dir / "css").is_dir():
        app.router.add_static("/static/css", web_dir / "css")


def content_security_policy(host: str) -> str:
    """Pages run scripts, styles and connections from this node only (Socket.IO's WebSocket
    included); nothing may frame them."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            # Vue and the charts set element styles; no inline script is ever allowed.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer: no MIME sniffing, no framing; on pages, the CSP as well."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers["Content-Security-Policy"] = content_security_policy(request.host)


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
    if isinstance(sio.manager, RedisManager) and not sio.manager.listening:
        return "redis", "failed: pub/sub listener is not subscribed (reconnecting)"
    return "redis", "ok"


class RedisManager(socketio.AsyncRedisManager):
    """python-socketio's Redis manager, remembering every client it builds.

    It builds a new client on each (re)connect and keeps only the last: the first publish and
    the pub/sub listener each build one at start-up, so the first one's connection stayed
    open after shutdown (a `ResourceWarning` per node in the tests). `_redis_connect` is the
    pinned python-socketio's own hook (5.x)."""

    cuts_rooms = True  # Hub.disconnect_user: an emit of CUT_EVENT cuts the room's members

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clients: list[Any] = []
        self.pubsub: Any = None
        self._resyncs: set[asyncio.Task[None]] = set()
        self.cut_room: Callable[[str], Awaitable[None]] | None = None

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """Every node, this one included, handles each emit here: a CUT_EVENT to a room
        disconnects this node's members of it and is never sent."""
        if message.get("event") == CUT_EVENT:
            room = message.get("room")
            if self.cut_room is not None and isinstance(room, str):
                await self.cut_room(room)
            return
        await super()._handle_emit(message)

    def _redis_connect(self) -> None:
        super()._redis_connect()
        self.clients.extend([self.pubsub, self.redis])

    #: The listener's retry after losing Redis: from 0.25 s, doubling, at most 2 s.
    #: python-socketio's own doubles up to 60 s, so after a long outage a node stayed deaf to
    #: the other nodes for up to a minute while Redis answered again (and /readyz said ready).
    RETRY_S = (0.25, 2.0)
    listening = False  # subscribed to the channel right now (/readyz)
    #: Called (in a task) once the listener is subscribed again after `gap_s` without it:
    #: whatever the other nodes published meanwhile never reached this node's clients.
    on_resubscribed: Callable[[float], Coroutine[Any, Any, None]] | None = None

    async def _redis_listen_with_retries(self) -> Any:
        """python-socketio's listen loop (5.x `_redis_listen_with_retries`), with a bounded
        retry, `listening` kept for /readyz, one log line when the listener loses Redis and
        one when it is back (not one per retry), and `on_resubscribed` after a gap."""
        retry = self.RETRY_S[0]
        lost_at: float | None = None
        while True:
            try:
                if self.pubsub is not None:  # the previous subscription's connection
                    with contextlib.suppress(Exception):
                        await self.pubsub.aclose()
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                self.listening, retry = True, self.RETRY_S[0]
                if lost_at is not None:
                    gap, lost_at = time.monotonic() - lost_at, None
                    log.warning("pub/sub: subscribed to Redis again after %.1f s", gap)
                    if self.on_resubscribed is not None:
                        task = asyncio.create_task(self.on_resubscribed(gap))
                        self._resyncs.add(task)
                        task.add_done_callback(self._resyncs.discard)
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                if lost_at is None:
                    lost_at = time.monotonic()
                    log.warning(
                        "pub/sub: lost Redis (%s); retrying every %.0f s at most",
                        exc_line(exc),
                        self.RETRY_S[1],
                        extra={"outage": "Redis"},
                    )
                await asyncio.sleep(retry)
                retry = min(retry * 2, self.RETRY_S[1])


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
    throttle_bad_input_logs()  # a client's garbage costs one short line, not a traceback
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024)
    node_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    manager: socketio.AsyncManager | None = None
    if settings.redis_url:
        # Scaled out: fan-out through Redis pub/sub (the rest is chosen in vtax.compose).
        manager = RedisManager(
            settings.redis_url,
            channel=f"{settings.redis_prefix}socketio",
            redis_options={"max_connections": redis_client.SOCKETIO_MAX_CONNECTIONS},
        )
    sio = Server(
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
        connect_timeout_s=settings.connect_timeout_s,
    )
    sio.attach(app, socketio_path="socket.io")
    hub = Hub(sio, settings)
    if isinstance(manager, RedisManager):
        manager.cut_room = hub.cut_here
    services = compose.build(settings, hub, node_id, on_revoked=hub.disconnect_user)
    if isinstance(manager, RedisManager):

        async def resync(gap_s: float) -> None:
            told, offers = await events.after_fanout_gap(hub, services, gap_s)
            log.warning(
                "pub/sub gap of %.1f s: %d call participants told to resync, %d offers sent again",
                gap_s,
                told,
                offers,
            )

        manager.on_resubscribed = resync
    hub.authenticate_with(services.authenticate)
    ctx = AppContext(services=services, hub=hub)
    app[CONTEXT] = ctx
    events.register(hub, services)
    # consent, recorder jobs, playback (docs/recording.md)
    setup_recording(app, hub, services.calls, services.backends.recording_jobs)
    add_routes(app)
    add_stats_routes(app)  # GET /api/stats/live
    add_desk_routes(app)  # the agent desk
    add_appointment_routes(app)  # bookings, pre-review, planning (docs/appointments.md)
    add_identity_routes(app)  # sign-in: SMS, OIDC, kiosk; refresh, act-for; staff factor
    add_assistant_routes(app)  # knowledge base, transcripts, suggestions, assistant KPIs
    add_confirmation_routes(app)  # the confirmation form's definitions and history
    add_materials_routes(app)  # materials the taxpayer hands in during the call
    add_chat_routes(app)  # a session's chat messages (docs/protocol.md, "In-call chat")
    add_quality_routes(app)  # the call-quality KPI (docs/review.md, Call quality)
    observability.install(app)  # /metrics
    check_bound(app)  # every endpoint of the contract has its handler
    if settings.redis_url:
        ctx.ready_checks.append(lambda: _redis_ready(ctx, sio))
    add_pages(app, settings.web_dir)
    do_migrate = settings.is_embedded_database if migrate_on_start is None else migrate_on_start

    async def on_startup(app: web.Application) -> None:
        if do_migrate:
            await migrate(url, timezone=settings.service_timezone)
        try:  # the stored days are the service zone's, or the node does not start
            await services.check_days_zone()
        except ZoneMismatch:
            await services.close()  # aiohttp runs no on_cleanup after a failed start
            raise
        services.calls.start_background()
        hub.start_recheck(settings.socket_recheck_s)  # tokens revoked in another process
        services.multiparty.start_background()  # invitations expire
        services.monitor.start_background()  # monitoring jobs nobody joined go again
        services.queue.start()  # timers, dispatch retries, statistics pushes
        services.folder.start()  # KPI journal -> rollup (vtax/review/rollup.py)
        services.appointment_tasks.start()  # texts, no-show sweep, callback windows
        await services.start_assistant()  # seed an empty knowledge base, warm the index
        if not sio.manager_initialized:
            # python-socketio starts the pub/sub listener at the first client; start it now so
            # /readyz can watch it and a fresh node hears the others from the first second.
            sio.manager_initialized = True
            sio.manager.initialize()

    async def on_cleanup(app: web.Application) -> None:
        sio.cancel_pending()
        await hub.stop_recheck()
        await services.close()
        await _close_pubsub(sio.manager)

    app.on_response_prepare.append(_security_headers)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
