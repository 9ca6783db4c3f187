"""Shared fixtures and helpers for the browser end-to-end tests.

The tests start the real server (`python -m vtax serve`) as a subprocess on a free port with a
throw-away SQLite database, and drive Debian's Chromium through Playwright (async API).
Helpers live on the `e2e` fixture (an `E2E` object), so test modules import nothing from here.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pyotp
import pytest
import pytest_asyncio
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.browser import CHROMIUM as CHROMIUM  # (where other tests import them)
from tests.browser import CHROMIUM_ARGS as CHROMIUM_ARGS
from tests.browser import Chromium
from tests.conftest import RESIDENT_ID, TEST_NODE_ENV
from tests.signin import (
    authenticator_for,
    code_in,
    derived_resident_id,
    logged_texts,
    person_for,
    registry_csv,
)
from vtax.sms import masked

# axe-core from the pages' npm install (web/package.json devDependencies)
AXE = Path(__file__).resolve().parents[2] / "web/node_modules/axe-core/axe.min.js"
STARTUP_TIMEOUT_S = 30.0
USCC = "91350100M000100Y43"
# Who the pages sign in as: the enterprise of USCC (acted for by its legal representative)
# and a resident (tests/signin.py); a node of these tests has them in its registry.
E2E_IDENTITIES = (
    (USCC, "uscc"),
    (RESIDENT_ID, "resident_id"),
    ("91440300MA00000077", "uscc"),
    (derived_resident_id("e2e:a"), "resident_id"),
)
AGENT_LANGUAGES = ("zh-CN", "en")
LOCALE = "en-US"  # the browser's language (the built pages follow it; docs/frontend.md)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the server's stderr and the pages' console logs to the report."""
    rep = yield
    if rep.failed:
        funcargs = getattr(item, "funcargs", {})
        server = funcargs.get("vtax_server")
        if isinstance(server, Server):
            rep.sections.append(("vtax server stderr (tail)", server.stderr_tail()))
        # the harness under any fixture name (`e2e`, the stack's `relay_e2e`, ...)
        harness = next((v for v in funcargs.values() if isinstance(v, E2E)), None)
        if harness is not None and harness.logs:
            rep.sections.append(("browser console", "\n".join(harness.logs[-300:])))
    return rep


# ---------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def catalog_categories() -> list[str]:
    """Category codes from the catalog file shipped in the vtax package (the server's source)."""
    text = resources.files("vtax").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return [c["code"] for c in json.loads(text)["categories"]]


@dataclass
class Server:
    base_url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    categories: list[str]
    agent: tuple[str, str]
    supervisor: tuple[str, str]
    # Where the sign-in codes are read (the nodes' log sender, vtax/sms.py): the nodes' log
    # files (a subprocess node writes "SMS to +86139****1234 (log sender, not sent): ..."),
    # or, for a node in this process, its sender's list of (phone, text).
    sms_logs: list[Path] = field(default_factory=list)
    sms_sent: Callable[[], list[tuple[str, str]]] | None = None

    def sms_texts(self, phone: str) -> list[str]:
        """Every sign-in text sent to `phone` so far, oldest first."""
        if self.sms_sent is not None:
            return [t for p, t in self.sms_sent() if p == phone]
        return logged_texts(self.sms_logs, phone)

    def stderr_tail(self, limit: int = 20000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError as e:
            return f"(no stderr: {e})"
        return data[-limit:].decode("utf-8", "replace")

    def get_json(self, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(self.base_url + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=5) as res:
            return json.loads(res.read())

    def post_json(self, path: str, body: Any, token: str | None = None) -> Any:
        req = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=5) as res:
            return json.loads(res.read())

    def supervisor_token(self) -> str:
        """A supervisor's bearer token, to read session records over HTTP."""
        username, password = self.supervisor
        res = self.post_json("/api/auth/login", {"username": username, "password": password})
        return str(res["token"])

    async def staff_with_authenticator(self, role: str) -> tuple[str, str, pyotp.TOTP]:
        """A new staff account (the CLI) with its authenticator set up and turned on over
        HTTP (tests/signin.py `authenticator_for`): its name, password and TOTP, whose
        current code is still unused."""
        name, password = f"{role[:3]}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        await asyncio.to_thread(
            run_cli, ["user", "add", name, "--role", role], self.env, password + "\n"
        )
        async with aiohttp.ClientSession() as http:
            totp = await authenticator_for(http, self.base_url, name, password)
        return name, password, totp


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "vtax", *args],
        env=env,
        input=stdin.encode() if stdin is not None else None,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(
            f"`vtax {' '.join(args)}` exited {res.returncode}\n"
            f"stdout:\n{res.stdout.decode(errors='replace')}\n"
            f"stderr:\n{res.stderr.decode(errors='replace')}"
        )


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], stderr_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode} during start-up; stderr:\n"
                + stderr_path.read_text(errors="replace")[-20000:]
            )
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=1) as res:
                if res.status == 200:
                    return
                last = res.status
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.1)
    pytest.fail(
        f"server not healthy within {STARTUP_TIMEOUT_S} s (last: {last}); stderr:\n"
        + stderr_path.read_text(errors="replace")[-20000:]
    )


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    """More environment for the module's node (a module overrides it, e.g. test_signin.py)."""
    return {}


@dataclass(frozen=True)
class Seed:
    """A migrated SQLite database with the suite's staff accounts and the people the pages sign
    in as, made by the CLI once (`make_seed`); each node starts on a copy of it."""

    db: Path
    agent: tuple[str, str]
    supervisor: tuple[str, str]

    def copy_to(self, target: Path) -> None:
        shutil.copyfile(self.db, target)


def make_seed(folder: Path) -> Seed:
    """`vtax migrate`, two `vtax user add` and `vtax registry import`, as an operator would,
    into `folder`/vtax.db (the CLI's subprocesses cost ~5 s of CPU: once a run, not once a
    module; the commands themselves have their tests: tests/integration/test_startup.py,
    tests/identity/test_cli_registry.py)."""
    db = folder / "vtax.db"
    env = dict(os.environ)
    env.update(
        {
            "VTAX_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "VTAX_SECRET_KEY": secrets.token_hex(32),
            "VTAX_RECORDINGS_DIR": str(folder / "rec"),
            **TEST_NODE_ENV,
        }
    )
    env.pop("VTAX_REDIS_URL", None)
    categories = catalog_categories()
    agent = ("agent1", secrets.token_urlsafe(12))
    supervisor = ("sup1", secrets.token_urlsafe(12))
    run_cli(["migrate"], env)
    skills = [a for c in categories for a in ("--skill", f"{c}=5")]
    langs = [a for lang in AGENT_LANGUAGES for a in ("--language", lang)]
    run_cli(["user", "add", agent[0], "--role", "agent", *skills, *langs], env, agent[1] + "\n")
    run_cli(["user", "add", supervisor[0], "--role", "supervisor"], env, supervisor[1] + "\n")
    # the people the pages sign in as (tests/signin.py), as the tax system's export gives them
    (folder / "registry.csv").write_text(
        registry_csv([person_for(n, t) for n, t in E2E_IDENTITIES]), encoding="utf-8"
    )
    run_cli(["registry", "import", str(folder / "registry.csv")], env)
    with sqlite3.connect(db) as conn:  # everything in the one file, to be copied
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return Seed(db, agent, supervisor)


@pytest.fixture(scope="session")
def e2e_seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """The run's seed database (per xdist worker), made when a node first needs it."""
    return make_seed(tmp_path_factory.mktemp("vtax-e2e-seed"))


@pytest.fixture(scope="module")
def vtax_server(
    tmp_path_factory: pytest.TempPathFactory, node_env: dict[str, str], e2e_seed: Seed
) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("vtax-e2e"), node_env=node_env, seed=e2e_seed)


def serve(
    tmp: Path,
    host: str = "127.0.0.1",
    node_env: dict[str, str] | None = None,
    seed: Seed | None = None,
) -> Iterator[Server]:
    """A node on a copy of the seed database (`make_seed`: a migrated database with the suite's
    staff accounts and the people the pages sign in as; made here when none is given),
    listening on `host` (a test host's address in tests/e2e/test_impairment.py), stopped when
    the generator is closed."""
    node_env = node_env or {}
    env = dict(os.environ)
    env.update(
        {
            "VTAX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/vtax.db",
            "VTAX_SECRET_KEY": secrets.token_hex(32),
            "VTAX_RECORDINGS_DIR": str(tmp / "rec"),
            "PYTHONUNBUFFERED": "1",
            **TEST_NODE_ENV,
            **node_env,
        }
    )
    for key in ("VTAX_REDIS_URL",):  # the embedded backends: no services needed
        env.pop(key, None)
    (tmp / "rec").mkdir()
    if seed is None:
        (tmp / "seed").mkdir()
        seed = make_seed(tmp / "seed")
    seed.copy_to(tmp / "vtax.db")
    categories = catalog_categories()
    agent, supervisor = seed.agent, seed.supervisor

    port = int(node_env.get("VTAX_PORT") or free_port())  # test_signin_oidc.py fixes it
    base_url = f"http://{host}:{port}"
    stderr_path = tmp / "server.stderr"
    with open(tmp / "server.stdout", "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vtax", "serve", "--host", host, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    server = Server(
        base_url, env, proc, stderr_path, categories, agent, supervisor, sms_logs=[stderr_path]
    )
    try:
        wait_healthy(base_url, proc, stderr_path)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# The browser


async def poll_until(
    fn: Callable[[], Awaitable[Any]],
    *,
    within: float = 15.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Call `fn` until it returns something truthy; fail with the last value at the deadline."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            last = await fn()
        except Exception as e:  # a page navigating, an element not there yet
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


# The camera's inbound video: the first video m-line's (the second is the shared screen's,
# web/src/core/rtc.ts, which has a report with no frames while nobody shares).
INBOUND_VIDEO_JS = """
async () => {
  const pc = window.vtax && window.vtax.pc;
  if (!pc) return null;
  const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || '';
  const m = /m=video[^]*?a=mid:(\\S+)/.exec(sdp);
  const cameraMid = m ? m[1] : null;
  const stats = await pc.getStats();
  for (const r of stats.values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && (!cameraMid || r.mid === cameraMid)) {
      return {framesDecoded: r.framesDecoded || 0, bytesReceived: r.bytesReceived || 0,
              connectionState: pc.connectionState};
    }
  }
  return {framesDecoded: 0, bytesReceived: 0, connectionState: pc.connectionState};
}
"""


async def send_code(
    page: Any, texts: Callable[[str], list[str]], id_number: str = USCC, id_type: str = "uscc"
) -> str:
    """On a page's sign-in step: the person's mobile entered, a code asked for; the code, read
    from `texts(phone)` (what the node's log sender wrote)."""
    person = person_for(id_number, id_type)
    region = next(r for r in ("+852", "+853", "+86") if person.phone.startswith(r))
    await page.wait_for_selector("#phone", state="visible")
    await page.select_option("#phone-region", region)
    await page.fill("#phone", person.phone.removeprefix(region))
    before = len(texts(person.phone))
    await page.click("#send-code")

    async def sent() -> str | None:
        got = texts(person.phone)
        return code_in(got[-1]) if len(got) > before else None

    return str(await poll_until(sent, what=f"a sign-in code to {masked(person.phone)}"))


async def sign_in(
    page: Any, texts: Callable[[str], list[str]], id_number: str = USCC, id_type: str = "uscc"
) -> None:
    """Sign a page in as a person would (tests/signin.py): the mobile, the code, and for a
    USCC acting for that enterprise as its legal representative."""
    person = person_for(id_number, id_type)
    code = await send_code(page, texts, id_number, id_type)
    await page.fill("#code", code)
    await page.click("#verify")
    if person.uscc:
        await page.wait_for_selector("#step-acting", state="visible")
        await page.check(
            f"#step-acting input[data-uscc='{person.uscc}'][data-role='legal_representative']"
        )
        await page.click("#acting-continue")
    await page.wait_for_selector("#step-identity", state="hidden")
    await page.wait_for_selector("#step-acting", state="detached")


@dataclass
class E2E:
    """A browser plus helpers to drive the three pages."""

    server: Server
    browser: Any
    logs: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    init_script: ClassVar[str | None] = None  # run in every page before its own scripts

    poll_until = staticmethod(poll_until)
    write_timings = staticmethod(lambda values_ms: write_timings(values_ms))
    USCC = USCC

    async def page(
        self,
        path: str,
        name: str,
        *,
        locale: str = LOCALE,
        viewport: tuple[int, int] | None = None,
    ) -> Any:
        """A page in its own browser context (own cookies/storage, like a separate person)."""
        # One language at a time: the pages follow the browser's; the suite reads English.
        opts: dict[str, Any] = {"base_url": self.server.base_url, "locale": locale}
        if viewport is not None:
            opts["viewport"] = {"width": viewport[0], "height": viewport[1]}
            opts["is_mobile"] = viewport[0] < 600
            opts["has_touch"] = viewport[0] < 600
        ctx = await self.browser.new_context(**opts)
        if self.init_script:  # e.g. relay-only ICE (tests/stack)
            await ctx.add_init_script(self.init_script)
        ctx.set_default_timeout(15000)
        self.contexts.append(ctx)
        page = await ctx.new_page()
        page.on("console", lambda m: self.logs.append(f"[{name}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.logs.append(f"[{name}] PAGEERROR: {e}"))
        await page.goto(path)
        try:
            await page.wait_for_function("() => window.vtax && window.vtax.page")
        except PlaywrightTimeout:
            # Another worker's test host (tests/e2e/test_impairment.py) adds and removes a veth
            # link; Chromium then fails the loads in flight with ERR_NETWORK_CHANGED, as a
            # person's browser does when the Wi-Fi changes, and the person reloads. Only then.
            if not any(f"[{name}]" in m and "ERR_NETWORK_CHANGED" in m for m in self.logs):
                raise
            await page.reload()
            await page.wait_for_function("() => window.vtax && window.vtax.page")
        return page

    @staticmethod
    async def state(page: Any) -> str | None:
        return await page.evaluate("() => window.vtax && window.vtax.state")

    async def wait_state(self, page: Any, state: str, within: float = 15.0) -> None:
        async def check() -> bool:
            return await self.state(page) == state

        await poll_until(check, within=within, what=f"page state {state!r} on {page.url}")

    async def error_text(self, page: Any) -> str:
        return (await page.text_content("#error")) or ""

    @staticmethod
    async def wait_error(page: Any, code: str) -> None:
        """Until the page's latest error (`window.vtax.lastError`) has this code."""
        await page.wait_for_function(
            "code => window.vtax.lastError && window.vtax.lastError.code === code", arg=code
        )

    async def login(self, page: Any, username: str, password: str, ready: str) -> None:
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("#login")
        await page.wait_for_selector(ready, state="visible")

    async def login_with_code(
        self,
        page: Any,
        username: str,
        password: str,
        totp: pyotp.TOTP,
        ready: str,
        *,
        axe: str | None = None,
        wrong_code_first: bool = False,
    ) -> None:
        """Sign in through the staff form (web/src/components/StaffLogin.vue) of an account
        with an authenticator: the password, then the code the form asks for (the code field
        focused, the reason said), then `totp`'s current code, until `ready` shows. `axe`
        names an axe-core check of the form asking for the code; `wrong_code_first` enters a
        wrong code first, which is refused."""
        await self.login(page, username, password, "#totp-code")
        await self.wait_error(page, "second_factor_required")
        assert "six-digit code" in await self.error_text(page)
        await page.wait_for_function("() => document.activeElement.id === 'totp-code'")
        if axe is not None:
            await self.axe(page, axe)
        if wrong_code_first:
            await page.fill("#totp-code", f"{(int(totp.now()) + 500_000) % 1_000_000:06d}")
            await page.click("#login")
            await self.wait_error(page, "invalid_credentials")
            assert not await page.is_visible(ready)
        await page.fill("#totp-code", totp.now())
        await page.click("#login")
        await page.wait_for_selector(ready, state="visible")
        assert await self.error_text(page) == ""

    async def agent_page(self) -> Any:
        page = await self.page("/agent", "agent")
        await self.login(page, *self.server.agent, "#desk")
        return page

    async def agent_available(self, page: Any) -> None:
        await page.click("#available")

        async def available() -> bool:
            return await page.evaluate("() => window.vtax.agentStatus") == "available"

        await poll_until(available, what="agent status 'available'")

    async def supervisor_page(self) -> Any:
        page = await self.page("/supervisor", "supervisor")
        await self.login(page, *self.server.supervisor, "#sessions")
        return page

    async def taxpayer_page(self, query: str = "") -> Any:
        page = await self.page("/taxpayer" + query, "taxpayer")
        await self.sign_in(page)
        await page.wait_for_selector("#step-request", state="visible")
        return page

    async def send_code(self, page: Any, id_number: str = USCC, id_type: str = "uscc") -> str:
        """On the sign-in step: the person's mobile entered, a code asked for; the code."""
        return await send_code(page, self.server.sms_texts, id_number, id_type)

    async def sign_in(self, page: Any, id_number: str = USCC, id_type: str = "uscc") -> None:
        """Sign in as a person would (tests/signin.py): the mobile, the code from the node's
        log sender, and for a USCC acting for that enterprise as its legal representative."""
        await sign_in(page, self.server.sms_texts, id_number, id_type)

    async def axe(self, page: Any, what: str) -> list[dict[str, Any]]:
        """axe-core on the page as it is: the serious and critical violations (none expected)."""
        if not await page.evaluate("() => !!window.axe"):
            # Evaluated through the DevTools protocol: the pages' CSP allows no inline script
            # (an injected <script> tag is refused, as it should be).
            await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
        out = await page.evaluate(
            "async () => { const r = await window.axe.run(document);"
            " return {passes: r.passes.length, violations: r.violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}; }"
        )
        assert out["passes"] > 10, f"axe-core did not run on {what}: {out}"
        result = out["violations"]
        assert result == [], f"axe-core on {what}: {json.dumps(result, indent=1)}"
        return list(result)

    async def screenshot(self, page: Any, name: str, selector: str | None = None) -> None:
        """With VTAX_SCREENSHOTS=<dir> set, save a full-page PNG there (Playwright makes the
        dir), or only the element `selector` (a card of a long page)."""
        folder = os.environ.get("VTAX_SCREENSHOTS")
        if folder:
            path = str(Path(folder) / f"{name}.png")
            if selector is None:
                await page.screenshot(path=path, full_page=True)
            else:
                await page.locator(selector).screenshot(path=path)

    async def inbound_video(self, page: Any) -> dict[str, Any] | None:
        return await page.evaluate(INBOUND_VIDEO_JS)

    async def wait_media_flowing(self, *pages: Any, within: float = 15.0) -> list[Any]:
        """On each page: inbound video framesDecoded and bytesReceived both grow over >= 1 s."""

        async def one(page: Any) -> tuple[Any, Any]:
            async def started() -> Any:
                s = await self.inbound_video(page)
                return s if s and s["framesDecoded"] > 0 else None

            first = await poll_until(started, within=within, what=f"first frame on {page.url}")
            t0 = time.monotonic()

            async def grown() -> Any:
                if time.monotonic() - t0 < 1.0:
                    return None
                s = await self.inbound_video(page)
                ok = (
                    s
                    and s["framesDecoded"] > first["framesDecoded"]
                    and s["bytesReceived"] > first["bytesReceived"]
                )
                return s if ok else None

            later = await poll_until(
                grown, within=within, interval=0.1, what=f"media growing on {page.url}"
            )
            return first, later

        return list(await asyncio.gather(*(one(p) for p in pages)))

    async def close(self) -> None:
        for ctx in self.contexts:
            try:
                await ctx.close()
            except Exception:
                pass


@asynccontextmanager
async def harness_on(
    chromium: Chromium, server: Server, kind: type[E2E] | None = None
) -> AsyncIterator[E2E]:
    """An `E2E` harness (or a subclass) on the shared browser, its contexts closed after."""
    harness = (kind or E2E)(server, await chromium.browser())
    try:
        yield harness
    finally:
        if os.environ.get("VTAX_E2E_DUMP_LOGS"):  # debugging: the pages' console, always
            print("\n--- browser console ---\n" + "\n".join(harness.logs), file=sys.stderr)
        await harness.close()
        await chromium.after_test()


@pytest_asyncio.fixture(loop_scope="session")
async def e2e(vtax_server: Server, chromium: Chromium) -> AsyncIterator[E2E]:
    async with harness_on(chromium, vtax_server) as harness:
        yield harness


def write_timings(values_ms: list[float]) -> dict[str, Any]:
    """Summarise first-frame timings; write them as JSON to $VTAX_E2E_TIMINGS if set."""
    result = {
        "metric": "start click -> first decoded inbound video frame on both sides",
        "unit": "ms",
        "runs_ms": [round(v, 1) for v in values_ms],
        "median_ms": round(statistics.median(values_ms), 1),
        "min_ms": round(min(values_ms), 1),
        "max_ms": round(max(values_ms), 1),
    }
    path = os.environ.get("VTAX_E2E_TIMINGS")
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
