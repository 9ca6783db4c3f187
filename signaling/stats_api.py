"""Live queue statistics: `GET /api/stats/live` (supervisors), the same figures that are pushed
to supervisors as `queue:stats` every `VTAX_STATS_PUSH_S` (vtax/app/stats.py)."""

from __future__ import annotations

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import Endpoint, json_response, route
from vtax.contract.http import LiveStatsOut


async def live_stats(request: web.Request) -> web.Response:
    stats = await request.app[CONTEXT].services.figures.figures()
    return json_response(stats.model_dump(mode="json"))


def add_stats_routes(app: web.Application) -> None:
    """Register `GET /api/stats/live`."""
    route(
        app,
        live_stats,
        Endpoint(
            "GET",
            "/api/stats/live",
            "Live queue statistics: waiting, longest wait, agents by state, offers, "
            "today's service level, ASA, abandonment (docs/routing.md); who is on duty and "
            "the live sessions; the service's targets",
            roles=("supervisor",),
            response=LiveStatsOut,
            tags=("stats",),
            errors=(401, 403),
        ),
    )
