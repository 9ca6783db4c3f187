"""`vtax.db.retry_lost_races` on a real PostgreSQL: two transactions that lock two rows in
opposite orders deadlock; PostgreSQL aborts one (40P01) and the decorator runs it again, so
both complete. Without it the victim's caller gets the deadlock error. Other errors (a unique
violation) are never run again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from vtax.db import lost_race, make_engine, retry_lost_races

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def crossing(engine: Any, decorate: bool) -> list[Any]:
    """Two transactions: one locks row 1 then 2, the other 2 then 1, each waiting for the
    other's first lock before taking its second (a certain deadlock)."""
    both_hold = asyncio.Barrier(2)
    runs = {"a": 0, "b": 0}

    async def tx(name: str, first: int, second: int) -> str:
        runs[name] += 1
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE race SET n = n + 1 WHERE id = :i"), {"i": first})
            if runs[name] == 1:
                await both_hold.wait()
            await conn.execute(text("UPDATE race SET n = n + 1 WHERE id = :i"), {"i": second})
        return name

    run = retry_lost_races()(tx) if decorate else tx
    results = await asyncio.gather(run("a", 1, 2), run("b", 2, 1), return_exceptions=True)
    return [results, runs]


async def test_a_deadlock_victim_is_run_again_and_both_complete(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE race (id int PRIMARY KEY, n int NOT NULL)"))
            await conn.execute(text("INSERT INTO race VALUES (1, 0), (2, 0)"))

        # undecorated: one of them is PostgreSQL's deadlock victim
        results, runs = await crossing(engine, decorate=False)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and lost_race(errors[0]), results

        # decorated: the victim runs again and both complete
        results, runs = await crossing(engine, decorate=True)
        assert results == ["a", "b"], results
        assert sorted(runs.values()) == [1, 2], runs
        async with engine.connect() as conn:
            counts = (await conn.execute(text("SELECT n FROM race ORDER BY id"))).scalars().all()
        # the first round left the survivor's two updates (the victim's rolled back): 1 each;
        # the second both transactions' (the victim's first try rolled back): 2 more each
        assert counts == [3, 3], counts
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS race"))
        await engine.dispose()


async def test_other_errors_are_not_run_again(database_url: str) -> None:
    engine = make_engine(database_url)
    calls = 0

    @retry_lost_races()
    async def duplicate() -> None:
        nonlocal calls
        calls += 1
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO dup VALUES (1)"))

    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE dup (id int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO dup VALUES (1)"))
        with pytest.raises(IntegrityError) as caught:
            await duplicate()
        assert calls == 1 and not lost_race(caught.value)
        assert isinstance(caught.value, DBAPIError)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS dup"))
        await engine.dispose()
