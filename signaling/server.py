"""Run a node: bind, optionally seed the demo accounts, print where the pages are."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import signal
from pathlib import Path

from aiohttp import web

from signaling.app import create_app
from signaling.context import CONTEXT
from signaling.recording import start_embedded_recorder, stop_embedded_recorder
from vtax.app.identity_wiring import import_registry, report_lines
from vtax.config import Settings
from vtax.db import migrate
from vtax.sms import LogSmsSender

log = logging.getLogger(__name__)


async def _seed_demo(app: web.Application) -> list[tuple[str, str, str]]:
    ctx = app[CONTEXT]
    catalog = ctx.catalog
    accounts = []
    agent_pw, sup_pw = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
    await ctx.accounts.add_user(
        "agent1",
        "agent",
        agent_pw,
        display_name="Agent Chen (demo)",
        skills=dict.fromkeys(catalog.categories, 4),
        languages=sorted(catalog.languages),
        replace=True,
    )
    accounts.append(("agent", "agent1", agent_pw))
    await ctx.accounts.add_user(
        "supervisor1", "supervisor", sup_pw, display_name="Supervisor Li (demo)", replace=True
    )
    accounts.append(("supervisor", "supervisor1", sup_pw))
    return accounts


# in a checkout (or an editable install) beside the packages; in the image, /app/examples
DEMO_REGISTRY = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[1] / "examples" / "registry-demo.csv",
            Path.cwd() / "examples" / "registry-demo.csv",
        )
        if p.is_file()
    ),
    Path("examples") / "registry-demo.csv",
)
DEMO_PHONE = "+86 138 0013 8000"


async def _demo_registry(app: web.Application) -> list[str]:
    """Import the demo registry (its people, verified numbers and enterprises) and say how
    the taxpayers sign in."""
    ctx = app[CONTEXT]
    lines: list[str] = []
    if DEMO_REGISTRY.is_file():
        report = await import_registry(ctx.settings, DEMO_REGISTRY)
        lines.extend(f"  demo registry: {line}" for line in report_lines(report))
        sms = ctx.services.identity.sms
        if not report.errors and sms is not None and isinstance(sms.sender, LogSmsSender):
            lines.append(
                f"  demo taxpayer: sign in with {DEMO_PHONE}: the code appears in this log"
            )
    else:
        lines.append(f"  demo registry: {DEMO_REGISTRY} is missing; nobody can sign in by SMS")
    return lines


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The node's HTTP server. `keepalive_timeout` also closes a connection that never
    completes a request (a half-sent one, or none at all): aiohttp's default holds it for an
    hour."""
    return web.AppRunner(
        app, handle_signals=False, access_log=None, keepalive_timeout=settings.http_idle_timeout_s
    )


async def _run(settings: Settings, demo: bool) -> None:
    app = create_app(settings, migrate_on_start=False)
    if settings.is_embedded_database:
        await migrate(settings.resolved_database_url, timezone=settings.service_timezone)
    runner = make_runner(app, settings)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    recorder = start_embedded_recorder(settings, port)  # embedded default: one recorder worker
    base = f"http://{'localhost' if settings.host in ('127.0.0.1', '0.0.0.0') else settings.host}:{port}"
    lines = [
        f"V-Tax node listening on {base} (database: "
        f"{settings.resolved_database_url.split('@')[-1]})",
        f"  taxpayer page:   {base}/taxpayer",
        f"  kiosk page:      {base}/kiosk",
        f"  agent page:      {base}/agent",
        f"  wallboard:       {base}/wallboard",
        f"  supervisor page: {base}/supervisor",
    ]
    if demo:
        for role, name, password in await _seed_demo(app):
            lines.append(f"  demo {role}: username {name}  password {password}")
        lines.extend(await _demo_registry(app))
    print("\n".join(lines), flush=True)
    if settings.gc_tuning:
        _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ctx = app[CONTEXT]
    ctx.draining = True  # /readyz answers 503 at once: the balancer stops sending new clients
    # The recorder closes its files while the node drains (and still answers it).
    recorder_stopped = asyncio.ensure_future(stop_embedded_recorder(recorder))
    log.info("draining: moving clients to other nodes (at most %.0f s)", settings.drain_timeout_s)
    try:
        # A second signal during the drain cuts it short.
        await asyncio.wait_for(
            ctx.hub.drain(settings.drain_timeout_s), timeout=settings.drain_timeout_s + 5
        )
    except TimeoutError:
        log.warning("drain did not finish in time")
    await recorder_stopped
    await runner.cleanup()
    log.info("stopped")


def serve(settings: Settings, demo: bool = False) -> int:
    if settings.uvloop:
        try:
            import uvloop
        except ImportError:  # not on this platform: the standard loop does the same work
            log.warning("uvloop is not installed; using the standard event loop")
        else:
            uvloop.run(_run(settings, demo))
            return 0
    asyncio.run(_run(settings, demo))
    return 0


def _tune_gc() -> None:
    """The relay allocates many short-lived containers per message, and the default
    generation-0 threshold (700) runs full collections that find nothing: measured as the
    largest single cost at 200 concurrent pairs (docs/benchmarks.md). Freeze what start-up
    made (never garbage) and collect generation 0 less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
