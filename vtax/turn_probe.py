"""A raw TURN Allocate (RFC 5766 over RFC 5389 STUN, UDP) with long-term credentials: enough to
ask coturn whether it takes a username/password, without a browser. The nodes probe their TURN
server with it (`probe`, exported on /metrics for the alert rules, deploy/prometheus/), and the
stack tests check coturn's refusals with it."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
from dataclasses import dataclass

MAGIC = 0x2112A442
ALLOCATE = 0x0003
REFRESH = 0x0004
SUCCESS = 0x0100
ERROR = 0x0110
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE = 0x0006, 0x0008, 0x0009
LIFETIME, REALM, NONCE = 0x000D, 0x0014, 0x0015
REQUESTED_TRANSPORT, XOR_RELAYED_ADDRESS = 0x0019, 0x0016
UDP = 17


@dataclass
class Answer:
    ok: bool
    error: int | None  # e.g. 401
    relayed: tuple[str, int] | None
    attrs: dict[int, bytes]


def _attr(kind: int, value: bytes) -> bytes:
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def _message(method: int, txid: bytes, attrs: list[tuple[int, bytes]], key: bytes | None) -> bytes:
    body = b"".join(_attr(k, v) for k, v in attrs)
    if key is None:
        return struct.pack("!HHI", method, len(body), MAGIC) + txid + body
    # MESSAGE-INTEGRITY covers the header with the length counting the integrity attribute.
    header = struct.pack("!HHI", method, len(body) + 24, MAGIC) + txid
    mac = hmac.new(key, header + body, hashlib.sha1).digest()
    return header + body + _attr(MESSAGE_INTEGRITY, mac)


def _parse(data: bytes, txid: bytes) -> tuple[int, dict[int, bytes]]:
    kind, length, magic = struct.unpack("!HHI", data[:8])
    if magic != MAGIC or data[8:20] != txid:
        raise ValueError("not the answer to our request")
    attrs: dict[int, bytes] = {}
    pos = 20
    while pos < 20 + length:
        k, n = struct.unpack("!HH", data[pos : pos + 4])
        attrs.setdefault(k, data[pos + 4 : pos + 4 + n])
        pos += 4 + n + (4 - n % 4) % 4
    return kind, attrs


def _answer(kind: int, attrs: dict[int, bytes], method: int) -> Answer:
    error = None
    if ERROR_CODE in attrs:
        raw = attrs[ERROR_CODE]
        error = (raw[2] & 0x7) * 100 + raw[3]
    relayed = None
    if XOR_RELAYED_ADDRESS in attrs:
        raw = attrs[XOR_RELAYED_ADDRESS]
        port = struct.unpack("!H", raw[2:4])[0] ^ (MAGIC >> 16)
        addr = struct.unpack("!I", raw[4:8])[0] ^ MAGIC
        relayed = (socket.inet_ntoa(struct.pack("!I", addr)), port)
    return Answer(kind == method | SUCCESS, error, relayed, attrs)


def allocate(host: str, port: int, username: str, password: str, timeout: float = 3.0) -> Answer:
    """Allocate a UDP relay with long-term credentials (401 challenge, then the signed request);
    on success the allocation is released at once (Refresh, lifetime 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))

        def ask(method: int, attrs: list[tuple[int, bytes]], key: bytes | None) -> Answer:
            txid = os.urandom(12)
            s.send(_message(method, txid, attrs, key))
            while True:
                try:
                    kind, got = _parse(s.recv(2048), txid)
                    return _answer(kind, got, method)
                except ValueError:
                    continue  # a stray datagram

        transport = [(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))]
        challenge = ask(ALLOCATE, transport, None)
        if challenge.error != 401:
            return challenge
        realm, nonce = challenge.attrs[REALM], challenge.attrs[NONCE]
        key = hashlib.md5(username.encode() + b":" + realm + b":" + password.encode()).digest()
        signed = [(USERNAME, username.encode()), (REALM, realm), (NONCE, nonce)]
        answer = ask(ALLOCATE, [*transport, *signed], key)
        if answer.ok:
            ask(REFRESH, [(LIFETIME, struct.pack("!I", 0)), *signed], key)
        return answer


def turn_target(urls: list[str]) -> tuple[str, int] | None:
    """The first `turn:` (UDP) server of VTAX_TURN_URLS as (host, port); None if there is none."""
    for url in urls:
        if not url.startswith("turn:") or "transport=tcp" in url:
            continue
        hostport = url[len("turn:") :].split("?", 1)[0]
        host, _, port = hostport.rpartition(":")
        if host and port.isdigit():
            return host.strip("[]"), int(port)
        return hostport, 3478
    return None


def probe(host: str, port: int, username: str, password: str, timeout: float = 3.0) -> str | None:
    """Allocate and release a relay; None if the server took the credentials, else why not."""
    try:
        answer = allocate(host, port, username, password, timeout)
    except OSError as exc:  # no answer in time, refused, unresolvable
        return f"{type(exc).__name__}: {exc}"
    if answer.ok:
        return None
    return f"error {answer.error}"
