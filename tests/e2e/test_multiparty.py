"""Three people in one call, in Chromium: the agent invites an interpreter by language from the
desk, the interpreter accepts on their desk, all three see each other's decoded video (a mesh:
one peer connection per other person), the agent hands over and leaves (warm transfer) and
media keeps flowing between the taxpayer and the interpreter; then a supervisor barges in from
the wallboard and makes three again."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_cli
from tests.e2e.test_browser_loop import accept_offer, start_request, wait_connected

pytestmark = pytest.mark.e2e

# Inbound video of one RTCPeerConnection: the main one (window.vtax.pc) or the mesh's to a
# participant (window.vtax.mesh.peers[id]).
VIDEO_JS = """
async (peer) => {
  const v = window.vtax;
  const pc = peer ? (v.mesh && v.mesh.peers[peer]) : v.pc;
  if (!pc || pc.connectionState === 'closed') return null;
  // The camera's m-line: each call also has a screen m-line (no frames while nobody shares),
  // so of the inbound video streams the one that decodes most.
  let best = null;
  for (const r of (await pc.getStats()).values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'video'
        && (!best || (r.framesDecoded || 0) > best.framesDecoded)) {
      best = {framesDecoded: r.framesDecoded || 0, bytesReceived: r.bytesReceived || 0};
    }
  }
  return best;
}
"""


async def flowing(e2e: Any, page: Any, peer: str | None, what: str) -> None:
    """framesDecoded and bytesReceived both grow over at least a second."""

    async def started() -> Any:
        s = await page.evaluate(VIDEO_JS, peer)
        return s if s and s["framesDecoded"] > 0 else None

    # Generous: the suite shares two cores with other work, three or four pages encode video.
    first = await e2e.poll_until(started, within=60, what=f"first frame: {what}")
    t0 = time.monotonic()

    async def grown() -> Any:
        if time.monotonic() - t0 < 1.0:
            return None
        s = await page.evaluate(VIDEO_JS, peer)
        return (
            s
            if s
            and s["framesDecoded"] > first["framesDecoded"]
            and s["bytesReceived"] > first["bytesReceived"]
            else None
        )

    await e2e.poll_until(grown, within=30, interval=0.1, what=f"video growing: {what}")


UPLINK_JS = """
async () => {
  const v = window.vtax;
  const pcs = [v.pc, ...Object.values((v.mesh || {}).peers || {})].filter((pc) => pc && pc.connectionState !== 'closed');
  let bytes = 0, video = 0;
  for (const pc of pcs) {
    for (const r of (await pc.getStats()).values()) {
      if (r.type === 'outbound-rtp') {
        bytes += r.bytesSent + (r.headerBytesSent || 0);
        if (r.kind === 'video') video += 1;
      }
    }
  }
  return {bytes, pcs: pcs.length, video_streams: video, t: performance.now()};
}
"""


async def uplink_kbps(page: Any, window_s: float = 6.0) -> dict[str, Any]:
    """What the page sends, over all its peer connections (getStats `outbound-rtp`, RTP
    payload and headers), in kbit/s over `window_s`."""
    a = await page.evaluate(UPLINK_JS)
    await asyncio.sleep(window_s)
    b = await page.evaluate(UPLINK_JS)
    kbps = (b["bytes"] - a["bytes"]) * 8 / ((b["t"] - a["t"]) / 1000) / 1000
    return {
        "kbps": round(kbps, 1),
        "peer_connections": b["pcs"],
        "video_streams": b["video_streams"],
    }


def bench_out() -> Path | None:
    """VTAX_MP_BENCH=<file>: benchmarks/multiparty.py asks for the uplink figures."""
    out = os.environ.get("VTAX_MP_BENCH")
    return Path(out) if out else None


async def roster_ids(page: Any) -> dict[str, str]:
    """part -> participant id, from the page's mesh (the roster the server sent)."""
    return await page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#mp-roster li')].map("
        "(li) => [li.dataset.part, li.dataset.me ? 'me' : '']))"
    )


async def test_interpreter_warm_transfer_and_barge(e2e: Any) -> None:
    category = e2e.server.categories[0]
    lingua = (f"lingua{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    run_cli(
        ["user", "add", lingua[0], "--role", "agent", "--skill", f"{category}=1",
         "--language", "yue", "--language", "en"],
        e2e.server.env,
        lingua[1] + "\n",
    )  # fmt: skip
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    interp = await e2e.page("/agent", "interpreter")
    await e2e.login(interp, *lingua, "#desk")
    await e2e.agent_available(interp)
    taxpayer = await e2e.taxpayer_page()
    for page in (agent, interp, taxpayer):
        page.set_default_timeout(60000)  # two shared cores, three pages encoding video
    question = "I need an interpreter, e2e multiparty"
    await start_request(e2e, taxpayer, category, question)
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, taxpayer, agent)
    figures: dict[str, Any] = {}
    if bench_out():
        await e2e.wait_media_flowing(taxpayer, agent)
        await asyncio.sleep(8)  # the bandwidth estimate ramps up
        figures["two_party"] = {
            "taxpayer": await uplink_kbps(taxpayer),
            "agent": await uplink_kbps(agent),
        }

    # The agent invites by language (Cantonese: an interpreter).
    await agent.select_option("#mp-language", "yue")
    await agent.click("#mp-send")
    await agent.wait_for_selector("#mp-invitation[data-state='pending']")
    await interp.wait_for_selector("#mp-accept", state="visible")
    assert (await interp.text_content("#mp-offer-purpose") or "").strip() == "Interpreter"
    await interp.click("#mp-accept")
    await agent.wait_for_selector("#mp-invitation[data-state='accepted']")

    ids = {
        name: await page.evaluate("() => window.vtax.call && window.vtax.sessionId")
        for name, page in (("t", taxpayer), ("a", agent), ("i", interp))
    }
    assert len(set(ids.values())) == 1

    async def mesh_peers(page: Any) -> list[str] | None:
        found = await page.evaluate("() => Object.keys((window.vtax.mesh || {}).peers || {})")
        return found if len(found) == 1 else None

    peers = {
        name: await e2e.poll_until(lambda p=page: mesh_peers(p), what=f"{name}'s mesh")
        for name, page in (("t", taxpayer), ("a", agent), ("i", interp))
    }
    interp_pid = peers["t"][0]
    assert peers["a"] == [interp_pid]
    agent_pid = peers["i"][0]
    # Three see each other: each page decodes video from both others.
    await flowing(e2e, taxpayer, None, "taxpayer <- agent")
    await flowing(e2e, taxpayer, interp_pid, "taxpayer <- interpreter")
    await flowing(e2e, agent, None, "agent <- taxpayer")
    await flowing(e2e, agent, interp_pid, "agent <- interpreter")
    await flowing(e2e, interp, None, "interpreter <- taxpayer")
    await flowing(e2e, interp, agent_pid, "interpreter <- agent")
    if bench_out():
        await asyncio.sleep(8)
        figures["three_party_mesh"] = {
            "taxpayer": await uplink_kbps(taxpayer),
            "agent": await uplink_kbps(agent),
            "interpreter": await uplink_kbps(interp),
        }
        out = bench_out()
        assert out is not None
        out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    # The taxpayer's page names people by name and part, never by an internal id.
    tiles = await taxpayer.text_content("#mp-call") or ""
    assert lingua[0] in tiles and "Interpreter" in tiles and "Tax officer" in tiles
    assert "p-" not in tiles and interp_pid not in tiles
    for size, tag in (((1280, 800), "desktop"), ((390, 844), "phone")):
        await taxpayer.set_viewport_size({"width": size[0], "height": size[1]})
        await e2e.screenshot(taxpayer, f"multiparty-taxpayer-{tag}")
    await e2e.screenshot(agent, "multiparty-agent")
    await taxpayer.set_viewport_size({"width": 1280, "height": 800})

    # Warm transfer: the agent hands over to the interpreter and leaves.
    await agent.click(f".mp-handover[data-to='{interp_pid}']")
    await e2e.wait_state(agent, "ended")
    assert "handed the call" in (await agent.text_content("#status") or "")
    assert await e2e.error_text(agent) == ""
    assert await agent.is_hidden("#summary-card")

    async def main_gone() -> bool:
        return bool(await taxpayer.evaluate("() => window.vtax.mesh && window.vtax.mesh.mainGone"))

    await e2e.poll_until(main_gone, what="the agent's connection closed on the taxpayer page")
    await flowing(e2e, taxpayer, interp_pid, "taxpayer <- interpreter after the hand-over")
    await flowing(e2e, interp, None, "interpreter <- taxpayer after the hand-over")
    assert lingua[0] in (await taxpayer.text_content("#agent-name") or "")
    assert await taxpayer.evaluate("() => window.vtax.state") == "connected"
    assert await e2e.error_text(taxpayer) == ""

    # A supervisor barges in from the wallboard: three again.
    board = await e2e.page("/wallboard", "wallboard", viewport=(1280, 800))
    board.set_default_timeout(60000)
    await e2e.login(board, *e2e.server.supervisor, "#tiles")
    await board.wait_for_selector("#barge-list .barge", timeout=20000)
    await board.click("#barge-list .barge")
    await board.wait_for_selector("#barge-call", state="visible")
    sup_pid = await board.evaluate("() => window.vtax.barge && window.vtax.barge.participantId")
    assert sup_pid
    await flowing(e2e, board, None, "supervisor <- taxpayer")
    await flowing(e2e, board, interp_pid, "supervisor <- interpreter")
    await flowing(e2e, taxpayer, sup_pid, "taxpayer <- supervisor")
    await flowing(e2e, interp, sup_pid, "interpreter <- supervisor")

    async def supervisor_shown() -> bool:
        return "Supervisor" in (await taxpayer.text_content("#mp-call", timeout=2000) or "")

    await e2e.poll_until(
        supervisor_shown, within=30, what="the supervisor's tile on the taxpayer page"
    )
    await e2e.screenshot(board, "multiparty-wallboard-barge")

    # Take-over: the interpreter hands the session to the supervisor and leaves; the
    # supervisor ends it and writes its summary on the wallboard (the record credits them).
    sid = await taxpayer.evaluate("() => window.vtax.sessionId")
    await interp.click(f".mp-handover[data-to='{sup_pid}']")
    await e2e.wait_state(interp, "ended")

    async def owner() -> bool:
        return (await board.text_content("#barge-leave") or "").strip() == "Hang up"

    await e2e.poll_until(owner, within=20, what="the supervisor owning the session")
    await board.click("#barge-leave")
    await board.wait_for_selector("#barge-call", state="hidden")
    await e2e.wait_state(taxpayer, "ended", within=15)
    await board.wait_for_selector("#barge-summary", state="visible")
    assert await board.input_value("#asked")  # the taxpayer's question, from the ticket
    await board.fill("#handled", "Took the call over and settled it.")
    await board.click("#barge-summary #save-summary")
    await board.wait_for_function(
        "() => document.getElementById('summary-saved').textContent.includes('1')"
    )
    await e2e.axe(board, "the wallboard's summary after a take-over")
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    record = await asyncio.to_thread(e2e.server.get_json, f"/api/sessions/{sid}", token)
    assert record["summary"]["handled"] == "Took the call over and settled it.", record
    assert record["agent"]["username"] == e2e.server.supervisor[0], record["agent"]
