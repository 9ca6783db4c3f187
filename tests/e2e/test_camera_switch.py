"""Switching the camera in the taxpayer's call (web/src/core/camera.ts) in Chromium.

Chromium's fake capture can list more cameras (`--use-fake-device-for-media-stream=
device-count=2`), but none says which way it faces (MEDIA_VIDEO_FACING_NONE: `facingMode`
is absent from the settings and `{exact: ...}` is over-constrained), and the second one
delivers Y16 (depth) frames, which the video encoder never sends: after a switch to it the
agent's frames stop. So the taxpayer's page gets a phone's two cameras from an init script:
enumerateDevices lists a rear camera beside the fake one, and getUserMedia answers a
`facingMode` request with a new track of the fake camera whose settings say that facing.
The track on the RTCRtpSender, the frames the agent decodes, the recorder's sender and the
self view are the browser's own. The one-camera pages (test_taxpayer_entry.py) show no
switch.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser_loop import accept_offer, start_request, wait_connected

pytestmark = pytest.mark.e2e

# A phone's front ("user") and rear ("environment") cameras over Chromium's one fake camera.
TWO_CAMERAS_JS = """(() => {
  const md = navigator.mediaDevices;
  if (!md) return;
  const realGum = md.getUserMedia.bind(md);
  const realEnum = md.enumerateDevices.bind(md);
  window.__cameraAsks = [];
  md.enumerateDevices = async () => {
    const list = await realEnum();
    const cams = list.filter((d) => d.kind === 'videoinput');
    if (cams.length !== 1) return list;
    const rear = { deviceId: 'rear-camera', groupId: 'rear', kind: 'videoinput', label: cams[0].label ? 'rear camera' : '' };
    return [...list, { ...rear, toJSON: () => rear }];
  };
  md.getUserMedia = async (constraints) => {
    window.__cameraAsks.push(JSON.stringify(constraints));
    let facing = 'user';
    let c = constraints;
    const v = c && c.video;
    if (v && typeof v === 'object' && v.facingMode) {
      const f = v.facingMode;
      facing = typeof f === 'string' ? f : f.exact || f.ideal;
      const { facingMode, ...rest } = v;
      c = { ...c, video: rest };
    }
    const stream = await realGum(c);
    for (const t of stream.getVideoTracks()) {
      const own = t.getSettings.bind(t);
      t.getSettings = () => ({ ...own(), facingMode: facing });
    }
    return stream;
  };
})();"""

CAMERA_JS = """() => {
  const pc = window.vtax.pc;
  const video = pc.getSenders().find((s) => s.track && s.track.kind === 'video' && s.track.label.startsWith('fake_device'));
  const audio = pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
  const self = document.getElementById('local-video');
  const rec = window.vtax.recorderPc;
  return {
    id: video && video.track.id, state: video && video.track.readyState,
    facing: video && video.track.getSettings().facingMode,
    audioEnabled: audio && audio.track.enabled,
    local: self.srcObject ? self.srcObject.getVideoTracks().map((t) => t.id) : [],
    selfPlaying: !self.paused && self.readyState >= 2 && self.videoWidth > 0,
    sdp: pc.currentLocalDescription && pc.currentLocalDescription.sdp,
    recorder: rec ? rec.getSenders().filter((s) => s.track && s.track.kind === 'video').map((s) => s.track.id) : [],
    consent: window.vtax.recording && window.vtax.recording.consent,
  };
}"""


@pytest.mark.parametrize("viewport", [(390, 844), (1280, 800)])
async def test_switch_camera_in_a_call(e2e: Any, viewport: tuple[int, int]) -> None:
    """Front -> rear -> front during a recorded call: the sender's track replaced with no
    renegotiation, the old track stopped, the agent still decoding, the recorder following,
    the self view playing, mute and the consent as they were."""
    w, h = viewport
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    e2e.init_script = TWO_CAMERAS_JS  # the taxpayer's page only (the agent's is open)
    page = await e2e.page("/taxpayer", "taxpayer", viewport=viewport)
    await e2e.sign_in(page)
    await page.wait_for_selector("#step-request", state="visible")
    question = f"switching the camera at {w}x{h}"
    await start_request(e2e, page, e2e.server.categories[0], question)
    await e2e.wait_state(page, "queued")
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, page, agent)
    await page.wait_for_selector("#consent-card", state="visible")
    await page.click("#consent-yes")
    await page.wait_for_selector("#consent-card", state="detached")
    await page.wait_for_function(
        "() => window.vtax.recording.connectionState === 'connected'", timeout=20000
    )
    assert await page.evaluate("() => window.vtax.cameras") == 2
    button = page.locator("#switch-camera")
    await button.wait_for(state="visible")
    assert await button.get_attribute("aria-label") == "Switch camera (to the rear camera)"
    assert (await button.inner_text()).strip() == "Switch camera"
    await page.click("#mute")
    before = await page.evaluate(CAMERA_JS)
    assert before["facing"] == "user" and before["audioEnabled"] is False
    assert before["recorder"] == [before["id"]]
    await page.evaluate(
        "(id) => { window.__oldCamera = window.vtax.pc.getSenders()"
        ".find((s) => s.track && s.track.id === id).track; }",
        before["id"],
    )
    await e2e.axe(page, f"call with the camera switch at {w}x{h}")
    await e2e.wait_media_flowing(agent)

    await button.click()

    async def switched() -> Any:
        now = await page.evaluate(CAMERA_JS)
        return now if now["id"] and now["id"] != before["id"] else None

    after = await e2e.poll_until(switched, what="the sender's camera track replaced")
    assert after["facing"] == "environment" and after["state"] == "live"
    asked = await page.evaluate("() => window.__cameraAsks.at(-1)")
    assert '"facingMode":{"exact":"environment"}' in asked and '"audio":false' in asked
    assert await page.evaluate("() => window.__oldCamera.readyState") == "ended"
    assert after["local"] == [after["id"]], "the self view shows the new camera"
    assert after["sdp"] == before["sdp"], "replaceTrack: no renegotiation"
    assert after["audioEnabled"] is False, "still muted"
    assert after["consent"] is True and not await page.is_visible("#consent-card")

    async def settled() -> Any:
        now = await page.evaluate(CAMERA_JS)
        return now["recorder"] == [after["id"]] and now["selfPlaying"]

    await e2e.poll_until(settled, what="the recorder's sender on the new camera, the self view")
    await e2e.wait_media_flowing(agent)  # the agent decodes the new camera's frames
    assert await button.get_attribute("aria-label") == "Switch camera (to the front camera)"
    assert await page.evaluate("() => window.vtax.cameraSwitches") == 1
    assert await e2e.error_text(page) == ""
    await e2e.axe(page, f"call after the camera switch at {w}x{h}")
    await e2e.screenshot(page, f"taxpayer-call-switched-{w}x{h}")

    await button.click()  # and back to the front camera

    async def back() -> Any:
        now = await page.evaluate(CAMERA_JS)
        return now if now["facing"] == "user" and now["id"] != after["id"] else None

    again = await e2e.poll_until(back, what="back on the front camera")
    assert again["sdp"] == before["sdp"]
    await e2e.wait_media_flowing(agent)
    await page.click("#hangup")
    await e2e.wait_state(page, "ended")
    assert not await page.is_visible("#switch-camera")
    assert await e2e.error_text(page) == ""
