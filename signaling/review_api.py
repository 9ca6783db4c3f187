"""The review loop over HTTP: the agent's summary, the taxpayer's check and rating, document
delivery with receipts, and the supervisor's review (full loop and audit log, quality form,
flag follow-up, streaming CSV export, KPIs). The loop itself lives in vtax.review."""

from __future__ import annotations

import csv
import io
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from signaling.context import CONTEXT, AppContext
from signaling.http_api import (
    LINK_PARAM,
    PRINCIPAL,
    UPLOAD_CHUNK,
    ApiError,
    Handler,
    bind,
    body,
    json_response,
    link_resource,
    query,
    read_limited,
    session_filter,
)
from vtax.app.ports import Caller
from vtax.auth import Principal
from vtax.contract import client_events as ce
from vtax.contract import review as rv
from vtax.contract.base import no_nul
from vtax.review.days import today
from vtax.review.deliveries import Deliveries
from vtax.review.kpi import KpiQuery
from vtax.review.quality import MAX_TOTAL, QUALITY_FORM
from vtax.review.records import Scope
from vtax.review.views import iso, seconds

DELIVERIES = web.AppKey("vtax.deliveries", Deliveries)
MAX_KPI_DAYS = 366
EXPORT_PATH = "/api/review/export.csv"
EXPORT_LINK = "review-export"  # the purpose a download link of the export is signed for
EXPORT_LINK_TTL_S = 60
CSV_COLUMNS = (
    "id",
    "joined_at",
    "answered_at",
    "ended_at",
    "outcome",
    "end_reason",
    "category",
    "final_category",
    "language",
    "channel",
    "agent_id",
    "agent_username",
    "taxpayer_id",
    "wait_s",
    "duration_s",
    "wrap_up_s",
    "summary_result",
    "summary_items",
    "follow_up_status",
    "follow_up_due",
    "check",
    "rating_score",
    "rating_comment",
    "flag",
    "flag_reasons",
    "question",
    "chat_messages",  # in-call chat messages of the session
    "consultation_id",  # the assistant's conversation it was handed off from, if any
    "booking_id",  # the appointment checked in, if any
)


def now() -> datetime:
    return datetime.now(UTC)


def caller(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def app_caller(request: web.Request) -> Caller:
    who = caller(request)
    return Caller(
        who.subject,
        who.role,  # type: ignore[arg-type]
        expires_at=who.expires_at,
        acting_for=who.acting_for,
        acting_role=who.acting_role,
        acr=who.acr,
        auth_time=who.auth_time,
    )


def scope_of(request: web.Request) -> Scope:
    who = caller(request)
    return Scope(who.role, who.subject, who.acting_for, who.acting_role)


def path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not 1 <= len(value) <= 64 or "\x00" in value:
        raise ApiError(404, "not_found", "no such resource")
    return value


async def visible_session(request: web.Request, ctx: AppContext) -> str:
    """The session id from the path, if the caller may see that session (else 404)."""
    session_id = path_id(request, "session_id")
    await ctx.records.get(session_id, scope_of(request))
    return session_id


# ---- handle, check, evaluate ------------------------------------------------------------


async def save_summary(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    p = await body(request, ce.SummaryBody)
    return json_response(await ctx.services.loop.summary(app_caller(request), session_id, p))


async def check_summary(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    p = await body(request, ce.CheckBody)
    return json_response(await ctx.services.loop.check(app_caller(request), session_id, p))


async def list_checks(request: web.Request) -> web.Response:
    """The taxpayer's confirmations and disputes with their comments, oldest first: what
    the agent needs to revise a disputed summary."""
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    query(request, rv.NoQuery)  # takes no parameters
    detail = await ctx.records.loop.detail(session_id)
    return json_response({"checks": detail["checks"]})


async def rate(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    p = await body(request, ce.RatingBody)
    return json_response(await ctx.services.loop.rate(app_caller(request), session_id, p))


async def close_follow_up(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    p = await body(request, rv.FollowUpDoneIn)
    done = await ctx.services.loop.close_follow_up(app_caller(request), session_id, p.note)
    return json_response(done)


# ---- deliver -----------------------------------------------------------------------------


async def read_upload(request: web.Request, limit: int) -> tuple[str, bytes, str]:
    """(filename, content, note) from a multipart form (`file`, optional `note`) or a raw
    body (`?filename=&note=`). The client's content type of the document is ignored."""
    if request.content_length is not None and request.content_length > limit + UPLOAD_CHUNK:
        raise ApiError(413, "payload_too_large", f"documents are at most {limit} bytes")
    if request.content_type != "multipart/form-data":
        q = query(request, rv.UploadQuery)
        return q.filename, await read_limited(request, limit, "a document"), q.note
    if request.query:
        raise ApiError(400, "invalid_payload", "a multipart upload takes no query parameters")
    filename, data, note = "document", None, ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a malformed header is refused below, not warned
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise ApiError(400, "invalid_payload", "nested multipart is not accepted")
                if part.name == "file" and data is None:
                    filename = (part.filename or "document")[:200]
                    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
                        raise ApiError(
                            400, "invalid_payload", "the file name has control characters"
                        )
                    data = await read_limited(part, limit, "a document")
                elif part.name == "note":
                    raw = await read_limited(part, 4 * 1000, f"`{part.name}`")
                    note = no_nul(raw.decode("utf-8"))[:1000]
                else:
                    raise ApiError(400, "invalid_payload", "the form takes `file` and `note`")
    except (ValueError, RuntimeError, LookupError, AssertionError, HttpProcessingError) as exc:
        # incl. bad UTF-8, and a part's header with control characters (aiohttp's InvalidHeader)
        raise ApiError(400, "invalid_payload", f"the multipart body is not valid: {exc}") from None
    if data is None:
        raise ApiError(400, "invalid_payload", "the form has no `file` part")
    return filename, data, note


async def deliver(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    filename, data, note = await read_upload(request, ctx.services.deliveries.max_bytes)
    view = await ctx.services.loop.deliver(
        app_caller(request), session_id, filename=filename, data=data, note=note
    )
    return json_response(view, status=201)


async def list_deliveries(request: web.Request) -> web.Response:
    q = query(request, rv.DeliveryListQuery)
    rows, cursor = await request.app[DELIVERIES].list(
        scope_of(request), status=q.status, session_id=q.session_id, limit=q.limit, before=q.before
    )
    return json_response({"deliveries": rows, "next_before": cursor})


async def get_delivery(request: web.Request) -> web.Response:
    view = await request.app[DELIVERIES].get(path_id(request, "delivery_id"), scope_of(request))
    return json_response(view)


async def download(request: web.Request) -> web.Response:
    view, data = await request.app[DELIVERIES].download(
        path_id(request, "delivery_id"), scope_of(request), now()
    )
    return web.Response(
        body=data,
        content_type=view["media_type"],
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(view['filename'])}",
            "X-Content-SHA256": view["sha256"],
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


async def acknowledge(request: web.Request) -> web.Response:
    p = await body(request, rv.AcknowledgeIn)
    loop = request.app[CONTEXT].services.loop
    view = await loop.acknowledge(app_caller(request), path_id(request, "delivery_id"), p.sha256)
    return json_response(view)


# ---- supervisor review -------------------------------------------------------------------


async def quality_form(request: web.Request) -> web.Response:
    return json_response({"items": list(QUALITY_FORM), "max_total": MAX_TOTAL})


async def list_agents(request: web.Request) -> web.Response:
    """The agents, for the supervisor's filters (session list, KPIs, export)."""
    query(request, rv.NoQuery)  # takes no parameters
    staff = await request.app[CONTEXT].accounts.staff_list("agent")
    agents = [{"id": a.id, "username": a.username, "display_name": a.display_name} for a in staff]
    return json_response({"agents": agents})


async def review_detail(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = path_id(request, "session_id")
    detail = await ctx.records.loop.detail(session_id)
    history = await ctx.services.confirmation.history(session_id)  # the form's versions
    call_quality = await ctx.services.quality.summary(session_id)  # vtax/app/quality.py
    detail["call_quality"] = call_quality.model_dump(mode="json") if call_quality else None
    return json_response({**detail, "confirmation": history.model_dump(mode="json")})


async def review_quality(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = path_id(request, "session_id")
    p = await body(request, rv.QualityReviewIn)
    review = await ctx.records.loop.review_quality(
        session_id, caller(request).subject, now(), dict(p.scores), p.comment
    )
    return json_response(review, status=201)


async def resolve_flag(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = path_id(request, "session_id")
    p = await body(request, rv.FlagResolveIn)
    done = await ctx.records.loop.resolve_flag(session_id, caller(request).subject, now(), p.note)
    return json_response(done)


def _csv_cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts with one of these as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(r: dict[str, Any]) -> list[Any]:
    """One CSV line from `SessionRecords.export_rows`, in the order of CSV_COLUMNS."""
    values = {
        **r,
        "joined_at": iso(r["joined_at"]),
        "answered_at": iso(r["answered_at"]),
        "ended_at": iso(r["ended_at"]),
        "wait_s": seconds(r["wait_ms"]),
        "duration_s": seconds(r["talk_ms"]),
        "wrap_up_s": seconds(r["wrap_ms"]),
        "summary_items": " ".join(r["summary_items"] or []),
        "follow_up_due": iso(r["follow_up_due"]),
        "check": r["check_status"],
        "flag_reasons": " ".join(r["flag_reasons"] or []),
    }
    return [_csv_cell("" if values[c] is None else values[c]) for c in CSV_COLUMNS]


async def export_link(request: web.Request) -> web.Response:
    """A download link of the CSV export for these filters (the query of this request): the
    page navigates to it and the browser streams the file to disk, no bearer header needed.
    Signed for this supervisor, the export path and exactly this query; valid for a minute."""
    ctx = request.app[CONTEXT]
    session_filter(query(request, rv.SessionFilterQuery), ctx)  # refused as the export
    resource = link_resource(EXPORT_PATH, request.query)
    token, expires = ctx.issuer.link_token(
        EXPORT_LINK, caller(request).subject, resource, EXPORT_LINK_TTL_S
    )
    separator = "" if resource.endswith("?") else "&"
    return json_response(
        {
            "url": f"{resource}{separator}{urlencode({LINK_PARAM: token})}",
            "expires_at": iso(datetime.fromtimestamp(expires, UTC)),
        },
        headers={"Cache-Control": "no-store"},
    )


async def export_csv(request: web.Request) -> web.StreamResponse:
    """Streams the filtered sessions as CSV, a page at a time (memory stays flat). Bearer
    token or a signed link (`dl`, from export_link; checked by the route guard)."""
    ctx = request.app[CONTEXT]
    filters = session_filter(query(request, rv.ExportQuery), ctx)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="sessions.csv"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for session in ctx.records.export_rows(scope_of(request), filters):
        writer.writerow(csv_row(session))
        count += 1
        if count % 500 == 0:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response


async def kpi(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    q = query(request, rv.KpiQuery)
    ctx.catalog.check_categories(q.category)
    day_from = q.date_from or (q.date_to or today(ctx.records.zone, now()))
    day_to = q.date_to or day_from
    if day_to < day_from:
        raise ApiError(400, "invalid_payload", "`to` is before `from`")
    if day_to - day_from >= timedelta(days=MAX_KPI_DAYS):
        raise ApiError(400, "invalid_payload", f"the range is at most {MAX_KPI_DAYS} days")
    report = await ctx.records.kpis.report(
        KpiQuery(
            day_from=day_from,
            day_to=day_to,
            group_by=q.group_by,
            threshold_s=q.threshold_s,
            agent_id=q.agent,
            category=q.category,
            channel=q.channel,
            language=q.language,
        )
    )
    # the service zone's days (the report's `timezone`; docs/review.md, Days)
    answer = rv.KpiReport.model_validate(report)
    return json_response(answer.model_dump(mode="json", by_alias=True))


# ---- registration ------------------------------------------------------------------------


def add_review_routes(app: web.Application) -> None:
    """The review loop's endpoints (their table: vtax/contract/endpoints.py)."""
    app[DELIVERIES] = app[CONTEXT].services.deliveries
    bind(app, HANDLERS)


HANDLERS: dict[str, Handler] = {
    "save_summary": save_summary,
    "check_summary": check_summary,
    "list_checks": list_checks,
    "rate": rate,
    "close_follow_up": close_follow_up,
    "deliver": deliver,
    "list_deliveries": list_deliveries,
    "get_delivery": get_delivery,
    "download": download,
    "acknowledge": acknowledge,
    "quality_form": quality_form,
    "list_agents": list_agents,
    "review_detail": review_detail,
    "review_quality": review_quality,
    "resolve_flag": resolve_flag,
    "export_link": export_link,
    "export_csv": export_csv,
    "kpi": kpi,
}
