"""Socket.IO events the server pushes, each with its event name and who receives it.

Every push is built from one of these models (or, on the relay's hot path, checked against it
when `VTAX_VALIDATE_OUTGOING` is on, as in the test suite), so what a page receives is what
docs/protocol.md and the generated TypeScript declarations say."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from vtax.contract.appointments import AppointmentUpdate, CallbackNotice
from vtax.contract.base import AgentStatus, Out, Timestamp
from vtax.contract.base import ServerEvent as ServerEvent  # defined there (no import cycle)
from vtax.contract.chat import ChatMessage
from vtax.contract.confirmation import FormVersionView
from vtax.contract.materials import MaterialNew, MaterialReviewedNotice
from vtax.contract.multiparty import InviteNew, InviteUpdate, SessionRoster
from vtax.contract.screen import ScreenPointed, ScreenState


def absent_if_none(value: Any) -> bool:
    return value is None


# ---- the queue ---------------------------------------------------------------------------------


class QueueUpdate(ServerEvent):
    """Only on a change, at most once per `VTAX_QUEUE_UPDATE_INTERVAL_S`; `eta_s` is 0 while an
    offer for the ticket is open (formula in docs/routing.md)."""

    event = "queue:update"
    to = "the ticket's taxpayer"

    ticket_id: str
    position: int = Field(description="tickets ahead in the same category and language")
    eta_s: float


class QueueLeft(ServerEvent):
    """The ticket left the queue: `left` (queue:leave), `disconnected` (the grace after a drop
    ran out), `timeout` (the queue's maximum wait), `state_lost` (the queue's store lost its
    data, a Redis restarted without persistence: join again; docs/stack.md)."""

    event = "queue:left"
    to = "the ticket's taxpayer"

    ticket_id: str
    reason: Literal["left", "disconnected", "timeout", "state_lost"]


class QueueTransferred(ServerEvent):
    """The agent transferred the call; the taxpayer now waits in that queue (`queue:update`
    follows as usual)."""

    event = "queue:transferred"
    to = "the taxpayer"

    from_session_id: str
    session_id: str
    ticket_id: str
    category: str
    language: str
    note: str
    position: int
    eta_s: float


class TicketView(Out):
    ticket_id: str
    category: str
    language: str
    channel: str
    question: str
    waited_s: float
    booking_id: str | None = Field(
        None, description="an appointment's ticket: GET /api/appointments/{id} shows its business"
    )
    consultation_id: str | None = Field(
        None, description="handed off by the assistant: GET /api/consultations/{id}"
    )


class OfferNew(ServerEvent):
    """A ticket is offered to this agent until `expires_in_s`; accept or reject it."""

    event = "offer:new"
    to = "the agent"

    offer_id: str
    ticket: TicketView
    expires_in_s: float


class OfferRevoked(ServerEvent):
    """The offer is withdrawn (a rejected offer is not announced back)."""

    event = "offer:revoked"
    to = "the agent"

    offer_id: str
    reason: Literal["expired", "ticket_left", "taxpayer_dropped", "agent_away", "agent_offline"]


class AgentStatusChanged(ServerEvent):
    """On every change of the agent's state; `away` with reason `missed_offers` after
    `VTAX_MISSED_OFFERS_LIMIT` offers in a row expired."""

    event = "agent:status"
    to = "the agent (every connection of the account)"

    status: AgentStatus
    reason: str


class OffersToday(Out):
    made: int
    accepted: int
    rejected: int
    expired: int


class QueueToday(Out):
    joined: int
    refused: int
    answered: int
    abandoned: int
    timed_out: int
    service_level: float | None = Field(description="answered within T / answered")
    service_level_with_abandoned: float | None = Field(
        description="(answered within T + abandoned within T) / (answered + abandoned)"
    )
    asa_s: float | None
    abandonment_rate: float | None
    aht_s: float | None


class QueueFigures(Out):
    waiting: int
    longest_wait_s: float
    agents: dict[str, int] = Field(description="status -> agents with the skill, not offline")
    offers: OffersToday
    today: QueueToday
    service_level_s: float = Field(description="the queue's threshold T")
    strategy: str
    open: bool


class AgentOnDuty(Out):
    agent_id: str
    display_name: str
    status: AgentStatus
    reason: str
    since: Timestamp = Field(description="when the agent entered this status")
    session_id: str | None = Field(description="the live session, while on a call")


class LiveSessionView(Out):
    session_id: str
    agent_id: str
    category: str
    language: str
    channel: str
    started_at: Timestamp


class Targets(Out):
    service_level: float = Field(description="the share answered within T the service aims for")
    longest_wait_alert_s: float = Field(description="alert when a ticket waits longer")


class LiveStats(Out):
    """The live figures, per queue, and who is doing what now."""

    at: Timestamp
    day: str = Field(description="the service-zone day the `today` figures count")
    timezone: str
    queues: dict[str, QueueFigures]
    agents: list[AgentOnDuty]
    sessions: list[LiveSessionView]
    targets: Targets


class QueueStats(ServerEvent, LiveStats):
    """The body of `GET /api/stats/live`, every `VTAX_STATS_PUSH_S`."""

    event = "queue:stats"
    to = "supervisors"


# ---- the call -----------------------------------------------------------------------------------


class IceServer(Out):
    urls: list[str]
    username: str | None = Field(None, exclude_if=absent_if_none)
    credential: str | None = Field(None, exclude_if=absent_if_none)


class Peer(Out):
    participant_id: str
    role: Literal["taxpayer", "agent", "supervisor"]
    display_name: str = Field(description="the agent's display name; empty for a taxpayer")


class SessionStartFields(Out):
    session_id: str
    participant_id: str = Field(description="who this connection speaks for in the session")
    role: Literal["taxpayer", "agent", "supervisor"]
    polite: bool = Field(description="MDN perfect negotiation: the taxpayer is polite")
    peer: Peer
    ice_servers: list[IceServer]
    ticket: TicketView


class SessionStart(ServerEvent, SessionStartFields):
    """Both sides are paired: negotiate WebRTC (perfect negotiation, trickle ICE)."""

    event = "session:start"
    to = "both participants"


class RelayedSignal(ServerEvent):
    """A participant's `rtc:signal`, stamped by the server with `from` and `seq`."""

    event = "rtc:signal"
    to = "`to`, else the other participant(s)"

    session_id: str
    from_: str = Field(alias="from", serialization_alias="from")
    seq: int
    type: Literal["offer", "answer", "candidate", "restart"]
    data: dict[str, Any] | None


class SessionPeer(ServerEvent):
    """The other side dropped (`reconnecting`, with `VTAX_RESUME_GRACE_S` to come back), came
    back (`back`, restart ICE) or did not (`left`)."""

    event = "session:peer"
    to = "the other participant(s)"

    session_id: str
    participant_id: str
    state: Literal["reconnecting", "back", "left"]
    ice_restart: Literal[True] | None = Field(None, exclude_if=absent_if_none)


class SessionParticipant(ServerEvent):
    """A participant joined or left. The recorder (hidden): on `joined` each media participant
    opens a second, send-only peer connection to it and offers with `to` = its id. A visible
    one (an invitee, a barging supervisor): `session:roster` follows with its name and part."""

    event = "session:participant"
    to = "the media participants"

    session_id: str
    participant_id: str
    role: Literal["recorder", "taxpayer", "agent", "supervisor"]
    state: Literal["joined", "left"]


class SessionEnded(ServerEvent):
    """The session is over for everyone."""

    event = "session:end"
    to = "every participant"

    session_id: str
    reason: str
    ended_by: str | None = Field(description="the participant who ended it; null: the system")


class ServerDraining(ServerEvent):
    """The node is shutting down: reconnect (the balancer picks another node) and resume."""

    event = "server:draining"
    to = "everyone connected to the node"

    reconnect: Literal[True]
    within_s: float


class SessionResync(ServerEvent):
    """This node's fan-out missed messages (its Redis pub/sub subscription was lost for
    `gap_s` seconds, a Redis restart): what the other nodes sent this participant meanwhile
    never arrived. Resume the session (`session:resume` with the last seq seen, on the same
    RTCPeerConnection): the replay gives what was missed."""

    event = "session:resync"
    to = "each live-session participant on a node whose fan-out had a gap"

    session_id: str
    gap_s: float


# ---- the review loop ------------------------------------------------------------------------------


class DeliveryNew(ServerEvent):
    """An agent delivered a document: download and acknowledge it over HTTP (docs/review.md)."""

    event = "delivery:new"
    to = "the session's taxpayer"

    id: str
    session_id: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str


class LoopChanged(ServerEvent):
    """A review step changed, over Socket.IO or REST: fetch the session for its new state.
    `summary` (saved or revised) to the taxpayer; `check`, `rating`, `delivery_ack` to the
    agent; `follow_up` (closed) to both; every step to the supervisors (their session lists
    refresh on it). A refused step announces nothing."""

    event = "session:loop"
    to = "the other side of the session, and supervisors"

    session_id: str
    step: Literal["summary", "check", "rating", "follow_up", "delivery_ack"]


# ---- recording ---------------------------------------------------------------------------------------


class RecordingState(ServerEvent):
    """What the session's recording is doing: `consent_requested` (to the taxpayer) and
    `awaiting_consent` (to the agent) at the start, then `starting`, `recording`,
    `refused` or `interrupted`."""

    event = "session:recording"
    to = "the media participants"

    session_id: str
    state: Literal[
        "consent_requested", "awaiting_consent", "starting", "recording", "refused", "interrupted"
    ]
    on_refusal: Literal["continue", "end"] | None = Field(None, exclude_if=absent_if_none)
    session_continues: bool | None = Field(None, exclude_if=absent_if_none)
    recorder_participant_id: str | None = Field(None, exclude_if=absent_if_none)


class RecordingJobOut(ServerEvent):
    """A job for this worker (embedded default; with Redis, workers take jobs from a list)."""

    event = "recording:job"
    to = "a recorder worker"

    job_id: str
    session_id: str
    node_url: str
    started_at: Timestamp
    consent: dict[str, str]
    ice_servers: list[IceServer]
    expires_at: float = Field(description="unix time; an unclaimed job after it is dropped")


class RecordingStop(ServerEvent):
    """Consent was withdrawn: stop and leave."""

    event = "recording:stop"
    to = "the session's recorder"

    session_id: str


# ---- the confirmation form -------------------------------------------------------------------


class ConfirmationForm(ServerEvent):
    """The form changed: a new version, or the taxpayer's decision on one. The page shows
    `form` (its latest version) at once."""

    event = "confirmation:form"
    to = "the session's participants"

    session_id: str
    form: FormVersionView


# ---- monitor and whisper (vtax/contract/monitor.py; docs/protocol.md) -----------------------


class MonitoringNotice(ServerEvent):
    """At the start of every call (`VTAX_MONITOR_NOTICE`, on by default), to the taxpayer:
    calls may be monitored for quality. The same on every call: it tells nothing of whether
    this one is."""

    event = "session:notice"
    to = "the taxpayer"

    session_id: str
    notice: Literal["may_be_monitored"]


class MonitorState(ServerEvent):
    """To a monitoring supervisor: the leg joined (`live`, offer to `leg_id`), is being
    replaced (`connecting`), or the monitoring ended (`ended`, with the reason)."""

    event = "monitor:state"
    to = "the monitoring supervisor"

    session_id: str
    monitor_id: str
    state: Literal["connecting", "live", "ended"]
    leg_id: str | None
    reason: str | None = Field(None, exclude_if=absent_if_none)


class MonitorAgentNotice(ServerEvent):
    """To the session's agent (the agent may know; the taxpayer never gets it): how many
    supervisors listen, whether one whispers, and the leg to send the call's media to
    (`leg_id`; null: close the connection to it)."""

    event = "monitor:agent"
    to = "the session's agent"

    session_id: str
    leg_id: str | None
    monitors: int
    whispering: bool


class MonitorRelayedSignal(ServerEvent):
    """A `monitor:signal`, stamped with `from` (the leg's, a monitor's or the agent's id)."""

    event = "monitor:signal"
    to = "`to`"

    session_id: str
    from_: str = Field(alias="from", serialization_alias="from")
    type: Literal["offer", "answer", "candidate", "restart"]
    data: dict[str, Any] | None


class MonitorJob(ServerEvent):
    """A media-leg job for this worker: join with `leg:join`."""

    event = "monitor:job"
    to = "a media-leg worker"

    job_id: str
    session_id: str
    ice_servers: list[IceServer]


class LegMonitors(ServerEvent):
    """To the leg: the monitors now watching (their connections close when they leave) and who
    whispers (null: nobody)."""

    event = "leg:monitors"
    to = "the session's leg"

    session_id: str
    monitors: list[str]
    whisper_from: str | None


class LegStop(ServerEvent):
    """To the leg: nobody monitors any more, or the session ended: close everything."""

    event = "leg:stop"
    to = "the session's leg"

    session_id: str


SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    QueueUpdate,
    QueueLeft,
    QueueTransferred,
    OfferNew,
    OfferRevoked,
    AgentStatusChanged,
    QueueStats,
    SessionStart,
    RelayedSignal,
    SessionPeer,
    SessionParticipant,
    SessionEnded,
    ServerDraining,
    SessionResync,
    DeliveryNew,
    LoopChanged,
    RecordingState,
    RecordingJobOut,
    RecordingStop,
    AppointmentUpdate,
    CallbackNotice,
    # the confirmation form
    ConfirmationForm,
    # multiparty
    SessionRoster,
    InviteNew,
    InviteUpdate,
    MaterialNew,  # materials
    MaterialReviewedNotice,
    # in-call chat
    ChatMessage,
    # monitor and whisper
    MonitoringNotice,
    MonitorState,
    MonitorAgentNotice,
    MonitorRelayedSignal,
    MonitorJob,
    LegMonitors,
    LegStop,
    # screen share (vtax/contract/screen.py)
    ScreenState,
    ScreenPointed,
)
