"""The confirmation form's field validation (a table of values per type, and properties), the
canonical hash, and the shipped data file against the catalog. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtax.catalog import Catalog
from vtax.confirmation.forms import (
    BusinessForms,
    FieldDef,
    ItemForm,
    Requirement,
    canonical_json,
    check_values,
    content_sha256,
    shipped,
)

LABEL = {"en": "x"}
PERIOD = FieldDef("tax_period", "period", LABEL)
MONEY = FieldDef("tax_due", "money", LABEL, min="0.00", max="1000000.00")
SIGNED = FieldDef("balance", "money", LABEL, min="-100.00")
COUNT = FieldDef("quantity", "integer", LABEL, min=1, max=1000)
KIND = FieldDef("kind", "choice", LABEL, options=("vat_special", "digital"))

# (field, value, stored value or None when refused)
TABLE = [
    (PERIOD, "2026-11", "2026-11"),
    (PERIOD, "2000-01", "2000-01"),
    (PERIOD, "2100-12", "2100-12"),
    (PERIOD, "2026-13", None),
    (PERIOD, "2026-00", None),
    (PERIOD, "2026-1", None),
    (PERIOD, "1999-12", None),
    (PERIOD, "2101-01", None),
    (PERIOD, "202611", None),
    (PERIOD, 202611, None),
    (PERIOD, "2026-11 ", None),
    (MONEY, "0.00", "0.00"),
    (MONEY, "1234.50", "1234.50"),
    (MONEY, "1000000.00", "1000000.00"),
    (MONEY, "1000000.01", None),
    (MONEY, "-0.00", "0.00"),
    (MONEY, "-1.00", None),
    (MONEY, "12.5", None),
    (MONEY, "12", None),
    (MONEY, "12.345", None),
    (MONEY, "012.00", None),
    (MONEY, "+1.00", None),
    (MONEY, "1,000.00", None),
    (MONEY, "1e3", None),
    (MONEY, "NaN", None),
    (MONEY, 12.5, None),
    (MONEY, 12, None),
    (SIGNED, "-100.00", "-100.00"),
    (SIGNED, "-100.01", None),
    (SIGNED, "999999999999.99", "999999999999.99"),
    (SIGNED, "1000000000000.00", None),
    (COUNT, 1, 1),
    (COUNT, 1000, 1000),
    (COUNT, 0, None),
    (COUNT, 1001, None),
    (COUNT, "5", None),
    (COUNT, True, None),
    (COUNT, 5.0, None),
    (KIND, "digital", "digital"),
    (KIND, "gold", None),
    (KIND, "", None),
    (KIND, 1, None),
]


@pytest.mark.parametrize(("field", "value", "stored"), TABLE)
def test_each_type_takes_its_values_and_refuses_others(field, value, stored):
    got, wrong = field.check(value)
    if stored is None:
        assert got is None and wrong
    else:
        assert (got, wrong) == (stored, None)


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2))
def test_money_is_any_two_place_decimal_within_bounds(amount):
    text = f"{amount:.2f}"
    if text == "-0.00":
        text = "0.00"
    got, wrong = SIGNED.check(text)
    inside = Decimal("-100.00") <= amount <= Decimal("999999999999.99")
    assert (wrong is None) == inside
    if inside:
        assert Decimal(got) == amount


@given(st.text(max_size=20))
def test_money_never_takes_what_is_not_two_places(text):
    got, wrong = MONEY.check(text)
    if wrong is None:
        whole, _, cents = text.partition(".")
        assert len(cents) == 2 and whole.isdigit() and Decimal(text) == Decimal(got)


@given(st.integers(min_value=1990, max_value=2110), st.integers(min_value=-1, max_value=14))
def test_periods_are_real_months_of_the_service_years(year, month):
    _, wrong = PERIOD.check(f"{year:04d}-{month:02d}" if month >= 0 else f"{year}-{month}")
    assert (wrong is None) == (2000 <= year <= 2100 and 1 <= month <= 12)


@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_integers_within_bounds(n):
    _, wrong = COUNT.check(n)
    assert (wrong is None) == (1 <= n <= 1000)


def test_an_items_values_name_each_problem():
    form = ItemForm(
        "x", (PERIOD, MONEY, FieldDef("note", "choice", LABEL, False, options=("a",))), ()
    )
    stored, problems = check_values(form, {"tax_period": "2026-11", "zzz": 1}, "items.3")
    assert stored == {"tax_period": "2026-11"}
    assert {(p.loc, p.msg) for p in problems} == {
        ("items.3.values.zzz", "no such field (fields: tax_period, tax_due, note)"),
        ("items.3.values.tax_due", "required"),
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_the_hash_does_not_depend_on_key_order(content):
    reordered = dict(reversed(list(content.items())))
    assert content_sha256(reordered) == content_sha256(content)
    raw = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert content_sha256(content) == hashlib.sha256(raw.encode()).hexdigest()
    assert json.loads(canonical_json(content)) == content


def test_a_known_content_has_a_known_hash():
    # Pinned: a change of the canonical form would change every stored hash's meaning.
    content = {"note": "请核对", "items": [{"code": "a", "values": {"n": 1, "m": "1.00"}}]}
    assert canonical_json(content) == (
        '{"items":[{"code":"a","values":{"m":"1.00","n":1}}],"note":"请核对"}'.encode()
    )
    assert content_sha256(content) == hashlib.sha256(canonical_json(content)).hexdigest()


def test_floats_are_not_canonical():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_the_shipped_forms_fit_the_catalog():
    catalog = Catalog.load()
    codes = frozenset().union(*catalog.items_by_category.values())
    forms = shipped(codes)
    assert set(forms.items) == codes
    for form in forms.items.values():
        assert form.materials, form.code
        for thing in (*form.fields, *form.materials):
            assert set(thing.label) == {"zh-CN", "zh-HK", "en", "pt"}, (form.code, thing.name)
        for field in form.fields:
            if field.type == "choice":
                assert field.option_labels and set(field.option_labels) == set(field.options)
    vat = forms.of("declaration_payment.vat_return")
    assert vat is not None and [f.name for f in vat.fields] == [
        "tax_period",
        "taxable_amount",
        "tax_due",
    ]


def test_a_data_file_with_mistakes_is_refused_at_start():
    base = {"version": 1, "requirements": {"id": LABEL}, "default_materials": [{"name": "id"}]}
    with pytest.raises(ValueError, match="catalog does not have"):
        BusinessForms.parse({**base, "items": {"nope": {}}}, ["a"])
    with pytest.raises(ValueError, match="no entry in requirements"):
        BusinessForms.parse({**base, "items": {"a": {"materials": [{"name": "x"}]}}}, ["a"])
    bad_type = {"a": {"fields": [{"name": "f", "type": "float", "label": LABEL}]}}
    with pytest.raises(ValueError, match="unknown type"):
        BusinessForms.parse({**base, "items": bad_type}, ["a"])
    forms = BusinessForms.parse({**base, "items": {}}, ["a", "b"])
    assert forms.of("b") == ItemForm("b", (), (Requirement("id", LABEL, True),))
