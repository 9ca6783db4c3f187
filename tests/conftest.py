"""Shared fixtures: a real server on an ephemeral port over each database engine, and real
Socket.IO clients that record what they receive."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio
from aiohttp import web

from signaling.app import create_app
from signaling.context import CONTEXT, AppContext
from signaling.server import make_runner
from tests.browser import Chromium
from tests.databases import PG_ADMIN_DSN as PG_ADMIN_DSN  # (where other tests import it)
from tests.databases import (
    Templates,
    create_pg_database,
    pg_url,
    unique_name,
)
from tests.signin import (
    SIGN_IN_CODES,
    SIGN_IN_CODES_ENV,
    TestPerson,
    code_in,
    person_for,
    registry_csv,
    staff_with_factor,
)
from vtax.app.identity import today_in
from vtax.auth import Passwords
from vtax.config import Settings
from vtax.contract.identity import ActFor
from vtax.db import migrate, session_factory
from vtax.identity.importer import import_text
from vtax.identity.tokens import SignIn
from vtax.sms import LogSmsSender

# argon2 at its lowest cost: a staff sign-in is a hash and a check, ~0.4 s each at the
# production cost on this machine. The cost has no bearing on what the tests check (the
# sign-in tests of the production cost set it themselves: tests/integration/test_signin.py).
CHEAP_PASSWORDS: dict[str, Any] = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 8,
    "password_hash_parallelism": 1,
}
# What a `vtax serve` subprocess of the tests gets (tests/e2e, tests/multinode): the cheap
# hashes, and no sign-in limit in the way of tests that sign in often (tests/signin.py's
# SIGN_IN_CODES: tests sign taxpayers in by SMS code, RunningServer.taxpayer).
# Their one supervisor signs in through the form many times a minute, and an authenticator's
# code is good once per 30 s step: recordings and exports open without the second factor
# there. The in-process servers keep it on (RunningServer.staff signs supervisors in with a
# code), and tests/e2e/test_second_factor.py runs a node with it on.
TEST_NODE_ENV = {
    **{f"VTAX_{k.upper()}": str(v) for k, v in CHEAP_PASSWORDS.items()},
    "VTAX_LOGIN_ADDRESS_RATE": "1000",
    "VTAX_LOGIN_ADDRESS_BURST": "1000",
    **SIGN_IN_CODES_ENV,
    "VTAX_RECORDS_NEED_SECOND_FACTOR": "false",
    # their pages sign taxpayers in by SMS code (level 3) and have no OpenID Provider to
    # step up with; the step-up before a receipt has its tests (tests/identity/test_step_up.py)
    "VTAX_STEP_UP_RECEIPTS": "false",
}


def cheap_passwords() -> Passwords:
    """The password hasher of the tests' own accounts (see CHEAP_PASSWORDS)."""
    return Passwords(1, 8, 1)


USCC = "91350100M000100Y43"
RESIDENT_ID = "11010519491231002X"


# Under pytest-xdist (`make test`, `make test-fast`: `--dist loadgroup`) the tests of one
# group run on one worker, one after the other: the browser tests (each drives Chromium and a
# node: two at once would starve both on this machine, and a module's server is shared), the
# multi-node and slow tests (several processes each), and the recording tests (they share
# media encoded once per process: ~15 s of CPU that a second worker would spend again).
# Everything else spreads; each worker builds its own database templates, and every test has
# its own databases, Redis prefix and ephemeral ports.
XDIST_GROUPS = {
    "e2e": "browser",
    "multinode": "processes",
    "stack": "processes",
    "slow": "processes",
}
XDIST_FOLDERS = {"recording": "media"}


# The tests that drive pages through the `e2e` harness (tests/e2e) or the stack's `relay_e2e`
# (tests/stack) share one Chromium per run (per xdist worker: `chromium`), each test in
# browser contexts of its own. Playwright's objects belong to the event loop that made them, so
# those tests and their harness run on the session's loop; every other test keeps its own.
SHARED_BROWSER_FIXTURES = ("e2e", "relay_e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in SHARED_BROWSER_FIXTURES):
            item.add_marker(session_loop, append=False)
        group = next(
            (g for marker, g in XDIST_GROUPS.items() if item.get_closest_marker(marker)), None
        )
        if group is None:
            folder = item.path.relative_to(root).parts[0] if item.path.is_relative_to(root) else ""
            group = XDIST_FOLDERS.get(folder)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


async def poll_until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Chromium]:
    """The run's one Chromium (tests/browser.py), started when a test first asks for it."""
    shared = Chromium()
    try:
        yield shared
    finally:
        await shared.close()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Migrated databases to copy, built once per run (per xdist worker): tests/databases.py."""
    made = Templates(tmp_path_factory.mktemp("db-templates"))
    yield made
    made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Any, templates: Templates
) -> AsyncIterator[str]:
    """A fresh database migrated to the head, on each engine: a copy of a migrated SQLite
    file, or a new PostgreSQL database made from a migrated template."""
    if request.param == "sqlite":
        await templates.sqlite_copy("migrated", migrate, tmp_path / "vtax.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"
        return
    name, _ = await templates.pg_copy("migrated", migrate)
    try:
        yield pg_url(name)
    finally:
        templates.release(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Any, templates: Templates
) -> AsyncIterator[str]:
    """A fresh, empty (unmigrated) database on each engine, for the migration tests."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = unique_name("test")
    await create_pg_database(name)
    try:
        yield pg_url(name)
    finally:
        templates.release(name)  # dropped in the background, as the copies are


@dataclass
class RunningServer:
    url: str
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def ctx(self) -> AppContext:
        return self.app[CONTEXT]

    async def staff(
        self,
        username: str,
        role: str = "agent",
        *,
        skills: dict[str, int] | None = None,
        languages: list[str] | None = None,
        second_factor: bool | None = None,
    ) -> str:
        """Create a staff account and sign in over HTTP; return the token. Supervisors (or
        with `second_factor=True`) have an authenticator set up and sign in with its code
        (tests/signin.py `staff_with_factor`), as recordings and exports need
        (`records_need_second_factor`, on by default)."""
        password = secrets.token_urlsafe(12)
        await self.ctx.accounts.add_user(
            username,
            role,
            password,
            display_name=username.title(),
            skills={"invoices": 3} if skills is None and role == "agent" else skills,
            languages=["zh-CN"] if languages is None and role == "agent" else languages,
        )
        if role == "supervisor" if second_factor is None else second_factor:
            return await staff_with_factor(self.http, self.url, username, password)
        login = {"username": username, "password": password}
        async with self.http.post(f"{self.url}/api/auth/login", json=login) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
            assert answer["second_factor"] is False
            return str(answer["token"])

    async def taxpayer(self, id_number: str = USCC, id_type: str = "uscc") -> str:
        """A taxpayer's access token, signed in through the SMS provider (tests/signin.py):
        the person registered, a code asked for and read from the node's log sender,
        verified; for a USCC, then acting for the enterprise."""
        return str((await self.taxpayer_session(id_number, id_type))["access_token"])

    async def taxpayer_session(self, id_number: str = USCC, id_type: str = "uscc") -> Any:
        """The whole `TaxpayerSession` of `taxpayer()` (tokens, person, acting, options)."""
        person = await self.register(id_number, id_type)
        sms = self.ctx.services.identity.sms
        assert sms is not None and isinstance(sms.sender, LogSmsSender), "SMS sign-in is off"
        before = len([p for p, _ in sms.sender.sent if p == person.phone])
        session = await self._post("/api/auth/sms/code", {"phone": person.phone})
        await sms.drain()
        texts = [t for p, t in sms.sender.sent if p == person.phone]
        assert len(texts) > before, "no code was sent"
        session = await self._post(
            "/api/auth/sms/verify", {"phone": person.phone, "code": code_in(texts[-1])}
        )
        if person.uscc:
            option = next(o for o in session["options"] if o["uscc"] == person.uscc)
            session = await self._post(
                "/api/auth/act-for",
                {
                    "refresh_token": session["refresh_token"],
                    "enterprise_id": option["enterprise_id"],
                    "role": option["role"],
                },
            )
        return session

    async def stepped_up(self, token: str) -> str:
        """A fresh level-4 access token of the taxpayer behind `token`, acting as it does:
        what a step-up gives (signing a receipt needs one; tests/identity/test_step_up.py
        drives the real step-up through the OpenID Provider)."""
        signin = self.ctx.services.identity.signin
        who = await signin.authenticate(token)
        person = await signin.registry.person(who.subject)
        assert person is not None
        session = await signin.start(person, SignIn("oidc", 4, time.time()))
        if who.acting_for:
            session = await signin.act_for(
                ActFor(
                    refresh_token=session.refresh_token,
                    enterprise_id=who.acting_for,
                    role=who.acting_role,  # type: ignore[arg-type]
                )
            )
        return session.access_token

    async def register(self, id_number: str = USCC, id_type: str = "uscc") -> TestPerson:
        """The test person behind an identity number in the registry (idempotent)."""
        person = person_for(id_number, id_type)
        report = await import_text(
            session_factory(self.ctx.engine),
            registry_csv([person]),
            "csv",
            today_in(self.ctx.settings.service_timezone)(),
        )
        assert not report.errors, [str(e) for e in report.errors]
        return person

    async def _post(self, path: str, body: Any) -> Any:
        async with self.http.post(self.url + path, json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()


def test_settings(database_url: str, tmp_path: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_path,
        "secret_key": "t" * 40,
        "recordings_dir": tmp_path / "recordings",
        "offer_timeout_s": 3.0,
        "wrapup_s": 0.0,
        # Tests join and leave, and sign in, in quick succession; the limits have tests of
        # their own.
        "join_rate": 1000.0,
        "join_burst": 1000,
        # Every event and ack answer the server sends is checked against its contract model.
        "validate_outgoing": True,
        "login_address_rate": 1000.0,
        "login_address_burst": 1000,
        **SIGN_IN_CODES,
        **CHEAP_PASSWORDS,
        # An empty knowledge base: building the seed's index takes seconds of CPU per node;
        # the assistant's tests turn the seed on where they need it.
        "assistant_seed": False,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def server(
    database_url: str, tmp_path: Any, settings_overrides: dict[str, Any]
) -> AsyncIterator[RunningServer]:
    # the database is migrated already (`database_url`); a node's own start-up migration
    # has its tests (tests/integration/test_startup.py, tests/live, tests/queue/test_two_nodes)
    app = create_app(
        test_settings(database_url, tmp_path, **settings_overrides), migrate_on_start=False
    )
    runner = make_runner(app, app[CONTEXT].settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession() as http:
        try:
            yield RunningServer(url, app, http)
        finally:
            await runner.cleanup()


class Client:
    """A real python-socketio client that keeps every event it receives."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self.connect_error: Any = None
        self.sio.on("*", self._on_any)
        self.sio.on("connect_error", self._on_connect_error)

    async def _on_any(self, event: str, *args: Any) -> None:
        self.received[event].append(args[0] if len(args) == 1 else list(args))

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def connect(self) -> Client:
        auth = {"token": self.token} if self.token is not None else None
        await self.sio.connect(self.url, auth=auth, transports=["websocket"], wait_timeout=5)
        return self

    async def call(self, event: str, payload: Any = None, timeout: float = 5) -> Any:
        if payload is None:
            return await self.sio.call(event, timeout=timeout)
        return await self.sio.call(event, payload, timeout=timeout)

    async def wait_for(
        self, event: str, match: Callable[[Any], bool] = lambda _: True, timeout: float = 5.0
    ) -> Any:
        return await poll_until(
            lambda: next((d for d in self.received[event] if match(d)), None), timeout
        )

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `await clients(server, token)` gives a connected Client, closed at teardown."""
    made: list[Client] = []

    async def make(srv: RunningServer, token: str | None) -> Client:
        client = Client(srv.url, token)
        made.append(client)
        return await client.connect()

    yield make
    for client in made:
        await client.close()
