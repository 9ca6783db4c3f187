"""The materials use case without a server: over the embedded backends with the recording
notifier of tests/unit/test_app_usecases.py, who is told what, and who is refused."""

from __future__ import annotations

import pytest

from tests.conftest import poll_until
from tests.review.helpers import PDF
from tests.unit.test_app_usecases import app, connected_taxpayer, join, online_agent
from vtax.app.ports import Caller
from vtax.contract import client_events as ce
from vtax.contract import materials as mt
from vtax.contract import server_events as se
from vtax.errors import DomainError

__all__ = ["app"]  # the fixture, shared


async def live_session(services, notifier) -> tuple[Caller, Caller, str]:
    agent = await online_agent(services, notifier)
    taxpayer = await connected_taxpayer(services, notifier)
    await services.queueing.join(taxpayer, join())
    await services.queue.tick()
    offers = await poll_until(lambda: notifier.of(notifier.users, agent.subject, se.OfferNew))
    accepted = await services.queueing.accept(agent, ce.OfferAccept(offer_id=offers[0].offer_id))
    return agent, taxpayer, accepted.session_id


async def test_hand_in_review_and_who_is_told(app):
    services, notifier = app
    agent, taxpayer, sid = await live_session(services, notifier)
    materials = services.materials

    view = await materials.submit(taxpayer, sid, filename="a.pdf", data=PDF)
    assert view.state == "submitted" and view.session_id == sid
    told = notifier.of(notifier.users, agent.subject, mt.MaterialNew)
    assert [m.material.id for m in told] == [view.id]
    assert notifier.of(notifier.users, taxpayer.subject, mt.MaterialNew)[0].material == view

    stranger = Caller("someone-else", "agent")
    for call in (
        materials.of_session(stranger, sid),
        materials.open(stranger, sid, view.id),
        materials.review(stranger, sid, view.id, mt.MaterialReviewIn(decision="accept")),
        materials.submit(Caller("tp-2", "taxpayer"), sid, filename="a.pdf", data=PDF),
    ):
        with pytest.raises(DomainError) as exc:
            await call
        assert exc.value.code == "not_found"

    body = mt.MaterialReviewIn(decision="reject", reason="page 2 is missing")
    rejected = await materials.review(agent, sid, view.id, body)
    assert rejected.state == "rejected" and rejected.reason == "page 2 is missing"
    notice = notifier.of(notifier.users, taxpayer.subject, mt.MaterialReviewedNotice)
    assert notice[0].material == rejected
    boss = Caller("boss", "supervisor")
    opened, data = await materials.open(boss, sid, view.id)
    assert data == PDF and opened.sha256 == view.sha256
    assert await materials.hashes(sid, [view.id]) == {view.id: view.sha256}
