"""A signed-in world for the use-case tests: the registry imported from a small export, the
token issuer, the identity state, the sign-in use cases over them."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from tests.identity.numbers import passport, permit, resident_id, uscc_n
from vtax.app.identity import SmsPolicy, SmsSignIn, TaxpayerSignIn
from vtax.auth import TokenIssuer
from vtax.identity.importer import import_text
from vtax.identity.state import CodeLimits
from vtax.identity.tokens import TaxpayerTokens
from vtax.sms import LogSmsSender

TODAY = date(2026, 12, 3)
KEY = "k" * 40
ACME, BETA, OTHER = uscc_n(1), uscc_n(2), uscc_n(3)
WANG_PHONE, LEONG_PHONE, STRANGER_PHONE = "+8613800138000", "+85366123456", "+8613900139000"
EXPORT = "\n".join(
    (
        "name,document_type,document_number,phones,uscc,enterprise_name,role,valid_until",
        f"Wang Fang,resident_id,{resident_id()},{WANG_PHONE},{ACME},Acme Ltd,legal_representative,",
        f"Wang Fang,resident_id,{resident_id()},,{BETA},Beta Co,tax_handler,2026-12-31",
        f"Leong Mei,residence_permit,{permit('820000')},{LEONG_PHONE},{ACME},Acme Ltd,tax_handler,",
        f"Nobody Else,passport,{passport()},,{OTHER},Other Co,legal_representative,",
    )
)


@dataclass
class World:
    db: Any
    state: Any
    issuer: TokenIssuer
    tokens: TaxpayerTokens
    signin: TaxpayerSignIn
    sms: SmsSignIn
    sender: LogSmsSender
    clock: list[float]

    def code_sent_to(self, phone: str) -> str:
        texts = [t for p, t in self.sender.sent if p == phone]
        assert texts, f"no text to {phone}"
        found = re.search(r"(?<![0-9])[0-9]{6}(?![0-9])", texts[-1])
        assert found is not None
        return found.group(0)


async def make_world(db: Any, state: Any, today: list[date] | None = None, **limits: Any) -> World:
    report = await import_text(db.sessions, EXPORT, "csv", TODAY)
    assert report.ok, report.errors
    clock = [time.time()]
    days = today or [TODAY]
    issuer = TokenIssuer(KEY, 3600)
    tokens = TaxpayerTokens(
        issuer,
        db.registry,
        state,
        access_ttl_s=900,
        refresh_ttl_s=3600,
        today=lambda: days[0],
        clock=lambda: clock[0],
    )
    signin = TaxpayerSignIn(tokens, db.registry, step_up_acr=4, step_up_max_age_s=300)
    sender = LogSmsSender(logging.getLogger("test-sms"))
    policy = SmsPolicy(
        CodeLimits(
            ttl_s=limits.get("ttl_s", 300),
            resend_s=limits.get("resend_s", 0),
            window_s=3600,
            per_number=limits.get("per_number", 50),
            per_address=limits.get("per_address", 50),
        ),
        max_attempts=5,
        tries_per_address=limits.get("tries_per_address", 50),
    )
    sms = SmsSignIn(
        db.registry, state, sender, signin, secret=KEY, policy=policy, clock=lambda: clock[0]
    )
    return World(db, state, issuer, tokens, signin, sms, sender, clock)
