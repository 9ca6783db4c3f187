"""Recording storage: the folder layout, the manifest, and safe lookups.

Layout (one folder per session, under the month the session started in):

    <root>/<yyyy>/<mm>/<session_id>/<role>-<participant_id>-<segment>.webm|.mkv
    <root>/<yyyy>/<mm>/<session_id>/manifest.json

Every name that reaches the file system is checked against a strict pattern first, and every
resolved path is checked to stay inside the root, so no request can leave the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST = "manifest.json"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEGMENT_FILE = re.compile(
    r"^(?P<role>[a-z]{1,16})-(?P<participant>[A-Za-z0-9_-]{1,64})-(?P<segment>\d{3,6})"
    r"\.(?P<ext>webm|mkv)$"
)
_YEAR, _MONTH = re.compile(r"^\d{4}$"), re.compile(r"^(0[1-9]|1[0-2])$")
CONTENT_TYPES = {"webm": "video/webm", "mkv": "video/x-matroska"}


class StorageError(ValueError):
    """A name or path that is not allowed in the recordings folder."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoTrackInfo(_Model):
    codec: str
    frames: int = 0
    keyframes: int = 0
    width: int = 0
    height: int = 0
    starts_with_keyframe: bool = True
    dropped_before_keyframe: int = 0
    dropped_after_loss: int = 0
    duration_s: float = 0.0


class AudioTrackInfo(_Model):
    codec: str
    frames: int = 0
    sample_rate: int = 48000
    duration_s: float = 0.0


class Segment(_Model):
    file: str
    participant_id: str
    role: str
    segment: int = Field(ge=1)
    container: Literal["webm", "matroska"]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    video: VideoTrackInfo | None = None
    audio: AudioTrackInfo | None = None
    bytes: int
    sha256: str
    note: str = ""
    # the participant's camera and microphone, or the screen it shared (video only)
    track: Literal["camera", "screen"] = "camera"


class ParticipantEntry(_Model):
    participant_id: str
    role: str


class Manifest(_Model):
    version: Literal[1] = 1
    session_id: str
    started_at: datetime
    ended_at: datetime | None = None
    status: Literal["recording", "complete", "interrupted"] = "recording"
    consent: dict[str, str] = Field(default_factory=dict)
    participants: list[ParticipantEntry] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    workers: list[str] = Field(default_factory=list)

    def next_segment(self, participant_id: str, track: str = "camera") -> int:
        numbers = [
            s.segment
            for s in self.segments
            if s.participant_id == participant_id and s.track == track
        ]
        return max(numbers, default=0) + 1

    def add_participant(self, participant_id: str, role: str) -> None:
        if all(p.participant_id != participant_id for p in self.participants):
            self.participants.append(ParticipantEntry(participant_id=participant_id, role=role))


def segment_file_name(role: str, participant_id: str, segment: int, ext: str) -> str:
    name = f"{role}-{participant_id}-{segment:03d}.{ext}"
    if not SEGMENT_FILE.match(name):
        raise StorageError(f"not a valid segment file name: {name!r}")
    return name


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RecordingStore:
    """The recordings folder. Pure file-system code: no aiortc, no web."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ---- layout ----------------------------------------------------------------------

    def session_dir(self, session_id: str, started_at: datetime, *, create: bool = False) -> Path:
        if not SESSION_ID.match(session_id):
            raise StorageError("not a valid session id")
        day = started_at.astimezone(UTC)
        path = self.root / f"{day.year:04d}" / f"{day.month:02d}" / session_id
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def find_session_dir(self, session_id: str) -> Path | None:
        """The folder of a session's recording, wherever its month is; None if none."""
        if not SESSION_ID.match(session_id) or not self.root.is_dir():
            return None
        for year in sorted(self.root.iterdir()):
            if not _YEAR.match(year.name) or not year.is_dir():
                continue
            for month in sorted(year.iterdir()):
                if not _MONTH.match(month.name):
                    continue
                candidate = month / session_id
                if candidate.is_dir() and self._inside(candidate):
                    return candidate
        return None

    def session_dirs(self) -> list[Path]:
        """Every session folder under root/yyyy/mm/."""
        found: list[Path] = []
        if not self.root.is_dir():
            return found
        for year in sorted(self.root.iterdir()):
            if not (_YEAR.match(year.name) and year.is_dir()):
                continue
            for month in sorted(year.iterdir()):
                if not (_MONTH.match(month.name) and month.is_dir()):
                    continue
                found.extend(
                    d for d in sorted(month.iterdir()) if d.is_dir() and SESSION_ID.match(d.name)
                )
        return found

    def _inside(self, path: Path) -> bool:
        root = self.root.resolve()
        try:
            return path.resolve().is_relative_to(root)
        except OSError:
            return False

    def segment_path(self, session_id: str, name: str) -> Path:
        """The path of a listed segment file; StorageError for anything else."""
        if not SEGMENT_FILE.match(name):
            raise StorageError("not a segment file name")
        folder = self.find_session_dir(session_id)
        if folder is None:
            raise StorageError("no recording for that session")
        manifest = self.load_manifest(folder)
        if manifest is None or all(s.file != name for s in manifest.segments):
            raise StorageError("that file is not in the session's manifest")
        path = folder / name
        if not path.is_file() or path.is_symlink() or not self._inside(path):
            raise StorageError("no such file")
        return path

    # ---- manifest --------------------------------------------------------------------

    @staticmethod
    def load_manifest(folder: Path) -> Manifest | None:
        path = folder / MANIFEST
        if not path.is_file():
            return None
        return Manifest.model_validate_json(path.read_bytes())

    @staticmethod
    def save_manifest(folder: Path, manifest: Manifest) -> Path:
        path = folder / MANIFEST
        write_atomic(path, manifest.model_dump_json(indent=2).encode() + b"\n")
        return path

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root.resolve()).as_posix()


# ---- verify and prune -------------------------------------------------------------------


class Problem(BaseModel):
    session_dir: str
    file: str
    problem: Literal[
        "missing", "size_mismatch", "hash_mismatch", "unlisted", "bad_manifest", "no_manifest"
    ]
    detail: str = ""


def verify(store: RecordingStore, session_id: str | None = None) -> tuple[int, list[Problem]]:
    """Re-hash every file against its manifest. Returns (files checked, problems)."""
    if session_id is not None:
        folder = store.find_session_dir(session_id)
        folders = [folder] if folder is not None else []
    else:
        folders = store.session_dirs()
    checked, problems = 0, []
    for folder in folders:
        rel = store.relative(folder)
        try:
            manifest = store.load_manifest(folder)
        except ValueError as exc:
            problems.append(
                Problem(
                    session_dir=rel, file=MANIFEST, problem="bad_manifest", detail=str(exc)[:200]
                )
            )
            continue
        media = {p.name for p in folder.iterdir() if SEGMENT_FILE.match(p.name)}
        if manifest is None:
            if media:
                problems.append(Problem(session_dir=rel, file=MANIFEST, problem="no_manifest"))
            continue
        listed = set()
        for seg in manifest.segments:
            listed.add(seg.file)
            path = folder / seg.file
            checked += 1
            if not SEGMENT_FILE.match(seg.file) or not path.is_file():
                problems.append(Problem(session_dir=rel, file=seg.file, problem="missing"))
                continue
            size = path.stat().st_size
            if size != seg.bytes:
                problems.append(
                    Problem(
                        session_dir=rel,
                        file=seg.file,
                        problem="size_mismatch",
                        detail=f"{size} bytes, manifest {seg.bytes}",
                    )
                )
            digest = sha256_of(path)
            if digest != seg.sha256:
                problems.append(
                    Problem(
                        session_dir=rel,
                        file=seg.file,
                        problem="hash_mismatch",
                        detail=f"sha256 {digest}",
                    )
                )
        for name in sorted(media - listed):
            problems.append(Problem(session_dir=rel, file=name, problem="unlisted"))
    return checked, problems


def prune(
    store: RecordingStore, older_than_days: int, now: datetime | None = None, dry_run: bool = False
) -> list[tuple[str, Path]]:
    """Delete session recordings that ended (or, lacking an end, started) more than N days
    ago. Returns (session_id, folder) for each one removed (or that would be)."""
    now = now or datetime.now(UTC)
    removed: list[tuple[str, Path]] = []
    for folder in store.session_dirs():
        try:
            manifest = store.load_manifest(folder)
        except ValueError:
            manifest = None
        if manifest is not None:
            stamp = manifest.ended_at or manifest.started_at
            if manifest.status == "recording" and (now - stamp).total_seconds() < 2 * 86400:
                continue  # a live session (its worker still writes here), unless long dead

        else:
            stamp = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
        if (now - stamp).total_seconds() < older_than_days * 86400:
            continue
        removed.append((folder.name, folder))
        if not dry_run:
            _remove_tree(folder)
    if not dry_run:
        for folder in {p.parent for _, p in removed}:
            _remove_empty(folder, store.root)
    return removed


def _remove_tree(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            _remove_tree(child)
        else:
            child.unlink()
    folder.rmdir()


def _remove_empty(folder: Path, root: Path) -> None:
    """Remove now-empty month and year folders, never the root."""
    root = root.resolve()
    while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def audit_line(kind: str, **data: object) -> bytes:
    record = {"at": datetime.now(UTC).isoformat(), "kind": kind, **data}
    return json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"


def append_audit(root: Path, kind: str, **data: object) -> None:
    """Append one line to <root>/audit.jsonl (append-only; O_APPEND writes are atomic per
    line on local file systems). The recording module's own audit trail."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "audit.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, audit_line(kind, **data))
    finally:
        os.close(fd)
