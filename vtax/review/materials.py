"""Materials the taxpayer hands in during the call, as stored: the row with the SHA-256 of the
bytes, the bytes in the document store under the session, the audit events. The same content
checks as deliveries (vtax.review.deliveries: type by content, size, a cleaned name). Who may
do what is the use case's (vtax/app/materials.py); this module keeps the states right:
submitted -> accepted | rejected, once, and a rejected material replaced at most once."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.errors import DomainError
from vtax.models import ServiceSession, SessionMaterial
from vtax.review import audit
from vtax.review.audit import Actor
from vtax.review.deliveries import DocumentStore, check_document, clean_filename
from vtax.review.views import iso


def material_view(m: SessionMaterial, replaced_by: str | None) -> dict[str, Any]:
    return {
        "id": m.id,
        "session_id": m.session_id,
        "filename": m.filename,
        "media_type": m.media_type,
        "size_bytes": m.size_bytes,
        "sha256": m.sha256,
        "source": m.source,
        "state": m.state,
        "reason": m.reason,
        "replaces": m.replaces,
        "replaced_by": replaced_by,
        "created_at": iso(m.created_at),
        "reviewed_at": iso(m.reviewed_at),
    }


class MaterialStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: DocumentStore,
        *,
        max_bytes: int,
        max_count: int,
    ) -> None:
        self._sessions = sessions
        self.store = store
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def parties(self, session_id: str) -> tuple[str, str | None] | None:
        """(taxpayer_id, agent_id) of the session's record, None if there is none."""
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(ServiceSession.taxpayer_id, ServiceSession.agent_id).where(
                        ServiceSession.id == session_id
                    )
                )
            ).first()
        return None if row is None else (row[0], row[1])

    async def add(
        self,
        session_id: str,
        taxpayer_id: str,
        at: datetime,
        *,
        filename: str,
        data: bytes,
        source: str,
        replaces: str | None,
    ) -> dict[str, Any]:
        """Store a material of the session's taxpayer (checked by content); a `replaces`
        must name a rejected material of the same session not replaced yet."""
        doc = check_document(data, self.max_bytes)
        try:
            async with self._sessions() as db, db.begin():
                # The session row's lock orders concurrent uploads of one session (the count).
                row = await db.get(ServiceSession, session_id, with_for_update=True)
                if row is None or row.taxpayer_id != taxpayer_id:
                    raise DomainError("not_found", "no such session")
                count = await db.scalar(
                    select(func.count())
                    .select_from(SessionMaterial)
                    .where(SessionMaterial.session_id == session_id)
                )
                if int(count or 0) >= self.max_count:
                    raise DomainError(
                        "materials_full", f"a session holds at most {self.max_count} materials"
                    )
                if replaces is not None:
                    await self._check_replaceable(db, session_id, replaces)
                material_id = str(uuid.uuid4())
                key = f"{session_id}/materials/{material_id}.{doc.extension}"
                m = SessionMaterial(
                    id=material_id,
                    session_id=session_id,
                    taxpayer_id=taxpayer_id,
                    filename=clean_filename(filename, doc),
                    media_type=doc.media_type,
                    size_bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    storage_key=key,
                    source=source,
                    replaces=replaces,
                    state="submitted",
                    created_at=at,
                )
                db.add(m)
                audit.append(
                    db,
                    session_id,
                    at,
                    Actor("taxpayer", taxpayer_id),
                    "material_submitted",
                    {
                        "material_id": material_id,
                        "sha256": m.sha256,
                        "size": len(data),
                        "source": source,
                        "replaces": replaces,
                    },
                )
                await db.flush()  # the unique `replaces` is checked here, before the file
                # The file before the commit: a failed write rolls the row back; a file left by
                # a failed commit is unreferenced, never a row without its file.
                await self.store.put(key, data)
        except IntegrityError:
            raise DomainError("invalid_state", "that material was replaced already") from None
        return material_view(m, None)

    async def _check_replaceable(self, db: AsyncSession, session_id: str, old_id: str) -> None:
        old = await db.get(SessionMaterial, old_id)
        if old is None or old.session_id != session_id:
            raise DomainError("not_found", "no such material in this session")
        if old.state != "rejected":
            raise DomainError("invalid_state", "only a rejected material can be replaced")
        taken = await db.scalar(
            select(SessionMaterial.id).where(SessionMaterial.replaces == old_id)
        )
        if taken is not None:
            raise DomainError("invalid_state", "that material was replaced already")

    async def review(
        self,
        session_id: str,
        material_id: str,
        agent_id: str,
        at: datetime,
        *,
        accept: bool,
        reason: str,
    ) -> dict[str, Any]:
        """Accept or reject a submitted material, once: the guarded UPDATE lets one review
        through on every engine; a second answers `invalid_state`."""
        state = "accepted" if accept else "rejected"
        async with self._sessions() as db, db.begin():
            done = await db.execute(
                update(SessionMaterial)
                .where(
                    SessionMaterial.id == material_id,
                    SessionMaterial.session_id == session_id,
                    SessionMaterial.state == "submitted",
                )
                .values(
                    state=state,
                    reason=None if accept else reason,
                    reviewed_by=agent_id,
                    reviewed_at=at,
                )
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                m = await db.get(SessionMaterial, material_id)
                if m is None or m.session_id != session_id:
                    raise DomainError("not_found", "no such material in this session")
                raise DomainError("invalid_state", f"the material was {m.state} already")
            m = await db.get(SessionMaterial, material_id, populate_existing=True)
            assert m is not None
            audit.append(
                db,
                session_id,
                at,
                Actor("agent", agent_id),
                f"material_{state}",
                {"material_id": material_id, "sha256": m.sha256, "reason": m.reason},
            )
            replaced_by = await self._replaced_by(db, material_id)
            return material_view(m, replaced_by)

    @staticmethod
    async def _replaced_by(db: AsyncSession, material_id: str) -> str | None:
        return await db.scalar(
            select(SessionMaterial.id).where(SessionMaterial.replaces == material_id)
        )

    async def of_session(self, session_id: str) -> list[dict[str, Any]]:
        """The session's materials, oldest first."""
        query = (
            select(SessionMaterial)
            .where(SessionMaterial.session_id == session_id)
            .order_by(SessionMaterial.created_at, SessionMaterial.id)
        )
        async with self._sessions() as db:
            rows = (await db.scalars(query)).all()
        replaced_by = {m.replaces: m.id for m in rows if m.replaces is not None}
        return [material_view(m, replaced_by.get(m.id)) for m in rows]

    async def get(self, session_id: str, material_id: str) -> dict[str, Any]:
        async with self._sessions() as db:
            m = await db.get(SessionMaterial, material_id)
            if m is None or m.session_id != session_id:
                raise DomainError("not_found", "no such material in this session")
            return material_view(m, await self._replaced_by(db, material_id))

    async def content(
        self, session_id: str, material_id: str, actor: Actor, at: datetime
    ) -> tuple[dict[str, Any], bytes]:
        """The material's bytes after checking them against the stored SHA-256; each opening
        is audited (who looked at the taxpayer's document, when)."""
        view = await self.get(session_id, material_id)
        async with self._sessions() as db:
            key = await db.scalar(
                select(SessionMaterial.storage_key).where(SessionMaterial.id == material_id)
            )
        try:
            data = await self.store.get(str(key))
        except FileNotFoundError:
            data = b""
        ok = hashlib.sha256(data).hexdigest() == view["sha256"]
        async with self._sessions() as db, db.begin():
            audit.append(
                db,
                session_id,
                at,
                actor if ok else audit.SYSTEM,
                "material_opened" if ok else "document_corrupted",
                {"material_id": material_id},
            )
        if not ok:
            raise DomainError(
                "document_corrupted", "the stored material does not match its SHA-256"
            )
        return view, data
