"""OutageLogs (vtax/logs.py): a backend going away costs one line a minute per backend, not a
traceback per request, event and loop."""

from __future__ import annotations

import logging

import redis.exceptions
import sqlalchemy.exc

from vtax.logs import OutageLogs


def record(msg: str, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("vtax.x", logging.ERROR, __file__, 1, msg, (), None)
    if exc is not None:
        r.exc_info = (type(exc), exc, None)
    for k, v in extra.items():
        setattr(r, k, v)
    return r


def test_one_line_per_minute_per_backend_without_traceback(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("vtax.logs.time.monotonic", lambda: clock[0])
    f = OutageLogs()
    redis_down = redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
    first = record("queue tick failed", redis_down)
    assert f.filter(first)
    assert first.exc_info is None and first.getMessage() == (
        "Redis unreachable: queue tick failed: ConnectionError: Error 111 connecting to "
        "127.0.0.1:6379."
    )
    # The same outage, again and again: left out...
    assert not any(f.filter(record("queue tick failed", redis_down)) for _ in range(500))
    # ...but the database is another backend, with its own line.
    db_down = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    assert f.filter(record("kpi fold failed", db_down))
    assert f.filter(record("GET /x: Redis is unreachable", outage="database")) is False
    # A minute later: one line again, saying how many were left out.
    clock[0] += 61
    again = record("queue tick failed", redis_down)
    assert f.filter(again)
    assert again.getMessage().endswith("(500 more like it in the last minute)")


def test_other_errors_pass_untouched() -> None:
    f = OutageLogs()
    bug = record("event x failed", KeyError("k"))
    assert f.filter(bug) and bug.exc_info is not None
    plain = record("hello")
    assert f.filter(plain) and plain.getMessage() == "hello"
    # python-socketio's own Redis retry lines count as the Redis outage.
    lib = logging.LogRecord(
        "socketio.server",
        logging.ERROR,
        __file__,
        1,
        "Cannot publish to redis... retrying",
        (),
        None,
    )
    assert f.filter(lib) and lib.getMessage().startswith("Redis unreachable: Cannot publish")
    assert not f.filter(
        logging.LogRecord(
            "socketio.server", logging.ERROR, __file__, 1, "Cannot receive from redis", (), None
        )
    )
