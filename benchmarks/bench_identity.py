"""What a taxpayer request pays for identity: `TaxpayerSignIn.authenticate` (JWT verify, the
person's token version, the sign-in's family, the grant in force), and one SMS sign-in
(ask for a code, verify it, tokens), on a migrated SQLite file with the memory state and
with the Redis state. One process, one core; medians and p95 of N calls.

    .venv/bin/python -m benchmarks.bench_identity [-n 500]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tests.identity.world import WANG_PHONE, make_world
from vtax.contract.identity import ActFor, SmsCodeRequest, SmsCodeVerify
from vtax.db import make_engine, migrate, session_factory
from vtax.identity.redis_state import RedisIdentityState
from vtax.identity.registry import Registry
from vtax.identity.state import MemoryIdentityState
from vtax.redis_client import connect


class Db:
    def __init__(self, engine, sessions) -> None:
        self.engine, self.sessions, self.registry = engine, sessions, Registry(sessions)


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95)]:.2f} ms"


async def run(n: int, backend: str) -> None:
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await migrate(url)
    engine = make_engine(url)
    redis = None
    prefix = f"vtax-bench-identity:{uuid.uuid4().hex[:8]}:"
    if backend == "redis":
        redis = connect("redis://127.0.0.1:6379/0", max_connections=8)
        state = RedisIdentityState(redis, prefix)
    else:
        state = MemoryIdentityState()
    try:
        world = await make_world(
            Db(engine, session_factory(engine)), state, per_number=10**6, per_address=10**6
        )
        await world.sms.request_code(SmsCodeRequest(phone=WANG_PHONE), "203.0.113.1")
        await world.sms.drain()
        session = await world.sms.verify(
            SmsCodeVerify(phone=WANG_PHONE, code=world.code_sent_to(WANG_PHONE))
        )
        option = session.options[0]
        acting = await world.signin.act_for(
            ActFor(
                refresh_token=session.refresh_token,
                enterprise_id=option.enterprise_id,
                role=option.role,
            )
        )
        auth = []
        for _ in range(n):
            t = time.perf_counter()
            await world.signin.authenticate(acting.access_token)
            auth.append(time.perf_counter() - t)
        signins = []
        for i in range(min(n, 200)):
            t = time.perf_counter()
            await world.sms.request_code(SmsCodeRequest(phone=WANG_PHONE), f"198.51.100.{i % 250}")
            await world.sms.drain()
            await world.sms.verify(
                SmsCodeVerify(phone=WANG_PHONE, code=world.code_sent_to(WANG_PHONE))
            )
            signins.append(time.perf_counter() - t)
        print(f"{backend:6} authenticate (acting for an enterprise), {n} calls: {summary(auth)}")
        print(
            f"{backend:6} SMS sign-in (code, verify, tokens), {len(signins)} runs: {summary(signins)}"
        )
    finally:
        await engine.dispose()
        if redis is not None:
            keys = [k async for k in redis.scan_iter(match=prefix + "*", count=500)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


def main() -> None:
    logging.getLogger("test-sms").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()
    for backend in ("memory", "redis"):
        asyncio.run(run(args.n, backend))


if __name__ == "__main__":
    main()
