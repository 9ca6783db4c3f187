"""Through the real stack's nginx (deploy/nginx.conf, `X-Forwarded-For
$proxy_add_x_forwarded_for`) to a node that trusts nginx's address (deploy/stack.py
`node_extra_env`): two clients from different addresses get separate per-address limits,
where before every client counted as nginx's one address. The clients send from distinct
loopback source addresses (127.0.x.1, as benchmarks/soak.py does).

One node: the staff sign-in gate keeps its buckets per node, so both clients must meet the
same one for the test to mean anything (the SMS limits are in Redis, shared by the nodes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from deploy.stack import Stack
from tests.conftest import TEST_NODE_ENV
from tests.signin import logged_texts, person_for, registry_csv, sms_sign_in
from tests.stack.conftest import MISSING

pytestmark = [pytest.mark.stack]

PER_ADDRESS = 3
PERSON = person_for("11010519491231002X", "resident_id")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if MISSING:
        pytest.skip(f"missing {MISSING}")
    extra = {
        **TEST_NODE_ENV,
        "VTAX_SIGN_IN_CODE_PER_ADDRESS": str(PER_ADDRESS),
        "VTAX_LOGIN_ADDRESS_RATE": "0.001",
        "VTAX_LOGIN_ADDRESS_BURST": "2",
    }
    with Stack(tmp_path_factory.mktemp("stack"), nodes=1, recorders=0, extra_env=extra) as s:
        registry = s.dir / "registry.csv"
        registry.write_text(registry_csv([PERSON]), encoding="utf-8")
        s.cli("registry", "import", str(registry))
        s.cli("user", "add", "agent1", "--role", "agent", stdin="the-right-password\n")
        yield s


@pytest.fixture
async def client_from() -> AsyncIterator[Any]:
    sessions: list[aiohttp.ClientSession] = []

    def make(source: str) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
        sessions.append(http)
        return http

    yield make
    for http in sessions:
        await http.close()


async def ask_code(http: aiohttp.ClientSession, url: str, n: int, **headers: str) -> int:
    phone = f"+86139{n:08d}"  # a fresh number each time: only the address limit applies
    async with http.post(url + "/api/auth/sms/code", json={"phone": phone}, headers=headers) as r:
        body = await r.json()
        if r.status == 429:
            assert body["error"]["code"] == "rate_limited" and "address" in body["error"]["message"]
        return r.status


async def login(http: aiohttp.ClientSession, url: str, password: str) -> int:
    async with http.post(
        url + "/api/auth/login", json={"username": "agent1", "password": password}
    ) as r:
        await r.read()
        return r.status


async def test_two_clients_through_nginx_have_their_own_sms_limits(
    stack: Stack, client_from: Any
) -> None:
    a, b = client_from("127.0.1.1"), client_from("127.0.2.1")
    got = [await ask_code(a, stack.url, n) for n in range(PER_ADDRESS + 1)]
    assert got == [200] * PER_ADDRESS + [429], got
    # A names B's address in its own X-Forwarded-For: nginx appends the address it saw, the
    # node takes that, so A is still A (and B is not charged)
    assert await ask_code(a, stack.url, 100, **{"X-Forwarded-For": "127.0.2.1"}) == 429
    # B, behind the same nginx, is not locked out by A: it signs in all the way
    session = await sms_sign_in(
        b, stack.url, PERSON, lambda: logged_texts([stack.procs["node1"].log], PERSON.phone)
    )
    assert session["person"]["person_id"]
    got = [await ask_code(b, stack.url, 200 + n) for n in range(PER_ADDRESS)]
    assert got == [200] * (PER_ADDRESS - 1) + [429], got  # one went to the sign-in


async def test_two_clients_through_nginx_have_their_own_staff_sign_in_gate(
    stack: Stack, client_from: Any
) -> None:
    guesser, owner = client_from("127.0.3.1"), client_from("127.0.4.1")
    assert [await login(guesser, stack.url, "wrong") for _ in range(2)] == [401, 401]
    assert await login(guesser, stack.url, "the-right-password") == 429
    assert await login(owner, stack.url, "the-right-password") == 200
