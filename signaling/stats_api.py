"""Live queue statistics: `GET /api/stats/live` (supervisors), the same figures that are pushed
to supervisors as `queue:stats` every `VTAX_STATS_PUSH_S` (vtax/app/stats.py)."""

from __future__ import annotations

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import bind, json_response, query
from vtax.contract.review import NoQuery


async def live_stats(request: web.Request) -> web.Response:
    query(request, NoQuery)
    stats = await request.app[CONTEXT].services.figures.figures()
    return json_response(stats.model_dump(mode="json"))


def add_stats_routes(app: web.Application) -> None:
    bind(app, {"live_stats": live_stats})
