"""The `vtax` command: serve, migrate, registry import|disable|enable, user add, recorder,
recordings prune|verify, simulate, kpi rebuild."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from vtax.accounts import Accounts
from vtax.auth import Passwords
from vtax.catalog import Catalog
from vtax.config import Settings, SettingsError
from vtax.db import make_engine, migrate, session_factory
from vtax.errors import DomainError
from vtax.identity.documents import DOCUMENT_TYPES
from vtax.logs import configure_logging
from vtax.unreachable import backend_of, exc_line, is_unreachable

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PERSON_ID = re.compile(r"^[0-9a-f-]{1,36}$")


def _skill(text: str) -> tuple[str, int]:
    category, sep, level = text.partition("=")
    if not sep or not level.isdigit() or not 1 <= int(level) <= 5:
        raise argparse.ArgumentTypeError(f"{text!r}: use CATEGORY=LEVEL with LEVEL 1..5")
    return category, int(level)


def _username(text: str) -> str:
    if not USERNAME.match(text):
        raise argparse.ArgumentTypeError("a username has 1-64 letters, digits, _ . or -")
    return text


def _person_id(text: str) -> str:
    if not PERSON_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: a person's id is a UUID")
    return text


def _reason(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= 500 or "\x00" in text:
        raise argparse.ArgumentTypeError("a reason has 1-500 characters")
    return text


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use a day of the service time zone, YYYY-MM-DD"
        ) from None
    if len(text) != 10 or not 2000 <= day.year <= 2100:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use a day of the service time zone, YYYY-MM-DD in 2000..2100"
        )
    return day


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtax", description="V-Tax remote video tax service")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a signaling node (API, Socket.IO, pages)")
    serve.add_argument("--host", help="address to listen on (default VTAX_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default VTAX_PORT or 8080; 0 = any)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed a demo agent and supervisor and print how to sign in",
    )

    sub.add_parser("migrate", help="apply pending database migrations")

    registry = sub.add_parser("registry", help="the registry of people and enterprises")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True)
    imp = registry_sub.add_parser(
        "import", help="import the tax system's export (CSV or JSON; docs/identity.md)"
    )
    imp.add_argument("path", type=Path, metavar="PATH")
    imp.add_argument(
        "--format", choices=["csv", "json"], help="the file's format (default: by its suffix)"
    )

    for verb, what in (
        ("disable", "disable a person: every token of theirs dies, sign-in refused (audited)"),
        ("enable", "enable a disabled person again (audited); they sign in anew"),
    ):
        access = registry_sub.add_parser(verb, help=what)
        who = access.add_mutually_exclusive_group(required=True)
        who.add_argument("--person", type=_person_id, metavar="ID", help="the person's id")
        who.add_argument(
            "--document",
            nargs=2,
            metavar=("TYPE", "NUMBER"),
            help=f"the person's document: TYPE one of {', '.join(DOCUMENT_TYPES)}",
        )
        access.add_argument(
            "--reason", required=True, type=_reason, help="why (kept in the identity audit)"
        )

    user = sub.add_parser("user", help="manage staff accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="add an agent or supervisor; password from stdin")
    add.add_argument("name", type=_username)
    add.add_argument("--role", choices=["agent", "supervisor"], required=True)
    add.add_argument(
        "--skill",
        type=_skill,
        action="append",
        default=[],
        metavar="CATEGORY=LEVEL",
        help="business category and proficiency 1-5",
    )
    add.add_argument(
        "--language",
        action="append",
        default=[],
        metavar="CODE",
        help="zh-CN, yue, en or pt; repeatable",
    )
    add.add_argument("--display-name", default="")
    add.add_argument("--replace", action="store_true", help="update the user if it exists")

    recorder = sub.add_parser("recorder", help="run a recorder worker (aiortc, separate process)")
    recorder.add_argument("--url", help="signaling node (default VTAX_RECORDER_URL or host:port)")
    recorder.add_argument("--capacity", type=int, help="sessions at once (VTAX_RECORDER_CAPACITY)")
    recordings = sub.add_parser("recordings", help="recording retention and integrity")
    rec_sub = recordings.add_subparsers(dest="recordings_command", required=True)
    prune_p = rec_sub.add_parser("prune", help="delete recordings older than the retention")
    prune_p.add_argument(
        "--older-than-days", type=int, help="default VTAX_RECORDING_RETENTION_DAYS"
    )
    prune_p.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    verify_p = rec_sub.add_parser("verify", help="re-hash files against their manifests")
    verify_p.add_argument("--session", help="only this session id")
    verify_p.add_argument("--json", action="store_true", help="print problems as JSON lines")
    kpi = sub.add_parser("kpi", help="KPI maintenance (docs/review.md)")
    kpi_sub = kpi.add_subparsers(dest="kpi_command", required=True)
    rebuild = kpi_sub.add_parser(
        "rebuild", help="recompute the per-day KPI rollup from the session rows"
    )
    rebuild.add_argument(
        "--from",
        dest="day_from",
        type=_day,
        metavar="DAY",
        help="first day of the service time zone (YYYY-MM-DD)",
    )
    rebuild.add_argument(
        "--to", dest="day_to", type=_day, metavar="DAY", help="last day, inclusive"
    )
    kpi_sub.add_parser(
        "rezone",
        help="move every stored day (sessions, agent state time, the rollup) to "
        "VTAX_SERVICE_TIMEZONE, after changing it, with the nodes stopped",
    )
    simulate = sub.add_parser(
        "simulate", help="drive the real queue engine with a virtual clock (docs/routing.md)"
    )
    simulate.add_argument("config", type=Path, help="TOML or JSON, e.g. examples/simulate-mmc.toml")
    simulate.add_argument("--json", action="store_true", help="print the report as JSON")
    simulate.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != first:
            raise SystemExit("vtax: the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _migrate(settings: Settings) -> None:
    await migrate(settings.resolved_database_url, timezone=settings.service_timezone)


async def _user_add(settings: Settings, args: argparse.Namespace) -> str:
    catalog = Catalog.load()
    for category, _ in args.skill:
        if category not in catalog.categories:
            raise SystemExit(
                f"vtax: unknown category {category!r}; "
                f"known: {', '.join(sorted(catalog.categories))}"
            )
    for lang in args.language:
        if lang not in catalog.languages:
            raise SystemExit(
                f"vtax: unknown language {lang!r}; known: {', '.join(sorted(catalog.languages))}"
            )
    password = _read_password()
    if len(password) < 8:
        raise SystemExit("vtax: the password needs at least 8 characters")
    if settings.is_embedded_database:
        await migrate(settings.resolved_database_url, timezone=settings.service_timezone)
    engine = make_engine(settings.resolved_database_url)
    try:
        staff = await Accounts(session_factory(engine), Passwords.from_settings(settings)).add_user(
            args.name,
            args.role,
            password,
            display_name=args.display_name,
            skills=dict(args.skill),
            languages=list(dict.fromkeys(args.language)),
            replace=args.replace,
        )
    except ValueError as exc:
        raise SystemExit(f"vtax: {exc}") from None
    finally:
        await engine.dispose()
    return staff.id


async def _kpi_rebuild(settings: Settings, day_from: date | None, day_to: date | None) -> str:
    from sqlalchemy.exc import DBAPIError

    from vtax.review.rollup import ZoneMismatch, rebuild

    engine = make_engine(settings.resolved_database_url)
    zone = settings.service_timezone
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            counts = await rebuild(conn, day_from, day_to, zone=zone)
    except ZoneMismatch as exc:
        raise SystemExit(f"vtax: {exc.message}") from None
    except DBAPIError as exc:
        if any(t in str(exc) for t in ("kpi_rollup", "kpi_journal", "kpi_meta")):
            raise SystemExit("vtax: no KPI rollup tables here; run `vtax migrate` first") from None
        raise
    finally:
        await engine.dispose()
    days = f"{counts['from'] or 'the first day'} to {counts['to'] or 'the last day'}"
    return (
        f"rebuilt the KPI rollup from {days} (whole months, {zone} days): "
        f"{counts['kpi_rollup']} day rows, {counts['kpi_rollup_wait']} day wait rows in "
        f"{time.perf_counter() - started:.1f} s"
    )


async def _kpi_rezone(settings: Settings) -> str:
    """Every stored day to the service zone (vtax/review/rollup.py `rezone`), one
    transaction: all of it or nothing."""
    from sqlalchemy.exc import DBAPIError

    from vtax.review.rollup import rezone

    engine = make_engine(settings.resolved_database_url)
    zone = settings.service_timezone
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            done = await rezone(conn, zone)
    except DBAPIError as exc:
        if "kpi_meta" in str(exc) or "kpi_rollup" in str(exc):
            raise SystemExit("vtax: no KPI tables here; run `vtax migrate` first") from None
        raise
    finally:
        await engine.dispose()
    return (
        f"moved the stored days from {done['from_zone'] or 'unstamped'} to {zone} days: "
        f"{done['sessions_moved']} sessions changed day, {done['agent_state_days']} agent "
        f"state day rows, {done['kpi_rollup']} rollup day rows in "
        f"{time.perf_counter() - started:.1f} s"
    )


def _registry_import(settings: Settings, path: Path, fmt: str | None) -> int:
    """All rows or none: exit status 1 with the errors (each naming its line) if any."""
    from vtax.app.identity_wiring import import_registry, report_lines

    if not path.is_file():
        print(f"vtax: {path} is not a file", file=sys.stderr)
        return 2
    try:
        if settings.is_embedded_database:  # as `vtax serve` does on the embedded default
            asyncio.run(migrate(settings.resolved_database_url, timezone=settings.service_timezone))
        report = asyncio.run(import_registry(settings, path, fmt))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"vtax: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    out = sys.stderr if report.errors else sys.stdout
    for line in report_lines(report):
        print(line, file=out)
    return 1 if report.errors else 0


async def _registry_access(settings: Settings, args: argparse.Namespace) -> tuple[int, str]:
    """Disable or enable a person as an operator (audited as `operator` with the login name);
    scaled out, the nodes cut the person's open sockets at once (the cut goes through the
    Socket.IO Redis channel, as a node's own does)."""
    from vtax import identity as numbers
    from vtax.identity import InvalidIdentity
    from vtax.identity.documents import parse_document
    from vtax.identity.registry import Registry

    disabled = args.registry_command == "disable"
    if settings.is_embedded_database:  # as `vtax serve` does on the embedded default
        await migrate(settings.resolved_database_url, timezone=settings.service_timezone)
    engine = make_engine(settings.resolved_database_url)
    try:
        registry = Registry(session_factory(engine))
        if args.person:
            person = await registry.person(args.person)
        else:
            doc_type, number = args.document
            try:
                doc = parse_document(doc_type, number)
            except InvalidIdentity as exc:
                return 2, f"vtax: {exc}"
            person = await registry.person_by_document(doc.type, doc.key)
        if person is None:
            return 1, "vtax: no such person in the registry"
        operator = ("operator", getpass.getuser()[:36] or None)
        await registry.set_disabled(person.id, disabled, operator, args.reason)
    finally:
        await engine.dispose()
    shown = f"{person.name} ({person.doc_type} {numbers.mask(person.doc_number)}, {person.id})"
    if not disabled:
        return 0, f"enabled {shown}: they sign in anew"
    if settings.redis_url:
        await _cut_sockets(settings, person.id)
        return 0, f"disabled {shown}: their tokens are dead and their open sockets cut"
    return 0, (
        f"disabled {shown}: their tokens are dead; a running node without Redis cuts their "
        f"open sockets within {settings.socket_recheck_s:g} s, at its next re-check "
        "(VTAX_SOCKET_RECHECK_S; the supervisor page cuts them at once)"
    )


async def _cut_sockets(settings: Settings, person_id: str) -> None:
    import socketio

    from signaling.hub import CUT_EVENT, Hub

    manager = socketio.AsyncRedisManager(
        settings.redis_url, channel=f"{settings.redis_prefix}socketio", write_only=True
    )
    try:
        await manager.emit(CUT_EVENT, None, namespace="/", room=Hub.user_room(person_id))
    finally:
        if manager.redis is not None:
            await manager.redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"vtax: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    try:
        return _run(args, settings)
    except DomainError as exc:  # e.g. the KPI days are another zone's (`vtax kpi rezone`)
        print(f"vtax: {exc.message}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        where = settings.resolved_database_url.split("@")[-1]
        target = settings.redis_url or "Redis" if backend_of(exc) == "Redis" else where
        print(
            f"vtax: cannot reach the {backend_of(exc)} at {target}: {exc_line(exc)}",
            file=sys.stderr,
        )
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "simulate":
        from vtax.simulate import simulate

        return simulate(args.config, progress=not args.no_progress, as_json=args.json)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print(f"migrated {settings.resolved_database_url.split('@')[-1]}")
        return 0
    if args.command == "registry" and args.registry_command == "import":
        return _registry_import(settings, args.path, args.format)
    if args.command == "registry":
        status, line = asyncio.run(_registry_access(settings, args))
        print(line, file=sys.stdout if status == 0 else sys.stderr)
        return status
    if args.command == "user":
        user_id = asyncio.run(_user_add(settings, args))
        print(f"added {args.role} {args.name} ({user_id})")
        return 0
    if args.command == "kpi" and args.kpi_command == "rezone":
        print(asyncio.run(_kpi_rezone(settings)))
        return 0
    if args.command == "kpi":
        if args.day_from and args.day_to and args.day_to < args.day_from:
            print("vtax: --to is before --from", file=sys.stderr)
            return 2
        print(asyncio.run(_kpi_rebuild(settings, args.day_from, args.day_to)))
        return 0
    if args.command in ("recorder", "recordings"):
        from vtax.recording.cli import run_recorder_command

        return run_recorder_command(settings, args)
    if args.command == "serve":
        from signaling.server import serve

        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if args.port is not None and not 0 <= args.port <= 65535:
            print("vtax: --port must be 0..65535", file=sys.stderr)
            return 2
        return serve(settings.model_copy(update=overrides), demo=args.demo)
    return 2
