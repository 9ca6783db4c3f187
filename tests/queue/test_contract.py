"""The engine's contract, one scenario per behaviour, on both backends (in memory and Redis).

Time is a clock the test moves; `q.at(s)` moves it and runs the timers that came due."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests.queue.conftest import T0, FakeClock, Harness, Recorder
from vtax.errors import DomainError
from vtax.queue import QueueBook, QueueEngine, QueueRefusal, Ticket
from vtax.queue.model import BOOKED_PRIORITY

# ---- offers, accept, order -------------------------------------------------------------


async def test_a_ticket_is_offered_to_an_available_agent_and_accepted(q: Harness):
    t = await q.join()
    assert await q.engine.estimate(t.id) == (1, 150.0)  # nobody staffed: assume one
    await q.agent("a1")
    [(agent, offer, ticket)] = q.events.offers
    assert (agent.id, ticket.id, offer.expires_at - offer.created_at) == ("a1", t.id, 15.0)
    assert await q.status("a1") == "reserved"
    served = await q.engine.accept("a1", offer.id)
    assert served.id == t.id and served.conn_id == t.conn_id
    assert await q.status("a1") == "busy"
    assert await q.engine.waiting_ticket(t.taxpayer_id) is None
    stats = (await q.engine.live_stats())["queues"]["invoices"]
    assert stats["waiting"] == 0 and stats["offers"]["accepted"] == 1
    assert stats["today"]["answered"] == 1 and stats["today"]["service_level"] == 1.0


async def test_priority_goes_first_but_aging_prevents_starvation(q: Harness):
    old = await q.join()
    await q.at(60)
    elderly = await q.join(priority=1)  # worth 120 s of waiting: ahead of `old`
    await q.at(100)
    late_elderly = await q.join(priority=1)  # joined 160 s after `old`: behind it
    assert [await q.engine.estimate(t.id) for t in (elderly, old, late_elderly)] == [
        (1, 150.0),
        (2, 450.0),
        (3, 750.0),
    ]
    for name in ("a1", "a2", "a3"):
        await q.agent(name)
    assert [t.id for _, _, t in q.events.offers] == [elderly.id, old.id, late_elderly.id]


async def test_only_eligible_agents_get_offers(q: Harness):
    await q.agent("cantonese", languages=("yue",))
    await q.agent("registrar", skills={"registration": 5})
    t = await q.join()
    assert q.events.offers == []
    await q.agent("right")
    assert [(a.id, tk.id) for a, _, tk in q.events.offers] == [("right", t.id)]


async def test_accept_errors_leave_the_state_as_it_was(q: Harness):
    await q.join()
    await q.agent("a1")
    await q.agent("a2")
    offer = q.events.last_offer("a1")
    with pytest.raises(DomainError) as other:
        await q.engine.accept("a2", offer.id)
    assert other.value.code == "offer_expired"
    with pytest.raises(DomainError) as unknown:
        await q.engine.accept("a1", "no-such-offer")
    assert unknown.value.code == "offer_expired"
    with pytest.raises(DomainError) as busy:
        await q.engine.set_status("nobody", "available")
    assert busy.value.code == "invalid_state"
    assert (await q.engine.accept("a1", offer.id)).id
    with pytest.raises(DomainError) as twice:
        await q.engine.accept("a1", offer.id)
    assert twice.value.code == "offer_expired"
    with pytest.raises(DomainError) as in_session:
        await q.engine.set_status("a1", "away")
    assert in_session.value.code == "invalid_state"


async def test_a_taxpayer_has_one_waiting_ticket(q: Harness):
    t = await q.join(taxpayer="tp")
    with pytest.raises(DomainError) as err:
        await q.join(taxpayer="tp")
    assert err.value.code == "already_queued"
    held = await q.engine.waiting_ticket("tp")
    assert held is not None and held.id == t.id


# ---- agent choice ----------------------------------------------------------------------


def book_with(**config) -> QueueBook:
    return QueueBook.model_validate({"queues": {"invoices": config}})


@pytest.mark.parametrize(
    ("book", "expected"),
    [
        (book_with(strategy="longest_idle"), "first"),
        (book_with(strategy="highest_proficiency"), "expert"),
        (book_with(strategy="fewest_sessions"), "third"),
        (book_with(strategy="round_robin"), "third"),
    ],
    indirect=["book"],
)
async def test_agent_choice_follows_the_queue_strategy(q: Harness, expected: str):
    # `first` (level 2) and `expert` (level 5) served one ticket each today, `third` (level 1)
    # none; they become available in the order first, expert, third.
    for name, level in (("first", 2), ("expert", 5)):
        await q.agent(name, skills={"invoices": level})
        await q.join()
        await q.engine.accept(name, q.events.last_offer(name).id)
        await q.engine.session_ended(name)
        await q.engine.set_status(name, "away")
    await q.agent("third", skills={"invoices": 1}, available=False)
    for name in ("first", "expert", "third"):
        q.clock.advance(1)
        await q.engine.set_status(name, "available")
    await q.join()
    assert q.events.offers[-1][0].id == expected


@pytest.fixture
def book(request: pytest.FixtureRequest) -> QueueBook:
    return getattr(request, "param", QueueBook())


# ---- escalation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "book",
    [
        book_with(
            steps=[
                {"after_s": 0, "min_level": 4},
                {"after_s": 30, "min_level": 2},
                {"after_s": 90, "min_level": 0},
            ]
        )
    ],
    indirect=True,
)
async def test_escalation_widens_step_by_step_and_the_ticket_keeps_its_place(q: Harness):
    await q.agent("junior", skills={"invoices": 2})
    await q.agent("outsider", skills={"registration": 3})
    first = await q.join()
    await q.at(10)
    second = await q.join()
    assert q.events.offers == []
    await q.at(20)  # `first` has waited 30 s: level 2 may take it
    assert [(a.id, t.id) for a, _, t in q.events.offers] == [("junior", first.id)]
    await q.engine.accept("junior", q.events.last_offer("junior").id)
    await q.at(10)  # `second` at 30 s: junior is busy
    assert len(q.events.offers) == 1 and await q.engine.estimate(second.id) == (1, 150.0)
    await q.at(60)  # `second` at 90 s: any agent with the language
    assert [(a.id, t.id) for a, _, t in q.events.offers][-1] == ("outsider", second.id)


# ---- expiry, missed offers, reject ---------------------------------------------------------


async def test_expiry_reoffers_at_once_and_two_misses_make_the_agent_away(q: Harness):
    await q.agent("sleepy")
    t = await q.join()
    await q.agent("backup")  # the ticket is reserved for `sleepy`: nothing for backup yet
    assert [a.id for a, _, _ in q.events.offers] == ["sleepy"]
    await q.at(15)
    assert q.events.revoked[-1][0::2] == ("sleepy", "expired")
    assert [(a.id, tk.id) for a, _, tk in q.events.offers][-1] == ("backup", t.id)
    await q.at(1)
    await q.engine.reject("backup", q.events.last_offer("backup").id)  # cools until +26
    await q.at(9)  # +25: `sleepy` has cooled down and gets the ticket again
    assert q.events.offers[-1][0].id == "sleepy"
    await q.at(15)  # a second miss in a row: away, and told so
    assert ("sleepy", "away", "missed_offers") in q.events.statuses
    assert await q.status("sleepy") == "away"
    sleepy = await q.engine.agent("sleepy")
    assert sleepy is not None and sleepy.missed_offers == 2
    assert q.events.offers[-1][0].id == "backup"
    stats = (await q.engine.live_stats())["queues"]["invoices"]["offers"]
    assert (stats["made"], stats["expired"], stats["rejected"]) == (4, 2, 1)


async def test_a_reject_passes_the_ticket_on_and_cools_the_agent_down(q: Harness):
    await q.agent("a1")
    await q.agent("a2")
    t = await q.join()
    await q.engine.reject("a1", q.events.last_offer("a1").id)
    assert [(a.id, tk.id) for a, _, tk in q.events.offers] == [("a1", t.id), ("a2", t.id)]
    await q.engine.reject("a2", q.events.last_offer("a2").id)
    assert len(q.events.offers) == 2  # both cooling down; the ticket waits, still first
    assert await q.engine.estimate(t.id) == (1, 0.0)
    await q.at(10)
    assert len(q.events.offers) == 3 and q.events.offers[-1][2].id == t.id
    assert await q.engine.waiting_ticket(t.taxpayer_id) is not None


async def test_status_changes_withdraw_an_offer_and_flapping_is_harmless(q: Harness):
    await q.agent("a1")
    await q.engine.set_status("a1", "available")  # again: no change
    t = await q.join()
    offer = q.events.last_offer("a1")
    assert (await q.engine.set_status("a1", "available")).status == "reserved"
    await q.engine.set_status("a1", "away", "lunch")
    assert q.events.revoked[-1] == ("a1", offer.id, "agent_away")
    assert await q.status("a1") == "away"
    await q.engine.set_status("a1", "available")
    assert q.events.offers[-1][2].id == t.id and len(q.events.offers) == 2


# ---- wrap-up -----------------------------------------------------------------------------


async def test_wrap_up_holds_offers_until_its_time_or_the_agent_is_ready(q: Harness):
    await q.agent("a1")
    await q.join()
    await q.engine.accept("a1", q.events.last_offer("a1").id)
    await q.at(100)
    await q.engine.session_ended("a1")
    assert await q.status("a1") == "wrap_up"
    second = await q.join()
    await q.at(29)
    assert len(q.events.offers) == 1
    await q.at(1)
    assert await q.status("a1") == "reserved" and q.events.offers[-1][2].id == second.id
    await q.engine.accept("a1", q.events.last_offer("a1").id)
    await q.engine.session_ended("a1")
    await q.engine.set_status("a1", "available")  # ready before the wrap-up time is over
    assert await q.status("a1") == "available"
    # Handle times so far: 130 s and 0 s (talk + wrap-up), plus the prior: the recent AHT.
    assert await q.engine.handle_time("invoices") == pytest.approx((130 + 0 + 3 * 300) / 5)


# ---- leave, drop, rejoin -------------------------------------------------------------------


async def test_leave_abandons_at_once_and_withdraws_the_offer(q: Harness):
    t = await q.join()
    await q.agent("a1")
    offer = q.events.last_offer("a1")
    await q.at(5)
    assert (await q.engine.leave(t.id, t.taxpayer_id)).id == t.id
    assert q.events.revoked[-1] == ("a1", offer.id, "ticket_left")
    assert q.events.left == [(t.id, "left")]
    assert await q.status("a1") == "available"
    with pytest.raises(DomainError) as err:
        await q.engine.leave(t.id, t.taxpayer_id)
    assert err.value.code == "not_found"
    today = (await q.engine.live_stats())["queues"]["invoices"]["today"]
    assert (today["abandoned"], today["abandonment_rate"]) == (1, 1.0)


async def test_a_dropped_taxpayer_keeps_the_place_and_is_not_offered(q: Harness):
    first = await q.join()
    second = await q.join()
    await q.agent("a1")
    offer = q.events.last_offer("a1")
    assert first.conn_id is not None
    await q.engine.taxpayer_dropped(first.taxpayer_id, first.conn_id)
    assert q.events.revoked[-1] == ("a1", offer.id, "taxpayer_dropped")
    assert q.events.offers[-1][2].id == second.id  # served meanwhile
    await q.engine.set_status("a1", "away")
    await q.at(59)
    ticket, position, _ = await q.engine.rejoin(first.id, first.taxpayer_id, "conn-new")
    assert (ticket.id, ticket.conn_id, position) == (first.id, "conn-new", 1)
    await q.at(5)
    assert q.events.left == []  # the grace timer was cancelled
    await q.engine.set_status("a1", "available")
    assert q.events.offers[-1][2].id == first.id


async def test_after_the_grace_a_dropped_ticket_is_abandoned(q: Harness):
    t = await q.join()
    await q.engine.taxpayer_dropped(t.taxpayer_id, "some-other-connection")
    await q.at(100)
    assert q.events.left == []  # that connection did not hold the ticket
    assert t.conn_id is not None
    await q.engine.taxpayer_dropped(t.taxpayer_id, t.conn_id)
    await q.at(59.9)
    assert q.events.left == []
    await q.at(0.2)
    assert q.events.left == [(t.id, "disconnected")]
    with pytest.raises(DomainError) as err:
        await q.engine.rejoin(t.id, t.taxpayer_id, "conn-late")
    assert err.value.code == "not_found"
    with pytest.raises(DomainError):
        await q.engine.rejoin("t-unknown", t.taxpayer_id, "c")


async def test_rejoin_on_a_new_connection_before_the_old_one_is_noticed(q: Harness):
    t = await q.join()
    await q.engine.rejoin(t.id, t.taxpayer_id, "conn-2")
    assert t.conn_id is not None
    await q.engine.taxpayer_dropped(t.taxpayer_id, t.conn_id)  # the old one, late
    stored = await q.engine.ticket(t.id)
    assert stored is not None and stored.conn_id == "conn-2"
    with pytest.raises(DomainError):
        await q.engine.rejoin(t.id, "someone-else", "conn-3")


# ---- estimated wait and position updates -----------------------------------------------


async def test_the_eta_of_a_ticket_under_offer_is_zero(q: Harness):
    await q.agent("a1")
    t = await q.join()
    position, eta = await q.engine.estimate(t.id)
    assert (position, eta) == (1, 0.0)  # the walking skeleton said 150 s here


async def test_the_eta_counts_staffed_agents_and_reserved_ones(q: Harness):
    for name in ("a1", "a2"):
        await q.agent(name)
    tickets = [await q.join() for _ in range(4)]
    for name in ("a1", "a2"):
        await q.engine.accept(name, q.events.last_offer(name).id)
    # Two busy agents, AHT 300: the next frees up after 75 s on average, then every 150 s.
    assert [await q.engine.estimate(t.id) for t in tickets[2:]] == [(1, 75.0), (2, 225.0)]


async def test_position_updates_are_coalesced_and_only_on_change(q: Harness):
    tickets = [await q.join() for _ in range(5)]
    await q.agent("a1", available=False)
    await q.at(2)
    await q.engine.push_updates()
    assert q.events.updates == []  # nothing changed since the join acks
    for _ in range(3):  # three dequeues within one interval
        await q.engine.leave(tickets.pop(0).id)
    await q.engine.push_updates()
    assert q.events.updates == []  # the interval has not passed
    await q.at(2)
    await q.engine.push_updates()
    assert sorted((tid, pos) for tid, pos, _, _ in q.events.updates) == sorted(
        [(tickets[0].id, 1), (tickets[1].id, 2)]
    )
    await q.at(2)
    await q.engine.push_updates()
    assert len(q.events.updates) == 2  # no change, no message
    per_ticket: dict[str, list[float]] = {}
    for tid, _, _, at in q.events.updates:
        per_ticket.setdefault(tid, []).append(at)
    assert all(len(v) == 1 for v in per_ticket.values())


# ---- limits and hours ----------------------------------------------------------------------


@pytest.mark.parametrize("book", [book_with(max_length=2)], indirect=True)
async def test_a_full_queue_refuses_with_a_reason(q: Harness):
    await q.join()
    await q.join()
    with pytest.raises(QueueRefusal) as err:
        await q.join()
    assert err.value.code == "queue_full" and "full" in err.value.message
    await q.join(category="registration")  # other queues are not affected
    today = (await q.engine.live_stats())["queues"]["invoices"]["today"]
    assert (today["joined"], today["refused"]) == (2, 1)


@pytest.mark.parametrize(
    "book",
    [
        book_with(
            hours={
                "timezone": "Asia/Shanghai",
                "weekly": {"mon-fri": ["08:30-12:00", "14:00-15:30"], "sat": ["09:00-12:00"]},
                "closed_dates": ["2027-01-16"],
            }
        )
    ],
    indirect=True,
)
async def test_a_closed_queue_refuses_with_the_next_opening_time(q: Harness):
    # T0 is Friday 16:00 in Shanghai: closed; Saturday is a holiday; Monday 08:30 opens.
    with pytest.raises(QueueRefusal) as err:
        await q.join()
    assert err.value.code == "queue_closed"
    assert err.value.as_dict()["next_open_at"] == "2027-01-18T08:30:00+08:00"
    q.clock.now = datetime.fromisoformat("2027-01-18T08:30:00+08:00").timestamp()
    await q.join()
    stats = (await q.engine.live_stats())["queues"]
    assert stats["invoices"]["open"] and stats["registration"]["open"]


@pytest.mark.parametrize("book", [book_with(max_wait_s=400)], indirect=True)
async def test_max_wait_refuses_long_waits_and_times_out_the_waiting(q: Harness):
    first = await q.join()  # ETA 150
    await q.at(400)
    assert q.events.left == [(first.id, "timeout")]
    today = (await q.engine.live_stats())["queues"]["invoices"]["today"]
    assert today["timed_out"] == 1


@pytest.mark.parametrize("book", [book_with(max_wait_s=400)], indirect=True)
async def test_a_join_whose_estimate_exceeds_the_max_wait_is_refused(q: Harness):
    await q.join()
    with pytest.raises(QueueRefusal) as err:
        await q.join()
    assert err.value.code == "wait_too_long"


@pytest.mark.parametrize("book", [book_with(join_when_unstaffed=False)], indirect=True)
async def test_an_unstaffed_queue_can_refuse_joins(q: Harness):
    with pytest.raises(QueueRefusal) as err:
        await q.join()
    assert err.value.code == "no_agents"
    await q.agent("a1", available=False)
    await q.engine.set_status("a1", "away")
    await q.join()  # an agent on duty (away for now) counts


# ---- agents' connections, live statistics ------------------------------------------------


async def test_an_agent_goes_offline_with_the_last_connection_and_the_offer_moves(q: Harness):
    await q.agent("a1")
    a1 = await q.engine.agent("a1")
    assert a1 is not None
    await q.engine.agent_online(a1, "second-tab")  # two connections
    await q.agent("a2", available=False)
    t = await q.join()
    await q.engine.agent_connection_closed("a1", "conn-a1")
    assert await q.status("a1") == "reserved"
    await q.engine.set_status("a2", "available")
    await q.engine.agent_connection_closed("a1", "second-tab")
    assert await q.status("a1") == "offline"
    assert q.events.offers[-1][0].id == "a2" and q.events.offers[-1][2].id == t.id


async def test_live_statistics(q: Harness):
    await q.agent("a1")
    await q.agent("a2", available=False)
    await q.engine.set_status("a2", "away", "training")
    await q.join()
    await q.at(30)
    second = await q.join()
    await q.at(10)
    await q.engine.accept("a1", q.events.last_offer("a1").id)
    stats = (await q.engine.live_stats())["queues"]["invoices"]
    assert stats["waiting"] == 1 and stats["longest_wait_s"] == 10.0
    assert stats["agents"] == {
        "available": 0,
        "reserved": 0,
        "busy": 1,
        "wrap_up": 0,
        "away": 1,
    }
    assert stats["today"]["asa_s"] == 40.0 and stats["today"]["service_level"] == 1.0
    await q.engine.leave(second.id)
    await q.engine.tick()
    assert q.events.stats and q.events.stats[-1]["queues"]["invoices"]["waiting"] == 0


# ---- two nodes on one state -----------------------------------------------------------------


async def test_two_nodes_never_double_offer_and_timers_fire_once(make_kv):
    clock = FakeClock()
    events = [Recorder(), Recorder()]
    nodes = [
        QueueEngine(e, kv=await make_kv(), clock=clock, categories=["invoices"]) for e in events
    ]
    a, b = (Harness(n, clock, e) for n, e in zip(nodes, events, strict=True))
    tickets = [a.ticket() for _ in range(30)] + [b.ticket() for _ in range(30)]
    names = [f"ag{i}" for i in range(20)]
    for name in names:
        await a.agent(name, available=False)
    await asyncio.gather(
        *(nodes[i % 2].join(t) for i, t in enumerate(tickets)),
        *(nodes[i % 2].set_status(n, "available") for i, n in enumerate(names)),
    )
    offers = [o for e in events for _, o, _ in e.offers]
    assert len(offers) == 20
    assert len({o.ticket_id for o in offers}) == 20 and len({o.agent_id for o in offers}) == 20
    clock.advance(15)
    await asyncio.gather(a.engine.fire_due(), b.engine.fire_due())
    revoked = [r for e in events for r in e.revoked]
    assert len(revoked) == 20  # each offer expired exactly once
    # Every agent missed once and is cooling down; nothing was offered twice at a time.
    clock.advance(10)
    await asyncio.gather(a.engine.fire_due(), b.engine.fire_due())
    open_offers = [o for e in events for _, o, _ in e.offers if o.created_at > T0]
    assert len({o.agent_id for o in open_offers}) == len(open_offers) == 20
    assert len({o.ticket_id for o in open_offers}) == 20


# ---- appointments ----------------------------------------------------------------------------


def booked(q: Harness, t_at: float, on_time: bool = True) -> Ticket:
    """A checked-in appointment: joins with T as its join time (docs/appointments.md)."""
    t = q.ticket(priority=BOOKED_PRIORITY if on_time else 0)
    t.joined_at, t.booking_id, t.booked_on_time = t_at, "booking-" + t.id, on_time
    return t


async def test_a_ticket_keeps_its_booking_on_the_backend(q: Harness):
    t = booked(q, q.clock() + 300)
    await q.engine.join(t)
    stored = await q.engine.ticket(t.id)
    assert stored is not None
    assert (stored.booking_id, stored.booked_on_time, stored.priority) == (
        t.booking_id, True, BOOKED_PRIORITY,
    )  # fmt: skip
    walk_in = await q.join()
    plain = await q.engine.ticket(walk_in.id)
    assert plain is not None and (plain.booking_id, plain.booked_on_time) == ("", False)


async def test_on_time_bookings_go_ahead_of_walk_ins_by_their_time(q: Harness):
    long_wait = await q.join()
    await q.at(3600)  # waited an hour: more than any aging
    elderly = await q.join(priority=1)
    later = booked(q, q.clock() + 240)  # T in 4 minutes (an early check-in)
    sooner = booked(q, q.clock() + 60)  # checks in after `later`, its T comes first
    await q.engine.join(later)
    await q.engine.join(sooner)
    late = booked(q, q.clock(), on_time=False)  # after T + late: a walk-in, no priority
    await q.engine.join(late)
    positions = [(await q.engine.estimate(t.id))[0] for t in (sooner, later, long_wait)]
    assert positions == [1, 2, 3]
    for name in ("a1", "a2", "a3", "a4", "a5"):
        await q.agent(name)
    assert [t.id for _, _, t in q.events.offers] == [
        sooner.id, later.id, long_wait.id, elderly.id, late.id,
    ]  # fmt: skip
    offered = q.events.offers[0][2]
    assert offered.booking_id == sooner.booking_id


@pytest.mark.parametrize("book", [book_with(max_length=1)], indirect=True)
async def test_an_on_time_booking_is_not_refused_by_the_queue_length(q: Harness):
    await q.join()
    with pytest.raises(QueueRefusal):
        await q.join()
    t = booked(q, q.clock() + 60)
    await q.engine.join(t)  # its seat was planned
    assert (await q.engine.estimate(t.id))[0] == 1


async def test_a_held_ticket_keeps_its_place_away_and_is_offered_once_back(q: Harness):
    """A callback (docs/appointments.md): the ticket is not offered while held, a dropped
    connection does not abandon it, its place and wait stand; released, it is offered."""
    t = await q.join()
    behind = await q.join()
    await q.agent("a1", available=False)
    held = await q.engine.hold(t.id, t.taxpayer_id, True)
    assert held.held and (await q.engine.estimate(t.id))[0] == 1
    with pytest.raises(DomainError):
        await q.engine.hold(t.id, "someone-else", False)
    assert t.conn_id is not None
    await q.engine.taxpayer_dropped(t.taxpayer_id, t.conn_id)
    await q.at(3600)  # far past the connection grace
    assert q.events.left == []
    await q.engine.set_status("a1", "available")
    assert [tk.id for _, _, tk in q.events.offers] == [behind.id]  # not the held one
    await q.engine.accept("a1", q.events.last_offer("a1").id)
    assert (await q.engine.estimate(t.id))[0] == 1
    await q.engine.rejoin(t.id, t.taxpayer_id, "conn-back")
    assert len(q.events.offers) == 1  # back on the page, still held: not offered
    await q.agent("a2")
    assert len(q.events.offers) == 1
    released = await q.engine.hold(t.id, t.taxpayer_id, False)
    assert not released.held
    assert [tk.id for _, _, tk in q.events.offers] == [behind.id, t.id]


async def test_a_released_ticket_that_is_away_gets_the_connection_grace(q: Harness):
    t = await q.join()
    await q.engine.hold(t.id, t.taxpayer_id, True)
    assert t.conn_id is not None
    await q.engine.taxpayer_dropped(t.taxpayer_id, t.conn_id)
    await q.at(600)
    await q.engine.hold(t.id, t.taxpayer_id, False)  # the callback ended, nobody came back
    await q.at(30)
    assert q.events.left == []
    await q.at(31)  # the grace (60 s) from the release
    assert q.events.left == [(t.id, "disconnected")]


async def test_a_ticket_keeps_the_conversation_it_was_handed_off_from(q: Harness):
    """The assistant's hand-off (docs/assistant.md): the ticket carries its conversation id
    through the store to the agent's offer; a ticket without one has none."""
    handed = q.ticket()
    handed.consultation_id = "conv-1"
    await q.engine.join(handed)
    plain = await q.join()
    waiting = await q.engine.waiting_ticket(handed.taxpayer_id)
    assert waiting is not None and waiting.consultation_id == "conv-1"
    other = await q.engine.waiting_ticket(plain.taxpayer_id)
    assert other is not None and other.consultation_id is None
    await q.agent("a1")
    [(_, _, offered), *_] = q.events.offers
    assert offered.id == handed.id and offered.consultation_id == "conv-1"
