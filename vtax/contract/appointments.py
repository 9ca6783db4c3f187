"""Messages of appointments (预约) and callbacks: the bodies the pages send and the answers
the use cases give (vtax/app/appointments.py). Times are ISO 8601 in the service time zone
(with its offset), days are that zone's. The REST endpoints are in vtax/contract/endpoints.py,
the Socket.IO events in client_events.py / server_events.py (docs/appointments.md)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from vtax.appointments.slots import StaffingPeriod
from vtax.contract.base import (
    Category,
    Channel,
    Day,
    Id,
    Language,
    Message,
    Note,
    Out,
    Query,
    ServerEvent,
    Sha256,
    Timestamp,
)

PageLocale = Literal["zh-CN", "zh-HK", "en", "pt"]
SlotId = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=100, pattern=r"^[a-z_]{1,64}~[A-Za-z-]{1,8}~\d{8}T\d{4}$"
    ),
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
ItemCode = Annotated[str, StringConstraints(min_length=1, max_length=100)]
BookingStateName = Literal[
    "requested",
    "pre_review",
    "approved",
    "redirected_online",
    "rejected",
    "reminded",
    "checked_in",
    "queued",
    "served",
    "no_show",
    "cancelled",
    "rescheduled",
]

# Staff's verdict on one material of a booking (per-file pre-review) and what is wrong with a
# file that needs replacing; the pages name each code in the four languages.
MaterialReview = Literal["pending", "accepted", "needs_replacing"]
MaterialIssue = Literal["illegible", "wrong_document", "expired", "incomplete", "other"]

# ---- queries and bodies ----------------------------------------------------------------------


class SlotQuery(Query):
    """The bookable slots of a category and language (one day, or the whole horizon)."""

    category: Category
    language: Language
    day: Day | None = Field(None, description="one day of the service time zone")


class BookIn(Message):
    slot_id: SlotId
    items: Annotated[list[ItemCode], Field(max_length=20)] = Field(
        default_factory=list, description="catalog items of the slot's category"
    )
    question: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    channel: Channel = "web"
    phone: Phone | None = Field(None, description="E.164; texts go there (none: page only)")
    locale: PageLocale = Field("zh-CN", description="the language of the texts")


class CancelIn(Message):
    reason: Note = ""


class RescheduleIn(Message):
    slot_id: SlotId


class PreReviewIn(Message):
    """`pre_review` takes the booking up; a decision closes the review."""

    decision: Literal["pre_review", "approved", "redirected_online", "rejected"]
    note: Note = ""
    route: Annotated[str, StringConstraints(max_length=300)] = Field(
        "", description="redirected_online: the online service to use (a name or a link)"
    )
    reason: Note = Field("", description="rejected: why, for the taxpayer")


class MaterialVerdictIn(Message):
    """Staff's verdict on one material: `needs_replacing` names what is wrong (a code, and a
    note for the taxpayer; `other` needs the note); `accepted` takes neither."""

    verdict: Literal["accepted", "needs_replacing"]
    reason: MaterialIssue | None = Field(None, description="needs_replacing: what is wrong")
    note: Annotated[str, StringConstraints(max_length=500)] = Field(
        "", description="needs_replacing: what to bring instead, for the taxpayer"
    )

    @model_validator(mode="after")
    def _reason_with_needs_replacing(self) -> MaterialVerdictIn:
        if self.verdict == "needs_replacing" and self.reason is None:
            raise ValueError("a file that needs replacing needs a reason")
        if self.reason == "other" and not self.note:
            raise ValueError("the reason `other` needs a note for the taxpayer")
        if self.verdict == "accepted" and (self.reason is not None or self.note):
            raise ValueError("a reason and a note go with needs_replacing only")
        return self


class LiftBlockIn(Message):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class BookingListQuery(Query):
    """Staff: bookings of a day and states."""

    day: Day | None = None
    state: BookingStateName | None = None
    category: Category | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class StaffingPlanIn(Message):
    """The supervisors' staffing plan, replaced as a whole."""

    periods: Annotated[list[StaffingPeriod], Field(max_length=300)]  # fits a 64 KiB body


class FiguresQuery(Query):
    date_from: Day = Field(alias="from", description="first day (service time zone)")
    date_to: Day = Field(alias="to", description="last day (inclusive)")
    on_time_minutes: Annotated[int, Field(ge=0, le=240)] = Field(
        5, description="on-time start: served within this many minutes of T"
    )


class CallbackIn(Message):
    ticket_id: Id
    phone: Phone | None = None
    locale: PageLocale = "zh-CN"


# ---- answers ------------------------------------------------------------------------------------


class SlotOut(Out):
    id: str
    category: str
    language: str
    starts_at: Timestamp
    ends_at: Timestamp
    capacity: int
    remaining: int


class SlotsOut(Out):
    timezone: str
    days: list[str] = Field(description="the bookable days (YYYY-MM-DD), service time zone")
    provisional_days: list[str] = Field(
        description="days whose holidays are from a provisional calendar file"
    )
    slots: list[SlotOut]


class MaterialOut(Out):
    id: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: Sha256
    created_at: Timestamp
    review: MaterialReview = Field(
        "pending", description="staff's verdict on this file; needs_replacing blocks approval"
    )
    review_reason: MaterialIssue | None = Field(None, description="needs_replacing: what is wrong")
    review_note: str | None = Field(None, description="needs_replacing: staff's note")
    reviewed_at: Timestamp | None = None
    revision: int = Field(1, description="1, and one more each time the taxpayer replaced it")
    replaced_at: Timestamp | None = None


class BookingOut(Out):
    id: str
    state: BookingStateName
    slot_id: str
    category: str
    language: str
    channel: str
    starts_at: Timestamp
    ends_at: Timestamp
    day: str
    items: list[str]
    question: str
    locale: str
    created_at: Timestamp
    review_note: str | None = None
    online_route: str | None = None
    reject_reason: str | None = None
    cancel_reason: str | None = None
    check_in: Literal["on_time", "walk_in"] | None = None
    ticket_id: str | None = None
    rescheduled_from: str | None = None
    rescheduled_to: str | None = None
    materials: list[MaterialOut] = Field(default_factory=list)


class MaterialLimitsOut(Out):
    """What the server accepts as a booking's material, so the page checks it before sending."""

    max_bytes: int = Field(description="largest material (the node's `documents_max_bytes`)")
    max_count: int = Field(description="materials per booking")
    media_types: list[str] = Field(description="accepted content types (sniffed from the bytes)")


class BookingsOut(Out):
    bookings: list[BookingOut]
    material_limits: MaterialLimitsOut


class StaffBookingOut(BookingOut):
    """What staff see (pre-review, the agent before accepting): the taxpayer and the strikes."""

    taxpayer_id: str
    strikes: int
    blocked: bool


class BookingDetail(BookingOut):
    """One booking as its reader may see it: staff get the taxpayer and the strikes (the agent
    reads them before accepting the ticket); for the taxpayer these are null."""

    taxpayer_id: str | None = Field(None, description="staff only")
    strikes: int | None = Field(None, description="staff only: strikes this month, net")
    blocked: bool | None = Field(None, description="staff only: booking is blocked")


class StaffBookingsOut(Out):
    bookings: list[StaffBookingOut]


class CheckInOut(Out):
    """How the booking enters the live queue (the wiring enqueues the ticket with these)."""

    booking: BookingOut
    verdict: Literal["on_time", "walk_in"]
    joined_at: Timestamp = Field(description="the ticket's join time: T when on time")
    priority: int


class StrikesOut(Out):
    taxpayer_id: str
    month: str
    strikes: int
    forgiven: int
    limit: int
    blocked: bool


class HolidayOut(Out):
    """One holiday of a calendar year: its days off and the weekend days worked for it (调休)."""

    code: str
    name: dict[PageLocale, str] = Field(description="the holiday's name in each page language")
    off_first: Day
    off_last: Day = Field(description="the last day off (inclusive)")
    working: list[Day] = Field(description="adjusted working weekend days (Saturday, Sunday)")


class CalendarYearOut(Out):
    year: int
    status: Literal["official", "provisional"]
    source: str
    note: str = ""
    days_off: int
    working_weekend_days: int
    holidays: list[HolidayOut] = Field(default_factory=list)


class CalendarYearsOut(Out):
    """The calendar years in force (shipped, or imported over the shipped file of the year)."""

    years: list[CalendarYearOut]


class StaffingPlanOut(Out):
    periods: list[StaffingPeriod]


class CallbackOut(Out):
    ticket_id: str
    state: Literal["waiting", "notified", "connected", "abandoned", "cancelled"]
    attempts: int
    window_ends_at: Timestamp | None = None


class DayFiguresOut(Out):
    day: str
    booked: int
    states: dict[str, int]
    approved: int
    redirected_online: int
    rejected: int
    no_show: int
    no_show_rate: float | None = Field(description="no-shows / (no-shows + came)")
    served: int
    served_on_time: int
    on_time_rate: float | None


class CallbackFiguresOut(Out):
    asked: int
    told: int
    connected: int
    abandoned: int


class FiguresOut(Out):
    days: list[DayFiguresOut]
    callbacks: CallbackFiguresOut


# ---- pushes (registered in SERVER_EVENTS) --------------------------------------------------------


class AppointmentUpdate(ServerEvent):
    """A booking of the taxpayer changed state (pre-review result, reminder, no-show...)."""

    event: ClassVar[str] = "appointment:update"
    to: ClassVar[str] = "the booking's taxpayer"

    booking: BookingOut


class CallbackNotice(ServerEvent):
    """The taxpayer's turn is near: come back within the window to connect."""

    event: ClassVar[str] = "callback:turn"
    to: ClassVar[str] = "the ticket's taxpayer"

    ticket_id: str
    window_ends_at: Timestamp
