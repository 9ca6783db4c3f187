"""Database plumbing: the async engine, a UTC-preserving datetime type and migrations."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


#: PostgreSQL's SQLSTATEs of a transaction that lost a race and may simply run again:
#: deadlock_detected, serialization_failure.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
P = ParamSpec("P")
R = TypeVar("R")


def lost_race(exc: BaseException) -> bool:
    """The database aborted the transaction to break a deadlock (or a serialization
    conflict): nothing of it was written, and running it again is the documented remedy."""
    orig = getattr(exc, "orig", None)
    return isinstance(exc, DBAPIError) and getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_lost_races(
    attempts: int = 4, pause_s: float = 0.02
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run a whole transaction again (a fresh session each time: the method opens its own)
    when PostgreSQL aborted it as a deadlock victim, up to `attempts` times with a short
    random pause. Lock ordering avoids most deadlocks; a unique index's wait on another
    transaction's uncommitted key can still form one, and PostgreSQL's answer to that is
    "retry the transaction". SQLite never raises these."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return await fn(*args, **kwargs)
                except DBAPIError as exc:
                    if attempt == attempts or not lost_race(exc):
                        raise
                    await asyncio.sleep(random.uniform(0, pause_s * attempt))
            raise AssertionError("unreachable")

        return run

    return wrap


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the engine; on SQLite turn on foreign keys and WAL for concurrent readers."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str, timezone: str | None = None) -> Any:
    """`timezone`: the service zone, in which migration 0015 computes the stored days (None:
    the migration takes VTAX_SERVICE_TIMEZONE or the default)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if timezone is not None:
        cfg.set_main_option("vtax.service_timezone", timezone)
    return cfg


def _upgrade(url: str, revision: str, timezone: str | None) -> None:
    from alembic import command

    command.upgrade(alembic_config(url, timezone), revision)


async def migrate(url: str, revision: str = "head", timezone: str | None = None) -> None:
    """Apply pending migrations (Alembic runs its own event loop, so use a thread).
    `timezone`: the service zone (settings.service_timezone), the days' zone (0015)."""
    await asyncio.to_thread(_upgrade, url, revision, timezone)
