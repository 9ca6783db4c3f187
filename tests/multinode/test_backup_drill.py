"""The backup and restore drill of docs/operations.md, run as written: a PostgreSQL dump and the
recordings folder with its manifests, the disaster (database dropped, folder gone), the restore,
`vtax recordings verify`, and a node serving the restored records."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.databases import create_pg_database, drop_pg_database, pg_dsn
from tests.multinode.test_two_nodes import session_across, session_row, tokens
from vtax.recording.store import Manifest, ParticipantEntry, RecordingStore, Segment

PG_DUMP, PG_RESTORE = shutil.which("pg_dump"), shutil.which("pg_restore")
pytestmark = [
    pytest.mark.multinode,
    pytest.mark.skipif(PG_DUMP is None or PG_RESTORE is None, reason="no pg_dump/pg_restore"),
]


def run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"
    return done


def write_recording(root: Path, session_id: str) -> Path:
    """A finished recording as the worker leaves it: a segment and its manifest, written with
    the store's own API (the drill checks bytes and hashes; it does not decode media)."""
    store = RecordingStore(root)
    started = datetime.now(UTC)
    folder = store.session_dir(session_id, started, create=True)
    data = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40  # an EBML header, then payload
    name = "taxpayer-p-abc123-001.webm"
    (folder / name).write_bytes(data)
    manifest = Manifest(
        session_id=session_id,
        started_at=started,
        ended_at=started,
        status="complete",
        participants=[ParticipantEntry(participant_id="p-abc123", role="taxpayer")],
        segments=[
            Segment(
                file=name,
                participant_id="p-abc123",
                role="taxpayer",
                segment=1,
                container="webm",
                started_at=started,
                ended_at=started,
                duration_s=1.0,
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        ],
    )
    store.save_manifest(folder, manifest)
    return folder / name


async def test_backup_and_restore_drill(cluster, tmp_path: Path) -> None:
    node = cluster.node("a")
    agent_token, taxpayer_token, boss = await tokens(cluster, node)
    agent, taxpayer, start, _ = await session_across(node, node, agent_token, taxpayer_token)
    sid = start["session_id"]
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    assert (await taxpayer.call("session:rate", {"session_id": sid, "score": 5}))["ok"]
    await agent.close()
    await taxpayer.close()
    before = await session_row(node, boss, sid)
    recordings = Path(cluster.env["VTAX_RECORDINGS_DIR"])
    segment = write_recording(recordings, sid)
    database = cluster.env["VTAX_DATABASE_URL"].rsplit("/", 1)[1]
    node.close()  # a drill is run on a stopped service (or a replica): nothing writes

    # 1. Back up (docs/operations.md, "Backup").
    backup = tmp_path / "backup"
    backup.mkdir()
    run(PG_DUMP or "", "--format=custom", f"--file={backup / 'vtax.dump'}", pg_dsn(database))
    with tarfile.open(backup / "recordings.tar", "w") as tar:
        tar.add(recordings, arcname=".")

    # 2. The disaster: the database and the recordings are gone.
    await drop_pg_database(database)
    shutil.rmtree(recordings)

    # 3. Restore into a new database and folder (docs/operations.md, "Restore").
    restored = database + "_restored"
    await create_pg_database(restored)
    try:
        run(
            PG_RESTORE or "",
            "--no-owner",
            f"--dbname={pg_dsn(restored)}",
            str(backup / "vtax.dump"),
        )
        await asyncio.to_thread(untar, backup / "recordings.tar", recordings)
        env = {**cluster.env, "VTAX_DATABASE_URL": cluster.env["VTAX_DATABASE_URL"] + "_restored"}
        cluster.env.update(env)
        verified = cluster.cli("recordings", "verify")
        assert "1 file(s) checked, 0 problem(s)" in verified, verified
        cluster.cli("migrate")  # at head already: nothing to do, exit 0

        # 4. A node on the restored database serves the same record.
        back = cluster.node("restored")
        after = await session_row(back, boss, sid)
        assert after == before
        async with aiohttp.ClientSession() as http:
            async with http.get(
                back.url + "/api/sessions?limit=10", headers={"Authorization": f"Bearer {boss}"}
            ) as r:
                assert [s["id"] for s in (await r.json())["sessions"]] == [sid]

        # verify is a real check: one byte changed in the restored segment is found.
        await asyncio.to_thread(flip_a_byte, recordings / segment.relative_to(recordings))
        done = await asyncio.to_thread(
            subprocess.run,
            [*cluster_cli(), "recordings", "verify"],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1 and "hash_mismatch" in done.stdout, done.stdout + done.stderr
    finally:
        await drop_pg_database(restored)


def untar(archive: Path, into: Path) -> None:
    into.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def flip_a_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))


def cluster_cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "vtax"]
