"""Session-record write rate under live-like load, side by side for two or more trees.

    .venv/bin/python benchmarks/review_writes.py [--variant NAME=ROOT ...] [--seconds 10]
        [--concurrency 16] [--repeats 3] [--sessions-before 0]

Each variant is a checkout of this project (`ROOT`; default: this tree as `this`), run in its
own subprocess with `PYTHONPATH=ROOT`, on its own fresh PostgreSQL database migrated by that
tree's code (`vtax_writes_<name>`), with 60 agents and 5,000 taxpayers. A run is concurrent
full flows through `SessionRecords`, the calls the signaling layer makes: join -> offer ->
answer -> end -> summary -> rating, all on the same day, agents, categories and channel (so
per-day rows are shared, as in a busy hour). Where the tree has a KPI journal folder
(`vtax.review.rollup.Folder`), it runs during the flows, as on a node. Variants alternate
within each repeat; medians are reported. Not a test: run it by hand (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ADMIN = os.environ.get("VTAX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
CATEGORIES = ["registration", "invoices", "declaration_payment", "certificates"]
HERE = Path(__file__).resolve().parent.parent


async def run_flows(records: Any, agents: list[str], taxpayers: list[str], seconds: float,
                    concurrency: int, categories: list[str] = CATEGORIES) -> dict[str, Any]:  # fmt: skip
    """Full flows through `records` (a SessionRecords) for `seconds`; the rates. (Also run
    by tests/review/bench_review.py on its loaded database.)"""
    from vtax.review.audit import Actor

    counts = {"sessions": 0, "ratings": 0, "writes": 0}
    stop = time.monotonic() + seconds

    async def worker(k: int) -> None:
        rng = random.Random(k)
        while time.monotonic() < stop:
            sid, agent = str(uuid.uuid4()), rng.choice(agents)
            tp = rng.choice(taxpayers)
            now = datetime.now(UTC)
            await records.open(
                session_id=sid,
                ticket_id=str(uuid.uuid4()),
                taxpayer_id=tp,
                category=rng.choice(categories),
                language="zh-CN",
                channel="web",
                question="q",
                joined_at=now,
            )
            await records.offered(sid, agent, now)
            await records.answered(sid, agent, now)
            await records.ended(
                sid, datetime.now(UTC), "completed", "hangup", Actor("agent", agent)
            )
            await records.loop.save_summary(
                sid, agent, datetime.now(UTC), asked="q", handled="h", result="resolved", items=[]
            )
            await records.loop.rate(sid, tp, datetime.now(UTC), score=rng.randint(1, 5), comment="")
            counts["sessions"] += 1
            counts["ratings"] += 1
            counts["writes"] += 6

    t = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - t
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "sessions_per_s": round(counts["sessions"] / elapsed, 1),
        "ratings_per_s": round(counts["ratings"] / elapsed, 1),
        "record_writes_per_s": round(counts["writes"] / elapsed, 1),
    }


async def fresh_database(db: str) -> str:
    """Database `db` dropped and created again, migrated by the tree on PYTHONPATH; its URL."""
    import asyncpg

    from vtax.db import migrate

    admin = await asyncpg.connect(ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{db}"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
    await migrate(url)
    return url


async def _prepare(db: str) -> None:
    """A fresh database migrated by the tree on PYTHONPATH, with its people."""
    import asyncpg

    from vtax.accounts import Accounts
    from vtax.db import make_engine, session_factory

    url = await fresh_database(db)
    engine = make_engine(url)
    try:
        accounts = Accounts(session_factory(engine))
        for i in range(60):
            await accounts.add_user(f"agent{i:03}", "agent", "bench-password",
                                    skills=dict.fromkeys(CATEGORIES, 3), languages=["zh-CN"])  # fmt: skip
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}")
        try:
            await conn.copy_records_to_table(
                "taxpayers",
                records=[
                    (
                        str(uuid.uuid4()),
                        "resident_id",
                        f"T{i:017}",
                        f"Taxpayer {i}",
                        datetime.now(UTC),
                    )
                    for i in range(5000)
                ],
                columns=["id", "id_type", "id_number", "name", "created_at"],
            )
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def _child(db: str, seconds: float, concurrency: int, fold: bool) -> dict[str, Any]:
    import importlib

    import asyncpg

    from vtax.db import make_engine, session_factory
    from vtax.review.records import SessionRecords

    try:
        rollup: Any = importlib.import_module("vtax.review.rollup")
    except ImportError:  # a tree from before the rollup
        rollup = None

    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}")
    try:
        agents = [r["id"] for r in await conn.fetch("SELECT id FROM users WHERE role='agent'")]
        taxpayers = [r["id"] for r in await conn.fetch("SELECT id FROM taxpayers")]
    finally:
        await conn.close()
    engine = make_engine(url, pool_size=concurrency + 2, max_overflow=0)
    folder = rollup.Folder(engine) if hasattr(rollup, "Folder") else None  # (None has none)
    if folder is not None and not fold:  # fold only after the flows (the steps' own cost)
        folder = rollup.Folder(engine, interval_s=3600)
    if folder is not None:
        folder.start()
    try:
        out = await run_flows(SessionRecords(session_factory(engine)), agents, taxpayers,
                              seconds, concurrency)  # fmt: skip
    finally:
        if folder is not None:
            t = time.perf_counter()
            await folder.close()  # what is left to fold after the flows stop
            out["fold_after_s"] = round(time.perf_counter() - t, 2)
        await engine.dispose()
    out["folder"] = folder is not None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=ROOT")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fold-after", action="store_true",
                    help="no folding during the flows, only after (the steps' own cost)")  # fmt: skip
    ap.add_argument("--child", nargs=2, metavar=("MODE", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, db = args.child
        if mode == "prepare":
            asyncio.run(_prepare(db))
        else:
            result = _child(db, args.seconds, args.concurrency, not args.fold_after)
            print(json.dumps(asyncio.run(result)))
        return
    variants = dict(v.split("=", 1) for v in args.variant) or {"this": str(HERE)}
    for name in variants:
        if not name.isidentifier():
            ap.error(f"variant name {name!r}: letters, digits and _ only")

    def child(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        root = Path(variants[name]).resolve()
        env = dict(os.environ, PYTHONPATH=str(root))
        return subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), *extra,
             "--seconds", str(args.seconds), "--concurrency", str(args.concurrency),
             *(["--fold-after"] if args.fold_after else [])],
            env=env, cwd=root, capture_output=True, text=True, check=True,
        )  # fmt: skip

    results: dict[str, list[dict[str, Any]]] = {n: [] for n in variants}
    for r in range(args.repeats):
        for name in variants:
            child(name, "--child", "prepare", f"vtax_writes_{name}")  # fresh each repeat
            run = json.loads(child(name, "--child", "run", f"vtax_writes_{name}").stdout)
            results[name].append(run)
            print(f"repeat {r + 1} {name}: {json.dumps(run)}", flush=True)
    print("\n| variant | sessions/s (median) | runs |\n|---|---|---|")
    for name, runs in results.items():
        rates = [x["sessions_per_s"] for x in runs]
        print(f"| {name} | {statistics.median(rates):.1f} | {', '.join(map(str, rates))} |")


if __name__ == "__main__":
    main()
