"""Resume in real headless Chromium against the real server.

A call between the taxpayer and agent pages survives a reload of either page (a new
RTCPeerConnection on both sides, same session, no new queue:join) and a dropped socket (same
RTCPeerConnection, ICE restart), and still ends normally as `completed`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

LANGUAGE = "en"

IN_CALL_JS = (
    "() => !!window.vtax.pc && window.vtax.pc.connectionState === 'connected'"
    " && window.vtax.state === 'connected'"
)
UFRAG_JS = """() => {
  const d = window.vtax.pc && window.vtax.pc.currentLocalDescription;
  const m = d && /a=ice-ufrag:(\\S+)/.exec(d.sdp);
  return m ? m[1] : null;
}"""
STORED_JS = "(page) => JSON.parse(sessionStorage.getItem('vtax.resume.' + page) || 'null')"


async def start_call(e2e: Any, question: str) -> tuple[Any, Any, str]:
    """Agent available, taxpayer asks, agent accepts, both connected with media flowing."""
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    taxpayer = await e2e.taxpayer_page()
    await taxpayer.select_option("#category", e2e.server.categories[0])
    await taxpayer.select_option("#language", LANGUAGE)
    await taxpayer.fill("#question", question)
    await taxpayer.click("#start")
    await agent.wait_for_selector("#accept", state="visible")
    assert question in (await agent.text_content("#offer-question") or "")
    await agent.click("#accept")
    await wait_connected(e2e, taxpayer, agent)
    sid = await taxpayer.evaluate("() => window.vtax.sessionId")
    assert sid and sid == await agent.evaluate("() => window.vtax.sessionId")
    await assert_media_flowing(e2e, taxpayer, agent)
    return taxpayer, agent, sid


SNAPSHOT_JS = """() => {
  const v = window.vtax || {};
  const pc = v.pc;
  return {state: v.state, notice: v.notice, peerState: v.peerState, lastError: v.lastError,
          socket: v.socket && {connected: v.socket.connected, id: v.socket.id},
          pc: pc && {connection: pc.connectionState, ice: pc.iceConnectionState,
                     signaling: pc.signalingState, gathering: pc.iceGatheringState},
          call: v.call, recording: v.recording,
          recorderPc: v.recorderPc && v.recorderPc.connectionState};
}"""


async def snapshot(*pages: Any) -> str:
    """The pages' call state, for failure messages."""
    out = []
    for page in pages:
        try:
            out.append(f"{page.url}: {await page.evaluate(SNAPSHOT_JS)}")
        except Exception as e:
            out.append(f"{page.url}: ({e})")
    return "\n".join(out)


async def wait_connected(e2e: Any, *pages: Any) -> None:
    for page in pages:

        async def connected(page: Any = page) -> bool:
            return bool(await page.evaluate(IN_CALL_JS))

        try:
            await e2e.poll_until(connected, within=20, what=f"connected on {page.url}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{await snapshot(*pages)}") from None
        # The status line is for people (no internal state names); the state is on <body>.
        assert await page.evaluate("() => document.body.dataset.state") == "connected"
        assert (await page.text_content("#status") or "").strip()


async def assert_media_flowing(e2e: Any, *pages: Any) -> None:
    """Inbound video framesDecoded and bytesReceived grow over >= 1 s on every page."""
    flows = await e2e.wait_media_flowing(*pages, within=20)
    for (first, later), page in zip(flows, pages, strict=True):
        assert later["framesDecoded"] > first["framesDecoded"], page.url
        assert later["bytesReceived"] > first["bytesReceived"], page.url
        assert later["connectionState"] == "connected", page.url


async def session_record(e2e: Any, token: str, sid: str) -> dict[str, Any]:
    return await asyncio.to_thread(e2e.server.get_json, f"/api/sessions/{sid}", token)


async def session_count(e2e: Any, token: str) -> int:
    body = await asyncio.to_thread(e2e.server.get_json, "/api/sessions?limit=200", token)
    return len(body["sessions"])


async def mark_pc(page: Any) -> None:
    """Remember the page's current RTCPeerConnection, to tell a new one from it later."""
    await page.evaluate("() => { window.__markedPc = window.vtax.pc; }")


async def wait_new_pc(e2e: Any, page: Any) -> None:
    async def replaced() -> bool:
        return bool(
            await page.evaluate(
                "() => !!window.__markedPc && !!window.vtax.pc"
                " && window.vtax.pc !== window.__markedPc"
                " && window.__markedPc.connectionState === 'closed'"
            )
        )

    await e2e.poll_until(replaced, within=20, what=f"a new RTCPeerConnection on {page.url}")


async def wait_peer_back(e2e: Any, page: Any) -> None:
    async def back() -> bool:
        return await page.evaluate("() => window.vtax.peerState") == "back"

    await e2e.poll_until(back, within=20, what=f"session:peer back on {page.url}")
    assert "reconnecting" not in (await page.evaluate("() => window.vtax.notice || ''"))


async def finish(
    e2e: Any,
    taxpayer: Any,
    agent: Any,
    hang_up: Any,
    sid: str,
    token: str,
    reload_after_end: Any = None,
) -> None:
    """Hang up, summary, rating: the record is `completed`, the stored resume data cleared.
    `reload_after_end`: a page to reload on its summary/rating step (it keeps that step)."""
    await hang_up.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")
    await e2e.wait_state(agent, "ended")
    for page in (taxpayer, agent):
        assert await page.evaluate("() => window.vtax.pc") is None
    if reload_after_end is not None:
        await reload_after_end.reload()
        await reload_after_end.wait_for_function("() => window.vtax && window.vtax.page")
        await e2e.wait_state(reload_after_end, "ended")
        assert await reload_after_end.evaluate("() => window.vtax.sessionId") == sid

    async def completed() -> Any:
        rec = await session_record(e2e, token, sid)
        return rec if rec["outcome"] == "completed" else None

    rec = await e2e.poll_until(completed, within=10, what="session record completed")
    assert rec["id"] == sid
    assert rec["end_reason"] == "hangup"

    await agent.wait_for_selector("#summary-card", state="visible")
    await agent.fill("#handled", "Answered after a reload.")
    await agent.click("#save-summary")
    await agent.wait_for_function(
        "() => document.getElementById('summary-saved').textContent.includes('Saved')"
    )
    assert await agent.evaluate(STORED_JS, "agent") is None

    await taxpayer.wait_for_selector("#rate-form", state="visible")
    await taxpayer.check("#score-5")
    await taxpayer.click("#rate")
    await taxpayer.wait_for_function(
        "() => document.getElementById('rated').textContent.includes('Thank you')"
    )
    assert await taxpayer.evaluate(STORED_JS, "taxpayer") is None
    assert await e2e.error_text(taxpayer) == ""
    assert await e2e.error_text(agent) == ""


async def test_taxpayer_reload_resumes_the_call(e2e: Any) -> None:
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "reload the taxpayer page mid-call")
    stored = await taxpayer.evaluate(STORED_JS, "taxpayer")
    assert stored and stored["sessionId"] == sid and stored["lastSeq"] > 0
    assert (await session_record(e2e, token, sid))["outcome"] == "live"
    sessions_before = await session_count(e2e, token)
    await mark_pc(agent)

    await taxpayer.reload()
    await taxpayer.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")

    # No queue:join: the page resumes the same session with a fresh RTCPeerConnection, and the
    # agent replaces its RTCPeerConnection on the taxpayer's request.
    await wait_new_pc(e2e, agent)
    await wait_connected(e2e, taxpayer, agent)
    await wait_peer_back(e2e, agent)
    info = await taxpayer.evaluate("() => window.vtax.call")
    assert info["freshResume"] is True and info["sessionId"] == sid
    assert await taxpayer.evaluate("() => window.vtax.sessionId") == sid
    assert await agent.evaluate("() => window.vtax.call.renewals") == 1
    await assert_media_flowing(e2e, taxpayer, agent)

    assert (await session_record(e2e, token, sid))["outcome"] == "live"
    assert await session_count(e2e, token) == sessions_before, "no new session was opened"
    assert await taxpayer.is_visible("#hangup")

    await finish(e2e, taxpayer, agent, taxpayer, sid, token, reload_after_end=agent)


async def test_agent_reload_resumes_the_call(e2e: Any) -> None:
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "reload the agent page mid-call")
    sessions_before = await session_count(e2e, token)
    await mark_pc(taxpayer)

    await agent.reload()
    await agent.wait_for_function("() => window.vtax && window.vtax.page === 'agent'")

    await wait_new_pc(e2e, taxpayer)
    await wait_connected(e2e, agent, taxpayer)
    await wait_peer_back(e2e, taxpayer)
    assert await agent.evaluate("() => window.vtax.call.freshResume") is True
    assert await agent.is_visible("#call-card")
    assert not await agent.is_visible("#login-card")
    await assert_media_flowing(e2e, taxpayer, agent)

    assert (await session_record(e2e, token, sid))["outcome"] == "live"
    assert await session_count(e2e, token) == sessions_before, "no new session was opened"

    await finish(e2e, taxpayer, agent, agent, sid, token, reload_after_end=taxpayer)


async def test_socket_drop_keeps_the_peer_connection(e2e: Any) -> None:
    """The taxpayer's socket drops (like a network change): socket.io-client reconnects, the
    page resumes on the same RTCPeerConnection, the agent restarts ICE, media keeps flowing."""
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "drop the taxpayer's socket mid-call")
    for page in (taxpayer, agent):
        await mark_pc(page)
    socket_id = await taxpayer.evaluate("() => window.vtax.socket.id")
    ufrag_before = await agent.evaluate(UFRAG_JS)
    assert ufrag_before

    await taxpayer.evaluate("() => window.vtax.socket.io.engine.close()")

    async def resumed() -> bool:
        return bool(
            await taxpayer.evaluate(
                "(old) => window.vtax.socket.connected && window.vtax.socket.id !== old"
                " && window.vtax.call.resumes >= 1",
                socket_id,
            )
        )

    await e2e.poll_until(resumed, within=20, what="taxpayer resumed on a new socket")
    await wait_peer_back(e2e, agent)

    async def ice_restarted() -> Any:
        ufrag = await agent.evaluate(UFRAG_JS)
        return ufrag if ufrag and ufrag != ufrag_before else None

    await e2e.poll_until(ice_restarted, within=20, what="ICE restart (new ufrag) on the agent")
    await wait_connected(e2e, taxpayer, agent)
    for page in (taxpayer, agent):
        assert await page.evaluate("() => window.vtax.pc === window.__markedPc"), page.url
    assert await taxpayer.evaluate("() => window.vtax.call.renewals") == 0
    assert await agent.evaluate("() => window.vtax.call.renewals") == 0
    await assert_media_flowing(e2e, taxpayer, agent)
    assert (await session_record(e2e, token, sid))["outcome"] == "live"

    await finish(e2e, taxpayer, agent, taxpayer, sid, token)


async def test_drain_notice_moves_the_agent(e2e: Any) -> None:
    """`server:draining` on the agent page (delivered to the page's own listeners, as the
    server would send it): the page moves to a new connection by itself and resumes on the same
    RTCPeerConnection; being impolite it restarts ICE; the call goes on."""
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "the agent's node drains mid-call")
    for page in (taxpayer, agent):
        await mark_pc(page)
    socket_id = await agent.evaluate("() => window.vtax.socket.id")
    ufrag_before = await taxpayer.evaluate(UFRAG_JS)

    await agent.evaluate(
        "() => window.vtax.socket.listeners('server:draining')"
        ".forEach((f) => f({reconnect: true, within_s: 2}))"
    )

    async def moved() -> bool:
        return bool(
            await agent.evaluate(
                "(old) => window.vtax.socket.connected && window.vtax.socket.id !== old"
                " && window.vtax.call.resumes >= 1",
                socket_id,
            )
        )

    await e2e.poll_until(moved, within=20, what="agent resumed on a new connection")
    await wait_peer_back(e2e, taxpayer)

    async def ice_restarted() -> Any:
        ufrag = await taxpayer.evaluate(UFRAG_JS)
        return ufrag if ufrag and ufrag != ufrag_before else None

    await e2e.poll_until(ice_restarted, within=20, what="ICE restart answered by the taxpayer")
    await wait_connected(e2e, taxpayer, agent)
    for page in (taxpayer, agent):
        assert await page.evaluate("() => window.vtax.pc === window.__markedPc"), page.url
    await assert_media_flowing(e2e, taxpayer, agent)
    assert (await session_record(e2e, token, sid))["outcome"] == "live"

    await finish(e2e, taxpayer, agent, agent, sid, token)


async def test_come_back_after_the_session_ended(e2e: Any) -> None:
    """The taxpayer's tab leaves mid-call (the agent sees "peer reconnecting"), the agent hangs
    up meanwhile; back on the page the resume answers `session_ended`: the page shows the ended
    state and the rating, and does not resume again."""
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "leave, and come back after the end")

    await taxpayer.goto("about:blank")

    async def peer_reconnecting() -> bool:
        return bool(
            await agent.evaluate(
                "() => window.vtax.peerState === 'reconnecting' && !!window.vtax.notice"
            )
        )

    await e2e.poll_until(peer_reconnecting, within=10, what="agent sees the peer reconnecting")
    assert await e2e.state(agent) != "ended", "a peer reconnecting does not end the call"
    await agent.click("#hangup")
    await e2e.wait_state(agent, "ended")
    assert (await session_record(e2e, token, sid))["outcome"] == "completed"

    await taxpayer.goto("/taxpayer")
    await taxpayer.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    await e2e.wait_state(taxpayer, "ended")
    # People read why in words; the reason code is on the element for the tests.
    assert await taxpayer.get_attribute("#end-reason", "data-reason") == "session_ended"
    assert (await taxpayer.text_content("#end-reason") or "").strip()
    assert await taxpayer.evaluate("() => window.vtax.pc") is None
    stored = await taxpayer.evaluate(STORED_JS, "taxpayer")
    assert stored and stored["ended"] is True, "no resume on the next load"
    await taxpayer.check("#score-3")
    await taxpayer.click("#rate")
    await taxpayer.wait_for_function(
        "() => document.getElementById('rated').textContent.includes('Thank you')"
    )
    assert await taxpayer.evaluate(STORED_JS, "taxpayer") is None
    rec = await session_record(e2e, token, sid)
    assert rec["rating"] and rec["rating"]["score"] == 3


async def test_a_lost_session_end_ends_the_page_once_media_stops(e2e: Any) -> None:
    """The agent page never hears `session:end` (what a node deaf to the others for a moment
    loses: its listener is taken off here); the taxpayer hangs up. The agent's media stops, and
    4 s later the page asks the server where the call is: `session_ended`, the page ends."""
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "hang up while the agent is deaf")
    await agent.evaluate("() => window.vtax.socket.off('session:end')")
    await taxpayer.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")
    assert (await session_record(e2e, token, sid))["outcome"] == "completed"
    await e2e.wait_state(agent, "ended", within=25)
    assert await agent.evaluate("() => window.vtax.pc") is None


async def test_a_hang_up_while_the_socket_reconnects_still_ends_the_call(e2e: Any) -> None:
    """The taxpayer's socket drops and the taxpayer hangs up before it is back: the hang-up
    waits in socket.io-client's buffer and goes out on the new connection, which the session
    does not know yet (`not_in_session`); the page resumes on it and hangs up again, so the
    agent's call ends at once as `completed` (`hangup`), not 30 s later as `dropped`."""
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "hang up while the socket is down")
    await taxpayer.evaluate("() => window.vtax.socket.io.engine.close()")
    await taxpayer.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")
    await e2e.wait_state(agent, "ended", within=20)
    rec = await session_record(e2e, token, sid)
    assert (rec["outcome"], rec["end_reason"]) == ("completed", "hangup"), rec
