"""Prometheus metrics: one registry per app (no global state), read at scrape time."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from signaling.context import CONTEXT, AppContext
from signaling.http_api import bind


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


class _Snapshot(Collector):
    """Reads counters and gauges from the running node when Prometheus scrapes."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

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
            "vtax_chat_messages",
            "In-call chat messages stored by this node",
            value=ctx.services.chat.sent,
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


def install(app: web.Application) -> Metrics:
    metrics = Metrics()
    ctx = app[CONTEXT]
    metrics.registry.register(_Snapshot(ctx))
    ctx.services.notices.on_dispatch = metrics.dispatch_seconds.observe
    app[METRICS] = metrics

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
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    bind(app, {"metrics": handler})
    return metrics
