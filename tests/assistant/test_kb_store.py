"""The knowledge base in the database (both engines): versioned edits that refuse a stale
version, the history, the revision counter, and the file import and export."""

from __future__ import annotations

import json

import pytest

from vtax.assistant import kbfile
from vtax.assistant.kb import EntryDraft
from vtax.assistant.seed import load_seed
from vtax.assistant.store import KbStore
from vtax.db import make_engine, migrate, session_factory
from vtax.errors import DomainError


def draft(key: str = "reg-x", answer: str = "在电子税务局办理。", **kw) -> EntryDraft:
    return EntryDraft.model_validate(
        {
            "key": key,
            "category": "registration",
            "items": ["registration.change_registration"],
            "texts": {
                "zh-CN": {
                    "question": "怎么变更登记？",
                    "alternatives": ["改地址"],
                    "answer": answer,
                },
                "en": {"question": "How do I change my registration?", "answer": "Online."},
            },
            **kw,
        }
    )


@pytest.fixture
async def store(database_url):
    await migrate(database_url)
    engine = make_engine(database_url)
    yield KbStore(session_factory(engine))
    await engine.dispose()


async def test_edits_are_versioned_and_stale_edits_refused(store: KbStore):
    assert await store.revision() == 0
    created = await store.create(draft(), "sup1")
    assert created.version == 1 and created.updated_by == "sup1"
    with pytest.raises(DomainError) as err:
        await store.create(draft(), "sup2")
    assert err.value.code == "kb_entry_exists"
    updated = await store.update(draft(answer="请登录电子税务局办理变更。"), 1, "sup2")
    assert updated.version == 2 and updated.updated_by == "sup2"
    with pytest.raises(DomainError) as err:
        await store.update(draft(answer="别的"), 1, "sup3")
    assert err.value.code == "kb_version_conflict"
    retired = await store.retire("reg-x", 2, "sup1")
    assert retired.version == 3
    assert await store.entries() == []
    assert [s.retired for s in await store.entries(include_retired=True)] == [True]
    history = await store.history("reg-x")
    assert [(v.version, v.change, v.changed_by) for v in history] == [
        (1, "created", "sup1"),
        (2, "updated", "sup2"),
        (3, "retired", "sup1"),
    ]
    assert history[0].snapshot.texts["zh-CN"].answer == "在电子税务局办理。"
    assert await store.revision() == 3
    with pytest.raises(DomainError) as err:
        await store.get("nope")
    assert err.value.code == "not_found"


async def test_import_creates_updates_keeps_and_retires(store: KbStore):
    await store.create(draft("a"), "sup")
    await store.create(draft("b"), "sup")
    report = await store.import_entries(
        [draft("a"), draft("b", answer="新答案。"), draft("c")], "sup2", retire_missing=False
    )
    assert (report.created, report.updated, report.unchanged) == (["c"], ["b"], ["a"])
    rev = await store.revision()
    again = await store.import_entries([draft("a")], "sup2", retire_missing=True)
    assert again.retired == ["b", "c"] and again.unchanged == ["a"]
    assert await store.revision() == rev + 1
    exported = kbfile.dump(s.entry for s in await store.entries())
    assert [d.key for d in kbfile.parse(exported)] == ["a"]


def test_file_errors_name_their_place():
    with pytest.raises(kbfile.KbFileError) as err:
        kbfile.parse('{"format": "vtax-kb",\n "version": 1, "entries": [}')
    assert err.value.problems[0].where == "line 2, column 28"
    bad = {
        "format": "vtax-kb",
        "version": 1,
        "entries": [
            json.loads(draft("ok").model_dump_json()),
            {**json.loads(draft("bad").model_dump_json()), "category": "astrology"},
            {
                **json.loads(draft("bad2").model_dump_json()),
                "texts": {"en": {"question": "x", "answer": "fine answer", "links": ["nolink"]}},
            },
            json.loads(draft("ok").model_dump_json()),
        ],
    }
    text = json.dumps(bad, indent=1)
    with pytest.raises(kbfile.KbFileError) as err:
        kbfile.parse(text)
    messages = [str(p) for p in err.value.problems]
    assert any("entries[1] (key 'bad', line" in m and "astrology" in m for m in messages)
    assert any("texts.en" in m and "nolink" in m for m in messages)
    assert any("texts.en.question" in m for m in messages)  # too short
    assert any("entries[3]" in m and "repeats entries[0]" in m for m in messages)


def test_named_links_resolve_per_language():
    doc = {
        "format": "vtax-kb",
        "version": 1,
        "links": {
            "etax": {
                "url": "https://etax.example.cn/",
                "title": {"zh-CN": "电子税务局", "en": "e-Tax"},
            }
        },
        "entries": [
            {
                "key": "k",
                "category": "invoices",
                "texts": {
                    "zh-CN": {"question": "发票", "answer": "看链接", "links": ["etax"]},
                    "pt": {"question": "fatura", "answer": "veja", "links": ["etax"]},
                },
            }
        ],
    }
    (entry,) = kbfile.parse(json.dumps(doc))
    assert entry.texts["zh-CN"].links[0].title == "电子税务局"
    assert entry.texts["pt"].links[0].title == "电子税务局"  # falls back to zh-CN
    assert entry.texts["pt"].links[0].url == "https://etax.example.cn/"


async def test_the_seed_goes_into_an_empty_knowledge_base_only(store: KbStore):
    from vtax.assistant.seed import ensure_seeded

    report = await ensure_seeded(store)
    assert report is not None and len(report.created) == len(load_seed()) >= 200
    assert await ensure_seeded(store) is None  # edits are never overwritten by the seed
    assert await store.revision() == 1


def test_hkfill_adds_traditional_texts_and_keeps_written_ones():
    from vtax.assistant.hkfill import fill, to_hk

    assert to_hk("登录电子税务局上传信息") == "登入電子稅務局上載資訊"
    doc = {
        "entries": [
            {"texts": {"zh-CN": {"question": "个税怎么退", "answer": "在个人所得税App办理。"}}},
            {
                "texts": {
                    "zh-CN": {"question": "发票", "answer": "答"},
                    "zh-HK": {"question": "發票", "answer": "手寫"},
                }
            },
        ]
    }
    assert fill(doc) == 1
    assert doc["entries"][0]["texts"]["zh-HK"]["question"] == "個稅如何退"
    assert doc["entries"][1]["texts"]["zh-HK"]["answer"] == "手寫"


@pytest.mark.parametrize(
    ("mainland", "hong_kong"),
    [
        ("可通過電子稅務局辦理", "可透過電子稅務局辦理"),
        ("審核通過後即可領用", "審核通過後即可領用"),  # "passed" stays
        ("人臉識別一直不通過怎麼辦？", "人臉識別一直不通過怎麼辦？"),
        ("發票怎麼開", "發票如何開"),
        ("為什麼不能領用", "為甚麼不能領用"),
        ("已綁定手機號驗證", "已綁定手機號碼驗證"),
        ("手機號碼", "手機號碼"),
        ("在“存款賬户賬號報告”中填寫開户銀行", "在「存款帳戶帳號報告」中填寫開戶銀行"),
        ("“粵稅通”小程序在線掃碼繳稅", "「粵稅通」小程式網上掃描二維碼繳稅"),
    ],
)
def test_hk_review_holds_texts_to_hong_kong_usage(mainland: str, hong_kong: str) -> None:
    from vtax.assistant.hkfill import review

    assert review(mainland) == hong_kong
    assert review(hong_kong) == hong_kong  # idempotent


def test_the_seed_zh_hk_texts_follow_hong_kong_usage() -> None:
    """Every zh-HK text of the shipped seed has been through the review rules: running them
    again changes nothing (a new entry written or filled with mainland usage fails here)."""
    from vtax.assistant.hkfill import review

    for entry in load_seed():
        hk = entry.texts.get("zh-HK")
        assert hk is not None, entry.key
        for text in (hk.question, *hk.alternatives, hk.answer):
            assert review(text) == text, (entry.key, text, review(text))


async def test_concurrent_edits_of_one_version_let_exactly_one_through(store: KbStore):
    import asyncio

    await store.create(draft("race"), "sup")
    results = await asyncio.gather(
        *[store.update(draft("race", answer=f"答案{i}。"), 1, f"sup{i}") for i in range(4)],
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == 3, results
    assert {e.code for e in lost} == {"kb_version_conflict"}
    assert [v.version for v in await store.history("race")] == [1, 2]
    created = await asyncio.gather(
        *[store.create(draft("twin"), "sup") for _ in range(3)], return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in created) == 1
    assert all(r.code == "kb_entry_exists" for r in created if isinstance(r, DomainError))
