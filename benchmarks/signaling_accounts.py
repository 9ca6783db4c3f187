"""Agents and registered people for the benchmarks (run as a subprocess, before the node).

Reads the node's settings from the environment (VTAX_DATABASE_URL or VTAX_DATA_DIR, and
VTAX_SECRET_KEY), expects a migrated database, creates N agents (skill invoices=5, language
zh-CN, the same as `python -m vtax user add NAME --role agent --skill invoices=5 --language
zh-CN`; a random password, hashed at the settings' cost) with signed staff tokens, and
imports M people into the registry, as the tax system's export would (`vtax registry
import`'s code, tests/signin.py's CSV). It prints JSON:

    {"agents": [token, ...], "people": [{"name", "document", "phone", "uscc"}, ...]}

There are no taxpayer tokens here: a node takes a taxpayer's token only from a sign-in, so the
benchmarks sign the people in by SMS code against the running node
(tests/signin.py `sign_in_people`). Person i's mobile ends in i's last four digits, so that
up to 10,000 people are told apart in the node's log, which masks the rest of the number.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.signin import TestPerson, registry_csv  # noqa: E402
from vtax.accounts import Accounts  # noqa: E402
from vtax.app.identity import today_in  # noqa: E402
from vtax.auth import Passwords, TokenIssuer  # noqa: E402
from vtax.config import Settings  # noqa: E402
from vtax.db import make_engine, session_factory  # noqa: E402
from vtax.identity import resident_id_check_char  # noqa: E402
from vtax.identity.importer import import_text  # noqa: E402

MAX_PEOPLE = 90_000


def resident_id(i: int) -> str:
    """A valid resident ID number, different for each i < 90,000."""
    first17 = f"{110101 + i // 1000:06d}19800101{i % 1000:03d}"
    return first17 + resident_id_check_char(first17)


def person(prefix: str, i: int) -> TestPerson:
    """Benchmark person i: a resident, their mobile ending in i's last four digits."""
    return TestPerson(
        f"{prefix} taxpayer {i}", resident_id(i), f"+86139{i // 10_000:04d}{i % 10_000:04d}"
    )


def people_of(answer: dict[str, Any]) -> list[TestPerson]:
    """The people of this script's JSON answer."""
    return [TestPerson(**p) for p in answer["people"]]


async def make(prefix: str, agents: int, people: int) -> dict[str, Any]:
    if people > MAX_PEOPLE:
        raise SystemExit(f"at most {MAX_PEOPLE} people")
    settings = Settings.from_env()
    issuer = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
    engine = make_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    accounts = Accounts(sessions, Passwords.from_settings(settings))
    out: dict[str, Any] = {"agents": [], "people": []}
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
        registered = [person(prefix, i) for i in range(people)]
        if registered:
            today = today_in(settings.service_timezone)()
            report = await import_text(sessions, registry_csv(registered), "csv", today)
            if report.errors:
                raise SystemExit(f"registry import: {[str(e) for e in report.errors[:3]]}")
        out["people"] = [dataclasses.asdict(p) for p in registered]
    finally:
        await engine.dispose()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--agents", type=int, default=0)
    parser.add_argument("--people", type=int, default=0, help="people to register")
    args = parser.parse_args()
    result = asyncio.run(make(args.prefix, args.agents, args.people))
    json.dump(result, sys.stdout)
