"""Call quality: the `getStats` samples both pages send during a call (`call:quality`), kept
with the session record and summarised by the server (vtax/review/call_quality.py); the
summary for the supervisor's session detail and the KPI beside the taxpayer's av_quality
rating (vtax/review/kpi.py `call_quality_kpi`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from vtax.app.calls import MEDIA_ROLES, Calls
from vtax.app.ports import Caller, at
from vtax.contract import client_events as ce
from vtax.contract.quality import CallQualitySummary, QualityNoted
from vtax.errors import DomainError
from vtax.review.call_quality import CallQualityStore, level_of
from vtax.review.days import DEFAULT_ZONE
from vtax.review.kpi import call_quality_kpi


class CallQualityService:
    def __init__(
        self,
        calls: Calls,
        store: CallQualityStore,
        clock: Callable[[], float] = time.time,
        zone: str = DEFAULT_ZONE,
    ) -> None:
        self.calls = calls
        self.store = store
        self.clock = clock
        self.zone = zone  # the service zone: the KPI's days (docs/review.md, Days)

    async def report(self, caller: Caller, p: ce.CallQuality) -> QualityNoted:
        """Keep a sample of a media participant of the live session (bound to this
        connection); anyone else is `not_in_session`."""
        participant_id = await self.calls.bound_participant(caller, p.session_id)
        live = await self.calls.get(p.session_id)
        me = live.participants.get(participant_id) if live is not None else None
        if me is None or me.role not in MEDIA_ROLES:
            raise DomainError("not_in_session", "you are not a participant of that live session")
        figures = p.sample.model_dump()
        mos = await self.store.add(p.session_id, me.role, at(self.clock()), figures)
        return QualityNoted(mos=mos, level=level_of(mos))  # type: ignore[arg-type]

    async def summary(self, session_id: str) -> CallQualitySummary | None:
        """The session's summary (the caller's right to the session is the transport's
        check: the review detail is for supervisors)."""
        found = await self.store.summary(session_id)
        return CallQualitySummary.model_validate(found) if found is not None else None

    async def kpi(self, day_from: date, day_to: date, group_by: str) -> dict[str, Any]:
        return await call_quality_kpi(
            self.store.sessionmaker, day_from, day_to, group_by, self.zone
        )
