"""The confirmation form across two real nodes over the real Redis and PostgreSQL: the agent on
one node proposes, the taxpayer on the other sees it at once and confirms, the agent hears of
it; a taxpayer who moves to the other node (a reload) reads the form back."""

from __future__ import annotations

import pytest

from tests.conftest import Client
from tests.multinode.test_two_nodes import session_across, tokens

pytestmark = pytest.mark.multinode

VAT = {
    "code": "declaration_payment.vat_return",
    "values": {"tax_period": "2026-11", "taxable_amount": "120000.00", "tax_due": "15600.00"},
}


async def test_the_form_crosses_nodes_both_ways(cluster):
    a, b = cluster.node("a"), cluster.node("b")
    agent_token, taxpayer_token, _boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    moved = None
    try:
        ack = await agent.call(
            "confirmation:propose", {"session_id": sid, "items": [VAT], "note": ""}
        )
        assert ack["ok"], ack
        v1 = ack["form"]
        pushed = await taxpayer.wait_for("confirmation:form", timeout=10)  # on node b
        assert pushed["form"] == v1

        # The taxpayer reloads onto node a: the form is read back there.
        await taxpayer.close()
        moved = await Client(a.url, taxpayer_token).connect()
        got = await moved.call("confirmation:get", {"session_id": sid})
        assert got["form"] == v1
        await moved.close()
        moved = await Client(b.url, taxpayer_token).connect()

        decided = await moved.call(
            "confirmation:confirm", {"session_id": sid, "version": 1, "sha256": v1["sha256"]}
        )
        assert decided["ok"], decided
        told = await agent.wait_for(
            "confirmation:form", lambda m: m["form"]["state"] == "confirmed", timeout=10
        )
        assert told["form"] == decided["form"]
    finally:
        await agent.close()
        await taxpayer.close()
        if moved is not None:
            await moved.close()
