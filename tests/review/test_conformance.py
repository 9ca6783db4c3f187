"""The live OpenAPI document, fuzzed by Schemathesis with every check on (status codes,
content types, response schemas and headers, negative and positive data, `Allow` on 405,
ignored auth, ...) as each role, against a real node with sessions and a delivery in it.
What JSON Schema cannot express is allowed in tests/review/schemathesis.toml, one rule per
operation. It must find nothing."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.review.helpers import PDF, call, people, served

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_schemathesis_finds_nothing(server, cast, tmp_path):
    p = await people(server, cast)
    records = server.ctx.records
    sid = await served(records, p.taxpayer_id, p.agent_id)
    await served(records, p.taxpayer_id, None)
    status, _ = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries?filename=a.pdf", p.agent, data=PDF
    )
    assert status == 201
    reports = []
    for role, token in (("supervisor", p.supervisor), ("agent", p.agent), ("taxpayer", p.taxpayer)):
        report = tmp_path / f"{role}.txt"
        process = await asyncio.create_subprocess_exec(
            str(ST), "--config-file", str(CONFIG), "run", f"{server.url}/api/openapi.json",
            "--checks", "all", "--header", f"Authorization: Bearer {token}",
            "--max-examples", "12", "--seed", "7", "--no-color", "--workers", "1",
            "--request-timeout", "20", "--warnings", "off",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
            cwd=tmp_path,  # its example database and cassettes stay out of the tree
        )  # fmt: skip
        out, _ = await process.communicate()
        report.write_bytes(out)
        reports.append((role, process.returncode, out.decode(errors="replace")))
    failed = [(role, text[-6000:]) for role, code, text in reports if code != 0]
    assert failed == [], failed
