"""Step-up: risky business items (catalog flag `step_up`) and signing a delivery receipt need
a fresh high-level sign-in, not only the session's (docs/identity.md, "Step-up").

The gate reads the caller's token facts (`acr`, `auth_time`): at least `acr` (4, a live person
matched) and at most `max_age_s` old. An SMS sign-in (level 3) never passes. Each refusal is a
row `step_up_required` of the identity audit, so the audit shows who was asked and for what."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from vtax.app.ports import Caller
from vtax.errors import DomainError


class Audit(Protocol):
    def __call__(
        self, kind: str, subject: str, actor: tuple[str, str | None], data: dict[str, object]
    ) -> Awaitable[None]: ...


class StepUpNeeded(DomainError):
    """`step_up_required`, with what a fresh sign-in must reach (`step_up` in the error)."""

    def __init__(self, acr: int, max_age_s: int) -> None:
        super().__init__(
            "step_up_required",
            f"this needs a sign-in at level {acr} within the last {max_age_s} s: verify again",
        )
        self.acr, self.max_age_s = acr, max_age_s

    def as_dict(self) -> dict[str, object]:  # type: ignore[override]
        return {**super().as_dict(), "step_up": {"acr": self.acr, "max_age_s": self.max_age_s}}


class StepUpGate:
    """`require(caller, action, target)` before a risky step; `None` audit: no rows."""

    def __init__(
        self,
        acr: int = 4,
        max_age_s: int = 300,
        audit: Audit | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.acr, self.max_age_s, self.audit, self.clock = acr, max_age_s, audit, clock

    def fresh(self, caller: Caller) -> bool:
        age = self.clock() - caller.auth_time
        return caller.acr >= self.acr and caller.auth_time > 0 and age <= self.max_age_s

    async def require(self, caller: Caller, action: str, target: str) -> None:
        """Raise `StepUpNeeded` (audited) unless the caller's sign-in is high and fresh."""
        if caller.role != "taxpayer" or self.fresh(caller):
            return
        if self.audit is not None:
            age = round(self.clock() - caller.auth_time) if caller.auth_time > 0 else None
            await self.audit(
                "step_up_required",
                caller.subject,
                ("taxpayer", caller.subject),
                {"action": action, "target": target[:64], "acr": caller.acr, "age_s": age},
            )
        raise StepUpNeeded(self.acr, self.max_age_s)
