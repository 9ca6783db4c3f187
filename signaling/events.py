"""The Socket.IO events, mapped onto the application's use cases: each contract event
(vtax/contract/client_events.py) to the one use case that serves it. Recording's events are
registered by signaling/recording.py."""

from __future__ import annotations

import asyncio

from signaling.hub import Connection, Hub, caller_of
from vtax.app.ports import Caller
from vtax.app.state_loss import StateLoss
from vtax.compose import Services
from vtax.contract import client_events as ce
from vtax.contract import server_events as se

#: How long the winner of a state loss waits before telling people (see state_lost).
FANOUT_SETTLE_S = 3.0


def register(hub: Hub, app: Services) -> None:
    q, calls, loop = app.queueing, app.calls, app.loop
    hub.use_case(ce.QueueJoin, q.join)
    hub.use_case(ce.QueueRejoin, app.booked_queue.rejoin)  # q.rejoin, callbacks connected
    hub.use_case(ce.QueueLeave, q.leave)
    hub.use_case(ce.AgentStatusChange, q.set_status)
    hub.use_case(ce.OfferAccept, q.accept)
    hub.use_case(ce.OfferReject, q.reject)
    hub.use_case(ce.SessionTransfer, q.transfer)
    hub.use_case(ce.RtcSignal, calls.signal)
    hub.use_case(ce.SessionResume, calls.resume)
    hub.use_case(ce.SessionEnd, calls.hang_up)
    # appointments (docs/appointments.md): check in into the queue, ask for a callback
    hub.use_case(ce.AppointmentCheckIn, app.booked_queue.check_in)
    hub.use_case(ce.CallbackRequest, app.booked_queue.request_callback)

    async def summary(caller: Caller, p: ce.SessionSummary) -> ce.SummarySaved:
        return ce.SummarySaved.model_validate(await loop.summary(caller, p.session_id, p))

    async def check(caller: Caller, p: ce.SessionCheck) -> ce.Checked:
        return ce.Checked.model_validate(await loop.check(caller, p.session_id, p))

    async def rate(caller: Caller, p: ce.SessionRate) -> ce.Rated:
        return ce.Rated.model_validate(await loop.rate(caller, p.session_id, p))

    hub.use_case(ce.SessionSummary, summary)
    hub.use_case(ce.SessionCheck, check)
    hub.use_case(ce.SessionRate, rate)

    # the consultation assistant (docs/assistant.md); hand-offs join the queue
    consulting = app.consulting
    hub.use_case(ce.ConsultationStart, consulting.start)
    hub.use_case(ce.ConsultationAsk, consulting.ask)
    hub.use_case(ce.ConsultationFeedback, consulting.feedback)
    hub.use_case(ce.ConsultationHandoff, consulting.hand_off)
    hub.use_case(ce.ConsultationClose, consulting.close)

    # the confirmation form (docs/protocol.md, "Confirmation form")
    form = app.confirmation
    hub.use_case(ce.ConfirmationPropose, form.propose)
    hub.use_case(ce.ConfirmationConfirm, form.confirm)
    hub.use_case(ce.ConfirmationRefuse, form.refuse)
    hub.use_case(ce.ConfirmationGet, form.get)
    # multiparty (vtax/app/multiparty.py): invite, accept/decline, barge, hand-over, leave
    mp = app.multiparty
    hub.use_case(ce.SessionColleagues, mp.colleagues)
    hub.use_case(ce.SessionInvite, mp.invite)
    hub.use_case(ce.InviteAccept, mp.accept)
    hub.use_case(ce.InviteDecline, mp.decline)
    hub.use_case(ce.SessionBarge, mp.barge)
    hub.use_case(ce.SessionHandover, mp.handover)
    hub.use_case(ce.SessionLeave, mp.leave)
    # materials from the taxpayer (docs/protocol.md, "Materials"): the agent's review
    hub.use_case(ce.MaterialReview, app.materials.review_event)
    # in-call chat (vtax/app/chat.py; docs/protocol.md, "In-call chat")
    hub.use_case(ce.ChatSend, app.chat.send)
    hub.use_case(ce.ChatHistory, app.chat.history)
    # monitor and whisper through the media leg (vtax/app/monitor.py)
    monitor = app.monitor
    hub.use_case(ce.MonitorStart, monitor.start)
    hub.use_case(ce.MonitorStop, monitor.stop)
    hub.use_case(ce.MonitorWhisper, monitor.whisper)
    hub.use_case(ce.MonitorSignal, monitor.signal)
    hub.use_case(ce.LegHello, monitor.leg_hello)
    hub.use_case(ce.LegJoin, monitor.leg_join)
    hub.disconnect_hooks.append(lambda conn: monitor.disconnected(caller_of(conn)))
    # screen share and call quality inside the call (vtax/app/screen.py, vtax/app/quality.py)
    hub.use_case(ce.ScreenShare, app.screen.share)
    hub.use_case(ce.ScreenPointer, app.screen.point)
    hub.use_case(ce.CallQuality, app.quality.report)

    async def connected(conn: Connection) -> None:
        caller = caller_of(conn)
        await calls.connected(caller)
        await q.connected(caller)

    async def disconnected(conn: Connection) -> None:
        caller = caller_of(conn)
        await calls.disconnected(caller)
        await q.disconnected(caller)

    hub.connect_hooks.append(connected)
    hub.disconnect_hooks.append(disconnected)

    async def state_lost(winner: bool) -> None:
        """Redis lost its data (vtax/app/state_loss.py): the winner closes the records it
        forgot; every node registers its connections again and tells its agents their state
        (online, not available: the engine knows them no more)."""
        if winner:
            # The other nodes' pub/sub subscriptions come back within FANOUT_SETTLE_S of Redis
            # (signaling/app.py retries every 2 s at most): what the winner tells people
            # before then would never reach the clients of those nodes.
            await asyncio.sleep(FANOUT_SETTLE_S)
            await StateLoss(app.records, app.queue, calls.store, hub).reconcile()
        for conn in list(hub.connections.values()):
            caller = caller_of(conn)
            await calls.connected(caller)
            await q.connected(caller)
            if caller.role == "agent":
                await hub.to_connections(
                    [conn.sid], se.AgentStatusChanged(status="offline", reason="state_lost")
                )

    calls.on_state_lost.append(state_lost)


async def after_fanout_gap(hub: Hub, app: Services, gap_s: float) -> tuple[int, int]:
    """This node's pub/sub subscription was down for `gap_s` (signaling/app.py): what other
    nodes sent its clients meanwhile is lost. Live-call participants here are told to resync
    (`session:resync`: they resume, the replay fills the gap); agents here with a pending
    offer get it again. Returns (participants told, offers sent again)."""
    told = await app.calls.resync_here(gap_s)
    offers = 0
    for conn in list(hub.connections.values()):
        if conn.principal.role == "agent":
            offers += await app.queueing.resend_offer(caller_of(conn))
    return told, offers
