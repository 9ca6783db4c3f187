"""Appointments (预约) over HTTP: slots, bookings, materials, pre-review, strikes, the calendar,
the staffing plan and the figures (vtax/app/appointments.py; the endpoints are in
vtax/contract/endpoints.py, `APPOINTMENTS`). Every handler validates its query or body against
the contract's model and passes the caller to the use case, which decides who may do what; a
booking that is not the caller's answers 404."""

from __future__ import annotations

import re

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import PRINCIPAL, ApiError, bind, body, json_response, query
from signaling.review_api import read_upload
from vtax.app.appointments import Appointments
from vtax.app.ports import Caller
from vtax.contract import appointments as ap
from vtax.contract.base import Out
from vtax.contract.review import NoQuery

PATH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CALENDAR_MAX = 64 * 1024


def _caller(request: web.Request) -> Caller:
    who = request[PRINCIPAL]
    return Caller(who.subject, who.role)


def _use_cases(request: web.Request) -> Appointments:
    return request.app[CONTEXT].services.appointments


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not PATH_ID.match(value):
        raise ApiError(404, "not_found", "no such resource")
    return value


def _answer(model: Out, status: int = 200) -> web.Response:
    return json_response(model.model_dump(mode="json", by_alias=True), status=status)


async def slots(request: web.Request) -> web.Response:
    q = query(request, ap.SlotQuery)
    return _answer(await _use_cases(request).list_slots(_caller(request), q))


async def book(request: web.Request) -> web.Response:
    b = await body(request, ap.BookIn)
    return _answer(await _use_cases(request).book(_caller(request), b), 201)


async def mine(request: web.Request) -> web.Response:
    query(request, NoQuery)
    return _answer(await _use_cases(request).mine(_caller(request)))


async def get(request: web.Request) -> web.Response:
    query(request, NoQuery)
    view = await _use_cases(request).get(_caller(request), _id(request, "booking_id"))
    return _answer(ap.BookingDetail.model_validate(view.model_dump()))


async def cancel(request: web.Request) -> web.Response:
    b = await body(request, ap.CancelIn)
    booking_id = _id(request, "booking_id")
    return _answer(await _use_cases(request).cancel(_caller(request), booking_id, b))


async def reschedule(request: web.Request) -> web.Response:
    b = await body(request, ap.RescheduleIn)
    booking_id = _id(request, "booking_id")
    return _answer(await _use_cases(request).reschedule(_caller(request), booking_id, b))


async def attach(request: web.Request) -> web.Response:
    use_cases = _use_cases(request)
    booking_id = _id(request, "booking_id")
    limit = use_cases.bookings.rules.material_max_bytes
    filename, data, _note = await read_upload(request, limit)
    material = await use_cases.attach(_caller(request), booking_id, filename, data)
    return _answer(material, 201)


async def material(request: web.Request) -> web.Response:
    query(request, NoQuery)
    booking_id, material_id = _id(request, "booking_id"), _id(request, "material_id")
    m, data = await _use_cases(request).material(_caller(request), booking_id, material_id)
    return web.Response(
        body=data,
        content_type=m.media_type,
        headers={
            "X-Content-SHA256": m.sha256,
            "Content-Disposition": "attachment",
            "Cache-Control": "private, no-store",
        },
    )


async def replace_material(request: web.Request) -> web.Response:
    use_cases = _use_cases(request)
    booking_id, material_id = _id(request, "booking_id"), _id(request, "material_id")
    limit = use_cases.bookings.rules.material_max_bytes
    filename, data, _note = await read_upload(request, limit)
    m = await use_cases.replace_material(_caller(request), booking_id, material_id, filename, data)
    return _answer(m)


async def review_material(request: web.Request) -> web.Response:
    b = await body(request, ap.MaterialVerdictIn)
    booking_id, material_id = _id(request, "booking_id"), _id(request, "material_id")
    view = await _use_cases(request).review_material(_caller(request), booking_id, material_id, b)
    return _answer(view)


async def pre_review(request: web.Request) -> web.Response:
    b = await body(request, ap.PreReviewIn)
    booking_id = _id(request, "booking_id")
    return _answer(await _use_cases(request).pre_review(_caller(request), booking_id, b))


async def review_list(request: web.Request) -> web.Response:
    q = query(request, ap.BookingListQuery)
    rows = await _use_cases(request).review_list(_caller(request), q)
    return _answer(ap.StaffBookingsOut(bookings=rows))


async def strikes(request: web.Request) -> web.Response:
    query(request, NoQuery)
    taxpayer_id = _id(request, "taxpayer_id")
    return _answer(await _use_cases(request).strikes(_caller(request), taxpayer_id))


async def lift_block(request: web.Request) -> web.Response:
    b = await body(request, ap.LiftBlockIn)
    taxpayer_id = _id(request, "taxpayer_id")
    return _answer(await _use_cases(request).lift_block(_caller(request), taxpayer_id, b))


async def import_calendar(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > CALENDAR_MAX:
        raise ApiError(413, "payload_too_large", f"a calendar file is at most {CALENDAR_MAX} bytes")
    raw = await request.content.read(CALENDAR_MAX + 1)
    if len(raw) > CALENDAR_MAX:
        raise ApiError(413, "payload_too_large", f"a calendar file is at most {CALENDAR_MAX} bytes")
    return _answer(await _use_cases(request).import_calendar(_caller(request), raw))


async def calendar_years(request: web.Request) -> web.Response:
    query(request, NoQuery)
    return _answer(await _use_cases(request).calendar_years(_caller(request)))


async def staffing(request: web.Request) -> web.Response:
    query(request, NoQuery)
    return _answer(await _use_cases(request).staffing(_caller(request)))


async def set_staffing(request: web.Request) -> web.Response:
    b = await body(request, ap.StaffingPlanIn)
    return _answer(await _use_cases(request).set_staffing(_caller(request), b))


async def figures(request: web.Request) -> web.Response:
    q = query(request, ap.FiguresQuery)
    return _answer(await _use_cases(request).figures(_caller(request), q))


def add_appointment_routes(app: web.Application) -> None:
    # The order of vtax.contract.endpoints.APPOINTMENTS: fixed paths before `{booking_id}`.
    bind(
        app,
        {
            "appointment_slots": slots,
            "appointment_review_list": review_list,
            "appointment_staffing": staffing,
            "appointment_set_staffing": set_staffing,
            "appointment_calendar_years": calendar_years,
            "appointment_calendar": import_calendar,
            "appointment_figures": figures,
            "appointment_strikes": strikes,
            "appointment_lift_block": lift_block,
            "appointment_book": book,
            "appointment_mine": mine,
            "appointment_get": get,
            "appointment_cancel": cancel,
            "appointment_reschedule": reschedule,
            "appointment_attach": attach,
            "appointment_material": material,
            "appointment_replace_material": replace_material,
            "appointment_review_material": review_material,
            "appointment_pre_review": pre_review,
        },
    )
