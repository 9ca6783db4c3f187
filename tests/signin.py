"""How the tests sign a taxpayer in: through the real SMS provider, as a person would.

There is no back door: a test registers the person (and, for an enterprise, a person holding
a grant for it) in the registry, the way the tax system's export would, asks for a code,
reads it where the node's log sender put it, and verifies it. An identity number stands for
one stable person, so `taxpayer(USCC)` twice is the same enterprise's same representative:

- a resident ID number is that person (their verified mobile derived from the number);
- a USCC is the enterprise, acted for by its legal representative, a person derived from the
  USCC (their own resident ID number and mobile), who chooses the enterprise after signing in.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pyotp

from vtax.identity import resident_id_check_char
from vtax.sms import masked

HEADER = (
    "name,document_type,document_number,phones,uscc,enterprise_name,role,functions,"
    "valid_from,valid_until,confirmed,revoked"
)
CODE = re.compile(r"(?<![0-9])([0-9]{6})(?![0-9])")
LOG_SENDER = " (log sender, not sent): "
# Nodes whose clients sign in often, the same numbers many times over and many people from one
# address (tests, benchmarks): no resend pause, and per-number and per-address limits no run
# reaches. The limits themselves have their tests (tests/identity, with the defaults).
SIGN_IN_CODES: dict[str, Any] = {
    "sign_in_code_resend_s": 0.0,
    "sign_in_code_per_number": 1000,
    "sign_in_code_per_address": 100_000,
    "sign_in_code_tries_per_address": 100_000,
}
SIGN_IN_CODES_ENV = {f"VTAX_{k.upper()}": str(v) for k, v in SIGN_IN_CODES.items()}


def _digits(seed: str, what: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{what}:{seed}".encode()).digest()[:8], "big") % n


def derived_resident_id(seed: str) -> str:
    """A valid resident ID number (GB 11643 check character) that is a function of `seed`."""
    year = 1950 + _digits(seed, "y", 50)
    month = 1 + _digits(seed, "m", 12)
    day = 1 + _digits(seed, "d", 28)
    first17 = f"110105{year:04d}{month:02d}{day:02d}{_digits(seed, 's', 1000):03d}"
    return first17 + resident_id_check_char(first17)


def derived_phone(document: str) -> str:
    """The person's verified mainland mobile (+86 139 ...), a function of their document."""
    return f"+86139{_digits(document, 'phone', 10**8):08d}"


@dataclass(frozen=True)
class TestPerson:
    """A person of the registry the tests sign in as, and the enterprise they act for."""

    name: str
    document: str
    phone: str
    uscc: str | None = None  # act for this enterprise as its legal representative

    __test__ = False

    def csv_rows(self) -> list[list[str]]:
        grant = (
            [self.uscc, f"Test enterprise {self.uscc}", "legal_representative"]
            if self.uscc
            else ["", "", ""]
        )
        return [[self.name, "resident_id", self.document, self.phone, *grant, "", "", "", "", ""]]


def person_for(id_number: str, id_type: str = "uscc") -> TestPerson:
    """The stable test person behind an identity number (see the module's docstring)."""
    number = id_number.strip().upper()
    if id_type == "resident_id":
        return TestPerson(f"Taxpayer {number[-4:]}", number, derived_phone(number))
    if id_type != "uscc":
        raise ValueError(f"unknown id type {id_type!r}")
    document = derived_resident_id("uscc:" + number)
    return TestPerson(f"Representative {number[-4:]}", document, derived_phone(document), number)


def registry_csv(people: list[TestPerson]) -> str:
    """The people as the tax system's registry export (docs/identity.md)."""
    out = io.StringIO()
    out.write(HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for person in people:
        writer.writerows(person.csv_rows())
    return out.getvalue()


def code_in(text: str) -> str:
    """The 6-digit code in a sign-in text."""
    found = CODE.search(text)
    if not found:
        raise AssertionError(f"no code in the text {text!r}")
    return found.group(1)


class SentTexts:
    """The sign-in texts that nodes' log senders wrote to their log files
    (`SMS to +86139****1234 (log sender, not sent): ...`), by masked number. Each call reads
    only what the logs gained since the last (whole lines), so that signing thousands of people
    in does not read the logs thousands of times over."""

    def __init__(self, logs: list[Path]) -> None:
        self.logs = logs
        self._read = dict.fromkeys(logs, 0)
        self._texts: defaultdict[str, list[str]] = defaultdict(list)

    def __call__(self, phone: str) -> list[str]:
        for path in self.logs:
            try:
                with path.open("rb") as f:
                    f.seek(self._read[path])
                    chunk = f.read()
            except OSError:
                continue
            whole = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
            self._read[path] += whole
            for line in chunk[:whole].decode("utf-8", errors="replace").splitlines():
                head, found, text = line.partition(LOG_SENDER)
                if found and "SMS to " in head:
                    self._texts[head.rsplit("SMS to ", 1)[1]].append(text)
        return list(self._texts[masked(phone)])


def logged_texts(logs: list[Path], phone: str) -> list[str]:
    """The sign-in texts to `phone` in the nodes' logs (`SentTexts`), file by file."""
    return SentTexts(logs)(phone)


async def sms_sign_in(
    http: aiohttp.ClientSession,
    url: str,
    person: TestPerson,
    texts: Callable[[], list[str]],
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """A node's SMS sign-in over HTTP for a registered test person: a code asked for, read
    from `texts()` (what the node's log sender wrote), verified; for an enterprise, then
    acting for it. The `TaxpayerSession`."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with http.post(url + path, json=body) as r:
            assert r.status == 200, f"{path}: {r.status} {await r.text()}"
            return dict(await r.json())

    before = len(texts())
    await post("/api/auth/sms/code", {"phone": person.phone})
    deadline = time.monotonic() + timeout_s
    while len(sent := texts()) <= before:
        assert time.monotonic() < deadline, f"no code sent to {masked(person.phone)}"
        await asyncio.sleep(0.05)
    session = await post("/api/auth/sms/verify", {"phone": person.phone, "code": code_in(sent[-1])})
    if person.uscc:
        option = next(o for o in session["options"] if o["uscc"] == person.uscc)
        session = await post(
            "/api/auth/act-for",
            {
                "refresh_token": session["refresh_token"],
                "enterprise_id": option["enterprise_id"],
                "role": option["role"],
            },
        )
    return session


async def sign_in_people(
    url: str,
    people: Sequence[TestPerson],
    logs: list[Path],
    *,
    source: Callable[[int], str] | None = None,
    concurrency: int = 16,
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Many registered people signed in by SMS code at `url` (`sms_sign_in`, `concurrency` at
    a time), the codes read from the nodes' `logs`: their `TaxpayerSession`s, in order.

    The logs mask a number to its last four digits, so people whose masked numbers are alike
    are signed in one after the other (in later waves), never at the same time. `source(i)`
    is the client address person i's requests come from (each its own connection), e.g. for
    nginx's ip_hash; else one connection pool serves all."""
    texts = SentTexts(logs)
    waves: list[list[int]] = []
    alike: Counter[str] = Counter()
    for i, person in enumerate(people):
        wave = alike[masked(person.phone)]
        alike[masked(person.phone)] += 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(i)
    sessions: dict[int, dict[str, Any]] = {}
    limit = asyncio.Semaphore(concurrency)

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        person = people[i]
        sessions[i] = await sms_sign_in(
            http, url, person, lambda: texts(person.phone), timeout_s=timeout_s
        )

    async def limited(shared: aiohttp.ClientSession, i: int) -> None:
        async with limit:
            if source is None:
                await one(shared, i)
                return
            connector = aiohttp.TCPConnector(local_addr=(source(i), 0))
            async with aiohttp.ClientSession(connector=connector) as own:
                await one(own, i)

    async with aiohttp.ClientSession() as shared:
        for wave_of in waves:
            await asyncio.gather(*(limited(shared, i) for i in wave_of))
    return [sessions[i] for i in range(len(people))]


async def _staff_post(
    http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any], token: str = ""
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(url + path, json=body, headers=headers) as r:
        assert r.status in (200, 204), f"{path}: {r.status} {await r.text()}"
        return await r.json() if r.status == 200 else None


async def authenticator_for(
    http: aiohttp.ClientSession, url: str, username: str, password: str
) -> pyotp.TOTP:
    """Set up a staff account's authenticator over HTTP and turn it on, as the pages do: a
    password sign-in, `POST /api/staff/totp`, then `/api/staff/totp/confirm` with the previous
    step's code (accepted, one step either way), so that a sign-in may use the current one (a
    step counts once). Its TOTP."""
    first = await _staff_post(
        http, url, "/api/auth/login", {"username": username, "password": password}
    )
    enrolment = await _staff_post(http, url, "/api/staff/totp", {}, first["token"])
    totp = pyotp.TOTP(enrolment["secret"])
    # the previous step's code is two steps old if the server's clock crosses into the next
    # step before it checks: not within 3 s of a step's end (a loaded machine's latency)
    left = totp.interval - time.time() % totp.interval
    if left < 3:
        await asyncio.sleep(left + 0.1)
    code = {"code": totp.at(int(time.time()), -1)}
    await _staff_post(http, url, "/api/staff/totp/confirm", code, first["token"])
    return totp


async def staff_with_factor(
    http: aiohttp.ClientSession, url: str, username: str, password: str
) -> str:
    """A staff member's token of a sign-in with the second factor, over HTTP: the
    authenticator set up (`authenticator_for`), then a sign-in with its current code. What
    recordings and the CSV export need (`records_need_second_factor`)."""
    totp = await authenticator_for(http, url, username, password)
    login = {"username": username, "password": password, "code": totp.now()}
    signed = await _staff_post(http, url, "/api/auth/login", login)
    assert signed["second_factor"] is True
    return str(signed["token"])
