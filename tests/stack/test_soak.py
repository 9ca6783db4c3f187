"""benchmarks/soak.py for one minute through the stack: every ticket, session record, summary,
rating, chat message and recording the simulated people made is accounted for at the end (the
ten-minute run is in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_a_minute_of_simulated_sessions_through_the_stack_reconciles(tmp_path: Path) -> None:
    # (skipped with the other stack tests where nginx, coturn or redis-server is missing)
    out = tmp_path / "soak.json"
    args = ["--minutes", "1", "--lanes", "8", "--hold", "5", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/soak.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.exists(), done.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["reconciled"], json.dumps(result, indent=1) + done.stderr[-4000:]
    counted = result["counted"]
    # Enough happened for the checks to mean something: served, abandoned and recorded visits,
    # on both nodes.
    assert counted["started"] >= 20 and counted.get("abandoned", 0) >= 1, counted
    assert counted.get("recorded", 0) >= 2 and result["manifests"] == counted["recorded"], result
    assert len([n for n, c in result["clients_per_node"].items() if c]) == 2, result
    assert done.returncode == 0
