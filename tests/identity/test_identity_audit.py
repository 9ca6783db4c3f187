"""Supervisors read the identity audit over HTTP (`GET /api/identity/audit`,
signaling/identity_api.py -> `TaxpayerSignIn.identity_audit`): newest first, filtered by
subject, kind, actor and the service time zone's days, paged by `before`; every read is
itself a row (`identity_audit_read`); nobody but a supervisor reads it; bad filters get a
400 with the field named, and nothing stored changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import RunningServer
from tests.identity.test_identity_api import auth, imported, post, sign_in
from tests.identity.test_people_access import PHONE, WANG, supervisor_id


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"identity_providers": ["sms"], "sign_in_code_resend_s": 0.0}


async def audit(server: RunningServer, token: str | None, **params: Any) -> tuple[int, Any]:
    async with server.http.get(
        server.url + "/api/identity/audit", params=params, headers=auth(token)
    ) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        assert r.headers.get("Cache-Control") == "no-store" or r.status >= 400
        return r.status, body


async def history(server: RunningServer) -> list[Any]:
    """Every row, newest first, without leaving a read row (straight from the registry)."""
    return await server.ctx.services.identity.signin.registry.audit_rows(limit=1000)


async def test_a_supervisor_reads_the_identity_audit_newest_first_filtered_and_paged(
    server: RunningServer,
) -> None:
    await imported(server)
    session = await sign_in(server, PHONE)
    person_id = session["person"]["person_id"]
    boss = await server.staff("boss", "supervisor")
    boss_id = await supervisor_id(server, "boss")
    status, _, _ = await post(server, "/api/people/lookup", WANG, boss)
    assert status == 200
    for verb in ("disable", "enable", "disable"):
        status, out, _ = await post(
            server, f"/api/people/{person_id}/{verb}", {"reason": f"case {verb}"}, boss
        )
        assert status == 200, out

    status, page = await audit(server, boss, subject=person_id)
    assert status == 200, page
    kinds = [r["kind"] for r in page["rows"]]
    assert kinds == ["person_disabled", "person_enabled", "person_disabled", "person_looked_up"]
    newest = page["rows"][0]
    assert newest["actor_role"] == "supervisor" and newest["actor"] == boss_id
    assert newest["subject"] == person_id and newest["data"] == {"reason": "case disable"}
    # the service's time zone, with its offset
    zone = ZoneInfo(server.ctx.settings.service_timezone)
    at = datetime.fromisoformat(newest["at"])
    assert at.utcoffset() == datetime.now(zone).utcoffset()
    # the number searched for is masked in the rows as stored
    looked_up = page["rows"][-1]
    assert WANG["document"] not in str(looked_up["data"]), looked_up
    assert page["next_before"] is None

    # by kind; paged two at a time, no row twice, none lost
    status, page = await audit(server, boss, subject=person_id, kind="person_disabled")
    assert [r["kind"] for r in page["rows"]] == ["person_disabled"] * 2
    # (the reads above are rows about the person too; this loop's reads come after its first page)
    want = [r.id for r in await history(server) if r.subject == person_id]
    seen: list[int] = []
    params: dict[str, Any] = {"subject": person_id, "limit": 2}
    while True:
        status, page = await audit(server, boss, **params)
        assert status == 200 and len(page["rows"]) <= 2
        seen += [r["id"] for r in page["rows"]]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert seen == want and len(want) == 6, (seen, want)

    # by the service time zone's days: the newest row's day has it, the next day and two
    # days before have none (robust at midnight: the day is the row's own)
    day = datetime.fromisoformat(newest["at"]).date()
    disabled = {"subject": person_id, "kind": "person_disabled"}
    status, page = await audit(server, boss, **disabled, **{"from": str(day), "to": str(day)})
    assert newest["id"] in [r["id"] for r in page["rows"]], page
    for window in ({"from": str(day + timedelta(days=1))}, {"to": str(day - timedelta(days=2))}):
        status, page = await audit(server, boss, **disabled, **window)
        assert status == 200 and page["rows"] == [], (window, page)
    # by actor: the supervisor's rows; an unknown actor's none
    status, page = await audit(server, boss, actor=boss_id, kind="person_enabled")
    assert [r["subject"] for r in page["rows"]] == [person_id]
    status, page = await audit(server, boss, actor="nobody")
    assert page["rows"] == []


async def test_every_read_of_the_audit_is_a_row_of_it(server: RunningServer) -> None:
    boss = await server.staff("boss", "supervisor")
    boss_id = await supervisor_id(server, "boss")
    before = len(await history(server))
    status, _ = await audit(server, boss, subject="someone", kind="person_disabled")
    assert status == 200
    rows = await history(server)
    assert len(rows) == before + 1
    read = rows[0]
    assert (read.kind, read.actor_role, read.actor_id, read.subject) == (
        "identity_audit_read",
        "supervisor",
        boss_id,
        "someone",
    )
    assert read.data == {"subject": "someone", "kind": "person_disabled"}
    # and the next read shows it
    status, page = await audit(server, boss, kind="identity_audit_read", limit=1)
    assert page["rows"][0]["id"] == read.id


async def test_only_supervisors_read_it_and_bad_filters_are_named(server: RunningServer) -> None:
    await imported(server)
    session = await sign_in(server, PHONE)
    agent = await server.staff("ann")
    boss = await server.staff("boss", "supervisor")
    before = await history(server)
    for token in (None, "not-a-token"):
        status, err = await audit(server, token)
        assert status == 401, err
    for token in (agent, session["access_token"]):
        status, err = await audit(server, token)
        assert status == 403 and err["error"]["code"] == "forbidden", err
    assert await history(server) == before  # refused callers leave nothing

    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"kind": "DROP TABLE"}, "kind"),
        ({"before": "-3"}, "before"),
        ({"from": "2026-13-01"}, "from"),
        ({"subject": "x" * 65}, "subject"),
        ({"colour": "red"}, "colour"),
    ):
        status, err = await audit(server, boss, **params)
        assert status == 400, (params, err)
        assert err["error"]["code"] == "invalid_payload", err
        assert field in str(err["error"]), (params, err)
    assert await history(server) == before  # a refused read is not a read
