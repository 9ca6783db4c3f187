"""Time from the taxpayer's "start" click to the first decoded video frame on both sides.

Runs the browser benchmark in tests/e2e (real server + headless Chromium, 5 calls) and prints
the runs and their median. Usage:

    python benchmarks/e2e_first_frame.py [--out timings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the timings JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "timings.json"
        env = dict(os.environ, VTAX_E2E_TIMINGS=str(out))
        cmd = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/e2e/test_browser_loop.py::test_first_frame_latency",
        ]  # fmt: skip
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        if rc != 0 or not out.exists():
            print(f"benchmark failed (pytest exit {rc})", file=sys.stderr)
            return rc or 1
        result = json.loads(out.read_text(encoding="utf-8"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
