"""A call through the real topology (deploy/stack.py): two Chromium pages reach the nodes
through nginx, ICE is limited to relay candidates, so media flows through coturn with the TURN
REST credentials the node hands out; coturn refuses an expired or forged credential."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from deploy.stack import Stack
from vtax import turn_probe as turn
from vtax.ice import turn_credentials

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

LANGUAGE = "en"
IN_CALL_JS = (
    "() => !!window.vtax.pc && window.vtax.pc.connectionState === 'connected'"
    " && window.vtax.state === 'connected'"
)
#: The selected candidate pair of the call's RTCPeerConnection, both ends' candidates.
SELECTED_PAIR_JS = """
async () => {
  const stats = await window.vtax.pc.getStats();
  let pairId = null;
  for (const r of stats.values()) if (r.type === 'transport' && r.selectedCandidatePairId)
    pairId = r.selectedCandidatePairId;
  const pair = pairId && stats.get(pairId);
  if (!pair) return null;
  const end = (id) => { const c = stats.get(id);
    return c && {type: c.candidateType, address: c.address, port: c.port,
                 protocol: c.protocol, relayProtocol: c.relayProtocol, url: c.url}; };
  return {state: pair.state, local: end(pair.localCandidateId), remote: end(pair.remoteCandidateId),
          bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived};
}
"""
TURN_SERVER_JS = """
() => (window.vtax.pc.getConfiguration().iceServers || [])
  .find(s => [].concat(s.urls).some(u => u.startsWith('turn:')))
"""


async def start_call(e2e: Any, question: str, agent_e2e: Any = None) -> tuple[Any, Any]:
    """A call from the taxpayer's page to the agent's (whose harness may be another: a browser
    of its own, tests/e2e/test_impairment.py), both connected."""
    agent_e2e = agent_e2e or e2e
    agent = await agent_e2e.agent_page()
    await agent_e2e.agent_available(agent)
    taxpayer = await e2e.taxpayer_page()
    await taxpayer.select_option("#category", e2e.server.categories[0])
    await taxpayer.select_option("#language", LANGUAGE)
    await taxpayer.fill("#question", question)
    await taxpayer.click("#start")
    await agent.wait_for_selector("#accept", state="visible")
    await agent.click("#accept")
    for page in (taxpayer, agent):

        async def connected(page: Any = page) -> bool:
            return bool(await page.evaluate(IN_CALL_JS))

        await e2e.poll_until(connected, within=25, what=f"connected on {page.url}")
    return taxpayer, agent


async def test_relay_only_call_through_nginx_and_coturn(relay_e2e: Any, stack: Stack) -> None:
    e2e = relay_e2e
    taxpayer, agent = await start_call(e2e, "stack: a call relayed through coturn")
    await e2e.wait_media_flowing(taxpayer, agent, within=20)

    relay = range(stack.ports["relay_min"], stack.ports["relay_max"] + 1)
    for page in (taxpayer, agent):
        pair = await page.evaluate(SELECTED_PAIR_JS)
        # (Chromium may still call the selected pair "in-progress" while media flows on it.)
        assert pair and pair["bytesSent"] > 0 and pair["bytesReceived"] > 0, pair
        # Both ends of the pair are coturn's relayed addresses (loopback, in its port range).
        for end in ("local", "remote"):
            assert pair[end]["type"] == "relay", pair
            assert pair[end]["address"] == "127.0.0.1" and pair[end]["port"] in relay, pair
        assert (
            urlsplit(pair["local"]["url"].replace("turn:", "turn://")).port
            == (stack.ports["coturn"])
        ), pair

    # The credentials the node handed this page are REST credentials coturn takes...
    server = await taxpayer.evaluate(TURN_SERVER_JS)
    assert server, "the node handed out no TURN server"
    username, credential = server["username"], server["credential"]
    expiry, _, user = username.partition(":")
    assert int(expiry) > time.time() + 3000 and user
    coturn = ("127.0.0.1", stack.ports["coturn"])
    fresh = turn.allocate(*coturn, username, credential)
    assert fresh.ok and fresh.relayed and fresh.relayed[1] in relay, fresh
    # ...an expired one, signed with the same secret, is refused; so is a forged password.
    old_user, old_pass = turn_credentials(stack.turn_secret, user, ttl_s=-60)
    expired = turn.allocate(*coturn, old_user, old_pass)
    assert not expired.ok and expired.error == 401, expired
    forged = turn.allocate(*coturn, username, credential[:-4] + "AAA=")
    assert not forged.ok and forged.error == 401, forged

    await taxpayer.click("#hangup")  # the agent is free again for the next test
    await e2e.wait_state(taxpayer, "ended")
    await e2e.wait_state(agent, "ended")


async def hang_up_completed(
    e2e: Any, taxpayer: Any, agent: Any, sid: str, agent_e2e: Any = None
) -> str:
    """The taxpayer hangs up; both pages end and the record is `completed` (`hangup`).
    Returns the supervisor token it read the record with."""
    await taxpayer.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    try:
        # within the page's media check (a session:end lost in a pub/sub gap: useCall.ts)
        await (agent_e2e or e2e).wait_state(agent, "ended", within=25)
    except AssertionError as e:
        # What CI's report must say on its own (the nodes' logs are cut there): did the
        # server end the session, and what did the pages see.
        rec = await asyncio.to_thread(e2e.server.get_json, f"/api/sessions/{sid}", token)
        logs = [line for line in (agent_e2e or e2e).logs if "[agent" in line][-15:]
        raise AssertionError(
            f"{e}; the record: outcome={rec.get('outcome')!r} end_reason={rec.get('end_reason')!r}"
            f"; the agent page's last console lines: {logs}"
        ) from e

    async def completed() -> Any:
        rec = await asyncio.to_thread(e2e.server.get_json, f"/api/sessions/{sid}", token)
        return rec if rec["outcome"] == "completed" else None

    rec = await e2e.poll_until(completed, within=15, what="session record completed")
    assert rec["end_reason"] == "hangup", rec
    return str(token)


def prometheus(stack: Stack, path: str) -> Any:
    import json
    import urllib.request

    with urllib.request.urlopen(stack.prometheus_url + path, timeout=5) as r:
        return json.loads(r.read())["data"]


async def test_prometheus_scrapes_every_node_and_has_the_alert_rules(stack: Stack) -> None:
    nodes = {f"127.0.0.1:{stack.ports[n]}" for n in stack.procs if n.startswith("node")}

    def scraped() -> bool:
        targets = prometheus(stack, "/api/v1/targets")["activeTargets"]
        return {t["labels"]["instance"] for t in targets if t["health"] == "up"} == nodes

    deadline = time.monotonic() + 30
    while not await asyncio.to_thread(scraped):
        assert time.monotonic() < deadline, prometheus(stack, "/api/v1/targets")
        await asyncio.sleep(0.5)
    rules = prometheus(stack, "/api/v1/rules")["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"VtaxNodeDown", "VtaxRedisUnreachable", "VtaxTurnFailing"} <= names, names
    # The nodes' TURN probe works against the stack's coturn: the alert has nothing to say.
    ok = prometheus(stack, "/api/v1/query?query=vtax_turn_probe_ok")["result"]
    assert {r["metric"]["instance"] for r in ok if r["value"][1] == "1"} == nodes, ok


def node_with(stack: Stack, role: str) -> str:
    """The node holding a `role` socket (its vtax_connected_clients gauge)."""
    import urllib.request

    found = []
    for name in (n for n in stack.procs if n.startswith("node")):
        if not stack.procs[name].alive():
            continue
        with urllib.request.urlopen(stack.node_url(name) + "/metrics", timeout=2) as r:
            text = r.read().decode()
        if f'vtax_connected_clients{{role="{role}"}} 1.0' in text:
            found.append(name)
    assert len(found) == 1, f"{role} on {found}"
    return found[0]


async def test_kill_9_of_the_taxpayers_node_mid_call_resumes_on_the_other(
    relay_e2e: Any, stack: Stack
) -> None:
    e2e = relay_e2e
    taxpayer, agent = await start_call(e2e, "stack: the node dies mid-call")
    await e2e.wait_media_flowing(taxpayer, agent, within=20)
    sid = await taxpayer.evaluate("() => window.vtax.sessionId")
    victim = node_with(stack, "taxpayer")
    t0 = time.monotonic()
    stack.procs[victim].kill()  # SIGKILL: no drain, no goodbye
    try:

        async def resumed(page: Any) -> bool:
            return bool(
                await page.evaluate(IN_CALL_JS)
                and await page.evaluate("() => window.vtax.call.resumes") >= 1
                and await page.evaluate("() => window.vtax.socket.connected")
            )

        for page in (taxpayer, agent):
            await e2e.poll_until(
                lambda page=page: resumed(page), within=30, what=f"resumed on {page.url}"
            )
        took = time.monotonic() - t0
        survivor = node_with(stack, "taxpayer")
        # Prometheus sees the killed node down (what VtaxNodeDown fires on after 1 min).
        dead = f"127.0.0.1:{stack.ports[victim]}"
        query = f'/api/v1/query?query=up{{instance="{dead}"}}'
        deadline = time.monotonic() + 30

        def up() -> str | None:  # no sample yet: an empty result
            result = prometheus(stack, query)["result"]
            return str(result[0]["value"][1]) if result else None

        while await asyncio.to_thread(up) != "0":
            assert time.monotonic() < deadline, "prometheus never saw the node down"
            await asyncio.sleep(0.5)
        assert survivor != victim
        assert await taxpayer.evaluate("() => window.vtax.sessionId") == sid
        # Media still flows (through coturn: the relay never depended on the dead node).
        await e2e.wait_media_flowing(taxpayer, agent, within=20)
        print(f"kill -9 {victim} -> both pages resumed on {survivor} in {took:.1f} s")

        # The call ends normally on the survivor: one record, completed, summary and rating.
        token = await hang_up_completed(e2e, taxpayer, agent, sid)
        await agent.wait_for_selector("#summary-card", state="visible")
        await agent.fill("#handled", "Answered across a node failure.")
        await agent.click("#save-summary")
        await agent.wait_for_function(
            "() => document.getElementById('summary-saved').textContent.includes('Saved')"
        )
        await taxpayer.wait_for_selector("#rate-form", state="visible")
        await taxpayer.check("#score-5")
        await taxpayer.click("#rate")
        await taxpayer.wait_for_function(
            "() => document.getElementById('rated').textContent.includes('Thank you')"
        )
        assert await e2e.error_text(taxpayer) == "" and await e2e.error_text(agent) == ""
        listed = await asyncio.to_thread(e2e.server.get_json, "/api/sessions?limit=200", token)
        assert [i["id"] for i in listed["sessions"]].count(sid) == 1, listed
    finally:
        stack.procs[victim].stop()
        stack.start_node(victim)


#: `chat:send` from the page's own socket, its ack (or {timeout: true}).
CHAT_JS = """
async ([sid, text]) => await new Promise((resolve) => window.vtax.socket.timeout(8000).emit(
  'chat:send', {session_id: sid, client_id: crypto.randomUUID(), text},
  (err, res) => resolve(err ? {timeout: true} : res)))
"""


async def test_redis_restarted_mid_call_the_call_goes_on_and_the_nodes_recover(
    relay_e2e: Any, stack: Stack
) -> None:
    from deploy.stack import http_status

    e2e = relay_e2e
    taxpayer, agent = await start_call(e2e, "stack: Redis restarts mid-call")
    await e2e.wait_media_flowing(taxpayer, agent, within=20)
    sid = await taxpayer.evaluate("() => window.vtax.sessionId")
    nodes = [n for n in stack.procs if n.startswith("node")]
    assert (await taxpayer.evaluate(CHAT_JS, [sid, "before"]))["ok"]

    stack.procs["redis"].stop()  # SIGTERM: Redis writes its AOF and exits
    try:
        # During the outage: a clear error with a code, not a hang; not ready; media goes on
        # (it never passed through Redis).
        async def refused() -> Any:
            ack = await taxpayer.evaluate(CHAT_JS, [sid, "during"])
            return ack if ack.get("ok") is False else None

        ack = await e2e.poll_until(refused, within=20, what="chat refused during the outage")
        assert ack["error"]["code"] == "unavailable", ack

        async def not_ready() -> bool:
            codes = [
                await asyncio.to_thread(http_status, stack.node_url(n) + "/readyz") for n in nodes
            ]
            return all(c == 503 for c in codes)

        await e2e.poll_until(not_ready, within=20, what="/readyz 503 on every node")
        await e2e.wait_media_flowing(taxpayer, agent, within=20)
    finally:
        stack._redis()  # the same port and folder: the AOF is read back

    async def ready() -> bool:
        codes = [await asyncio.to_thread(http_status, stack.node_url(n) + "/readyz") for n in nodes]
        return all(c == 200 for c in codes)

    await e2e.poll_until(ready, within=30, what="/readyz 200 on every node after the restart")

    # The live session survived (AOF): chat goes through again, the call ends normally.
    async def sent() -> Any:
        ack = await taxpayer.evaluate(CHAT_JS, [sid, "after"])
        return ack if ack.get("ok") else None

    await e2e.poll_until(sent, within=20, what="chat accepted after the restart")

    # Both pages are in the call (after the outage a page may be resyncing for a moment:
    # `session:resync`, then its resume).
    async def both_in_call() -> bool:
        return bool(await taxpayer.evaluate(IN_CALL_JS) and await agent.evaluate(IN_CALL_JS))

    await e2e.poll_until(both_in_call, within=20, what="both pages in the call after the restart")
    token = await hang_up_completed(e2e, taxpayer, agent, sid)
    messages = await asyncio.to_thread(e2e.server.get_json, f"/api/sessions/{sid}/messages", token)
    texts = [m["text"] for m in messages["messages"]]
    assert "before" in texts and "after" in texts and "during" not in texts, texts
