"""The endpoint probe resolves each host once, checks every address it resolves to, and connects
to the address it checked: a host name is no way around the link-local and loopback rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from handlers.health_monitor import probe
from handlers.health_monitor.probe import http_probe, refused_address
from tests.handlers.local_peers import LocalPeer, PeerReply, PeerRequest, http_answer


@dataclass
class Resolver:
    """Stands in for the probe's host resolution: a host in `answers` resolves to its next list
    of addresses (the last one repeated: a DNS record that changes between lookups), any other
    host, an address written as one, to itself. `lookups` names every host asked."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            return [host]
        pending = self.answers[host]
        return pending.pop(0) if len(pending) > 1 else pending[0]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    stand_in = Resolver()
    monkeypatch.setattr(probe, "host_addresses", stand_in)
    return stand_in


@dataclass
class Peer:
    """A server on 127.0.0.1: 302 to `location` on `/redirect`, 200 elsewhere; `hosts` holds
    the Host header of every request it answered."""

    port: int
    location: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    def reply(self, request: PeerRequest) -> PeerReply:
        self.hosts.append(request.headers.get("host", ""))
        if request.path == "/redirect":
            return PeerReply(http_answer(302, {"Location": self.location[0]}))
        return PeerReply(http_answer(200))


@pytest.fixture
def peer() -> Iterator[Peer]:
    state = Peer(port=0)
    with LocalPeer.responding(state.reply) as server:
        state.port = server.port
        yield state


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],
        ["::ffff:169.254.169.254"],
        ["fe80::1"],
        # The first address is one the probe may use: every address is checked, not the first.
        ["127.0.0.1", "169.254.169.254"],
    ],
)
def test_a_redirect_to_a_host_name_resolving_to_a_link_local_address_is_not_followed(
    peer: Peer, resolver: Resolver, addresses: list[str]
) -> None:
    # GIVEN an endpoint on 127.0.0.1 that redirects to a host name resolving to the instance
    # metadata service (however written), among other addresses or alone
    peer.location.append(f"http://metadata.example:{peer.port}/latest/meta-data/")
    resolver.answers["metadata.example"] = [addresses]
    # WHEN it is probed
    outcome = http_probe(f"http://127.0.0.1:{peer.port}/redirect", 2.0)
    # THEN nothing was sent there: the probe failed naming the host and why, with no status, and
    # the endpoint answered only the first request
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "metadata.example" in outcome.error and "link-local address" in outcome.error
    assert len(peer.hosts) == 1


def test_an_endpoint_whose_host_name_resolves_to_a_link_local_address_is_not_probed(
    resolver: Resolver,
) -> None:
    # GIVEN an endpoint whose host name resolves to the instance metadata service
    resolver.answers["health.example"] = [["169.254.169.254"]]
    # WHEN it is probed
    outcome = http_probe("http://health.example/latest/meta-data/", 2.0)
    # THEN the probe failed naming why, with no status
    assert outcome.status_code is None
    assert outcome.error is not None and "link-local address" in outcome.error


def test_a_host_is_resolved_once_and_the_address_checked_is_the_one_connected_to(
    peer: Peer, resolver: Resolver
) -> None:
    # GIVEN an endpoint whose host name resolves to 127.0.0.1 at its first lookup and to the
    # instance metadata service at every later one (DNS rebinding)
    resolver.answers["health.example"] = [["127.0.0.1"], ["169.254.169.254"]]
    # WHEN it is probed
    outcome = http_probe(f"http://health.example:{peer.port}/health", 2.0)
    # THEN the host was resolved once, the request went to the address checked, and it still
    # named the endpoint's host
    assert (outcome.status_code, outcome.error) == (200, None)
    assert resolver.lookups == ["health.example"]
    assert peer.hosts == [f"health.example:{peer.port}"]


def test_a_redirect_between_host_names_on_loopback_is_followed(
    peer: Peer, resolver: Resolver
) -> None:
    # GIVEN an endpoint whose host name resolves to 127.0.0.1, redirecting to another host name
    # on loopback
    resolver.answers["health.example"] = [["127.0.0.1"]]
    resolver.answers["ready.example"] = [["::ffff:127.0.0.1", "127.0.0.1"]]
    peer.location.append(f"http://ready.example:{peer.port}/ready")
    # WHEN it is probed
    outcome = http_probe(f"http://health.example:{peer.port}/redirect", 2.0)
    # THEN the redirect was followed: the endpoint is on loopback itself
    assert (outcome.status_code, outcome.error) == (200, None)
    assert peer.hosts == [f"health.example:{peer.port}", f"ready.example:{peer.port}"]


@pytest.fixture
def tls_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A port on 127.0.0.1 whose peer keeps the first bytes a client sends (a TLS ClientHello,
    which carries the server name in clear) and closes."""
    with LocalPeer() as peer:
        yield peer.port, peer.requests


def test_a_tls_endpoint_reached_by_its_checked_address_is_asked_for_its_host_name(
    tls_listener: tuple[int, list[bytes]], resolver: Resolver
) -> None:
    # GIVEN an HTTPS endpoint whose host name resolves to 127.0.0.1
    port, received = tls_listener
    resolver.answers["health.example"] = [["127.0.0.1"]]
    # WHEN it is probed (the peer speaks no TLS: the probe fails)
    outcome = http_probe(f"https://health.example:{port}/health", 2.0)
    # THEN its TLS handshake named the endpoint's host (the server name its certificate is
    # checked against), not the address
    assert outcome.status_code is None
    assert len(received) == 1 and b"health.example" in received[0]


@pytest.mark.parametrize(
    ("address", "endpoint_on_loopback", "why"),
    [
        ("169.254.169.254", True, "link-local address"),
        ("::ffff:169.254.169.254", True, "link-local address"),
        ("fe80::1", True, "link-local address"),
        ("64:ff9b::a9fe:a9fe", True, "link-local address"),
        ("fd00:ec2::254", True, "instance metadata service's IPv6 address"),
        ("64:ff9b::7f00:1", False, "loopback address"),
        ("64:ff9b::a00:6", False, None),
        ("fd00:ec2::6", False, None),
        ("127.0.0.1", False, "loopback address"),
        ("::1", False, "loopback address"),
        ("::ffff:127.0.0.1", False, "loopback address"),
        ("0.0.0.0", False, "unspecified address"),
        ("::", False, "unspecified address"),
        ("127.0.0.1", True, None),
        ("0.0.0.0", True, None),
        ("10.0.0.6", False, None),
        ("2001:db8::6", False, None),
    ],
)
def test_a_link_local_address_is_never_probed_and_a_loopback_one_only_from_an_endpoint_on_one(
    address: str, *, endpoint_on_loopback: bool, why: str | None
) -> None:
    # GIVEN an address a host resolved to, and whether the endpoint is on loopback itself
    # WHEN the probe decides whether to connect to it
    refused = refused_address(ipaddress.ip_address(address), endpoint_on_loopback)
    # THEN the instance metadata service and the monitor's own host (the Lambda runtime API on
    # 127.0.0.1:9001, an extension, 0.0.0.0 reaching it too) are refused naming why; an endpoint
    # on loopback may redirect to loopback; any other address is probed
    assert refused is None if why is None else (refused is not None and why in refused), refused


@pytest.mark.parametrize("scheme", ["ftp", "FTP"])
def test_a_redirect_to_an_ftp_url_is_refused_and_nothing_connects_there(scheme: str) -> None:
    # GIVEN an endpoint answering 302 to an ftp URL: urllib would follow it through ftplib, which
    # connects on its own, past the address rules (ftp://169.254.169.254:80/ reached the
    # instance metadata service), here to a peer that counts its connections
    with LocalPeer(hang=True) as target:
        location = f"{scheme}://127.0.0.1:{target.port}/latest/meta-data/"
        redirect = http_answer(302, {"Location": location})
        with LocalPeer(redirect) as endpoint:
            # WHEN it is probed
            outcome = http_probe(endpoint.url("/health"), 2.0)
        # THEN the probe failed naming the redirect and why, with no status, and nothing
        # connected to the ftp URL's address
        assert outcome.status_code is None
        assert outcome.error is not None
        assert "RedirectRefusedError" in outcome.error and "only http and https" in outcome.error
        assert target.connections == 0
