"""Consultations in the database: one row per conversation, one per turn. Turns are numbered
inside their conversation under a row lock, so two questions sent at once never share a
number; a conversation is handed off at most once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from vtax.assistant.tables import ConsultationRow, ConsultationTurnRow
from vtax.errors import DomainError


@dataclass(frozen=True, slots=True)
class Turn:
    seq: int
    speaker: str  # taxpayer | assistant | system
    kind: str  # question | answer | no_answer | handoff | note
    text: str
    language: str | None
    entry_key: str | None
    confidence: float | None
    candidates: list[dict[str, Any]]
    helpful: bool | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Unanswered:
    conversation_id: str
    language: str | None
    question: str
    best_key: str | None
    confidence: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    taxpayer: str
    language: str
    channel: str
    category: str | None
    state: str
    handoff_reason: str | None
    handoff_route: str | None
    handoff_at: datetime | None
    ticket_question: str | None
    failures: int
    started_at: datetime
    ended_at: datetime | None
    turns: list[Turn]


async def _locked(db: AsyncSession, cid: str, now: datetime) -> ConsultationRow | None:
    """The conversation's row, locked for this transaction. The UPDATE comes first so that
    SQLite, too, takes its write lock before anything is read (PostgreSQL locks the row)."""
    await db.execute(
        update(ConsultationRow).where(ConsultationRow.id == cid).values(updated_at=now)
    )
    return await db.get(ConsultationRow, cid, with_for_update=True, populate_existing=True)


def _turn(r: ConsultationTurnRow) -> Turn:
    return Turn(
        r.seq, r.speaker, r.kind, r.text, r.language, r.entry_key, r.confidence,
        list(r.candidates or []), r.helpful, r.at,
    )  # fmt: skip


class ConsultationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, taxpayer: str, language: str, channel: str, now: datetime) -> str:
        cid = str(uuid.uuid4())
        async with self._sessions() as db, db.begin():
            db.add(
                ConsultationRow(
                    id=cid,
                    taxpayer=taxpayer,
                    language=language,
                    channel=channel,
                    state="open",
                    failures=0,
                    started_at=now,
                    updated_at=now,
                )
            )
        return cid

    async def get(self, cid: str, taxpayer: str | None = None) -> Conversation:
        """The conversation with its turns; `not_found` if absent or not `taxpayer`'s."""
        async with self._sessions() as db:
            row = await db.get(ConsultationRow, cid)
            if row is None or (taxpayer is not None and row.taxpayer != taxpayer):
                raise DomainError("not_found", "no such conversation")
            turns = (
                await db.scalars(
                    select(ConsultationTurnRow)
                    .where(ConsultationTurnRow.consultation_id == cid)
                    .order_by(ConsultationTurnRow.seq)
                )
            ).all()
            return self._conversation(row, [_turn(t) for t in turns])

    @staticmethod
    def _conversation(row: ConsultationRow, turns: list[Turn]) -> Conversation:
        return Conversation(
            row.id, row.taxpayer, row.language, row.channel, row.category, row.state,
            row.handoff_reason, row.handoff_route, row.handoff_at, row.ticket_question,
            row.failures, row.started_at, row.ended_at, turns,
        )  # fmt: skip

    async def append(
        self,
        cid: str,
        turns: list[dict[str, Any]],
        now: datetime,
        *,
        failures: int = 0,
        category: str | None = None,
    ) -> tuple[list[int], int]:
        """Append turns (dicts of ConsultationTurnRow fields) to an open conversation; add
        `failures`; set the detected category. Returns the turns' numbers and the failures."""
        async with self._sessions() as db, db.begin():
            row = await _locked(db, cid, now)
            if row is None:
                raise DomainError("not_found", "no such conversation")
            if row.state != "open":
                raise DomainError("invalid_state", f"the conversation is {row.state}")
            last = await db.scalar(
                select(func.max(ConsultationTurnRow.seq)).where(
                    ConsultationTurnRow.consultation_id == cid
                )
            )
            seqs = []
            for offset, turn in enumerate(turns, 1):
                seq = (last or 0) + offset
                db.add(ConsultationTurnRow(consultation_id=cid, seq=seq, at=now, **turn))
                seqs.append(seq)
            row.failures += failures
            if category is not None:
                row.category = category
            row.updated_at = now
            return seqs, row.failures

    async def vote(self, cid: str, seq: int, helpful: bool, now: datetime) -> tuple[bool, int]:
        """Record a vote on an answer turn; (whether it newly counts as a failure, failures)."""
        async with self._sessions() as db, db.begin():
            row = await _locked(db, cid, now)
            if row is None:
                raise DomainError("not_found", "no such conversation")
            turn = await db.scalar(
                select(ConsultationTurnRow).where(
                    ConsultationTurnRow.consultation_id == cid, ConsultationTurnRow.seq == seq
                )
            )
            if turn is None or turn.kind != "answer":
                raise DomainError("not_found", "no answer with that number in the conversation")
            failed = not helpful and turn.helpful is not False
            turn.helpful = helpful
            if failed:
                row.failures += 1
            row.updated_at = now
            return failed, row.failures

    async def hand_off(
        self,
        cid: str,
        *,
        reason: str,
        route: str,
        category: str,
        ticket_question: str,
        note: str,
        now: datetime,
    ) -> None:
        """Mark the one hand-off of an open conversation and add its turn."""
        async with self._sessions() as db, db.begin():
            row = await _locked(db, cid, now)
            if row is None:
                raise DomainError("not_found", "no such conversation")
            if row.state != "open":
                raise DomainError("invalid_state", f"the conversation is {row.state}")
            last = await db.scalar(
                select(func.max(ConsultationTurnRow.seq)).where(
                    ConsultationTurnRow.consultation_id == cid
                )
            )
            db.add(
                ConsultationTurnRow(
                    consultation_id=cid,
                    seq=(last or 0) + 1,
                    speaker="system",
                    kind="handoff",
                    text=note,
                    candidates=[],
                    at=now,
                )
            )
            row.state, row.handoff_reason, row.handoff_route = "handed_off", reason, route
            row.handoff_at, row.category, row.ticket_question = now, category, ticket_question
            row.updated_at = now

    async def set_route(self, cid: str, route: str) -> None:
        """The hand-off's route changed after the fact (the queue refused: callback)."""
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(ConsultationRow)
                .where(ConsultationRow.id == cid, ConsultationRow.state == "handed_off")
                .values(handoff_route=route)
            )

    async def close(self, cid: str, taxpayer: str, now: datetime) -> None:
        async with self._sessions() as db, db.begin():
            row = await _locked(db, cid, now)
            if row is None or row.taxpayer != taxpayer:
                raise DomainError("not_found", "no such conversation")
            if row.state == "open":
                row.state = "closed"
            if row.ended_at is None:
                row.ended_at = now
            row.updated_at = now

    async def started_between(self, start: datetime, end: datetime) -> list[Conversation]:
        """Conversations started in [start, end) that have at least one question, turns
        included (the KPI's input)."""
        async with self._sessions() as db:
            rows = (
                await db.scalars(
                    select(ConsultationRow)
                    .where(ConsultationRow.started_at >= start, ConsultationRow.started_at < end)
                    .order_by(ConsultationRow.started_at, ConsultationRow.id)
                )
            ).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            turns: dict[str, list[Turn]] = {i: [] for i in ids}
            for chunk in range(0, len(ids), 500):
                for t in (
                    await db.scalars(
                        select(ConsultationTurnRow)
                        .where(ConsultationTurnRow.consultation_id.in_(ids[chunk : chunk + 500]))
                        .order_by(ConsultationTurnRow.consultation_id, ConsultationTurnRow.seq)
                    )
                ).all():
                    turns[t.consultation_id].append(_turn(t))
            return [
                self._conversation(r, turns[r.id])
                for r in rows
                if any(t.kind == "question" for t in turns[r.id])
            ]

    async def starts_of(
        self, taxpayers: set[str], start: datetime, end: datetime
    ) -> dict[str, list[datetime]]:
        """When each of these taxpayers started conversations in [start, end)."""
        out: dict[str, list[datetime]] = {t: [] for t in taxpayers}
        if not taxpayers:
            return out
        names = sorted(taxpayers)
        async with self._sessions() as db:
            for chunk in range(0, len(names), 500):
                rows = await db.execute(
                    select(ConsultationRow.taxpayer, ConsultationRow.started_at).where(
                        ConsultationRow.taxpayer.in_(names[chunk : chunk + 500]),
                        ConsultationRow.started_at >= start,
                        ConsultationRow.started_at < end,
                    )
                )
                for taxpayer, at in rows.all():
                    out[taxpayer].append(at)
        return out

    async def unanswered(self, start: datetime, end: datetime, limit: int) -> list[Unanswered]:
        """The questions the assistant could not answer in [start, end), newest first."""
        asked = aliased(ConsultationTurnRow)
        reply = ConsultationTurnRow
        stmt = (
            select(reply, asked.text)
            .join(
                asked,
                and_(asked.consultation_id == reply.consultation_id, asked.seq == reply.seq - 1),
            )
            .where(reply.kind == "no_answer", reply.at >= start, reply.at < end)
            .order_by(reply.at.desc(), reply.id.desc())
            .limit(limit)
        )
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).all()
        return [
            Unanswered(r.consultation_id, r.language, text, r.entry_key, r.confidence, r.at)
            for r, text in rows
        ]
