"""The confirmation form's rows: immutable versions and decisions, one transaction per step.

Each step locks the session row first (the review loop's steps lock it too), so the versions
of a session are numbered one after the other and a decision is taken on the version that is
latest when it commits. The unique (session_id, version) constraints are the last guard: a
version number or a decision is never written twice, on either engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.errors import DomainError
from vtax.models import FormDecision, FormRecorded, FormVersion, ServiceSession, SessionEvent

Decision = Literal["confirmed", "refused"]


@dataclass(frozen=True, slots=True)
class Parties:
    taxpayer_id: str
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """What a step left: the latest version's view, and whether it changed anything."""

    view: dict[str, Any]
    changed: bool
    parties: Parties


def iso(t: datetime) -> str:
    return t.isoformat()


def decision_view(d: FormDecision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "decision": d.decision,
        "taxpayer_id": d.taxpayer_id,
        "at": iso(d.at),
        "reason": d.reason,
        "sha256": d.sha256,
    }


def complete(content: dict[str, Any]) -> bool:
    return all(
        m["material_id"] is not None
        for item in content["items"]
        for m in item["materials"]
        if m["required"]
    )


def version_view(v: FormVersion, d: FormDecision | None, latest_no: int) -> dict[str, Any]:
    state = (
        d.decision if d is not None else ("proposed" if v.version == latest_no else "superseded")
    )
    return {
        "session_id": v.session_id,
        "version": v.version,
        "sha256": v.sha256,
        "content": v.content,
        "author_id": v.author_id,
        "proposed_at": iso(v.proposed_at),
        "state": state,
        "latest": v.version == latest_no,
        "complete": complete(v.content),
        "decision": decision_view(d),
    }


def record_of(view: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The form as the summary records it (contract `FormRecord`)."""
    decision = view["decision"]
    confirmed = decision is not None and decision["decision"] == "confirmed"
    return {
        "version": view["version"],
        "sha256": view["sha256"],
        "state": view["state"],
        "confirmed_by": decision["taxpayer_id"] if confirmed else None,
        "confirmed_at": decision["at"] if confirmed else None,
        "items": [item["code"] for item in view["content"]["items"]],
        "materials": [m for item in view["content"]["items"] for m in item["materials"]],
        "recorded_at": iso(at),
    }


class FormStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _retrying(self, step: Any) -> Step:
        # A concurrent step of the same session that numbered the same version loses once on
        # the unique constraint (SQLite does not lock the row), then reads the winner's row.
        for attempt in range(3):
            try:
                result: Step = await step()
                return result
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _live_row(self, db: AsyncSession, session_id: str) -> ServiceSession:
        row = await db.get(ServiceSession, session_id, with_for_update=True)
        if row is None:
            raise DomainError("not_in_session", "you are not a participant of that session")
        return row

    @staticmethod
    async def _latest(
        db: AsyncSession, session_id: str
    ) -> tuple[FormVersion | None, FormDecision | None]:
        version = await db.scalar(
            select(FormVersion)
            .where(FormVersion.session_id == session_id)
            .order_by(FormVersion.version.desc())
            .limit(1)
        )
        if version is None:
            return None, None
        decision = await db.scalar(
            select(FormDecision).where(
                FormDecision.session_id == session_id, FormDecision.version == version.version
            )
        )
        return version, decision

    async def propose(
        self, session_id: str, agent_id: str, at: datetime, content: dict[str, Any], sha256: str
    ) -> Step:
        """A new version from the session's agent while the call is live. The same content as
        the latest version, while that is undecided or confirmed, is no new version."""

        async def step() -> Step:
            async with self._sessions() as db, db.begin():
                row = await self._live_row(db, session_id)
                if row.agent_id != agent_id:
                    raise DomainError(
                        "not_in_session", "only the session's agent proposes its form"
                    )
                if row.outcome != "live":
                    raise DomainError("session_ended", "the form is proposed during the call")
                parties = Parties(row.taxpayer_id, row.agent_id)
                latest, decision = await self._latest(db, session_id)
                if latest is not None and latest.sha256 == sha256:
                    if decision is None or decision.decision == "confirmed":
                        return Step(version_view(latest, decision, latest.version), False, parties)
                number = 1 if latest is None else latest.version + 1
                version = FormVersion(
                    session_id=session_id,
                    version=number,
                    content=content,
                    sha256=sha256,
                    author_id=agent_id,
                    proposed_at=at,
                )
                db.add(version)
                db.add(
                    SessionEvent(
                        session_id=session_id,
                        at=at,
                        actor_role="agent",
                        actor_id=agent_id,
                        kind="form_proposed",
                        data={"version": number, "sha256": sha256},
                    )
                )
                await db.flush()
                return Step(version_view(version, None, number), True, parties)

        return await self._retrying(step)

    async def decide(
        self,
        session_id: str,
        taxpayer_id: str,
        at: datetime,
        *,
        version: int,
        sha256: str,
        decision: Decision,
        reason: str = "",
    ) -> Step:
        """The session's taxpayer confirms or refuses the latest version, named by its number
        and hash. The same decision again is a no-op; any other on a decided version is
        refused, so a confirmed version never changes."""

        async def step() -> Step:
            async with self._sessions() as db, db.begin():
                row = await self._live_row(db, session_id)
                if row.taxpayer_id != taxpayer_id:
                    raise DomainError(
                        "not_in_session", "only the session's taxpayer decides on its form"
                    )
                if row.outcome != "live":
                    raise DomainError("session_ended", "the form is decided during the call")
                parties = Parties(row.taxpayer_id, row.agent_id)
                latest, existing = await self._latest(db, session_id)
                if latest is None:
                    raise DomainError("not_found", "this session has no confirmation form yet")
                if version != latest.version:
                    raise DomainError(
                        "form_version_stale",
                        f"version {version} is not the latest; the form is at version "
                        f"{latest.version}: read it and decide on that",
                    )
                if sha256.lower() != latest.sha256:
                    raise DomainError(
                        "form_hash_mismatch",
                        f"that is not the hash of version {version}'s content",
                    )
                if existing is not None:
                    if existing.decision == decision and existing.reason == reason:
                        view = version_view(latest, existing, latest.version)
                        return Step(view, False, parties)
                    raise DomainError(
                        "form_already_decided",
                        f"version {version} was {existing.decision} already; it cannot change",
                    )
                made = FormDecision(
                    session_id=session_id,
                    version=version,
                    decision=decision,
                    reason=reason,
                    taxpayer_id=taxpayer_id,
                    sha256=latest.sha256,
                    at=at,
                )
                db.add(made)
                kind = "form_confirmed" if decision == "confirmed" else "form_refused"
                data: dict[str, Any] = {"version": version, "sha256": latest.sha256}
                if reason:
                    data["reason"] = reason
                db.add(
                    SessionEvent(
                        session_id=session_id,
                        at=at,
                        actor_role="taxpayer",
                        actor_id=taxpayer_id,
                        kind=kind,
                        data=data,
                    )
                )
                await db.flush()
                return Step(version_view(latest, made, latest.version), True, parties)

        return await self._retrying(step)

    async def parties(self, session_id: str) -> Parties | None:
        async with self._sessions() as db:
            row = await db.get(ServiceSession, session_id)
            return None if row is None else Parties(row.taxpayer_id, row.agent_id)

    async def latest(self, session_id: str) -> dict[str, Any] | None:
        async with self._sessions() as db:
            version, decision = await self._latest(db, session_id)
            return None if version is None else version_view(version, decision, version.version)

    async def latest_in(self, db: AsyncSession, session_id: str) -> dict[str, Any] | None:
        """The latest version inside the caller's transaction (the summary's)."""
        version, decision = await self._latest(db, session_id)
        return None if version is None else version_view(version, decision, version.version)

    @staticmethod
    async def record_in(
        db: AsyncSession, session_id: str, record: dict[str, Any], at: datetime
    ) -> None:
        """Keep `record` as what the summary recorded, in the summary's transaction (the
        session row is locked: one writer)."""
        row = await db.get(FormRecorded, session_id)
        if row is None:
            db.add(FormRecorded(session_id=session_id, record=record, saved_at=at))
        else:
            row.record, row.saved_at = record, at

    async def recorded(self, session_id: str) -> dict[str, Any] | None:
        async with self._sessions() as db:
            row = await db.get(FormRecorded, session_id)
            return None if row is None else dict(row.record)

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        """Every version, oldest first, each with its decision."""
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(FormVersion, FormDecision)
                    .outerjoin(
                        FormDecision,
                        (FormDecision.session_id == FormVersion.session_id)
                        & (FormDecision.version == FormVersion.version),
                    )
                    .where(FormVersion.session_id == session_id)
                    .order_by(FormVersion.version)
                )
            ).all()
        latest_no = max((v.version for v, _ in rows), default=0)
        return [version_view(v, d, latest_no) for v, d in rows]
