"""The registry import on both engines: validated row by row with line numbers, all or
nothing, idempotent; grants in force by date, confirmation and revocation."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa

from tests.identity.numbers import passport, permit, resident_id, uscc_n
from vtax.identity.importer import import_file, import_text

TODAY = date(2026, 12, 3)
HEADER = (
    "name,document_type,document_number,phones,uscc,enterprise_name,role,functions,"
    "valid_from,valid_until,confirmed,revoked"
)
RID = resident_id()
PERMIT = permit("820000")
A, B = uscc_n(1), uscc_n(2)


def csv_text(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


GOOD = csv_text(
    f"Wang Fang,resident_id,{RID},13800138000;+852 9123 4567,{A},Acme Ltd,legal_representative,"
    ",2026-01-01,,true,false",
    f"Wang Fang,resident_id,{RID},,{B},Beta Co,tax_handler,declare;invoices,,2026-12-31,1,0",
    f"Leong Mei,residence_permit,{PERMIT},+85366123456,{A},Acme Ltd,finance_officer,,,,,",
    f"Old Grant,travel_permit,H12345678,,{B},Beta Co,invoice_purchaser,,2025-01-01,2025-12-31,,",
    f"John Smith,passport,{passport()},,,,,,,,,",
)


async def counts(db) -> dict[str, int]:
    out = {}
    async with db.engine.connect() as conn:
        for t in ("identity_people", "identity_phones", "identity_enterprises", "identity_grants"):
            out[t] = await conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
    return out


async def test_import_csv_then_again_changes_nothing(db):
    report = await import_text(db.sessions, GOOD, "csv", TODAY)
    assert report.ok, report.errors
    assert (report.rows, report.people_created, report.phones_added) == (5, 4, 3)
    assert (report.enterprises_created, report.grants_created) == (2, 4)
    before = await counts(db)
    assert before == {
        "identity_people": 4,
        "identity_phones": 3,
        "identity_enterprises": 2,
        "identity_grants": 4,
    }
    again = await import_text(db.sessions, GOOD, "csv", TODAY)
    assert again.ok and again.changes == 0
    assert await counts(db) == before

    wang = await db.registry.person_by_phone("+85291234567")
    assert wang is not None and wang.name == "Wang Fang" and wang.doc_number == RID
    grants = await db.registry.active_grants(wang.id, TODAY)
    assert [(g.uscc, g.role, g.functions) for g in grants] == [
        (A, "legal_representative", ()),
        (B, "tax_handler", ("declare", "invoices")),
    ]
    # an ended grant gives nothing; a grant that ends tomorrow still holds today
    old = await db.registry.person_by_document("travel_permit", "H12345678")
    assert old is not None and await db.registry.active_grants(old.id, TODAY) == []
    assert await db.registry.active_grants(wang.id, date(2027, 1, 1)) == [grants[0]]
    # the grant without a start day starts on the import day
    assert await db.registry.active_grants(wang.id, date(2026, 12, 2)) == [grants[0]]


async def test_a_changed_export_updates_in_place(db):
    assert (await import_text(db.sessions, GOOD, "csv", TODAY)).ok
    changed = csv_text(
        f"Wang Fang,resident_id,{RID},13800138000,{A},Acme Holdings,legal_representative,"
        ",2026-01-01,,true,true",  # revoked now; the enterprise renamed
    )
    report = await import_text(db.sessions, changed, "csv", TODAY)
    assert report.ok
    assert (report.enterprises_updated, report.grants_updated, report.people_created) == (1, 1, 0)
    wang = await db.registry.person_by_phone("+8613800138000")
    assert wang is not None
    assert [g.uscc for g in await db.registry.active_grants(wang.id, TODAY)] == [B]


async def test_json_import_matches_csv(db):
    rows = [
        {
            "name": "Wang Fang",
            "document_type": "resident_id",
            "document_number": RID,
            "phones": ["13800138000"],
            "uscc": A,
            "enterprise_name": "Acme Ltd",
            "role": "finance_officer",
            "functions": ["declare"],
            "valid_until": "2027-06-30",
            "confirmed": True,
        }
    ]
    report = await import_text(db.sessions, json.dumps({"rows": rows}), "json", TODAY)
    assert report.ok and report.grants_created == 1
    wang = await db.registry.person_by_phone("+8613800138000")
    assert wang is not None
    (g,) = await db.registry.active_grants(wang.id, TODAY)
    assert (g.role, g.valid_until, g.functions) == (
        "finance_officer",
        date(2027, 6, 30),
        ("declare",),
    )
    assert (await import_text(db.sessions, json.dumps(rows), "json", TODAY)).changes == 0


async def test_errors_name_their_lines_and_nothing_is_written(db):
    bad = csv_text(
        f"Fine Person,resident_id,{RID},,,,,,,,,",
        "Bad Check,resident_id,110105194912310021,,,,,,,,,",  # line 3
        f"Bad Phone,passport,{passport()},+14155550100,,,,,,,,",  # line 4
        f"Bad Grant,resident_id,{resident_id('44030019800101123')},,{A},,tax_handler,,,,,",
        f"Bad Role,resident_id,{resident_id('44030019800101124')},,{A},Acme,owner,,,,,",
        f"Bad Uscc,resident_id,{resident_id('44030019800101125')},,{A[:-1]}0,Acme,tax_handler,,,,,",
        ",resident_id,{},,,,,,,,,".format(resident_id("44030019800101126")),  # line 8: no name
        f"Dates,resident_id,{RID},,{A},Acme,tax_handler,,2026-02-01,2026-01-01,,",
        f"Flag,resident_id,{RID},,{A},Acme,tax_handler,,,,maybe,",
    )
    report = await import_text(db.sessions, bad, "csv", TODAY)
    lines = {e.line: e.message for e in report.errors}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10], report.errors
    assert "check digit" in lines[3]
    assert "+86" in lines[4] or "mainland" in lines[4]
    assert "together" in lines[5]
    assert "role" in lines[6]
    assert "check character" in lines[7]
    assert "name" in lines[8]
    assert "before" in lines[9]
    assert "confirmed" in lines[10]
    assert sum((await counts(db)).values()) == 0


async def test_file_level_errors(db):
    assert [str(e) for e in (await import_text(db.sessions, "", "csv", TODAY)).errors] == [
        "line 1: the file is empty (a header line is needed)"
    ]
    report = await import_text(db.sessions, "name,colour\nx,y\n", "csv", TODAY)
    assert "colour" in report.errors[0].message
    report = await import_text(db.sessions, '{"rows": [1]}', "json", TODAY)
    assert report.errors[0].line == 1 and "object" in report.errors[0].message
    report = await import_text(db.sessions, "[\n{,", "json", TODAY)
    assert report.errors[0].line == 2 and "not JSON" in report.errors[0].message


async def test_a_number_belongs_to_one_person(db):
    two = csv_text(
        f"One,resident_id,{RID},13800138000,,,,,,,,",
        f"Two,passport,{passport()},+86 138 0013 8000,,,,,,,,",
    )
    report = await import_text(db.sessions, two, "csv", TODAY)
    assert [e.line for e in report.errors] == [3]
    assert (await import_text(db.sessions, two.rsplit("\n", 2)[0] + "\n", "csv", TODAY)).ok
    later = csv_text(f"Two,passport,{passport()},+8613800138000,,,,,,,,")
    report = await import_text(db.sessions, later, "csv", TODAY)
    assert [e.line for e in report.errors] == [2] and "another person" in report.errors[0].message
    assert (await counts(db))["identity_people"] == 1  # the failed import left nothing


async def test_import_file_detects_the_format_and_reads_a_bom(db, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(GOOD, encoding="utf-8-sig")
    assert (await import_file(db.sessions, path, TODAY)).people_created == 4


async def test_disable_and_token_versions(db):
    assert (await import_text(db.sessions, GOOD, "csv", TODAY)).ok
    wang = await db.registry.person_by_phone("+8613800138000")
    assert wang is not None and wang.token_version == 0
    assert await db.registry.bump_token_version(wang.id) == 1
    await db.registry.set_disabled(wang.id, True)
    assert await db.registry.person_by_phone("+8613800138000") is None
    p = await db.registry.person(wang.id)
    assert p is not None and p.disabled and p.token_version == 2


async def test_concurrent_first_sign_ins_make_one_person(db):
    import asyncio

    from vtax.identity.registry import ProvidedGrant, upsert_from_provider

    grants = [ProvidedGrant(A, "Acme Ltd", "tax_handler")]
    people = await asyncio.gather(
        *(
            upsert_from_provider(db.sessions, "resident_id", RID, RID, "Wang", grants, TODAY)
            for _ in range(3)
        )
    )
    assert len({p.id for p in people}) == 1
    c = await counts(db)
    assert (c["identity_people"], c["identity_enterprises"], c["identity_grants"]) == (1, 1, 1)
