"""Valid document numbers for the tests, made with the check-digit functions under test
(and pinned by the literal examples the standards publish, in test_documents.py)."""

from __future__ import annotations

from vtax.identity import USCC_ALPHABET, resident_id_check_char, uscc_check_char
from vtax.identity.documents import mrz_check_digit


def resident_id(first17: str = "11010519491231002") -> str:
    return first17 + resident_id_check_char(first17)


def permit(region: str = "810000", birth: str = "19900101", seq: str = "123") -> str:
    return resident_id(region + birth + seq)


def uscc(body: str = "91350100M000100Y4") -> str:
    assert all(c in USCC_ALPHABET for c in body)
    return body + uscc_check_char(body)


def passport(state: str = "UTO", number: str = "L898902C3") -> str:
    return f"{state}:{number}{mrz_check_digit(number.ljust(9, '<'))}"


def uscc_n(n: int) -> str:
    """The n-th of a family of distinct valid USCCs."""
    return uscc(f"91440300MA{n:07d}")
