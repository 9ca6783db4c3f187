"""Live figures for supervisors: the engine's per-queue statistics, who is on duty doing what
since when, the live sessions, and the service's targets. One model (`LiveStats`) answers
`GET /api/stats/live` and is pushed as `queue:stats` every `VTAX_STATS_PUSH_S`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from vtax.app.ports import Notifier
from vtax.config import Settings
from vtax.contract import server_events as se
from vtax.live import LiveStore
from vtax.queue import AgentState, QueueEngine
from vtax.queue.duty import agents_on_duty


def _since(agent: AgentState) -> float:
    if agent.status_since:
        return agent.status_since
    return {
        "busy": agent.answered_at,
        "wrapup": agent.ended_at,
        "available": agent.idle_since,
    }.get(agent.status, 0.0)


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


class LiveFigures:
    def __init__(
        self, settings: Settings, engine: QueueEngine, store: LiveStore, notifier: Notifier
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.notifier = notifier
        self.last: se.LiveStats | None = None  # /metrics reads queue depths from the last push

    async def figures(self, raw: dict[str, Any] | None = None) -> se.LiveStats:
        """The engine's figures (`raw`, computed now when not given), with the agents on
        duty and the live sessions."""
        if raw is None:
            raw = await self.engine.live_stats()
        agents = await agents_on_duty(self.engine.kv)
        sessions: list[se.LiveSessionView] = []
        on_duty: list[se.AgentOnDuty] = []
        for agent in sorted(agents, key=lambda a: (a.name, a.id)):
            on_duty.append(
                se.AgentOnDuty(
                    agent_id=agent.id,
                    display_name=agent.name,
                    status=agent.status,
                    reason=agent.reason,
                    since=_ts(_since(agent) or time.time()),
                    session_id=agent.session_id if agent.status == "busy" else None,
                )
            )
            if agent.status == "busy" and agent.session_id:
                live = await self.store.get(agent.session_id)
                if live is not None:
                    sessions.append(
                        se.LiveSessionView(
                            session_id=live.id,
                            agent_id=live.agent_id,
                            category=str(live.info.get("category", "")),
                            language=str(live.info.get("language", "")),
                            channel=str(live.info.get("channel", "")),
                            started_at=_ts(live.started_at),
                        )
                    )
        stats = se.LiveStats.model_validate(
            {
                **raw,
                "timezone": self.settings.service_timezone,
                "agents": on_duty,
                "sessions": sessions,
                "targets": se.Targets(
                    service_level=self.settings.service_level_target,
                    longest_wait_alert_s=self.settings.longest_wait_alert_s,
                ),
            }
        )
        return stats

    async def push(self, raw: dict[str, Any]) -> None:
        """The engine's periodic push: to every supervisor connection, on any node."""
        stats = await self.figures(raw)
        self.last = stats
        await self.notifier.to_role("supervisor", se.QueueStats.model_validate(stats.model_dump()))

    def depth_by_queue(self) -> dict[str, int]:
        """Waiting tickets per queue, as of the latest push."""
        if self.last is None:
            return {}
        return {name: q.waiting for name, q in self.last.queues.items()}
