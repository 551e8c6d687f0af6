"""Whether a security group rule's CIDR is every address: the world.

CloudTrail records a call's CIDR as the caller wrote it, and `0::/0` or `0:0:0:0:0:0:0:0/0` is
every IPv6 address as `::/0` is. Compared as text with `0.0.0.0/0` and `::/0`, a rule so written
passed for one from part of the internet: a CIDR is the world when it parses to a network of
prefix length 0.
"""

from __future__ import annotations

from ipaddress import ip_network


def is_world(cidr: object) -> bool:
    """Whether `cidr` is a CIDR of every IPv4 or every IPv6 address (host bits are ignored, as
    a /0 has no network bits); False for anything that is not a CIDR."""
    if not isinstance(cidr, str):
        return False
    try:
        return ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False
