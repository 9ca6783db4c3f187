"""The supervisor's quality-review form: scored items, each from 0 to its maximum."""

from __future__ import annotations

from typing import Any

from vtax.errors import DomainError

QUALITY_FORM: tuple[dict[str, Any], ...] = (
    {"code": "greeting", "label": "Greeting and identity check", "max": 10},
    {"code": "accuracy", "label": "Correct tax policy and procedure", "max": 30},
    {"code": "completeness", "label": "The matter fully handled or clearly followed up", "max": 20},
    {"code": "communication", "label": "Clear, patient, in the taxpayer's language", "max": 20},
    {"code": "compliance", "label": "Privacy and recording rules kept", "max": 10},
    {"code": "record", "label": "Summary matches what happened", "max": 10},
)
MAX_TOTAL = sum(item["max"] for item in QUALITY_FORM)


def score_form(scores: dict[str, int]) -> int:
    """Check a filled form (every item, each within its range); return the total."""
    maxima = {item["code"]: item["max"] for item in QUALITY_FORM}
    unknown = sorted(set(scores) - set(maxima))
    missing = sorted(set(maxima) - set(scores))
    if unknown or missing:
        parts = [f"unknown items: {', '.join(unknown)}"] if unknown else []
        parts += [f"missing items: {', '.join(missing)}"] if missing else []
        raise DomainError("invalid_payload", "; ".join(parts))
    for code, value in scores.items():
        if not 0 <= value <= maxima[code]:
            raise DomainError("invalid_payload", f"{code} must be between 0 and {maxima[code]}")
    return sum(scores.values())
