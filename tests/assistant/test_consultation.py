"""The consultation use cases over the real stores, on SQLite and PostgreSQL: answers with
alternatives, no-answers, the hand-off (one reason per conversation, the transcript in the
ticket, the callback route out of hours), feedback, who may see what, the figures, and the
supervisors' knowledge base that every node's index follows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from vtax.app.consultation import Consultations, ConsultationSettings, KnowledgeBase
from vtax.app.ports import Caller
from vtax.assistant.conversations import ConsultationStore
from vtax.assistant.keeper import IndexKeeper
from vtax.assistant.seed import load_seed
from vtax.assistant.store import KbStore
from vtax.contract.consultation import (
    ConsultationAskIn,
    ConsultationCloseIn,
    ConsultationFeedbackIn,
    ConsultationHandoffIn,
    ConsultationKpiQuery,
    ConsultationStartIn,
    KbEntryUpdateIn,
    KbImportQuery,
    KbListQuery,
    KbRetireIn,
    SuggestQuery,
    UnansweredQuery,
)
from vtax.db import make_engine, migrate, session_factory
from vtax.errors import DomainError
from vtax.queue.queues import QueueBook

# Wednesday 2026-12-02 10:00 in Shanghai (02:00 UTC): the queue below is open.
T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC).timestamp()
ALICE = Caller("tp-alice", "taxpayer")
BOB = Caller("tp-bob", "taxpayer")
AGENT = Caller("agent-1", "agent")
SUPERVISOR = Caller("sup-1", "supervisor")
HOURS = {"default": {"hours": {"weekly": {"mon-fri": ["09:00-17:00"]}}}}


class Clock:
    def __init__(self, ts: float) -> None:
        self.ts = ts

    def __call__(self) -> float:
        return self.ts


@pytest.fixture
async def world(database_url, segmenter):
    await migrate(database_url)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    kb_store = KbStore(sessions)
    subset = [d for d in load_seed() if d.category in ("invoices", "social_insurance")]
    await kb_store.import_entries(subset, "seed")
    clock = Clock(T0)
    keeper = IndexKeeper(kb_store, threshold=0.35, refresh_s=5.0, segmenter=segmenter, clock=clock)
    service = Consultations(
        ConsultationStore(sessions),
        keeper,
        queues=QueueBook.model_validate(HOURS),
        settings=ConsultationSettings(max_failures=2),
        clock=clock,
    )
    yield service, KnowledgeBase(kb_store), keeper, clock
    await engine.dispose()


async def start(service: Consultations, caller: Caller = ALICE, language: str = "zh-CN") -> str:
    view = await service.start(caller, ConsultationStartIn(language=language, channel="web"))
    assert view.state == "open" and view.message
    return view.conversation_id


async def test_answer_with_alternatives_and_feedback(world):
    service, _, _, _ = world
    cid = await start(service)
    reply = await service.ask(
        ALICE, ConsultationAskIn(conversation_id=cid, text="数电票开错了要红冲")
    )
    assert reply.kind == "answer" and reply.ask_feedback and reply.offer_person
    assert reply.entry is not None and reply.entry.key == "inv-red-letter-digital"
    assert reply.entry.answer.startswith("数电发票开具后不能作废")
    assert reply.entry.links and reply.entry.links[0].url.startswith("https://")
    assert 1 <= len(reply.alternatives) <= 2
    voted = await service.feedback(
        ALICE, ConsultationFeedbackIn(conversation_id=cid, seq=reply.seq, helpful=True)
    )
    assert voted.helpful and voted.handoff is None
    transcript = await service.transcript(ALICE, cid)
    assert [(t.speaker, t.kind) for t in transcript.turns] == [
        ("taxpayer", "question"),
        ("assistant", "answer"),
    ]
    assert transcript.turns[1].helpful is True and transcript.category == "invoices"
    assert transcript.turns[0].at.endswith("+08:00")  # people read the service time zone


async def test_low_confidence_then_handoff_carries_the_conversation(world):
    service, _, _, _ = world
    cid = await start(service)
    await service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="发票真假怎么查"))
    reply = await service.ask(
        ALICE, ConsultationAskIn(conversation_id=cid, text="附近有什么好吃的")
    )
    assert reply.kind == "no_answer" and reply.offer_person and reply.entry is None
    handoff = await service.hand_off(ALICE, ConsultationHandoffIn(conversation_id=cid))
    assert handoff.reason == "low_confidence" and handoff.route == "queue"
    assert handoff.requested_at.endswith("+08:00")
    ticket = handoff.ticket
    assert (ticket.category, ticket.language, ticket.channel) == ("invoices", "zh-CN", "web")
    assert "low_confidence" in ticket.question and "附近有什么好吃的" in ticket.question
    assert "发票真假怎么查" in ticket.question and "inv-authenticity" in ticket.question
    assert len(ticket.question) <= 2000
    # one hand-off per conversation; a handed-off conversation takes no more questions
    for call in (
        service.hand_off(ALICE, ConsultationHandoffIn(conversation_id=cid)),
        service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="还在吗")),
    ):
        with pytest.raises(DomainError) as err:
            await call
        assert err.value.code == "invalid_state"
    agent_view = await service.transcript(AGENT, cid)
    assert agent_view.handoff_reason == "low_confidence" and agent_view.state == "handed_off"


async def test_asking_for_a_person_needs_a_category_then_hands_off(world):
    service, _, _, _ = world
    cid = await start(service, language="zh-HK")
    with pytest.raises(DomainError) as err:
        await service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="轉人工"))
    assert err.value.code == "category_required"
    handoff = await service.hand_off(
        ALICE, ConsultationHandoffIn(conversation_id=cid, category="social_insurance")
    )
    assert handoff.reason == "customer_request"
    assert handoff.ticket.language == "yue"  # Hong Kong page: served in Cantonese
    assert "轉人工" in handoff.ticket.question


async def test_a_request_for_a_person_in_english_hands_off_at_once(world):
    service, _, _, _ = world
    cid = await start(service)
    first = await service.ask(
        ALICE, ConsultationAskIn(conversation_id=cid, text="how do I check an invoice is genuine")
    )
    assert first.kind == "answer" and first.entry and first.entry.key == "inv-authenticity"
    reply = await service.ask(
        ALICE, ConsultationAskIn(conversation_id=cid, text="I want to talk to a person")
    )
    assert reply.kind == "handoff" and reply.handoff is not None
    assert reply.handoff.reason == "customer_request"
    assert reply.handoff.ticket.language == "en"  # asked in English on a Chinese page


async def test_repeated_failure_hands_off_by_itself(world):
    service, _, _, _ = world
    cid = await start(service, language="en")
    ok = await service.ask(
        ALICE, ConsultationAskIn(conversation_id=cid, text="pay social security as a freelancer")
    )
    assert ok.kind == "answer"
    no = await service.feedback(
        ALICE, ConsultationFeedbackIn(conversation_id=cid, seq=ok.seq, helpful=False)
    )
    assert no.handoff is None
    again = await service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="tell me a joke"))
    assert again.kind == "handoff" and again.handoff is not None
    assert again.handoff.reason == "repeated_failure"
    assert again.handoff.ticket.category == "social_insurance"


async def test_out_of_hours_offers_a_callback_not_a_refusal(world):
    service, _, _, clock = world
    clock.ts = datetime(2026, 12, 5, 14, 0, tzinfo=UTC).timestamp()  # Saturday 22:00 local
    cid = await start(service, language="pt")
    reply = await service.ask(
        ALICE, ConsultationAskIn(conversation_id=cid, text="verificar se a factura é falsa")
    )
    assert reply.kind == "answer"  # the assistant answers around the clock
    handoff = await service.hand_off(ALICE, ConsultationHandoffIn(conversation_id=cid))
    assert handoff.route == "callback" and handoff.reason == "customer_request"
    assert handoff.next_open_at == "2026-12-07T09:00:00+08:00"
    assert "chamada de volta" in handoff.message


async def test_nobody_reads_or_writes_another_taxpayers_conversation(world):
    service, _, _, _ = world
    cid = await start(service)
    for call in (
        service.ask(BOB, ConsultationAskIn(conversation_id=cid, text="发票")),
        service.transcript(BOB, cid),
        service.close(BOB, ConsultationCloseIn(conversation_id=cid)),
    ):
        with pytest.raises(DomainError) as err:
            await call
        assert err.value.code == "not_found"
    with pytest.raises(DomainError) as err:
        await service.ask(AGENT, ConsultationAskIn(conversation_id=cid, text="发票"))
    assert err.value.code == "forbidden"
    with pytest.raises(DomainError) as err:
        await service.kpi(AGENT, ConsultationKpiQuery())
    assert err.value.code == "forbidden"


async def test_agent_suggestions_rank_without_a_threshold(world):
    service, _, _, _ = world
    got = await service.suggest(AGENT, SuggestQuery(q="红字发票 退货", language="zh-CN"))
    assert got.entries and got.entries[0].answer
    assert "inv-red-letter-special-paper" in [e.key for e in got.entries[:3]]


async def test_figures_containment_reasons_acceptance_recontact(world):
    service, _, _, clock = world
    # 1: answered and helpful, closed (contained)
    a = await start(service)
    r = await service.ask(ALICE, ConsultationAskIn(conversation_id=a, text="发票真假怎么查"))
    await service.feedback(
        ALICE, ConsultationFeedbackIn(conversation_id=a, seq=r.seq, helpful=True)
    )
    await service.close(ALICE, ConsultationCloseIn(conversation_id=a))
    # 2: Alice again two days later, hands off on request (a re-contact of 1)
    clock.ts += 2 * 86400
    b = await start(service)
    r = await service.ask(ALICE, ConsultationAskIn(conversation_id=b, text="发票丢了"))
    await service.feedback(
        ALICE, ConsultationFeedbackIn(conversation_id=b, seq=r.seq, helpful=False)
    )
    await service.hand_off(ALICE, ConsultationHandoffIn(conversation_id=b))
    # 3: Bob, no answer, left open (contained, nothing voted)
    c = await start(service, BOB)
    await service.ask(BOB, ConsultationAskIn(conversation_id=c, text="今天天气怎么样"))
    # 4: a conversation with no question does not count
    await start(service, BOB)
    kpi = await service.kpi(
        SUPERVISOR,
        ConsultationKpiQuery.model_validate({"from": "2026-12-01", "to": "2026-12-31"}),
    )
    assert (kpi.conversations, kpi.contained, kpi.handoffs) == (3, 2, 1)
    assert kpi.containment_rate == round(2 / 3, 4)
    assert kpi.handoffs_by_reason == {
        "customer_request": 1, "low_confidence": 0, "repeated_failure": 0,
    }  # fmt: skip
    assert kpi.handoffs_by_route == {"queue": 1, "callback": 0}
    assert (kpi.helpful_votes, kpi.not_helpful_votes, kpi.acceptance_rate) == (1, 1, 0.5)
    assert (kpi.answers, kpi.no_answers) == (2, 1)
    assert kpi.recontact_7d == 1
    unanswered = await service.unanswered(
        SUPERVISOR, UnansweredQuery.model_validate({"from": "2026-12-01", "to": "2026-12-31"})
    )
    assert [q.question for q in unanswered.questions] == ["今天天气怎么样"]
    empty = await service.kpi(
        SUPERVISOR, ConsultationKpiQuery.model_validate({"from": "2026-11-01"})
    )
    assert empty.conversations == 0 and empty.containment_rate is None


async def test_the_ticket_keeps_the_latest_turns_when_long(world):
    service, _, _, _ = world
    cid = await start(service)
    for i in range(30):
        await service.ask(
            ALICE, ConsultationAskIn(conversation_id=cid, text=f"发票领用失败第{i}次 为什么不能领")
        )
        conv = await service.transcript(ALICE, cid)
        if conv.state != "open":
            break
    conv = await service.transcript(ALICE, cid)
    if conv.state == "open":
        handoff = await service.hand_off(ALICE, ConsultationHandoffIn(conversation_id=cid))
        text = handoff.ticket.question
    else:
        text = (await service._store.get(cid)).ticket_question or ""
    assert len(text) <= 2000
    assert "第29次" in text and "省略" in text and "第0次" in text.split("省略")[0]


async def test_supervisors_edit_and_every_index_follows(world):
    service, kb, keeper, clock = world
    before = await keeper.index()
    listed = await kb.list(SUPERVISOR, KbListQuery(category="invoices"))
    entry = next(e for e in listed.entries if e.key == "inv-authenticity")
    draft = json.loads(json.dumps({
        "key": entry.key, "category": entry.category, "items": entry.items,
        "texts": entry.texts, "valid_from": None, "valid_until": None,
    }))  # fmt: skip
    draft["texts"]["zh-CN"]["answer"] = "请到全国增值税发票查验平台查验（已更新）。"
    with pytest.raises(DomainError) as err:
        await kb.update(
            AGENT,
            entry.key,
            KbEntryUpdateIn.model_validate({"expected_version": 1, "entry": draft}),
        )
    assert err.value.code == "forbidden"
    updated = await kb.update(
        SUPERVISOR,
        entry.key,
        KbEntryUpdateIn.model_validate({"expected_version": 1, "entry": draft}),
    )
    assert updated.version == 2 and updated.updated_by == "sup-1"
    assert (await keeper.index()) is before  # not yet checked again
    clock.ts += 6  # past assistant_refresh_s
    after = await keeper.index()
    assert after is not before and after.revision > before.revision
    cid = await start(service)
    reply = await service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="发票真假怎么查"))
    assert reply.entry is not None and reply.entry.answer.endswith("（已更新）。")
    await kb.retire(SUPERVISOR, entry.key, KbRetireIn(expected_version=2))
    clock.ts += 6
    reply = await service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="发票真假怎么查"))
    assert reply.entry is None or reply.entry.key != "inv-authenticity"
    history = await kb.history(SUPERVISOR, entry.key)
    assert [v.change for v in history.versions] == ["created", "updated", "retired"]


async def test_import_checks_the_whole_file_first(world):
    _, kb, _, _ = world
    exported = await kb.export(SUPERVISOR)
    doc = json.loads(exported)
    doc["entries"][3]["category"] = "astrology"
    bad = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    check = await kb.import_file(SUPERVISOR, bad, KbImportQuery(dry_run=True))
    assert check.problems and "entries[3]" in check.problems[0].where
    assert "line" in check.problems[0].where
    with pytest.raises(DomainError) as err:
        await kb.import_file(SUPERVISOR, bad, KbImportQuery())
    assert err.value.code == "kb_file_invalid"
    same = await kb.import_file(SUPERVISOR, exported.encode(), KbImportQuery())
    assert not same.created and not same.updated and len(same.unchanged) == same.entries


async def test_questions_sent_at_once_get_their_own_turn_numbers(world):
    import asyncio

    service, _, _, _ = world
    cid = await start(service)
    replies = await asyncio.gather(
        *[
            service.ask(ALICE, ConsultationAskIn(conversation_id=cid, text="发票真假怎么查"))
            for _ in range(4)
        ]
    )
    assert sorted(r.seq for r in replies) == [2, 4, 6, 8]
    transcript = await service.transcript(ALICE, cid)
    assert [t.seq for t in transcript.turns] == list(range(1, 9))


async def test_a_second_node_follows_an_edit_made_on_the_first(world, database_url, segmenter):
    _, kb, first_keeper, clock = world
    engine = make_engine(database_url)  # another node: its own engine and keeper
    try:
        second = IndexKeeper(
            KbStore(session_factory(engine)), threshold=0.35, refresh_s=5.0,
            segmenter=segmenter, clock=clock,
        )  # fmt: skip
        old = await second.index()
        entry = await kb.get(SUPERVISOR, "inv-loss-report")
        texts = json.loads(json.dumps(entry.texts))
        texts["zh-CN"]["answer"] = "请在发现当日报告税务机关（第二节点可见）。"
        await kb.update(
            SUPERVISOR,
            entry.key,
            KbEntryUpdateIn.model_validate(
                {
                    "expected_version": entry.version,
                    "entry": {
                        "key": entry.key,
                        "category": entry.category,
                        "items": entry.items,
                        "texts": texts,
                    },
                }
            ),
        )
        clock.ts += 6
        for keeper in (first_keeper, second):
            index = await keeper.index()
            assert index.revision > old.revision
            assert (
                index.entries["inv-loss-report"]
                .texts["zh-CN"]
                .answer.endswith("（第二节点可见）。")
            )
    finally:
        await engine.dispose()
