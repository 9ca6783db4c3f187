"""The demo registry (examples/registry-demo.csv, what `vtax serve --demo` can import) is a
valid export: it imports cleanly and signs its people in by SMS code."""

from __future__ import annotations

from pathlib import Path

from tests.identity.world import TODAY
from vtax.identity.importer import import_file

DEMO = Path(__file__).resolve().parents[2] / "examples" / "registry-demo.csv"


async def test_demo_registry_imports(sqlite_db):
    report = await import_file(sqlite_db.sessions, DEMO, TODAY)
    assert report.ok, report.errors
    assert (report.people_created, report.phones_added, report.enterprises_created) == (4, 4, 2)
    wang = await sqlite_db.registry.person_by_phone("+8613800138000")
    assert wang is not None
    assert len(await sqlite_db.registry.active_grants(wang.id, TODAY)) == 2
