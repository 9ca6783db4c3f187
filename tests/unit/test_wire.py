"""The wire format: orjson with the standard library where orjson refuses."""

from __future__ import annotations

import json
import math

import pytest
import socketio.packet

from signaling.wire import FastJson, JsonPacket, encoded_size


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True, "税务"], "b": {"c": ""}},
        {"big": 2**70},  # beyond orjson's 64-bit integers
        {1: "non-string key"},
        [],
    ],
)
def test_dumps_agrees_with_the_standard_library(value):
    assert json.loads(FastJson.dumps(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    "text", ['{"a": 1}', '[1, "x"]', "18446744073709551615", "NaN", "-Infinity"]
)
def test_loads_agrees_with_the_standard_library(text):
    got, want = FastJson.loads(text), json.loads(text)
    assert got == want or (math.isnan(got) and math.isnan(want))


def test_an_integer_beyond_64_bits_arrives_as_a_float():
    """orjson's documented reading (every bounded integer field refuses it: see the bad-input
    integration test); the standard library would keep the exact integer."""
    assert FastJson.loads("123456789012345678901234567890") == pytest.approx(1.2345678901e29)


def test_loads_still_refuses_what_is_not_json():
    with pytest.raises(ValueError):
        FastJson.loads("{not json")


def test_packets_round_trip_and_never_turn_binary():
    packet = JsonPacket(socketio.packet.EVENT, data=["rtc:signal", {"sdp": "v=0\r\n"}], id=7)
    encoded = packet.encode()
    assert encoded.startswith("27[")  # an EVENT with ack id 7, no attachments
    back = JsonPacket(encoded_packet=encoded)
    assert back.data == ["rtc:signal", {"sdp": "v=0\r\n"}] and back.id == 7


def test_encoded_size_counts_utf8_bytes_and_flags_binary():
    assert encoded_size({"q": "税"}) == len('{"q":"税"}'.encode())
    assert encoded_size({"n": 2**70}) == len(json.dumps({"n": 2**70}, separators=(",", ":")))
    assert encoded_size({"blob": b"\x00"}) is None
