"""benchmarks/signaling_bench.py at a tiny size, so that the benchmark cannot rot unnoticed
(it did once: the node stopped taking minted taxpayer tokens and the benchmark failed at the
taxpayers' connect). Server (a)'s relay windows and its set-ups on one node and on two nodes
over Redis and PostgreSQL run, each with its taxpayers signed in by SMS code; the memory
phase (the same sign-in, then 11 s of settling and idling) is left out for time. The figures
themselves are docs/benchmarks.md's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.multinode, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_signaling_benchmark_relays_and_sets_up_sessions_at_a_tiny_size(
    tmp_path: Path,
) -> None:
    out = tmp_path / "signaling.json"
    args = ["--only", "a", "--pairs", "2", "--repeats", "1", "--duration", "1", "--warmup",
            "0.2", "--skip-memory", "--setup-lanes", "2", "--setup-duration", "1",
            "--out", str(out)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/signaling_bench.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and out.exists(), done.stderr[-6000:]
    result = json.loads(out.read_text())
    shown = json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1)[:6000]

    relay = result["relay"]["a"]["2"]
    assert relay["msg_per_s"] > 0 and relay["cpu_us_per_msg"] > 0, shown
    assert relay["rtt_p50_ms"] > 0, shown
    assert relay["ack_errors"] == relay["dead_pairs"] == relay["stalled_pairs"] == 0, shown

    setups = result["setups"]
    assert set(setups) == {"one_node_sqlite", "one_node_redis_pg", "two_nodes_redis_pg"}, shown
    for name, figures in setups.items():
        assert "error" not in figures, (name, shown)
        assert figures["completed"] >= 1 and figures["setups_per_s"] >= 0, (name, shown)
        assert not figures["errors"] and not figures["accept_failures"], (name, shown)
    assert "Traceback" not in done.stderr, done.stderr[-6000:]
