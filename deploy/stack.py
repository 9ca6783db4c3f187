"""The production topology of docker-compose.yml, run for real on this machine (no Docker).

    python deploy/stack.py up [--nodes 2] [--recorders 1] [--dir var/stack]
    python deploy/stack.py down [--dir var/stack]

starts nginx (deploy/nginx.conf, its upstream pointed at the local nodes), coturn
(`use-auth-secret`, loopback only), Redis (AOF, its own port and data folder), a fresh
PostgreSQL database on the machine's server, then `vtax migrate`, N `vtax serve` nodes and M
`vtax recorder` workers, each health-checked; every log goes to <dir>/logs. Tests use
`Stack` as a context manager (tests/stack/).

ONE description of the topology lives here (the `*_ARGS` lists, `NODE_ENV_KEYS`, the
service commands); tests/unit/test_stack_description.py checks docker-compose.yml against it,
so the file Docker would run and the processes started here cannot drift apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
PROMETHEUS_CONF = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"

# ---------------------------------------------------------------------------------------------
# The description (docker-compose.yml is checked against it)

#: redis-server options besides --port (compose: the `redis` service's command).
REDIS_ARGS = ["--appendonly", "yes", "--appendfsync", "everysec"]
#: turnserver options besides the secret and the ports (compose: the `coturn` command).
COTURN_ARGS = ["--use-auth-secret", "--realm=vtax", "--fingerprint", "--no-cli"]
#: The settings every vtax service gets (compose: `x-vtax-env`).
NODE_ENV_KEYS = (
    "VTAX_DATABASE_URL",
    "VTAX_REDIS_URL",
    "VTAX_SECRET_KEY",
    "VTAX_STUN_URLS",
    "VTAX_TURN_URLS",
    "VTAX_TURN_SECRET",
    "VTAX_TURN_TTL_S",
    "VTAX_ALLOWED_ORIGINS",
    "VTAX_RECORDINGS_DIR",
    "VTAX_LOG_FORMAT",
)
TURN_TTL_S = 3600
#: The compose network and nginx's fixed address on it: the nodes believe X-Forwarded-For
#: from that address only (docs/identity.md, "Client addresses"). The runner's nginx
#: reaches the nodes from 127.0.0.1.
COMPOSE_SUBNET = "172.28.0.0/24"
NGINX_ADDRESS_IN_COMPOSE = "172.28.0.10"
NGINX_ADDRESS_IN_STACK = "127.0.0.1"


def node_extra_env(nginx_address: str) -> dict[str, str]:
    """The nodes' settings besides NODE_ENV_KEYS: recording is left to the recorder
    services, and nginx (at `nginx_address`) is the one trusted proxy."""
    return {"VTAX_RECORDER_AUTOSTART": "false", "VTAX_TRUSTED_PROXIES": nginx_address}


RECORDER_CAPACITY = 40
#: nginx.conf names the nodes `<name>:<port>` in its upstream; compose's node services.
NODE_PORT_IN_CONF = 8080
NGINX_PORT_IN_CONF = 80


def node_command(host: str, port: int) -> list[str]:
    return ["vtax", "serve", "--host", host, "--port", str(port)]


def recorder_command(url: str) -> list[str]:
    return ["vtax", "recorder", "--url", url, "--capacity", str(RECORDER_CAPACITY)]


def node_names(n: int) -> list[str]:
    return [f"node{i}" for i in range(1, n + 1)]


def nginx_site(conf: str, listen: int, nodes: dict[str, int], host: str = "127.0.0.1") -> str:
    """deploy/nginx.conf with its `listen` on host:listen and its upstream servers on the local
    nodes (every option of the file's server lines, ip_hash and the proxy settings kept)."""
    template = re.search(r"^\s*server node1:\d+(.*);$", conf, re.M)
    if template is None:
        raise ValueError("deploy/nginx.conf has no `server node1:<port> ...;` upstream line")
    options = template.group(1)
    servers = "".join(f"    server {host}:{port}{options};\n" for port in nodes.values())
    out = re.sub(r"^\s*server node\d+:\d+.*;\n", "", conf, flags=re.M)
    out = re.sub(r"(upstream vtax_nodes \{\n(?:\s*\w+;\n)*)", lambda m: m.group(1) + servers, out)
    out, n = re.subn(r"listen \d+;", f"listen {host}:{listen};", out)
    if n != 1 or out.count(f"server {host}:") != len(nodes):
        raise ValueError("deploy/nginx.conf: could not point listen/upstream at the stack")
    return out


# ---------------------------------------------------------------------------------------------
# Processes


def prometheus_config(conf: str, nodes: dict[str, int], host: str = "127.0.0.1") -> str:
    """deploy/prometheus/prometheus.yml with its targets pointed at the local nodes (each
    labelled with its node name) and its rules file made absolute; the rest kept."""
    targets = ", ".join(f'"{host}:{port}"' for port in nodes.values())
    out = []
    for line in conf.splitlines():
        if line.strip().startswith("- targets:"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}- targets: [{targets}]")
        elif line.strip() == "- alerts.yml":
            out.append(line.replace("alerts.yml", str(ALERT_RULES)))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def free_port(kind: int = socket.SOCK_STREAM, both: bool = False) -> int:
    """A free loopback port (free for TCP and UDP when `both`)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not both:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def relay_range(width: int = 40) -> tuple[int, int]:
    """A relay port range below Linux's ephemeral ports (32768-), random to keep stacks apart."""
    low = 20000 + secrets.randbelow(10000 // width) * width
    return low, low + width - 1


@dataclass
class Proc:
    name: str
    cmd: list[str]
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    _out: IO[bytes] | None = None

    def start(self) -> Proc:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the runner only
        )
        self.pid = self.proc.pid
        return self

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    def tail(self, limit: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive() and self.pid is not None:
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` (compose's stop_grace_period)."""
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)
        if self._out is not None:
            self._out.close()
            self._out = None


def _pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def wait_for(what: str, check: Any, proc: Proc, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited during start-up:\n{proc.tail()}")
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} not healthy within {within} s ({last}):\n{proc.tail()}")


def http_status(url: str, timeout: float = 1.0) -> int:
    """The status of a GET, 0 when nothing answers. An error status (a 503 while not ready) has
    its response closed here: an HTTPError holds its connection open until it is collected,
    which pytest (warnings as errors) reports as an unclosed socket in whatever test runs then."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except OSError:
        return 0


def http_ok(url: str) -> bool:
    return http_status(url) == 200


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


# ---------------------------------------------------------------------------------------------
# The stack


@dataclass
class Stack:
    """The topology on loopback. `with Stack(dir) as stack:` starts it and stops it."""

    dir: Path
    nodes: int = 2
    recorders: int = 1
    pg_admin_dsn: str = os.environ.get(
        "VTAX_STACK_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test"
    )
    pg_host: str = "127.0.0.1:5432"
    node_env: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    turn_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    database: str = field(default_factory=lambda: f"vtax_stack_{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.dir = Path(self.dir).resolve()
        self.logs = self.dir / "logs"

    @property
    def url(self) -> str:
        """The public address (nginx)."""
        return f"http://127.0.0.1:{self.ports['nginx']}"

    def node_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    # --- up

    def up(self) -> Stack:
        if self.dir.exists() and (self.dir / "stack.json").exists():
            raise RuntimeError(f"{self.dir} holds a running stack (stack.json); run `down`")
        for sub in ("logs", "redis", "coturn", "nginx", "recordings"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._ports()
            self._redis()
            self._coturn()
            self._postgres()
            self._env()
            self.cli("migrate")
            for name in node_names(self.nodes):
                self.start_node(name)
            self._nginx()
            if shutil.which("prometheus"):
                self._prometheus()
            for i in range(1, self.recorders + 1):
                self._recorder(f"recorder{i}" if self.recorders > 1 else "recorder")
            self._save()
        except BaseException:
            self.down()
            raise
        return self

    def _ports(self) -> None:
        self.ports["redis"] = free_port()
        self.ports["coturn"] = free_port(both=True)
        self.ports["relay_min"], self.ports["relay_max"] = relay_range()
        self.ports["nginx"] = free_port()
        self.ports["prometheus"] = free_port()
        for name in node_names(self.nodes):
            self.ports[name] = free_port()

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, cmd, self.logs / f"{name}.log", env).start()
        self.procs[name] = proc
        return proc

    def _redis(self) -> None:
        port = self.ports["redis"]
        cmd = ["redis-server", *REDIS_ARGS, "--port", str(port), "--bind", "127.0.0.1"]
        cmd += ["--dir", str(self.dir / "redis"), "--save", "", "--protected-mode", "yes"]
        proc = self._spawn("redis", cmd)
        wait_for("redis", lambda: redis_ping(port), proc)

    def coturn_command(self) -> list[str]:
        port = self.ports["coturn"]
        compose_part = [
            *COTURN_ARGS,
            f"--static-auth-secret={self.turn_secret}",
            f"--listening-port={port}",
            f"--min-port={self.ports['relay_min']}",
            f"--max-port={self.ports['relay_max']}",
        ]
        local = [  # loopback only: this machine's test hosts are its only clients
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            "--allow-loopback-peers",
            "--no-tls",
            "--no-dtls",
            f"--db={self.dir / 'coturn' / 'turndb'}",
            f"--pidfile={self.dir / 'coturn' / 'turnserver.pid'}",
            "--log-file=stdout",
            "--simple-log",
        ]
        return ["turnserver", *compose_part, *local]

    def _coturn(self) -> None:
        proc = self._spawn("coturn", self.coturn_command())
        wait_for("coturn", lambda: tcp_open(self.ports["coturn"]), proc)

    def _postgres(self) -> None:
        asyncio.run(_pg(self.pg_admin_dsn, f'CREATE DATABASE "{self.database}"'))
        self.ports["postgres"] = int(self.pg_host.rsplit(":", 1)[1])

    def _env(self) -> None:
        turn = f"127.0.0.1:{self.ports['coturn']}"
        values = {
            "VTAX_DATABASE_URL": f"postgresql+asyncpg://postgres@{self.pg_host}/{self.database}",
            "VTAX_REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "VTAX_SECRET_KEY": secrets.token_urlsafe(32),
            "VTAX_STUN_URLS": f"stun:{turn}",
            "VTAX_TURN_URLS": f"turn:{turn}?transport=udp,turn:{turn}?transport=tcp",
            "VTAX_TURN_SECRET": self.turn_secret,
            "VTAX_TURN_TTL_S": str(TURN_TTL_S),
            "VTAX_ALLOWED_ORIGINS": self.url,
            "VTAX_RECORDINGS_DIR": str(self.dir / "recordings"),
            "VTAX_LOG_FORMAT": "json",
        }
        assert tuple(values) == NODE_ENV_KEYS
        base = {k: v for k, v in os.environ.items() if not k.startswith("VTAX_")}
        self.node_env = {**base, **values, "PYTHONUNBUFFERED": "1", **self.extra_env}

    def cli(self, *args: str, stdin: str = "") -> str:
        """`vtax <args>` with the stack's settings (migrate, user add, ...)."""
        done = subprocess.run(
            [sys.executable, "-m", "vtax", *args],
            cwd=ROOT,
            env=self.node_env,
            input=stdin.encode(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"vtax {' '.join(args)}: {done.stderr.decode()[-4000:]}")
        return done.stdout.decode()

    def start_node(self, name: str) -> Proc:
        """Start (or restart, after a kill) a signaling node and wait for /readyz."""
        _, *args = node_command("127.0.0.1", self.ports[name])
        env = {**self.node_env, **node_extra_env(NGINX_ADDRESS_IN_STACK), **self.extra_env}
        proc = self._spawn(name, [sys.executable, "-m", "vtax", *args], env)
        wait_for(name, lambda: http_ok(self.node_url(name) + "/readyz"), proc)
        return proc

    def _nginx(self) -> None:
        prefix = self.dir / "nginx"
        nodes = {n: self.ports[n] for n in node_names(self.nodes)}
        site = nginx_site(NGINX_CONF.read_text(), self.ports["nginx"], nodes)
        (prefix / "site.conf").write_text(site)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"    {kind}_temp_path {prefix / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        main = (
            f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {self.logs / 'nginx-error.log'} info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log {self.logs / 'nginx-access.log'};\n{temp}\n"
            "    include /etc/nginx/mime.types;\n"
            f"    include {prefix / 'site.conf'};\n"
            "}\n"
        )
        (prefix / "nginx.conf").write_text(main)
        cmd = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
        proc = self._spawn("nginx", cmd)
        wait_for("nginx", lambda: http_ok(self.url + "/readyz"), proc)

    def _prometheus(self) -> None:
        folder = self.dir / "prometheus"
        folder.mkdir(exist_ok=True)
        nodes = {n: self.ports[n] for n in node_names(self.nodes)}
        (folder / "prometheus.yml").write_text(
            prometheus_config(PROMETHEUS_CONF.read_text(), nodes)
        )
        cmd = [
            "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
        ]
        proc = self._spawn("prometheus", cmd)
        wait_for("prometheus", lambda: http_ok(self.prometheus_url + "/-/ready"), proc)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def _recorder(self, name: str) -> None:
        _, *args = recorder_command(self.url)
        proc = self._spawn(name, [sys.executable, "-m", "vtax", *args], self.node_env)
        wait_for(name, lambda: "recorder " in proc.tail(), proc)

    # --- state for the CLI (`up` returns; `down` is another process)

    def _save(self) -> None:
        state = {
            "pids": {name: p.pid for name, p in self.procs.items()},
            "ports": self.ports,
            "database": self.database,
            "pg_admin_dsn": self.pg_admin_dsn,
            "url": self.url,
        }
        (self.dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, dir: Path) -> Stack:
        state = json.loads((Path(dir) / "stack.json").read_text())
        stack = cls(Path(dir), database=state["database"], pg_admin_dsn=state["pg_admin_dsn"])
        stack.ports = state["ports"]
        for name, pid in state["pids"].items():
            stack.procs[name] = Proc(name, [], stack.logs / f"{name}.log", pid=pid)
        return stack

    # --- down

    #: Stop order: the entrance first, then workers and nodes, then what they depend on.
    ORDER = ("prometheus", "nginx", "recorder", "node", "coturn", "redis")

    def down(self) -> None:
        def rank(name: str) -> int:
            return next((i for i, p in enumerate(self.ORDER) if name.startswith(p)), 99)

        for name in sorted(self.procs, key=rank):
            self.procs[name].stop()
        if "postgres" in self.ports:  # created by this stack
            try:
                asyncio.run(
                    _pg(
                        self.pg_admin_dsn, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'
                    )
                )
            except Exception as exc:  # never mask why `up` failed
                print(f"could not drop {self.database}: {exc}", file=sys.stderr)
        (self.dir / "stack.json").unlink(missing_ok=True)

    def __enter__(self) -> Stack:
        return self.up()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def status(self) -> dict[str, bool]:
        return {name: p.alive() for name, p in self.procs.items()}


async def _pg(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/stack.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "stack")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--recorders", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "up":
        for program in ("nginx", "turnserver", "redis-server"):
            if shutil.which(program) is None:
                print(f"{program} missing: apt-get install -y nginx coturn redis-server")
                return 1
        stack = Stack(args.dir, nodes=args.nodes, recorders=args.recorders).up()
        print(f"up: {stack.url} (logs in {stack.logs}); stop with `deploy/stack.py down`")
        for name, port in stack.ports.items():
            print(f"  {name:10} {port}")
        return 0
    if not (args.dir / "stack.json").exists():
        print(f"no stack in {args.dir}")
        return 1
    stack = Stack.load(args.dir)
    if args.command == "status":
        for name, alive in stack.status().items():
            print(f"  {name:10} {'up' if alive else 'DOWN'}")
        return 0
    stack.down()
    print("down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
