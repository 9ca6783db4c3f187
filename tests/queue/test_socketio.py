"""What taxpayers, agents and supervisors see of the queue, through real Socket.IO clients
and HTTP, with shortened timers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import RESIDENT_ID, USCC, poll_until
from vtax.queue.queues import DAYS

JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "VAT?"}
FAST = {
    "offer_timeout_s": 0.4,
    "no_answer_delay_s": 0.1,
    "reject_delay_s": 0.1,
    "queue_tick_s": 0.02,
    "queue_update_interval_s": 0.5,
    "stats_push_s": 0.2,
    "queue_grace_s": 3.0,
}
OTHER_TAXPAYERS = ["110105194912310038", "110105195001010012", "440301194005150028"]


async def agent_available(server, clients, name="agent1", **kw):
    agent = await clients(server, await server.staff(name, **kw))
    ack = await agent.call("agent:status", {"status": "available"})
    assert ack == {"ok": True, "status": "available"}
    return agent


async def test_missed_offers_make_the_agent_away_and_the_agent_is_told(server, clients):
    agent = await agent_available(server, clients)
    taxpayer = await clients(server, await server.taxpayer())
    assert (await taxpayer.call("queue:join", JOIN))["ok"]
    first = await agent.wait_for("offer:new")
    await agent.wait_for("offer:revoked", lambda r: r["offer_id"] == first["offer_id"])
    second = await agent.wait_for("offer:new", lambda o: o["offer_id"] != first["offer_id"])
    assert second["ticket"]["ticket_id"] == first["ticket"]["ticket_id"]
    status = await agent.wait_for("agent:status", lambda s: s["status"] == "away")
    assert status == {"status": "away", "reason": "missed_offers"}
    late = await agent.call("offer:accept", {"offer_id": second["offer_id"]})
    assert late["error"]["code"] == "offer_expired"
    # Back to work: the waiting ticket comes at once.
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    third = await agent.wait_for(
        "offer:new", lambda o: o["offer_id"] not in (first["offer_id"], second["offer_id"])
    )
    assert (await agent.call("offer:accept", {"offer_id": third["offer_id"]}))["ok"]
    await taxpayer.wait_for("session:start")


async def test_a_dropped_taxpayer_rejoins_in_the_same_place(server, clients):
    token = await server.taxpayer()
    first = await clients(server, token)
    second = await clients(server, await server.taxpayer(RESIDENT_ID, "resident_id"))
    joined = await first.call("queue:join", JOIN)
    assert (await second.call("queue:join", JOIN))["position"] == 2
    await first.close()  # the connection drops
    await poll_until(lambda: joined["ticket_id"] not in server.ctx.queue.engine.tickets)
    again = await clients(server, token)
    dup = await again.call("queue:join", JOIN)
    assert dup["error"]["code"] == "already_queued"
    back = await again.call("queue:rejoin", {"ticket_id": joined["ticket_id"]})
    assert back == {"ok": True, "ticket_id": joined["ticket_id"], "position": 1, "eta_s": 150.0}
    # Someone else's ticket id is not found; a bad payload is refused; all stay connected.
    stolen = await second.call("queue:rejoin", {"ticket_id": joined["ticket_id"]})
    assert stolen["error"]["code"] == "not_found"
    bad = await second.call("queue:rejoin", {"ticket_id": ""})
    assert bad["error"]["code"] == "invalid_payload"
    # The rejoined taxpayer is served first.
    agent = await agent_available(server, clients)
    offer = await agent.wait_for("offer:new")
    assert offer["ticket"]["ticket_id"] == joined["ticket_id"]
    assert (await again.call("queue:leave", {"ticket_id": joined["ticket_id"]}))["ok"]


async def test_after_the_grace_the_ticket_is_gone(server, clients):
    server.ctx.queue.engine.grace_s = 0.3
    token = await server.taxpayer()
    first = await clients(server, token)
    joined = await first.call("queue:join", JOIN)
    await first.close()
    again = await clients(server, token)
    await poll_until(lambda: _today(server, "abandoned"), timeout=3)
    late = await again.call("queue:rejoin", {"ticket_id": joined["ticket_id"]})
    assert late["error"]["code"] == "not_found"
    assert (await again.call("queue:join", JOIN))["position"] == 1


async def _today(server, name):
    stats = await server.ctx.queue.engine.live_stats()
    return stats["queues"]["invoices"]["today"][name]


@pytest.fixture
def closed_today(tmp_path) -> dict[str, Any]:
    """A queue file where invoices opens only tomorrow (Shanghai), 09:00-10:00."""
    zone = ZoneInfo("Asia/Shanghai")
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    path = tmp_path / "queues.toml"
    path.write_text(
        f"""
[queues.invoices]
max_length = 50
[queues.invoices.hours]
timezone = "Asia/Shanghai"
weekly = {{ {DAYS[tomorrow.weekday()]} = ["09:00-10:00"] }}
"""
    )
    return {"opening": f"{tomorrow.isoformat()}T09:00:00+08:00", "path": path}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    extra = {}
    if "closed_today" in request.fixturenames:
        extra["queues_file"] = request.getfixturevalue("closed_today")["path"]
    return {**FAST, **extra}


async def test_a_closed_queue_refuses_with_the_reason_and_next_opening(
    server, clients, closed_today
):
    taxpayer = await clients(server, await server.taxpayer())
    ack = await taxpayer.call("queue:join", JOIN)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "queue_closed"
    assert ack["error"]["next_open_at"] == closed_today["opening"]
    assert closed_today["opening"] in ack["error"]["message"]
    other = await taxpayer.call("queue:join", {**JOIN, "category": "registration"})
    assert other["ok"] and other["position"] == 1


async def test_queue_updates_are_coalesced_and_sent_only_on_change(server, clients):
    tokens = [await server.taxpayer(USCC)] + [
        await server.taxpayer(n, "resident_id") for n in OTHER_TAXPAYERS
    ]
    people = [await clients(server, t) for t in tokens]
    tickets = [(await p.call("queue:join", JOIN))["ticket_id"] for p in people]
    last = people[-1]
    for person, ticket_id in zip(people[:-1], tickets[:-1], strict=True):
        assert (await person.call("queue:leave", {"ticket_id": ticket_id}))["ok"]
    update = await last.wait_for("queue:update", lambda u: u["position"] == 1, timeout=3)
    assert update["ticket_id"] == tickets[-1] and update["eta_s"] == 150.0
    await asyncio.sleep(1.2)  # more intervals pass; nothing changes, nothing is sent
    updates = last.received["queue:update"]
    assert 1 <= len(updates) <= 2
    assert len({(u["position"], u["eta_s"]) for u in updates}) == len(updates)


# The offer must outlive the nine calls before the accept on a loaded machine (expiry has tests
# of its own).
@pytest.mark.parametrize("settings_overrides", [{"offer_timeout_s": 30.0}])
async def test_bad_queue_input_gets_clear_errors_and_state_stays_consistent(server, clients):
    a1 = await agent_available(server, clients, "a1")
    a2 = await agent_available(server, clients, "a2")
    taxpayer = await clients(server, await server.taxpayer())
    for payload, code in (
        ({**JOIN, "category": "astrology"}, "unknown_category"),
        ({**JOIN, "language": "fr"}, "unknown_language"),
        ({**JOIN, "priority": "vip"}, "invalid_payload"),
        ({**JOIN, "channel": "fax"}, "unknown_channel"),
    ):
        ack = await taxpayer.call("queue:join", payload)
        assert ack["error"]["code"] == code, payload
    joined = await taxpayer.call("queue:join", {**JOIN, "priority": "elderly"})
    assert joined["ok"] and joined["eta_s"] == 0.0  # offered at once: no wait
    assert (await taxpayer.call("queue:join", JOIN))["error"]["code"] == "already_queued"
    offer = await a1.wait_for("offer:new")
    wrong = await a2.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert wrong["error"]["code"] == "offer_expired"
    assert (await a2.call("offer:reject", {"offer_id": "nope"}))["error"]["code"] == (
        "offer_expired"
    )
    for status in ("away", "available", "away", "available", "available"):
        assert (await a2.call("agent:status", {"status": status}))["ok"]
    assert (await a2.call("agent:status", {"status": "busy"}))["error"]["code"] == (
        "invalid_payload"
    )
    ok = await a1.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert ok["ok"]
    busy = await a1.call("agent:status", {"status": "away"})
    assert busy["error"]["code"] == "invalid_state"
    gone = await taxpayer.call("queue:leave", {"ticket_id": joined["ticket_id"]})
    assert gone["error"]["code"] == "not_found"
    stats = await server.ctx.queue.engine.live_stats()
    inv = stats["queues"]["invoices"]
    assert inv["waiting"] == 0 and inv["agents"]["busy"] == 1 and inv["agents"]["available"] == 1


async def test_live_stats_over_http_and_pushed_to_supervisors(server, clients):
    sup_token = await server.staff("boss", "supervisor")
    sup = await clients(server, sup_token)
    taxpayer = await clients(server, await server.taxpayer())
    await taxpayer.call("queue:join", JOIN)
    pushed = await sup.wait_for("queue:stats", lambda s: s["queues"]["invoices"]["waiting"] == 1)
    assert pushed["queues"]["invoices"]["today"]["joined"] == 1
    async with server.http.get(
        f"{server.url}/api/stats/live", headers={"Authorization": f"Bearer {sup_token}"}
    ) as r:
        assert r.status == 200
        body = await r.json()
    assert body["queues"]["invoices"]["waiting"] == 1
    assert set(body["queues"]) >= {"invoices", "registration"}
    for headers, status in (
        ({}, 401),
        ({"Authorization": f"Bearer {taxpayer.token}"}, 403),
    ):
        async with server.http.get(f"{server.url}/api/stats/live", headers=headers) as r:
            assert r.status == status
    assert taxpayer.received["queue:stats"] == []
