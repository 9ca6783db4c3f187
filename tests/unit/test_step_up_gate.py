"""The step-up gate (vtax/app/step_up.py): level and freshness, on a fake clock; each refusal
audited; staff pass (they have their own second factor)."""

from __future__ import annotations

from typing import Any

import pytest

from vtax.app.ports import Caller
from vtax.app.step_up import StepUpGate, StepUpNeeded

NOW = 1_800_000_000.0


def gate(rows: list[Any]) -> StepUpGate:
    async def audit(kind: str, subject: str, actor: Any, data: dict[str, object]) -> None:
        rows.append((kind, subject, actor, data))

    return StepUpGate(4, 300, audit=audit, clock=lambda: NOW)


def taxpayer(acr: int, age_s: float | None) -> Caller:
    return Caller("p1", "taxpayer", acr=acr, auth_time=0.0 if age_s is None else NOW - age_s)


async def test_fresh_and_high_passes():
    rows: list[Any] = []
    await gate(rows).require(taxpayer(4, 10), "queue:join", "invoices.invoice_collection")
    await gate(rows).require(taxpayer(5, 300), "delivery_ack", "d1")
    await gate(rows).require(Caller("a1", "agent"), "delivery_ack", "d1")
    assert rows == []


@pytest.mark.parametrize(
    ("acr", "age_s"),
    [(3, 1), (4, 301), (5, 3600), (4, None), (0, None)],  # SMS, stale, stale, none, legacy
)
async def test_low_or_stale_is_refused_and_audited(acr: int, age_s: float | None):
    rows: list[Any] = []
    with pytest.raises(StepUpNeeded) as e:
        await gate(rows).require(taxpayer(acr, age_s), "delivery_ack", "d1")
    assert e.value.code == "step_up_required"
    assert e.value.as_dict()["step_up"] == {"acr": 4, "max_age_s": 300}
    [(kind, subject, actor, data)] = rows
    assert (kind, subject, actor) == ("step_up_required", "p1", ("taxpayer", "p1"))
    assert data["action"] == "delivery_ack" and data["target"] == "d1" and data["acr"] == acr
