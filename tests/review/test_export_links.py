"""The CSV export's signed download links (POST /api/review/export-links): the browser
navigates to the link and streams the file to disk, so the link stands in for the bearer
token, for one supervisor, the export path and exactly one query, for a minute."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import update

from signaling.http_api import link_resource
from signaling.review_api import EXPORT_LINK, EXPORT_LINK_TTL_S, EXPORT_PATH
from tests.review.helpers import SUMMARY, T0, call, people, served
from vtax.models import User

FILTERS = "from=2026-11-02&to=2026-11-02&category=invoices&sort=oldest"


@pytest.fixture
async def p(server, cast):
    return await people(server, cast)


async def seed(server, p) -> list[str]:
    r = server.ctx.records
    ids = [
        await served(r, p.taxpayer_id, p.agent_id, joined=T0),
        await served(r, p.other_taxpayer_id, p.other_agent_id, joined=T0 + timedelta(hours=1)),
        await served(r, p.taxpayer_id, None, joined=T0 + timedelta(hours=2)),
        await served(r, p.taxpayer_id, p.agent_id, joined=T0 + timedelta(hours=3), category="vat"),
        await served(r, p.taxpayer_id, p.agent_id, joined=T0 + timedelta(days=1)),
    ]
    await r.loop.save_summary(
        ids[0], p.agent_id, T0 + timedelta(minutes=5), **SUMMARY, category="invoices"
    )
    return ids


async def link(server, p, query: str, token: str | None = None) -> tuple[int, dict]:
    return await call(server, "POST", f"/api/review/export-links?{query}", token or p.supervisor)


async def get(server, url: str, token: str | None = None) -> tuple[int, object]:
    """GET a path (with its query) as the browser does: no Authorization header."""
    return await call(server, "GET", url, token)


async def test_a_link_downloads_what_the_bearer_token_downloads(server, p):
    ids = await seed(server, p)
    before = time.time()
    status, made = await link(server, p, FILTERS)
    assert status == 200, made
    assert set(made) == {"url", "expires_at"}
    expires = datetime.fromisoformat(made["expires_at"]).timestamp()
    assert before + EXPORT_LINK_TTL_S - 1 <= expires <= time.time() + EXPORT_LINK_TTL_S
    parts = urlsplit(made["url"])
    assert parts.path == EXPORT_PATH and not parts.netloc  # same origin, relative
    query = dict(parse_qsl(parts.query))
    assert query.pop("dl") and query == dict(parse_qsl(FILTERS))

    status, by_link = await get(server, made["url"])
    assert status == 200, by_link
    status, by_header = await call(server, "GET", f"{EXPORT_PATH}?{FILTERS}", p.supervisor)
    assert status == 200
    assert by_link == by_header
    lines = by_link.decode().splitlines()
    assert len(lines) == 1 + 3 and ids[0] in lines[1]  # a, b, c (oldest first): invoices, day 1
    async with server.http.get(server.url + made["url"]) as r:  # a file to save, not to show
        assert r.headers["Content-Disposition"].startswith("attachment")
        assert r.headers["Content-Type"].startswith("text/csv")
        assert r.headers["Cache-Control"] == "no-store"
        await r.read()
    # the link is good for its minute (a retried download works), and no filters at all too
    assert (await get(server, made["url"]))[0] == 200
    status, made = await link(server, p, "")
    assert status == 200 and made["url"].startswith(EXPORT_PATH + "?dl=")
    status, everything = await get(server, made["url"])
    assert status == 200 and len(everything.decode().splitlines()) == 1 + len(ids)
    # the same filters in another order are the same request
    status, made = await link(server, p, "sort=oldest&category=invoices")
    dl = dict(parse_qsl(urlsplit(made["url"]).query))["dl"]
    assert (await get(server, f"{EXPORT_PATH}?category=invoices&dl={dl}&sort=oldest"))[0] == 200


def _unauthorized(status: int, body: object, hint: str) -> None:
    assert status == 401, body
    assert isinstance(body, dict), body
    assert body["error"]["code"] == "unauthorized" and hint in body["error"]["message"], body


def _with_dl(url: str, dl: str) -> str:
    path, _, query = url.partition("?")
    kept = [f"{k}={v}" for k, v in (x.split("=", 1) for x in query.split("&")) if k != "dl"]
    return f"{path}?{'&'.join([*kept, f'dl={dl}'])}"


async def test_an_expired_link_is_refused(server, p):
    await seed(server, p)
    issuer = server.ctx.issuer
    resource = link_resource(EXPORT_PATH, dict(parse_qsl(FILTERS)))
    subject = issuer.verify(p.supervisor).subject
    token, _ = issuer.link_token(
        EXPORT_LINK, subject, resource, EXPORT_LINK_TTL_S, now=time.time() - 61
    )
    _unauthorized(*await get(server, f"{EXPORT_PATH}?{FILTERS}&dl={token}"), "expired")
    fresh, _ = issuer.link_token(EXPORT_LINK, subject, resource, EXPORT_LINK_TTL_S)
    assert (await get(server, f"{EXPORT_PATH}?{FILTERS}&dl={fresh}"))[0] == 200


async def test_a_tampered_link_is_refused(server, p):
    await seed(server, p)
    status, made = await link(server, p, FILTERS)
    assert status == 200
    dl = dict(parse_qsl(urlsplit(made["url"]).query))["dl"]
    expires, subject, mac = dl.split("~")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    other_id = p.agent_id
    for bad in (
        f"{expires}~{subject}~{flipped}",  # another signature
        f"{int(expires) + 3600}~{subject}~{mac}",  # a later expiry
        f"{expires}~{other_id}~{mac}",  # someone else
        f"{expires}~{subject}",
        "x",
        "~~",
        "1~a~" + "b" * 190,
    ):
        _unauthorized(*await get(server, _with_dl(made["url"], bad)), "not valid")
    # a link with a bearer token next to it is still checked
    status, body = await call(server, "GET", _with_dl(made["url"], "x"), p.supervisor)
    _unauthorized(status, body, "not valid")
    # one link only
    status, body = await get(server, made["url"] + "&dl=x")
    _unauthorized(status, body, "")


async def test_a_link_is_only_for_its_own_filters(server, p):
    await seed(server, p)
    status, made = await link(server, p, FILTERS)
    assert status == 200
    dl = dict(parse_qsl(urlsplit(made["url"]).query))["dl"]
    for query in (
        "from=2026-11-02&to=2026-11-03&category=invoices&sort=oldest",  # a wider range
        "from=2026-11-02&to=2026-11-02&category=vat&sort=oldest",
        "from=2026-11-02&to=2026-11-02&sort=oldest",  # a filter dropped
        "from=2026-11-02&to=2026-11-02&category=invoices",  # the default sort, spelt out not
        FILTERS + "&channel=web",  # a filter added
        "",
    ):
        sep = "&" if query else ""
        status, body = await get(server, f"{EXPORT_PATH}?{query}{sep}dl={dl}")
        _unauthorized(status, body, "not valid")
    # nor for another endpoint that takes no links
    status, body = await call(server, "GET", f"/api/sessions?{FILTERS}&dl={dl}")
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_only_supervisors_get_links_and_the_filters_are_checked(server, p):
    await seed(server, p)
    for token in (p.agent, p.taxpayer):
        status, body = await link(server, p, FILTERS, token)
        assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await call(server, "POST", f"/api/review/export-links?{FILTERS}")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    for bad in (
        "category=astrology",
        "asked_category=astrology",
        "from=2026-11-03&to=2026-11-02",
        "rating=6",
        "dl=abc",
        "limit=5",
        "flag=open&flag=none",
    ):
        status, body = await link(server, p, bad)
        assert status == 400 and body["error"]["code"] == "invalid_payload", (bad, body)


async def test_a_link_stops_working_with_the_account(server, p):
    await seed(server, p)
    status, made = await link(server, p, FILTERS)
    assert status == 200
    subject = server.ctx.issuer.verify(p.supervisor).subject
    async with server.ctx.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == subject).values(role="agent"))
    status, body = await get(server, made["url"])
    assert status == 403 and body["error"]["code"] == "forbidden"
    async with server.ctx.engine.begin() as conn:
        await conn.execute(
            update(User).where(User.id == subject).values(role="supervisor", disabled=True)
        )
    _unauthorized(*await get(server, made["url"]), "disabled")


async def test_the_link_is_documented(server):
    status, spec = await call(server, "GET", "/api/openapi.json")
    assert status == 200
    op = spec["paths"]["/api/review/export-links"]["post"]
    assert op["x-roles"] == ["supervisor"]
    assert {"from", "to", "category", "asked_category", "sort"} <= {
        q["name"] for q in op["parameters"]
    }
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ExportLink"
    )
    export = spec["paths"][EXPORT_PATH]["get"]
    assert {"bearer": []} in export["security"] and {"signed_link": []} in export["security"]
    assert "dl" in {q["name"] for q in export["parameters"]}
    assert spec["components"]["securitySchemes"]["signed_link"]["in"] == "query"
