"""What a test pays before it starts, the old way and the new, side by side (docs/benchmarks.md,
"Test suite"): a fresh database (migrated from nothing, or copied from a migrated template) on
SQLite and PostgreSQL, and a staff sign-in's argon2 work (a hash and a check) at the
production cost and at the tests' cost. Rounds alternate old and new, medians are printed.

    .venv/bin/python benchmarks/test_suite_parts.py [--rounds 7]

Needs the PostgreSQL of the tests (VTAX_TEST_PG_DSN); creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.databases import (
    create_pg_database,
    drop_pg_database,
    pg_url,
    unique_name,
)
from vtax.auth import Passwords
from vtax.db import migrate


async def timed(step: Awaitable[object]) -> float:
    """Seconds to run `step` (a coroutine starts when awaited: the timer starts first)."""
    started = time.perf_counter()
    await step
    return time.perf_counter() - started


async def main(rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vtax-bench-"))
    template_file = folder / "template.db"
    await migrate(f"sqlite+aiosqlite:///{template_file}")
    template = unique_name("bench_tpl")
    await create_pg_database(template)
    await migrate(pg_url(template))
    made: list[str] = []
    results: dict[str, list[float]] = {}

    def note(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)

    production, cheap = Passwords(), Passwords(1, 8, 1)
    try:
        for n in range(rounds):
            path = folder / f"fresh{n}.db"
            note(
                "sqlite: migrate a new file",
                await timed(migrate(f"sqlite+aiosqlite:///{path}")),
            )
            copy = folder / f"copy{n}.db"
            note(
                "sqlite: copy the migrated file",
                await timed(asyncio.to_thread(shutil.copyfile, template_file, copy)),
            )
            fresh = unique_name("bench")
            made.append(fresh)

            async def create_and_migrate(fresh: str = fresh) -> None:
                await create_pg_database(fresh)
                await migrate(pg_url(fresh))

            note("postgresql: create + migrate", await timed(create_and_migrate()))
            cloned = unique_name("bench")
            made.append(cloned)
            note(
                "postgresql: create from the template",
                await timed(create_pg_database(cloned, template)),
            )
            for label, pw in (("production", production), ("tests", cheap)):

                async def sign_in(pw: Passwords = pw) -> None:
                    stored = await pw.hash("a password")
                    await pw.verify(stored, "a password")

                note(f"argon2 hash + check, {label} cost", await timed(sign_in()))
    finally:
        for name in [*made, template]:
            await drop_pg_database(name)
        shutil.rmtree(folder)
    print(f"{rounds} rounds, medians (all runs in ms):")
    for name, values in results.items():
        runs = ", ".join(f"{v * 1000:.0f}" for v in values)
        print(f"  {name:40s} {statistics.median(values) * 1000:8.1f} ms   ({runs})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(parser.parse_args().rounds))
