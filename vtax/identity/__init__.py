"""Taxpayer identity numbers: check-digit validation for the two identity documents.

- Unified social credit code (USCC, GB 32100-2015) for organisations.
- Resident identity card number (GB 11643-1999) for people.
"""

from __future__ import annotations

import re
from typing import Literal

IdType = Literal["uscc", "resident_id"]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 3^(i-1) mod 31 for i = 1..17
_USCC_RE = re.compile(f"^[{USCC_ALPHABET}]{{18}}$")

_RID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]  # 2^(18-i) mod 11 for i = 1..17
_RID_CHECK = "10X98765432"
_RID_RE = re.compile(r"^[0-9]{17}[0-9X]$")


class InvalidIdentity(ValueError):
    """The number has the wrong shape or a wrong check character."""


def normalize(id_number: str) -> str:
    """Strip spaces and upper-case: what people type on a kiosk keyboard."""
    return "".join(id_number.split()).upper()


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def resident_id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK[total % 11]


def validate(id_type: IdType, id_number: str) -> str:
    """Return the normalized number, or raise InvalidIdentity saying what is wrong."""
    number = normalize(id_number)
    if id_type == "uscc":
        if not _USCC_RE.match(number):
            raise InvalidIdentity(
                "a unified social credit code has 18 characters from "
                f"{USCC_ALPHABET} (no I, O, S, V, Z)"
            )
        if uscc_check_char(number[:17]) != number[17]:
            raise InvalidIdentity("the unified social credit code's check character is wrong")
        return number
    if id_type == "resident_id":
        if not _RID_RE.match(number):
            raise InvalidIdentity("a resident ID number has 17 digits and a check digit or X")
        if resident_id_check_char(number[:17]) != number[17]:
            raise InvalidIdentity("the resident ID number's check digit is wrong")
        return number
    raise InvalidIdentity(f"unknown identity type {id_type!r}")


def mask(id_number: str) -> str:
    """Show only the first 4 and last 4 characters, as on printed receipts."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]
