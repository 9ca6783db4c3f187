"""Use cases of the consultation assistant (以智能为先、人工兜底): the taxpayer's conversation
with the assistant, the hand-off to a person with the whole conversation, feedback on
answers, the agent's suggestions, the supervisors' knowledge base and the figures.

The transports map one message onto one call here and send back its typed result
(vtax/contract/consultation.py); docs/assistant.md lists the routes and events. Nothing here
knows Socket.IO or HTTP. The hand-off returns the queue ticket (`TicketDraft`) for the
intake use case to join, or, out of opening hours, the route `callback` for the
appointments and callbacks to take over: being closed is never a reason to refuse.

One module (~660 lines) on purpose: the conversation, its hand-off and the knowledge base
edits share the conversation store and the index; they change together.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from vtax.app.ports import Caller
from vtax.assistant import kbfile
from vtax.assistant.conversations import ConsultationStore, Conversation, Turn
from vtax.assistant.dialogue import asks_for_person, say
from vtax.assistant.kb import SERVICE_LANGUAGE, Entry, EntryDraft, KbLanguage
from vtax.assistant.keeper import IndexKeeper
from vtax.assistant.retrieval import Hit, KbIndex, SearchResult
from vtax.assistant.store import KbStore, StoredEntry
from vtax.contract.consultation import (
    AnswerEntry,
    ConsultationAskIn,
    ConsultationCloseIn,
    ConsultationFeedbackIn,
    ConsultationHandoffIn,
    ConsultationKpiQuery,
    ConsultationKpiView,
    ConsultationStartIn,
    ConsultationView,
    EntryRef,
    FeedbackView,
    HandoffReason,
    HandoffRoute,
    HandoffView,
    KbEntryList,
    KbEntryUpdateIn,
    KbEntryView,
    KbHistory,
    KbImportQuery,
    KbImportView,
    KbListQuery,
    KbProblem,
    KbRetireIn,
    KbVersionView,
    ReplyView,
    SuggestionList,
    SuggestQuery,
    TicketDraft,
    TranscriptView,
    TurnKind,
    TurnView,
    UnansweredList,
    UnansweredQuery,
    UnansweredView,
)
from vtax.errors import DomainError
from vtax.queue.queues import QueueBook

Speaker = Literal["taxpayer", "assistant", "system"]
REASONS: tuple[HandoffReason, ...] = ("customer_request", "low_confidence", "repeated_failure")
RECONTACT_WINDOW = timedelta(days=7)
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


def require(caller: Caller, *roles: str) -> None:
    if caller.role not in roles:
        raise DomainError("forbidden", f"only {' or '.join(roles)} may do this")


@dataclass(frozen=True, slots=True)
class ConsultationSettings:
    max_failures: int = 2  # no-answers and 'not helpful' votes before the hand-off
    ticket_chars: int = 2000  # the queue ticket's question field
    timezone: ZoneInfo = DEFAULT_TZ


# Labels of the ticket text, in the conversation's page language (the agent it is routed
# to speaks it).
_LABELS: dict[str, dict[KbLanguage, str]] = {
    "title": {"zh-CN": "智能助手转人工", "zh-HK": "智能助手轉人工", "en": "Hand-off from the assistant", "pt": "Transferência do assistente"},
    "reason": {"zh-CN": "原因", "zh-HK": "原因", "en": "Reason", "pt": "Motivo"},
    "category": {"zh-CN": "业务类别", "zh-HK": "業務類別", "en": "Category", "pt": "Categoria"},
    "summary": {"zh-CN": "摘要", "zh-HK": "摘要", "en": "Summary", "pt": "Resumo"},
    "shown": {"zh-CN": "已展示条目", "zh-HK": "已展示條目", "en": "Entries shown", "pt": "Entradas mostradas"},
    "transcript": {"zh-CN": "对话记录", "zh-HK": "對話記錄", "en": "Transcript", "pt": "Transcrição"},
    "taxpayer": {"zh-CN": "纳税人", "zh-HK": "納稅人", "en": "Taxpayer", "pt": "Contribuinte"},
    "assistant": {"zh-CN": "助手", "zh-HK": "助手", "en": "Assistant", "pt": "Assistente"},
    "system": {"zh-CN": "系统", "zh-HK": "系統", "en": "System", "pt": "Sistema"},
    "earlier": {"zh-CN": "更早的轮次已省略", "zh-HK": "更早嘅輪次已省略", "en": "earlier turns left out", "pt": "turnos anteriores omitidos"},
    "questions": {"zh-CN": "提问", "zh-HK": "提問", "en": "questions", "pt": "perguntas"},
    "answers": {"zh-CN": "答复", "zh-HK": "答覆", "en": "answers", "pt": "respostas"},
    "no_answers": {"zh-CN": "未能回答", "zh-HK": "未能回答", "en": "not answered", "pt": "sem resposta"},
    "helpful": {"zh-CN": "有帮助", "zh-HK": "有幫助", "en": "helpful", "pt": "útil"},
    "not_helpful": {"zh-CN": "没帮助", "zh-HK": "冇幫助", "en": "not helpful", "pt": "não útil"},
    "first": {"zh-CN": "首个问题", "zh-HK": "第一個問題", "en": "first question", "pt": "primeira pergunta"},
    "customer_request": {"zh-CN": "纳税人要求转人工", "zh-HK": "納稅人要求轉人工", "en": "the taxpayer asked for a person", "pt": "o contribuinte pediu uma pessoa"},
    "low_confidence": {"zh-CN": "助手没有可靠答案", "zh-HK": "助手冇可靠答案", "en": "the assistant had no reliable answer", "pt": "o assistente não tinha resposta fiável"},
    "repeated_failure": {"zh-CN": "多次未解决", "zh-HK": "多次未解決", "en": "repeatedly not solved", "pt": "várias vezes sem solução"},
}  # fmt: skip


def _label(name: str, lang: KbLanguage) -> str:
    return _LABELS[name][lang]


class Consultations:
    """The taxpayer's conversation, agent assist, unanswered questions and the KPI inputs."""

    def __init__(
        self,
        store: ConsultationStore,
        keeper: IndexKeeper,
        *,
        queues: QueueBook | None = None,
        settings: ConsultationSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._keeper = keeper
        self._queues = queues or QueueBook()
        self._settings = settings or ConsultationSettings()
        self._clock = clock

    # ---- time ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _local(self, at: datetime | None) -> str | None:
        return None if at is None else at.astimezone(self._settings.timezone).isoformat()

    def _today(self) -> date:
        return self._now().astimezone(self._settings.timezone).date()

    def _day_bounds(
        self, first: date | None, last: date | None
    ) -> tuple[date, date, datetime, datetime]:
        first = first or self._today()
        last = last or first
        if last < first:
            raise DomainError("invalid_payload", "`to` is before `from`")
        if (last - first).days > 366:
            raise DomainError("invalid_payload", "at most 367 days at once")
        tz = self._settings.timezone
        start = datetime.combine(first, datetime.min.time(), tz).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
        return first, last, start, end

    # ---- the taxpayer's conversation ----------------------------------------------------

    async def start(self, caller: Caller, body: ConsultationStartIn) -> ConsultationView:
        require(caller, "taxpayer")
        cid = await self._store.create(caller.subject, body.language, body.channel, self._now())
        return ConsultationView(
            conversation_id=cid,
            language=body.language,
            channel=body.channel,
            state="open",
            message=say("greeting", body.language),
        )

    async def ask(self, caller: Caller, body: ConsultationAskIn) -> ReplyView:
        """Answer with the best entry (and two alternatives) when confident; else say so and
        offer a person; hand off at a request for a person or at repeated failure."""
        require(caller, "taxpayer")
        conv = await self._store.get(body.conversation_id, caller.subject)
        lang: KbLanguage = conv.language  # type: ignore[assignment]
        now = self._now()
        if asks_for_person(body.text):
            seqs, _ = await self._store.append(conv.id, [self._question(body.text, None)], now)
            handoff = await self._hand_off(conv.id, "customer_request", None, None, now)
            return ReplyView(
                conversation_id=conv.id,
                seq=seqs[0] + 1,  # the hand-off's turn
                kind="handoff",
                message=handoff.message,
                handoff=handoff,
            )
        index = await self._keeper.index()
        result = await _search(index, body.text, lang, 3, self._today())
        best = result.best
        candidates = [
            {"key": h.key, "score": h.score, "confidence": h.confidence} for h in result.hits
        ]
        others = [self._ref(index, h, result.language) for h in result.hits[1:3]]
        if best is not None and result.confident:
            entry = index.entries[best.key]
            text = entry.texts[result.language]
            reply = {
                "speaker": "assistant", "kind": "answer", "text": text.answer,
                "language": result.language, "entry_key": best.key,
                "confidence": best.confidence, "candidates": candidates,
            }  # fmt: skip
            seqs, _ = await self._store.append(
                conv.id,
                [self._question(body.text, result.language), reply],
                now,
                category=entry.category,
            )
            return ReplyView(
                conversation_id=conv.id,
                seq=seqs[1],
                kind="answer",
                message=say("ask_feedback", lang),
                entry=AnswerEntry(
                    **self._ref(index, best, result.language).model_dump(),
                    answer=text.answer,
                    links=list(text.links),
                ),
                alternatives=others,
                ask_feedback=True,
            )
        reply = {
            "speaker": "assistant", "kind": "no_answer", "text": say("no_answer", lang),
            "language": result.language, "entry_key": best.key if best else None,
            "confidence": best.confidence if best else None, "candidates": candidates,
        }  # fmt: skip
        guess = index.entries[best.key].category if best and conv.category is None else None
        seqs, failures = await self._store.append(
            conv.id,
            [self._question(body.text, result.language), reply],
            now,
            failures=1,
            category=guess,
        )
        if failures >= self._settings.max_failures:
            auto = await self._auto_hand_off(conv.id, now)
            if auto is not None:
                return ReplyView(
                    conversation_id=conv.id,
                    seq=seqs[1],
                    kind="handoff",
                    message=auto.message,
                    alternatives=others,
                    handoff=auto,
                )
        return ReplyView(
            conversation_id=conv.id,
            seq=seqs[1],
            kind="no_answer",
            message=say("no_answer", lang),
            alternatives=others,
        )

    async def feedback(self, caller: Caller, body: ConsultationFeedbackIn) -> FeedbackView:
        """'Did this solve it?': a 'no' counts as a failure; repeated failures hand off."""
        require(caller, "taxpayer")
        conv = await self._store.get(body.conversation_id, caller.subject)
        now = self._now()
        failed, failures = await self._store.vote(conv.id, body.seq, body.helpful, now)
        handoff = None
        if failed and failures >= self._settings.max_failures and conv.state == "open":
            handoff = await self._auto_hand_off(conv.id, now)
        return FeedbackView(
            conversation_id=conv.id, seq=body.seq, helpful=body.helpful, handoff=handoff
        )

    async def hand_off(self, caller: Caller, body: ConsultationHandoffIn) -> HandoffView:
        """'Talk to a person', offered at every turn. The reason is the assistant's failure to
        answer when its last reply was one, else the taxpayer's request."""
        require(caller, "taxpayer")
        conv = await self._store.get(body.conversation_id, caller.subject)
        replies = [t for t in conv.turns if t.speaker == "assistant"]
        reason: HandoffReason = (
            "low_confidence" if replies and replies[-1].kind == "no_answer" else "customer_request"
        )
        return await self._hand_off(conv.id, reason, body.category, body.language, self._now())

    async def close(self, caller: Caller, body: ConsultationCloseIn) -> ConsultationView:
        require(caller, "taxpayer")
        await self._store.close(body.conversation_id, caller.subject, self._now())
        conv = await self._store.get(body.conversation_id, caller.subject)
        lang: KbLanguage = conv.language  # type: ignore[assignment]
        return ConsultationView(
            conversation_id=conv.id, language=lang, channel=conv.channel,
            state=conv.state, message="",  # type: ignore[arg-type]
        )  # fmt: skip

    async def transcript(self, caller: Caller, conversation_id: str) -> TranscriptView:
        """The whole conversation: its taxpayer's own, or staff's (the agent desk shows it
        with the ticket before the agent accepts)."""
        require(caller, "taxpayer", "agent", "supervisor")
        owner = caller.subject if caller.role == "taxpayer" else None
        conv = await self._store.get(conversation_id, owner)
        return TranscriptView(
            conversation_id=conv.id,
            taxpayer=conv.taxpayer,
            language=conv.language,  # type: ignore[arg-type]
            channel=conv.channel,
            state=conv.state,  # type: ignore[arg-type]
            category=conv.category,
            handoff_reason=conv.handoff_reason,  # type: ignore[arg-type]
            handoff_at=self._local(conv.handoff_at),
            started_at=self._local(conv.started_at) or "",
            turns=[
                TurnView(
                    seq=t.seq,
                    speaker=cast(Speaker, t.speaker),
                    kind=cast(TurnKind, t.kind),
                    text=t.text,  # type: ignore[arg-type]
                    entry_key=t.entry_key,
                    confidence=t.confidence,
                    helpful=t.helpful,
                    at=self._local(t.at) or "",
                )
                for t in conv.turns
            ],
        )

    # ---- the hand-off -------------------------------------------------------------------

    async def fell_back(self, cid: str) -> None:
        """The queue refused the hand-off: its route is the callback offer."""
        await self._store.set_route(cid, "callback")

    async def page_language(self, cid: str) -> KbLanguage:
        conv = await self._store.get(cid)
        return conv.language  # type: ignore[return-value]

    async def _auto_hand_off(self, cid: str, now: datetime) -> HandoffView | None:
        """The hand-off on repeated failure; None when no category is known yet (the page
        then offers the person with a category to choose, as at every turn)."""
        try:
            return await self._hand_off(cid, "repeated_failure", None, None, now)
        except DomainError as exc:
            if exc.code != "category_required":
                raise
            return None

    async def _hand_off(
        self,
        cid: str,
        reason: HandoffReason,
        category: str | None,
        language: str | None,
        now: datetime,
    ) -> HandoffView:
        conv = await self._store.get(cid)
        if conv.state != "open":
            raise DomainError("invalid_state", f"the conversation is {conv.state}")
        category = category or conv.category
        if category is None:
            raise DomainError(
                "category_required", "choose the business category for the person to help"
            )
        page: KbLanguage = conv.language  # type: ignore[assignment]
        asked = [t.language for t in conv.turns if t.kind == "question" and t.language]
        service = language or SERVICE_LANGUAGE[asked[-1] if asked else page]
        hours = self._queues.of(category).hours
        ts = now.timestamp()
        open_now = hours is None or hours.is_open(ts)
        next_open = None if open_now or hours is None else hours.next_opening(ts)
        question = self.ticket_text(conv, reason, category, page)
        route: HandoffRoute = "queue" if open_now else "callback"
        message = say("handoff_queue" if open_now else "handoff_callback", page)
        await self._store.hand_off(
            cid, reason=reason, route=route, category=category, ticket_question=question,
            note=f"{reason} -> {route}", now=now,
        )  # fmt: skip
        return HandoffView(
            conversation_id=cid,
            reason=reason,
            route=route,
            requested_at=self._local(now) or "",
            next_open_at=self._local(next_open),
            message=message,
            ticket=TicketDraft(
                category=category, language=service, channel=conv.channel, question=question
            ),
        )

    def ticket_text(
        self, conv: Conversation, reason: HandoffReason, category: str, lang: KbLanguage
    ) -> str:
        """Summary, entries shown with their scores, and the transcript (oldest turns left
        out first when it does not fit the ticket's question field)."""
        questions = [t for t in conv.turns if t.kind == "question"]
        answers = [t for t in conv.turns if t.kind == "answer"]
        votes = Counter(t.helpful for t in answers if t.helpful is not None)
        first = questions[0].text if questions else ""
        head = [
            f"[{_label('title', lang)}] {_label('reason', lang)}: {_label(reason, lang)} "
            f"({reason}) · {_label('category', lang)}: {category}",
            f"{_label('summary', lang)}: {_label('first', lang)}「{first[:200]}」; "
            f"{len(questions)} {_label('questions', lang)}, {len(answers)} "
            f"{_label('answers', lang)}, "
            f"{sum(t.kind == 'no_answer' for t in conv.turns)} {_label('no_answers', lang)}; "
            f"{votes[True]} {_label('helpful', lang)}, {votes[False]} {_label('not_helpful', lang)}",
        ]
        shown: dict[str, float] = {}
        for t in conv.turns:
            for c in t.candidates:
                key = str(c.get("key", ""))
                if key:
                    shown[key] = max(shown.get(key, 0.0), float(c.get("confidence", 0.0)))
        if shown:
            head.append(
                f"{_label('shown', lang)}: "
                + ", ".join(
                    f"{k} ({v:.2f})" for k, v in sorted(shown.items(), key=lambda kv: -kv[1])[:6]
                )
            )
        head.append(f"{_label('transcript', lang)}:")
        lines = [self._line(t, lang) for t in conv.turns]
        limit = self._settings.ticket_chars
        text = "\n".join(head + lines)
        dropped = 0
        while len(text) > limit and lines:
            lines.pop(0)
            dropped += 1
            marker = [f"… {dropped} {_label('earlier', lang)}"]
            text = "\n".join(head + marker + lines)
        return text[:limit]

    def _line(self, t: Turn, lang: KbLanguage) -> str:
        at = t.at.astimezone(self._settings.timezone).strftime("%H:%M")
        who = _label(t.speaker, lang)
        if t.kind == "answer":
            body = f"[{t.entry_key} {t.confidence or 0:.2f}] {t.text[:160]}"
        elif t.kind == "no_answer":
            body = f"[{t.entry_key or '-'} {t.confidence or 0:.2f}] {t.text[:80]}"
        else:
            body = t.text[:300]
        vote = {True: " 👍", False: " 👎", None: ""}[t.helpful]
        return f"{t.seq} {who} {at}: {body}{vote}"

    @staticmethod
    def _question(text: str, language: str | None) -> dict[str, Any]:
        return {
            "speaker": "taxpayer", "kind": "question", "text": text, "language": language,
            "entry_key": None, "confidence": None, "candidates": [],
        }  # fmt: skip

    @staticmethod
    def _ref(index: KbIndex, hit: Hit, lang: KbLanguage) -> EntryRef:
        entry = index.entries[hit.key]
        text = entry.texts.get(lang) or entry.texts["zh-CN"]
        return EntryRef(
            key=hit.key, question=text.question, category=entry.category,
            confidence=hit.confidence, score=hit.score,
        )  # fmt: skip

    # ---- agent assist -------------------------------------------------------------------

    async def suggest(self, caller: Caller, query: SuggestQuery) -> SuggestionList:
        """Entries for the taxpayer's question or what the agent types (no threshold: the
        agent judges), with the answer to send into the chat."""
        require(caller, "agent", "supervisor")
        index = await self._keeper.index()
        result = await _search(index, query.q, query.language, 5, self._today())
        entries = []
        for hit in result.hits:
            text = index.entries[hit.key].texts[result.language]
            entries.append(
                AnswerEntry(
                    **self._ref(index, hit, result.language).model_dump(),
                    answer=text.answer,
                    links=list(text.links),
                )
            )
        return SuggestionList(language=result.language, entries=entries)

    # ---- figures ------------------------------------------------------------------------

    async def unanswered(self, caller: Caller, query: UnansweredQuery) -> UnansweredList:
        """The questions the assistant could not answer: supervisors turn them into entries."""
        require(caller, "supervisor")
        _, _, start, end = self._day_bounds(query.date_from, query.date_to)
        rows = await self._store.unanswered(start, end, query.limit)
        return UnansweredList(
            questions=[
                UnansweredView(
                    conversation_id=r.conversation_id,
                    language=(r.language or "zh-CN"),  # type: ignore[arg-type]
                    question=r.question,
                    best_key=r.best_key,
                    confidence=r.confidence,
                    at=self._local(r.at) or "",
                )
                for r in rows
            ]
        )

    async def kpi(self, caller: Caller, query: ConsultationKpiQuery) -> ConsultationKpiView:
        """Containment, hand-offs by reason and route, answer acceptance, re-contact within
        7 days, over the conversations started on those days (service time zone). The time
        from hand-off to a person is the queue's: a session's wait counts from
        `handoff_at` (docs/assistant.md)."""
        require(caller, "supervisor")
        first, last, start, end = self._day_bounds(query.date_from, query.date_to)
        convs = await self._store.started_between(start, end)
        return summarize(
            first, last, convs,
            await self._store.starts_of(
                {c.taxpayer for c in convs}, start, end + RECONTACT_WINDOW
            ),
        )  # fmt: skip


async def _search(index: KbIndex, text: str, lang: KbLanguage, k: int, day: date) -> SearchResult:
    """BM25 alone answers in well under a millisecond, inline; embedding a question takes tens
    of milliseconds, so the hybrid search runs in a worker thread, off the event loop."""
    if index.uses_embeddings:
        return await asyncio.to_thread(index.search, text, lang, k=k, day=day)
    return index.search(text, lang, k=k, day=day)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(
    first: date,
    last: date,
    convs: Sequence[Conversation],
    starts: dict[str, list[datetime]],
) -> ConsultationKpiView:
    """The KPI of these conversations (pure: the tests feed it rows)."""
    n = len(convs)
    handed = [c for c in convs if c.handoff_reason is not None]
    by_reason = Counter(c.handoff_reason for c in handed)
    by_route = Counter(c.handoff_route for c in handed)
    turns = [t for c in convs for t in c.turns]
    votes = Counter(t.helpful for t in turns if t.kind == "answer" and t.helpful is not None)
    recontact = sum(
        any(c.started_at < s <= c.started_at + RECONTACT_WINDOW for s in starts.get(c.taxpayer, []))
        for c in convs
    )
    all_votes = votes[True] + votes[False]
    return ConsultationKpiView(
        date_from=first,
        date_to=last,
        conversations=n,
        contained=n - len(handed),
        containment_rate=_rate(n - len(handed), n),
        handoffs=len(handed),
        handoff_rate=_rate(len(handed), n),
        handoffs_by_reason={r: by_reason.get(r, 0) for r in REASONS},
        handoff_rate_by_reason={r: _rate(by_reason.get(r, 0), n) or 0.0 for r in REASONS},
        handoffs_by_route={r: by_route.get(r, 0) for r in ("queue", "callback")},
        answers=sum(t.kind == "answer" for t in turns),
        no_answers=sum(t.kind == "no_answer" for t in turns),
        helpful_votes=votes[True],
        not_helpful_votes=votes[False],
        acceptance_rate=_rate(votes[True], all_votes),
        recontact_7d=recontact,
        recontact_rate=_rate(recontact, n),
    )


class KnowledgeBase:
    """The supervisors' knowledge base: list, read, history, create, edit, retire, import and
    export. Every change bumps the revision, so every node's index follows."""

    def __init__(self, store: KbStore, *, timezone: ZoneInfo = DEFAULT_TZ) -> None:
        self._store = store
        self._tz = timezone

    def _view(self, s: StoredEntry) -> KbEntryView:
        e = s.entry
        return KbEntryView(
            key=e.key, category=e.category, items=list(e.items),
            texts={lang: t.model_dump(mode="json") for lang, t in e.texts.items()},
            valid_from=e.valid_from, valid_until=e.valid_until, version=e.version,
            retired=s.retired, updated_by=e.updated_by,
            updated_at=e.updated_at.astimezone(self._tz).isoformat(),
        )  # fmt: skip

    async def list(self, caller: Caller, query: KbListQuery) -> KbEntryList:
        require(caller, "supervisor", "agent")
        include = query.include_retired and caller.role == "supervisor"
        entries = await self._store.entries(include_retired=include)
        if query.category:
            entries = [s for s in entries if s.entry.category == query.category]
        return KbEntryList(
            revision=await self._store.revision(), entries=[self._view(s) for s in entries]
        )

    async def get(self, caller: Caller, key: str) -> KbEntryView:
        require(caller, "supervisor", "agent")
        return self._view(await self._store.get(key))

    async def history(self, caller: Caller, key: str) -> KbHistory:
        require(caller, "supervisor")
        versions = await self._store.history(key)
        return KbHistory(
            key=key,
            versions=[
                KbVersionView(
                    version=v.version,
                    change=v.change,
                    changed_by=v.changed_by,
                    changed_at=v.changed_at.astimezone(self._tz).isoformat(),
                    entry=v.snapshot.model_dump(mode="json"),
                )
                for v in versions
            ],
        )

    async def create(self, caller: Caller, draft: EntryDraft) -> KbEntryView:
        require(caller, "supervisor")
        entry = await self._store.create(
            EntryDraft.model_validate(draft.model_dump()), caller.subject
        )
        return self._view(StoredEntry(entry, False))

    async def update(self, caller: Caller, key: str, body: KbEntryUpdateIn) -> KbEntryView:
        require(caller, "supervisor")
        if body.entry.key != key:
            raise DomainError("invalid_payload", "the entry's key is not the one in the path")
        entry = await self._store.update(body.entry, body.expected_version, caller.subject)
        return self._view(StoredEntry(entry, False))

    async def retire(self, caller: Caller, key: str, body: KbRetireIn) -> KbEntryView:
        require(caller, "supervisor")
        entry: Entry = await self._store.retire(key, body.expected_version, caller.subject)
        return self._view(StoredEntry(entry, True))

    async def import_file(self, caller: Caller, data: bytes, query: KbImportQuery) -> KbImportView:
        """Check a file and, unless `dry_run`, apply it in one transaction. A file with any
        problem changes nothing: a dry run lists every problem; a real import refuses with
        `kb_file_invalid` naming the first ones."""
        require(caller, "supervisor")
        try:
            drafts = kbfile.parse(data)
        except kbfile.KbFileError as exc:
            if query.dry_run:
                return KbImportView(
                    dry_run=True, entries=0, created=[], updated=[], unchanged=[], retired=[],
                    problems=[KbProblem(where=p.where, message=p.message) for p in exc.problems],
                )  # fmt: skip
            raise DomainError("kb_file_invalid", str(exc)[:2000]) from None
        if query.dry_run:
            return KbImportView(
                dry_run=True, entries=len(drafts), problems=[], created=[], updated=[],
                unchanged=[], retired=[],
            )  # fmt: skip
        report = await self._store.import_entries(
            drafts, caller.subject, retire_missing=query.retire_missing
        )
        return KbImportView(
            dry_run=False, entries=len(drafts), problems=[], created=report.created,
            updated=report.updated, unchanged=report.unchanged, retired=report.retired,
        )  # fmt: skip

    async def export(self, caller: Caller) -> str:
        """The live entries as a file (`application/json`, links inline)."""
        require(caller, "supervisor")
        return kbfile.dump(s.entry for s in await self._store.entries())
