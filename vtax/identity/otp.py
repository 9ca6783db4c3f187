"""One-time sign-in codes: six digits from the system's CSPRNG, kept only as an HMAC digest
(six digits are a million values: a plain hash would be reversed in a second, a keyed one
cannot be without the server's key), compared in constant time, and the texts that carry
them in the four page languages."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Literal, get_args

PageLanguage = Literal["zh-CN", "zh-HK", "en", "pt"]
PAGE_LANGUAGES: tuple[str, ...] = get_args(PageLanguage)
CODE_DIGITS = 6

_TEXTS: dict[str, str] = {
    "zh-CN": "【V-Tax 粤税通】您的登录验证码为 {code}，{minutes} 分钟内有效。请勿告诉他人，"  # noqa: RUF001 (Chinese punctuation)
    "税务人员不会向您索要验证码。",
    "zh-HK": "【V-Tax 粵稅通】您的登入驗證碼為 {code}，{minutes} 分鐘內有效。請勿告訴他人，"  # noqa: RUF001
    "稅務人員不會向您索取驗證碼。",
    "en": "[V-Tax] Your sign-in code is {code}, valid for {minutes} minutes. Do not share it: "
    "tax staff never ask for it.",
    "pt": "[V-Tax] O seu código de acesso é {code}, válido por {minutes} minutos. Não o partilhe: "
    "os funcionários fiscais nunca o pedem.",
}


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_key(secret: str) -> bytes:
    """The codes' HMAC key, derived from the deployment secret (never the token key itself)."""
    return hashlib.sha256(b"vtax sign-in code\0" + secret.encode()).digest()


def digest(key: bytes, phone: str, code: str) -> str:
    """The stored form of a code: bound to its number, so one digest is worth one number."""
    return hmac.new(key, f"{phone}\0{code}".encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def text(language: str, code: str, ttl_s: float) -> str:
    template = _TEXTS.get(language, _TEXTS["zh-CN"])
    return template.format(code=code, minutes=max(1, round(ttl_s / 60)))


def address_key(address: str) -> str:
    """What the per-address limit counts: an IPv4 address, or an IPv6 /64 (one subscriber's
    prefix: counting single IPv6 addresses would count nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
