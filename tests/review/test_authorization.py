"""Authorization matrix: every endpoint for every role, no token and an expired token.

`ok` means the request got past authorization (a 2xx, or 409 when the loop refuses the step
for its state); 401, 403 and 404 are the refusals. A session or document that is not the
caller's answers 404, as if it did not exist. Endpoints that other modules register are
checked too, from their OpenAPI entry: no token and an expired token give 401, and a role
outside their `x-roles` gets 403."""

from __future__ import annotations

import aiohttp

from tests.review.helpers import PDF, SUMMARY, bearer, call, people, served
from vtax.contract.openapi import build_openapi

ROLES = ("taxpayer", "other_taxpayer", "agent", "other_agent", "supervisor", "none", "expired")
OK = "ok"
PUBLIC = dict.fromkeys(ROLES, OK)


def only(*allowed: str, others: str = "403", strangers: str = "404") -> dict[str, str]:
    """`allowed` get ok; the other party of the same kind (other taxpayer / other agent) gets
    `strangers`, every other role `others`; no token or an expired one 401."""
    out = {"none": "401", "expired": "401"}
    for role in ROLES[:5]:
        if role in allowed:
            out[role] = OK
        elif role.startswith("other_") and role.removeprefix("other_") in allowed:
            out[role] = strangers
        else:
            out[role] = others
    return out


EVERYONE = only("taxpayer", "agent", "supervisor", strangers=OK)
OWN = only("taxpayer", "agent", "supervisor")
SUPERVISOR = only("supervisor")

# (method, path, body kind, expected per role); the order is the loop's order.
MATRIX = [
    ("GET", "/api/auth/methods", None, PUBLIC),
    ("GET", "/api/catalog", None, PUBLIC),
    ("GET", "/api/openapi.json", None, PUBLIC),
    ("GET", "/healthz", None, PUBLIC),
    ("GET", "/readyz", None, PUBLIC),
    ("GET", "/api/sessions", None, EVERYONE),
    ("GET", "/api/sessions/{sid}", None, OWN),
    ("POST", "/api/sessions/{sid}/summary", "summary", only("agent")),
    ("POST", "/api/sessions/{sid}/check", "dispute", only("taxpayer")),
    ("GET", "/api/sessions/{sid}/checks", None, OWN),
    ("POST", "/api/sessions/{sid}/rating", "rating", only("taxpayer")),
    ("POST", "/api/sessions/{sid}/follow-up", "note", only("agent", "supervisor")),
    ("POST", "/api/sessions/{sid}/deliveries", "pdf", only("agent")),
    ("GET", "/api/deliveries", None, EVERYONE),
    ("GET", "/api/deliveries/{did}", None, OWN),
    ("GET", "/api/deliveries/{did}/content", None, OWN),
    ("POST", "/api/deliveries/{did}/ack", "empty", only("taxpayer")),
    ("GET", "/api/review/quality-form", None, SUPERVISOR),
    ("GET", "/api/review/agents", None, SUPERVISOR),
    ("GET", "/api/review/sessions/{sid}", None, SUPERVISOR),
    ("POST", "/api/review/sessions/{sid}/quality", "quality", SUPERVISOR),
    ("POST", "/api/review/sessions/{sid}/flag/resolve", "note", SUPERVISOR),
    ("POST", "/api/review/export-links", None, SUPERVISOR),
    ("GET", "/api/review/export.csv", None, SUPERVISOR),
    ("GET", "/api/stats/kpi", None, SUPERVISOR),
    ("GET", "/api/stats/live", None, SUPERVISOR),  # signaling/stats_api.py, when registered
    # people's access (a third person, so the roles' own tokens live on)
    ("POST", "/api/people/lookup", "lookup", SUPERVISOR),
    ("GET", "/api/people/{pid}/access", None, SUPERVISOR),
    ("POST", "/api/people/{pid}/disable", "reason", SUPERVISOR),
    ("POST", "/api/people/{pid}/enable", "reason", SUPERVISOR),
]
THIRD_PERSON = ("Third Person", "resident_id", "110105198001010016")
# how many rows each role sees in the lists
VISIBLE = {"taxpayer": 1, "other_taxpayer": 0, "agent": 1, "other_agent": 0, "supervisor": 1}
LOGIN = ("POST", "/api/auth/login")  # public; 401 invalid_credentials for a wrong password


def bodies(kind: str | None) -> dict:
    quality = {
        "greeting": 5,
        "accuracy": 20,
        "completeness": 10,
        "communication": 10,
        "compliance": 10,
        "record": 5,
    }
    table: dict[str | None, dict] = {
        None: {},
        "summary": {"json": SUMMARY | {"result": "follow_up"}},
        "dispute": {"json": {"decision": "dispute", "comment": "not what I asked"}},
        "rating": {"json": {"score": 3}},
        "note": {"json": {"note": "done"}},
        "pdf": {"data": PDF, "params": {"filename": "a.pdf"}},
        "empty": {"json": {}},
        "quality": {"json": {"scores": quality}},
        "lookup": {"json": {"document_type": THIRD_PERSON[1], "document": THIRD_PERSON[2]}},
        "reason": {"json": {"reason": "the authorization matrix"}},
    }
    return table[kind]


def spec_path(template: str) -> str:
    """The OpenAPI path of a matrix row's template."""
    return (
        template.replace("{sid}", "{session_id}")
        .replace("{did}", "{delivery_id}")
        .replace("{pid}", "{person_id}")
    )


def covered_path(covered: set[tuple[str, str]], method: str, template: str) -> bool:
    return (method, spec_path(template)) in covered


def outcome(status: int) -> str:
    return OK if status < 300 or status == 409 else str(status)


async def test_every_endpoint_for_every_role(server, cast):
    p = await people(server, cast)
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id)
    tokens = {
        "taxpayer": p.taxpayer,
        "other_taxpayer": p.other_taxpayer,
        "agent": p.agent,
        "other_agent": p.other_agent,
        "supervisor": p.supervisor,
        "none": None,
        "expired": server.ctx.issuer.issue(p.agent_id, "agent", now=1_000_000),
    }
    registered = {
        (method.upper(), path) for path, ops in build_openapi()["paths"].items() for method in ops
    }
    name, doc_type, doc = THIRD_PERSON
    pid = await server.ctx.services.identity.signin.registry.add_person(name, doc_type, doc, doc)
    ids = {"sid": sid, "did": "?", "pid": pid}
    wrong: list[tuple[str, str, str, str, str]] = []
    covered = {LOGIN}
    for method, template, kind, expected in MATRIX:
        if (method, spec_path(template)) not in registered:
            assert template == "/api/stats/live", template  # only that one is optional
            continue
        covered.add((method, spec_path(template)))
        for role in ROLES:
            path = template.format(**ids)
            async with server.http.request(
                method, server.url + path, headers=bearer(tokens[role]), **bodies(kind)
            ) as r:
                got = outcome(r.status)
                data = await r.json() if r.content_type == "application/json" else None
            if got != expected[role]:
                wrong.append((method, path, role, expected[role], f"{r.status} {data}"))
            if got == OK and kind == "pdf" and r.status == 201:
                ids["did"] = data["id"]
            if got == OK and template in ("/api/sessions", "/api/deliveries"):
                rows = data["sessions" if template == "/api/sessions" else "deliveries"]
                if len(rows) != VISIBLE[role]:
                    wrong.append((method, path, role, f"{VISIBLE[role]} rows", str(len(rows))))
    assert wrong == []

    # A supervisor's signed download link of the export (no filters) opens that and nothing
    # else: every other guarded endpoint still wants a bearer token.
    status, made = await call(server, "POST", "/api/review/export-links", p.supervisor)
    assert status == 200, made
    dl = made["url"].rsplit("dl=", 1)[1]
    for method, template, kind, expected in MATRIX:
        if expected is PUBLIC or not covered_path(covered, method, template):
            continue
        path = template.format(**ids)
        kwargs = bodies(kind)
        kwargs["params"] = kwargs.get("params", {}) | {"dl": dl}
        async with server.http.request(method, server.url + path, **kwargs) as r:
            await r.read()
            want = 200 if path == "/api/review/export.csv" else 401
            if r.status != want:
                wrong.append((method, path, "signed link", str(want), str(r.status)))
    assert wrong == []

    # Every other endpoint, from its OpenAPI entry.
    spec = build_openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if (method.upper(), path) in covered or "x-roles" not in op:
                continue
            url = server.url + path.replace("{", "x").replace("}", "")
            for role in ROLES:
                if role in ("none", "expired"):
                    want = {401}
                elif role.removeprefix("other_") not in op["x-roles"]:
                    want = {403}
                else:
                    continue  # allowed roles are that module's tests' business
                async with server.http.request(
                    method.upper(), url, headers=bearer(tokens[role])
                ) as r:
                    if r.status not in want:
                        wrong.append((method, path, role, str(want), str(r.status)))
    assert wrong == []


async def test_a_known_number_alone_gives_no_token(server, cast):
    """The removed identity step (`POST /api/auth/taxpayer`, a USCC or resident ID number to a
    token) is gone for every caller, and the token it used to give opens nothing."""
    p = await people(server, cast)
    for token in (None, p.taxpayer, p.agent, p.supervisor):
        for body in (
            {"id_type": "uscc", "id_number": "91350100M000100Y43"},
            {"id_type": "resident_id", "id_number": "11010519491231002X"},
        ):
            async with server.http.post(
                server.url + "/api/auth/taxpayer", json=body, headers=bearer(token)
            ) as r:
                text = await r.text()
                assert r.status in (404, 405), text
                assert "token" not in text
    unversioned = server.ctx.issuer.issue(cast.taxpayer, "taxpayer")  # what it gave
    for path in ("/api/sessions", "/api/deliveries"):
        async with server.http.get(server.url + path, headers=bearer(unversioned)) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"


async def test_login_is_public_and_checks_the_password(server):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + "/api/auth/login", json={"username": "agent1", "password": "pw-123456"}
        ) as r:
            assert r.status == 200
        async with http.post(
            server.url + "/api/auth/login", json={"username": "agent1", "password": "nope-nope"}
        ) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "invalid_credentials"


async def test_a_disabled_staff_account_is_refused_over_http(server, cast):
    from sqlalchemy import update

    from vtax.models import User

    p = await people(server, cast)
    async with server.ctx.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == p.agent_id).values(disabled=True))
    async with server.http.get(server.url + "/api/sessions", headers=bearer(p.agent)) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    forged_role = server.ctx.issuer.issue(p.agent_id, "supervisor")  # role must match the account
    async with server.http.get(server.url + "/api/sessions", headers=bearer(forged_role)) as r:
        assert r.status == 401
