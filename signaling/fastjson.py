"""JSON for both transports: orjson first, the standard library where orjson refuses (see
signaling/wire.py for why and what was measured). Its own module so that REST uses it
without importing anything of Socket.IO."""

from __future__ import annotations

import json
from typing import Any

import orjson

# What a packet's data decodes to when it is not JSON this server can read (nested deeper than
# the parsers go): the hub answers the event `invalid_payload` instead of dropping the packet
# without an ack (and logging a traceback twice its size).
UNREADABLE = ["\x00unreadable"]


class FastJson:
    """A `json`-like module: orjson first, the standard library where orjson refuses."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # orjson.JSONEncodeError: big integers, non-string keys, ...
            return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(data: str | bytes, **kwargs: Any) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # NaN, Infinity, integers beyond 64 bits
            try:
                return json.loads(data, **kwargs)
            except RecursionError:  # nested deeper than any message of the contract
                return list(UNREADABLE)
