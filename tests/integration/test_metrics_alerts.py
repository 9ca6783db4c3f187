"""The alert rules (deploy/prometheus/alerts.yml) are valid, pass their own unit tests, and
name only metrics a real node exports."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import poll_until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool")


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # A TURN server that is not there: the node's probe fails, and says so on /metrics.
    return {"turn_urls": [f"turn:127.0.0.1:{closed_udp_port()}"], "turn_secret": "s3cret"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make stack-deps)")
@pytest.mark.parametrize("command", ["check rules alerts.yml", "test rules alerts_test.yml"])
def test_promtool(command: str) -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *command.split()], cwd=RULES.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


async def test_every_metric_the_rules_name_is_exported(server: Any) -> None:
    names = set(re.findall(r"\b(vtax_[a-z_]+)", RULES.read_text()))
    assert {"vtax_backend_up", "vtax_turn_probe_ok", "vtax_recording_backlog"} <= names

    async def exported() -> set[str] | None:
        async with server.http.get(server.url + "/metrics") as r:
            text = await r.text()
        found = set(re.findall(r"^# TYPE (vtax_[a-z_]+)", text, re.M))
        return found if "vtax_turn_probe_ok 0.0" in text else None

    found = await poll_until(exported, 10)
    assert names - found == set(), names - found
    async with server.http.get(server.url + "/metrics") as r:
        text = await r.text()
    assert 'vtax_backend_up{backend="database"} 1.0' in text
    assert "vtax_recording_backlog 0.0" in text
    assert re.search(r"^vtax_turn_probe_failures_total [1-9]", text, re.M), text
