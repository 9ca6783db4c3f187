"""Shared helpers of the review tests: sessions written through the same record calls the
signaling layer makes, with fixed times, and small HTTP shortcuts."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import RunningServer
from vtax.app.identity import STAFF_MFA
from vtax.identity.tokens import SignIn
from vtax.review.audit import Actor
from vtax.review.records import SessionRecords

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class People:
    """Tokens and ids of one agent, a second agent, two taxpayers and a supervisor."""

    agent: str
    agent_id: str
    other_agent: str
    other_agent_id: str
    taxpayer: str
    taxpayer_id: str
    other_taxpayer: str
    other_taxpayer_id: str
    supervisor: str


async def signed_in(server: RunningServer, person_id: str) -> str:
    """A taxpayer's access token from a sign-in of the identity use case (`TaxpayerSignIn.
    start`, what every provider calls once the person is proven; the providers have their
    tests in tests/identity): a fresh level-4 one, as signing a receipt needs (the step-up
    has its tests in tests/identity/test_step_up.py)."""
    signin = server.ctx.services.identity.signin
    person = await signin.registry.person(person_id)
    assert person is not None, person_id
    session = await signin.start(person, SignIn("oidc", 4, time.time()))
    return session.access_token


async def people(server: RunningServer, cast: Any) -> People:
    """Tokens for the cast of the review test database (signing in is tested elsewhere)."""
    issue = server.ctx.issuer.issue
    return People(
        issue(cast.agent, "agent", "Agent One"),
        cast.agent,
        issue(cast.other_agent, "agent", "Agent Two"),
        cast.other_agent,
        await signed_in(server, cast.taxpayer),
        cast.taxpayer,
        await signed_in(server, cast.other_taxpayer),
        cast.other_taxpayer,
        # signed in with the second factor, as recordings and exports need (STAFF_MFA)
        issue(cast.supervisor, "supervisor", "Boss", claims={"amr": STAFF_MFA}),
    )


async def served(
    records: SessionRecords,
    taxpayer_id: str,
    agent_id: str | None,
    *,
    joined: datetime = T0,
    wait_s: float = 10,
    talk_s: float | None = 60,
    outcome: str = "completed",
    category: str = "invoices",
    channel: str = "web",
    language: str = "zh-CN",
) -> str:
    """A session through join, offer, answer and end (or abandoned when agent_id is None)."""
    sid = str(uuid.uuid4())
    await records.open(
        session_id=sid,
        ticket_id=str(uuid.uuid4()),
        taxpayer_id=taxpayer_id,
        category=category,
        language=language,
        channel=channel,
        question="How do I file?",
        joined_at=joined,
    )
    answered = joined + timedelta(seconds=wait_s)
    if agent_id is None:
        assert await records.abandoned(sid, answered, "left")
        return sid
    assert await records.offered(sid, agent_id, joined + timedelta(seconds=1))
    await records.answered(sid, agent_id, answered)
    if talk_s is not None:
        ended = answered + timedelta(seconds=talk_s)
        assert await records.ended(sid, ended, outcome, "hangup", Actor("agent", agent_id))
    return sid


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


async def call(
    server: RunningServer,
    method: str,
    path: str,
    token: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """(status, JSON body or raw bytes)."""
    async with server.http.request(
        method, server.url + path, headers=bearer(token) | kwargs.pop("headers", {}), **kwargs
    ) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.read()


SUMMARY = {
    "asked": "how to issue a red-letter invoice",
    "handled": "walked through the steps",
    "result": "resolved",
    "items": ["invoices.red_letter_invoice"],
}
