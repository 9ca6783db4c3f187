"""Logging set-up: plain text for people, or one JSON object per line for log pipelines."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from vtax.unreachable import backend_of, exc_line, is_unreachable


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and session_id if given."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("session_id", "ticket_id", "agent_id", "node"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(OutageLogs())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class BadInputLogs(logging.Filter):
    """What a client's bad input makes a library log (aiohttp's "Error handling request" for a
    request its parser refuses, Engine.IO's and Socket.IO's undecodable packets): one short
    line, no traceback, at most `per_minute` lines a minute per logger, then a count of what
    was left out. A client cannot fill the disk by sending garbage; the answer it gets is the
    error it caused (400, or an error ack)."""

    def __init__(self, per_minute: int = 10, max_chars: int = 200) -> None:
        super().__init__()
        self.per_minute, self.max_chars = per_minute, max_chars
        self.window = 0.0
        self.shown = 0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and record.exc_info is None:
            return True
        now = time.monotonic()
        if now - self.window >= 60:
            if self.suppressed:
                record.msg = f"{record.getMessage()} ({self.suppressed} more in the last minute)"
                record.args = ()
            self.window, self.shown, self.suppressed = now, 0, 0
        if self.shown >= self.per_minute:
            self.suppressed += 1
            return False
        self.shown += 1
        cause = record.exc_info[1] if record.exc_info else None
        text = record.getMessage()
        if cause is not None:
            text = f"{text}: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
        record.msg, record.args = text[: self.max_chars], ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class OutageLogs(logging.Filter):
    """A backend going away (the database or Redis refusing or dropping connections) makes every
    request, event and background loop fail at once: hundreds of tracebacks a second saying the
    same thing (an outside probe saw ~37 KB/s per node). While it lasts, the first such record
    of each minute per backend is one line without a traceback, and the next minute's line says
    how many were left out. A record is about an outage when its exception is unreachable
    (vtax.unreachable) or it was logged with `extra={"outage": "Redis" | "database"}`."""

    LIBRARY_LINES = ("Cannot publish to redis", "Cannot receive from redis")

    def __init__(self, per_minute: int = 1) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.windows: dict[str, tuple[float, int, int]] = {}  # backend -> (start, shown, left out)

    def backend(self, record: logging.LogRecord) -> str | None:
        marked = getattr(record, "outage", None)
        if isinstance(marked, str):
            return marked
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_unreachable(exc):
            return backend_of(exc)
        if record.name.startswith("socketio") and str(record.msg).startswith(self.LIBRARY_LINES):
            return "Redis"
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        backend = self.backend(record)
        if backend is None:
            return True
        now = time.monotonic()
        start, shown, left_out = self.windows.get(backend, (0.0, 0, 0))
        note = ""
        if now - start >= 60:
            if left_out:
                note = f" ({left_out} more like it in the last minute)"
            start, shown, left_out = now, 0, 0
        if shown >= self.per_minute:
            self.windows[backend] = (start, shown, left_out + 1)
            return False
        self.windows[backend] = (start, shown + 1, left_out)
        exc = record.exc_info[1] if record.exc_info else None
        text = record.getMessage()
        if exc is not None:
            text = f"{text}: {exc_line(exc)}"
        record.msg, record.args = f"{backend} unreachable: {text}{note}", ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


BAD_INPUT_LOGGERS = ("aiohttp.server", "engineio.server", "socketio.server")


def throttle_bad_input_logs() -> None:
    """Install `BadInputLogs` on the loggers clients can make talk (once per process)."""
    for name in BAD_INPUT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, BadInputLogs) for f in logger.filters):
            logger.addFilter(BadInputLogs())
