"""Recordings and the CSV export need a supervisor's sign-in with the second factor
(`records_need_second_factor`, on by default; docs/identity.md): a password-only token is
refused with 401 `second_factor_required` on each of those endpoints and nowhere else; a
token of a sign-in with the authenticator's code passes; a signed link made for such a
sign-in passes; a `dl` parameter on an endpoint that takes no link bypasses nothing; the
setting off lets password-only sign-ins through. Let through, each endpoint answers what it
answers (`assert_they_open`: a recording's manifest and file, its own 404 for a session
with none, the export link, the CSV). On both database engines."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pyotp
import pytest

from tests.recording.test_storage_and_playback import SESSION, make_recording
from tests.review.helpers import bearer, call

SID = "0" * 8 + "-0000-4000-8000-" + "0" * 12  # no such session: the guard runs first
RECORDS = [
    ("GET", f"/api/recordings/{SID}"),
    ("GET", f"/api/recordings/{SID}/files/seg-000.webm"),
    ("POST", "/api/review/export-links"),
    ("GET", "/api/review/export.csv"),
]
SEGMENT = "taxpayer-p-abc-001.webm"  # make_recording's one file


async def answer(server: Any, method: str, path: str, token: str) -> tuple[int, str, bytes]:
    """(status, content type, body)."""
    async with server.http.request(method, server.url + path, headers=bearer(token)) as r:
        return r.status, r.content_type, await r.read()


async def assert_they_open(server: Any, token: str) -> None:
    """What recordings and exports answer `token` past the guard: a recording's manifest
    (with playback links) and its file (`make_recording`, which the test made), the
    endpoints' own 404 for a session with no recording (RECORDS), an export link, the CSV."""
    status, kind, body = await answer(server, "GET", f"/api/recordings/{SESSION}", token)
    assert (status, kind) == (200, "application/json"), body
    manifest = json.loads(body)
    assert manifest["session_id"] == SESSION, manifest
    assert [seg["file"] for seg in manifest["segments"]] == [SEGMENT]
    assert "?dl=" in manifest["segments"][0]["url"]
    path = f"/api/recordings/{SESSION}/files/{SEGMENT}"
    status, kind, body = await answer(server, "GET", path, token)
    media = next(server.ctx.settings.recordings_dir.rglob(SEGMENT)).read_bytes()
    assert (status, kind, body) == (200, "video/webm", media), (status, kind)

    for (method, path), message in zip(
        RECORDS[:2], ("no recording for that session", "no such recording file"), strict=True
    ):
        status, kind, body = await answer(server, method, path, token)
        assert (status, kind) == (404, "application/json"), (path, body)
        assert json.loads(body)["error"] == {"code": "not_found", "message": message}

    status, kind, body = await answer(server, *RECORDS[2], token)
    assert (status, kind) == (200, "application/json"), body
    link = json.loads(body)
    assert link["url"].startswith("/api/review/export.csv?dl=") and link["expires_at"], link
    status, kind, body = await answer(server, *RECORDS[3], token)
    assert (status, kind) == (200, "text/csv"), body[:200]
    assert body.startswith(b"id,joined_at,"), body[:80]


async def test_recordings_and_exports_need_the_second_factor(server: Any) -> None:
    make_recording(server.ctx.settings.recordings_dir)
    plain = await server.staff("sup-plain", "supervisor", second_factor=False)
    strong = await server.staff("sup-strong", "supervisor")
    for method, path in [*RECORDS, ("GET", f"/api/recordings/{SESSION}")]:
        status, body = await call(server, method, path, plain)
        assert status == 401, (path, status, body)
        assert body["error"]["code"] == "second_factor_required", body
    await assert_they_open(server, strong)
    # the rest of the supervisor's work needs no second factor
    status, _ = await call(server, "GET", "/api/sessions", plain)
    assert status == 200
    status, _ = await call(server, "GET", "/api/stats/kpi", plain)
    assert status == 200

    # A link made for the strong sign-in downloads the export without a header.
    status, link = await call(server, "POST", "/api/review/export-links", strong)
    assert status == 200, link
    status, csv = await call(server, "GET", link["url"])
    assert status == 200 and csv.startswith(b"id,joined_at"), csv[:80]
    # `dl` on the endpoint that takes no link is not a way round the second factor
    dl = urllib.parse.parse_qs(urllib.parse.urlparse(link["url"]).query)["dl"][0]
    status, body = await call(server, "POST", f"/api/review/export-links?dl={dl}", plain)
    assert status in (400, 401), body
    assert body["error"]["code"] in ("second_factor_required", "invalid_payload"), body


async def test_a_supervisor_sets_up_the_authenticator_over_http(server: Any) -> None:
    """Enrolment through the API the supervisor page uses: the key, then its code, then a
    sign-in with a code opens the export."""
    password = "pw-for-enrolment-1"
    await server.ctx.accounts.add_user("sup-new", "supervisor", password)
    status, first = await call(
        server, "POST", "/api/auth/login", json={"username": "sup-new", "password": password}
    )
    assert status == 200 and first["second_factor"] is False
    token = first["token"]
    status, enrolment = await call(server, "POST", "/api/staff/totp", token)
    assert status == 200, enrolment
    assert enrolment["provisioning_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    status, body = await call(
        server, "POST", "/api/staff/totp/confirm", token, json={"code": wrong}
    )
    assert status == 401 and body["error"]["code"] == "invalid_code"
    code = totp.at(int(time.time()), -1)
    status, _ = await call(server, "POST", "/api/staff/totp/confirm", token, json={"code": code})
    assert status == 204
    # the password alone no longer signs in; the old token still cannot export
    status, body = await call(
        server, "POST", "/api/auth/login", json={"username": "sup-new", "password": password}
    )
    assert status == 401 and body["error"]["code"] == "second_factor_required"
    status, body = await call(server, "GET", "/api/review/export.csv", token)
    assert status == 401 and body["error"]["code"] == "second_factor_required"
    status, again = await call(
        server,
        "POST",
        "/api/auth/login",
        json={"username": "sup-new", "password": password, "code": totp.now()},
    )
    assert status == 200 and again["second_factor"] is True
    status, _ = await call(server, "GET", "/api/review/export.csv", again["token"])
    assert status == 200


@pytest.mark.parametrize("settings_overrides", [{"records_need_second_factor": False}])
async def test_the_setting_off_lets_a_password_sign_in_open_them(server: Any) -> None:
    make_recording(server.ctx.settings.recordings_dir)
    plain = await server.staff("sup-plain", "supervisor", second_factor=False)
    await assert_they_open(server, plain)
