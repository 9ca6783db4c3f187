"""The confirmation form's view of the taxpayer's materials (`SessionMaterials` over the
materials area's `views`): which materials can be linked, and their hashes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from vtax.app.confirmation import MaterialRef, SessionMaterials
from vtax.errors import DomainError


@dataclass
class View:
    id: str
    sha256: str
    state: str


class Views:
    """`Materials.views` as the materials area answers it, over a dict of sessions."""

    def __init__(self, by_session: dict[str, list[View]]) -> None:
        self.by_session = by_session
        self.calls = 0

    async def views(self, session_id: str, material_ids: Sequence[str]) -> list[View]:
        self.calls += 1
        by_id = {v.id: v for v in self.by_session.get(session_id, [])}
        missing = [m for m in material_ids if m not in by_id]
        if missing:
            raise DomainError("not_found", f"no such material in this session: {missing[0]}")
        return [by_id[m] for m in material_ids]


async def test_linkable_materials_are_the_sessions_own_and_not_rejected():
    views = Views(
        {
            "s1": [View("m1", "a" * 64, "accepted"), View("m2", "b" * 64, "submitted"),
                   View("m3", "c" * 64, "rejected")],
            "s2": [View("m9", "d" * 64, "accepted")],
        }
    )  # fmt: skip
    lookup = SessionMaterials(views)
    assert await lookup.find("s1", ["m1", "m2"]) == {
        "m1": MaterialRef("m1", "a" * 64),
        "m2": MaterialRef("m2", "b" * 64),
    }
    assert views.calls == 1  # all there: one read
    assert await lookup.find("s1", ["m1", "m3", "m9", "nope"]) == {
        "m1": MaterialRef("m1", "a" * 64)
    }
    assert await lookup.find("s2", ["m1"]) == {}


async def test_other_failures_are_not_hidden():
    class Down:
        async def views(self, session_id: str, material_ids: Sequence[str]) -> list[View]:
            raise DomainError("unavailable", "the database is down")

    with pytest.raises(DomainError) as exc:
        await SessionMaterials(Down()).find("s1", ["m1"])
    assert exc.value.code == "unavailable"
