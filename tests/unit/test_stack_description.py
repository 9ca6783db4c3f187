"""docker-compose.yml and the stack runner (deploy/stack.py) come from one description: the
compose file's commands, options and settings are checked against it here, so what Docker
would run and what the stack tests run cannot drift apart."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from deploy import stack
from tests.unit.test_compose import (
    COMPOSE,
    SERVICES,
    VTAX_SERVICES,
    environment,
    interpolate,
    options,
)
from vtax.config import Settings

NGINX_CONF = (Path(stack.ROOT) / "deploy" / "nginx.conf").read_text()


def test_redis_command_is_the_description():
    cmd = SERVICES["redis"]["command"]
    assert cmd[0] == "redis-server"
    assert cmd[1:] == [*stack.REDIS_ARGS, "--port", "6379"]


def test_coturn_command_is_the_description_plus_secret_and_ports():
    cmd = [interpolate(a) for a in SERVICES["coturn"]["command"]]
    opts = options(cmd)
    rest = [a for a in cmd if a.split("=")[0] not in _PER_SITE]
    assert rest == stack.COTURN_ARGS
    # The runner passes the same options, with its own secret and ports, plus loopback ones.
    runner = stack.Stack(Path("/nonexistent"))
    runner.ports = {"coturn": 3478, "relay_min": 49160, "relay_max": 49200}
    local = runner.coturn_command()
    assert local[0] == "turnserver"
    assert local[1 : 1 + len(stack.COTURN_ARGS)] == stack.COTURN_ARGS
    local_opts = options(local)
    for name in _PER_SITE:
        assert name in opts and name in local_opts, name
    assert local_opts["--listening-port"] == opts["--listening-port"]
    assert (local_opts["--min-port"], local_opts["--max-port"]) == (
        opts["--min-port"],
        opts["--max-port"],
    )


_PER_SITE = ("--static-auth-secret", "--listening-port", "--min-port", "--max-port")


@pytest.mark.parametrize("name", sorted(VTAX_SERVICES))
def test_vtax_services_get_the_described_settings(name):
    env = environment(VTAX_SERVICES[name])
    assert set(stack.NODE_ENV_KEYS) <= set(env), name
    extra = set(env) - set(stack.NODE_ENV_KEYS)
    if name.startswith("node"):
        described = stack.node_extra_env(stack.NGINX_ADDRESS_IN_COMPOSE)
        assert extra == set(described)
        assert {k: env[k] for k in extra} == described
    else:
        assert extra == set()
    assert env["VTAX_TURN_TTL_S"] == str(stack.TURN_TTL_S)


def test_the_nodes_trust_nginx_and_only_nginx():
    """nginx has a fixed address on the compose network, and it is the nodes' one trusted
    proxy; the runner trusts its own nginx's (loopback) address the same way."""
    nginx = SERVICES["nginx"]["networks"]["default"]["ipv4_address"]
    assert nginx == stack.NGINX_ADDRESS_IN_COMPOSE
    subnets = [c["subnet"] for c in COMPOSE["networks"]["default"]["ipam"]["config"]]
    assert subnets == [stack.COMPOSE_SUBNET]
    assert ipaddress.ip_address(nginx) in ipaddress.ip_network(stack.COMPOSE_SUBNET)
    for name, service in VTAX_SERVICES.items():
        env = environment(service)
        if name.startswith("node"):
            assert Settings.from_env(env).trusted_proxies == [f"{nginx}/32"], name
        else:  # the recorder and migrate serve no clients
            assert "VTAX_TRUSTED_PROXIES" not in env, name
        assert "networks" not in service, name  # on the default network, any address
    local = stack.node_extra_env(stack.NGINX_ADDRESS_IN_STACK)
    assert local["VTAX_TRUSTED_PROXIES"] == "127.0.0.1"


def test_services_and_commands_are_the_description():
    nodes = sorted(n for n in VTAX_SERVICES if n.startswith("node"))
    assert nodes == stack.node_names(len(nodes))
    for node in nodes:
        assert VTAX_SERVICES[node]["command"] == stack.node_command(
            "0.0.0.0", stack.NODE_PORT_IN_CONF
        )
    url = f"http://nginx:{stack.NGINX_PORT_IN_CONF}"
    assert VTAX_SERVICES["recorder"]["command"] == stack.recorder_command(url)


def test_nginx_site_points_the_real_conf_at_the_local_nodes():
    site = stack.nginx_site(NGINX_CONF, 8123, {"node1": 9001, "node2": 9002, "node3": 9003})
    assert "listen 127.0.0.1:8123;" in site and "listen 80;" not in site
    assert "node1:" not in site and "node2:" not in site
    for port in (9001, 9002, 9003):
        assert f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" in site
    # Everything else of deploy/nginx.conf is kept: stickiness, WebSocket upgrade, timeouts.
    kept = [line for line in NGINX_CONF.splitlines() if "server node" not in line]
    kept = [line for line in kept if "listen" not in line]
    assert all(line in site.splitlines() for line in kept)
    assert f"server node1:{stack.NODE_PORT_IN_CONF}" in NGINX_CONF
    assert f"listen {stack.NGINX_PORT_IN_CONF};" in NGINX_CONF


def test_prometheus_is_the_description():
    service = SERVICES["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in service["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    conf = stack.PROMETHEUS_CONF.read_text()
    targets = [f"node{i}:{stack.NODE_PORT_IN_CONF}" for i in (1, 2)]
    assert f'- targets: ["{targets[0]}", "{targets[1]}"]' in conf
    local = stack.prometheus_config(conf, {"node1": 9001, "node2": 9002})
    assert '- targets: ["127.0.0.1:9001", "127.0.0.1:9002"]' in local
    assert f"- {stack.ALERT_RULES}" in local
    kept = [
        line for line in conf.splitlines() if "targets:" not in line and "alerts.yml" not in line
    ]
    assert all(line in local.splitlines() for line in kept)
