"""Live statistics per queue (the supervisor's board and `queue:stats`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vtax.queue import keys
from vtax.queue.engine.core import EngineCore
from vtax.queue.model import AGENT_STATUSES


class LiveStats(EngineCore):
    """Per-queue figures of now and of today."""

    async def live_stats(self) -> dict[str, Any]:
        """Per queue: waiting, longest wait, agents by state, offers, and today's service
        level (both of Asterisk's formulas), ASA, abandonment and handle time."""
        now = self._clock()
        day = self._day(now)
        queues: dict[str, Any] = {}
        for cat in self.categories:
            config = self.book.of(cat)
            oldest = await self.kv.zrange_withscores(keys.waiting(cat), 0, 0)
            agents_raw = await self.kv.hgetall(keys.queue_agents(cat))
            c = {k: float(v) for k, v in (await self.kv.hgetall(keys.stats(cat, day))).items()}
            answered, abandoned = c.get("answered", 0.0), c.get("abandoned", 0.0)
            in_sl, ab_in_sl = c.get("answered_in_sl", 0.0), c.get("abandoned_in_sl", 0.0)
            offers = c.get("offers", 0.0)
            queues[cat] = {
                "waiting": await self.kv.zcard(keys.waiting(cat)),
                "longest_wait_s": round(now - oldest[0][1], 1) if oldest else 0.0,
                "agents": {
                    s: int(agents_raw.get(s) or 0) for s in AGENT_STATUSES if s != "offline"
                },
                "offers": {
                    "made": int(offers),
                    "accepted": int(c.get("offers_accepted", 0)),
                    "rejected": int(c.get("offers_rejected", 0)),
                    "expired": int(c.get("offers_expired", 0)),
                },
                "today": {
                    "joined": int(c.get("joined", 0)),
                    "refused": int(c.get("refused", 0)),
                    "answered": int(answered),
                    "abandoned": int(abandoned),
                    "timed_out": int(c.get("timed_out", 0)),
                    "service_level": _ratio(in_sl, answered),
                    "service_level_with_abandoned": _ratio(in_sl + ab_in_sl, answered + abandoned),
                    "asa_s": _mean(c.get("answered_wait_sum", 0.0), answered),
                    "abandonment_rate": _ratio(abandoned, answered + abandoned),
                    "aht_s": _mean(c.get("handle_sum", 0.0), c.get("handle_n", 0.0)),
                },
                "service_level_s": config.service_level_s,
                "strategy": config.strategy,
                "open": config.hours is None or config.hours.is_open(now),
            }
        return {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "day": day,
            "queues": queues,
        }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(total: float, n: float) -> float | None:
    return round(total / n, 1) if n else None
