"""Live queue statistics: `GET /api/stats/live` (supervisors), the same figures that the
engine pushes to supervisors as `queue:stats` every `VTAX_STATS_PUSH_S`."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from signaling.context import CONTEXT
from signaling.http_api import Endpoint, json_response, route


class OffersOut(BaseModel):
    made: int
    accepted: int
    rejected: int
    expired: int


class TodayOut(BaseModel):
    joined: int
    refused: int
    answered: int
    abandoned: int
    timed_out: int
    service_level: float | None  # answered within T / answered
    service_level_with_abandoned: float | None  # (answered + abandoned within T) / both
    asa_s: float | None
    abandonment_rate: float | None
    aht_s: float | None


class QueueStatsOut(BaseModel):
    waiting: int
    longest_wait_s: float
    agents: dict[str, int]  # status -> agents with the category who are not offline
    offers: OffersOut
    today: TodayOut
    service_level_s: float
    strategy: str
    open: bool


class LiveStatsOut(BaseModel):
    at: str
    day: str
    queues: dict[str, QueueStatsOut]


async def live_stats(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTEXT].queue.engine.live_stats())


async def _start_queue(app: web.Application) -> None:
    app[CONTEXT].queue.engine.start()


def add_stats_routes(app: web.Application) -> None:
    """Register `GET /api/stats/live`, and start the queue's background work with the app."""
    route(
        app,
        live_stats,
        Endpoint(
            "GET",
            "/api/stats/live",
            "Live queue statistics: waiting, longest wait, agents by state, offers, "
            "today's service level, ASA, abandonment (docs/routing.md)",
            roles=("supervisor",),
            response=LiveStatsOut,
            tags=("stats",),
            errors=(401, 403),
        ),
    )
    app.on_startup.append(_start_queue)
