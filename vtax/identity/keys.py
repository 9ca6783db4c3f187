"""Every Redis key of the identity state, with its shape. `p` is the deployment prefix
(VTAX_REDIS_PREFIX, default "vtax:"); phones are E.164, addresses as the use case keys them
(an IPv4 address, an IPv6 /64)."""

from __future__ import annotations


def code(p: str, phone: str) -> str:
    """HASH h (the pending code's HMAC digest), a (tries so far); PEXPIRE = the code's life."""
    return f"{p}id:code:{phone}"


def resend(p: str, phone: str) -> str:
    """STRING "1" with PX = the resend throttle: no new code for this number while it lives."""
    return f"{p}id:resend:{phone}"


def number_count(p: str, phone: str) -> str:
    """STRING counter of codes issued to the number; PEXPIRE set by the first = the window."""
    return f"{p}id:n:{phone}"


def address_count(p: str, address: str) -> str:
    """STRING counter of codes asked from the client address; window as number_count."""
    return f"{p}id:a:{address}"


def once(p: str, kind: str, key: str) -> str:
    """STRING: a one-time value (OIDC state -> JSON of nonce and PKCE verifier, a kiosk
    nonce) taken by GETDEL, or "1" as a replay mark (SET NX)."""
    return f"{p}id:once:{kind}:{key}"


def family(p: str, family_id: str) -> str:
    """HASH rec (the family's JSON record), cur (the current refresh token id); PEXPIRE =
    the refresh lifetime, renewed at each rotation."""
    return f"{p}id:fam:{family_id}"


def members(p: str, kind: str, key: str) -> str:
    """SET of refresh family ids under a provider's session id or subject (back-channel
    logout); PEXPIRE renewed by each addition."""
    return f"{p}id:set:{kind}:{key}"


def hits(p: str, kind: str, key: str) -> str:
    """STRING counter of events (kiosk challenges, OIDC starts, code tries per address);
    PEXPIRE set by the first = the window."""
    return f"{p}id:hit:{kind}:{key}"
