"""docker-compose.yml is checked by parsing it (no Docker engine here): every vtax service
runs a real subcommand with real options, its environment is real settings, ports agree."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from signaling.cli import build_parser
from vtax.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
VTAX_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
ENV = {"VTAX_SECRET_KEY": "k" * 40, "VTAX_TURN_SECRET": "turn-secret", "PUBLIC_HOST": "tax.example"}


def interpolate(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with ENV as the environment."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.groups()
        if name in ENV:
            return ENV[name]
        if op == "-":
            return arg
        raise AssertionError(f"${{{name}}} is required: {arg}")

    return VARIABLE.sub(one, value)


def environment(service: dict) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in (service.get("environment") or {}).items()}


def options(command: list[str]) -> dict[str, str]:
    """--name=value and --name value pairs of a command line."""
    found: dict[str, str] = {}
    for i, arg in enumerate(command):
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq:
                found[name] = value
            elif i + 1 < len(command) and not command[i + 1].startswith("--"):
                found[name] = command[i + 1]
            else:
                found[name] = ""
    return found


def test_the_expected_services_are_there():
    assert {"redis", "postgres", "coturn", "node1", "node2", "nginx", "recorder"} <= set(SERVICES)
    assert {"node1", "node2", "recorder", "migrate"} <= set(VTAX_SERVICES)


@pytest.mark.parametrize("name", sorted(VTAX_SERVICES))
def test_vtax_commands_are_real_subcommands_with_real_options(name):
    command = VTAX_SERVICES[name]["command"]
    assert command[0] == "vtax"
    try:
        build_parser().parse_args(command[1:])
    except SystemExit as exc:  # argparse refuses unknown subcommands and options
        pytest.fail(f"{name}: `{' '.join(command)}` is not a valid vtax command ({exc})")


@pytest.mark.parametrize("name", sorted(VTAX_SERVICES))
def test_environment_is_real_settings(name):
    env = environment(VTAX_SERVICES[name])
    unknown = [
        k
        for k in env
        if not k.startswith(ENV_PREFIX) or k[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    ]
    assert unknown == [], f"{name}: not settings: {unknown}"
    settings = Settings.from_env(env)  # every value parses
    assert settings.redis_url and settings.resolved_database_url.startswith("postgresql+asyncpg")


def test_ports_and_addresses_agree():
    node_env = environment(SERVICES["node1"])
    settings = Settings.from_env(node_env)
    # Redis: the URL names the service and the port it listens on, with AOF on.
    redis_cmd = SERVICES["redis"]["command"]
    redis_url = urlsplit(settings.redis_url)
    assert redis_url.hostname == "redis" and str(redis_url.port) == options(redis_cmd)["--port"]
    assert options(redis_cmd)["--appendonly"] == "yes"
    # PostgreSQL: host, database and user match the postgres service.
    db = urlsplit(settings.resolved_database_url)
    pg_env = environment(SERVICES["postgres"])
    assert (db.hostname, db.port, db.path.lstrip("/"), db.username) == (
        "postgres",
        5432,
        pg_env["POSTGRES_DB"],
        pg_env["POSTGRES_USER"],
    )
    assert db.password == pg_env["POSTGRES_PASSWORD"]
    # coturn: REST credentials with the same secret, on the port the TURN URLs name.
    turn = options(SERVICES["coturn"]["command"])
    assert "--use-auth-secret" in turn
    assert interpolate(turn["--static-auth-secret"]) == settings.turn_secret
    for url in settings.turn_urls + settings.stun_urls:
        port = url.split("?")[0].rsplit(":", 1)[1]
        assert port == turn["--listening-port"], url
        assert f"{port}:{port}/udp" in SERVICES["coturn"]["ports"]
    # nginx: its upstream names every node on the port the node listens on.
    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    mount = SERVICES["nginx"]["volumes"][0].split(":")[0]
    assert (ROOT / mount).resolve() == (ROOT / "deploy" / "nginx.conf").resolve()
    for node in ("node1", "node2"):
        port = options(SERVICES[node]["command"])["--port"]
        assert f"server {node}:{port}" in nginx_conf
    # The recorder reaches the nodes through nginx, on the port nginx listens on.
    recorder_url = urlsplit(options(SERVICES["recorder"]["command"])["--url"])
    assert recorder_url.hostname == "nginx"
    assert f"listen {recorder_url.port};" in nginx_conf
    assert f"{recorder_url.port}:{recorder_url.port}" in SERVICES["nginx"]["ports"]
    assert "proxy_set_header Upgrade $http_upgrade" in nginx_conf
    assert re.search(r"ip_hash|sticky|hash \$", nginx_conf), "long-polling needs stickiness"


def test_nodes_share_one_configuration():
    assert environment(SERVICES["node1"]) == environment(SERVICES["node2"])
    assert Settings.from_env(environment(SERVICES["node1"])).recorder_autostart is False
    assert (
        environment(SERVICES["recorder"])["VTAX_REDIS_URL"]
        == environment(SERVICES["node1"])["VTAX_REDIS_URL"]
    )
