"""Whether an address or a Host header names this machine's loopback interface, and nothing else.

Only what names loopback for certain counts: an IP literal in 127.0.0.0/8 or `::1` (also IPv4
mapped in IPv6), or the name `localhost`, each with or without a port (`127.0.0.1:8000`,
`[::1]:8000`). Every other name is not, whatever it resolves to today: a DNS name can be made
to resolve to 127.0.0.1 (DNS rebinding), and `0.0.0.0` or an empty host listens everywhere.
"""

from __future__ import annotations

import ipaddress

LOCALHOST = "localhost"


def is_loopback(host: str) -> bool:
    """`host` as a bind address (`127.0.0.1`, `::1`, `[::1]`) or a Host header (`localhost:8000`)."""
    name = _without_port(host.strip())
    if name is None:
        return False
    if name.lower() == LOCALHOST:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _without_port(host: str) -> str | None:
    """The host part of `host`, or None when what follows it is not a port."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or not (rest == "" or (rest.startswith(":") and _is_port(rest[1:]))):
            return None
        return host[1:end]
    if host.count(":") == 1:
        name, port = host.split(":")
        return name if _is_port(port) else None
    return host  # a bare name, IPv4 address or IPv6 address (`::1`)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit()
