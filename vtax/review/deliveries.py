"""The 'deliver' step: the agent hands the taxpayer documents (PDF or image), the taxpayer
downloads them (the SHA-256 is checked again on every download) and acknowledges; the
receipt keeps when, which bytes and who. The document type is sniffed from the content, never
taken from the client's name or content type."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.errors import DomainError
from vtax.models import (
    Delivery,
    DeliveryReceipt,
    ServiceSession,
    SessionRating,
    SessionSummary,
    Taxpayer,
)
from vtax.review import audit
from vtax.review.audit import Actor
from vtax.review.loop import DeliveryState, Step, require, require_acknowledge
from vtax.review.records import Scope, decode_cursor, encode_cursor
from vtax.review.views import delivery_view, loop_state

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DeliveryStatus = Literal["pending", "acknowledged", "all"]


@dataclass(frozen=True, slots=True)
class DocumentType:
    media_type: str
    extension: str


# What `sniff` recognises (the pages check a file's type against these before sending it).
DOCUMENT_MEDIA_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/webp")


def sniff(head: bytes) -> DocumentType | None:
    """The document type from its first bytes: PDF, PNG, JPEG or WebP; None for anything else."""
    if head.startswith(b"%PDF-"):
        return DocumentType("application/pdf", "pdf")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return DocumentType("image/png", "png")
    if head.startswith(b"\xff\xd8\xff"):
        return DocumentType("image/jpeg", "jpg")
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return DocumentType("image/webp", "webp")
    return None


def check_document(data: bytes, max_bytes: int) -> DocumentType:
    """The checks every uploaded document passes (deliveries, appointment materials): not
    empty, at most `max_bytes`, a PDF, PNG, JPEG or WebP by its content."""
    if not data:
        raise DomainError("invalid_payload", "the document is empty")
    if len(data) > max_bytes:
        raise DomainError("payload_too_large", f"documents are at most {max_bytes} bytes")
    doc = sniff(data[:16])
    if doc is None:
        raise DomainError(
            "unsupported_media_type", "only PDF, PNG, JPEG and WebP documents are accepted"
        )
    return doc


_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)


def clean_filename(name: str, doc: DocumentType) -> str:
    """A display name without paths or control characters, ending in the sniffed extension."""
    base = _UNSAFE.sub("_", os.path.basename(name.replace("\\", "/"))).strip(" ._")[:150]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem or 'document'}.{doc.extension}"


class DocumentStore:
    """Files under one folder, written atomically (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("storage key escapes the documents folder")
        return path

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def remove(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


class Deliveries:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: DocumentStore,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._sessions = sessions
        self.store = store
        self.max_bytes = max_bytes

    async def deliver(
        self,
        session_id: str,
        agent_id: str,
        at: datetime,
        *,
        filename: str,
        data: bytes,
        note: str = "",
    ) -> dict[str, Any]:
        """Store a document for the session's taxpayer; only the agent who served it."""
        doc = check_document(data, self.max_bytes)
        async with self._sessions() as db, db.begin():
            row = await db.get(ServiceSession, session_id, with_for_update=True)
            if row is None or row.agent_id != agent_id:
                raise DomainError("not_found", "no such session")
            summary = await db.get(SessionSummary, session_id)
            rated = await db.get(SessionRating, session_id) is not None
            require(loop_state(row, summary, rated), Step.DELIVER)
            delivery_id = str(uuid.uuid4())
            key = f"{session_id}/{delivery_id}.{doc.extension}"
            delivery = Delivery(
                id=delivery_id,
                session_id=session_id,
                agent_id=agent_id,
                taxpayer_id=row.taxpayer_id,
                filename=clean_filename(filename, doc),
                media_type=doc.media_type,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                storage_key=key,
                note=note,
                created_at=at,
                download_count=0,
            )
            db.add(delivery)
            audit.append(
                db,
                session_id,
                at,
                Actor("agent", agent_id),
                "delivered",
                {"delivery_id": delivery_id, "sha256": delivery.sha256, "size": len(data)},
            )
            # The file first: if it cannot be written the transaction rolls back, and a file
            # left behind by a failed commit is unreferenced, never a row without its file.
            await self.store.put(key, data)
        return delivery_view(delivery, None)

    @staticmethod
    def _visible(scope: Scope) -> Any:
        """A supervisor sees every delivery, an agent the ones they made; a taxpayer those of
        the sessions they may see (`Scope`): their own, and acting for an enterprise as its
        legal representative or finance officer all of the enterprise's, as its tax handler
        the enterprise's they took part in. Deliveries go to the enterprise."""
        if scope.role == "supervisor":
            return None
        if scope.role == "agent":
            return Delivery.agent_id == scope.subject
        if scope.role == "taxpayer":
            return Delivery.session_id.in_(select(ServiceSession.id).where(scope.clause()))
        return Delivery.id.is_(None)

    async def _get(
        self, db: AsyncSession, delivery_id: str, scope: Scope, *, lock: bool = False
    ) -> Delivery:
        query = select(Delivery).where(Delivery.id == delivery_id)
        visible = self._visible(scope)
        if visible is not None:
            query = query.where(visible)
        if lock:
            query = query.with_for_update(of=Delivery)
        delivery = await db.scalar(query)
        if delivery is None:
            raise DomainError("not_found", "no such delivery")
        return delivery

    async def get(self, delivery_id: str, scope: Scope) -> dict[str, Any]:
        async with self._sessions() as db:
            delivery = await self._get(db, delivery_id, scope)
            return delivery_view(delivery, await db.get(DeliveryReceipt, delivery_id))

    async def list(
        self,
        scope: Scope,
        *,
        status: DeliveryStatus = "all",
        session_id: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; `pending` is every delivery not yet acknowledged."""
        d = Delivery
        where: list[Any] = []
        visible = self._visible(scope)
        if visible is not None:
            where.append(visible)
        if status == "pending":
            where.append(d.acknowledged_at.is_(None))
        elif status == "acknowledged":
            where.append(d.acknowledged_at.is_not(None))
        if session_id is not None:
            where.append(d.session_id == session_id)
        if before:
            created, did = decode_cursor(before)
            where.append(or_(d.created_at < created, and_(d.created_at == created, d.id < did)))
        query = (
            select(d, DeliveryReceipt)
            .outerjoin(DeliveryReceipt, DeliveryReceipt.delivery_id == d.id)
            .where(*where)
            .order_by(d.created_at.desc(), d.id.desc())
            .limit(limit + 1)
        )
        async with self._sessions() as db:
            rows = (await db.execute(query)).all()
        views = [delivery_view(x, r) for x, r in rows[:limit]]
        last = rows[limit - 1][0] if len(rows) > limit else None
        return views, (encode_cursor(last.created_at, last.id) if last is not None else None)

    async def download(
        self, delivery_id: str, scope: Scope, at: datetime
    ) -> tuple[dict[str, Any], bytes]:
        """The document's bytes after checking them against the stored SHA-256; a taxpayer's
        download is recorded (it enables the acknowledgement)."""
        async with self._sessions() as db:
            delivery = await self._get(db, delivery_id, scope)
            key, expected = delivery.storage_key, delivery.sha256
            session_id = delivery.session_id
        try:
            data = await self.store.get(key)
        except FileNotFoundError:
            data = b""
        if hashlib.sha256(data).hexdigest() != expected:
            async with self._sessions() as db, db.begin():
                audit.append(
                    db,
                    session_id,
                    at,
                    audit.SYSTEM,
                    "document_corrupted",
                    {"delivery_id": delivery_id},
                )
            raise DomainError(
                "document_corrupted", "the stored document does not match its SHA-256"
            )
        async with self._sessions() as db, db.begin():
            locked = await db.get(Delivery, delivery_id, with_for_update=True)
            assert locked is not None
            if scope.role == "taxpayer":
                locked.download_count += 1
                if locked.first_downloaded_at is None:
                    locked.first_downloaded_at = at
            audit.append(
                db,
                session_id,
                at,
                Actor(scope.role, scope.subject),
                "downloaded",
                {"delivery_id": delivery_id},
            )
            view = delivery_view(locked, await db.get(DeliveryReceipt, delivery_id))
        return view, data

    async def acknowledge(
        self, delivery_id: str, scope: Scope, at: datetime, sha256: str | None = None
    ) -> dict[str, Any]:
        """A taxpayer who may see the delivery confirms receipt (for an enterprise, any of
        its people who see it: the receipt names the one who acknowledged); the receipt is
        written once (a repeat returns it)."""
        if scope.role != "taxpayer":
            raise DomainError("not_found", "no such delivery")
        taxpayer_id = scope.subject
        async with self._sessions() as db, db.begin():
            delivery = await self._get(db, delivery_id, scope, lock=True)
            receipt = await db.get(DeliveryReceipt, delivery_id)
            if sha256 is not None and sha256.lower() != delivery.sha256:
                raise DomainError(
                    "hash_mismatch", "that SHA-256 is not the one of the delivered document"
                )
            if receipt is not None:
                return delivery_view(delivery, receipt)
            require_acknowledge(DeliveryState(delivery.first_downloaded_at is not None, False))
            taxpayer = await db.get(Taxpayer, taxpayer_id)
            assert taxpayer is not None
            receipt = DeliveryReceipt(
                delivery_id=delivery_id,
                taxpayer_id=taxpayer_id,
                id_type=taxpayer.id_type,
                id_number=taxpayer.id_number,
                taxpayer_name=taxpayer.name,
                sha256=delivery.sha256,
                acknowledged_at=at,
            )
            db.add(receipt)
            delivery.acknowledged_at = at
            audit.append(
                db,
                delivery.session_id,
                at,
                Actor("taxpayer", taxpayer_id),
                "acknowledged",
                {"delivery_id": delivery_id, "sha256": delivery.sha256}
                | ({"for_enterprise": scope.acting_for} if scope.acting_for else {}),
            )
            return delivery_view(delivery, receipt)
