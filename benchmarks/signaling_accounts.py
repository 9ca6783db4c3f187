"""Accounts and tokens for benchmarks/signaling_bench.py (run as a subprocess).

Reads the node's settings from the environment (VTAX_DATABASE_URL or VTAX_DATA_DIR, and
VTAX_SECRET_KEY), expects a migrated database, creates N agents (skill invoices=5, language
zh-CN, the same as `python -m vtax user add NAME --role agent --skill invoices=5 --language
zh-CN`) and M taxpayers (valid resident ID numbers), and prints JSON with signed tokens:

    {"agents": [token, ...], "taxpayers": [token, ...], "idle": [token, ...]}

`--idle K` adds K taxpayer tokens for subjects that have no database row (enough to connect:
the node checks only the signature and the role of a taxpayer token).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vtax.accounts import Accounts  # noqa: E402
from vtax.auth import TokenIssuer  # noqa: E402
from vtax.config import Settings  # noqa: E402
from vtax.db import make_engine, session_factory  # noqa: E402
from vtax.identity import resident_id_check_char  # noqa: E402


def resident_id(i: int) -> str:
    """A valid resident ID number, different for each i < 90,000."""
    first17 = f"{110101 + i // 1000:06d}19800101{i % 1000:03d}"
    return first17 + resident_id_check_char(first17)


async def make(prefix: str, agents: int, taxpayers: int, idle: int) -> dict[str, list[str]]:
    settings = Settings.from_env()
    issuer = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
    engine = make_engine(settings.resolved_database_url)
    accounts = Accounts(session_factory(engine))
    out: dict[str, list[str]] = {"agents": [], "taxpayers": [], "idle": []}
    try:
        for i in range(agents):
            name = f"{prefix}-agent-{i}"
            staff = await accounts.add_user(
                name,
                "agent",
                secrets.token_urlsafe(12),
                display_name=name,
                skills={"invoices": 5},
                languages=["zh-CN"],
                replace=True,
            )
            out["agents"].append(issuer.issue(staff.id, "agent", name))
        for i in range(taxpayers):
            taxpayer_id = await accounts.taxpayer_for("resident_id", resident_id(i))
            out["taxpayers"].append(issuer.issue(taxpayer_id, "taxpayer"))
        for _ in range(idle):
            out["idle"].append(issuer.issue(f"idle-{uuid.uuid4()}", "taxpayer"))
    finally:
        await engine.dispose()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--agents", type=int, default=0)
    parser.add_argument("--taxpayers", type=int, default=0)
    parser.add_argument("--idle", type=int, default=0)
    args = parser.parse_args()
    result = asyncio.run(make(args.prefix, args.agents, args.taxpayers, args.idle))
    json.dump(result, sys.stdout)
