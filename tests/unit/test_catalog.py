"""The catalog's checks of categories and items: one place for the REST API and the
Socket.IO events (both answer `invalid_payload`)."""

from __future__ import annotations

import pytest

from vtax.catalog import Catalog
from vtax.errors import DomainError

CATALOG = Catalog.load()


def test_known_categories_and_items_pass():
    category = sorted(CATALOG.categories)[0]
    CATALOG.check_categories(category, None)
    CATALOG.check_categories()
    CATALOG.check_items(sorted(CATALOG.items_by_category[category])[:2])
    CATALOG.check_items([])


@pytest.mark.parametrize("codes", [("astrology",), (None, "x" * 500), ("invoices", "")])
def test_an_unknown_category_is_invalid_payload(codes):
    with pytest.raises(DomainError) as err:
        CATALOG.check_categories(*codes)
    assert err.value.code == "invalid_payload"
    assert len(err.value.message) < 100  # the echoed code is cut to 64 characters


def test_unknown_items_are_named():
    with pytest.raises(DomainError) as err:
        CATALOG.check_items(["invoices.nope", "registration.nada"])
    assert err.value.code == "invalid_payload"
    assert "invoices.nope" in err.value.message and "registration.nada" in err.value.message


PAGE_LANGUAGES = ("zh-CN", "zh-HK", "en", "pt")
# Characters of the Simplified script only (their Traditional forms differ): a zh-HK name
# with one of them was copied from zh-CN.
SIMPLIFIED_ONLY = set(
    "税发证务记纳报开缴费义优设变销区验账户软实协签银类领红废数调额审专损毁备伪确认异凭处"
    "机车统预汇个经营综产镇环护维财会错误请缓点团创资关联贸项对质权让属矿弃电门为导级检"
)


def named_entries() -> list[tuple[str, dict[str, str]]]:
    data = CATALOG.data
    out = [(f"language {e['code']}", e["name"]) for e in data["languages"]]
    out += [(f"channel {e['code']}", e["name"]) for e in data["channels"]]
    for cat in data["categories"]:
        out.append((f"category {cat['code']}", cat["name"]))
        out += [(f"item {item['code']}", item["name"]) for item in cat["items"]]
    return out


def test_every_name_is_in_the_four_page_languages():
    entries = named_entries()
    assert len(entries) == 4 + 3 + 8 + 106
    for what, names in entries:
        assert sorted(names) == sorted(PAGE_LANGUAGES), what
        assert all(names[lang].strip() for lang in PAGE_LANGUAGES), what
        hk = names["zh-HK"]
        assert not SIMPLIFIED_ONLY & set(hk), f"{what}: zh-HK {hk!r} has Simplified characters"
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in names["pt"] + names["en"]), what
