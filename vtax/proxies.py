"""Which address a request comes from, behind trusted reverse proxies (docs/identity.md,
"Client addresses").

A node behind nginx sees nginx as every request's peer; nginx appends the address it saw to
`X-Forwarded-For`. Only a peer listed in `VTAX_TRUSTED_PROXIES` is believed: the client is
the rightmost entry of the header that is not itself a trusted proxy (the entries left of it
were written by whoever sent the request and prove nothing). A header from an untrusted
peer is ignored, so a client cannot choose the address its limits are counted against.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR blocks (`10.0.0.5`, `172.28.0.0/24`, `fd00::/8`); ValueError
    naming the first that is neither."""
    out = []
    for raw in values:
        text = raw.strip()
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text[:64]!r} is not an IP address or CIDR block") from None
    return tuple(out)


def _address(text: str) -> Address | None:
    """One `X-Forwarded-For` entry as an address: bare, `[v6]`, `v4:port` or `[v6]:port`
    forms are read; anything else (`unknown`, an obfuscated name, garbage) is None."""
    text = text.strip()
    if text.startswith("["):  # [2001:db8::1] or [2001:db8::1]:443
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # 203.0.113.7:51000
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1 (a dual-stack listener)
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return ipaddress.IPv6Address(text.split("%", 1)[0])
    return ip


class TrustedProxies:
    """The proxies whose `X-Forwarded-For` a node believes; empty: the peer is the client."""

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self.networks = tuple(networks)

    @classmethod
    def of(cls, values: Iterable[str]) -> TrustedProxies:
        return cls(parse_networks(values))

    def trusted(self, ip: Address) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The client's address for a request from `peer` carrying these `X-Forwarded-For`
        header values (each may list several entries, comma-separated, oldest first).

        From an untrusted peer (or with nothing trusted) the peer itself. From a trusted one,
        walk the entries right to left past trusted proxies; the first untrusted entry is the
        client. An entry that is not an address stops the walk: the last trusted hop saw that
        garbage arrive from its own peer, so that hop is what we know (a proxy's `unknown`
        proves nothing, and the entries left of it are the client's to write). When every
        entry is a trusted proxy, the leftmost (a proxy sent the request itself)."""
        ip = _address(peer or "")
        if ip is None:
            return peer or ""
        if not self.networks or not self.trusted(ip):
            return str(ip)
        entries = [part for value in forwarded_for for part in value.split(",")]
        hop = ip
        for entry in reversed(entries):
            found = _address(entry)
            if found is None:
                return str(hop)
            hop = found
            if not self.trusted(found):
                return str(found)
        return str(hop)
