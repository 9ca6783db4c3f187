"""`vtax registry disable|enable (--person ID | --document TYPE NUMBER) --reason TEXT`, as the
operator runs it: a subprocess over SQLite and PostgreSQL; scaled out, against two running
nodes over Redis, the disabled person's open sockets on both nodes are cut at once."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import RunningServer, poll_until
from tests.identity.test_cli_registry import DEMO, env_for, vtax
from tests.identity.test_identity_api import get, imported, post, sign_in
from tests.queue import test_two_nodes
from vtax.config import Settings
from vtax.db import make_engine, session_factory
from vtax.identity.tables import IdentityAudit, Person

nodes = test_two_nodes.nodes  # the fixture: two nodes over one Redis prefix
WANG = ("resident_id", "11010519491231002X")


def node_env(settings: Settings) -> dict[str, str]:
    """The CLI's environment for the running node's database, key and (scaled out) Redis."""
    env = {
        "VTAX_DATABASE_URL": settings.resolved_database_url,
        "VTAX_DATA_DIR": str(settings.data_dir),
        "VTAX_SECRET_KEY": settings.secret_key,
    }
    if settings.redis_url:
        env |= {"VTAX_REDIS_URL": settings.redis_url, "VTAX_REDIS_PREFIX": settings.redis_prefix}
    return env


async def person_row(database_url: str, **where: str) -> tuple[Person, list[IdentityAudit]]:
    engine = make_engine(database_url)
    try:
        async with session_factory(engine)() as db:
            person = await db.scalar(select(Person).filter_by(**where))
            assert person is not None
            audit = list(
                await db.scalars(
                    select(IdentityAudit)
                    .where(IdentityAudit.subject == person.id)
                    .order_by(IdentityAudit.id)
                )
            )
            return person, audit
    finally:
        await engine.dispose()


async def test_disable_and_enable_from_the_command_line(database_url: str, tmp_path: Path):
    env = env_for(database_url, tmp_path)
    if not database_url.startswith("sqlite"):
        assert vtax(env, "migrate").returncode == 0
    assert vtax(env, "registry", "import", str(DEMO)).returncode == 0

    done = vtax(env, "registry", "disable", "--document", *WANG, "--reason", "case 118")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("disabled 王芳 Wang Fang (resident_id "), line
    assert "19491231" not in line  # the number masked
    assert "open sockets within 30 s, at its next re-check" in line  # no Redis: said so
    person, audit = await person_row(database_url, doc_key=WANG[1])
    assert person.disabled and person.token_version == 1
    assert [(a.kind, a.actor_role, a.actor_id, a.data) for a in audit] == [
        ("person_disabled", "operator", getpass.getuser()[:36], {"reason": "case 118"})
    ]

    done = vtax(env, "registry", "enable", "--person", person.id, "--reason", "checked")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("enabled 王芳 Wang Fang"), done.stdout
    person, audit = await person_row(database_url, doc_key=WANG[1])
    assert not person.disabled and person.token_version == 1  # old tokens stay dead
    assert [a.kind for a in audit] == ["person_disabled", "person_enabled"]

    # unknown people and bad input: clear messages, nothing written
    unknown = vtax(env, "registry", "disable", "--person", "0" * 8 + "-0000-4000-8000-" + "0" * 12,
                   "--reason", "x")  # fmt: skip
    assert unknown.returncode == 1 and "no such person" in unknown.stderr, unknown.stderr
    nobody = vtax(env, "registry", "disable", "--document", "resident_id", "110105198001010016",
                  "--reason", "x")  # fmt: skip
    assert nobody.returncode == 1 and "no such person" in nobody.stderr
    bad = vtax(env, "registry", "disable", "--document", "resident_id", "110105198001010017",
               "--reason", "x")  # fmt: skip
    assert bad.returncode == 2 and "check" in bad.stderr, bad.stderr
    for args in (
        ["--person", person.id],  # no reason
        ["--person", person.id, "--reason", ""],
        ["--person", "'; drop table x", "--reason", "x"],
        ["--person", person.id, "--document", *WANG, "--reason", "x"],
        ["--document", "licence", "123", "--reason", "x"],
    ):
        done = vtax(env, "registry", "disable", *args)
        assert done.returncode == 2, (args, done.stderr)
    person, audit = await person_row(database_url, doc_key=WANG[1])
    assert not person.disabled and len(audit) == 2


@pytest.mark.parametrize("settings_overrides", [{"socket_recheck_s": 0.5}])
async def test_without_redis_a_running_node_cuts_the_sockets_at_its_next_recheck(
    server: RunningServer, clients: Any
) -> None:
    """The embedded default: the CLI reaches the database but not the node; the node's
    re-check of its open sockets finds the token revoked and cuts the person's socket (and
    only theirs)."""
    await imported(server)
    session = await sign_in(server, "+8613800138000")
    mine = await clients(server, session["access_token"])
    staff = await clients(server, await server.staff("ann"))
    env = {**node_env(server.ctx.settings), "VTAX_SOCKET_RECHECK_S": "0.5"}
    await asyncio.sleep(1.2)  # two re-checks with the token good: nothing cut
    assert mine.sio.connected and server.ctx.hub.revoked_cut == 0
    done = await asyncio.to_thread(
        vtax, env, "registry", "disable", "--document", *WANG, "--reason", "fraud report"
    )
    assert done.returncode == 0, done.stderr
    assert "within 0.5 s, at its next re-check" in done.stdout, done.stdout
    await poll_until(lambda: not mine.sio.connected, timeout=5)
    assert server.ctx.hub.revoked_cut == 1
    assert staff.sio.connected  # another account's socket stays


async def test_disabling_from_the_command_line_cuts_sockets_on_every_node(nodes: Any, clients: Any):
    a, b = nodes
    await imported(a)
    session = await sign_in(a, "+8613800138000")
    token = session["access_token"]
    on_a, on_b = await clients(a, token), await clients(b, token)
    staff = await clients(b, await b.staff("ann"))
    env = node_env(a.ctx.settings)
    done = vtax(env, "registry", "disable", "--document", *WANG, "--reason", "fraud report")
    assert done.returncode == 0, done.stderr
    assert "open sockets cut" in done.stdout
    await poll_until(lambda: not on_a.sio.connected and not on_b.sio.connected)
    assert staff.sio.connected  # another account's socket stays
    assert await get(b, "/api/sessions", token) == 401
    status, err, _ = await post(a, "/api/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert status == 401, err
