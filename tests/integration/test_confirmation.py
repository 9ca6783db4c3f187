"""The confirmation form (业务办理服务确认单) through real Socket.IO clients and REST, on SQLite
and PostgreSQL: versions with their canonical hash, only the session's taxpayer decides and
only on the latest version, decided versions never change, a new proposal needs a new
confirmation, third parties are refused, bad values are refused with details, and the handle
step records the form."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence

from tests.conftest import RESIDENT_ID
from tests.integration.test_loop import start_session
from vtax.app.confirmation import MaterialRef

VAT = {
    "code": "declaration_payment.vat_return",
    "values": {"tax_period": "2026-11", "taxable_amount": "120000.00", "tax_due": "15600.00"},
}
INVOICES = {
    "code": "invoices.invoice_collection",
    "values": {"invoice_kind": "vat_special", "quantity": 25},
}


def sha(content: dict) -> str:
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def propose(sid: str, *items: dict, note: str = "") -> dict:
    return {"session_id": sid, "items": list(items), "note": note}


async def history(server, token: str, sid: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    async with server.http.get(
        f"{server.url}/api/sessions/{sid}/confirmation", headers=headers
    ) as r:
        return r.status, await r.json()


async def test_versions_hashes_and_the_taxpayers_decisions(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]

    ack = await agent.call("confirmation:propose", propose(sid, VAT, note="please check"))
    assert ack["ok"], ack
    v1 = ack["form"]
    assert (v1["version"], v1["state"], v1["latest"]) == (1, "proposed", True)
    # The hash is over the canonical JSON of exactly the content shown: anyone can recompute it.
    assert v1["sha256"] == sha(v1["content"])
    assert v1["content"]["items"][0]["values"] == VAT["values"]
    needs = v1["content"]["items"][0]["materials"]
    assert [m["requirement"] for m in needs] == ["vat_return_form", "invoice_list", "handler_id"]
    assert [m["required"] for m in needs] == [True, False, True]
    assert all(m["material_id"] is None and m["sha256"] is None for m in needs)
    assert v1["complete"] is False and v1["decision"] is None
    # The taxpayer sees it live; so do the agent's own pages.
    pushed = await taxpayer.wait_for("confirmation:form")
    assert pushed == {"session_id": sid, "form": v1}
    await agent.wait_for("confirmation:form")

    # The same content again is no new version (a retried ack), and its hash is stable.
    again = await agent.call("confirmation:propose", propose(sid, VAT, note="please check"))
    assert again["form"] == v1
    # Key order in the payload changes nothing: the hash is over the canonical form.
    shuffled = {"code": VAT["code"], "values": dict(reversed(list(VAT["values"].items())))}
    assert (await agent.call("confirmation:propose", propose(sid, shuffled, note="please check")))[
        "form"
    ]["version"] == 1

    v2 = (await agent.call("confirmation:propose", propose(sid, VAT, INVOICES)))["form"]
    assert v2["version"] == 2 and v2["sha256"] == sha(v2["content"]) != v1["sha256"]
    await taxpayer.wait_for("confirmation:form", lambda m: m["form"]["version"] == 2)

    # Only the latest version can be decided, named with its hash.
    stale = await taxpayer.call(
        "confirmation:confirm", {"session_id": sid, "version": 1, "sha256": v1["sha256"]}
    )
    assert stale["error"]["code"] == "form_version_stale", stale
    wrong = await taxpayer.call(
        "confirmation:confirm", {"session_id": sid, "version": 2, "sha256": v1["sha256"]}
    )
    assert wrong["error"]["code"] == "form_hash_mismatch"
    confirm = {"session_id": sid, "version": 2, "sha256": v2["sha256"]}
    done = await taxpayer.call("confirmation:confirm", confirm)
    assert done["ok"], done
    assert done["form"]["state"] == "confirmed"
    assert done["form"]["decision"]["decision"] == "confirmed"
    assert done["form"]["decision"]["sha256"] == v2["sha256"]
    told = await agent.wait_for("confirmation:form", lambda m: m["form"]["state"] == "confirmed")
    assert told["form"]["decision"]["taxpayer_id"] == done["form"]["decision"]["taxpayer_id"]

    # A confirmed version never changes: the same confirmation again is a no-op, a refusal
    # is refused, the same content proposed again is still that confirmed version.
    assert (await taxpayer.call("confirmation:confirm", confirm))["form"] == done["form"]
    refused = await taxpayer.call("confirmation:refuse", {**confirm, "reason": "no"})
    assert refused["error"]["code"] == "form_already_decided"
    same = await agent.call("confirmation:propose", propose(sid, VAT, INVOICES))
    assert same["form"] == done["form"]

    # A new proposal after the confirmation is a new version that needs its own decision.
    changed = {**INVOICES, "values": {"invoice_kind": "vat_special", "quantity": 50}}
    v3 = (await agent.call("confirmation:propose", propose(sid, VAT, changed)))["form"]
    assert (v3["version"], v3["state"]) == (3, "proposed")
    old = await taxpayer.call("confirmation:confirm", confirm)
    assert old["error"]["code"] == "form_version_stale"
    no = await taxpayer.call(
        "confirmation:refuse",
        {"session_id": sid, "version": 3, "sha256": v3["sha256"], "reason": "50 is too many"},
    )
    assert no["form"]["state"] == "refused" and no["form"]["decision"]["reason"] == "50 is too many"
    # After a refusal the agent may propose the same content again: a new version to decide.
    v4 = (await agent.call("confirmation:propose", propose(sid, VAT, changed)))["form"]
    assert (v4["version"], v4["sha256"], v4["state"]) == (4, v3["sha256"], "proposed")

    # The history: every version with its decision, oldest first; the reload's read.
    status, got = await history(server, taxpayer.token, sid)
    assert status == 200
    assert [(v["version"], v["state"]) for v in got["versions"]] == [
        (1, "superseded"),
        (2, "confirmed"),
        (3, "refused"),
        (4, "proposed"),
    ]
    assert got["latest"] == v4 and [v["latest"] for v in got["versions"]] == [
        False,
        False,
        False,
        True,
    ]
    now = await taxpayer.call("confirmation:get", {"session_id": sid})
    assert now["form"] == v4
    # The supervisor's review detail has the same history; the audit log has every step.
    sup = await server.staff("boss", "supervisor")
    async with server.http.get(
        f"{server.url}/api/review/sessions/{sid}", headers={"Authorization": f"Bearer {sup}"}
    ) as r:
        detail = await r.json()
    assert detail["confirmation"] == got
    assert {v["author_id"] for v in got["versions"]} == {detail["session"]["agent"]["id"]}
    kinds = [e["kind"] for e in detail["audit"] if e["kind"].startswith("form_")]
    assert kinds == [
        "form_proposed",
        "form_proposed",
        "form_confirmed",
        "form_proposed",
        "form_refused",
        "form_proposed",
    ]


async def test_third_parties_and_wrong_roles_are_refused(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    v1 = (await agent.call("confirmation:propose", propose(sid, VAT)))["form"]
    decide = {"session_id": sid, "version": 1, "sha256": v1["sha256"]}

    other_agent = await clients(server, await server.staff("agent2"))
    other_taxpayer = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    sup = await server.staff("boss", "supervisor")
    supervisor = await clients(server, sup)

    ack = await other_agent.call("confirmation:propose", propose(sid, INVOICES))
    assert ack["error"]["code"] == "not_in_session"
    ack = await other_agent.call("confirmation:get", {"session_id": sid})
    assert ack["error"]["code"] == "not_in_session"
    ack = await other_taxpayer.call("confirmation:confirm", decide)
    assert ack["error"]["code"] == "not_in_session"
    ack = await other_taxpayer.call("confirmation:get", {"session_id": sid})
    assert ack["error"]["code"] == "not_in_session"
    # Roles: the agent never decides, the taxpayer never proposes, a supervisor does neither.
    assert (await agent.call("confirmation:confirm", decide))["error"]["code"] == "forbidden"
    ack = await taxpayer.call("confirmation:propose", propose(sid, INVOICES))
    assert ack["error"]["code"] == "forbidden"
    ack = await supervisor.call("confirmation:refuse", {**decide, "reason": "x"})
    assert ack["error"]["code"] == "forbidden"
    # An unknown session is the same answer as someone else's.
    ack = await agent.call("confirmation:propose", propose("nope", VAT))
    assert ack["error"]["code"] == "not_in_session"
    # Nobody outside the session reads its history over REST.
    status, body = await history(server, other_taxpayer.token, sid)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _ = await history(server, other_agent.token, sid)
    assert status == 404
    status, _ = await history(server, sup, sid)
    assert status == 200
    # Nothing the third parties sent changed the form, and nobody else heard of it.
    status, got = await history(server, taxpayer.token, sid)
    assert [v["state"] for v in got["versions"]] == ["proposed"]
    assert other_taxpayer.received["confirmation:form"] == []
    assert other_agent.received["confirmation:form"] == []
    assert (await taxpayer.call("confirmation:confirm", decide))["ok"]


async def test_invalid_values_are_refused_with_details(server, clients):
    agent, _taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    bad = [
        {
            "code": "declaration_payment.vat_return",
            "values": {"tax_period": "2026-13", "taxable_amount": "12.5", "extra": 1},
        },
        {"code": "invoices.invoice_collection", "values": {"invoice_kind": "gold", "quantity": 0}},
        {"code": "invoices.invoice_collection", "values": {"invoice_kind": "digital", "quantity": 1}},
        {"code": "registration.deregistration", "materials": {"no_such_paper": "m-1"}},
        {"code": "declaration_payment.tax_payment", "values": {"tax_period": "2026-01", "tax_due": "1.00"}, "materials": {"handler_id": "m-missing"}},
    ]  # fmt: skip
    ack = await agent.call("confirmation:propose", propose(sid, *bad))
    assert ack["error"]["code"] == "form_invalid", ack
    details = {d["loc"]: d["msg"] for d in ack["error"]["details"]}
    assert set(details) == {
        "items.0.values.tax_period",
        "items.0.values.taxable_amount",
        "items.0.values.extra",
        "items.0.values.tax_due",
        "items.1.values.invoice_kind",
        "items.1.values.quantity",
        "items.2.code",
        "items.3.materials.no_such_paper",
        "items.4.materials.handler_id",
    }
    assert details["items.0.values.tax_due"] == "required"
    assert "2 places" in details["items.0.values.taxable_amount"]
    # A JSON number where an amount string belongs is refused by the contract itself.
    floats = {"code": VAT["code"], "values": {**VAT["values"], "tax_due": 15600.5}}
    ack = await agent.call("confirmation:propose", propose(sid, floats))
    assert ack["error"]["code"] == "invalid_payload" and ack["error"]["details"]
    ack = await agent.call("confirmation:propose", {"session_id": sid, "items": []})
    assert ack["error"]["code"] == "invalid_payload"
    ack = await agent.call(
        "confirmation:propose", propose(sid, {"code": "invoices.no_such_item", "values": {}})
    )
    assert ack["error"]["code"] == "invalid_payload"
    # Nothing was stored; the connection still works.
    status, got = await history(server, agent.token, sid)
    assert (status, got["versions"], got["latest"]) == (200, [], None)
    assert (await agent.call("confirmation:propose", propose(sid, VAT)))["form"]["version"] == 1


class SessionMaterials:
    """The materials of sessions as the materials area keeps them (id, hash), in memory."""

    def __init__(self, by_session: dict[str, list[MaterialRef]]) -> None:
        self.by_session = by_session

    async def find(self, session_id: str, ids: Sequence[str]) -> dict[str, MaterialRef]:
        return {m.id: m for m in self.by_session.get(session_id, []) if m.id in ids}


async def test_linked_materials_go_into_the_version_with_their_hashes(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    form = server.ctx.services.confirmation
    mine = [MaterialRef("m-return", "a" * 64), MaterialRef("m-id", "b" * 64)]
    form.materials = SessionMaterials({sid: mine, "another": [MaterialRef("m-theirs", "c" * 64)]})
    linked = {**VAT, "materials": {"vat_return_form": "m-return", "handler_id": "m-id"}}
    v1 = (await agent.call("confirmation:propose", propose(sid, linked)))["form"]
    links = {m["requirement"]: m for m in v1["content"]["items"][0]["materials"]}
    assert links["vat_return_form"]["material_id"] == "m-return"
    assert links["vat_return_form"]["sha256"] == "a" * 64
    assert links["invoice_list"]["material_id"] is None  # optional, not linked
    assert v1["complete"] is True and v1["sha256"] == sha(v1["content"])
    # Another session's material cannot be linked.
    theirs = {**VAT, "materials": {"vat_return_form": "m-theirs"}}
    ack = await agent.call("confirmation:propose", propose(sid, theirs))
    assert ack["error"]["code"] == "form_invalid"
    assert [d["loc"] for d in ack["error"]["details"]] == ["items.0.materials.vat_return_form"]
    # The summary records the confirmed version with the materials' hashes.
    decide = {"session_id": sid, "version": 1, "sha256": v1["sha256"]}
    assert (await taxpayer.call("confirmation:confirm", decide))["ok"]
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    summary = {"session_id": sid, "asked": "VAT", "handled": "filed", "result": "resolved"}
    assert (await agent.call("session:summary", summary))["ok"]
    _, got = await history(server, agent.token, sid)
    record = got["recorded"]
    assert [(m["requirement"], m["material_id"], m["sha256"]) for m in record["materials"]] == [
        ("vat_return_form", "m-return", "a" * 64),
        ("invoice_list", None, None),
        ("handler_id", "m-id", "b" * 64),
    ]


async def test_the_handle_step_records_the_confirmed_form(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    v1 = (await agent.call("confirmation:propose", propose(sid, VAT, INVOICES)))["form"]
    decided = await taxpayer.call(
        "confirmation:confirm", {"session_id": sid, "version": 1, "sha256": v1["sha256"]}
    )
    v2 = (await agent.call("confirmation:propose", propose(sid, VAT)))["form"]
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    await agent.wait_for("session:end")

    # After the call nothing is proposed or decided any more.
    ack = await agent.call("confirmation:propose", propose(sid, INVOICES))
    assert ack["error"]["code"] == "session_ended"
    decide = {"session_id": sid, "version": 2, "sha256": v2["sha256"]}
    ack = await taxpayer.call("confirmation:confirm", decide)
    assert ack["error"]["code"] == "session_ended"

    # Version 2 is not confirmed: a resolved summary is refused, a follow-up one records it.
    summary = {"session_id": sid, "asked": "VAT", "handled": "filed", "result": "resolved"}
    ack = await agent.call("session:summary", summary)
    assert ack["error"]["code"] == "form_not_confirmed", ack
    ack = await agent.call("session:summary", {**summary, "result": "follow_up"})
    assert ack == {"ok": True, "version": 1}
    _, got = await history(server, taxpayer.token, sid)
    record = got["recorded"]
    assert record["version"] == 2 and record["state"] == "proposed"
    assert record["sha256"] == v2["sha256"] and record["confirmed_by"] is None
    assert record["items"] == ["declaration_payment.vat_return"]
    # The version confirmed during the call stays confirmed in the history, with who and when.
    first = got["versions"][0]
    assert first["state"] == "confirmed" and first["decision"] == decided["form"]["decision"]


async def test_a_resolved_summary_records_who_confirmed_when(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    # A session without a form: the summary is as before, with no form.
    v1 = (await agent.call("confirmation:propose", propose(sid, INVOICES)))["form"]
    done = await taxpayer.call(
        "confirmation:confirm", {"session_id": sid, "version": 1, "sha256": v1["sha256"]}
    )
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    summary = {"session_id": sid, "asked": "invoices", "handled": "25 issued", "result": "resolved"}
    assert (await agent.call("session:summary", summary))["ok"]
    sup = await server.staff("boss", "supervisor")
    async with server.http.get(
        f"{server.url}/api/review/sessions/{sid}", headers={"Authorization": f"Bearer {sup}"}
    ) as r:
        detail = await r.json()
    record = detail["confirmation"]["recorded"]
    decision = done["form"]["decision"]
    assert record["state"] == "confirmed" and record["sha256"] == v1["sha256"]
    assert (record["confirmed_by"], record["confirmed_at"]) == (
        decision["taxpayer_id"],
        decision["at"],
    )
    saved = next(e for e in detail["audit"] if e["kind"] == "summary_saved")
    assert (saved["data"]["form_version"], saved["data"]["form_sha256"]) == (1, v1["sha256"])


async def test_a_session_without_a_form_summarises_as_before(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    assert (await taxpayer.call("confirmation:get", {"session_id": sid})) == {
        "ok": True,
        "session_id": sid,
        "form": None,
    }
    decide = {"session_id": sid, "version": 1, "sha256": "0" * 64}
    assert (await taxpayer.call("confirmation:confirm", decide))["error"]["code"] == "not_found"
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    summary = {"session_id": sid, "asked": "a", "handled": "h", "result": "resolved"}
    assert (await agent.call("session:summary", summary))["ok"]
    _, got = await history(server, agent.token, sid)
    assert (got["versions"], got["recorded"]) == ([], None)


async def test_concurrent_proposals_get_one_version_each(server, clients):
    agent, _taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    items = [
        {"code": INVOICES["code"], "values": {"invoice_kind": "digital", "quantity": n}}
        for n in range(1, 7)
    ]
    acks = await asyncio.gather(
        *(agent.call("confirmation:propose", propose(sid, item)) for item in items)
    )
    assert all(a["ok"] for a in acks), acks
    assert sorted(a["form"]["version"] for a in acks) == [1, 2, 3, 4, 5, 6]
    _, got = await history(server, agent.token, sid)
    assert [v["version"] for v in got["versions"]] == [1, 2, 3, 4, 5, 6]
    assert [v["state"] for v in got["versions"]] == ["superseded"] * 5 + ["proposed"]


async def test_the_field_definitions_are_published(server):
    async with server.http.get(f"{server.url}/api/catalog/forms") as r:
        assert r.status == 200
        forms = await r.json()
    by_code = {i["code"]: i for i in forms["items"]}
    async with server.http.get(f"{server.url}/api/catalog") as r:
        catalog = await r.json()
    codes = {i["code"] for c in catalog["categories"] for i in c["items"]}
    assert set(by_code) == codes  # every item, most with materials only
    vat = {f["name"]: f for f in by_code["declaration_payment.vat_return"]["fields"]}
    assert (vat["tax_period"]["type"], vat["tax_due"]["type"], vat["tax_due"]["min"]) == (
        "period",
        "money",
        "0.00",
    )
    assert set(vat["tax_due"]["label"]) == {"zh-CN", "zh-HK", "en", "pt"}
    assert by_code["registration.deregistration"]["fields"] == []
    assert [m["name"] for m in by_code["registration.deregistration"]["materials"]] == [
        "handler_id"
    ]


async def test_a_form_links_the_sessions_real_uploads_by_id_and_hash(server, clients):
    """The materials area and the form together (vtax/compose.py binds them): the taxpayer
    uploads, the agent links the upload, the version carries its real SHA-256; a rejected
    material can no longer be linked."""
    from tests.integration.test_materials import PDF, upload

    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    status, material = await upload(server, taxpayer.token, sid)
    assert status == 201, material
    assert material["sha256"] == hashlib.sha256(PDF).hexdigest()
    linked = {**VAT, "materials": {"vat_return_form": material["id"]}}
    v1 = (await agent.call("confirmation:propose", propose(sid, linked)))["form"]
    links = {m["requirement"]: m for m in v1["content"]["items"][0]["materials"]}
    assert links["vat_return_form"]["material_id"] == material["id"]
    assert links["vat_return_form"]["sha256"] == material["sha256"]
    rejected = await agent.call(
        "material:review",
        {"session_id": sid, "material_id": material["id"], "decision": "reject", "reason": "no"},
    )
    assert rejected["ok"], rejected
    again = await agent.call("confirmation:propose", propose(sid, linked, note="again"))
    assert again["error"]["code"] == "form_invalid", again
