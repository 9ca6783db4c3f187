"""`vtax registry import PATH [--format csv|json]` and `vtax serve --demo`, as the operator
runs them: subprocesses over SQLite and PostgreSQL. The demo node imports the demo registry
and a taxpayer signs in by SMS with the code read from the node's own log."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "registry-demo.csv"


def vtax(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vtax", *args],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def env_for(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "VTAX_DATABASE_URL": database_url,
        "VTAX_DATA_DIR": str(tmp_path),
        "VTAX_SECRET_KEY": "c" * 40,
    }


async def test_registry_import(database_url: str, tmp_path: Path):
    env = env_for(database_url, tmp_path)
    if not database_url.startswith("sqlite"):  # the embedded default migrates by itself
        assert vtax(env, "migrate").returncode == 0
    done = vtax(env, "registry", "import", str(DEMO))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "5 rows: people 4 new, 0 updated; phones 4 new; enterprises 2 new, 0 updated; "
        "grants 4 new, 0 updated"
    )
    again = vtax(env, "registry", "import", str(DEMO))  # idempotent
    assert again.returncode == 0 and "people 0 new" in again.stdout, again.stdout

    # JSON, by --format whatever the suffix
    rows = [
        {
            "name": "Li Si",
            "document_type": "passport",
            "document_number": "GBR:1234567897",
            "phones": ["+8613900139001"],
        }
    ]
    export = tmp_path / "export.txt"
    export.write_text(json.dumps({"rows": rows}))
    done = vtax(env, "registry", "import", str(export), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "phones 1 new" in done.stdout

    # a bad row: nothing imported, the line named, exit status 1
    bad = tmp_path / "bad.csv"
    lines = DEMO.read_text().splitlines()
    lines.append("Bad Person,resident_id,110105194912310021,+8613800138999,,,,,,,,")
    bad.write_text("\n".join(lines) + "\n")
    done = vtax(env, "registry", "import", str(bad))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("not imported: 1 error(s)")
    assert "line 7" in done.stderr, done.stderr
    assert vtax(env, "registry", "import", str(tmp_path / "none.csv")).returncode == 2
    wrong = vtax(env, "registry", "import", str(DEMO), "--format", "xml")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


async def read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), 30)).decode()
        assert line, f"the node stopped; it printed {seen}"
        seen.append(line)
        if re.search(pattern, line):
            return line


async def test_serve_demo_signs_a_taxpayer_in_by_the_code_in_its_log(tmp_path: Path):
    env = dict(
        os.environ,
        **env_for(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}", tmp_path),
        VTAX_RECORDER_AUTOSTART="false",  # no recorder worker for this test
    )
    node = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vtax",
        "serve",
        "--demo",
        "--port",
        "0",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert node.stdout is not None and node.stderr is not None
    out: list[str] = []
    log: list[str] = []
    try:
        first = await read_until(node.stdout, r"listening on", out)
        base = re.search(r"(http://\S+)", first)
        assert base is not None
        url = base.group(1).replace("localhost", "127.0.0.1")
        await read_until(node.stdout, r"sign in with \+86 138 0013 8000: the code appears", out)
        assert any("demo registry: 5 rows" in line for line in out), out
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/api/auth/sms/code", json={"phone": "+86 138 0013 8000"}
            ) as r:
                assert r.status == 200, await r.text()
            line = await read_until(node.stderr, r"SMS to \+86138\*\*\*\*8000", log)
            code = re.search(r"\b(\d{6})\b", line)
            assert code is not None, line
            async with http.post(
                f"{url}/api/auth/sms/verify",
                json={"phone": "+8613800138000", "code": code.group(1)},
            ) as r:
                session: Any = await r.json()
                assert r.status == 200, session
        assert session["person"]["name"] == "王芳 Wang Fang"
        assert len(session["options"]) == 2
    finally:
        node.terminate()
        await asyncio.wait_for(node.wait(), 30)
