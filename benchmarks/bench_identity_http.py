"""What the REST guard costs a taxpayer request once it checks the sign-in: the same
endpoint (`GET /api/sessions`) through a running node with a staff token (the signature and
the account still enabled: the guard's cheapest path, since the removed
`POST /api/auth/taxpayer`'s signature-only tokens are refused) and with an SMS sign-in's
token (`signin.authenticate`: token version, the sign-in's family, and with act-for the
grant in force), interleaved, one client, embedded default (SQLite, memory state). Medians
and p95 of N requests each.

    .venv/bin/python -m benchmarks.bench_identity_http [-n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from signaling.app import create_app
from signaling.context import CONTEXT
from signaling.server import make_runner
from tests.conftest import test_settings
from tests.signin import code_in
from vtax.app.identity_wiring import import_registry
from vtax.sms import LogSmsSender

DEMO = Path(__file__).resolve().parents[1] / "examples" / "registry-demo.csv"


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95)]:.2f} ms"


async def run(n: int) -> None:
    folder = Path(tempfile.mkdtemp())
    settings = test_settings(f"sqlite+aiosqlite:///{folder / 'b.db'}", folder)
    settings = settings.model_copy(update={"validate_outgoing": False})
    app = create_app(settings, migrate_on_start=True)
    runner = make_runner(app, settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    ctx = app[CONTEXT]
    try:
        await import_registry(settings, DEMO)
        await ctx.accounts.add_user("agent1", "agent", "agent-password", display_name="A")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/api/auth/login", json={"username": "agent1", "password": "agent-password"}
            ) as r:
                staff = (await r.json())["token"]
            async with http.post(f"{url}/api/auth/sms/code", json={"phone": "+8613800138000"}):
                pass
            sms = ctx.services.identity.sms
            assert sms is not None and isinstance(sms.sender, LogSmsSender)
            await sms.drain()
            async with http.post(
                f"{url}/api/auth/sms/verify",
                json={"phone": "+8613800138000", "code": code_in(sms.sender.sent[-1][1])},
            ) as r:
                session = await r.json()
            option = session["options"][0]
            async with http.post(
                f"{url}/api/auth/act-for",
                json={
                    "refresh_token": session["refresh_token"],
                    "enterprise_id": option["enterprise_id"],
                    "role": option["role"],
                },
            ) as r:
                acting = (await r.json())["access_token"]
            tokens = {"staff": staff, "sms": session["access_token"], "sms acting": acting}
            samples: dict[str, list[float]] = {k: [] for k in tokens}
            for i in range(n + 20):
                for name, token in tokens.items():
                    start = time.perf_counter()
                    async with http.get(
                        f"{url}/api/sessions", headers={"Authorization": f"Bearer {token}"}
                    ) as r:
                        await r.read()
                        assert r.status == 200, r.status
                    if i >= 20:  # warm-up
                        samples[name].append(time.perf_counter() - start)
        for name, got in samples.items():
            print(f"GET /api/sessions, {name} token, {n} requests: {summary(got)}")
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.n))


if __name__ == "__main__":
    main()
