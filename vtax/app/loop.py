"""The review loop's one front door: ask -> handle -> check -> evaluate -> deliver.

Socket.IO (`session:summary`, `session:check`, `session:rate`) and REST (`POST
/api/sessions/{id}/summary|check|rating|follow-up`, deliveries and their receipts) both call
these use cases, so both answer the same and both announce the step (`session:loop`) to the
other party, on whichever node it is connected. The loop itself is vtax.review.service_loop;
access to a session (who may see it) is checked by the caller's transport through
`SessionRecords.get(session_id, scope)` before the step, and again by the step itself (only
the session's agent may summarize, only its taxpayer may check and rate)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from vtax.app.ports import Caller, Notifier
from vtax.app.step_up import StepUpGate
from vtax.catalog import Catalog
from vtax.contract import client_events as ce
from vtax.contract import server_events as se
from vtax.review.deliveries import Deliveries
from vtax.review.records import Scope, SessionRecords
from vtax.review.service_loop import FormCheck, Parties, StepResult

log = logging.getLogger(__name__)
Step = Literal["summary", "check", "rating", "follow_up", "delivery_ack"]


def now() -> datetime:
    return datetime.now(UTC)


class ReviewLoop:
    def __init__(
        self,
        records: SessionRecords,
        deliveries: Deliveries,
        catalog: Catalog,
        notifier: Notifier,
        form_check: FormCheck | None = None,
        step_up: StepUpGate | None = None,
    ) -> None:
        self.records = records
        # signing a receipt needs a fresh high sign-in (None: setting `step_up_receipts` off)
        self.step_up = step_up
        # the confirmation form the summary records (vtax/app/confirmation.py summary_form)
        self.form_check = form_check
        self.deliveries = deliveries
        self.catalog = catalog
        self.notifier = notifier

    async def announce(self, session_id: str, step: Step, parties: Parties, *to: str) -> None:
        """`session:loop {session_id, step}` to the session's taxpayer and/or agent (`to`),
        and to every supervisor: their pages refresh at once instead of polling. `parties` are the
        ones the step read under its lock, so announcing costs no query. Never fails the
        step that caused it."""
        try:
            message = se.LoopChanged(session_id=session_id, step=step)
            for role, subject in zip(("taxpayer", "agent"), parties, strict=True):
                if role in to and subject:
                    await self.notifier.to_user(subject, message)
            # Supervisors' session lists show every step: they refresh on it, not on a timer.
            await self.notifier.to_role("supervisor", message)
        except Exception:
            log.exception("could not announce %s of session %s", step, session_id)

    async def summary(self, caller: Caller, session_id: str, p: ce.SummaryBody) -> StepResult:
        """Handle: the session's agent saves or revises the summary (`{version}`)."""
        self.catalog.check_categories(p.category)
        self.catalog.check_items(p.items)
        saved = await self.records.loop.save_summary(
            session_id,
            caller.subject,
            now(),
            asked=p.asked,
            handled=p.handled,
            result=p.result,
            items=p.items,
            category=p.category,
            actions=p.actions,
            follow_up_due=p.follow_up_due,
            form_check=self.form_check,
        )
        await self.announce(session_id, "summary", saved.parties, "taxpayer")
        return saved

    async def check(self, caller: Caller, session_id: str, p: ce.CheckBody) -> StepResult:
        """Check: the taxpayer confirms or disputes the current summary."""
        checked = await self.records.loop.check(
            session_id,
            caller.subject,
            now(),
            decision="confirmed" if p.decision == "confirm" else "disputed",
            comment=p.comment,
            version=p.version,
        )
        await self.announce(session_id, "check", checked.parties, "agent")
        return checked

    async def rate(self, caller: Caller, session_id: str, p: ce.RatingBody) -> StepResult:
        """Evaluate: the taxpayer rates the ended session, once."""
        rated = await self.records.loop.rate(
            session_id,
            caller.subject,
            now(),
            score=p.score,
            comment=p.comment,
            dimensions=p.dimensions.model_dump(exclude_none=True) if p.dimensions else None,
        )
        await self.announce(session_id, "rating", rated.parties, "agent")
        return rated

    async def close_follow_up(self, caller: Caller, session_id: str, note: str) -> StepResult:
        """The follow-up the summary promised is done (agent or supervisor)."""
        done = await self.records.loop.close_follow_up(session_id, caller.actor, now(), note)
        await self.announce(session_id, "follow_up", done.parties, "taxpayer", "agent")
        return done

    async def deliver(
        self, caller: Caller, session_id: str, *, filename: str, data: bytes, note: str
    ) -> dict[str, Any]:
        """Deliver: the agent sends a document; the taxpayer's pages hear of it at once."""
        view = await self.deliveries.deliver(
            session_id, caller.subject, now(), filename=filename, data=data, note=note
        )
        news = se.DeliveryNew(
            id=view["id"],
            session_id=view["session_id"],
            filename=view["filename"],
            media_type=view["media_type"],
            size_bytes=view["size_bytes"],
            sha256=view["sha256"],
        )
        await self.notifier.to_user(view["taxpayer_id"], news)
        return view

    async def acknowledge(
        self, caller: Caller, delivery_id: str, sha256: str | None
    ) -> dict[str, Any]:
        """The taxpayer's receipt of a document (its hash must match what was sent), signed
        after a fresh high-level sign-in (`step_up_required`)."""
        if self.step_up is not None:
            await self.step_up.require(caller, "delivery_ack", delivery_id)
        scope = Scope(caller.role, caller.subject, caller.acting_for, caller.acting_role)
        view = await self.deliveries.acknowledge(delivery_id, scope, now(), sha256)
        # The delivery's taxpayer and agent are the session's (copied from its row at delivery).
        parties = Parties(view["taxpayer_id"], view["agent_id"])
        await self.announce(view["session_id"], "delivery_ack", parties, "agent")
        return view
