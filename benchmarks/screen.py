"""What screen sharing adds to each side's uplink: outbound RTP bytes (payload + headers, from
`getStats`) of the agent's and the taxpayer's page over 5 s windows, without sharing and while
sharing (each side in turn), 3 rounds in one call; medians. Real server, headless Chromium,
the fake camera (640x360, 15 fps) and the fake 1280x720 screen of tests/e2e. Usage:

    python benchmarks/screen.py [--out screen.json]
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
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "screen.json"
        env = dict(os.environ, VTAX_SCREEN_BENCH_OUT=str(out))
        cmd = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
            "tests/e2e/test_screen.py::test_screen_share_uplink_benchmark",
        ]  # fmt: skip
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        if rc != 0 or not out.exists():
            print(f"benchmark failed (pytest exit {rc})", file=sys.stderr)
            return rc or 1
        result = json.loads(out.read_text(encoding="utf-8"))
    for side in result["sides"].values():
        side.pop("runs", None)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
