"""The client address behind trusted proxies (vtax/proxies.py): who may speak for a client,
and what a forged or broken `X-Forwarded-For` gets."""

from __future__ import annotations

import pytest

from vtax.config import Settings, SettingsError
from vtax.proxies import TrustedProxies, parse_networks

NGINX = TrustedProxies.of(["10.0.0.5"])
TWO_TIERS = TrustedProxies.of(["10.0.0.0/24", "192.168.7.2"])  # a load balancer, then nginx


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says():
    nobody = TrustedProxies()
    assert nobody.client("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"
    assert nobody.client("10.0.0.5", ["198.51.100.1"]) == "10.0.0.5"


def test_a_header_from_an_untrusted_peer_is_ignored():
    # A client talking to the node directly cannot pick the address its limits count.
    assert NGINX.client("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"
    assert NGINX.client("203.0.113.7", ["10.0.0.5"]) == "203.0.113.7"


def test_through_the_trusted_proxy_the_client_is_the_last_entry():
    assert NGINX.client("10.0.0.5", ["198.51.100.1"]) == "198.51.100.1"
    # nginx appends ($proxy_add_x_forwarded_for): what the client sent stays on the left
    assert NGINX.client("10.0.0.5", ["1.1.1.1, 2.2.2.2, 198.51.100.1"]) == "198.51.100.1"
    # two header lines are one list, oldest first
    assert NGINX.client("10.0.0.5", ["1.1.1.1", "198.51.100.1"]) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_right_to_left():
    # client -> 192.168.7.2 (LB) -> 10.0.0.9 -> node
    assert TWO_TIERS.client("10.0.0.9", ["203.0.113.7, 192.168.7.2"]) == "203.0.113.7"
    # a spoofed entry left of the real client changes nothing
    assert TWO_TIERS.client("10.0.0.9", ["6.6.6.6, 203.0.113.7, 192.168.7.2"]) == "203.0.113.7"
    # an untrusted hop in the middle is the client: whatever it claims is its own word
    assert TWO_TIERS.client("10.0.0.9", ["6.6.6.6, 198.51.100.2, 10.0.0.3"]) == "198.51.100.2"


def test_every_entry_trusted_gives_the_leftmost_proxy():
    # a proxy's own request (a health check, the recorder through nginx on one host)
    assert TWO_TIERS.client("10.0.0.9", ["10.0.0.3"]) == "10.0.0.3"
    assert TWO_TIERS.client("10.0.0.9", []) == "10.0.0.9"


@pytest.mark.parametrize(
    "header",
    [
        "unknown",
        "",
        " , ",
        "not an address",
        "999.1.1.1",
        "198.51.100.1/24",
        "_hidden",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "1.2.3.4\x00",
        "1.2.3.4;5.6.7.8",
    ],
)
def test_garbage_at_the_right_is_the_trusted_hops_peer(header):
    # The entry the trusted hop should have written is unreadable: its peer is unknown, so
    # the hop itself is what the limits count (the header never picks another address).
    assert NGINX.client("10.0.0.5", [header]) == "10.0.0.5"


def test_garbage_left_of_a_good_entry_is_never_reached():
    assert NGINX.client("10.0.0.5", ["garbage, 198.51.100.1"]) == "198.51.100.1"
    # garbage between two trusted hops: the walk stops at the hop that received it
    assert TWO_TIERS.client("10.0.0.9", ["198.51.100.1, junk, 192.168.7.2"]) == "192.168.7.2"


def test_ipv6_and_ports():
    v6 = TrustedProxies.of(["2001:db8:f::/48", "127.0.0.1"])
    assert v6.client("2001:db8:f::2", ["2001:db8:1::77"]) == "2001:db8:1::77"
    assert v6.client("2001:db8:f::2", ["[2001:db8:1::77]:51000"]) == "2001:db8:1::77"
    assert v6.client("2001:db8:f::2", ["203.0.113.7:51000"]) == "203.0.113.7"
    # an IPv4-mapped peer (a dual-stack listener) is its IPv4 address
    assert v6.client("::ffff:127.0.0.1", ["2001:db8:1::77"]) == "2001:db8:1::77"
    # IPv4 networks never contain IPv6 addresses and back
    assert v6.client("2001:db8:1::5", ["203.0.113.7"]) == "2001:db8:1::5"
    assert TrustedProxies.of(["::/0"]).client("10.0.0.1", ["203.0.113.7"]) == "10.0.0.1"


def test_a_peer_that_is_not_an_address_is_passed_through():
    assert NGINX.client(None, ["198.51.100.1"]) == ""
    assert NGINX.client("", ["198.51.100.1"]) == ""


def test_parse_networks_names_the_bad_entry():
    assert [str(n) for n in parse_networks(["10.0.0.5", "172.28.0.0/24", "fd00::/8"])] == [
        "10.0.0.5/32",
        "172.28.0.0/24",
        "fd00::/8",
    ]
    with pytest.raises(ValueError, match="'nginx' is not an IP address"):
        parse_networks(["10.0.0.5", "nginx"])


def test_the_setting_is_read_and_checked():
    assert Settings.from_env({}).trusted_proxies == []
    got = Settings.from_env({"VTAX_TRUSTED_PROXIES": "127.0.0.1, 172.28.0.0/24"})
    assert got.trusted_proxies == ["127.0.0.1/32", "172.28.0.0/24"]
    with pytest.raises(SettingsError, match="VTAX_TRUSTED_PROXIES"):
        Settings.from_env({"VTAX_TRUSTED_PROXIES": "10.0.0.0/33"})
