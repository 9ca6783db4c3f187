"""The estimated MOS (simplified E-model), the levels and the session summary: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vtax.review.call_quality import Sample, estimated_mos, level_of, r_factor, summarise

T0 = datetime(2030, 1, 2, 3, 0, tzinfo=UTC)


def test_the_e_model_simplification_at_known_points():
    # d = 20 + 0 + 10 = 30 ms: R = 93.2 - 30/40 = 92.45
    assert r_factor(40.0) == 92.45
    # d = 150 + 2*25 + 10 = 210 ms (>= 160): R = 93.2 - (210 - 120)/10 = 84.2, then 2.5 per %
    assert round(r_factor(300.0, 25.0, 4.0), 6) == round(84.2 - 10.0, 6)
    assert r_factor(10_000.0, 1000.0, 100.0) == 0.0  # clamped
    assert estimated_mos(40.0) == 4.39  # 1 + 0.035 R + 7e-6 R (R - 60)(100 - R)
    assert estimated_mos(None, 5.0, 1.0) is None  # not connected yet
    assert estimated_mos(0.0) == estimated_mos(0.0, None, None)
    # worse network, lower MOS; never outside 1..4.5
    values = [estimated_mos(rtt, rtt / 10, rtt / 50) for rtt in (20, 100, 200, 400, 800, 2000)]
    assert values == sorted(values, reverse=True)
    assert all(1.0 <= v <= 4.5 for v in values if v is not None)


def test_levels():
    assert [level_of(m) for m in (4.41, 4.0, 3.99, 3.6, 3.59, 1.0, None)] == [
        "good", "good", "fair", "fair", "poor", "poor", None,
    ]  # fmt: skip


def s(seconds: float, mos: float | None, role: str = "agent", **figures: float | None) -> Sample:
    return Sample(role, T0 + timedelta(seconds=seconds), mos, figures)


def test_summary_medians_and_the_worst_minute():
    assert summarise([]) is None
    samples = [
        s(0, 4.4, rtt_ms=40.0),
        s(30, 4.2, "taxpayer", rtt_ms=80.0),
        s(61, 3.0, rtt_ms=500.0),
        s(119, 3.4, "taxpayer", rtt_ms=400.0),
        s(121, 4.0, rtt_ms=60.0),
        s(5, None),  # before the call connected: counted, not scored
    ]
    out = summarise(samples)
    assert out is not None
    assert out["samples"] == 6 and out["by_role"] == {"agent": 4, "taxpayer": 2}
    assert out["mos_median"] == 4.0 and out["mos_min"] == 3.0 and out["level"] == "good"
    assert out["worst_minute"] == {
        "minute": 1,
        "at": (T0 + timedelta(minutes=1)).isoformat(),
        "mos": 3.2,
        "samples": 2,
    }
    assert out["rtt_ms_median"] == 80.0 and out["jitter_ms_median"] is None
    assert out["poor_share"] == 0.4
    assert out["first_at"] == T0.isoformat()


def test_the_earliest_of_equally_bad_minutes_is_the_worst():
    out = summarise([s(0, 3.0), s(60, 4.4), s(120, 3.0)])
    assert out is not None and out["worst_minute"]["minute"] == 0
