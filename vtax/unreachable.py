"""Telling "a backend is unreachable" from a bug: the database or Redis refusing connections,
timing out or dropping them. Transports answer these `503 unavailable` (Socket.IO:
`{code: "unavailable"}`) with one line in the log instead of a traceback, and `vtax migrate`
prints one line and exits 2."""

from __future__ import annotations

import asyncio
import socket

import redis.exceptions
import sqlalchemy.exc

UNREACHABLE: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,  # connection refused, server gone (SQLite: locked, I/O)
    sqlalchemy.exc.InterfaceError,  # the connection was closed under the driver
    sqlalchemy.exc.TimeoutError,  # the pool had no connection in time
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,  # refused, reset, aborted (asyncpg raises these on connect)
    socket.gaierror,  # the host name does not resolve
    asyncio.TimeoutError,
)


def is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, UNREACHABLE):
        return True
    # asyncpg: a server starting or shutting down, a connection lost mid-query; SQLAlchemy
    # wraps these in a plain DBAPIError ("the database system is starting up"), so the
    # driver's own exception is looked at too.
    for e in (exc, getattr(exc, "orig", None), exc.__cause__):
        if e is not None and type(e).__name__ in ASYNCPG_UNREACHABLE:
            return True
    return False


ASYNCPG_UNREACHABLE = frozenset(
    {"CannotConnectNowError", "ConnectionDoesNotExistError", "ConnectionFailureError"}
)


def backend_of(exc: BaseException) -> str:
    """Which backend failed, for people: 'database' or 'Redis'."""
    if isinstance(exc, redis.exceptions.RedisError):
        return "Redis"
    return "database"


def exc_line(exc: BaseException) -> str:
    """One line saying what went wrong (the driver's first line, without SQL or traces)."""
    original = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(original).strip().splitlines()
    first = text[0] if text else type(original).__name__
    return f"{type(original).__name__}: {first[:300]}"
