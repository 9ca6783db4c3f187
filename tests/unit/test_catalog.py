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
