"""The business catalog (categories and items), languages and channels: a shipped data file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

from vtax.errors import DomainError


@dataclass(frozen=True)
class Catalog:
    data: dict[str, Any]

    @classmethod
    def load(cls) -> Catalog:
        text = resources.files("vtax").joinpath("data/catalog.json").read_text(encoding="utf-8")
        data = json.loads(text)
        for category in data["categories"]:
            for item in category["items"]:
                item["step_up"] = bool(item.get("step_up", False))  # every item says it
        return cls(data)

    @cached_property
    def categories(self) -> frozenset[str]:
        return frozenset(c["code"] for c in self.data["categories"])

    @cached_property
    def items_by_category(self) -> dict[str, frozenset[str]]:
        return {
            c["code"]: frozenset(i["code"] for i in c["items"]) for c in self.data["categories"]
        }

    @cached_property
    def step_up_items(self) -> frozenset[str]:
        """Risky items: asking for one needs a fresh high-level sign-in (vtax/app/step_up.py)."""
        return frozenset(
            i["code"] for c in self.data["categories"] for i in c["items"] if i.get("step_up")
        )

    def check_item_of(self, category: str, item: str) -> None:
        """`invalid_payload` for an item that is not one of the category's."""
        if item not in self.items_by_category.get(category, frozenset()):
            raise DomainError("invalid_payload", f"{item[:64]!r} is not an item of {category!r}")

    def check_categories(self, *codes: str | None) -> None:
        """`invalid_payload` for a category (given as a filter or a refinement) the catalog
        does not have; None is no category."""
        for code in codes:
            if code is not None and code not in self.categories:
                raise DomainError("invalid_payload", f"no business category {code[:64]!r}")

    def check_items(self, items: Iterable[str]) -> None:
        """`invalid_payload` for catalog items of no category."""
        known = self.items_by_category.values()
        unknown = [i for i in items if not any(i in group for group in known)]
        if unknown:
            raise DomainError("invalid_payload", f"unknown catalog items: {', '.join(unknown)}")

    @cached_property
    def languages(self) -> frozenset[str]:
        return frozenset(lang["code"] for lang in self.data["languages"])

    @cached_property
    def channels(self) -> frozenset[str]:
        return frozenset(ch["code"] for ch in self.data["channels"])
