"""`vtax simulate`: the real engine on a virtual clock, held to Erlang C on an M/M/c queue."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from signaling.cli import main
from vtax.simulate import SimConfig, Simulation, erlang_c, erlang_c_wait_s, format_report

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_erlang_c_formula():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)  # tables: 40.9 %
    assert erlang_c_wait_s(1, 6, 300) == pytest.approx(300.0)  # M/M/1, rho 0.5: W = rho/(mu-lam)
    assert erlang_c_wait_s(2, 30, 300) == math.inf  # 2.5 erlangs on 2 agents: unstable


@pytest.mark.slow
async def test_single_skill_poisson_mean_wait_is_within_5_percent_of_erlang_c():
    """M/M/2 at 50 % load, 100,000 tickets (seeded): the engine is a work-conserving FIFO
    dispatcher, so its mean wait must match Erlang C (100 s here)."""
    config = SimConfig.model_validate(
        {
            "seed": 1,
            "tickets": 100_000,
            "warmup_tickets": 1_000,
            "streams": [{"category": "invoices", "per_hour": 12, "handle_s": 300}],
            "agents": [{"count": 2, "skills": {"invoices": 3}}],
        }
    )
    report = await Simulation(config).run()
    ec = report["erlang_c"]
    assert ec["agents"] == 2 and ec["predicted_mean_wait_s"] == pytest.approx(100.0)
    assert ec["measured_mean_wait_s"] == pytest.approx(100.0, rel=0.05)
    invoices = report["queues"]["invoices"]
    assert invoices["answered"] == 99_000 and invoices["abandoned"] == 0
    assert invoices["occupancy"] == pytest.approx(0.5, rel=0.05)


def test_the_command_prints_per_queue_figures_and_a_progress_bar(tmp_path, capsys):
    text = (EXAMPLES / "simulate-province.toml").read_text()
    small = tmp_path / "province.toml"
    small.write_text(re.sub(r"(?m)^tickets = .*$", "tickets = 1500", text))
    assert main(["simulate", str(small)]) == 0
    out, err = capsys.readouterr()
    assert "simulating [" in err and "1500/1500 tickets" in err
    for name in ("invoices", "declarations", "registration"):
        assert re.search(rf"(?m)^{name}\s+\d+\s+\d+", out), out
    assert "Erlang C" not in out  # several skills: no M/M/c prediction


def test_the_mmc_example_prints_the_erlang_c_prediction(tmp_path, capsys):
    text = (EXAMPLES / "simulate-mmc.toml").read_text()
    small = tmp_path / "mmc.json.toml"
    small.write_text(re.sub(r"(?m)^tickets = .*$", "tickets = 3000", text))
    assert main(["simulate", str(small), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert re.search(r"Erlang C \(M/M/10\): predicted mean wait 61\.\d\d s, measured", out)


def test_a_bad_config_is_refused_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("tickets = -1\nstreams = []\nagents = []\n")
    assert main(["simulate", str(bad)]) == 2
    assert "tickets" in capsys.readouterr().err


async def test_bookings_go_ahead_and_take_from_the_walk_ins_service_level():
    """Appointments in the simulation: the same walk-ins (same seed) wait longer when half or
    all of the slots' seats are booked; on-time bookings, ahead of them, wait less; every
    booking is counted once (no-show, on time or late) and every one that came is served."""

    def config(share: float) -> SimConfig:
        return SimConfig.model_validate(
            {
                "seed": 3,
                "tickets": 3000,
                "warmup_tickets": 100,
                "streams": [{"category": "invoices", "per_hour": 16, "handle_s": 300}],
                "agents": [{"count": 3, "skills": {"invoices": 3}}],
                "bookings": [
                    {"category": "invoices", "slot_s": 1800, "seats": 4,
                     "booked_share": share, "no_show_rate": 0.1}
                ],
            }
        )  # fmt: skip

    runs = {share: await Simulation(config(share)).run() for share in (0.0, 1.0)}
    none, full = runs[0.0], runs[1.0]
    assert none["bookings"]["invoices"]["booked"] == 0
    walk_in, booked = full["queues"]["invoices"], full["bookings"]["invoices"]
    assert walk_in["asa_s"] > none["queues"]["invoices"]["asa_s"] * 1.5
    assert walk_in["service_level"] < none["queues"]["invoices"]["service_level"]
    assert booked["asa_s"] < walk_in["asa_s"]
    assert booked["booked"] == (
        booked["no_show"] + booked["checked_in_on_time"] + booked["checked_in_late"]
    )
    assert booked["answered"] == booked["arrived"] > 0
    assert 0.05 < booked["no_show"] / booked["booked"] < 0.15
    assert "erlang_c" not in full
    text = format_report(full)
    assert "appointments" in text and re.search(r"(?m)^invoices\s+\d+\s+\d+\s+\d+", text)


def test_the_appointments_example_runs(tmp_path, capsys):
    text = (EXAMPLES / "simulate-appointments.toml").read_text()
    small = tmp_path / "appointments.toml"
    small.write_text(re.sub(r"(?m)^tickets = .*$", "tickets = 500", text))
    assert main(["simulate", str(small)]) == 0
    out, _ = capsys.readouterr()
    assert "appointments (wait counted from T" in out
