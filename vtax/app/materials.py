"""Materials from the taxpayer, inside the call: the taxpayer uploads a PDF or image, or a
still from the camera; the session's agent sees it at once (`material:new`), opens it, and
accepts it or rejects it with a reason (`material:reviewed` tells the taxpayer). REST
(signaling/materials_api.py) and Socket.IO (`material:review`) both call these use cases.

Who may do what:
- hand in: the session's taxpayer, while the session is live (in the live store);
- review: an agent of the session (its record's agent, or an agent participant of the live
  session), during the call or after it;
- list and open: the session's taxpayer and agents, and supervisors; anyone else gets 404,
  so nobody learns whose session it is.

For the confirmation form (vtax/app/confirmation...): `hashes(session_id, material_ids)`
answers `{material_id: sha256}` for materials of that session (`not_found` if one is not),
and `views(session_id, material_ids)` the whole `MaterialView`s (state included)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from vtax.app.ports import Caller, Notifier
from vtax.contract import client_events as ce
from vtax.contract import materials as mt
from vtax.contract.base import ServerEvent
from vtax.errors import DomainError
from vtax.live import LiveStore
from vtax.review.materials import MaterialStore

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


class Materials:
    def __init__(self, store: MaterialStore, live: LiveStore, notifier: Notifier) -> None:
        self.store = store
        self.live = live
        self.notifier = notifier
        self.clock = now

    @property
    def max_bytes(self) -> int:
        return self.store.max_bytes

    async def _parties(self, session_id: str) -> tuple[str, set[str], bool]:
        """(taxpayer_id, agent ids, live) of a session; not_found if it has no record."""
        parties = await self.store.parties(session_id)
        if parties is None:
            raise DomainError("not_found", "no such session")
        taxpayer_id, agent_id = parties
        agents = {agent_id} if agent_id else set()
        live = await self.live.get(session_id)
        if live is not None:
            agents.add(live.agent_id)
            agents.update(p.subject for p in live.participants.values() if p.role == "agent")
        return taxpayer_id, agents, live is not None

    async def _visible(self, caller: Caller, session_id: str) -> tuple[str, set[str]]:
        taxpayer_id, agents, _ = await self._parties(session_id)
        allowed = (
            caller.role == "supervisor"
            or (caller.role == "taxpayer" and caller.subject == taxpayer_id)
            or (caller.role == "agent" and caller.subject in agents)
        )
        if not allowed:
            raise DomainError("not_found", "no such session")
        return taxpayer_id, agents

    async def _tell(self, subjects: Sequence[str], message: ServerEvent) -> None:
        """Push to each account; a failed push never fails the step (the list is on REST)."""
        for subject in subjects:
            try:
                await self.notifier.to_user(subject, message)
            except Exception:
                log.exception("could not push %s to %s", message.event, subject)

    async def submit(
        self,
        caller: Caller,
        session_id: str,
        *,
        filename: str,
        data: bytes,
        source: mt.MaterialSource = "file",
        replaces: str | None = None,
    ) -> mt.MaterialView:
        """The session's taxpayer hands in a material during the call."""
        taxpayer_id, agents, live = await self._parties(session_id)
        if caller.role != "taxpayer" or caller.subject != taxpayer_id:
            raise DomainError("not_found", "no such session")
        if not live:
            raise DomainError("invalid_state", "materials are handed in during the call")
        view = mt.MaterialView.model_validate(
            await self.store.add(
                session_id,
                taxpayer_id,
                self.clock(),
                filename=filename,
                data=data,
                source=source,
                replaces=replaces,
            )
        )
        news = mt.MaterialNew(session_id=session_id, material=view)
        await self._tell([*sorted(agents), taxpayer_id], news)
        return view

    async def review(
        self, caller: Caller, session_id: str, material_id: str, p: mt.MaterialReviewIn
    ) -> mt.MaterialView:
        """An agent of the session accepts a submitted material or rejects it with a reason."""
        taxpayer_id, agents, _ = await self._parties(session_id)
        if caller.role != "agent" or caller.subject not in agents:
            raise DomainError("not_found", "no such session")
        view = mt.MaterialView.model_validate(
            await self.store.review(
                session_id,
                material_id,
                caller.subject,
                self.clock(),
                accept=p.decision == "accept",
                reason=p.reason,
            )
        )
        notice = mt.MaterialReviewedNotice(session_id=session_id, material=view)
        await self._tell([taxpayer_id, *sorted(agents)], notice)
        return view

    async def review_event(self, caller: Caller, p: ce.MaterialReview) -> mt.MaterialReviewed:
        """`material:review`: the same review over Socket.IO."""
        body = mt.MaterialReviewIn(decision=p.decision, reason=p.reason)
        view = await self.review(caller, p.session_id, p.material_id, body)
        return mt.MaterialReviewed(material=view)

    async def of_session(self, caller: Caller, session_id: str) -> mt.MaterialList:
        """The session's materials, oldest first (after a reload or a resume, the page's list)."""
        await self._visible(caller, session_id)
        rows = await self.store.of_session(session_id)
        return mt.MaterialList(materials=[mt.MaterialView.model_validate(r) for r in rows])

    async def open(
        self, caller: Caller, session_id: str, material_id: str
    ) -> tuple[mt.MaterialView, bytes]:
        """A material's bytes for its session's people and supervisors (the opening audited)."""
        await self._visible(caller, session_id)
        view, data = await self.store.content(session_id, material_id, caller.actor, self.clock())
        return mt.MaterialView.model_validate(view), data

    # ---- for the confirmation form -------------------------------------------------------

    async def views(self, session_id: str, material_ids: Sequence[str]) -> list[mt.MaterialView]:
        """The materials `material_ids` of the session, in that order; `not_found` if one is
        not a material of that session. No caller check: the form's use case checks its own."""
        by_id = {r["id"]: r for r in await self.store.of_session(session_id)}
        missing = [m for m in material_ids if m not in by_id]
        if missing:
            raise DomainError("not_found", f"no such material in this session: {missing[0]}")
        return [mt.MaterialView.model_validate(by_id[m]) for m in material_ids]

    async def hashes(self, session_id: str, material_ids: Sequence[str]) -> dict[str, str]:
        """`{material_id: sha256}` for materials of the session (`not_found` otherwise)."""
        return {v.id: v.sha256 for v in await self.views(session_id, material_ids)}
