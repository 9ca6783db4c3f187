"""Call quality over HTTP: `GET /api/stats/kpi/call-quality` (vtax/app/quality.py). The
per-session summary is part of the review detail (signaling/review_api.py)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import ApiError, bind, json_response, query
from vtax.contract.quality import CallQualityKpi, CallQualityKpiQuery
from vtax.review.days import today

MAX_DAYS = 366


async def call_quality_kpi(request: web.Request) -> web.Response:
    q = query(request, CallQualityKpiQuery)
    services = request.app[CONTEXT].services
    day_from = q.date_from or (q.date_to or today(ZoneInfo(services.quality.zone)))
    day_to = q.date_to or day_from
    if day_to < day_from:
        raise ApiError(400, "invalid_payload", "`to` is before `from`")
    if day_to - day_from >= timedelta(days=MAX_DAYS):
        raise ApiError(400, "invalid_payload", f"the range is at most {MAX_DAYS} days")
    report = await services.quality.kpi(day_from, day_to, q.group_by)  # the zone's days
    answer = CallQualityKpi.model_validate(report)
    return json_response(answer.model_dump(mode="json", by_alias=True))


def add_quality_routes(app: web.Application) -> None:
    bind(app, {"call_quality_kpi": call_quality_kpi})
