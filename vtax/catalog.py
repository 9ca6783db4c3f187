"""The business catalog (categories and items), languages and channels: a shipped data file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Catalog:
    data: dict[str, Any]

    @classmethod
    def load(cls) -> Catalog:
        text = resources.files("vtax").joinpath("data/catalog.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    @cached_property
    def categories(self) -> frozenset[str]:
        return frozenset(c["code"] for c in self.data["categories"])

    @cached_property
    def items_by_category(self) -> dict[str, frozenset[str]]:
        return {
            c["code"]: frozenset(i["code"] for i in c["items"]) for c in self.data["categories"]
        }

    @cached_property
    def languages(self) -> frozenset[str]:
        return frozenset(lang["code"] for lang in self.data["languages"])

    @cached_property
    def channels(self) -> frozenset[str]:
        return frozenset(ch["code"] for ch in self.data["channels"])
