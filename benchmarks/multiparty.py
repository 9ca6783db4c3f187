"""What a call of three costs each side's uplink with the mesh (one peer connection per other
person, docs/architecture.md) against a call of two: RTP bytes sent (getStats `outbound-rtp`,
payload + headers) over 6 s on each page, after 8 s of ramp-up, in real headless Chromium
against a real server (tests/e2e/test_multiparty.py with VTAX_MP_BENCH set).

    python benchmarks/multiparty.py [--runs 3] [--out figures.json]

Prints each run and the medians per side and call size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the figures JSON here")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            out = Path(tmp) / f"run{i}.json"
            env = dict(os.environ, VTAX_MP_BENCH=str(out))
            cmd = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                "-n", "0", "tests/e2e/test_multiparty.py",
            ]  # fmt: skip
            rc = subprocess.call(cmd, cwd=ROOT, env=env)
            if not out.exists():
                print(f"run {i} measured nothing (pytest exit {rc})", file=sys.stderr)
                continue
            runs.append(json.loads(out.read_text(encoding="utf-8")))
    if not runs:
        return 1
    medians: dict[str, dict[str, float]] = {}
    for size in ("two_party", "three_party_mesh"):
        medians[size] = {
            side: statistics.median(r[size][side]["kbps"] for r in runs) for side in runs[0][size]
        }
    result = {"runs": runs, "median_kbps": medians}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
