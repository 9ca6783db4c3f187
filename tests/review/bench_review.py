"""Review-module benchmark on PostgreSQL (not a test: run it by hand).

    .venv/bin/python -m tests.review.bench_review [--sessions 1000000] [--reps 60]

1. Bulk-loads N sessions with summaries, ratings, audit events and agent state history into
   a fresh database (`vtax_bench`) with COPY, and reports the rates; then fills the per-day
   KPI rollup from the session rows in SQL (`vtax.review.rollup.rebuild`, the code of
   `vtax kpi rebuild`) and reports its time.
2. Starts `vtax serve` on that database pinned to core 0, and times every supervisor list,
   filter, detail and KPI query through the REST API from core 1 (p50 / p95 / p99).
3. Measures the rate of session records and ratings written per second under live-like load
   (concurrent join -> offer -> answer -> end -> summary -> rating flows through
   `SessionRecords`, the calls the signaling layer makes), on the loaded database.

Results go to stdout as a Markdown table (docs/review.md quotes them).

    --skip-load      reuse the loaded `vtax_bench` database
    --skip-queries   only the live writes (e.g. to compare two versions of the code)
    --live-seconds   how long the live writes run (default 10)
    --live-concurrency  concurrent flows of the live writes (default 16)
    --variant NAME=ROOT  time the queries through one server per checkout ROOT of this
                     project (PYTHONPATH=ROOT), side by side: the servers take turns request by
                     request (e.g. `--variant before=/tmp/base --variant after=.`); repeatable
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from benchmarks.review_writes import fresh_database
from benchmarks.signaling_bench import CLIENT_CORE, Server, start_vtax
from vtax.accounts import Accounts
from vtax.db import make_engine, session_factory
from vtax.review.days import DEFAULT_ZONE, day_of, split_by_day, zone_of
from vtax.review.records import SessionRecords

ROOT = Path(__file__).resolve().parents[2]  # this checkout
DB = "vtax_bench"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"
DSN = f"postgresql://postgres@127.0.0.1:5432/{DB}"
CATEGORIES = [
    "registration",
    "invoices",
    "declaration_payment",
    "tax_incentives",
    "certificates",
    "social_insurance",
    "non_tax_revenue",
    "cross_border",
]
CHANNELS = ["web", "mobile", "kiosk"]
LANGUAGES = ["zh-CN", "yue", "en", "pt"]
START = datetime(2025, 11, 1, tzinfo=UTC)
ZONE = zone_of(DEFAULT_ZONE)  # the days the service keeps (docs/review.md, Days)
DAYS = 365
AGENTS = 60


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


async def load(n: int, seed: int = 7) -> dict[str, Any]:
    """Generate and COPY; returns row counts and timings."""
    rng = random.Random(seed)
    engine = make_engine(URL)
    accounts = Accounts(session_factory(engine))
    agents = [
        (
            await accounts.add_user(
                f"agent{i:03}",
                "agent",
                "bench-password",
                display_name=f"Agent {i}",
                skills=dict.fromkeys(CATEGORIES, 3),
                languages=LANGUAGES,
            )
        ).id
        for i in range(AGENTS)
    ]
    await accounts.add_user("boss", "supervisor", "bench-password", display_name="Boss")
    await engine.dispose()
    t0 = time.perf_counter()
    taxpayers = [uid(rng) for _ in range(max(n // 5, 10))]
    tp_rows = [
        (t, "resident_id", f"{i:018d}"[-18:], f"Taxpayer {i}", START)
        for i, t in enumerate(taxpayers)
    ]
    sessions: list[tuple[Any, ...]] = []
    summaries: list[tuple[Any, ...]] = []
    ratings: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    states: list[tuple[Any, ...]] = []
    per_day = n / DAYS
    last_end: dict[str, datetime] = {}
    for i in range(n):
        day = int(i / per_day)
        # 08:00-18:00 in Asia/Shanghai (00:00-10:00 UTC): each day's sessions on its zone day
        joined = START + timedelta(days=day, seconds=rng.random() * 10 * 3600)
        sid, tp = uid(rng), rng.choice(taxpayers)
        cat, ch, lang = rng.choice(CATEGORIES), rng.choice(CHANNELS), rng.choice(LANGUAGES)
        wait = rng.expovariate(1 / 25)
        abandoned = rng.random() < 0.12
        agent = None if abandoned else rng.choice(agents)
        answered = ended = None
        outcome, reason = "abandoned", "left"
        talk = wrap = None
        if agent is not None:
            answered = joined + timedelta(seconds=wait)
            talk = 60 + rng.expovariate(1 / 300)
            ended = answered + timedelta(seconds=talk)
            wrap = rng.uniform(5, 40)
            r = rng.random()
            outcome = "completed" if r < 0.9 else ("dropped" if r < 0.97 else "transferred")
            reason = "hangup" if outcome == "completed" else outcome
        else:
            ended = joined + timedelta(seconds=wait)
        score = None
        if agent is not None and rng.random() < 0.6:
            score = rng.choices([1, 2, 3, 4, 5], [5, 5, 10, 30, 50])[0]
        result = None
        if agent is not None and rng.random() < 0.95:
            result = rng.choices(["resolved", "follow_up", "transferred"], [80, 15, 5])[0]
        flagged = score is not None and score <= 2
        check = (
            rng.choice(["pending", "confirmed", "confirmed", "confirmed"]) if result else "pending"
        )
        sessions.append(
            (
                sid,
                uid(rng),
                tp,
                agent,
                cat,
                lang,
                ch,
                "How do I file my quarterly VAT return?",
                joined,
                joined + timedelta(seconds=1) if agent else None,
                answered,
                ended,
                outcome,
                reason,
                day_of(joined, ZONE),
                round(wait * 1000),
                None if talk is None else round(talk * 1000),
                None if wrap is None else round(wrap * 1000),
                None,
                check,
                "open" if result == "follow_up" else "none",
                None,
                None,
                "open" if flagged else "none",
                json.dumps(["low_rating"] if flagged else []),
                None,
                None,
                None,
                score,
                result,
                rng.random() < 0.1,
                cat,
            )
        )
        ev: list[tuple[str, datetime, str, str | None, str, str]] = [
            (sid, joined, "taxpayer", tp, "joined", "{}")
        ]
        if agent is not None:
            assert answered is not None and ended is not None
            ev += [
                (sid, joined + timedelta(seconds=1), "system", None, "offered", "{}"),
                (sid, answered, "agent", agent, "answered", "{}"),
                (sid, ended, "agent", agent, "ended", json.dumps({"outcome": outcome})),
            ]
            states += [
                (agent, "reserved", "", joined + timedelta(seconds=1)),
                (agent, "busy", "", answered),
                (agent, "wrap_up", "", ended),
                (agent, "available", "", ended + timedelta(seconds=wrap or 0)),
            ]
            last_end[agent] = ended
            if result:
                at = ended + timedelta(seconds=30)
                summaries.append(
                    (sid, agent, "q", "handled", result, "[]", at, None, "[]", None, 1)
                )
                ev.append((sid, at, "agent", agent, "summary_saved", "{}"))
            if score is not None:
                at = ended + timedelta(seconds=60)
                ratings.append((sid, score, "", at, None, None, None, None))
                ev.append((sid, at, "taxpayer", tp, "rated", "{}"))
        else:
            ev.append((sid, ended, "system", None, "abandoned", "{}"))
        events += ev
    # the daily totals and current states that AgentStateHistory.record keeps
    states.sort(key=lambda r: (r[0], r[3]))
    totals: dict[tuple[str, str, str], int] = {}
    current: dict[str, tuple[str, datetime]] = {}
    for agent, status, _, at in states:
        if agent in current:
            prev, since = current[agent]
            for on, ms in split_by_day(since, at, ZONE):
                totals[(agent, on, prev)] = totals.get((agent, on, prev), 0) + ms
        current[agent] = (status, at)
    day_rows = [(a, d, st, ms) for (a, d, st), ms in totals.items()]
    current_rows = [(a, st, since) for a, (st, since) in current.items()]
    gen_s = time.perf_counter() - t0
    conn = await asyncpg.connect(DSN)
    timings: dict[str, Any] = {"generate_s": round(gen_s, 1)}
    try:
        for table, rows, columns in [
            ("taxpayers", tp_rows, ["id", "id_type", "id_number", "name", "created_at"]),
            (
                "service_sessions",
                sessions,
                [
                    "id",
                    "ticket_id",
                    "taxpayer_id",
                    "agent_id",
                    "category",
                    "language",
                    "channel",
                    "question",
                    "joined_at",
                    "offered_at",
                    "answered_at",
                    "ended_at",
                    "outcome",
                    "end_reason",
                    "joined_day",
                    "wait_ms",
                    "talk_ms",
                    "wrap_ms",
                    "recording_url",
                    "check_status",
                    "follow_up_status",
                    "follow_up_due",
                    "follow_up_done_at",
                    "flag",
                    "flag_reasons",
                    "flag_done_at",
                    "flag_done_by",
                    "flag_note",
                    "rating_score",
                    "summary_result",
                    "recontacted",
                    "final_category",  # the summaries refine no category here
                ],
            ),
            (
                "session_summaries",
                summaries,
                [
                    "session_id",
                    "agent_id",
                    "asked",
                    "handled",
                    "result",
                    "items",
                    "saved_at",
                    "category",
                    "actions",
                    "follow_up_due",
                    "version",
                ],
            ),
            (
                "session_ratings",
                ratings,
                [
                    "session_id",
                    "score",
                    "comment",
                    "rated_at",
                    "professionalism",
                    "attitude",
                    "efficiency",
                    "av_quality",
                ],
            ),
            (
                "session_events",
                events,
                ["session_id", "at", "actor_role", "actor_id", "kind", "data"],
            ),
            ("agent_state_changes", states, ["agent_id", "status", "reason", "at"]),
            ("agent_state_days", day_rows, ["agent_id", "day", "status", "ms"]),
            ("agent_current_states", current_rows, ["agent_id", "status", "since"]),
        ]:
            t = time.perf_counter()
            await conn.copy_records_to_table(table, records=rows, columns=columns)
            s = time.perf_counter() - t
            timings[table] = {
                "rows": len(rows),
                "s": round(s, 1),
                "rows_per_s": round(len(rows) / s),
            }
        from vtax.review.rollup import rebuild  # (imported here: --skip-queries runs on
        # older code too, to compare the live write rate)

        t = time.perf_counter()
        engine = make_engine(URL)
        try:
            async with engine.begin() as sa_conn:
                counts = await rebuild(sa_conn)
        finally:
            await engine.dispose()
        timings["kpi_rollup_backfill"] = {**counts, "s": round(time.perf_counter() - t, 1)}
        t = time.perf_counter()
        await conn.execute("ANALYZE")
        timings["analyze_s"] = round(time.perf_counter() - t, 1)
        timings["db_size"] = await conn.fetchval(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        )
    finally:
        await conn.close()
    return timings


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q * (len(values) - 1))))
    return values[k]


async def time_queries(
    bases: dict[str, str], reps: int, rng: random.Random
) -> list[tuple[str, ...]]:
    """p50 / p95 / p99 of each query through each server in `bases` (variant: URL); the
    servers take turns request by request, so a noisy moment hits them all alike."""
    base = next(iter(bases.values()))  # log-ins and the cursor: tokens are valid on all
    conn = await asyncpg.connect(DSN)
    try:
        sample = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM service_sessions TABLESAMPLE SYSTEM (1) LIMIT 2000"
            )
        ]
        agent = await conn.fetchval("SELECT id FROM users WHERE username = 'agent007'")
        # the last loaded day (not max(joined_day): live writes of an earlier run add today)
        last_day = await conn.fetchval(
            "SELECT max(joined_day) FROM service_sessions WHERE joined_day < $1",
            (START + timedelta(days=DAYS)).date().isoformat(),
        )
        taxpayer = await conn.fetchval(
            "SELECT taxpayer_id FROM service_sessions GROUP BY taxpayer_id LIMIT 1"
        )
    finally:
        await conn.close()
    day = date.fromisoformat(last_day)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base + "/api/auth/login", json={"username": "boss", "password": "bench-password"}
        ) as r:
            sup = (await r.json())["token"]
        async with http.post(
            base + "/api/auth/login", json={"username": "agent007", "password": "bench-password"}
        ) as r:
            agent_token = (await r.json())["token"]
        issued: dict[str, str] = {}
        # a taxpayer token for an existing taxpayer id: the server signs with the bench key
        from vtax.auth import TokenIssuer

        issued["taxpayer"] = TokenIssuer(BENCH_KEY, 3600).issue(taxpayer, "taxpayer")
        d1 = day.isoformat()
        d7 = (day - timedelta(days=6)).isoformat()
        d30 = (day - timedelta(days=29)).isoformat()
        d366 = (day - timedelta(days=365)).isoformat()
        kpi = "/api/stats/kpi?"
        cases: list[tuple[str, str, Any]] = [
            ("list: newest page", sup, "/api/sessions?limit=50"),
            ("list: page 2 (cursor)", sup, "CURSOR"),
            ("list: oldest first", sup, "/api/sessions?limit=50&sort=oldest"),
            ("filter: one day", sup, f"/api/sessions?from={d1}&to={d1}"),
            ("filter: agent", sup, f"/api/sessions?agent={agent}"),
            ("filter: agent + 7 days", sup, f"/api/sessions?agent={agent}&from={d7}&to={d1}"),
            ("filter: category", sup, "/api/sessions?category=cross_border"),
            ("filter: channel kiosk", sup, "/api/sessions?channel=kiosk"),
            ("filter: language pt", sup, "/api/sessions?language=pt"),
            ("filter: rating = 1", sup, "/api/sessions?rating=1"),
            ("filter: max_rating 2 + 30 days", sup, f"/api/sessions?max_rating=2&from={d30}"),
            ("filter: flag open", sup, "/api/sessions?flag=open"),
            ("filter: outcome transferred", sup, "/api/sessions?outcome=transferred"),
            (
                "filter: kiosk + yue + rating 1",
                sup,
                "/api/sessions?channel=kiosk&language=yue&rating=1",
            ),
            ("filter: follow-up open + agent", sup, f"/api/sessions?follow_up=open&agent={agent}"),
            ("agent: own sessions", agent_token, "/api/sessions?limit=50"),
            ("taxpayer: own sessions", issued["taxpayer"], "/api/sessions?limit=50"),
            ("detail: session", sup, "DETAIL"),
            ("detail: whole loop + audit", sup, "REVIEW"),
            *(
                (f"kpi: {n} by {g}{label}", sup, f"{kpi}from={d}&to={d1}&group_by={g}{extra}")
                for n, d in (("1 day", d1), ("7 days", d7), ("30 days", d30), ("366 days", d366))
                for g, label, extra in (
                    ("day", "", ""),
                    ("agent", "", ""),
                    ("category", "", ""),
                    ("channel", "", ""),
                )
            ),
            ("kpi: 366 days by day, language pt", sup, f"{kpi}from={d366}&group_by=day&to={d1}"
             "&language=pt"),
            ("kpi: 366 days by day, agent", sup, f"{kpi}from={d366}&to={d1}&agent={agent}"),
            ("kpi: 366 days by channel, kiosk", sup, f"{kpi}from={d366}&to={d1}&group_by=channel"
             "&channel=kiosk"),
            ("kpi: 366 days by day, T=25", sup, f"{kpi}from={d366}&to={d1}&threshold_s=25"),
            ("kpi: 366 days by category, T=25", sup, f"{kpi}from={d366}&to={d1}"
             "&group_by=category&threshold_s=25"),
            ("kpi: 366 days by agent, T=25", sup, f"{kpi}from={d366}&to={d1}&group_by=agent"
             "&threshold_s=25"),
            ("kpi: 366 days by agent, T=3599", sup, f"{kpi}from={d366}&to={d1}&group_by=agent"
             "&threshold_s=3599"),
            ("kpi: 366 days by agent, T=25, category", sup, f"{kpi}from={d366}&to={d1}"
             "&group_by=agent&threshold_s=25&category=cross_border"),
            ("kpi: 7 days by agent, category", sup, f"{kpi}from={d7}&to={d1}"
             "&group_by=agent&category=cross_border"),
            ("kpi: 30 days by day, kiosk + pt", sup, f"{kpi}from={d30}&to={d1}"
             "&channel=kiosk&language=pt"),
            ("kpi: 366 days by agent, category", sup, f"{kpi}from={d366}&to={d1}"
             "&group_by=agent&category=cross_border"),
            ("kpi: 366 days by agent, kiosk", sup, f"{kpi}from={d366}&to={d1}"
             "&group_by=agent&channel=kiosk"),
            ("kpi: 366 days by channel, category", sup, f"{kpi}from={d366}&to={d1}"
             "&group_by=channel&category=cross_border"),
            ("kpi: 366 days by day, agent + category", sup, f"{kpi}from={d366}&to={d1}"
             f"&agent={agent}&category=cross_border"),
            ("kpi: 366 days by day, agent + kiosk, T=25", sup, f"{kpi}from={d366}&to={d1}"
             f"&agent={agent}&channel=kiosk&threshold_s=25"),
            ("kpi: 366 days by category, kiosk + pt + agent", sup, f"{kpi}from={d366}&to={d1}"
             f"&group_by=category&channel=kiosk&language=pt&agent={agent}"),
        ]  # fmt: skip
        out = []
        for label, token, path in cases:
            headers = {"Authorization": f"Bearer {token}"}
            if path == "CURSOR":
                async with http.get(base + "/api/sessions?limit=50", headers=headers) as r:
                    cursor = (await r.json())["next_before"]
                path = f"/api/sessions?limit=50&before={cursor}"
            times: dict[str, list[float]] = {name: [] for name in bases}
            for i in range(reps + 3):
                p = path
                if path == "DETAIL":
                    p = f"/api/sessions/{rng.choice(sample)}"
                elif path == "REVIEW":
                    p = f"/api/review/sessions/{rng.choice(sample)}"
                for name, url in bases.items():
                    t = time.perf_counter()
                    async with http.get(url + p, headers=headers) as r:
                        await r.read()
                        assert r.status == 200, (label, name, r.status, await r.text())
                    if i >= 3:  # warm-up
                        times[name].append((time.perf_counter() - t) * 1000)
            row = [label]
            for values in times.values():
                row += [
                    f"{statistics.median(values):.1f}",
                    f"{percentile(values, 0.95):.1f}",
                    f"{percentile(values, 0.99):.1f}",
                ]
            out.append(tuple(row))
            print(out[-1], flush=True)
        t = time.perf_counter()
        async with http.get(
            base + f"/api/review/export.csv?from={d7}&to={d1}",
            headers={"Authorization": f"Bearer {sup}"},
        ) as r:
            body = await r.read()
            assert r.status == 200, r.status
        rows = body.count(b"\n") - 1
        s = time.perf_counter() - t
        out.append(
            (
                "export: 7 days CSV",
                f"{rows} rows in {s * 1000:.0f} ms",
                f"{rows / s:.0f} rows/s",
                *[""] * (3 * len(bases) - 2),
            )
        )
    return out


async def rollup_vs_raw() -> list[tuple[str, ...]]:
    """The rollup's figures equal the raw aggregation on the loaded database; in-process
    times of both (no HTTP), one run each."""
    from vtax.review.kpi import KpiQuery, KpiReport, rollup_plan

    engine = make_engine(URL)
    kpis = KpiReport(session_factory(engine))
    conn = await asyncpg.connect(DSN)
    try:
        last = date.fromisoformat(
            await conn.fetchval(
                "SELECT max(joined_day) FROM service_sessions WHERE joined_day < $1",
                (START + timedelta(days=DAYS)).date().isoformat(),
            )
        )
        agent = await conn.fetchval("SELECT id FROM users WHERE username = 'agent007'")
    finally:
        await conn.close()
    first = last - timedelta(days=365)
    now = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    out: list[tuple[str, ...]] = []
    try:
        for label, q in [
            ("366 days by day", KpiQuery(first, last, "day")),
            ("366 days by agent", KpiQuery(first, last, "agent")),
            ("366 days by channel, T=25", KpiQuery(first, last, "channel", 25)),
            ("366 days by category, T=3599", KpiQuery(first, last, "category", 3599)),
            ("366 days by day, agent", KpiQuery(first, last, "day", agent_id=agent)),
            ("30 days by agent, T=7", KpiQuery(last - timedelta(days=29), last, "agent", 7)),
            (
                "366 days by agent, category",
                KpiQuery(first, last, "agent", category="cross_border"),
            ),
            (
                "366 days by channel, T=25, category",
                KpiQuery(first, last, "channel", 25, category="cross_border"),
            ),
            (
                "30 days by day, kiosk + pt",
                KpiQuery(last - timedelta(days=29), last, "day", channel="kiosk", language="pt"),
            ),
        ]:
            assert rollup_plan(q) is not None
            t = time.perf_counter()
            raw = await kpis.report(q, now, source="raw")
            raw_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            served = await kpis.report(q, now, source="rollup")
            rollup_ms = (time.perf_counter() - t) * 1000
            assert served == raw, label
            out.append((label, f"{raw_ms:.0f}", f"{rollup_ms:.1f}", "identical"))
            print(out[-1], flush=True)
    finally:
        await engine.dispose()
    return out


async def live_writes(seconds: float, concurrency: int) -> dict[str, Any]:
    """Full flows through SessionRecords (benchmarks/review_writes.py), with the node's KPI
    folder running: the session-record and rating write rate."""
    from benchmarks.review_writes import run_flows
    from vtax.review.rollup import Folder

    engine = make_engine(URL, pool_size=concurrency + 2, max_overflow=0)
    conn = await asyncpg.connect(DSN)
    try:
        agents = [r["id"] for r in await conn.fetch("SELECT id FROM users WHERE role='agent'")]
        taxpayers = [r["id"] for r in await conn.fetch("SELECT id FROM taxpayers LIMIT 5000")]
    finally:
        await conn.close()
    folder = Folder(engine)
    folder.start()
    try:
        records = SessionRecords(session_factory(engine))
        return await run_flows(records, agents, taxpayers, seconds, concurrency, CATEGORIES)
    finally:
        await folder.close()
        await engine.dispose()


BENCH_KEY = "bench-" + secrets.token_hex(24)


PCTS = ("p50", "p95", "p99")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--live-seconds", type=float, default=10)
    ap.add_argument("--live-concurrency", type=int, default=16)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=ROOT")
    args = ap.parse_args()
    args.variants = {"this": ROOT}
    if args.variant:
        args.variants = dict(v.split("=", 1) for v in args.variant)
        for name, root in args.variants.items():
            if not name.isidentifier() or not os.path.isdir(os.path.join(root, "vtax")):
                ap.error(f"--variant {name}={root}: NAME=ROOT, ROOT a checkout of this project")
            args.variants[name] = Path(root).resolve()
    return args


async def main(args: argparse.Namespace) -> None:
    if not args.skip_load:
        await fresh_database(DB)
        print("load:", json.dumps(await load(args.sessions), indent=1), flush=True)
    if args.skip_queries:
        print(
            "live writes:",
            json.dumps(await live_writes(args.live_seconds, args.live_concurrency)),
            flush=True,
        )
        return
    print("\n| KPI query (in process) | raw ms | rollup ms | figures |\n|---|---|---|---|")
    for row in await rollup_vs_raw():
        print("| " + " | ".join(row) + " |")
    env = dict(
        os.environ,
        VTAX_DATABASE_URL=URL,
        VTAX_SECRET_KEY=BENCH_KEY,
        VTAX_DATA_DIR="/tmp/vtax-bench",
        VTAX_DOCUMENTS_DIR="/tmp/vtax-bench/documents",
        VTAX_RECORDER_AUTOSTART="false",
    )
    servers: list[Server] = []
    try:
        for name, root in args.variants.items():  # pinned to core 0, PYTHONPATH=root
            servers.append(await start_vtax(name, Path("/tmp/vtax-bench"), env, root))
        os.sched_setaffinity(0, {CLIENT_CORE})
        bases = {server.name: server.url for server in servers}
        rows = await time_queries(bases, args.reps, random.Random(1))
        heads = " | ".join(
            f"{p} ms" if len(bases) == 1 else f"{name} {p}" for name in bases for p in PCTS
        )
        print(f"\n| query (REST, one node) | {heads} |\n|---|" + "---|" * 3 * len(bases))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        for server in servers:
            server.stop()
    print(
        "live writes:",
        json.dumps(await live_writes(args.live_seconds, args.live_concurrency)),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
