"""Whether a security group rule's CIDR is every address (the world), or the CIDRs of several
rules are together.

CloudTrail records a call's CIDR as the caller wrote it, and `0::/0` or `0:0:0:0:0:0:0:0/0` is
every IPv6 address as `::/0` is. Compared as text with `0.0.0.0/0` and `::/0`, a rule so written
passed for one from part of the internet: a CIDR is the world when it parses to a network of
prefix length 0. Nor does the world need one CIDR: `0.0.0.0/1` and `128.0.0.0/1`, in one rule or
two, let every IPv4 address in as `0.0.0.0/0` does (the stack settings refuse that pair for a
cluster's public endpoint for the same reason), so the controls judge the union of the CIDRs
that reach a port (`world_sources`).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, collapse_addresses, ip_network

_EVERY_ADDRESS = (IPv4Network("0.0.0.0/0"), IPv6Network("::/0"))


def is_world(cidr: object) -> bool:
    """Whether `cidr` is a CIDR of every IPv4 or every IPv6 address (host bits are ignored, as
    a /0 has no network bits); False for anything that is not a CIDR."""
    network = _network(cidr)
    return network is not None and network.prefixlen == 0


def world_sources(cidrs: Iterable[object]) -> list[str]:
    """The CIDRs among `cidrs` that let in every IPv4 or every IPv6 address: each one that is
    the world by itself, or, when none is, those of an IP version whose union is every address
    of it (`0.0.0.0/1` and `128.0.0.0/1`); none when they leave some address out. Anything that
    is not a CIDR lets nothing in."""
    texts = [cidr for cidr in cidrs if isinstance(cidr, str)]
    whole = [cidr for cidr in texts if is_world(cidr)]
    if whole:
        return whole
    covering: list[str] = []
    for every in _EVERY_ADDRESS:
        of_version = [
            (cidr, network)
            for cidr in texts
            if (network := _network(cidr)) is not None and network.version == every.version
        ]
        networks = [network for _, network in of_version]
        if networks and list(collapse_addresses(networks)) == [every]:
            covering += [cidr for cidr, _ in of_version]
    return covering


def _network(cidr: object) -> IPv4Network | IPv6Network | None:
    """`cidr` as a network (host bits ignored), or None when it is not a CIDR."""
    if not isinstance(cidr, str):
        return None
    try:
        return ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None
