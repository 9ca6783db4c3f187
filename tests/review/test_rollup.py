"""The KPI rollup (vtax/review/rollup.py), on both engines:

- random session histories written through the real steps (join, offer, answer, abandon,
  end, summary and its revision, rating, the agent's wrap-up, returns of the same taxpayer
  with the same matter) give rollup KPIs identical to the raw aggregation for every
  group_by, filter and pair of filters, threshold, and range (days; whole months and the
  days around them), with the changes still in the journal and after folding them; and the
  folded rows equal a rebuild from the session rows;
- concurrent writers and folders on two engines (two nodes) on PostgreSQL lose no update;
- `vtax kpi rebuild` as a subprocess, with its argument checks.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtax.db import make_engine, session_factory
from vtax.models import kpi_occupancy, kpi_rollup, kpi_rollup_wait
from vtax.review import rollup
from vtax.review.audit import Actor
from vtax.review.kpi import KpiQuery, Plan, periods, rollup_plan
from vtax.review.records import SessionRecords

BASE = datetime(2027, 1, 4, tzinfo=UTC)
WINDOW = 3  # days each example's sessions join in (plus an hour for the returns)
GROUPS = ("day", "agent", "category", "channel")
THRESHOLDS = (1, 10, 20, 59, 3600)
_examples = itertools.count()  # each example gets its own days (apart more than 7 days)

wait_ms = st.one_of(
    st.integers(0, 90).map(lambda s: s * 1000),  # exactly on a second: the boundary of T
    st.integers(0, 120_000),
    st.integers(3_599_000, 3_602_000),  # around the histogram's cap
)
session = st.fixed_dictionaries(
    {
        "taxpayer": st.integers(0, 1),
        "category": st.sampled_from(["invoices", "vat"]),
        "channel": st.sampled_from(["web", "mobile", "kiosk"]),
        "language": st.sampled_from(["zh-CN", "yue"]),
        "joined_s": st.integers(0, WINDOW * 86400 - 1),
        "fate": st.sampled_from(["waiting", "abandoned", "live", "ended", "ended", "ended"]),
        "agent": st.integers(0, 1),
        "wait_ms": wait_ms,
        "talk_s": st.integers(0, 900),
        "outcome": st.sampled_from(["completed", "dropped", "transferred"]),
        "summaries": st.lists(
            st.sampled_from(["resolved", "follow_up", "transferred"]), max_size=2
        ),
        "summary_late": st.booleans(),
        "rating": st.none() | st.integers(1, 5),
        "wrap_s": st.none() | st.integers(1, 200),
        # the taxpayer comes back with the same matter an hour later, after everything else
        # (so the return marks a summarised session as recontacted: its FCR changes)
        "returns": st.booleans(),
    }
)


async def write_history(records: SessionRecords, people, base: datetime, specs) -> None:
    """Each session through the real steps; some summaries only after all sessions joined
    (so a later return can mark an already summarised session as recontacted, and the
    reverse)."""
    taxpayers = (people.taxpayer, people.other_taxpayer)
    agents = (people.agent, people.other_agent)
    late = []
    for spec in specs:
        sid = str(uuid.uuid4())
        joined = base + timedelta(seconds=spec["joined_s"])
        tp, agent = taxpayers[spec["taxpayer"]], agents[spec["agent"]]
        await records.open(
            session_id=sid,
            ticket_id=str(uuid.uuid4()),
            taxpayer_id=tp,
            category=spec["category"],
            language=spec["language"],
            channel=spec["channel"],
            question="q",
            joined_at=joined,
        )
        waited = joined + timedelta(milliseconds=spec["wait_ms"])
        if spec["fate"] == "waiting":
            continue
        if spec["fate"] == "abandoned":
            assert await records.abandoned(sid, waited, "left")
            continue
        assert await records.offered(sid, agent, joined)
        await records.answered(sid, agent, waited)
        if spec["fate"] == "live":
            continue
        ended = waited + timedelta(seconds=spec["talk_s"])
        assert await records.ended(sid, ended, spec["outcome"], "x", Actor("agent", agent))
        if spec["wrap_s"] is not None:  # attributed to this session when the agent's clock
            history = records.agent_history  # allows (never backwards): whatever it did, the
            await history.record(agent, "wrap_up", "", ended)  # rows are what counts
            await history.record(agent, "available", "", ended + timedelta(seconds=spec["wrap_s"]))
        steps = [("summary", result) for result in spec["summaries"]]
        if spec["rating"] is not None:
            steps.append(("rating", spec["rating"]))
        if spec["summary_late"]:
            late.append((sid, tp, agent, ended, steps))
        else:
            await loop_steps(records, sid, tp, agent, ended, steps)
    for args in late:
        await loop_steps(records, *args)
    for spec in specs:
        if spec.get("returns"):
            await records.open(
                session_id=str(uuid.uuid4()),
                ticket_id=str(uuid.uuid4()),
                taxpayer_id=taxpayers[spec["taxpayer"]],
                category=spec["category"],
                language=spec["language"],
                channel=spec["channel"],
                question="again",
                joined_at=base + timedelta(seconds=spec["joined_s"] + 3600),
            )


async def loop_steps(records, sid, tp, agent, ended, steps) -> None:
    from vtax.errors import DomainError

    for i, (kind, value) in enumerate(steps):
        at = ended + timedelta(seconds=10 + i)
        try:
            if kind == "summary":
                await records.save_summary(
                    sid, agent, at, asked="a", handled="h", result=value, items=[]
                )
            else:
                await records.rate(sid, tp, at, score=value, comment="")
        except DomainError:
            pass  # e.g. no revision after the rating: refused, nothing written


def served_queries(day_from: date, day_to: date, people) -> list[KpiQuery]:
    filters = [
        {},
        {"agent_id": people.agent},
        {"agent_id": people.other_agent},
        {"category": "vat"},
        {"channel": "kiosk"},
        {"language": "yue"},
        {"category": "vat", "channel": "kiosk"},
        {"agent_id": people.agent, "category": "invoices"},
        {"agent_id": people.other_agent, "channel": "web", "language": "yue"},
    ]
    out = []
    for i, (group_by, f) in enumerate(itertools.product(GROUPS, filters)):
        # an off-list T (the histogram) every time, and the others in turn
        for t in (21, THRESHOLDS[i % len(THRESHOLDS)]):
            q = KpiQuery(day_from, day_to, group_by, t, **f)
            assert rollup_plan(q) is not None, q
            out.append(q)
    return out


async def nonzero_rows(engine) -> dict[str, list[tuple]]:
    """The rollup rows by their key (occupancy's summed over its shards), those with any
    non-zero counter (folds may leave all-zero rows behind)."""
    out = {}
    async with engine.connect() as conn:
        for table in (kpi_rollup, kpi_rollup_wait, kpi_occupancy):
            key = [c for c in table.primary_key.columns if c.name != "shard"]
            sums = [sa.func.sum(c) for c in table.columns if not c.primary_key]
            rows = await conn.execute(sa.select(*key, *sums).group_by(*key))
            out[table.name] = sorted(
                (*r[: len(key)], *map(int, r[len(key) :])) for r in rows if any(r[len(key) :])
            )
    return out


async def journal_rows(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT count(*) FROM kpi_journal"))).scalar_one()


def around(day_from: date, day_to: date) -> tuple[date, date]:
    """A range with the whole months around the days and a few days either side (month rows
    and day rows together)."""
    first = (day_from.replace(day=1) - timedelta(days=1)).replace(day=1) - timedelta(days=3)
    last = (day_to.replace(day=1) + timedelta(days=62)).replace(day=1) + timedelta(days=2)
    return first, last


async def same_as_raw(kpis, queries: list[KpiQuery]) -> None:
    now = datetime.combine(max(q.day_to for q in queries), datetime.min.time(), UTC)
    for q in queries:
        assert await kpis.report(q, now, source="rollup") == await kpis.report(
            q, now, source="raw"
        ), q


async def check_rollup(store, day_from: date, day_to: date) -> None:
    """Rollup == raw with the changes in the journal, and again once folded; the folded rows
    equal a recomputation from the session rows."""
    narrow = served_queries(day_from, day_to, store)
    wide = [
        q
        for q in served_queries(*around(day_from, day_to), store)
        if q.group_by != "day" and q.threshold_s == 21
    ]
    assert await journal_rows(store.engine) > 0
    await same_as_raw(store.records.kpis, (narrow + wide)[::3])  # a third: the time it takes
    await rollup.fold_all(store.engine, limit=7)  # several batches
    assert await journal_rows(store.engine) == 0
    await same_as_raw(store.records.kpis, narrow + wide)
    kept = await nonzero_rows(store.engine)
    async with store.engine.begin() as conn:
        await rollup.rebuild(conn)
    assert await nonzero_rows(store.engine) == kept


@pytest.mark.slow  # ~35 s on both engines: CI runs it (`make test`), `make test-fast` not
@settings(
    max_examples=int(os.environ.get("VTAX_ROLLUP_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(session, min_size=3, max_size=25))
async def test_random_histories_rollup_equals_raw(store, specs):
    base = BASE + timedelta(days=20 * next(_examples))  # fresh days: no data of other examples
    await write_history(store.records, store, base, specs)
    await check_rollup(store, base.date(), (base + timedelta(days=WINDOW - 1)).date())


def test_the_plan_names_what_the_rollup_serves():
    d = date(2027, 1, 1)
    assert rollup_plan(KpiQuery(d, d, "day")) == Plan("total", {})
    assert rollup_plan(KpiQuery(d, d, "day", language="pt")) == Plan("language", {"language": "pt"})
    assert rollup_plan(KpiQuery(d, d, "agent")) == Plan("agent", {})
    assert rollup_plan(KpiQuery(d, d, "channel", channel="web")) == Plan(
        "channel", {"channel": "web"}
    )
    assert rollup_plan(KpiQuery(d, d, "agent", category="vat")) == Plan(
        "agent_category", {"category": "vat"}
    )
    assert rollup_plan(KpiQuery(d, d, "day", agent_id="a", channel="web")) == Plan(
        "agent_channel", {"agent": "a", "channel": "web"}
    )
    assert rollup_plan(KpiQuery(d, d, "category", channel="web", agent_id="a")) == Plan(
        "cube", {"agent": "a", "channel": "web"}
    )
    assert rollup_plan(KpiQuery(d, d, "day", channel="web", language="pt")) == Plan(
        "mix", {"channel": "web", "language": "pt"}
    )
    assert rollup_plan(KpiQuery(d, d, "day", agent_id="")) is None


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        # group_by day: day rows only
        ("2027-01-05", "2027-03-20", None),
        # whole months inside the range from month rows, the days around them from day rows
        ("2027-01-05", "2027-03-20", [("month", "2027-02", "2027-02"),
                                      ("day", "2027-01-05", "2027-01-31"),
                                      ("day", "2027-03-01", "2027-03-20")]),
        ("2027-01-01", "2027-12-31", [("month", "2027-01", "2027-12")]),
        ("2027-01-01", "2027-01-30", [("day", "2027-01-01", "2027-01-30")]),
        ("2027-01-02", "2027-01-31", [("day", "2027-01-02", "2027-01-31")]),
        ("2028-02-01", "2028-02-29", [("month", "2028-02", "2028-02")]),
        ("2027-12-31", "2028-02-01", [("month", "2028-01", "2028-01"),
                                      ("day", "2027-12-31", "2027-12-31"),
                                      ("day", "2028-02-01", "2028-02-01")]),
    ],
)  # fmt: skip
def test_periods_cover_the_days_exactly(first, last, expected):
    q = KpiQuery(date.fromisoformat(first), date.fromisoformat(last), "agent")
    if expected is None:
        q = KpiQuery(q.day_from, q.day_to, "day")
        expected = [("day", first, last)]
    assert periods(q) == expected


async def test_raw_fallback_gives_the_same_answer_through_auto(store):
    """The one query the rollup does not serve (an agent filter of '', the rollup's "no
    agent") still answers, from the session rows: nobody."""
    base = BASE - timedelta(days=400)
    specs = [
        {
            "taxpayer": 0,
            "category": "vat",
            "channel": "web",
            "language": "yue",
            "joined_s": 60 * i,
            "fate": "waiting" if i == 3 else "ended",
            "agent": i % 2,
            "wait_ms": 1000 * i,
            "talk_s": 30,
            "outcome": "completed",
            "summaries": ["resolved"],
            "summary_late": False,
            "rating": 5,
            "wrap_s": None,
        }
        for i in range(4)
    ]
    await write_history(store.records, store, base, specs)
    q = KpiQuery(base.date(), base.date(), "agent", 2, agent_id="")
    assert rollup_plan(q) is None
    report = await store.records.kpis.report(q, base + timedelta(days=1))
    assert report == await store.records.kpis.report(q, base + timedelta(days=1), source="raw")
    assert report["total"]["sessions"] == 0
    with pytest.raises(ValueError):
        await store.records.kpis.report(q, source="rollup")
    # the unassigned session is in the rollup's '' row, reported as key None
    by_agent = await store.records.kpis.report(
        KpiQuery(base.date(), base.date(), "agent", 2, category="vat"), base + timedelta(days=1)
    )
    assert [r["sessions"] for r in by_agent["rows"] if r["key"] is None] == [1]


async def test_concurrent_writers_on_two_nodes_lose_no_update(database_url, cast):
    """Two engines (as two nodes) run many flows at once on the same day, agents, categories
    and taxpayers (so returns mark each other's sessions), and a rebuild runs in the middle:
    the rollup still equals the raw aggregation and a fresh rebuild."""
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent writers: PostgreSQL (SQLite has a single writer)")
    engines = [make_engine(database_url, pool_size=8, max_overflow=0) for _ in range(2)]
    nodes = [SessionRecords(session_factory(e)) for e in engines]
    base = datetime(2027, 6, 1, 9, tzinfo=UTC)
    taxpayers = (cast.taxpayer, cast.other_taxpayer)
    agents = (cast.agent, cast.other_agent)

    async def flow(k: int) -> None:
        records = nodes[k % 2]
        sid, agent, tp = str(uuid.uuid4()), agents[k % 2], taxpayers[(k // 2) % 2]
        joined = base + timedelta(seconds=k)
        await records.open(
            session_id=sid,
            ticket_id=str(uuid.uuid4()),
            taxpayer_id=tp,
            category="vat" if k % 3 else "invoices",
            language="yue",
            channel=("web", "kiosk")[k % 2],
            question="q",
            joined_at=joined,
        )
        if k % 7 == 0:
            assert await records.abandoned(sid, joined + timedelta(seconds=k % 40), "left")
            return
        await records.offered(sid, agent, joined)
        await records.answered(sid, agent, joined + timedelta(milliseconds=700 * k))
        ended = joined + timedelta(seconds=120)
        await records.ended(sid, ended, "completed", "x", Actor("agent", agent))
        await records.save_summary(
            sid, agent, ended, asked="a", handled="h", result="resolved", items=[]
        )
        await records.rate(sid, tp, ended, score=1 + k % 5, comment="")

    async def rebuild_meanwhile() -> None:
        await asyncio.sleep(0.3)
        async with engines[0].begin() as conn:
            await rollup.rebuild(conn)

    # each node's folder, folding small batches often (disjoint rows: SKIP LOCKED)
    folders = [rollup.Folder(e, interval_s=0.01, batch=5) for e in engines]
    for f in folders:
        f.start()
    try:
        await asyncio.gather(*(flow(k) for k in range(120)), rebuild_meanwhile())
        for f in folders:
            await f.close()
        assert await journal_rows(engines[0]) == 0
        records = nodes[0]
        day = base.date()
        for q in served_queries(day, day, cast):
            served = await records.kpis.report(q, base, source="rollup")
            assert served == await records.kpis.report(q, base, source="raw"), q
        total = (await records.kpis.report(KpiQuery(day, day), base))["total"]
        assert total["sessions"] == 120 and total["abandoned"] == 18
        kept = await nonzero_rows(engines[1])
        async with engines[1].begin() as conn:
            await rollup.rebuild(conn)
        assert await nonzero_rows(engines[1]) == kept
    finally:
        for e in engines:
            await e.dispose()


# ---- vtax kpi rebuild ----------------------------------------------------------------------


def vtax(database_url: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`vtax <args>` on `database_url`, with more `VTAX_*` settings if given."""
    env = dict(os.environ, VTAX_DATABASE_URL=database_url, **settings)
    return subprocess.run(
        [sys.executable, "-m", "vtax", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


async def test_cli_rebuild_recomputes_a_damaged_rollup(store, database_url):
    """`vtax kpi rebuild --from D --to D` recomputes D's whole month, and only it."""
    base = datetime(2026, 6, 30, 8, tzinfo=UTC)  # its sessions on June 30 and July 1
    specs = [
        {
            "taxpayer": i % 2,
            "category": "invoices",
            "channel": "mobile",
            "language": "zh-CN",
            "joined_s": 86400 * (i % 2) + 60 * i,
            "fate": "ended",
            "agent": 0,
            "wait_ms": 15_000,
            "talk_s": 60,
            "outcome": "completed",
            "summaries": ["resolved"],
            "summary_late": False,
            "rating": 4,
            "wrap_s": None,
        }
        for i in range(6)
    ]
    await write_history(store.records, store, base, specs)
    await rollup.fold_all(store.engine)
    kept = await nonzero_rows(store.engine)
    day1, day2 = base.date(), base.date() + timedelta(days=1)
    async with store.engine.begin() as conn:  # damage both days and months
        await conn.execute(sa.text("UPDATE kpi_rollup SET sessions = sessions + 5"))
        await conn.execute(sa.text("DELETE FROM kpi_rollup_wait"))
    done = await asyncio.to_thread(
        vtax, database_url, "kpi", "rebuild", "--from", day1.isoformat(), "--to", day1.isoformat()
    )
    assert done.returncode == 0, done.stderr
    assert "rebuilt the KPI rollup from 2026-06-01 to 2026-06-30" in done.stdout, done.stdout
    fixed = await nonzero_rows(store.engine)

    def rows_of(rows, table, month):
        at = 2 if table == "kpi_rollup" else 3  # the period
        return [r for r in rows[table] if r[at].startswith(month)]

    for table in ("kpi_rollup", "kpi_rollup_wait"):
        assert rows_of(fixed, table, "2026-06") == rows_of(kept, table, "2026-06") != []

    # the month outside the range is untouched (still damaged)
    def sessions_on(rows, grain, period):
        return [r[7] for r in rows["kpi_rollup"] if r[:3] == ("total", grain, period)]

    assert sessions_on(kept, "day", day2.isoformat()) == [3]
    assert sessions_on(fixed, "day", day2.isoformat()) == [8]
    assert sessions_on(fixed, "month", "2026-07") == [8]
    assert rows_of(fixed, "kpi_rollup_wait", "2026-07") == []
    done = await asyncio.to_thread(vtax, database_url, "kpi", "rebuild")
    assert done.returncode == 0, done.stderr
    assert await nonzero_rows(store.engine) == kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01"], "use a day of the service time zone"),
        (["--from", "yesterday"], "use a day of the service time zone"),
        (["--to", "20261101"], "use a day of the service time zone"),
        (["--from", "1999-12-31"], "2000..2100"),
        (["--from", "2026-11-02", "--to", "2026-11-01"], "--to is before --from"),
        (["--days", "3"], "unrecognized arguments"),
    ],
)
def test_cli_rebuild_refuses_bad_arguments(tmp_path, args, message):
    done = vtax(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "kpi", "rebuild", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_cli_rebuild_on_an_unmigrated_database_says_what_to_do(tmp_path):
    done = vtax(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "kpi", "rebuild")
    assert done.returncode != 0 and "vtax migrate" in done.stderr, done.stderr
