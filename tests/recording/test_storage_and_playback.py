"""Storage: layout, manifest, verify (tampering), prune; the supervisor-only playback endpoint
(Range, roles, traversal); the `vtax recordings` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.recording.media import encoded, opus_frames, probe, vp8_frames
from vtax.models import User
from vtax.recording.store import (
    Manifest,
    RecordingStore,
    Segment,
    StorageError,
    prune,
    segment_file_name,
    sha256_of,
    verify,
)
from vtax.recording.writer import SegmentWriter

SESSION = "0b6f3c1e-5d2a-4b7e-9c1d-2f3e4a5b6c7d"
STARTED = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)


def make_recording(root: Path, session_id: str = SESSION, started: datetime = STARTED) -> Path:
    """A real two-second VP8+Opus segment and its manifest, written as the worker does."""
    store = RecordingStore(root)
    folder = store.session_dir(session_id, started, create=True)
    stem = segment_file_name("taxpayer", "p-abc", 1, "webm").removesuffix(".webm")
    writer = SegmentWriter(folder / stem, "VP8", "opus")
    frames = [(i / 15, "video", d, i * 6000) for i, (d, _) in enumerate(vp8_frames(30))]
    frames += [(i * 0.02, "audio", d, i * 960) for i, d in enumerate(opus_frames(100))]
    for at, kind, data, ts in sorted(frames, key=lambda f: f[0]):
        writer.add(encoded(kind, "VP8" if kind == "video" else "opus", data, ts, 1000 + at))
    result = writer.close()
    assert result is not None
    manifest = Manifest(session_id=session_id, started_at=started, status="complete")
    manifest.add_participant("p-abc", "taxpayer")
    manifest.segments.append(
        Segment(
            file=result.path.name,
            participant_id="p-abc",
            role="taxpayer",
            segment=1,
            container="webm",
            started_at=result.started_at,
            ended_at=result.ended_at,
            duration_s=result.duration_s,
            video=result.video,
            audio=result.audio,
            bytes=result.path.stat().st_size,
            sha256=sha256_of(result.path),
        )
    )
    manifest.ended_at = started + timedelta(seconds=2)
    store.save_manifest(folder, manifest)
    return folder


# ---- storage ----------------------------------------------------------------------------------


def test_layout_and_verify(tmp_path: Path) -> None:
    folder = make_recording(tmp_path)
    assert folder == tmp_path / "2026" / "11" / SESSION
    store = RecordingStore(tmp_path)
    assert store.find_session_dir(SESSION) == folder
    info = probe(folder / "taxpayer-p-abc-001.webm")
    assert info.frames == {"video": 30, "audio": 100} and info.first_video_keyframe
    assert verify(store) == (1, [])


def test_verify_reports_tampering_missing_and_unlisted_files(tmp_path: Path) -> None:
    folder = make_recording(tmp_path)
    store = RecordingStore(tmp_path)
    media = folder / "taxpayer-p-abc-001.webm"
    data = bytearray(media.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one bit pattern changed
    media.write_bytes(bytes(data))
    (folder / "agent-p-def-001.webm").write_bytes(b"not in the manifest")
    checked, problems = verify(store)
    assert checked == 1
    assert {(p.file, p.problem) for p in problems} == {
        ("taxpayer-p-abc-001.webm", "hash_mismatch"),
        ("agent-p-def-001.webm", "unlisted"),
    }
    media.unlink()
    assert [p.problem for p in verify(store, SESSION)[1]] == ["missing", "unlisted"]


def test_prune_removes_old_recordings_but_not_live_ones(tmp_path: Path) -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    old = make_recording(tmp_path, "old-session", datetime(2026, 1, 5, tzinfo=UTC))
    new = make_recording(tmp_path, "new-session", now - timedelta(hours=12))
    live = make_recording(tmp_path, "live-session", now - timedelta(hours=36))
    dead = make_recording(tmp_path, "dead-session", datetime(2026, 1, 6, tzinfo=UTC))
    store = RecordingStore(tmp_path)
    for folder in (live, dead):  # still "recording": a live session, or a worker that died
        m = store.load_manifest(folder)
        assert m is not None
        m.status, m.ended_at = "recording", None
        store.save_manifest(folder, m)
    assert sorted(s for s, _ in prune(store, 30, now, dry_run=True)) == [
        "dead-session",
        "old-session",
    ]
    assert old.exists()
    assert sorted(s for s, _ in prune(store, 1, now)) == ["dead-session", "old-session"]
    assert not old.exists() and not dead.exists()
    assert new.exists() and live.exists()  # live: younger than 2 days, its worker writes
    assert not (tmp_path / "2026" / "01").exists()  # emptied month folders go too


def test_names_are_checked(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    for bad in ("../x", "a/b", "", "x" * 65, "..", "a b"):
        with pytest.raises(StorageError):
            store.session_dir(bad, STARTED)
        assert store.find_session_dir(bad) is None
    make_recording(tmp_path)
    for name in ("../manifest.json", "manifest.json", "taxpayer-p-abc-001.webm/..", "x.webm"):
        with pytest.raises(StorageError):
            store.segment_path(SESSION, name)
    assert store.segment_path(SESSION, "taxpayer-p-abc-001.webm").is_file()


def test_a_symlink_out_of_the_folder_is_not_served(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    folder = make_recording(root)
    secret = tmp_path / "secret.webm"
    secret.write_bytes(b"secret")
    target = folder / "taxpayer-p-abc-001.webm"
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(StorageError):
        RecordingStore(root).segment_path(SESSION, "taxpayer-p-abc-001.webm")


# ---- the commands -------------------------------------------------------------------------------


def _vtax(args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VTAX_RECORDINGS_DIR=str(root), VTAX_SECRET_KEY="k" * 32)
    return subprocess.run(
        [sys.executable, "-m", "vtax", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_recordings_verify_and_prune_commands(tmp_path: Path) -> None:
    folder = make_recording(tmp_path, "old-session", datetime(2020, 1, 1, tzinfo=UTC))
    ok = _vtax(["recordings", "verify"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "1 file(s) checked, 0 problem(s)" in ok.stdout
    media = folder / "taxpayer-p-abc-001.webm"
    media.write_bytes(media.read_bytes()[:-10] + b"0123456789")
    bad = _vtax(["recordings", "verify", "--json"], tmp_path)
    assert bad.returncode == 1
    problems = [json.loads(line) for line in bad.stdout.splitlines()[:-1]]
    assert problems[0]["problem"] == "hash_mismatch"
    pruned = _vtax(["recordings", "prune", "--older-than-days", "30"], tmp_path)
    assert pruned.returncode == 0 and "1 recording(s)" in pruned.stdout
    assert not folder.exists()
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in audit] == ["recording_verify_failed", "recording_pruned"]


# ---- playback -----------------------------------------------------------------------------------


async def _get(server: Any, path: str, token: str | None = None, **headers: str) -> Any:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with server.http.get(server.url + path, headers=headers) as res:
        return res.status, dict(res.headers), await res.read()


async def test_playback_is_for_supervisors_with_range(server: Any) -> None:
    folder = make_recording(server.ctx.settings.recordings_dir)
    media = (folder / "taxpayer-p-abc-001.webm").read_bytes()
    sup = await server.staff("sup1", "supervisor")
    agent = await server.staff("agent1")
    taxpayer = await server.taxpayer()

    status, _, body = await _get(server, f"/api/recordings/{SESSION}", sup)
    assert status == 200
    manifest = json.loads(body)
    seg = manifest["segments"][0]
    assert seg["file"] == "taxpayer-p-abc-001.webm" and seg["video"]["frames"] == 30
    path = f"/api/recordings/{SESSION}/files/{seg['file']}"

    status, headers, body = await _get(server, path, sup)
    assert status == 200 and body == media and headers["Content-Type"] == "video/webm"
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, body = await _get(server, path, sup, Range="bytes=100-199")
    assert status == 206 and body == media[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(media)}"
    status, _, body = await _get(server, path, sup, Range=f"bytes={len(media) - 10}-")
    assert status == 206 and body == media[-10:]
    status, _, _ = await _get(server, path, sup, Range=f"bytes={len(media) + 5}-")
    assert status == 416
    # The signed URL from the manifest works without a header (for <video src>).
    status, _, body = await _get(server, seg["url"], Range="bytes=0-9")
    assert status == 206 and body == media[:10]

    for token in (agent, taxpayer):
        for p in (f"/api/recordings/{SESSION}", path):
            status, _, body = await _get(server, p, token)
            assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"
    status, _, body = await _get(server, path)
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    # A playback link is bound to its file and cannot be forged or reused for another.
    link = seg["url"].split("dl=")[1]
    other = f"/api/recordings/{SESSION}/files/agent-p-abc-001.webm?dl={link}"
    assert (await _get(server, other))[0] == 401
    forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    assert (await _get(server, f"{path}?dl={forged}"))[0] == 401
    # It goes through the route guard: a supervisor disabled since cannot use it.
    async with server.ctx.engine.begin() as conn:
        await conn.execute(update(User).where(User.username == "sup1").values(disabled=True))
    status, _, body = await _get(server, seg["url"], Range="bytes=0-9")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"


async def test_playback_paths_cannot_leave_the_folder(server: Any, tmp_path: Path) -> None:
    make_recording(server.ctx.settings.recordings_dir)
    (server.ctx.settings.recordings_dir / "audit.jsonl").write_text("secret\n")
    sup = await server.staff("sup1", "supervisor")
    attempts = [
        f"/api/recordings/{SESSION}/files/..%2Fmanifest.json",
        f"/api/recordings/{SESSION}/files/manifest.json",
        f"/api/recordings/{SESSION}/files/%2e%2e%2f%2e%2e%2faudit.jsonl",
        f"/api/recordings/{SESSION}/files/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/recordings/..%2F..%2F/files/audit.jsonl",
        "/api/recordings/%2e%2e/files/taxpayer-p-abc-001.webm",
        f"/api/recordings/{SESSION}/files/taxpayer-p-abc-001.webm%00.txt",
        f"/api/recordings/{SESSION}/files/%2Fetc%2Fpasswd",
        "/api/recordings/2026/files/x",
        "/api/recordings/nope",
    ]
    for attempt in attempts:
        status, _, body = await _get(server, attempt, sup)
        assert status in (400, 404), (attempt, status)
        assert b"secret" not in body and b"root:" not in body
