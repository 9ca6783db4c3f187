"""Text messages to phones: one interface, an HTTP sender for production and a log sender for
the embedded default (the demo reads sign-in codes and reminders from the server log).

Callers (one-time sign-in codes, appointment reminders) compose the text; a sender only
delivers it. Numbers are E.164 (`+8613800138000`, `+85291234567`, `+85366123456`)."""

from __future__ import annotations

import logging
import re
from typing import Protocol

import aiohttp

log = logging.getLogger(__name__)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class SmsError(Exception):
    """The message could not be handed to the SMS gateway (the caller may retry)."""


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None:
        """Deliver `text` to `phone` (E.164) or raise SmsError."""
        ...


def masked(phone: str) -> str:
    """`+86138****8000`: enough to tell numbers apart in a log, not enough to call one."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:6] + "*" * (len(phone) - 10 if len(phone) > 10 else 4) + phone[-4:]


def check_phone(phone: str) -> str:
    if not E164.match(phone):
        raise SmsError(f"not an E.164 phone number: {masked(phone)!r}")
    return phone


class LogSmsSender:
    """Writes each message to the server log (the embedded default and the demo)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self.sent: list[tuple[str, str]] = []  # the last messages, for `vtax serve --demo`

    async def send(self, phone: str, text: str) -> None:
        check_phone(phone)
        self.sent.append((phone, text))
        del self.sent[:-100]
        self.log.warning("SMS to %s (log sender, not sent): %s", masked(phone), text)


class HttpSmsSender:
    """POSTs `{"to": phone, "text": text}` as JSON to the gateway's URL with a bearer token;
    any status other than 2xx, or no answer within the timeout, is an SmsError."""

    def __init__(self, url: str, token: str = "", timeout_s: float = 10.0) -> None:
        self.url, self.token = url, token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, phone: str, text: str) -> None:
        check_phone(phone)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as http,
                http.post(self.url, json={"to": phone, "text": text}, headers=headers) as r,
            ):
                if not 200 <= r.status < 300:
                    raise SmsError(f"the SMS gateway answered {r.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SmsError(f"the SMS gateway is unreachable: {type(exc).__name__}") from None


def sms_sender(url: str, token: str = "", timeout_s: float = 10.0) -> SmsSender:
    """The HTTP sender when a gateway URL is set, else the log sender."""
    return HttpSmsSender(url, token, timeout_s) if url else LogSmsSender()
