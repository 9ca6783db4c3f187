"""Document numbers and phone numbers: shapes, check digits, lifelong keys."""

from __future__ import annotations

import pytest

from tests.identity.numbers import passport, permit, resident_id
from vtax.identity import InvalidIdentity
from vtax.identity.documents import (
    InvalidPhone,
    mrz_check_digit,
    parse_document,
    parse_phone,
    phone_region,
)


def test_resident_id_published_example_and_lowercase_x():
    doc = parse_document("resident_id", "11010519491231002x")
    assert (doc.type, doc.number, doc.key) == ("resident_id", "11010519491231002X", doc.number)


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # wrong check digit
        "1101051949123100",  # too short
        "11010519491331002X"[:17] + "0",  # month 13
        "A10105194912310021",
    ],
)
def test_resident_id_refused(number):
    with pytest.raises(InvalidIdentity):
        parse_document("resident_id", number)


def test_resident_id_with_a_permit_code_is_a_permit():
    with pytest.raises(InvalidIdentity, match="residence permit"):
        parse_document("resident_id", permit("810000"))


@pytest.mark.parametrize(("code", "region"), [("810000", "HK"), ("820000", "MO"), ("830000", "TW")])
def test_residence_permits(code, region):
    doc = parse_document("residence_permit", permit(code))
    assert doc.region == region and doc.key == doc.number


def test_residence_permit_needs_its_address_code_and_check_digit():
    with pytest.raises(InvalidIdentity, match="810000"):
        parse_document("residence_permit", resident_id())
    good = permit("820000")
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(InvalidIdentity, match="check digit"):
        parse_document("residence_permit", bad)


def test_travel_permit_old_and_new_forms_share_the_lifelong_key():
    old = parse_document("travel_permit", "H12345678")
    new = parse_document("travel_permit", "h 1234567801")
    assert old.key == new.key == "H12345678"
    assert new.number == "H1234567801" and new.region == "H"
    assert parse_document("travel_permit", "M87654321").region == "M"
    for bad in ("H1234567", "H123456789", "X12345678", "H12345678012"):
        with pytest.raises(InvalidIdentity):
            parse_document("travel_permit", bad)


def test_passport_icao_example():
    # ICAO Doc 9303 part 3's specimen: document number L898902C3, check digit 6
    assert mrz_check_digit("L898902C3") == "6"
    doc = parse_document("passport", "uto:l898902c36")
    assert (doc.number, doc.key, doc.region) == ("UTO:L898902C36", "UTO:L898902C3", "UTO")
    assert parse_document("passport", passport("GBR", "123456")).key == "GBR:123456"
    for bad in ("UTO:L898902C35", "L898902C36", "UT:L898902C36", "UTO:"):
        with pytest.raises(InvalidIdentity):
            parse_document("passport", bad)


def test_unknown_document_type():
    with pytest.raises(InvalidIdentity, match="unknown document type"):
        parse_document("driving_licence", "123")


@pytest.mark.parametrize(
    ("raw", "e164", "region"),
    [
        ("13800138000", "+8613800138000", "CN"),
        ("+86 138-0013-8000", "+8613800138000", "CN"),
        ("0086 13800138000", "+8613800138000", "CN"),
        ("+852 9123 4567", "+85291234567", "HK"),
        ("+85366123456", "+85366123456", "MO"),
    ],
)
def test_phones(raw, e164, region):
    assert parse_phone(raw) == e164 and phone_region(e164) == region


@pytest.mark.parametrize(
    "raw",
    ["+8612800138000", "+861380013800", "+85231234567", "+85386123456", "+14155550100", "123", ""],
)
def test_phones_refused(raw):
    with pytest.raises(InvalidPhone):
        parse_phone(raw)
