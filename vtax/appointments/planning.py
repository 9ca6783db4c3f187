"""What supervisors plan: the calendar year files they import (over the shipped ones) and the
staffing plan. Both are audited in appointment_events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.appointments.calendar import CalendarYear, WorkingCalendar, parse_year, shipped_years
from vtax.appointments.slots import StaffingPlan
from vtax.appointments.tables import AppointmentEvent, AppointmentPlan, CalendarYearRow
from vtax.review.audit import Actor

STAFFING = "staffing"


def _upsert(db: AsyncSession, table: type, values: dict[str, Any], key: str) -> Any:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[key], set_={k: v for k, v in values.items() if k != key}
    )


class Planning:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], timezone: str) -> None:
        self._sessions = sessions
        self.timezone = timezone
        self._shipped = shipped_years()

    async def calendar(self) -> WorkingCalendar:
        """The shipped years, each replaced by an imported file of its year."""
        async with self._sessions() as db:
            rows = (await db.execute(select(CalendarYearRow.body))).scalars().all()
        years = dict(self._shipped)
        for body in rows:
            year = parse_year(body)
            years[year.year] = year
        return WorkingCalendar(years, self.timezone)

    async def import_year(self, raw: bytes, actor: Actor, now: datetime) -> CalendarYear:
        """Validate a year file (`invalid_calendar` says what is wrong) and keep it."""
        year = parse_year(raw)
        body = year.model_dump(mode="json", by_alias=True)
        async with self._sessions() as db, db.begin():
            await db.execute(
                _upsert(
                    db,
                    CalendarYearRow,
                    {
                        "year": year.year,
                        "status": year.status,
                        "body": body,
                        "imported_at": now,
                        "imported_by": actor.id or "",
                    },
                    "year",
                )
            )
            db.add(
                AppointmentEvent(
                    at=now, actor_role=actor.role, actor_id=actor.id, kind="calendar_imported",
                    data={"year": year.year, "status": year.status, "days_off": len(year.off)},
                )
            )  # fmt: skip
        return year

    async def staffing(self) -> StaffingPlan:
        async with self._sessions() as db:
            row = await db.get(AppointmentPlan, STAFFING)
        return StaffingPlan() if row is None else StaffingPlan.model_validate(row.body)

    async def set_staffing(self, plan: StaffingPlan, actor: Actor, now: datetime) -> StaffingPlan:
        body = plan.model_dump(mode="json")
        async with self._sessions() as db, db.begin():
            await db.execute(
                _upsert(
                    db,
                    AppointmentPlan,
                    {
                        "key": STAFFING,
                        "body": body,
                        "updated_at": now,
                        "updated_by": actor.id or "",
                    },
                    "key",
                )
            )
            db.add(
                AppointmentEvent(
                    at=now, actor_role=actor.role, actor_id=actor.id, kind="staffing_changed",
                    data={"periods": len(plan.periods)},
                )
            )  # fmt: skip
        return plan
