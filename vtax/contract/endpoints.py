"""Every REST endpoint of the contract: method, path, who may call it, its models, its status
codes. The server binds one handler to each (signaling/*_api.py, `bind`), the OpenAPI document and the
pages' `paths` type are built from this table, and a test checks that the server has no
route that is not here.

A long file on purpose: it is a table, one entry per endpoint (76), read top to bottom;
splitting it by area would hide the order aiohttp matches paths in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from vtax.contract import appointments as ap
from vtax.contract import chat as ct
from vtax.contract import confirmation as cf
from vtax.contract import consultation as cs
from vtax.contract import http, identity, review
from vtax.contract import materials as mt
from vtax.contract import quality as qa
from vtax.contract.client_events import (
    CheckBody,
    Checked,
    Rated,
    RatingBody,
    SummaryBody,
    SummarySaved,
)

ALL_ROLES = ("taxpayer", "agent", "supervisor")
STAFF = ("agent", "supervisor")
SUPERVISOR = ("supervisor",)
ID_PARAM = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9_.:-]+$"}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: the same models validate the request and write the docs."""

    name: str  # the OpenAPI operationId, and the handler's key in the server
    method: str
    path: str  # aiohttp pattern, e.g. /api/sessions/{session_id}
    summary: str
    roles: tuple[str, ...] | None = None  # None: public
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    # other response media, e.g. {"text/csv": "CSV, one row per session"}
    produces: dict[str, str] = field(default_factory=dict)
    # a request body that is not a JSON schema (uploads): OpenAPI `content` as is
    request_content: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    # with roles: a signed link (query parameter `dl`, made for this purpose, this path and
    # this exact query) is accepted instead of the bearer token
    link: str | None = None
    # path parameter schemas other than ID_PARAM
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # recordings and exports: with the setting `records_need_second_factor`, a bearer token
    # must come from a sign-in with the second factor (401 second_factor_required); a signed
    # link passes, as only such a sign-in gets one
    second_factor: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # answer headers worth documenting

    def path_params(self) -> list[str]:
        return [p[1:-1].split(":")[0] for p in self.path.split("/") if p.startswith("{")]


UPLOAD_CONTENT = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "note": {"type": "string", "maxLength": 1000},
            },
            "required": ["file"],
        }
    },
    "application/octet-stream": {
        "schema": {"type": "string", "format": "binary"},
        "description": "raw body; name and note in the query",
    },
}
DOCUMENT_MEDIA = {m: "the document" for m in ("application/pdf", "image/png", "image/jpeg")}
DOCUMENT_MEDIA["image/webp"] = "the document"
EXPORT_LINK = "review-export"  # the purpose a download link of the export is signed for
RECORDING_LINK = "recording-file"  # the purpose of a recording file's playback link
LOOP_ERRORS = (404, 409, 413)
SID = "/api/sessions/{session_id}"
DID = "/api/deliveries/{delivery_id}"
RSID = "/api/review/sessions/{session_id}"
NO_STORE = {"Cache-Control": "no-store"}
BACKCHANNEL_CONTENT = {
    "application/x-www-form-urlencoded": {
        "schema": {
            "type": "object",
            "properties": {"logout_token": {"type": "string", "minLength": 16, "maxLength": 4096}},
            "required": ["logout_token"],
        }
    }
}

APID = "/api/appointments/{booking_id}"
CALENDAR_CONTENT = {
    "application/json": {
        "schema": {"type": "object"},
        "description": "a calendar year file (vtax/data/calendar-YYYY.json's shape), at most 64 KiB",
    }
}
MATERIAL_MEDIA = {m: "the material" for m in ("application/pdf", "image/png", "image/jpeg")}
MATERIAL_MEDIA["image/webp"] = "the material"
# Materials handed in during the call (vtax/contract/materials.py)
MATERIAL_UPLOAD_CONTENT = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "source": {"type": "string", "enum": ["file", "camera"]},
                "replaces": {"type": "string", "maxLength": 64},
            },
            "required": ["file"],
        }
    },
    "application/octet-stream": {
        "schema": {"type": "string", "format": "binary"},
        "description": "raw body; name, source and replaces in the query",
    },
}
SESSION_MATERIAL_MEDIA = {m: "the material" for m in DOCUMENT_MEDIA}
# Appointments (docs/appointments.md). The paths without a parameter come before
# `{booking_id}` (aiohttp matches in this order).
APPOINTMENTS: tuple[Endpoint, ...] = (
    Endpoint(
        "appointment_slots",
        "GET",
        "/api/appointments/slots",
        "Bookable slots of a category and language, with their remaining seats",
        roles=ALL_ROLES,
        query=ap.SlotQuery,
        response=ap.SlotsOut,
        tags=("appointments",),
    ),
    Endpoint(
        "appointment_review_list",
        "GET",
        "/api/appointments/review",
        "Staff: a day's bookings by state (default: those waiting for pre-review)",
        roles=STAFF,
        query=ap.BookingListQuery,
        response=ap.StaffBookingsOut,
        tags=("appointments",),
    ),
    Endpoint(
        "appointment_staffing",
        "GET",
        "/api/appointments/staffing",
        "The staffing plan the slots are made from",
        roles=STAFF,
        query=review.NoQuery,
        response=ap.StaffingPlanOut,
        tags=("appointments",),
    ),
    Endpoint(
        "appointment_set_staffing",
        "PUT",
        "/api/appointments/staffing",
        "Replace the staffing plan (supervisors)",
        roles=SUPERVISOR,
        body=ap.StaffingPlanIn,
        response=ap.StaffingPlanOut,
        tags=("appointments",),
        errors=(413,),
    ),
    Endpoint(
        "appointment_calendar_years",
        "GET",
        "/api/appointments/calendar",
        "The working-day calendar years in force: official or provisional, and their source",
        roles=STAFF,
        query=review.NoQuery,
        response=ap.CalendarYearsOut,
        tags=("appointments",),
    ),
    Endpoint(
        "appointment_calendar",
        "PUT",
        "/api/appointments/calendar",
        "Import a working-day calendar year (holidays, adjusted working weekends)",
        roles=SUPERVISOR,
        request_content=CALENDAR_CONTENT,
        response=ap.CalendarYearOut,
        tags=("appointments",),
        errors=(413,),
    ),
    Endpoint(
        "appointment_figures",
        "GET",
        "/api/appointments/figures",
        "Bookings per day, pre-review outcomes, no-shows, on-time starts, callbacks",
        roles=SUPERVISOR,
        query=ap.FiguresQuery,
        response=ap.FiguresOut,
        tags=("appointments",),
    ),
    Endpoint(
        "appointment_strikes",
        "GET",
        "/api/appointments/strikes/{taxpayer_id}",
        "A taxpayer's no-show strikes this month and whether booking is blocked (the "
        "taxpayer: their own only)",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=ap.StrikesOut,
        tags=("appointments",),
        errors=(404,),
    ),
    Endpoint(
        "appointment_lift_block",
        "POST",
        "/api/appointments/strikes/{taxpayer_id}/lift",
        "Staff lift a taxpayer's booking block (audited, with a reason)",
        roles=STAFF,
        body=ap.LiftBlockIn,
        response=ap.StrikesOut,
        tags=("appointments",),
        errors=(404, 409, 413),
    ),
    Endpoint(
        "appointment_book",
        "POST",
        "/api/appointments",
        "Book a slot with the business and the question (201)",
        roles=("taxpayer",),
        body=ap.BookIn,
        response=ap.BookingOut,
        status=201,
        tags=("appointments",),
        errors=(409, 413),
    ),
    Endpoint(
        "appointment_mine",
        "GET",
        "/api/appointments",
        "The calling taxpayer's bookings",
        roles=("taxpayer",),
        query=review.NoQuery,
        response=ap.BookingsOut,
        tags=("appointments",),
    ),
    Endpoint(
        "appointment_get",
        "GET",
        APID,
        "One booking: the taxpayer's own, or any for staff (with the strikes)",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=ap.BookingDetail,
        tags=("appointments",),
        errors=(404,),
    ),
    Endpoint(
        "appointment_cancel",
        "POST",
        APID + "/cancel",
        "Cancel a booking (the taxpayer: not within the cut-off before T)",
        roles=ALL_ROLES,
        body=ap.CancelIn,
        response=ap.BookingOut,
        tags=("appointments",),
        errors=(404, 409, 413),
    ),
    Endpoint(
        "appointment_reschedule",
        "POST",
        APID + "/reschedule",
        "Move the booking to another slot of its category (all or nothing)",
        roles=("taxpayer",),
        body=ap.RescheduleIn,
        response=ap.BookingOut,
        tags=("appointments",),
        errors=(404, 409, 413),
    ),
    Endpoint(
        "appointment_attach",
        "POST",
        APID + "/materials",
        "Attach a material (PDF or image) to the booking (201)",
        roles=("taxpayer",),
        query=review.UploadQuery,
        request_content=UPLOAD_CONTENT,
        response=ap.MaterialOut,
        status=201,
        tags=("appointments",),
        errors=(404, 409, 413, 415),
    ),
    Endpoint(
        "appointment_material",
        "GET",
        APID + "/materials/{material_id}",
        "A material's bytes (its taxpayer, staff); X-Content-SHA256",
        roles=ALL_ROLES,
        query=review.NoQuery,
        produces=MATERIAL_MEDIA,
        tags=("appointments",),
        errors=(404,),
        headers={"X-Content-SHA256": "the material's SHA-256 (hex)"},
    ),
    Endpoint(
        "appointment_replace_material",
        "POST",
        APID + "/materials/{material_id}/replace",
        "Replace a material staff marked needs_replacing (its taxpayer, during pre-review)",
        roles=("taxpayer",),
        query=review.UploadQuery,
        request_content=UPLOAD_CONTENT,
        response=ap.MaterialOut,
        tags=("appointments",),
        errors=(404, 409, 413, 415),
    ),
    Endpoint(
        "appointment_review_material",
        "POST",
        APID + "/materials/{material_id}/review",
        "Staff's verdict on one material: accepted, or needs_replacing with a reason",
        roles=STAFF,
        body=ap.MaterialVerdictIn,
        response=ap.StaffBookingOut,
        tags=("appointments",),
        errors=(404, 409, 413),
    ),
    Endpoint(
        "appointment_pre_review",
        "POST",
        APID + "/review",
        "Pre-review: take the booking up, approve it, send it online or reject it",
        roles=STAFF,
        body=ap.PreReviewIn,
        response=ap.StaffBookingOut,
        tags=("appointments",),
        errors=(404, 409, 413),
    ),
)
KB_KEY = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]{0,63}$", "maxLength": 64}

ENDPOINTS: tuple[Endpoint, ...] = (
    # ---- sign-in, catalog, meta
    Endpoint(
        "auth_login",
        "POST",
        "/api/auth/login",
        "Staff sign-in (agent, supervisor): password, and the authenticator's code once set up",
        body=identity.StaffLogin2,
        response=http.StaffToken,
        tags=("auth",),
        errors=(401, 413, 423, 429),
        headers=NO_STORE,
    ),
    Endpoint(
        "catalog",
        "GET",
        "/api/catalog",
        "Business categories with their items, languages, channels and the service's time zone",
        query=review.NoQuery,
        response=http.CatalogOut,
        tags=("catalog",),
    ),
    Endpoint(
        "openapi",
        "GET",
        "/api/openapi.json",
        "This document",
        query=review.NoQuery,
        produces={"application/json": "OpenAPI 3.1"},
        tags=("meta",),
    ),
    Endpoint("healthz", "GET", "/healthz", "Liveness", response=http.Health, tags=("health",)),
    Endpoint(
        "readyz",
        "GET",
        "/readyz",
        "Readiness: the database, the queue backend and Redis answer (503 otherwise)",
        response=http.Health,
        tags=("health",),
        errors=(503,),
    ),
    Endpoint(
        "metrics",
        "GET",
        "/metrics",
        "Prometheus metrics (where VTAX_METRICS_TOKEN is set, with that bearer token)",
        produces={"text/plain": "Prometheus text format 0.0.4"},
        tags=("health",),
        errors=(401,),
    ),
    # ---- sessions
    Endpoint(
        "list_sessions",
        "GET",
        "/api/sessions",
        "Sessions visible to the caller, filtered, newest first (keyset pagination)",
        roles=ALL_ROLES,
        query=review.SessionListQuery,
        response=review.SessionPage,
        tags=("sessions",),
    ),
    Endpoint(
        "get_session",
        "GET",
        SID,
        "One session with its loop state (404 when not visible to the caller)",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=review.SessionView,
        tags=("sessions",),
        errors=(404,),
    ),
    # ---- the loop
    Endpoint(
        "save_summary",
        "POST",
        SID + "/summary",
        "Handle: the serving agent saves (or revises) the summary; refines the ask (a "
        "supervisor who took the session over is its serving agent; anyone else: 403)",
        roles=("agent", "supervisor"),
        body=SummaryBody,
        response=SummarySaved,
        tags=("loop",),
        errors=LOOP_ERRORS,
    ),
    Endpoint(
        "check_summary",
        "POST",
        SID + "/check",
        "Check: the taxpayer confirms the summary or disputes it with a comment",
        roles=("taxpayer",),
        body=CheckBody,
        response=Checked,
        tags=("loop",),
        errors=LOOP_ERRORS,
    ),
    Endpoint(
        "list_checks",
        "GET",
        SID + "/checks",
        "The checks of the summary (decision, comment, version), oldest first",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=review.CheckList,
        tags=("loop",),
        errors=(404,),
    ),
    Endpoint(
        "rate",
        "POST",
        SID + "/rating",
        "Evaluate: the taxpayer rates the ended session (once; same again is a no-op)",
        roles=("taxpayer",),
        body=RatingBody,
        response=Rated,
        tags=("loop",),
        errors=LOOP_ERRORS,
    ),
    Endpoint(
        "close_follow_up",
        "POST",
        SID + "/follow-up",
        "The follow-up promised in the summary is done",
        roles=STAFF,
        body=review.FollowUpDoneIn,
        response=review.DoneAt,
        tags=("loop",),
        errors=LOOP_ERRORS,
    ),
    # ---- deliver
    Endpoint(
        "deliver",
        "POST",
        SID + "/deliveries",
        "Deliver: the serving agent uploads a PDF or image for the taxpayer (201)",
        roles=("agent",),
        query=review.UploadQuery,
        request_content=UPLOAD_CONTENT,
        response=review.DeliveryView,
        status=201,
        tags=("deliver",),
        errors=(*LOOP_ERRORS, 415),
    ),
    Endpoint(
        "list_deliveries",
        "GET",
        "/api/deliveries",
        "Deliveries visible to the caller; status=pending lists unacknowledged ones",
        roles=ALL_ROLES,
        query=review.DeliveryListQuery,
        response=review.DeliveryPage,
        tags=("deliver",),
    ),
    Endpoint(
        "get_delivery",
        "GET",
        DID,
        "One delivery with its status and receipt",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=review.DeliveryView,
        tags=("deliver",),
        errors=(404,),
    ),
    Endpoint(
        "download",
        "GET",
        DID + "/content",
        "Download the document (its SHA-256 is checked first; X-Content-SHA256)",
        roles=ALL_ROLES,
        query=review.NoQuery,
        produces=DOCUMENT_MEDIA,
        tags=("deliver",),
        errors=(404, 500),
        headers={"X-Content-SHA256": "the document's SHA-256 (hex)"},
    ),
    Endpoint(
        "acknowledge",
        "POST",
        DID + "/ack",
        "The taxpayer acknowledges a downloaded document; returns the receipt",
        roles=("taxpayer",),
        body=review.AcknowledgeIn,
        response=review.DeliveryView,
        tags=("deliver",),
        errors=(404, 409, 413),
    ),
    # ---- the supervisor's review
    Endpoint(
        "quality_form",
        "GET",
        "/api/review/quality-form",
        "The quality-review form: scored items and their maxima",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=review.QualityForm,
        tags=("review",),
    ),
    Endpoint(
        "list_agents",
        "GET",
        "/api/review/agents",
        "The agents (id, username, display name), for the filters",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=review.StaffList,
        tags=("review",),
    ),
    Endpoint(
        "review_detail",
        "GET",
        RSID,
        "A session's whole loop: record, checks, deliveries, quality reviews, audit",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=review.ReviewDetail,
        tags=("review",),
        errors=(404,),
    ),
    Endpoint(
        "review_quality",
        "POST",
        RSID + "/quality",
        "File a quality-review form for an ended session (201)",
        roles=SUPERVISOR,
        body=review.QualityReviewIn,
        response=review.QualityReviewView,
        status=201,
        tags=("review",),
        errors=(404, 409, 413),
    ),
    Endpoint(
        "resolve_flag",
        "POST",
        RSID + "/flag/resolve",
        "Mark a flagged session's supervisor follow-up done",
        roles=SUPERVISOR,
        body=review.FlagResolveIn,
        response=review.DoneAt,
        tags=("review",),
        errors=(404, 409, 413),
    ),
    Endpoint(
        "export_link",
        "POST",
        "/api/review/export-links",
        "A one-minute signed download link of the CSV export for the filters in the "
        "query (the browser then downloads it natively, streaming to disk)",
        roles=SUPERVISOR,
        query=review.SessionFilterQuery,
        response=review.ExportLink,
        tags=("review",),
        second_factor=True,
    ),
    Endpoint(
        "export_csv",
        "GET",
        "/api/review/export.csv",
        "The filtered sessions as CSV, streamed (bearer token, or a signed link `dl`)",
        roles=SUPERVISOR,
        query=review.ExportQuery,
        produces={"text/csv": "one row per session"},
        tags=("review",),
        link=EXPORT_LINK,
        second_factor=True,
    ),
    # ---- statistics
    Endpoint(
        "kpi",
        "GET",
        "/api/stats/kpi",
        "KPIs per day, agent, category or channel (the service zone's days, at most 366)",
        roles=SUPERVISOR,
        query=review.KpiQuery,
        response=review.KpiReport,
        tags=("stats",),
    ),
    Endpoint(
        "live_stats",
        "GET",
        "/api/stats/live",
        "Live queue statistics, agents by state and live sessions (also pushed as "
        "`queue:stats`; docs/routing.md)",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=http.LiveStatsOut,
        tags=("stats",),
    ),
    # ---- the agent desk
    Endpoint(
        "desk_today",
        "GET",
        "/api/desk/today",
        "The calling agent's figures today (the service's day)",
        roles=("agent",),
        query=review.NoQuery,
        response=http.DeskToday,
        tags=("desk",),
    ),
    Endpoint(
        "desk_history",
        "GET",
        "/api/desk/sessions/{session_id}/history",
        "For the agent of a live session: the taxpayer's earlier sessions and open follow-ups",
        roles=("agent",),
        query=review.NoQuery,
        response=http.TaxpayerHistory,
        tags=("desk",),
        errors=(404,),
    ),
    # ---- recordings
    Endpoint(
        "get_recording",
        "GET",
        "/api/recordings/{session_id}",
        "A session's recording manifest, with a playback link per file (audited)",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=http.RecordingOut,
        tags=("recordings",),
        errors=(404,),
        second_factor=True,
    ),
    Endpoint(
        "get_recording_file",
        "GET",
        "/api/recordings/{session_id}/files/{name}",
        "A recording file, with Range requests (206, 416); bearer token or playback link",
        roles=SUPERVISOR,
        query=review.LinkQuery,
        produces={
            "video/webm": "a segment",
            "video/x-matroska": "a segment",
        },
        tags=("recordings",),
        errors=(404, 416),
        link=RECORDING_LINK,
        params={
            "name": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9_-]{1,80}\.(webm|mkv)$",
                "maxLength": 85,
            }
        },
        second_factor=True,
    ),
    # ---- identity (docs/identity.md)
    Endpoint(
        "auth_methods",
        "GET",
        "/api/auth/methods",
        "The taxpayer sign-in methods this node offers (the pages show what is enabled)",
        query=review.NoQuery,
        response=identity.SignInMethods,
        tags=("auth",),
    ),
    Endpoint(
        "auth_sms_code",
        "POST",
        "/api/auth/sms/code",
        "Send a sign-in code to a registered mobile (the same answer for unknown numbers)",
        body=identity.SmsCodeRequest,
        response=identity.SmsCodeSent,
        tags=("auth",),
        errors=(404, 429),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_sms_verify",
        "POST",
        "/api/auth/sms/verify",
        "Sign in with the code: a taxpayer session (access and refresh tokens)",
        body=identity.SmsCodeVerify,
        response=identity.TaxpayerSession,
        tags=("auth",),
        errors=(401, 404, 429),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_oidc_start",
        "POST",
        "/api/auth/oidc/start",
        "Start a sign-in at the identity platform (`step_up=true` with a taxpayer token: a "
        "fresh one at the step-up level)",
        body=identity.OidcStart,
        query=identity.OidcStartQuery,
        response=identity.OidcRedirect,
        tags=("auth",),
        errors=(401, 404, 429),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_oidc_callback",
        "POST",
        "/api/auth/oidc/callback",
        "Finish the identity platform's sign-in with its `code` and `state`",
        body=identity.OidcCallback,
        response=identity.TaxpayerSession,
        tags=("auth",),
        errors=(401, 404, 429),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_oidc_backchannel_logout",
        "POST",
        "/api/auth/oidc/backchannel-logout",
        "The identity platform's back-channel logout (a form with `logout_token`)",
        request_content=BACKCHANNEL_CONTENT,
        tags=("auth",),
        errors=(404, 503),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_kiosk_challenge",
        "POST",
        "/api/auth/kiosk/challenge",
        "A registered kiosk's nonce for its next assertion",
        body=identity.KioskChallengeRequest,
        response=identity.KioskChallenge,
        tags=("auth",),
        errors=(401, 404, 429),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_kiosk",
        "POST",
        "/api/auth/kiosk",
        "Sign in with a kiosk's signed assertion (ID card read, face matched on the kiosk)",
        body=identity.KioskSignIn,
        response=identity.TaxpayerSession,
        tags=("auth",),
        errors=(401, 404),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_act_for",
        "POST",
        "/api/auth/act-for",
        "Act for an enterprise in a granted role, or for oneself (the refresh token rotates)",
        body=identity.ActFor,
        response=identity.TaxpayerSession,
        tags=("auth",),
        errors=(401, 403),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_refresh",
        "POST",
        "/api/auth/refresh",
        "New access and refresh tokens for the refresh token (used once)",
        body=identity.Refresh,
        response=identity.TaxpayerSession,
        tags=("auth",),
        errors=(401,),
        headers=NO_STORE,
    ),
    Endpoint(
        "auth_logout",
        "POST",
        "/api/auth/logout",
        "Sign out (this sign-in, or everywhere: every token of the person at once)",
        roles=("taxpayer",),
        body=identity.Logout,
        response=identity.LoggedOut,
        tags=("auth",),
        errors=(409,),
        headers=NO_STORE,
    ),
    Endpoint(
        "staff_totp_enroll",
        "POST",
        "/api/staff/totp",
        "Set up the caller's authenticator (TOTP): the secret, shown once",
        roles=STAFF,
        query=review.NoQuery,
        response=identity.TotpEnrolment,
        tags=("staff",),
        errors=(409,),
        headers=NO_STORE,
    ),
    Endpoint(
        "staff_totp_confirm",
        "POST",
        "/api/staff/totp/confirm",
        "Turn the authenticator on with its current code",
        roles=STAFF,
        body=identity.TotpConfirm,
        status=204,
        tags=("staff",),
        errors=(401,),
        headers=NO_STORE,
    ),
    Endpoint(
        "staff_unlock",
        "POST",
        "/api/staff/unlock",
        "Unlock a staff account locked after failed sign-ins (audited)",
        roles=SUPERVISOR,
        body=identity.StaffUnlock,
        status=204,
        tags=("staff",),
        errors=(404,),
        headers=NO_STORE,
    ),
    Endpoint(
        "kiosk_register",
        "POST",
        "/api/kiosks",
        "Register a kiosk with its Ed25519 public key (audited)",
        roles=SUPERVISOR,
        body=identity.KioskRegister,
        response=identity.KioskOut,
        status=201,
        tags=("kiosks",),
        errors=(404,),
        headers=NO_STORE,
    ),
    Endpoint(
        "kiosk_revoke",
        "POST",
        "/api/kiosks/{kiosk_id}/revoke",
        "Revoke a kiosk: its assertions and its sign-ins end at once (audited)",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=identity.KioskOut,
        tags=("kiosks",),
        headers=NO_STORE,
    ),
    Endpoint(
        "find_person",
        "POST",
        "/api/people/lookup",
        "Find a person by document type and number (404 when the registry has none)",
        roles=SUPERVISOR,
        body=identity.PersonLookup,
        response=identity.PersonAccount,
        tags=("people",),
        errors=(404,),
        headers=NO_STORE,
    ),
    Endpoint(
        "get_person",
        "GET",
        "/api/people/{person_id}/access",
        "A person's access: enabled or disabled, and the latest change with its reason",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=identity.PersonAccount,
        tags=("people",),
        errors=(404,),
        headers=NO_STORE,
    ),
    Endpoint(
        "disable_person",
        "POST",
        "/api/people/{person_id}/disable",
        "Disable a person (audited, with the reason): every token of theirs dies at once, "
        "their open sockets are cut, no provider signs them in until enabled",
        roles=SUPERVISOR,
        body=identity.PersonAccessChange,
        response=identity.PersonAccount,
        tags=("people",),
        errors=(404,),
        headers=NO_STORE,
    ),
    Endpoint(
        "enable_person",
        "POST",
        "/api/people/{person_id}/enable",
        "Enable a disabled person again (audited, with the reason); they sign in anew",
        roles=SUPERVISOR,
        body=identity.PersonAccessChange,
        response=identity.PersonAccount,
        tags=("people",),
        errors=(404,),
        headers=NO_STORE,
    ),
    Endpoint(
        "identity_audit",
        "GET",
        "/api/identity/audit",
        "The identity audit (kiosks, staff lockouts, people disabled, enabled, looked up, "
        "read), newest first, filtered; reading it is audited too",
        roles=SUPERVISOR,
        query=identity.IdentityAuditQuery,
        response=identity.IdentityAuditPage,
        tags=("people",),
        headers=NO_STORE,
    ),
    *APPOINTMENTS,
    # ---- assistant (docs/assistant.md)
    Endpoint(
        "consultation_unanswered",
        "GET",
        "/api/consultations/unanswered",
        "The questions the assistant could not answer, newest first, with the nearest entry",
        roles=SUPERVISOR,
        query=cs.UnansweredQuery,
        response=cs.UnansweredList,
        tags=("assistant",),
    ),
    Endpoint(
        "get_consultation",
        "GET",
        "/api/consultations/{conversation_id}",
        "A conversation with the assistant, every turn: its taxpayer, agents, supervisors",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=cs.TranscriptView,
        tags=("assistant",),
        errors=(404,),
    ),
    Endpoint(
        "consultation_kpi",
        "GET",
        "/api/stats/consultations",
        "The assistant's figures over days: containment, hand-offs by reason and route, "
        "acceptance, re-contact within 7 days",
        roles=SUPERVISOR,
        query=cs.ConsultationKpiQuery,
        response=cs.ConsultationKpiView,
        tags=("assistant", "stats"),
    ),
    Endpoint(
        "kb_suggest",
        "GET",
        "/api/kb/suggest",
        "Agent assist: the five best entries for a question, with their answers",
        roles=STAFF,
        query=cs.SuggestQuery,
        response=cs.SuggestionList,
        tags=("assistant",),
    ),
    Endpoint(
        "kb_list",
        "GET",
        "/api/kb/entries",
        "The knowledge base's entries (retired ones for supervisors on request)",
        roles=STAFF,
        query=cs.KbListQuery,
        response=cs.KbEntryList,
        tags=("assistant",),
    ),
    Endpoint(
        "kb_create",
        "POST",
        "/api/kb/entries",
        "Add an entry (`kb_entry_exists` if the key is taken)",
        roles=SUPERVISOR,
        body=cs.KbEntryIn,
        response=cs.KbEntryView,
        status=201,
        tags=("assistant",),
        errors=(409, 413),
    ),
    Endpoint(
        "kb_get",
        "GET",
        "/api/kb/entries/{key}",
        "One entry with its version (an edit names it)",
        roles=STAFF,
        query=review.NoQuery,
        response=cs.KbEntryView,
        tags=("assistant",),
        errors=(404,),
        params={"key": KB_KEY},
    ),
    Endpoint(
        "kb_update",
        "PUT",
        "/api/kb/entries/{key}",
        "Edit an entry from the version read (`kb_version_conflict` if it changed since)",
        roles=SUPERVISOR,
        body=cs.KbEntryUpdateIn,
        response=cs.KbEntryView,
        tags=("assistant",),
        errors=(404, 409, 413),
        params={"key": KB_KEY},
    ),
    Endpoint(
        "kb_retire",
        "POST",
        "/api/kb/entries/{key}/retire",
        "Take an entry out of the answers (kept with its history; an update restores it)",
        roles=SUPERVISOR,
        body=cs.KbRetireIn,
        response=cs.KbEntryView,
        tags=("assistant",),
        errors=(404, 409, 413),
        params={"key": KB_KEY},
    ),
    Endpoint(
        "kb_history",
        "GET",
        "/api/kb/entries/{key}/history",
        "Every version of an entry, who changed it and when",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=cs.KbHistory,
        tags=("assistant",),
        errors=(404,),
        params={"key": KB_KEY},
    ),
    Endpoint(
        "kb_export",
        "GET",
        "/api/kb/export",
        "The live entries as a knowledge-base file (docs/assistant.md, File format)",
        roles=SUPERVISOR,
        query=review.NoQuery,
        response=cs.KbFileOut,
        tags=("assistant",),
        headers={"Content-Disposition": "attachment; filename=vtax-kb.json"},
    ),
    Endpoint(
        "kb_import",
        "POST",
        "/api/kb/import",
        "Check a knowledge-base file and apply it in one transaction (up to the documents "
        "limit); any problem changes nothing",
        roles=SUPERVISOR,
        query=cs.KbImportQuery,
        request_content={
            "application/json": {
                "schema": {"type": "object", "description": "a `vtax-kb` file, version 1"}
            }
        },
        response=cs.KbImportView,
        tags=("assistant",),
        errors=(400, 413),
    ),
    # ---- confirmation: the confirmation form (docs/protocol.md, "Confirmation form")
    Endpoint(
        "form_definitions",
        "GET",
        "/api/catalog/forms",
        "Every catalog item's confirmation-form fields (typed, with bounds) and named materials",
        query=review.NoQuery,
        response=cf.FormDefinitions,
        tags=("catalog",),
    ),
    Endpoint(
        "form_history",
        "GET",
        SID + "/confirmation",
        "The session's confirmation form: every version, oldest first, with its decision",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=cf.FormHistory,
        tags=("sessions",),
        errors=(404,),
    ),
    # ---- materials from the taxpayer (docs/protocol.md, "Materials")
    Endpoint(
        "material_upload",
        "POST",
        SID + "/materials",
        "The session's taxpayer hands in a PDF or image during the call (201); the agent "
        "hears `material:new`",
        roles=("taxpayer",),
        query=mt.MaterialUploadQuery,
        request_content=MATERIAL_UPLOAD_CONTENT,
        response=mt.MaterialView,
        status=201,
        tags=("materials",),
        errors=(404, 409, 413, 415),
    ),
    Endpoint(
        "material_list",
        "GET",
        SID + "/materials",
        "The session's materials, oldest first (its taxpayer and agent, supervisors)",
        roles=ALL_ROLES,
        query=review.NoQuery,
        response=mt.MaterialList,
        tags=("materials",),
        errors=(404,),
    ),
    Endpoint(
        "material_content",
        "GET",
        SID + "/materials/{material_id}/content",
        "A material's bytes, checked against its SHA-256 first (audited); X-Content-SHA256",
        roles=ALL_ROLES,
        query=review.NoQuery,
        produces=SESSION_MATERIAL_MEDIA,
        tags=("materials",),
        errors=(404, 500),
        headers={"X-Content-SHA256": "the material's SHA-256 (hex)"},
    ),
    Endpoint(
        "material_review",
        "POST",
        SID + "/materials/{material_id}/review",
        "The session's agent accepts a material or rejects it with a reason (once)",
        roles=("agent",),
        body=mt.MaterialReviewIn,
        response=mt.MaterialView,
        tags=("materials",),
        errors=(404, 409, 413),
    ),
    # ---- chat (in-call chat, docs/protocol.md "In-call chat"; vtax/contract/chat.py)
    Endpoint(
        "chat_messages",
        "GET",
        SID + "/messages",
        "A session's chat messages in order, after `after_seq` (404 when not visible to the "
        "caller)",
        roles=ALL_ROLES,
        query=ct.ChatMessagesQuery,
        response=ct.ChatTranscript,
        tags=("sessions",),
        errors=(404,),
    ),
    # ---- call quality (vtax/contract/quality.py; docs/review.md, "Call quality")
    Endpoint(
        "call_quality_kpi",
        "GET",
        "/api/stats/kpi/call-quality",
        "Call quality per day, agent, category or channel (the service zone's days, at most "
        "366): measured sessions, mean estimated MOS, poor calls, beside the taxpayers' "
        "av_quality ratings",
        roles=SUPERVISOR,
        query=qa.CallQualityKpiQuery,
        response=qa.CallQualityKpi,
        tags=("stats",),
    ),
)
