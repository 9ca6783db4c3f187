"""The knowledge base in the database: entries, their versions and the revision counter.

Every change is one transaction that writes the entry, appends its version and bumps the
revision; an edit names the version it started from and is refused (`kb_version_conflict`)
when someone else changed the entry in between, so no edit is lost silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.assistant.kb import Entry, EntryDraft, EntryVersion
from vtax.assistant.tables import KbEntryRow, KbEntryVersionRow, KbRevisionRow
from vtax.db import utcnow
from vtax.errors import DomainError

Change = Literal["created", "updated", "retired", "restored"]


def _snapshot(draft: EntryDraft) -> dict[str, Any]:
    return draft.model_dump(mode="json", include=set(EntryDraft.model_fields))


def _entry(row: KbEntryRow) -> Entry:
    return Entry.model_validate(
        {
            "key": row.key,
            "category": row.category,
            "items": row.items,
            "texts": row.texts,
            "valid_from": row.valid_from,
            "valid_until": row.valid_until,
            "version": row.version,
            "updated_by": row.updated_by,
            "updated_at": row.updated_at,
        }
    )


@dataclass(frozen=True, slots=True)
class StoredEntry:
    entry: Entry
    retired: bool


@dataclass(slots=True)
class ImportReport:
    """What an import did, entry by entry key."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


class KbStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def revision(self) -> int:
        """The counter every change bumps (0 before the first change)."""
        async with self._sessions() as db:
            row = await db.get(KbRevisionRow, 1)
            return 0 if row is None else row.revision

    async def entries(self, *, include_retired: bool = False) -> list[StoredEntry]:
        async with self._sessions() as db:
            stmt = select(KbEntryRow).order_by(KbEntryRow.key)
            if not include_retired:
                stmt = stmt.where(KbEntryRow.retired.is_(False))
            rows = (await db.scalars(stmt)).all()
            return [StoredEntry(_entry(r), r.retired) for r in rows]

    async def snapshot(self) -> tuple[int, list[Entry]]:
        """The revision and the live entries read in one transaction (what an index is built
        from, so the index knows which revision it reflects)."""
        async with self._sessions() as db, db.begin():
            rev = await db.get(KbRevisionRow, 1)
            stmt = select(KbEntryRow).where(KbEntryRow.retired.is_(False)).order_by(KbEntryRow.key)
            rows = (await db.scalars(stmt)).all()
            return (0 if rev is None else rev.revision), [_entry(r) for r in rows]

    async def get(self, key: str) -> StoredEntry:
        async with self._sessions() as db:
            row = await db.get(KbEntryRow, key)
            if row is None:
                raise DomainError("not_found", f"no knowledge-base entry {key[:64]!r}")
            return StoredEntry(_entry(row), row.retired)

    async def history(self, key: str) -> list[EntryVersion]:
        async with self._sessions() as db:
            stmt = (
                select(KbEntryVersionRow)
                .where(KbEntryVersionRow.key == key)
                .order_by(KbEntryVersionRow.version)
            )
            rows = (await db.scalars(stmt)).all()
            if not rows:
                raise DomainError("not_found", f"no knowledge-base entry {key[:64]!r}")
            return [
                EntryVersion(
                    key=r.key,
                    version=r.version,
                    change=r.change,  # type: ignore[arg-type]
                    changed_by=r.changed_by,
                    changed_at=r.changed_at,
                    snapshot=EntryDraft.model_validate(r.snapshot),
                )
                for r in rows
            ]

    async def create(self, draft: EntryDraft, by: str) -> Entry:
        exists = DomainError("kb_entry_exists", f"entry {draft.key!r} exists already")
        try:
            async with self._sessions() as db, db.begin():
                await self._serialize(db)
                if await db.get(KbEntryRow, draft.key) is not None:
                    raise exists
                row = self._write(db, None, draft, by, utcnow(), "created")
                await self._bump(db)
        except IntegrityError:  # created by someone else at the same moment
            raise exists from None
        return _entry(row)

    async def update(self, draft: EntryDraft, expected_version: int, by: str) -> Entry:
        """Replace an entry's content (a new version), if it is still at `expected_version`."""
        async with self._sessions() as db, db.begin():
            await self._serialize(db)
            row = await self._locked(db, draft.key, expected_version)
            change: Change = "restored" if row.retired else "updated"
            self._write(db, row, draft, by, utcnow(), change)
            await self._bump(db)
        return _entry(row)

    async def retire(self, key: str, expected_version: int, by: str) -> Entry:
        """Take an entry out of the assistant's answers; its history stays."""
        async with self._sessions() as db, db.begin():
            await self._serialize(db)
            row = await self._locked(db, key, expected_version)
            if row.retired:
                raise DomainError("invalid_state", f"entry {key!r} is retired already")
            self._write(db, row, _entry(row).draft(), by, utcnow(), "retired")
            await self._bump(db)
        return _entry(row)

    async def import_entries(
        self, drafts: Sequence[EntryDraft], by: str, *, retire_missing: bool = False
    ) -> ImportReport:
        """Create or update every entry of a file in one transaction: an entry whose content
        is unchanged keeps its version; with `retire_missing`, entries absent from the file
        are retired (the file is then the whole knowledge base)."""
        report = ImportReport()
        now = utcnow()
        async with self._sessions() as db, db.begin():
            await self._serialize(db)
            rows = {r.key: r for r in (await db.scalars(select(KbEntryRow))).all()}
            for draft in drafts:
                row = rows.get(draft.key)
                if row is None:
                    self._write(db, None, draft, by, now, "created")
                    report.created.append(draft.key)
                elif row.retired or _snapshot(_entry(row).draft()) != _snapshot(draft):
                    self._write(db, row, draft, by, now, "restored" if row.retired else "updated")
                    report.updated.append(draft.key)
                else:
                    report.unchanged.append(draft.key)
            if retire_missing:
                keep = {d.key for d in drafts}
                for key, row in sorted(rows.items()):
                    if key not in keep and not row.retired:
                        self._write(db, row, _entry(row).draft(), by, now, "retired")
                        report.retired.append(key)
            if report.created or report.updated or report.retired:
                await self._bump(db)
        return report

    # ---- inside a transaction ----------------------------------------------------------------

    @staticmethod
    async def _locked(db: AsyncSession, key: str, expected_version: int) -> KbEntryRow:
        # A write first, so SQLite takes its write lock before the version is read
        # (PostgreSQL locks the row): two edits from one version cannot both pass.
        await db.execute(
            update(KbEntryRow).where(KbEntryRow.key == key).values(version=KbEntryRow.version)
        )
        row = await db.get(KbEntryRow, key, with_for_update=True, populate_existing=True)
        if row is None:
            raise DomainError("not_found", f"no knowledge-base entry {key[:64]!r}")
        if row.version != expected_version:
            raise DomainError(
                "kb_version_conflict",
                f"entry {key!r} is at version {row.version}, not {expected_version}: "
                "reload it and apply the change again",
            )
        return row

    @staticmethod
    def _write(
        db: AsyncSession,
        row: KbEntryRow | None,
        draft: EntryDraft,
        by: str,
        now: datetime,
        change: Change,
    ) -> KbEntryRow:
        if row is None:
            row = KbEntryRow(key=draft.key, version=0)
            db.add(row)
        row.category = draft.category
        row.items = list(draft.items)
        row.texts = {lang: t.model_dump(mode="json") for lang, t in draft.texts.items()}
        row.valid_from = draft.valid_from
        row.valid_until = draft.valid_until
        row.version += 1
        row.retired = change == "retired"
        row.updated_by = by
        row.updated_at = now
        db.add(
            KbEntryVersionRow(
                key=draft.key,
                version=row.version,
                change=change,
                changed_by=by,
                changed_at=now,
                snapshot=_snapshot(draft),
            )
        )
        return row

    @staticmethod
    async def _serialize(db: AsyncSession) -> None:
        """First statement of every change: a no-op write of the revision row, so changes
        take turns on both engines (SQLite's write lock, PostgreSQL's row lock) and every
        read after it sees the committed state."""
        await db.execute(
            update(KbRevisionRow)
            .where(KbRevisionRow.id == 1)
            .values(revision=KbRevisionRow.revision)
        )

    @staticmethod
    async def _bump(db: AsyncSession) -> None:
        await db.flush()
        rev = await db.get(KbRevisionRow, 1, with_for_update=True)
        if rev is None:
            db.add(KbRevisionRow(id=1, revision=1, changed_at=utcnow()))
        else:
            rev.revision += 1
            rev.changed_at = utcnow()
