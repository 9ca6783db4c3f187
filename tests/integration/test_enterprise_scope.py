"""Sessions record the person and the enterprise they act for, and what each role sees
follows docs/identity.md ("What each role sees"): acting for an enterprise as its legal
representative or finance officer, all of its sessions; as its tax handler, the ones they
took part in; for themselves, their own; another enterprise's representative, nothing."""

from __future__ import annotations

from typing import Any

import aiohttp
from sqlalchemy import select

from tests.conftest import RunningServer
from tests.review.helpers import PDF, call, served
from tests.signin import TestPerson, code_in, derived_phone, derived_resident_id, registry_csv
from vtax.app.identity import today_in
from vtax.db import session_factory
from vtax.identity.importer import import_text
from vtax.models import ServiceSession, SessionEvent

ACME = "91350100M000100Y43"
OTHER = "91440300MA00000077"
JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web"}


def person(seed: str) -> TestPerson:
    document = derived_resident_id(seed)
    return TestPerson(f"Person {seed}", document, derived_phone(document))


REP, FINANCE, HANDLER, OUTSIDER = (person(s) for s in ("rep", "finance", "handler", "outsider"))
GRANTS = [  # (person, USCC, role)
    (REP, ACME, "legal_representative"),
    (FINANCE, ACME, "finance_officer"),
    (HANDLER, ACME, "tax_handler"),
    (OUTSIDER, OTHER, "legal_representative"),
]


async def register(server: RunningServer) -> None:
    rows = [
        [p.name, "resident_id", p.document, p.phone, uscc, f"Enterprise {uscc}", role] + [""] * 5
        for p, uscc, role in GRANTS
    ]
    text = registry_csv([]) + "".join(",".join(r) + "\n" for r in rows)
    report = await import_text(
        session_factory(server.ctx.engine),
        text,
        "csv",
        today_in(server.ctx.settings.service_timezone)(),
    )
    assert not report.errors, [str(e) for e in report.errors]


async def sign_in(server: RunningServer, who: TestPerson, uscc: str | None = None) -> Any:
    """SMS sign-in (the code from the log sender), then acting for `uscc` if given."""
    sms = server.ctx.services.identity.sms
    assert sms is not None
    await server._post("/api/auth/sms/code", {"phone": who.phone})
    await sms.drain()
    text = [t for p, t in sms.sender.sent if p == who.phone][-1]  # type: ignore[attr-defined]
    session = await server._post(
        "/api/auth/sms/verify", {"phone": who.phone, "code": code_in(text)}
    )
    if uscc is not None:
        option = next(o for o in session["options"] if o["uscc"] == uscc)
        session = await server._post(
            "/api/auth/act-for",
            {
                "refresh_token": session["refresh_token"],
                "enterprise_id": option["enterprise_id"],
                "role": option["role"],
            },
        )
    return session


async def ask(server: RunningServer, clients: Any, token: str, question: str, sup: str) -> str:
    """Join the queue (the 'ask' opens the session record), then leave; the session's id."""
    c = await clients(server, token)
    joined = await c.call("queue:join", {**JOIN, "question": question})
    assert joined["ok"], joined
    assert (await c.call("queue:leave", {"ticket_id": joined["ticket_id"]}))["ok"]
    await c.sio.disconnect()
    async with server.http.get(
        server.url + "/api/sessions?limit=200", headers={"Authorization": f"Bearer {sup}"}
    ) as r:
        rows = (await r.json())["sessions"]
    return next(s["id"] for s in rows if s["question"] == question)


async def visible(server: RunningServer, token: str) -> set[str]:
    async with server.http.get(
        server.url + "/api/sessions?limit=200", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert r.status == 200, await r.text()
        return {s["question"] for s in (await r.json())["sessions"]}


async def opens(server: RunningServer, token: str, session_id: str) -> int:
    async with server.http.get(
        f"{server.url}/api/sessions/{session_id}", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status


async def test_what_each_role_sees_of_an_enterprise(server: RunningServer, clients: Any):
    await register(server)
    rep = await sign_in(server, REP, ACME)
    handler = await sign_in(server, HANDLER, ACME)
    handler_self = await sign_in(server, HANDLER)
    finance = await sign_in(server, FINANCE, ACME)
    outsider = await sign_in(server, OUTSIDER, OTHER)
    sup = await server.staff("boss", "supervisor")
    ids = {
        "rep for acme": await ask(server, clients, rep["access_token"], "rep for acme", sup),
        "handler for acme": await ask(
            server, clients, handler["access_token"], "handler for acme", sup
        ),
        "handler personal": await ask(
            server, clients, handler_self["access_token"], "handler personal", sup
        ),
    }
    # the record: the person and the enterprise with the role
    assert await server.ctx.records.acting_of(ids["rep for acme"]) == (
        rep["acting"]["enterprise_id"],
        "legal_representative",
    )
    assert await server.ctx.records.acting_of(ids["handler for acme"]) == (
        handler["acting"]["enterprise_id"],
        "tax_handler",
    )
    assert await server.ctx.records.acting_of(ids["handler personal"]) == ("", "")

    enterprise_wide = {"rep for acme", "handler for acme"}
    assert await visible(server, rep["access_token"]) == enterprise_wide
    assert await visible(server, finance["access_token"]) == enterprise_wide
    assert await visible(server, handler["access_token"]) == {"handler for acme"}
    assert await visible(server, handler_self["access_token"]) == {
        "handler for acme",
        "handler personal",
    }  # for themselves: every session they were the taxpayer of
    assert await visible(server, outsider["access_token"]) == set()
    # one session: the same rule, and 404 when not visible
    assert await opens(server, finance["access_token"], ids["handler for acme"]) == 200
    assert await opens(server, handler["access_token"], ids["rep for acme"]) == 404
    assert await opens(server, outsider["access_token"], ids["rep for acme"]) == 404
    assert await opens(server, rep["access_token"], ids["handler personal"]) == 404
    # the views name the enterprise and the role acted in (null: for oneself)
    status, seen = await call(
        server, "GET", f"/api/sessions/{ids['handler for acme']}", finance["access_token"]
    )
    assert status == 200, seen
    assert seen["enterprise"] == {
        "id": handler["acting"]["enterprise_id"],
        "uscc": ACME,
        "name": f"Enterprise {ACME}",
        "role": "tax_handler",
    }
    status, mine = await call(
        server, "GET", f"/api/sessions/{ids['handler personal']}", handler_self["access_token"]
    )
    assert status == 200 and mine["enterprise"] is None
    status, detail = await call(server, "GET", f"/api/review/sessions/{ids['rep for acme']}", sup)
    assert status == 200, detail
    assert detail["session"]["enterprise"]["role"] == "legal_representative"


async def test_deliveries_go_to_the_enterprise(server: RunningServer) -> None:
    """A document delivered in the tax handler's session for the enterprise reaches the
    enterprise: its legal representative sees it and acknowledges it, and the receipt names
    the representative; the handler sees it too; another enterprise's representative and the
    handler acting for themselves in another session see nothing of it."""
    await register(server)
    rep = await sign_in(server, REP, ACME)
    handler = await sign_in(server, HANDLER, ACME)
    outsider = await sign_in(server, OUTSIDER, OTHER)
    agent = await server.staff("officer")
    agent_id = server.ctx.issuer.verify(agent).subject
    handler_id = handler["person"]["person_id"]
    sid = await served(server.ctx.records, handler_id, agent_id)
    async with server.ctx.records.sessionmaker() as db, db.begin():
        row = await db.get(ServiceSession, sid)
        assert row is not None
        row.enterprise_id, row.acting_role = handler["acting"]["enterprise_id"], "tax_handler"
    status, d = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", agent, data=pdf_form()
    )
    assert status == 201, d

    async def listed(token: str) -> list[str]:
        status, page = await call(server, "GET", "/api/deliveries", token)
        assert status == 200, page
        return [x["id"] for x in page["deliveries"]]

    assert await listed(rep["access_token"]) == [d["id"]]
    assert await listed(handler["access_token"]) == [d["id"]]
    assert await listed(outsider["access_token"]) == []
    status, _ = await call(server, "GET", f"/api/deliveries/{d['id']}", outsider["access_token"])
    assert status == 404
    # signing a receipt needs a fresh high-level sign-in (docs/identity.md, Step-up)
    status, err = await call(
        server,
        "POST",
        f"/api/deliveries/{d['id']}/ack",
        await server.stepped_up(outsider["access_token"]),
        json={},
    )
    assert status == 404 and err["error"]["code"] == "not_found"

    # the representative downloads and acknowledges: the receipt names them
    status, body = await call(
        server, "GET", f"/api/deliveries/{d['id']}/content", rep["access_token"]
    )
    assert status == 200 and body == PDF
    status, acked = await call(
        server,
        "POST",
        f"/api/deliveries/{d['id']}/ack",
        await server.stepped_up(rep["access_token"]),
        json={},
    )
    assert status == 200, acked
    assert acked["status"] == "acknowledged"
    assert acked["receipt"]["taxpayer"]["id"] == rep["person"]["person_id"] != handler_id
    assert acked["taxpayer_id"] == handler_id  # the session's person, who asked
    # once: the handler's acknowledgement afterwards returns the representative's receipt
    status, again = await call(
        server,
        "POST",
        f"/api/deliveries/{d['id']}/ack",
        await server.stepped_up(handler["access_token"]),
        json={},
    )
    assert status == 200 and again["receipt"] == acked["receipt"]
    async with server.ctx.records.sessionmaker() as db:
        details = (
            await db.scalars(
                select(SessionEvent.data).where(
                    SessionEvent.session_id == sid, SessionEvent.kind == "acknowledged"
                )
            )
        ).all()
    assert details == [
        {
            "delivery_id": d["id"],
            "sha256": d["sha256"],
            "for_enterprise": rep["acting"]["enterprise_id"],
        }
    ]


def pdf_form() -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("file", PDF, filename="notice.pdf", content_type="application/pdf")
    return f
