"""People's identity documents and phone numbers: shapes, check digits, and the key a person
is found by.

Documents (DESIGN.md, Domain facts):
- `resident_id`: the resident identity card (GB 11643-1999), birth date checked too.
- `residence_permit`: the residence permit for Hong Kong, Macau or Taiwan residents: the
  resident-ID format and check digit with address code 810000 / 820000 / 830000; its own type.
- `travel_permit`: the Mainland travel permit for Hong Kong and Macau residents (回乡证), `H` or
  `M` and 8 digits (old form) or 10 digits (new form: the 8 of the holder's lifelong number and
  2 of the card's issue). A person is keyed on the lifelong number (letter + 8 digits), so a
  renewed card is the same person.
- `passport`: a foreign passport, written `<issuing state, ISO 3166 alpha-3>:<number><MRZ check
  digit>` (ICAO 9303: weights 7, 3, 1; digits as themselves, A..Z as 10..35, `<` as 0), e.g.
  `UTO:L898902C36`. Keyed on state + number.

Phones: the verified numbers sign-in codes go to: mainland mobiles (+86 1[3-9]...), Hong Kong
(+852, 8 digits from 4..9) and Macau (+853 6xxxxxxx) mobiles, always stored as E.164.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from vtax.identity import InvalidIdentity, normalize, resident_id_check_char

DocumentType = Literal["resident_id", "residence_permit", "travel_permit", "passport"]
DOCUMENT_TYPES: tuple[str, ...] = get_args(DocumentType)

_RID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_PERMIT_REGIONS = {"81": "HK", "82": "MO", "83": "TW"}
_TRAVEL_RE = re.compile(r"^([HM])([0-9]{8})([0-9]{2})?$")
_PASSPORT_RE = re.compile(r"^([A-Z]{3}|D<<):([A-Z0-9]{1,9})([0-9])$")
_MRZ_WEIGHTS = (7, 3, 1)


@dataclass(frozen=True, slots=True)
class Document:
    """A validated document: `number` as written (normalized), `key` what the person is
    found by (equal for two cards of the same holder)."""

    type: DocumentType
    number: str
    key: str
    region: str = ""  # residence permit: HK/MO/TW; travel permit: H/M; passport: the state


def _birth_date_ok(digits: str) -> bool:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def _resident_format(number: str, what: str) -> None:
    if not _RID_RE.match(number):
        raise InvalidIdentity(f"a {what} number has 17 digits and a check digit or X")
    if not _birth_date_ok(number[6:14]):
        raise InvalidIdentity(f"the {what} number's birth date is not a date")
    if resident_id_check_char(number[:17]) != number[17]:
        raise InvalidIdentity(f"the {what} number's check digit is wrong")


def mrz_check_digit(field: str) -> str:
    """ICAO 9303's check digit of a machine-readable-zone field."""
    total = 0
    for i, c in enumerate(field):
        if c.isdigit():
            value = int(c)
        elif "A" <= c <= "Z":
            value = ord(c) - ord("A") + 10
        elif c == "<":
            value = 0
        else:
            raise InvalidIdentity(f"{c!r} cannot be in a machine-readable zone")
        total += value * _MRZ_WEIGHTS[i % 3]
    return str(total % 10)


def parse_document(doc_type: str, number: str) -> Document:
    """The validated document, or InvalidIdentity saying what is wrong."""
    n = normalize(number)
    if not n or len(n) > 40:
        raise InvalidIdentity("a document number has 1 to 40 characters")
    if doc_type == "resident_id":
        _resident_format(n, "resident ID")
        if n[:2] in _PERMIT_REGIONS:
            raise InvalidIdentity(
                "numbers from 810000, 820000 or 830000 are residence permits, not resident IDs"
            )
        return Document("resident_id", n, n)
    if doc_type == "residence_permit":
        _resident_format(n, "residence permit")
        if n[:6] not in ("810000", "820000", "830000"):
            raise InvalidIdentity(
                "a residence permit number starts with 810000 (Hong Kong), 820000 (Macau) "
                "or 830000 (Taiwan)"
            )
        return Document("residence_permit", n, n, _PERMIT_REGIONS[n[:2]])
    if doc_type == "travel_permit":
        m = _TRAVEL_RE.match(n)
        if m is None:
            raise InvalidIdentity(
                "a Mainland travel permit number is H or M and 8 digits (or 10 on the new card)"
            )
        return Document("travel_permit", n, m.group(1) + m.group(2), m.group(1))
    if doc_type == "passport":
        m = _PASSPORT_RE.match(n)
        if m is None:
            raise InvalidIdentity(
                "a passport is written STATE:NUMBER followed by its check digit "
                "(e.g. UTO:L898902C36): a 3-letter state code, up to 9 letters or digits"
            )
        state, doc, check = m.groups()
        if mrz_check_digit(doc.ljust(9, "<")) != check:
            raise InvalidIdentity("the passport number's check digit is wrong")
        return Document("passport", n, f"{state}:{doc}", state)
    raise InvalidIdentity(
        f"unknown document type {doc_type!r} (one of {', '.join(DOCUMENT_TYPES)})"
    )


# ---- phones -----------------------------------------------------------------------------------

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_MOBILES = {
    "86": re.compile(r"^1[3-9][0-9]{9}$"),
    "852": re.compile(r"^[4-9][0-9]{7}$"),
    "853": re.compile(r"^6[0-9]{7}$"),
}
PhoneRegion = Literal["CN", "HK", "MO"]
_REGION = {"86": "CN", "852": "HK", "853": "MO"}


class InvalidPhone(ValueError):
    """Not a mobile number sign-in codes can go to."""


def parse_phone(phone: str) -> str:
    """The number as E.164: `+8613800138000`, `+85291234567`, `+85366123456`. Spaces, dashes
    and a `00` prefix are accepted; 11 digits starting with 1 are a mainland mobile."""
    p = re.sub(r"[\s\-().]", "", phone)
    if p.startswith("00"):
        p = "+" + p[2:]
    if not p.startswith("+") and re.fullmatch(r"1[3-9][0-9]{9}", p):
        p = "+86" + p
    if not _E164.match(p):
        raise InvalidPhone("a phone number is + and a country code and up to 14 digits")
    for cc in ("852", "853", "86"):
        if p[1:].startswith(cc):
            if not _MOBILES[cc].match(p[1 + len(cc) :]):
                raise InvalidPhone(f"not a mobile number of +{cc}")
            return p
    raise InvalidPhone("only mainland (+86), Hong Kong (+852) and Macau (+853) mobiles")


def phone_region(e164: str) -> str:
    for cc in ("852", "853", "86"):
        if e164[1:].startswith(cc):
            return _REGION[cc]
    return ""
