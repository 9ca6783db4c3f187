"""Logging set-up: plain text for people, or one JSON object per line for log pipelines."""

from __future__ import annotations

import json
import logging
import time
from typing import Any


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


BAD_INPUT_LOGGERS = ("aiohttp.server", "engineio.server", "socketio.server")


def throttle_bad_input_logs() -> None:
    """Install `BadInputLogs` on the loggers clients can make talk (once per process)."""
    for name in BAD_INPUT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, BadInputLogs) for f in logger.filters):
            logger.addFilter(BadInputLogs())
