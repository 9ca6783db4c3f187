"""The stack (deploy/stack.py) for a module of tests, and Chromium pages that reach it through
nginx with ICE limited to relay candidates (every RTCPeerConnection of the page is made with
`iceTransportPolicy: "relay"` by an init script: the pages themselves are unchanged)."""

from __future__ import annotations

import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import pytest
import pytest_asyncio

from deploy.stack import Stack
from tests.conftest import TEST_NODE_ENV
from tests.e2e.conftest import (
    AGENT_LANGUAGES,
    CHROMIUM,
    E2E,
    E2E_IDENTITIES,
    Chromium,
    Server,
    catalog_categories,
    harness_on,
)
from tests.signin import person_for, registry_csv

MISSING = [p for p in ("nginx", "turnserver", "redis-server") if shutil.which(p) is None]
if not CHROMIUM.exists():
    MISSING.append(str(CHROMIUM))

#: Forces relay on every RTCPeerConnection the page makes (the call's and the recorder's).
RELAY_ONLY_JS = """
(() => {
  const Native = window.RTCPeerConnection;
  class RelayOnly extends Native {
    constructor(config, ...rest) {
      super({...(config || {}), iceTransportPolicy: 'relay'}, ...rest);
    }
  }
  window.RTCPeerConnection = RelayOnly;
})();
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"missing {MISSING} (make stack-deps chromium)")
    for item in items:
        if "stack" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if MISSING:
        pytest.skip(f"missing {MISSING}")
    extra = {
        **TEST_NODE_ENV,  # the tests' sign-in code limits and cheap passwords
        "VTAX_VALIDATE_OUTGOING": "true",
        "VTAX_WRAPUP_S": "0",
        "VTAX_NODE_TIMEOUT_S": "3",
        "VTAX_DRAIN_TIMEOUT_S": "2",
    }
    with Stack(tmp_path_factory.mktemp("stack"), nodes=2, recorders=1, extra_env=extra) as s:
        try:
            yield s
        finally:
            for name, proc in s.procs.items():  # shown by pytest when a test failed
                print(f"--- {name}\n{proc.tail(3000)}", file=sys.stderr)


class RelayE2E(E2E):
    """The e2e harness, its pages reaching the stack through nginx, relay-only ICE."""

    init_script: ClassVar[str | None] = RELAY_ONLY_JS


@pytest.fixture(scope="module")
def stack_server(stack: Stack) -> Server:
    """Staff accounts in the stack's database, and the e2e harness's view of the stack."""
    categories = catalog_categories()
    agent = ("agent1", secrets.token_urlsafe(12))
    supervisor = ("sup1", secrets.token_urlsafe(12))
    skills = [a for c in categories for a in ("--skill", f"{c}=5")]
    langs = [a for lang in AGENT_LANGUAGES for a in ("--language", lang)]
    stack.cli("user", "add", agent[0], "--role", "agent", *skills, *langs, stdin=agent[1] + "\n")
    stack.cli("user", "add", supervisor[0], "--role", "supervisor", stdin=supervisor[1] + "\n")
    # the people the pages sign in as (tests/signin.py), in the stack's registry; their codes
    # are read from the nodes' logs (the log sender)
    registry = stack.dir / "registry.csv"
    registry.write_text(
        registry_csv([person_for(n, t) for n, t in E2E_IDENTITIES]), encoding="utf-8"
    )
    stack.cli("registry", "import", str(registry))
    nginx = stack.procs["nginx"]
    assert nginx.proc is not None
    logs = [proc.log for name, proc in stack.procs.items() if name.startswith("node")]
    return Server(
        stack.url, stack.node_env, nginx.proc, nginx.log, categories, agent, supervisor,
        sms_logs=logs,
    )  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")
async def relay_e2e(stack_server: Server, chromium: Chromium) -> AsyncIterator[E2E]:
    """The harness on the run's one Chromium (tests/e2e/conftest.py: `chromium`)."""
    async with harness_on(chromium, stack_server, RelayE2E) as harness:
        yield harness
