"""Call quality kept with the session record: the estimated MOS of a sample, the levels, the
session's summary (docs/review.md, "Call quality"), and their storage.

The MOS is the ITU-T G.107 E-model in the simplification network monitors use (after
Cole & Rosenbluth, "Voice over IP performance monitoring", 2001), on what `getStats` gives:

    effective latency  d = RTT / 2 + 2 * jitter + 10 ms      (one way, jitter buffer, codec)
    R = 93.2 - d / 40              if d < 160 ms
    R = 93.2 - (d - 120) / 10      otherwise
    R = R - 2.5 * loss %           (Opus with FEC degrades more gently than G.711; kept simple)
    R clamped to 0..100
    MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), clamped to 1..4.5

Levels of a MOS: good >= 4.0 (users satisfied), fair >= 3.6, poor below (many dissatisfied).
web/src/core/quality.ts computes the same for the page's badge; the server's figures are the
ones kept (a client's own MOS is never taken). A sample without an RTT has no MOS (the
call has not connected yet); missing jitter or loss count as 0.

The summary: medians of every figure over all samples of both sides, the lowest MOS, the share
of poor samples, and the worst minute: samples grouped by whole minutes after the first one,
the minute with the lowest mean MOS (ties: the earliest)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.errors import DomainError
from vtax.models import CallQualityRecord, CallQualitySample, ServiceSession

GOOD_MOS = 4.0
FAIR_MOS = 3.6
FIGURES = ("rtt_ms", "jitter_ms", "loss_pct", "out_kbps", "in_kbps", "screen_out_kbps", "fps")


def r_factor(rtt_ms: float, jitter_ms: float = 0.0, loss_pct: float = 0.0) -> float:
    """The simplified E-model's transmission rating R (0..100)."""
    latency = rtt_ms / 2 + 2 * jitter_ms + 10.0
    r = 93.2 - latency / 40 if latency < 160 else 93.2 - (latency - 120) / 10
    r -= 2.5 * loss_pct
    return min(max(r, 0.0), 100.0)


def estimated_mos(
    rtt_ms: float | None, jitter_ms: float | None = None, loss_pct: float | None = None
) -> float | None:
    """MOS (1..4.5) from R; None without an RTT."""
    if rtt_ms is None:
        return None
    r = r_factor(rtt_ms, jitter_ms or 0.0, loss_pct or 0.0)
    mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)
    return round(min(max(mos, 1.0), 4.5), 2)


def level_of(mos: float | None) -> str | None:
    if mos is None:
        return None
    return "good" if mos >= GOOD_MOS else "fair" if mos >= FAIR_MOS else "poor"


@dataclass(frozen=True, slots=True)
class Sample:
    """A stored sample, as the summary reads it."""

    role: str
    at: datetime
    mos: float | None
    figures: dict[str, float | None]


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def summarise(samples: Sequence[Sample]) -> dict[str, Any] | None:
    """The summary of a session's samples (CallQualitySummary's fields), or None if none."""
    if not samples:
        return None
    ordered = sorted(samples, key=lambda s: s.at)
    first = ordered[0].at
    by_role: dict[str, int] = {}
    for s in ordered:
        by_role[s.role] = by_role.get(s.role, 0) + 1
    scored = [s for s in ordered if s.mos is not None]
    minutes: dict[int, list[float]] = {}
    for s in scored:
        minutes.setdefault(int((s.at - first).total_seconds() // 60), []).append(s.mos or 0.0)
    worst = None
    if minutes:
        minute = min(minutes, key=lambda m: (statistics.fmean(minutes[m]), m))
        worst = {
            "minute": minute,
            "at": (first + timedelta(minutes=minute)).isoformat(),
            "mos": round(statistics.fmean(minutes[minute]), 2),
            "samples": len(minutes[minute]),
        }
    mos_median = _median(s.mos for s in scored)
    summary: dict[str, Any] = {
        "samples": len(ordered),
        "by_role": by_role,
        "first_at": first.isoformat(),
        "last_at": ordered[-1].at.isoformat(),
        "mos_median": mos_median,
        "mos_min": min((s.mos for s in scored if s.mos is not None), default=None),
        "level": level_of(mos_median),
        "worst_minute": worst,
        "poor_share": (
            round(sum(1 for s in scored if level_of(s.mos) == "poor") / len(scored), 4)
            if scored
            else None
        ),
    }
    for name in FIGURES:
        if name != "screen_out_kbps":
            summary[f"{name}_median"] = _median(s.figures.get(name) for s in ordered)
    return summary


class CallQualityStore:
    """Samples and summaries in the session database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_samples: int) -> None:
        self._sessions = sessions
        self.max_samples = max_samples

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    async def add(
        self, session_id: str, role: str, at: datetime, figures: dict[str, Any]
    ) -> float | None:
        """Keep one sample and recompute the session's summary, under the session row's lock
        (two sides sending at once never lose each other's sample in the summary). Returns the
        sample's MOS."""
        mos = estimated_mos(
            figures.get("rtt_ms"), figures.get("jitter_ms"), figures.get("loss_pct")
        )
        async with self._sessions() as db, db.begin():
            row = await db.get(ServiceSession, session_id, with_for_update=True)
            if row is None:
                raise DomainError("not_found", "no such session")
            count = await db.scalar(
                select(func.count())
                .select_from(CallQualitySample)
                .where(CallQualitySample.session_id == session_id)
            )
            if (count or 0) >= self.max_samples:
                raise DomainError("rate_limited", "this session has all the samples it keeps")
            db.add(CallQualitySample(session_id=session_id, role=role, at=at, mos=mos, **figures))
            await db.flush()
            samples = await self._samples(db, session_id)
            summary = summarise(samples)
            assert summary is not None
            record = await db.get(CallQualityRecord, session_id)
            if record is None:
                record = CallQualityRecord(session_id=session_id)
                db.add(record)
            record.samples = summary["samples"]
            record.mos_median = summary["mos_median"]
            record.level = summary["level"]
            record.updated_at = at
            record.summary = summary
        return mos

    @staticmethod
    async def _samples(db: AsyncSession, session_id: str) -> list[Sample]:
        rows = (
            await db.execute(
                select(CallQualitySample)
                .where(CallQualitySample.session_id == session_id)
                .order_by(CallQualitySample.at, CallQualitySample.id)
            )
        ).scalars()
        return [
            Sample(r.role, r.at, r.mos, {name: getattr(r, name) for name in FIGURES}) for r in rows
        ]

    async def summary(self, session_id: str) -> dict[str, Any] | None:
        async with self._sessions() as db:
            record = await db.get(CallQualityRecord, session_id)
        return dict(record.summary) if record is not None else None
