"""Step-up through a running node (docs/identity.md, "Step-up"): a risky catalog item
(`queue:join` with `item`) and signing a delivery receipt are refused with
`step_up_required` to an SMS sign-in (level 3), and pass after a step-up through the real
OpenID Provider (tests/oidc/provider.mjs: `acr_values`, `prompt=login`, `max_age`), taken by
the open socket with `auth:renew`; a step-up that comes back as another person is refused
(`step_up_refused`) and changes nothing; each step is a row of the identity audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from tests.conftest import USCC, RunningServer
from tests.identity.numbers import resident_id
from tests.identity.oidc_provider import (
    REDIRECT,
    Browser,
    Provider,
    free_port,
    node_settings,
    running,
)
from tests.identity.test_identity_api import post
from tests.review.helpers import PDF, call, served
from tests.signin import person_for
from vtax.identity.tables import IdentityAudit, Person

ME = person_for(USCC)  # signed in by SMS code, acting for the enterprise USCC
SOLO = person_for(resident_id("44030019800101123"), "resident_id")  # acting for themselves
ACCOUNTS = {
    # the same person at the identity platform (the same document), live person matched
    "me": {
        "name": ME.name,
        "acr": 4,
        "document_type": "resident_id",
        "document_number": ME.document,
    },
    "solo": {
        "name": SOLO.name,
        "acr": 4,
        "document_type": "resident_id",
        "document_number": SOLO.document,
    },
    # another person, at the same level
    "other": {
        "name": "Li Ming",
        "acr": 4,
        "document_type": "resident_id",
        "document_number": "11010519491231002X",
    },
}
RISKY = {
    "category": "invoices",
    "item": "invoices.invoice_collection",
    "language": "zh-CN",
    "channel": "web",
    "question": "I need to collect invoices",
}


@pytest.fixture
def provider_port() -> int:
    return free_port()


@pytest.fixture
def settings_overrides(provider_port: int) -> dict[str, Any]:
    return node_settings(provider_port)


@pytest.fixture
async def provider(
    server: RunningServer, provider_port: int, tmp_path: Path
) -> AsyncIterator[Provider]:
    """The provider with this file's accounts (the same person, another one)."""
    async with running(tmp_path, provider_port, ACCOUNTS, server.url) as p:
        yield p


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        await b.close()


async def step_up(
    server: RunningServer, browser: Browser, token: str, account: str
) -> tuple[int, Any]:
    """The page's "verify again": start with step_up=true and the taxpayer's token, sign in
    at the provider as `account`, post the callback."""
    status, start, _ = await post(
        server, "/api/auth/oidc/start?step_up=true", {"language": "en"}, token
    )
    assert status == 200, start
    url = start["authorization_url"]
    assert "prompt=login" in url and "max_age=300" in url and "acr_values=4+5" in url
    back = await browser.authorize(f"{url}&login_hint={account}", REDIRECT)
    status, answer, _ = await post(
        server, "/api/auth/oidc/callback", {"code": back["code"], "state": back["state"]}
    )
    return status, answer


async def audit(server: RunningServer, subject: str) -> list[tuple[str, dict[str, Any]]]:
    async with server.ctx.records.sessionmaker() as db:
        rows = await db.scalars(
            select(IdentityAudit)
            .where(IdentityAudit.subject == subject, IdentityAudit.kind.like("step_up%"))
            .order_by(IdentityAudit.id)
        )
        return [(r.kind, dict(r.data)) for r in rows]


async def test_catalog_flags_risky_items(server: RunningServer):
    async with server.http.get(f"{server.url}/api/catalog") as r:
        catalog = await r.json()
    flagged = {i["code"] for c in catalog["categories"] for i in c["items"] if i["step_up"]}
    assert {
        "invoices.invoice_collection",
        "registration.deregistration",
        "cross_border.export_tax_refund",
    } <= flagged
    assert "invoices.red_letter_invoice" not in flagged
    assert all(isinstance(i["step_up"], bool) for c in catalog["categories"] for i in c["items"])


async def test_risky_item_needs_a_step_up(
    server: RunningServer, provider: Provider, browser: Browser, clients: Any
):
    agent = await clients(server, await server.staff("agent1"))
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    session = await server.taxpayer_session(USCC)  # SMS code: level 3
    assert session["acr"] == 3 and session["acting"]["uscc"] == USCC
    me = session["person"]["person_id"]
    taxpayer = await clients(server, session["access_token"])

    refused = await taxpayer.call("queue:join", RISKY)
    assert refused["ok"] is False, refused
    assert refused["error"]["code"] == "step_up_required"
    assert refused["error"]["step_up"] == {"acr": 4, "max_age_s": 300}
    # an item of another category is a bad payload; an ordinary item needs nothing more
    wrong = await taxpayer.call("queue:join", {**RISKY, "item": "registration.deregistration"})
    assert wrong["error"]["code"] == "invalid_payload"
    [(kind, data)] = await audit(server, me)
    assert kind == "step_up_required" and data["action"] == "queue:join"
    assert data["target"] == "invoices.invoice_collection" and data["acr"] == 3
    assert 0 <= data["age_s"] < 60

    # verify again: the same person, level 4, still acting for the enterprise
    status, stepped = await step_up(server, browser, session["access_token"], "me")
    assert status == 200, stepped
    assert stepped["person"]["person_id"] == me and stepped["acr"] == 4
    assert stepped["method"] == "oidc" and stepped["acting"]["uscc"] == USCC
    renewed = await taxpayer.call("auth:renew", {"token": stepped["access_token"]})
    assert renewed["ok"], renewed
    joined = await taxpayer.call("queue:join", RISKY)
    assert joined["ok"], joined
    assert (await agent.wait_for("offer:new"))["ticket"]["category"] == "invoices"
    kinds = [k for k, _ in await audit(server, me)]
    assert kinds == ["step_up_required", "step_up_done"]
    done = (await audit(server, me))[1][1]
    assert done["acr"] == 4 and done["act"] == session["acting"]["enterprise_id"]


async def test_receipt_needs_a_step_up(server: RunningServer, provider: Provider, browser: Browser):
    session = await server.taxpayer_session(SOLO.document, "resident_id")
    me, token = session["person"]["person_id"], session["access_token"]
    agent_id = (
        await server.ctx.accounts.add_user("agent9", "agent", "pw-12345", display_name="Agent 9")
    ).id
    agent = server.ctx.issuer.issue(agent_id, "agent", "Agent Nine")
    sid = await served(server.ctx.records, me, agent_id)
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="notice.pdf", content_type="application/pdf")
    status, d = await call(server, "POST", f"/api/sessions/{sid}/deliveries", agent, data=form)
    assert status == 201, d
    status, _ = await call(server, "GET", f"/api/deliveries/{d['id']}/content", token)
    assert status == 200

    status, err = await call(server, "POST", f"/api/deliveries/{d['id']}/ack", token, json={})
    assert status == 401 and err["error"]["code"] == "step_up_required"
    assert err["error"]["step_up"] == {"acr": 4, "max_age_s": 300}
    status, view = await call(server, "GET", f"/api/deliveries/{d['id']}", token)
    assert view["status"] != "acknowledged" and view["receipt"] is None

    status, stepped = await step_up(server, browser, token, "solo")
    assert status == 200, stepped
    status, acked = await call(
        server, "POST", f"/api/deliveries/{d['id']}/ack", stepped["access_token"], json={}
    )
    assert status == 200, acked
    assert acked["status"] == "acknowledged" and acked["receipt"]["taxpayer"]["id"] == me
    rows = await audit(server, me)
    assert [k for k, _ in rows] == ["step_up_required", "step_up_done"]
    assert rows[0][1]["action"] == "delivery_ack" and rows[0][1]["target"] == d["id"]


async def test_a_step_up_as_another_person_is_refused(
    server: RunningServer, provider: Provider, browser: Browser, clients: Any
):
    session = await server.taxpayer_session(USCC)
    me, token = session["person"]["person_id"], session["access_token"]
    status, err = await step_up(server, browser, token, "other")
    assert status == 403 and err["error"]["code"] == "step_up_refused", err
    # nothing of the other person was written, and the session is as it was (level 3)
    async with server.ctx.records.sessionmaker() as db:
        names = (await db.scalars(select(Person.name))).all()
    assert "Li Ming" not in names
    taxpayer = await clients(server, token)
    refused = await taxpayer.call("queue:join", RISKY)
    assert refused["error"]["code"] == "step_up_required"
    rows = await audit(server, me)
    assert [k for k, _ in rows] == ["step_up_refused", "step_up_required"]
    assert rows[0][1]["reason"] == "another person" and rows[0][1]["acr"] == 4

    # a step-up without the taxpayer's token is no step-up
    status, _, _ = await post(server, "/api/auth/oidc/start?step_up=true", {})
    assert status == 401
