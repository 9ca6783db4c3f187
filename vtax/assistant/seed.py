"""The shipped seed knowledge base (vtax/data/kb_*.json) and putting it into a store."""

from __future__ import annotations

from importlib import resources

from sqlalchemy.exc import IntegrityError

from vtax.assistant import kbfile
from vtax.assistant.kb import EntryDraft
from vtax.assistant.store import ImportReport, KbStore

SEED_AUTHOR = "seed"


def seed_files() -> list[str]:
    folder = resources.files("vtax").joinpath("data")
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.startswith("kb_") and p.name.endswith(".json") and p.name != "kb_synonyms.json"
    )


def load_seed() -> list[EntryDraft]:
    """Every entry of the shipped files (KbFileError names the file and the place)."""
    drafts: list[EntryDraft] = []
    folder = resources.files("vtax").joinpath("data")
    for name in seed_files():
        try:
            drafts.extend(kbfile.parse(folder.joinpath(name).read_text("utf-8")))
        except kbfile.KbFileError as exc:
            problems = [kbfile.Problem(f"{name}: {p.where}", p.message) for p in exc.problems]
            raise kbfile.KbFileError(problems) from None
    return drafts


async def ensure_seeded(store: KbStore) -> ImportReport | None:
    """Import the seed into an empty knowledge base (the first start); None when the
    knowledge base has entries already (supervisors' edits are never overwritten), or when
    another node starting at the same time imported it first."""
    if await store.entries(include_retired=True):
        return None
    try:
        return await store.import_entries(load_seed(), SEED_AUTHOR)
    except IntegrityError:  # another node seeded it at the same moment
        return None
