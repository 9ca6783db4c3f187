"""The Socket.IO wire format of this server: JSON only, encoded by orjson.

Passed to python-socketio through its public options (`json=` and `serializer=`), measured in
docs/benchmarks.md:
- orjson encodes and parses each packet several times faster than the standard library; where
  it refuses a value the standard library takes (`NaN` or `Infinity` in the input; an integer
  beyond 64 bits or a non-string key in the output), the standard library does the work, so a
  bad value still becomes a validation error, never a dropped connection. One difference
  remains: orjson reads an integer beyond 64 bits as a float (every bounded integer field of
  the contract refuses it either way).
- The contract carries no binary data (docs/protocol.md), so packets skip python-socketio's
  search of every payload for binary attachments (about 17 µs a message in the profile).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import socketio.packet

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


class JsonPacket(socketio.packet.Packet):
    """Socket.IO packets of a JSON-only protocol: no binary-attachment search."""

    uses_binary_events = False
    json = FastJson


def encoded_size(data: Any) -> int | None:
    """Bytes of `data` as UTF-8 JSON (the payload limit's measure); None if it holds what JSON
    cannot carry (a binary attachment a client sent decodes to `bytes`).

    A relayed signal is thus encoded twice (here, and in the packet sent on). Encoding its
    `data` once and sending those bytes on (`orjson.Fragment`) was measured side by side on
    2026-11-27 and not kept: this encode costs 0.6 µs for a trickled candidate (4 µs for a
    10 KB offer) of 65-90 µs of server CPU a message, within the benchmark's noise; and the
    relay sends the validated `data` (pydantic strips its keys), not the bytes received."""
    try:
        return len(orjson.dumps(data))
    except TypeError:
        try:
            return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
        except (TypeError, ValueError):
            return None
