"""One HTTP GET of a health endpoint: status code and latency, with a timeout.

Redirects are followed, unless the endpoint is expected to answer one: its redirect is then the
answer (followed, an endpoint expected to answer 301 or 302 could never pass); only to an http or
https URL (a redirect to ftp is an error naming it: ftplib would connect unchecked). A link-local
address (the instance metadata service, 169.254.169.254 however written, also behind the NAT64
prefix) is never probed, nor the metadata service's IPv6 address fd00:ec2::254, nor a loopback
or unspecified one (the Lambda runtime API, 127.0.0.1:9001) unless the endpoint itself is on
loopback: it is an error naming the host and the address, and nothing is sent there. The
rule holds for addresses, not the URL's text (`_AddressGuard`): every host the probe connects to,
the endpoint's and each redirect's, is resolved once, every address it resolves to is checked,
and the connection goes to an address checked, with no second lookup a DNS record changed in
between (rebinding) could answer differently; the request still names the host (its Host header,
its TLS server name).

urllib is enough for a GET and ships with the runtime. An HTTP error status is a result, not an
exception: the check compares it with the endpoint's expected status. A timeout, a refused
connection, a TLS failure, an answer that is not HTTP or a redirect to a URL that is not one is
reported as an error with no status
code, its text cut to `ECHO_LIMIT` characters: http.client's error for an answer that is not HTTP
holds the whole line the server sent, up to 64 KB, which would reach the report and the alert.

The timeout bounds the whole answer, not each read: urllib's socket timeout applies to every
read alone, so an endpoint sending a byte at a time would hold the run for as long as it likes.
The request runs in a daemon thread that the probe waits for at most `timeout_seconds`; the
thread stops reading the body at its next chunk once the time is up, and when the time is up
the probe shuts the connections it opened (`_Connections`): an endpoint sending its status line
or headers a byte at a time would otherwise keep the thread and its socket for as long as it
likes, one more every run, in a container that lives for hours.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet_shared.http_redirects import HttpRedirects
from fleet_shared.validation_errors import cut_echo, escaped_echo

USER_AGENT = "lambda-fleet-health-monitor"
READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    """What one request returned: `status_code` is None when no response came back."""

    status_code: int | None
    latency_ms: float
    error: str | None = None


Probe = Callable[[str, float, bool], ProbeResult]
"""`probe(url, timeout_seconds, follow_redirects)`; injectable so a check can be run against any
transport."""


def http_probe(url: str, timeout_seconds: float, follow_redirects: bool = True) -> ProbeResult:
    """GET `url`, following redirects when `follow_redirects` (else a redirect is the answer),
    and time it until the body has been read; an answer not complete within `timeout_seconds`
    is a `TimeoutError`."""
    started = time.perf_counter()
    deadline = started + timeout_seconds
    answer: list[tuple[int | None, str | None]] = []
    connections = _Connections()
    worker = threading.Thread(
        target=lambda: answer.append(_get(url, deadline, connections, follow_redirects)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout_seconds)
    latency_ms = (time.perf_counter() - started) * 1000
    if not answer:
        connections.shut()
        status, error = None, f"TimeoutError: no complete answer within {timeout_seconds} s"
    else:
        status, error = answer[0]
    return ProbeResult(status, round(latency_ms, 1), error)


class _Connections:
    """The sockets one probe opened (each redirect opens one more), so that the probe can shut
    them once its time is up: a read blocked on one then ends, and the probe's thread with it."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._shut = False
        self._lock = threading.Lock()

    def shut(self) -> None:
        """Shut every socket opened, and each one opened from now on."""
        with self._lock:
            self._shut = True
            sockets = list(self._sockets)
        for opened in sockets:
            _shut_down(opened)

    def tracked(self, connection_class: Callable[..., Any]) -> Callable[..., Any]:
        """`connection_class` (an http.client connection class) whose connections note their
        socket here once connected."""

        def connection(host: str, **arguments: Any) -> Any:
            made = connection_class(host, **arguments)
            connect = made.connect

            def connect_and_note() -> None:
                connect()
                with self._lock:
                    self._sockets.append(made.sock)
                    shut = self._shut
                if shut:
                    _shut_down(made.sock)

            made.connect = connect_and_note
            return made

        return connection


def _shut_down(opened: socket.socket) -> None:
    # Shut, not closed: closing a socket another thread reads is not safe; shut, its read ends.
    # One its reader closed already raises OSError, and needs nothing more.
    with contextlib.suppress(OSError):
        opened.shutdown(socket.SHUT_RDWR)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
INSTANCE_METADATA_IPV6 = ipaddress.IPv6Address("fd00:ec2::254")
"""The instance metadata service on the Nitro instances' IPv6 side: a unique local address, not
a link-local one, so the link-local rule alone lets it through."""
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
"""RFC 6052's well-known NAT64 prefix: in a VPC subnet with DNS64, a NAT gateway connects to the
IPv4 address held in the last 32 bits."""


def host_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection to `port`, in the resolver's order,
    each once (an address written as one resolves to itself, in any form the resolver reads:
    `2852039166`, `0xa9.0xfe.0xa9.0xfe`)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


def refused_address(address: Address, endpoint_on_loopback: bool) -> str | None:
    """Why the probe does not connect to `address`, or None: it is link-local, or loopback or
    unspecified (0.0.0.0 reaches the monitor's own host too) when the endpoint is not on loopback
    itself."""
    reached = _reached(address)
    if reached.is_link_local:
        return "a link-local address is never probed"
    if reached == INSTANCE_METADATA_IPV6:
        return "the instance metadata service's IPv6 address is never probed"
    if endpoint_on_loopback:
        return None
    if reached.is_loopback:
        return "a loopback address is probed only as the endpoint"
    if reached.is_unspecified:
        return "an unspecified address (this host) is probed only as the endpoint"
    return None


def _reached(address: Address) -> Address:
    """The address a connection to `address` reaches: an IPv4-mapped IPv6 address, or one under
    the NAT64 prefix, reaches the IPv4 address it holds."""
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address


class AddressRefusedError(OSError):
    """A host the probe was to connect to resolves to an address it never probes. An OSError,
    as a refused connection is: urllib reports it as the reason of its URLError."""


class _AddressGuard:
    """The connections of one probe, made to checked addresses (`refused_address`). The first
    connection is the endpoint's own, which may be on loopback; whether it is decides whether
    the redirects after it may be."""

    def __init__(self) -> None:
        self._endpoint_on_loopback: bool | None = None
        """None until the endpoint's own connection is made."""

    def guarded(self, connection_class: Callable[..., Any]) -> Callable[..., Any]:
        """`connection_class` (an http.client connection class) whose connections go through
        `connect`: their host stays the URL's, for the Host header and the TLS server name."""

        def connection(host: str, **arguments: Any) -> Any:
            made = connection_class(host, **arguments)
            made._create_connection = self.connect
            return made

        return connection

    def connect(
        self,
        host_and_port: tuple[str, int],
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """A socket connected to an address of the host, every address it resolves to checked
        first; raises AddressRefusedError naming the host and the address when one is refused."""
        host, port = host_and_port
        addresses = [ipaddress.ip_address(text) for text in host_addresses(host, port)]
        is_endpoint = self._endpoint_on_loopback is None
        loopback_allowed = is_endpoint or bool(self._endpoint_on_loopback)
        for address in addresses:
            refused = refused_address(address, loopback_allowed)
            if refused is not None:
                named = cut_echo(host) if host == str(address) else f"{cut_echo(host)} ({address})"
                raise AddressRefusedError(f"connection to {named} refused: {refused}")
        last_failure = OSError(f"{cut_echo(host)} resolves to no address")
        for address in addresses:
            try:
                # An address, not a name: create_connection looks nothing up again.
                connected = socket.create_connection((str(address), port), timeout, source_address)
            except OSError as failure:
                last_failure = failure
                continue
            if is_endpoint:
                reached = _reached(address)
                self._endpoint_on_loopback = reached.is_loopback or reached.is_unspecified
            return connected
        raise last_failure


class _RedirectAnswered(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: urllib then raises its status as an HTTPError, the probe's answer."""

    def redirect_request(self, *_: Any) -> None:
        return None


def _opener(connections: _Connections, follow_redirects: bool) -> urllib.request.OpenerDirector:
    """urllib's opener, its HTTP and HTTPS connections made to checked addresses only
    (`_AddressGuard`) and noted in `connections`, following redirects or not."""
    guard = _AddressGuard()

    class TrackedHTTPHandler(urllib.request.HTTPHandler):
        def do_open(self, http_class: Any, req: Any, **http_conn_args: Any) -> Any:
            made = connections.tracked(guard.guarded(http_class))
            return super().do_open(made, req, **http_conn_args)

    class TrackedHTTPSHandler(urllib.request.HTTPSHandler):
        def do_open(self, http_class: Any, req: Any, **http_conn_args: Any) -> Any:
            made = connections.tracked(guard.guarded(http_class))
            return super().do_open(made, req, **http_conn_args)

    redirects = HttpRedirects if follow_redirects else _RedirectAnswered
    return urllib.request.build_opener(TrackedHTTPHandler, TrackedHTTPSHandler, redirects)


def _get(
    url: str, deadline: float, connections: _Connections, follow_redirects: bool
) -> tuple[int | None, str | None]:
    """(status, error) of the GET, reading the body until `deadline` at the latest."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": USER_AGENT})
    try:
        timeout = max(deadline - time.perf_counter(), 0.001)
        with _opener(connections, follow_redirects).open(request, timeout=timeout) as response:
            while response.read1(READ_CHUNK_BYTES):
                if time.perf_counter() > deadline:
                    raise TimeoutError("the answer did not end in time")
            return response.status, None
    except urllib.error.HTTPError as http_error:
        http_error.close()
        return http_error.code, None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as failure:
        # ValueError: a redirect to a URL no parser reads (`http://[::1`), or a host name IDNA
        # cannot encode. Uncaught, it ended the thread without an answer: reported as a timeout
        # it never was, with a traceback in the log.
        # A URLError's reason is the error underneath; a UnicodeError's `reason` is a bare text.
        reason = failure.reason if isinstance(failure, urllib.error.URLError) else failure
        # Escaped: the reason may repeat what the peer sent (BadStatusLine holds its line whole).
        return None, escaped_echo(f"{type(reason).__name__}: {reason}")
