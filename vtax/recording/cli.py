"""`vtax recorder` and `vtax recordings prune|verify` (wired into signaling/cli.py)."""

from __future__ import annotations

import argparse
import json
import sys

from vtax.config import Settings
from vtax.recording.store import RecordingStore, append_audit, prune, verify


def run_recorder_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "recorder":
        from vtax.recording.worker import default_node_url, serve_recorder

        if args.capacity is not None and not 1 <= args.capacity <= 500:
            print("vtax: --capacity must be 1..500", file=sys.stderr)
            return 2
        return serve_recorder(settings, args.url or default_node_url(settings), args.capacity)
    store = RecordingStore(settings.recordings_dir)
    if args.recordings_command == "prune":
        days = args.older_than_days or settings.recording_retention_days
        if days < 1:
            print("vtax: --older-than-days must be at least 1", file=sys.stderr)
            return 2
        removed = prune(store, days, dry_run=args.dry_run)
        for session_id, folder in removed:
            if not args.dry_run:
                append_audit(
                    store.root,
                    "recording_pruned",
                    session_id=session_id,
                    folder=folder.name,
                    retention_days=days,
                    by="cli",
                )
            print(f"{'would remove' if args.dry_run else 'removed'} {folder}")
        print(f"{len(removed)} recording(s) older than {days} days")
        return 0
    checked, problems = verify(store, args.session)
    for problem in problems:
        if args.json:
            print(problem.model_dump_json())
        else:
            detail = f" ({problem.detail})" if problem.detail else ""
            print(f"{problem.problem}: {problem.session_dir}/{problem.file}{detail}")
    if problems:
        append_audit(store.root, "recording_verify_failed", problems=len(problems), by="cli")
    summary = {"files_checked": checked, "problems": len(problems)}
    print(
        json.dumps(summary)
        if args.json
        else f"{checked} file(s) checked, {len(problems)} problem(s)"
    )
    return 1 if problems else 0
