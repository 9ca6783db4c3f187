"""Soak through the real topology (issue 19): the stack of deploy/stack.py (nginx, coturn, Redis
with AOF, PostgreSQL, N nodes, a recorder) under simulated sessions for a while, then every
ticket, session record, summary, rating, chat message and recording accounted for.

Simulated people are python-socketio clients through nginx. Each lane is one taxpayer after
another (a fresh connection per visit, from its own 127.0.x.1 address so that nginx's ip_hash
spreads the lanes over the nodes): join the queue; one visit in ABANDON_EVERY leaves the queue
again (an abandoned ticket); otherwise wait for `session:start`, answer the recording consent
(yes for one visit in RECORD_EVERY: then both sides send pre-encoded VP8 + Opus to the recorder
over aiortc, as tests/recording does), relay a signal a second and a chat message every five for
HOLD_S seconds, hang up, rate. Agents (as many as lanes) accept every offer, write the summary
after the call, and send their own media to the recorder when it joins.

At the end, the supervisor's CSV export, the live statistics, and the recordings folder (each
manifest, then `vtax recordings verify`) must agree with what the clients counted:

    python benchmarks/soak.py [--minutes 10] [--lanes 40] [--nodes 2] [--hold 20]
        [--out benchmarks/results/soak-DATE.json]

tests/stack/test_soak.py runs it for one minute (`slow`).
"""

# The reconciliation runs one blocking `vtax recordings verify` after the load, on purpose; the
# clients' `timeout` parameters are Socket.IO ack and event waits.
# ruff: noqa: ASYNC109, ASYNC221

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.signaling_accounts import people_of  # noqa: E402
from deploy.stack import Stack  # noqa: E402
from tests.recording.conftest import MediaPeer, audio_bitstream, video_bitstream  # noqa: E402
from tests.signin import TestPerson, sign_in_people, staff_with_factor  # noqa: E402

JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "soak"}
CANDIDATE = {
    "candidate": "candidate:1 1 udp 1677729535 192.0.2.3 46154 typ srflx raddr 10.0.0.1 "
    "rport 46154 generation 0",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}
ABANDON_EVERY = 10
RECORD_EVERY = 8
SUMMARY = {
    "asked": "soak: a red-letter invoice",
    "handled": "explained the steps",
    "result": "resolved",
    "items": ["invoices.red_letter_invoice"],
}


def log(*args: Any) -> None:
    print(f"[soak {dt.datetime.now(dt.UTC):%H:%M:%S}]", *args, file=sys.stderr, flush=True)


class Peer:
    """A Socket.IO client through nginx from a given loopback address, its events in queues
    (and `received["rtc:signal"]`, which tests/recording's MediaPeer reads)."""

    def __init__(self, url: str, token: str, source: str) -> None:
        self.url, self.token = url, token
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(source, 0), limit=4)
        )
        self.sio = socketio.AsyncClient(reconnection=False, http_session=self.http)
        self.queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.received: defaultdict[str, list[Any]] = defaultdict(list)
        self.sio.on("*", self._any)

    async def _any(self, event: str, *args: Any) -> None:
        data = args[0] if len(args) == 1 else list(args)
        if event == "rtc:signal":
            self.received[event].append(data)
        self.queues[event].put_nowait(data)

    async def connect(self) -> Peer:
        await self.sio.connect(
            self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=20
        )
        return self

    async def call(self, event: str, payload: Any = None, timeout: float = 20) -> Any:
        return await self.sio.call(event, payload, timeout=timeout)

    async def next(
        self, event: str, match: Callable[[Any], bool] = lambda _: True, timeout: float = 30
    ) -> Any:
        """The next `event` that matches (earlier ones that do not are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event} within {timeout} s")
            item = await asyncio.wait_for(self.queues[event].get(), left)
            if match(item):
                return item

    def drain(self, *events: str) -> None:
        for event in events:
            q = self.queues[event]
            while not q.empty():
                q.get_nowait()
        self.received.clear()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.sio.connected:
                await self.sio.disconnect()
        await self.http.close()


async def send_to_recorder(peer: Peer, sid: str, within: float) -> MediaPeer:
    """When the recorder joins the session: this side's media to it (tests/recording's
    pre-encoded VP8 + Opus over aiortc)."""
    joined = await peer.next(
        "session:participant",
        lambda m: m.get("role") == "recorder" and m.get("state") == "joined",
        timeout=within,
    )
    media = MediaPeer(peer, sid)  # type: ignore[arg-type]
    try:
        await media.connect(joined["participant_id"], timeout=30)
    except BaseException:
        await media.close()
        raise
    return media


class Soak:
    def __init__(
        self,
        stack: Stack,
        tokens: dict[str, list[str]],
        people: list[TestPerson],
        args: argparse.Namespace,
    ):
        self.stack, self.tokens, self.people, self.args = stack, tokens, people, args
        self.count: Counter[str] = Counter()
        self.errors: list[str] = []
        self.sessions: dict[str, dict[str, Any]] = {}  # session id -> what the clients did
        self.running = True
        self.visits = 0
        # Fewer agents than lanes, so that a queue forms and some visits leave it unserved.
        self.agents = max(1, args.lanes * 3 // 4)
        self.spread: dict[str, int] = {}

    def error(self, what: str) -> None:
        self.count["errors"] += 1
        if len(self.errors) < 20:
            self.errors.append(what[:300])

    @staticmethod
    def source(i: int) -> str:
        return f"127.0.{i % 64 + 1}.1"  # nginx's ip_hash keys on the first three octets

    # ---- taxpayers

    async def lane(self, i: int, deadline: float) -> None:
        token = self.tokens["taxpayers"][i]
        visit = 0
        while time.monotonic() < deadline:
            visit += 1
            self.visits += 1
            n = self.visits  # abandoning and recording spread over the lanes
            tp = Peer(self.stack.url, token, self.source(i))
            media: MediaPeer | None = None
            try:
                await tp.connect()
                joined = await tp.call("queue:join", JOIN)
                if not joined.get("ok"):
                    self.error(f"join {joined}")
                    await asyncio.sleep(1)
                    continue
                self.count["joined"] += 1
                if n % ABANDON_EVERY == 0:
                    await asyncio.sleep(random.uniform(0, 0.2))
                    left = await tp.call("queue:leave", {"ticket_id": joined["ticket_id"]})
                    if left.get("ok"):
                        await tp.next("queue:left")
                        self.count["abandoned"] += 1
                        continue
                    # offered meanwhile: it goes on as a visit served
                start = await tp.next("session:start", timeout=180)
                sid = start["session_id"]
                record = n % RECORD_EVERY == 0
                mine = self.sessions[sid] = {"recorded": record, "chat": 0, "rated": False}
                self.count["started"] += 1
                await tp.next("session:recording", lambda m, sid=sid: m["session_id"] == sid)
                ack = await tp.call("session:consent", {"session_id": sid, "recording": record})
                if not ack.get("ok"):
                    self.error(f"consent {ack}")
                if record:
                    media = await send_to_recorder(tp, sid, within=60)
                    self.count["recorded"] += 1
                for k in range(self.args.hold):
                    signal = {"session_id": sid, "type": "candidate", "data": CANDIDATE}
                    if not (await tp.call("rtc:signal", signal)).get("ok"):
                        self.error("signal refused")
                    self.count["signals"] += 1
                    if k % 5 == 0:
                        text = {"session_id": sid, "client_id": secrets.token_hex(8)}
                        sent = await tp.call("chat:send", {**text, "text": f"soak {n} {k}"})
                        if sent.get("ok"):
                            mine["chat"] += 1
                            self.count["chat"] += 1
                        else:
                            self.error(f"chat {sent}")
                    await asyncio.sleep(1)
                ended = await tp.call("session:end", {"session_id": sid})
                if not ended.get("ok"):
                    self.error(f"end {ended}")
                await tp.next("session:end", lambda m, sid=sid: m["session_id"] == sid)
                self.count["ended"] += 1
                rated = await tp.call("session:rate", {"session_id": sid, "score": 1 + n % 5})
                if rated.get("ok"):
                    mine["rated"] = True
                    self.count["rated"] += 1
                else:
                    self.error(f"rate {rated}")
            except Exception as exc:  # a lost visit is counted, not fatal
                self.error(f"lane {i} visit {visit}: {type(exc).__name__} {exc}")
            finally:
                if media is not None:
                    await media.close()
                await tp.close()

    # ---- agents

    async def agent(self, i: int) -> None:
        ag = Peer(self.stack.url, self.tokens["agents"][i], self.source(i + 7))
        await ag.connect()
        status = await ag.call("agent:status", {"status": "available"})
        assert status.get("ok"), status
        try:
            while self.running:
                try:
                    offer = await ag.next("offer:new", timeout=2)
                except TimeoutError:
                    continue
                accepted = await ag.call("offer:accept", {"offer_id": offer["offer_id"]})
                if not accepted.get("ok"):
                    self.count["accept_refused"] += 1  # the taxpayer left meanwhile
                    continue
                start = await ag.next("session:start", timeout=30)
                await self.serve(ag, start["session_id"])
        finally:
            await ag.close()

    async def serve(self, ag: Peer, sid: str) -> None:
        media: MediaPeer | None = None

        async def recorder() -> None:
            nonlocal media
            media = await send_to_recorder(ag, sid, within=3600)

        side = asyncio.create_task(recorder())
        try:
            await ag.next("session:end", lambda m: m["session_id"] == sid, timeout=3600)
        finally:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await side
            if media is not None:
                await media.close()
        saved = await ag.call("session:summary", {"session_id": sid, **SUMMARY})
        if saved.get("ok"):
            self.count["summaries"] += 1
        else:
            self.error(f"summary {saved}")
        ag.drain("session:participant", "session:recording", "rtc:signal", "chat:message")

    # ---- the whole run

    async def run(self) -> dict[str, Any]:
        args = self.args
        self.tokens["taxpayers"] = await sign_in_lanes(self.stack, self.people)
        agents = [asyncio.create_task(self.agent(i)) for i in range(self.agents)]
        await asyncio.sleep(2)
        deadline = time.monotonic() + args.minutes * 60
        started = time.monotonic()
        lanes = [asyncio.create_task(self.lane(i, deadline)) for i in range(args.lanes)]
        while not all(t.done() for t in lanes):
            await asyncio.wait(lanes, timeout=30)
            log(dict(self.count))
            if not self.spread:
                self.spread = await self.clients_per_node()
        self.running = False
        await asyncio.gather(*agents, return_exceptions=True)
        wall = time.monotonic() - started
        await asyncio.sleep(5)  # the last recordings' manifests, the last rollup
        return {"wall_s": round(wall, 1), "counted": dict(self.count), **await self.reconcile()}

    async def clients_per_node(self) -> dict[str, int]:
        """Connected Socket.IO clients per node (their gauge): the lanes spread by nginx."""
        out = {}
        async with aiohttp.ClientSession() as http:
            for name in (n for n in self.stack.procs if n.startswith("node")):
                async with http.get(self.stack.node_url(name) + "/metrics") as r:
                    text = await r.text()
                out[name] = sum(
                    int(float(line.rsplit(" ", 1)[1]))
                    for line in text.splitlines()
                    if line.startswith("vtax_connected_clients{")
                )
        return out

    async def reconcile(self) -> dict[str, Any]:
        """What the stack kept, against what the clients did."""
        stack = self.stack
        async with aiohttp.ClientSession() as http:
            # the export needs a sign-in with the second factor (records_need_second_factor)
            token = await staff_with_factor(
                http, stack.url, "soak-sup", self.tokens["sup_password"][0]
            )
            auth = {"Authorization": f"Bearer {token}"}
            async with http.get(stack.url + "/api/review/export.csv", headers=auth) as r:
                rows = list(csv.DictReader(io.StringIO(await r.text())))
            async with http.get(stack.url + "/api/stats/live", headers=auth) as r:
                live = await r.json()
        outcomes = Counter(row["outcome"] for row in rows)
        by_id = {row["id"]: row for row in rows}
        served = {sid: by_id.get(sid) for sid in self.sessions}
        rec_root = stack.dir / "recordings"
        manifests = {
            p.parent.name: json.loads(p.read_text()) for p in rec_root.rglob("manifest.json")
        }
        recorded = {sid for sid, s in self.sessions.items() if s["recorded"]}
        verify = subprocess.run(
            [sys.executable, "-m", "vtax", "recordings", "verify"],
            cwd=ROOT, env=stack.node_env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        c = self.count
        checks = {
            "every ticket has a record": len(rows) == c["joined"],
            "abandoned tickets": outcomes.get("abandoned", 0) == c["abandoned"],
            "served sessions completed": outcomes.get("completed", 0) == c["started"]
            and all(r is not None and r["outcome"] == "completed" for r in served.values()),
            "nothing left waiting or live": outcomes.get("waiting", 0) == 0
            and outcomes.get("live", 0) == 0,
            "summaries": sum(1 for r in rows if r.get("summary_result")) == c["summaries"],
            "ratings": sum(1 for r in rows if r.get("rating_score")) == c["rated"],
            "chat messages": sum(int(r.get("chat_messages") or 0) for r in rows) == c["chat"],
            "a complete manifest per recorded session": recorded
            == {sid for sid, m in manifests.items() if m.get("status") == "complete"},
            "two segments per recording": all(
                len(manifests[sid]["segments"]) >= 2 for sid in recorded if sid in manifests
            ),
            "recordings verify": verify.returncode == 0,
            "queues empty": all(q["waiting"] == 0 for q in live["queues"].values())
            and not live["sessions"],
        }
        return {
            "records": len(rows),
            "outcomes": dict(outcomes),
            "manifests": len(manifests),
            "verify": verify.stdout.strip().splitlines()[-3:]
            + verify.stderr.strip().splitlines()[-3:],
            "checks": checks,
            "reconciled": all(checks.values()),
            "errors": self.errors,
            "clients_per_node": self.spread,
        }


def accounts(stack: Stack, lanes: int) -> tuple[dict[str, list[str]], list[TestPerson]]:
    """Agents with signed tokens and one person per lane in the registry
    (benchmarks/signaling_accounts.py; each lane signs in by SMS code through nginx), and a
    supervisor."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/signaling_accounts.py"), "--prefix", "soak",
         "--agents", str(max(1, lanes * 3 // 4)), "--people", str(lanes)],
        cwd=ROOT, env=stack.node_env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    answer = json.loads(out.stdout)
    password = secrets.token_urlsafe(12)
    stack.cli("user", "add", "soak-sup", "--role", "supervisor", stdin=password + "\n")
    return {"agents": answer["agents"], "sup_password": [password]}, people_of(answer)


async def sign_in_lanes(stack: Stack, people: list[TestPerson]) -> list[str]:
    """Each lane's taxpayer token: an SMS sign-in through nginx from the lane's own address
    (tests/signin.py `sign_in_people`), the codes read from the nodes' logs (their log sender)."""
    logs = [p.log for name, p in stack.procs.items() if name.startswith("node")]
    sessions = await sign_in_people(stack.url, people, logs, source=Soak.source, timeout_s=30)
    return [str(s["access_token"]) for s in sessions]


def soak(args: argparse.Namespace) -> dict[str, Any]:
    video_bitstream(), audio_bitstream()  # encoded once, before the load starts
    extra = {"VTAX_WRAPUP_S": "0", "VTAX_RECORDING_KEYFRAME_WAIT_S": "5"}
    # The stack starts and stops outside the event loop (it runs blocking steps of its own).
    with tempfile.TemporaryDirectory(prefix="vtax-soak-") as tmp:
        with Stack(Path(tmp), nodes=args.nodes, recorders=1, extra_env=extra) as stack:
            tokens, people = accounts(stack, args.lanes)
            log(f"stack up at {stack.url}: {args.nodes} nodes, {args.lanes} lanes")
            result = asyncio.run(Soak(stack, tokens, people, args).run())
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "command": " ".join(sys.argv),
        "nodes": args.nodes,
        "lanes": args.lanes,
        "minutes": args.minutes,
        "hold_s": args.hold,
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--lanes", type=int, default=40)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--hold", type=int, default=20, help="seconds each served call lasts")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = soak(args)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["reconciled"] else 1


if __name__ == "__main__":
    sys.exit(main())
