"""The shared screen is recorded as its own track: a session between two Chromium pages where
the agent shares its screen while the recorder records; the manifest lists the agent's screen
segment (track "screen", video only, the fake 1280x720 monitor) beside both cameras, and the
files verify. A page whose camera cannot be opened (voice only) has its voice and its shared
screen recorded too, each as what it is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import poll_until
from tests.recording.media import probe
from tests.recording.test_browser_recording import (  # noqa: F401 - fixtures
    Node,
    browser,
    node,
    start_call,
)
from vtax.recording.store import RecordingStore, verify

pytestmark = pytest.mark.e2e
SHARE_S = 4.0

SCREEN_SENT_JS = """
async () => {
  const pc = window.vtax.recorderPc;
  if (!pc) return 0;
  const videos = pc.getTransceivers().filter(t => t.receiver.track.kind === 'video');
  const mid = videos[1] && videos[1].mid;
  for (const r of (await pc.getStats()).values())
    if (r.type === 'outbound-rtp' && r.mid === mid) return r.framesSent || 0;
  return 0;
}
"""


async def test_the_shared_screen_is_recorded_as_its_own_track(node: Node, browser: Any) -> None:  # noqa: F811
    logs: list[str] = []
    agent, taxpayer = await start_call(browser, node, logs, "record my screen")
    await taxpayer.wait_for_selector("#consent-card", state="visible")
    await taxpayer.click("#consent-yes")
    for page in (taxpayer, agent):
        await page.wait_for_function(
            "() => window.vtax.recording.connectionState === 'connected'", timeout=20000
        )
    session_id = await taxpayer.evaluate("() => window.vtax.sessionId")

    await agent.click("#screen-share")
    await taxpayer.wait_for_selector("#remote-screen", state="visible")

    async def screen_sent() -> Any:
        return await agent.evaluate(SCREEN_SENT_JS)

    await poll_until(screen_sent, 15)
    await asyncio.sleep(SHARE_S)
    sent = await agent.evaluate(SCREEN_SENT_JS)
    await taxpayer.click("#hangup")

    store = RecordingStore(node.rec_dir)
    folder = await poll_until(lambda: store.find_session_dir(session_id), 15)

    def complete() -> Any:
        m = store.load_manifest(folder)
        return m if m and m.status == "complete" and len(m.segments) == 3 else None

    try:
        manifest = await poll_until(complete, 20)
    except AssertionError:
        raise AssertionError(node.log.read_text()[-6000:] + "\n".join(logs[-50:])) from None
    screens = [s for s in manifest.segments if s.track == "screen"]
    cameras = [s for s in manifest.segments if s.track == "camera"]
    assert [s.role for s in screens] == ["agent"], manifest.segments
    assert sorted(s.role for s in cameras) == ["agent", "taxpayer"]
    screen = screens[0]
    assert "-screen-" in screen.file and screen.audio is None
    info = probe(folder / screen.file)
    assert info.streams == {"video": "vp8"}, info
    assert info.first_video_keyframe and (info.width, info.height) == (1280, 720)
    # Everything the page sent on the screen's m-line is in the file (within 10 %).
    assert info.frames["video"] >= 0.9 * sent > 0, (info.frames, sent)
    for cam in cameras:  # the cameras are recorded as before, with audio
        assert probe(folder / cam.file).streams == {"video": "vp8", "audio": "opus"}
    assert verify(store, session_id) == (3, [])


# The camera cannot be opened (in use, broken): getUserMedia with video fails, so the page
# falls back to the microphone alone (core/rtc.ts getLocalMedia); screen capture still works.
NO_CAMERA_JS = """
(() => {
  const md = navigator.mediaDevices;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => (c && c.video)
    ? Promise.reject(new DOMException('Could not start video source', 'NotReadableError'))
    : original(c);
})();
"""


async def test_a_page_without_a_camera_has_its_voice_and_its_screen_recorded(
    node: Node,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    logs: list[str] = []
    agent, taxpayer = await start_call(browser, node, logs, "no camera here", NO_CAMERA_JS)
    await taxpayer.wait_for_selector("#consent-card", state="visible")
    await taxpayer.click("#consent-yes")
    for page in (taxpayer, agent):
        await page.wait_for_function(
            "() => window.vtax.recording.connectionState === 'connected'", timeout=20000
        )
    tracks = await agent.evaluate(
        "() => window.vtax.recorderPc.getTransceivers().map(t => t.receiver.track.kind)"
    )
    assert tracks == ["audio", "video"], tracks  # the microphone and the screen's m-line
    session_id = await taxpayer.evaluate("() => window.vtax.sessionId")
    await agent.click("#screen-share")
    await taxpayer.wait_for_selector("#remote-screen", state="visible")

    async def screen_sent() -> Any:
        return await agent.evaluate(ONLY_VIDEO_SENT_JS)

    await poll_until(screen_sent, 15)
    await asyncio.sleep(SHARE_S)
    sent = await agent.evaluate(ONLY_VIDEO_SENT_JS)
    await taxpayer.click("#hangup")

    store = RecordingStore(node.rec_dir)
    folder = await poll_until(lambda: store.find_session_dir(session_id), 15)

    def complete() -> Any:
        m = store.load_manifest(folder)
        return m if m and m.status == "complete" and len(m.segments) == 3 else None

    try:
        manifest = await poll_until(complete, 20)
    except AssertionError:
        raise AssertionError(node.log.read_text()[-6000:] + "\n".join(logs[-50:])) from None
    by = {(s.role, s.track): s for s in manifest.segments}
    assert set(by) == {("agent", "camera"), ("agent", "screen"), ("taxpayer", "camera")}, by
    voice = probe(folder / by["agent", "camera"].file)
    assert voice.streams == {"audio": "opus"}, voice  # the voice alone, not the screen
    assert voice.frames["audio"] > 0.5 * SHARE_S * 50, voice.frames  # 20 ms Opus frames
    screen = probe(folder / by["agent", "screen"].file)
    assert screen.streams == {"video": "vp8"} and (screen.width, screen.height) == (1280, 720)
    assert screen.frames["video"] >= 0.9 * sent > 0, (screen.frames, sent)
    assert verify(store, session_id) == (3, [])


ONLY_VIDEO_SENT_JS = """
async () => {
  const pc = window.vtax.recorderPc;
  if (!pc) return 0;
  let sent = 0;
  for (const r of (await pc.getStats()).values())
    if (r.type === 'outbound-rtp' && r.kind === 'video') sent = Math.max(sent, r.framesSent || 0);
  return sent;
}
"""
