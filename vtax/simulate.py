"""`vtax simulate CONFIG`: the real queue engine, driven by a virtual clock.

Arrivals (Poisson per stream), handle times (exponential), patience (exponential, optional),
agents with skills and languages, and the agents' answer behaviour come from a TOML or JSON
file (see examples/simulate-*.toml). The clock jumps from event to event: the next arrival,
answer, hang-up, abandonment, or the engine's next timer (offer expiry, wrap-up, escalation),
so a day of traffic takes seconds. It prints, per queue, service level, ASA, abandonment and
occupancy; with one stream and every agent able to serve it, it prints the Erlang C mean
wait of that M/M/c queue beside the measured one.

Appointments (`bookings`, docs/appointments.md): slots of a category at a fixed interval, a
share of their seats booked, a no-show rate, and check-ins scattered around T; a booking
checked in inside [T - early, T + late] joins ahead of the walk-ins of its line with its wait
counted from T, a later one as a walk-in. Bookings and walk-ins are reported apart, so a
supervisor sees what a share of booked slots does to the walk-ins' service level.

One module (~550 lines) on purpose: the event loop of the simulation, its arrival streams
and its report are one program around one virtual clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import math
import random
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from vtax.appointments.timing import TimingRules, queue_entry, verdict
from vtax.errors import DomainError
from vtax.queue import AgentState, Offer, QueueBook, QueueEngine, Ticket
from vtax.queue.memory import MemoryKV
from vtax.queue.model import BOOKED_PRIORITY, PRIORITY_CLASSES

START = 1_800_000_000.0  # a fixed day, so runs repeat exactly


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stream(_Model):
    """Poisson arrivals of one kind of request."""

    category: str
    language: str = "zh-CN"
    per_hour: Annotated[float, Field(gt=0)]
    handle_s: Annotated[float, Field(gt=0)] = 300.0  # mean talk time, exponential
    patience_s: Annotated[float, Field(gt=0)] | None = None  # mean, exponential; None: waits
    priority: dict[str, float] = {}  # class -> share, e.g. {elderly = 0.1}


class BookingStream(_Model):
    """Appointments of one category: a slot every `slot_s` from the start, `seats` each, a
    share of them booked; a booked taxpayer does not come (`no_show_rate`) or checks in at
    T + a normal offset (mean, sd; before T - early the page waits for the window)."""

    category: str
    language: str = "zh-CN"
    slot_s: Annotated[float, Field(gt=0)] = 1800.0
    seats: Annotated[int, Field(ge=1, le=1000)] = 1
    booked_share: Annotated[float, Field(ge=0, le=1)] = 1.0
    no_show_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    checkin_offset_mean_s: float = -120.0
    checkin_offset_sd_s: Annotated[float, Field(ge=0)] = 180.0
    handle_s: Annotated[float, Field(gt=0)] = 300.0
    early_s: Annotated[float, Field(ge=0)] = 600.0
    late_s: Annotated[float, Field(ge=0)] = 600.0
    grace_s: Annotated[float, Field(ge=0)] = 900.0


class AgentGroup(_Model):
    count: Annotated[int, Field(ge=1, le=10_000)]
    skills: dict[str, Annotated[int, Field(ge=1, le=5)]]
    languages: list[str] = ["zh-CN"]
    answer_s: Annotated[float, Field(ge=0)] = 0.0  # time to accept an offer
    miss_rate: Annotated[float, Field(ge=0, le=1)] = 0.0  # offers left to expire
    back_after_s: Annotated[float, Field(gt=0)] = 120.0  # away (missed offers) this long


class SimConfig(_Model):
    seed: int = 1
    tickets: Annotated[int, Field(ge=1)] = 10_000
    warmup_tickets: Annotated[int, Field(ge=0)] = 0  # left out of the figures
    offer_timeout_s: Annotated[float, Field(gt=0)] = 15.0
    wrapup_s: Annotated[float, Field(ge=0)] = 0.0
    streams: list[Stream]
    agents: list[AgentGroup]
    bookings: list[BookingStream] = []
    routing: QueueBook = QueueBook()

    @classmethod
    def load(cls, path: Path) -> SimConfig:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return cls.model_validate(data)


@dataclass
class QueueFigures:
    arrived: int = 0
    refused: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    wait_sum: float = 0.0
    wait_sq_sum: float = 0.0
    handle_sum: float = 0.0
    waits: list[float] = field(default_factory=list)
    # bookings only
    booked: int = 0
    no_show: int = 0
    on_time: int = 0  # checked in inside the window: ahead of walk-ins
    walk_in: int = 0  # checked in after T + late: joined as walk-ins

    def booking_row(self, sl_s: float) -> dict[str, Any]:
        row = self.row(sl_s, 0.0)
        del row["occupancy"]
        return row | {
            "booked": self.booked,
            "no_show": self.no_show,
            "checked_in_on_time": self.on_time,
            "checked_in_late": self.walk_in,
        }

    def row(self, sl_s: float, agent_seconds: float) -> dict[str, Any]:
        finished = self.answered + self.abandoned
        return {
            "arrived": self.arrived,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "refused": self.refused,
            "service_level": self.answered_in_sl / self.answered if self.answered else None,
            "service_level_s": sl_s,
            "asa_s": self.wait_sum / self.answered if self.answered else None,
            "abandonment_rate": self.abandoned / finished if finished else None,
            "occupancy": self.handle_sum / agent_seconds if agent_seconds else None,
        }


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability of waiting in an M/M/c queue (Erlang C), computed stably."""
    if offered_erlangs >= servers:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k!, summed for k < c
    for k in range(1, servers):
        term *= offered_erlangs / k
        total += term
    last = term * offered_erlangs / servers * servers / (servers - offered_erlangs)
    return last / (total + last)


def erlang_c_wait_s(servers: int, per_hour: float, handle_s: float) -> float:
    """Mean wait of an M/M/c queue: C(c, a) / (c * mu - lambda)."""
    lam, mu = per_hour / 3600.0, 1.0 / handle_s
    a = lam / mu
    if a >= servers:
        return math.inf
    return erlang_c(servers, a) / (servers * mu - lam)


class _Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Simulation:
    """One run: the engine on a fresh in-memory backend, and the world around it."""

    def __init__(self, config: SimConfig, progress: TextIO | None = None) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.clock = _Clock()
        self.progress = progress
        categories = sorted(
            {s.category for s in config.streams} | {b.category for b in config.bookings}
        )
        self.engine = QueueEngine(
            self,
            kv=MemoryKV(clock=self.clock),
            book=config.routing,
            categories=categories,
            offer_timeout_s=config.offer_timeout_s,
            wrapup_s=config.wrapup_s,
            handle_s=sum(s.handle_s for s in config.streams) / len(config.streams),
            update_interval_s=1e9,  # nobody to push positions to
            clock=self.clock,
        )
        self._events: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self.figures: dict[str, QueueFigures] = defaultdict(QueueFigures)
        self._stream_of: dict[str, Stream] = {}
        self._group_of: dict[str, AgentGroup] = {}
        self._arrivals = 0
        self._counted: set[str] = set()  # tickets past the warm-up
        self.booking_figures: dict[str, QueueFigures] = defaultdict(QueueFigures)
        self._booking_of: dict[str, tuple[BookingStream, float]] = {}  # ticket -> (stream, T)
        self._slots = 0

    def _at(self, when: float, kind: str, data: Any) -> None:
        heapq.heappush(self._events, (when, next(self._seq), kind, data))

    # ---- QueueEvents: what the engine tells the agents and taxpayers -------------------

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        group = self._group_of[agent.id]
        if self.rng.random() < group.miss_rate:
            return  # never answered: the engine's expiry timer takes over
        self._at(self.clock.now + group.answer_s, "accept", (agent.id, offer.id))

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        return None

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        return None

    async def queue_left(self, ticket: Ticket, reason: str, at: float) -> None:
        if ticket.id in self._counted:
            self._figures_of(ticket).abandoned += 1

    def _figures_of(self, ticket: Ticket) -> QueueFigures:
        if ticket.booking_id:
            return self.booking_figures[ticket.category]
        return self.figures[ticket.category]

    async def agent_status(self, agent: AgentState) -> None:
        if agent.status == "away" and agent.reason == "missed_offers":
            back = self.clock.now + self._group_of[agent.id].back_after_s
            self._at(back, "back", agent.id)

    async def queue_stats(self, stats: dict[str, Any]) -> None:
        return None

    # ---- the run -----------------------------------------------------------------------

    async def _setup(self) -> None:
        n = 0
        for group in self.config.agents:
            for _ in range(group.count):
                n += 1
                agent_id = f"agent-{n:05d}"
                self._group_of[agent_id] = group
                profile = AgentState(
                    agent_id, agent_id, dict(group.skills), frozenset(group.languages)
                )
                await self.engine.agent_online(profile, "sim")
                await self.engine.set_status(agent_id, "available")
        for index, stream in enumerate(self.config.streams):
            self._at(self.clock.now + self._exp(3600.0 / stream.per_hour), "arrive", index)
        for index, b in enumerate(self.config.bookings):
            self._at(self.clock.now, "slot", (index, self.clock.now + b.slot_s))

    def _walk_ins_done(self) -> bool:
        return self._arrivals >= self.config.tickets

    async def _slot(self, index: int, t: float) -> None:
        """A slot at T = `t` (seen ahead of time): its booked taxpayers' check-ins."""
        b = self.config.bookings[index]
        if not self._walk_ins_done():
            self._at(self.clock.now + b.slot_s, "slot", (index, t + b.slot_s))
        counted = self._arrivals > self.config.warmup_tickets
        f = self.booking_figures[b.category]
        for _ in range(b.seats):
            if self.rng.random() >= b.booked_share:
                continue
            if counted:
                f.booked += 1
            if self.rng.random() < b.no_show_rate:
                if counted:
                    f.no_show += 1
                continue
            at = t + self.rng.gauss(b.checkin_offset_mean_s, b.checkin_offset_sd_s)
            at = max(at, t - b.early_s, self.clock.now)  # before the window the page waits
            self._at(at, "check_in", (index, t, counted))

    async def _check_in(self, index: int, t: float, counted: bool) -> None:
        b = self.config.bookings[index]
        rules = TimingRules(early_s=b.early_s, late_s=b.late_s, grace_s=b.grace_s)
        v = verdict(self.clock.now, t, rules)
        f = self.booking_figures[b.category]
        if v not in ("on_time", "walk_in"):
            if counted:
                f.no_show += 1
            return
        entry = queue_entry(v, self.clock.now, t)
        self._slots += 1
        n = self._slots
        ticket = Ticket(
            id=f"b{n}",
            session_id=f"bs{n}",
            taxpayer_id=f"btp{n}",
            category=b.category,
            language=b.language,
            channel="web",
            question="",
            joined_at=entry.joined_at,
            priority=BOOKED_PRIORITY if entry.on_time else 0,
            conn_id="sim",
            booking_id=f"booking-{n}",
            booked_on_time=entry.on_time,
        )
        self._booking_of[ticket.id] = (b, entry.joined_at)
        if counted:
            self._counted.add(ticket.id)
            f.arrived += 1
            if entry.on_time:
                f.on_time += 1
            else:
                f.walk_in += 1
        try:
            await self.engine.join(ticket)
        except DomainError:
            if counted:
                f.refused += 1

    def _exp(self, mean: float) -> float:
        return self.rng.expovariate(1.0 / mean)

    async def _arrive(self, index: int) -> None:
        stream = self.config.streams[index]
        self._arrivals += 1
        n = self._arrivals
        if n < self.config.tickets:
            self._at(self.clock.now + self._exp(3600.0 / stream.per_hour), "arrive", index)
        roll, priority = self.rng.random(), 0
        for name, share in stream.priority.items():
            roll -= share
            if roll < 0:
                priority = PRIORITY_CLASSES[name]
                break
        ticket = Ticket(
            id=f"t{n}",
            session_id=f"s{n}",
            taxpayer_id=f"tp{n}",
            category=stream.category,
            language=stream.language,
            channel="web",
            question="",
            joined_at=self.clock.now,
            priority=priority,
            conn_id="sim",
        )
        self._stream_of[ticket.id] = stream
        counted = n > self.config.warmup_tickets
        if counted:
            self._counted.add(ticket.id)
            self.figures[stream.category].arrived += 1
        try:
            await self.engine.join(ticket)
        except DomainError:
            if counted:
                self.figures[stream.category].refused += 1
            return
        if stream.patience_s is not None:
            self._at(self.clock.now + self._exp(stream.patience_s), "abandon", ticket.id)

    async def _accept(self, agent_id: str, offer_id: str) -> None:
        try:
            ticket = await self.engine.accept(agent_id, offer_id)
        except DomainError:
            return  # the taxpayer left or the offer expired meanwhile
        if ticket.booking_id:
            talk = self._exp(self._booking_of.pop(ticket.id)[0].handle_s)
        else:
            talk = self._exp(self._stream_of.pop(ticket.id).handle_s)
        if ticket.id in self._counted:
            f = self._figures_of(ticket)
            waited = max(self.clock.now - ticket.joined_at, 0.0)  # a booking from T
            f.answered += 1
            f.answered_in_sl += waited <= self.config.routing.of(ticket.category).service_level_s
            f.wait_sum += waited
            f.waits.append(waited)
            f.handle_sum += talk + self.config.wrapup_s
        self._at(self.clock.now + talk, "hangup", agent_id)

    async def _abandon(self, ticket_id: str) -> None:
        ticket = await self.engine.ticket(ticket_id)
        if ticket is not None and ticket.offer_id is None:
            await self.engine.leave(ticket_id)

    async def run(self) -> dict[str, Any]:
        await self._setup()
        handlers: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "arrive": self._arrive,
            "accept": lambda data: self._accept(*data),
            "hangup": self.engine.session_ended,
            "abandon": self._abandon,
            "back": lambda agent_id: self.engine.set_status(agent_id, "available"),
            "slot": lambda data: self._slot(*data),
            "check_in": lambda data: self._check_in(*data),
        }
        started = time.monotonic()
        last_draw = 0.0
        while self._events:
            due = await self.engine.next_due()
            when = self._events[0][0]
            if due is not None and due <= when:
                self.clock.now = max(self.clock.now, due)
                await self.engine.fire_due()
                continue
            when, _, kind, data = heapq.heappop(self._events)
            self.clock.now = when
            await handlers[kind](data)
            if self.progress is not None and time.monotonic() - last_draw > 0.2:
                last_draw = time.monotonic()
                self._draw(started)
        # Drain the engine's own timers (wrap-ups) after the last event.
        while (due := await self.engine.next_due()) is not None and due < self.clock.now + 1e6:
            self.clock.now = max(self.clock.now, due)
            if not await self.engine.fire_due():
                break
        if self.progress is not None:
            self._draw(started)
            self.progress.write("\n")
        return self.report()

    def _draw(self, started: float) -> None:
        assert self.progress is not None
        total = self.config.tickets
        done = min(self._arrivals, total)
        width = 30
        filled = int(width * done / total)
        rate = done / max(time.monotonic() - started, 1e-9)
        self.progress.write(
            f"\rsimulating [{'#' * filled}{'.' * (width - filled)}] "
            f"{done}/{total} tickets, {rate:,.0f}/s, day {(self.clock.now - START) / 86400:.2f}"
        )
        self.progress.flush()

    def report(self) -> dict[str, Any]:
        span = self.clock.now - START
        queues: dict[str, Any] = {}
        for category, f in sorted(self.figures.items()):
            skilled = sum(g.count for g in self.config.agents if category in g.skills)
            sl = self.config.routing.of(category).service_level_s
            queues[category] = f.row(sl, skilled * span)
            booked = self.booking_figures.get(category)
            if booked is not None and skilled and span:  # the agents served both
                queues[category]["occupancy"] = (f.handle_sum + booked.handle_sum) / (
                    skilled * span
                )
        out: dict[str, Any] = {"simulated_s": round(span, 1), "queues": queues}
        if self.config.bookings:
            out["bookings"] = {
                category: f.booking_row(self.config.routing.of(category).service_level_s)
                for category, f in sorted(self.booking_figures.items())
            }
        prediction = self.erlang_c_prediction()
        if prediction is not None:
            stream = self.config.streams[0]
            f = self.figures[stream.category]
            measured = f.wait_sum / f.answered if f.answered else None
            out["erlang_c"] = {
                "agents": prediction[0],
                "predicted_mean_wait_s": prediction[1],
                "measured_mean_wait_s": measured,
            }
        return out

    def erlang_c_prediction(self) -> tuple[int, float] | None:
        """(agents, mean wait) when the run is an M/M/c queue: one stream, no abandonment,
        every agent able to serve it at once, no wrap-up, no misses or answer delay."""
        if len(self.config.streams) != 1 or self.config.bookings:
            return None
        stream = self.config.streams[0]
        if stream.patience_s is not None or self.config.wrapup_s:
            return None
        groups = self.config.agents
        if any(
            stream.category not in g.skills
            or stream.language not in g.languages
            or g.answer_s
            or g.miss_rate
            for g in groups
        ):
            return None
        agents = sum(g.count for g in groups)
        return agents, erlang_c_wait_s(agents, stream.per_hour, stream.handle_s)


def format_report(report: dict[str, Any]) -> str:
    lines = [f"simulated {report['simulated_s'] / 3600:.1f} h"]
    header = (
        f"{'queue':<16}{'arrived':>9}{'answered':>9}{'abandon':>9}{'refused':>9}"
        f"{'SL':>8}{'ASA s':>9}{'aband.%':>9}{'occup.%':>9}"
    )
    lines.append(header)

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    for name, q in report["queues"].items():
        asa = "-" if q["asa_s"] is None else f"{q['asa_s']:.1f}"
        lines.append(
            f"{name:<16}{q['arrived']:>9}{q['answered']:>9}{q['abandoned']:>9}{q['refused']:>9}"
            f"{pct(q['service_level']):>7}%{asa:>9}{pct(q['abandonment_rate']):>9}"
            f"{pct(q['occupancy']):>9}"
        )
    bookings = report.get("bookings")
    if bookings:
        lines.append("appointments (wait counted from T; on time: ahead of walk-ins)")
        lines.append(
            f"{'queue':<16}{'booked':>9}{'no-show':>9}{'on time':>9}{'late':>9}"
            f"{'answered':>9}{'SL':>8}{'ASA s':>9}"
        )
        for name, q in bookings.items():
            asa = "-" if q["asa_s"] is None else f"{q['asa_s']:.1f}"
            lines.append(
                f"{name:<16}{q['booked']:>9}{q['no_show']:>9}{q['checked_in_on_time']:>9}"
                f"{q['checked_in_late']:>9}{q['answered']:>9}{pct(q['service_level']):>7}%"
                f"{asa:>9}"
            )
    lines.append("SL: answered within each queue's service_level_s (default 60 s) / answered")
    ec = report.get("erlang_c")
    if ec is not None:
        measured = ec["measured_mean_wait_s"]
        diff = (
            f" ({100 * (measured / ec['predicted_mean_wait_s'] - 1):+.1f} %)"
            if measured is not None and ec["predicted_mean_wait_s"] not in (0, math.inf)
            else ""
        )
        lines.append(
            f"Erlang C (M/M/{ec['agents']}): predicted mean wait "
            f"{ec['predicted_mean_wait_s']:.2f} s, measured {measured:.2f} s{diff}"
        )
    return "\n".join(lines)


def simulate(path: Path, *, progress: bool = True, as_json: bool = False) -> int:
    """Run a simulation file and print its report; the exit status of `vtax simulate`."""
    try:
        config = SimConfig.load(path)
    except (OSError, ValueError) as exc:
        print(f"vtax simulate: {path}: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(Simulation(config, sys.stderr if progress else None).run())
    print(json.dumps(report, indent=2) if as_json else format_report(report))
    return 0
