"""Who is on duty: every agent the queue knows who is not offline, read in one round trip per
call (the wallboard's list; docs/routing.md)."""

from __future__ import annotations

from vtax.queue import keys
from vtax.queue.kv import KV
from vtax.queue.model import AgentState


async def agents_on_duty(kv: KV) -> list[AgentState]:
    ids = sorted(await kv.smembers(keys.AGENTS))
    if not ids:
        return []
    rows = await kv.hgetall_many([keys.agent(i) for i in ids])
    agents = [AgentState.from_fields(row) for row in rows if row.get("id")]
    return [a for a in agents if a.status != "offline"]
