"""Monitor and whisper in real headless Chromium against the real server (`vtax serve`, with
the recorder worker it starts, which runs the media leg).

A supervisor on the wallboard monitors a live call: both sides' video decodes on the wallboard
(frames increasing on both remote video tracks), while neither the taxpayer's nor the agent's
page shows a third participant (the taxpayer's page makes no peer connection but the call's;
the agent's page gets the leg's, and says a supervisor listens). Whisper: with the agent's own
microphone muted, audio energy (WebAudio AnalyserNode) on the agent's whisper track while the
supervisor holds the button, and none on the taxpayer's receiving track."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser_loop import accept_offer, start_request, wait_connected

pytestmark = pytest.mark.e2e

# Counts the page's RTCPeerConnections (run before the page's own scripts).
COUNT_PCS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
})();
"""

# The highest RMS level over `ms` on an audio track (AnalyserNode time-domain data).
ENERGY_JS = """
async ([where, ms]) => {
  let track = null;
  if (where === 'whisper') {
    const el = document.getElementById('whisper-audio');
    track = el && el.srcObject ? el.srcObject.getAudioTracks()[0] : null;
  } else {
    const r = window.vtax.pc.getReceivers().find((x) => x.track && x.track.kind === 'audio');
    track = r ? r.track : null;
  }
  if (!track) return -1;
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(new MediaStream([track]));
  const an = ctx.createAnalyser();
  an.fftSize = 2048;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  let max = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    an.getFloatTimeDomainData(buf);
    let s = 0;
    for (const v of buf) s += v * v;
    max = Math.max(max, Math.sqrt(s / buf.length));
    await new Promise((r) => setTimeout(r, 20));
  }
  const state = ctx.state;
  await ctx.close();
  return state === 'running' ? max : -2;
}
"""

# framesDecoded per inbound video stream of the wallboard's connection to the leg, by mid.
MONITOR_VIDEO_JS = """
async () => {
  const pc = window.vtax.monitorPc;
  if (!pc) return null;
  const stats = await pc.getStats();
  const out = {};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out[s.mid] = s.framesDecoded || 0;
  });
  return out;
}
"""


async def open_page(e2e: Any, path: str, name: str, viewport: tuple[int, int]) -> Any:
    """As E2E.page, with more time to load (the wallboard's charts are the heaviest bundle,
    and the machine is shared)."""
    ctx = await e2e.browser.new_context(
        base_url=e2e.server.base_url,
        locale="en-US",
        viewport={"width": viewport[0], "height": viewport[1]},
    )
    ctx.set_default_timeout(30000)
    e2e.contexts.append(ctx)
    page = await ctx.new_page()
    page.on("console", lambda m: e2e.logs.append(f"[{name}] {m.type}: {m.text}"))
    page.on("pageerror", lambda e: e2e.logs.append(f"[{name}] PAGEERROR: {e}"))
    await page.goto(path, timeout=60000)
    await page.wait_for_function("() => window.vtax && window.vtax.page")
    return page


DIAG_JS = """
() => {
  const el = document.getElementById('whisper-audio');
  return JSON.stringify({
    el: !!el, src: !!(el && el.srcObject), monitor: window.vtax.monitor,
    pcs: window.__pcs.map((pc) => pc.getTransceivers().map((t) => [t.mid, t.direction,
      t.currentDirection, t.receiver.track.kind])),
  });
}
"""


async def energy(page: Any, where: str, ms: int = 2500) -> float:
    return float(await page.evaluate(ENERGY_JS, [where, ms]))


async def test_supervisor_monitors_and_whispers(e2e: Any) -> None:
    e2e.init_script = COUNT_PCS
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    taxpayer = await e2e.taxpayer_page()
    question = "Monitored call, e2e"
    await start_request(e2e, taxpayer, e2e.server.categories[0], question)
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, taxpayer, agent)
    await e2e.wait_media_flowing(taxpayer, agent)
    # The notice every call gets (the recording prompt stays unanswered: no recorder joins).
    await taxpayer.wait_for_selector("#monitor-notice", state="visible")
    assert "supervisor" in ((await taxpayer.text_content("#monitor-notice")) or "")
    session = await taxpayer.evaluate("() => window.vtax.sessionId")

    board = await open_page(e2e, "/wallboard", "wallboard", (1280, 800))
    await e2e.login(board, *e2e.server.supervisor, "#tiles")
    start = f".monitor-start[data-session-id='{session}']"
    await board.wait_for_selector(start, state="visible", timeout=20000)
    await board.click(start)
    await board.wait_for_selector("#monitor-card[data-state='live']", timeout=20000)

    async def both_sides_decoding() -> Any:
        first = await board.evaluate(MONITOR_VIDEO_JS)
        if not first or len(first) != 2 or not all(first.values()):
            return None
        await board.wait_for_timeout(1000)
        later = await board.evaluate(MONITOR_VIDEO_JS)
        return later if all(later[m] > first[m] for m in first) else None

    frames = await e2e.poll_until(both_sides_decoding, within=30, what="both sides on the board")
    assert len(frames) == 2
    for video in ("#monitor-agent", "#monitor-taxpayer"):
        size = await board.evaluate(f"() => document.querySelector('{video}').videoWidth")
        assert size > 0, video

    # Neither page shows a third participant; the agent's desk says a supervisor listens.
    await agent.wait_for_selector("#monitor-status[data-monitors='1']", state="visible")
    assert await taxpayer.evaluate("() => window.__pcs.length") == 1
    # Its one peer connection is the call with the agent and carries the call's own three
    # m-lines (audio, camera, screen) and nothing of a monitor.
    mlines = "() => window.__pcs[0].getTransceivers().filter(t => t.mid !== null).length"
    assert await taxpayer.evaluate(mlines) == 3
    assert await taxpayer.query_selector("#monitor-status") is None
    assert await agent.evaluate("() => window.__pcs.length") == 2  # the call and the leg
    assert await taxpayer.evaluate("() => window.vtax.recording.recorderId") is None
    await e2e.screenshot(board, "monitor-wallboard-1280")
    await e2e.screenshot(agent, "monitor-agent-desk")

    # Whisper: the agent's own microphone muted, so the taxpayer hears only what the agent
    # sends; the supervisor holds the button.
    await agent.evaluate(
        "() => window.vtax.pc.getSenders().forEach((s) => {"
        " if (s.track && s.track.kind === 'audio') s.track.enabled = false; })"
    )

    async def leg_connected() -> bool:
        return bool(
            await agent.evaluate(
                "() => window.vtax.monitor.connectionState === 'connected'"
                " && !!document.getElementById('whisper-audio')"
                " && !!document.getElementById('whisper-audio').srcObject"
            )
        )

    await e2e.poll_until(leg_connected, within=20, what="the agent's connection to the leg")
    before = await energy(agent, "whisper", 1500)
    assert 0 <= before < 0.001, (
        f"whisper energy before anyone whispers ({before}): {await agent.evaluate(DIAG_JS)}"
    )
    await board.locator("#whisper").hover()
    await board.mouse.down()
    await agent.wait_for_selector("#monitor-status[data-whispering='true']", timeout=10000)
    heard = await energy(agent, "whisper")
    silent = await energy(taxpayer, "call")
    await e2e.screenshot(board, "monitor-whispering-1280")
    await board.mouse.up()
    await agent.wait_for_selector("#monitor-status[data-whispering='false']", timeout=10000)
    print(f"whisper energy (RMS): before {before:.5f}, agent {heard:.4f}, taxpayer {silent:.5f}")
    assert heard > 0.01, f"the agent heard nothing of the whisper ({heard})"
    assert 0 <= silent < 0.001, f"the taxpayer's receiving track has energy ({silent})"

    # The agent's page reloads mid-monitoring: it resumes the call, is told of the leg again
    # and feeds it anew (a new peer connection the leg takes in place of the old); the board
    # sees both sides again and the desk still says a supervisor listens.
    await agent.reload()
    await agent.wait_for_function("() => window.vtax && window.vtax.page === 'agent'")
    await wait_connected(e2e, taxpayer, agent)
    await e2e.poll_until(leg_connected, within=30, what="the reloaded agent's leg connection")
    await agent.wait_for_selector("#monitor-status[data-monitors='1']", state="visible")
    await e2e.poll_until(both_sides_decoding, within=30, what="both sides after the reload")
    assert await agent.evaluate("() => window.__pcs.length") == 2  # the call and the leg

    # The phone-size board, then stop: the agent's notice goes.
    await board.set_viewport_size({"width": 390, "height": 844})
    await e2e.screenshot(board, "monitor-wallboard-390")
    await board.click("#monitor-stop")
    await agent.wait_for_selector("#monitor-status", state="detached", timeout=10000)
    await e2e.axe(board, "the wallboard after monitoring")
