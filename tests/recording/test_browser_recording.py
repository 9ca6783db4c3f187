"""A session between two Chromium pages recorded by the recorder worker that `vtax serve`
starts on the embedded default: consent on the taxpayer page, a send-only peer connection from
each page to the recorder, files opened with PyAV, playback by a supervisor with Range.

Same launch flags as tests/e2e (Debian's Chromium with a fake 640x360/15 fps camera)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import TEST_NODE_ENV, poll_until
from tests.e2e.conftest import sign_in
from tests.recording.media import probe
from tests.signin import logged_texts, person_for, registry_csv
from vtax.recording.store import RecordingStore, verify

pytestmark = pytest.mark.e2e
USCC = "91350100M000100Y43"
FPS = 15
RECORD_S = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> None:
    res = subprocess.run(
        [sys.executable, "-m", "vtax", *args],
        env=env,
        input=stdin.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")


def _http(url: str, token: str | None = None, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return urllib.request.urlopen(req, timeout=10)


class Node:
    def __init__(self, base: str, env: dict[str, str], rec_dir: Path, log: Path) -> None:
        self.base, self.env, self.rec_dir, self.log = base, env, rec_dir, log

    def login(self, username: str, password: str) -> str:
        req = urllib.request.Request(
            self.base + "/api/auth/login",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            return str(json.loads(res.read())["token"])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed")
    tmp = tmp_path_factory.mktemp("rec-e2e")
    env = dict(os.environ)
    env.pop("VTAX_REDIS_URL", None)
    env.update(
        {
            "VTAX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/vtax.db",
            "VTAX_DATA_DIR": str(tmp),
            "VTAX_SECRET_KEY": secrets.token_hex(32),
            "VTAX_RECORDINGS_DIR": str(tmp / "rec"),
            "PYTHONUNBUFFERED": "1",
            "VTAX_DRAIN_TIMEOUT_S": "1",
            **TEST_NODE_ENV,
        }
    )
    _cli(["migrate"], env)
    _cli(
        ["user", "add", "agent1", "--role", "agent", "--skill", "invoices=5", "--language", "en"],
        env,
        "agent-password-1\n",
    )
    _cli(["user", "add", "sup1", "--role", "supervisor"], env, "super-password-1\n")
    # the person the taxpayer page signs in as (tests/signin.py), in the node's registry
    (tmp / "registry.csv").write_text(registry_csv([person_for(USCC)]), encoding="utf-8")
    _cli(["registry", "import", str(tmp / "registry.csv")], env)
    port = _free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vtax", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with _http(base + "/healthz"):
                    break
            except (urllib.error.URLError, OSError):
                assert proc.poll() is None, log.read_text()[-5000:]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield Node(base, env, tmp / "rec", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
async def browser(node: Node) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def _page(
    browser: Any, node: Node, path: str, logs: list[str], init_script: str | None = None
) -> Any:
    ctx = await browser.new_context(base_url=node.base, locale="en-US")
    ctx.set_default_timeout(15000)
    if init_script:
        await ctx.add_init_script(init_script)
    page = await ctx.new_page()
    page.on("console", lambda m: logs.append(f"[{path}] {m.type}: {m.text}"))
    await page.goto(path)
    await page.wait_for_function("() => window.vtax && window.vtax.page")
    return page


RECORDER_STATS_JS = """
async () => {
  const pc = window.vtax.recorderPc;
  if (!pc) return null;
  const out = {state: pc.connectionState, framesSent: 0, packetsSent: 0};
  for (const r of (await pc.getStats()).values()) {
    // the camera's (the screen's m-line sends nothing while nobody shares)
    if (r.type === 'outbound-rtp' && r.kind === 'video')
      out.framesSent = Math.max(out.framesSent, r.framesSent || 0);
    if (r.type === 'outbound-rtp') out.packetsSent += r.packetsSent || 0;
  }
  return out;
}
"""


async def start_call(
    browser: Any, node: Node, logs: list[str], question: str, agent_init: str | None = None
) -> tuple[Any, Any]:
    """The agent signed in and available, the taxpayer's question, the agent accepts: the
    pages (agent, taxpayer) as the consent prompt comes up. `agent_init`: a script run in the
    agent's page before its own (e.g. a camera that cannot be opened)."""
    agent = await _page(browser, node, "/agent", logs, agent_init)
    await agent.fill("#username", "agent1")
    await agent.fill("#password", "agent-password-1")
    await agent.click("#login")
    await agent.wait_for_selector("#desk", state="visible")
    await agent.click("#available")
    taxpayer = await _page(browser, node, "/taxpayer", logs)
    await sign_in(taxpayer, lambda phone: logged_texts([node.log], phone), USCC)
    await taxpayer.wait_for_selector("#step-request", state="visible")
    await taxpayer.select_option("#category", "invoices")
    await taxpayer.select_option("#language", "en")
    await taxpayer.fill("#question", question)
    await taxpayer.click("#start")
    await agent.wait_for_selector("#accept", state="visible")
    await agent.click("#accept")
    return agent, taxpayer


async def test_two_chromium_pages_are_recorded(node: Node, browser: Any) -> None:
    logs: list[str] = []
    agent, taxpayer = await start_call(browser, node, logs, "record me")

    # The consent prompt; the agent sees that consent is awaited.
    await taxpayer.wait_for_selector("#consent-card", state="visible")
    await agent.wait_for_function(
        "() => window.vtax.recording && window.vtax.recording.state === 'awaiting_consent'"
    )
    await taxpayer.click("#consent-yes")
    for page in (taxpayer, agent):
        await page.wait_for_function(
            "() => window.vtax.recording.connectionState === 'connected'", timeout=20000
        )
    connected = time.monotonic()
    assert "Recording" in (await agent.text_content("#recording-status") or "")
    session_id = await taxpayer.evaluate("() => window.vtax.sessionId")
    await asyncio.sleep(RECORD_S)
    sent = [await p.evaluate(RECORDER_STATS_JS) for p in (taxpayer, agent)]
    hung_up = time.monotonic()
    await taxpayer.click("#hangup")

    store = RecordingStore(node.rec_dir)
    folder = await poll_until(lambda: store.find_session_dir(session_id), 15)

    def complete() -> Any:
        m = store.load_manifest(folder)
        return m if m and m.status == "complete" and len(m.segments) == 2 else None

    try:
        manifest = await poll_until(complete, 20)
    except AssertionError:
        raise AssertionError(node.log.read_text()[-6000:] + "\n".join(logs[-50:])) from None
    session_s = hung_up - connected
    for seg, stats in zip(
        sorted(manifest.segments, key=lambda s: s.role, reverse=True), sent, strict=True
    ):
        info = probe(folder / seg.file)
        assert info.streams == {"video": "vp8", "audio": "opus"}, (seg.file, info)
        assert info.first_video_keyframe and (info.width, info.height) == (640, 360)
        assert abs(info.duration_s - session_s) <= 1.0, (seg.file, info.duration_s, session_s)
        # 15 fps and 50 Opus frames a second, within 10 %.
        assert abs(info.frames["video"] - seg.duration_s * FPS) <= 0.1 * seg.duration_s * FPS, (
            seg.file,
            info.frames,
            seg.duration_s,
        )
        assert abs(info.frames["audio"] - seg.duration_s * 50) <= 0.1 * seg.duration_s * 50
        # Nothing the browser sent was lost by the recorder (it kept sending after `sent`).
        assert info.frames["video"] >= 0.9 * stats["framesSent"], (seg.file, stats, info)
    assert verify(store, session_id) == (2, [])

    # A supervisor plays it back, with Range; an agent may not.
    sup = node.login("sup1", "super-password-1")
    with _http(f"{node.base}/api/recordings/{session_id}", sup) as res:
        body = json.loads(res.read())
    url = node.base + body["segments"][0]["url"]
    with _http(url, headers={"Range": "bytes=0-99"}) as res:
        assert res.status == 206 and len(res.read()) == 100
    agent_token = node.login("agent1", "agent-password-1")
    with pytest.raises(urllib.error.HTTPError) as refused:
        _http(f"{node.base}/api/recordings/{session_id}", agent_token)
    assert refused.value.code == 403
    refused.value.close()
