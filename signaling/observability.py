"""Prometheus metrics: one registry per app (no global state), read at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from signaling.context import CONTEXT, AppContext
from signaling.http_api import bind, database_check
from signaling.recording import RECORDING
from vtax import turn_probe
from vtax.ice import turn_credentials
from vtax.turn_probe import turn_target


class Metrics:
    """Histograms observed on the hot path; everything else is read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.dispatch_seconds = Histogram(
            "vtax_dispatch_seconds",
            "Time from a queue change (join, agent available) to the offer sent to the agent",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )


METRICS = web.AppKey("vtax_metrics", Metrics)
TURN_PROBE = web.AppKey("vtax_turn_probe", asyncio.Task)
TURN_PROBE_INTERVAL_S = 30.0
log = logging.getLogger(__name__)


class _Snapshot(Collector):
    """Reads counters and gauges from the running node when Prometheus scrapes."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.backends: dict[str, bool] = {}  # backend -> up, as of the last probe
        self.recorder_backlog: int | None = None
        self.turn_ok: bool | None = None  # None: no TURN server configured, or not probed yet
        self.turn_failures = 0

    async def probe_turn_forever(self, interval_s: float) -> None:
        """Allocate a relay on the deployment's TURN server with credentials made as the
        pages get them, every `interval_s`: TURN failing is what leaves kiosks behind carrier
        NAT without media, and nothing else in the node would notice."""
        settings = self.ctx.settings
        target = turn_target(settings.turn_urls)
        if target is None or not settings.turn_secret:
            return
        while True:
            user, password = turn_credentials(settings.turn_secret, "probe", ttl_s=120)
            why = await asyncio.to_thread(turn_probe.probe, *target, user, password)
            if why is not None:
                self.turn_failures += 1
                if self.turn_ok is not False:
                    log.warning("TURN probe of %s:%d failed: %s", *target, why)
            elif self.turn_ok is False:
                log.warning("TURN probe of %s:%d works again", *target)
            self.turn_ok = why is None
            await asyncio.sleep(interval_s)

    def collect(self) -> Any:
        ctx = self.ctx
        clients = GaugeMetricFamily(
            "vtax_connected_clients", "Socket.IO connections on this node", labels=["role"]
        )
        for role in ("taxpayer", "agent", "supervisor", "recorder"):
            clients.add_metric([role], ctx.hub.count_by_role().get(role, 0))
        yield clients
        yield CounterMetricFamily(
            "vtax_signals_relayed", "rtc:signal messages relayed", value=ctx.relay.signals_relayed
        )
        yield CounterMetricFamily(
            "vtax_resumes", "Sessions resumed after a drop", value=ctx.relay.resumes
        )
        yield CounterMetricFamily(
            "vtax_rate_limited", "Events refused by a rate limit", value=ctx.hub.rate_limited
        )
        yield CounterMetricFamily(
            "vtax_events", "Client events handled", value=ctx.hub.events_handled
        )
        gauge = GaugeMetricFamily("vtax_queue_depth", "Waiting tickets", labels=["queue"])
        for queue, n in ctx.services.figures.depth_by_queue().items():
            gauge.add_metric([queue], n)
        yield gauge
        kv = ctx.queue.engine.kv
        yield CounterMetricFamily(
            "vtax_queue_transactions",
            "Queue transactions committed by this node",
            value=kv.transactions,
        )
        yield CounterMetricFamily(
            "vtax_queue_conflicts",
            "Queue transactions run again because a watched key changed (Redis backend)",
            value=kv.conflicts,
        )
        yield GaugeMetricFamily(
            "vtax_draining", "1 while the node drains", value=int(ctx.hub.draining)
        )
        yield from self.queue_figures()
        up = GaugeMetricFamily(
            "vtax_backend_up",
            "1 when the backend answered this scrape's probe (the /readyz checks), else 0",
            labels=["backend"],
        )
        for backend, ok in self.backends.items():
            up.add_metric([backend], int(ok))
        yield up
        if self.turn_ok is not None:
            yield GaugeMetricFamily(
                "vtax_turn_probe_ok",
                "1 when the last TURN probe (an Allocate with fresh REST credentials) worked",
                value=int(self.turn_ok),
            )
            yield CounterMetricFamily(
                "vtax_turn_probe_failures", "TURN probes that failed", value=self.turn_failures
            )
        if self.recorder_backlog is not None:
            yield GaugeMetricFamily(
                "vtax_recording_backlog",
                "Recording jobs waiting for a recorder worker",
                value=self.recorder_backlog,
            )

    def queue_figures(self) -> Iterator[GaugeMetricFamily]:
        """Per queue, from the latest live figures: the longest wait, today's service level
        (absent before the first answer), and the targets the alert rules compare them to."""
        ctx = self.ctx
        last = ctx.services.figures.last
        longest = GaugeMetricFamily(
            "vtax_queue_longest_wait_seconds", "The longest current wait", labels=["queue"]
        )
        level = GaugeMetricFamily(
            "vtax_queue_service_level",
            "Today's share answered within the queue's threshold (the service's day)",
            labels=["queue"],
        )
        answered = GaugeMetricFamily(
            "vtax_queue_answered_today", "Tickets answered today", labels=["queue"]
        )
        for name, q in last.queues.items() if last is not None else ():
            longest.add_metric([name], q.longest_wait_s)
            answered.add_metric([name], q.today.answered)
            if q.today.service_level is not None:
                level.add_metric([name], q.today.service_level)
        yield from (longest, level, answered)
        yield GaugeMetricFamily(
            "vtax_service_level_target",
            "The share answered within T the service aims for (VTAX_SERVICE_LEVEL_TARGET)",
            value=ctx.settings.service_level_target,
        )
        yield GaugeMetricFamily(
            "vtax_longest_wait_alert_seconds",
            "Alert when a ticket waits longer (VTAX_LONGEST_WAIT_ALERT_S)",
            value=ctx.settings.longest_wait_alert_s,
        )

    async def probe(self, recording: Any) -> None:
        """Before each scrape: the backends' state (each check bounded to 2 s, so a scrape
        never hangs on a dead backend) and the recorder backlog."""
        checks = await asyncio.gather(
            *(asyncio.wait_for(check(), 2.0) for check in self.ctx.ready_checks),
            database_check(self.ctx),
            return_exceptions=True,
        )
        self.backends = {"database": False}
        for got in checks:
            if isinstance(got, tuple):
                name, state = got
                self.backends[name] = state == "ok"
        self.recorder_backlog = None
        if recording is not None:
            try:
                self.recorder_backlog = await asyncio.wait_for(recording.jobs.backlog(), 2.0)
            except Exception:
                self.recorder_backlog = None


def install(app: web.Application) -> Metrics:
    metrics = Metrics()
    ctx = app[CONTEXT]
    snapshot = _Snapshot(ctx)
    metrics.registry.register(snapshot)
    ctx.services.notices.on_dispatch = metrics.dispatch_seconds.observe
    app[METRICS] = metrics

    async def start_probe(app: web.Application) -> None:
        app[TURN_PROBE] = asyncio.create_task(snapshot.probe_turn_forever(TURN_PROBE_INTERVAL_S))

    async def stop_probe(app: web.Application) -> None:
        task = app[TURN_PROBE]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.on_startup.append(start_probe)
    app.on_cleanup.append(stop_probe)

    token = ctx.settings.metrics_token

    async def handler(request: web.Request) -> web.Response:
        if token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, token):
                return web.Response(
                    status=401,
                    text="send Authorization: Bearer <VTAX_METRICS_TOKEN>\n",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        await snapshot.probe(request.app.get(RECORDING))
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    bind(app, {"metrics": handler})
    return metrics
