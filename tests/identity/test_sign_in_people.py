"""tests/signin.py's `sign_in_people`, which the benchmarks sign their taxpayers in with, against
a running node whose log sender writes to a file, as a `vtax serve` node's log: each person
gets their own session, also when the log's masked numbers of two people are alike."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.signin import TestPerson, derived_resident_id, registry_csv, sign_in_people
from vtax.app.identity import today_in
from vtax.db import session_factory
from vtax.identity.importer import import_text
from vtax.sms import masked


@pytest.fixture
def node_log(tmp_path: Path) -> Iterator[Path]:
    """The SMS log sender's lines in a file (`vtax serve` writes them to its log)."""
    path = tmp_path / "node.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    sms_log = logging.getLogger("vtax.sms")
    sms_log.addHandler(handler)
    try:
        yield path
    finally:
        sms_log.removeHandler(handler)
        handler.close()


async def test_people_with_alike_masked_numbers_each_get_their_own_session(
    server: RunningServer, node_log: Path
) -> None:
    # Four people of whom three share their masked number (+86139****1234), one does not.
    phones = ["+8613900001234", "+8613911111234", "+8613922221234", "+8613900005678"]
    people = [
        TestPerson(f"Person {i}", derived_resident_id(f"alike:{i}"), phone)
        for i, phone in enumerate(phones)
    ]
    assert len({masked(p.phone) for p in people}) == 2
    report = await import_text(
        session_factory(server.ctx.engine),
        registry_csv(people),
        "csv",
        today_in(server.ctx.settings.service_timezone)(),
    )
    assert not report.errors, [str(e) for e in report.errors]

    sessions = await sign_in_people(server.url, people, [node_log], concurrency=4, timeout_s=10)

    assert [s["person"]["name"] for s in sessions] == [p.name for p in people]
    assert len({s["access_token"] for s in sessions}) == len(people)
    for session in sessions:  # each token is good at the node
        principal = await server.ctx.services.authenticate(session["access_token"])
        assert principal.subject == session["person"]["person_id"]
