"""Materials across two real nodes over Redis and PostgreSQL: the taxpayer uploads on one
node, the agent connected to the other hears of it at once, opens it there and rejects it;
the taxpayer hears the reason on the first node."""

from __future__ import annotations

import aiohttp
import pytest

from tests.multinode.test_two_nodes import session_across, tokens
from tests.review.helpers import PDF

pytestmark = pytest.mark.multinode


async def test_the_agent_on_the_other_node_hears_of_an_upload(cluster, tmp_path):
    documents = str(tmp_path / "documents")  # one document store for both nodes
    a = cluster.node("a", VTAX_DOCUMENTS_DIR=documents)
    b = cluster.node("b", VTAX_DOCUMENTS_DIR=documents)
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, b, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    try:
        form = aiohttp.FormData()
        form.add_field("file", PDF, filename="id.pdf", content_type="application/pdf")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{b.url}/api/sessions/{sid}/materials",
                data=form,
                headers={"Authorization": f"Bearer {taxpayer_token}"},
            ) as r:
                assert r.status == 201, await r.text()
                material = await r.json()
            news = await agent.wait_for("material:new", timeout=10)
            assert news["material"] == material
            # the agent opens it on its own node
            async with http.get(
                f"{a.url}/api/sessions/{sid}/materials/{material['id']}/content",
                headers={"Authorization": f"Bearer {agent_token}"},
            ) as r:
                assert r.status == 200 and await r.read() == PDF
            ack = await agent.call(
                "material:review",
                {
                    "session_id": sid,
                    "material_id": material["id"],
                    "decision": "reject",
                    "reason": "please send page 2 as well",
                },
            )
            assert ack["ok"], ack
            told = await taxpayer.wait_for("material:reviewed", timeout=10)
            assert told["material"]["state"] == "rejected"
            assert told["material"]["reason"] == "please send page 2 as well"
            async with http.get(
                f"{b.url}/api/sessions/{sid}/materials",
                headers={"Authorization": f"Bearer {boss}"},
            ) as r:
                assert r.status == 200
                assert [m["state"] for m in (await r.json())["materials"]] == ["rejected"]
    finally:
        await agent.close()
        await taxpayer.close()
