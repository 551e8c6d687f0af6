"""HTTP requests bounded in total time, not per socket operation.

urllib's `timeout` bounds each connect, send and receive on its own: a peer that answers a few
bytes at a time, each within the timeout, holds the request as long as it likes, past the end of
the invocation. Here every socket operation of one request gets only what is left of a single
deadline, so the whole request (connecting, to each of the host's addresses in turn, sending,
the status, the headers and the body) takes at most its timeout. notification_router posts to
webhooks with it, report_fetcher reads its feed; both check a URL with `is_http_url` first.

botocore's own sender bounds each socket operation alike (its connect and read timeouts), so an
AWS endpoint, or a proxy on the way, that trickles its answer holds each attempt of a call as
long as it trickles. `bound_whole_answers` has a client send every attempt with `open_bounded`
instead: its whole answer comes within the client's connect and read timeouts together, or the
attempt fails with botocore's own timeout error.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)


def open_bounded(
    request: urllib.request.Request,
    timeout_seconds: float,
    redirects: urllib.request.HTTPRedirectHandler | None = None,
) -> Any:
    """urllib's `urlopen(request)`, every step of it within `timeout_seconds` in all; a step
    that would end after that raises `TimeoutError` (reading the body included). A redirect is
    followed as `redirects` decides, within the same time; by default not at all: it raises
    `HTTPError` with its 3xx status."""
    deadline = time.monotonic() + timeout_seconds
    opener = urllib.request.build_opener(
        _BoundedHTTPHandler(deadline),
        _BoundedHTTPSHandler(deadline),
        redirects or _RedirectRefused(),
    )
    return opener.open(request, timeout=timeout_seconds)


def bound_whole_answers(client: Any) -> Any:
    """`client` (a botocore client), each attempt of whose calls (connecting, sending, and the
    answer's status, headers and body) must end within the client's connect and read timeouts
    together, or fails with botocore's `ConnectTimeoutError` (before the request was sent) or
    `ReadTimeoutError`; connection failures are botocore's errors too, so callers and botocore's
    retries handle every failure as before. The `before-send` handlers still come first (moto's
    stub, a test's fault)."""
    config = client.meta.config
    sender = _WholeAnswerSender(config.connect_timeout + config.read_timeout)
    # botocore has no public way to choose how a client sends: its endpoint sends each request
    # that no `before-send` handler answered through `http_session.send`.
    client._endpoint.http_session = sender
    return client


class _WholeAnswerSender:
    """Sends a botocore request with `open_bounded`, and reads its whole answer, within
    `timeout_seconds`: in place of botocore's `URLLib3Session`, which bounds each socket read."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout_seconds = timeout_seconds

    def send(self, request: Any) -> AWSResponse:
        """botocore's answer to `request` (an `AWSPreparedRequest`), read whole."""
        url = request.url
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, bytes | bytearray):
            body = body.read()
        outgoing = urllib.request.Request(
            url, data=body, headers=dict(request.headers.items()), method=request.method
        )
        try:
            answer = open_bounded(outgoing, self._timeout_seconds)
        except urllib.error.HTTPError as error_answer:
            # An error status is an answer botocore reads, as any other.
            answer = error_answer
        except urllib.error.URLError as failure:
            # Raised before the request was sent: the connection (or the sending) failed.
            if isinstance(failure.reason, TimeoutError):
                raise ConnectTimeoutError(endpoint_url=url, error=failure.reason) from None
            raise EndpointConnectionError(endpoint_url=url, error=failure.reason) from None
        except (OSError, http.client.HTTPException) as failure:
            raise _unanswered(url, failure) from None
        try:
            with answer:
                content = answer.read()
        except (OSError, http.client.HTTPException) as failure:
            raise _unanswered(url, failure) from None
        return AWSResponse(url, answer.status, dict(answer.headers.items()), _WholeAnswer(content))

    def close(self) -> None:
        """Nothing to release: each request had its own connection, closed with its answer."""


def _unanswered(url: str, failure: OSError | http.client.HTTPException) -> HTTPClientError:
    """botocore's error for a request sent whose answer did not come whole: a read timeout
    when its time was up, else a connection closed (reset, or an answer cut short)."""
    if isinstance(failure, TimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=failure)
    return ConnectionClosedError(endpoint_url=url, error=failure)


class _WholeAnswer(io.BytesIO):
    """An answer's body, read whole, as botocore reads a raw answer (`stream`)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def is_http_url(url: str) -> bool:
    """Whether urllib can send a request to `url` as it is: http or https, a host whose name the
    resolver takes, a valid port, and only printable ASCII without spaces (http.client refuses
    the rest with the URL in its message)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port_is_valid = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and _resolvable_name(parts.hostname or "")
        and port_is_valid
        and url.isascii()
        and url.isprintable()
        and " " not in url
    )


def _resolvable_name(host: str) -> bool:
    """Whether the resolver can take `host`: it encodes the name as IDNA first and raises
    `UnicodeError`, no OSError, for an empty label (`hooks..slack.com`) or one past 63
    characters, which would escape the channel's error handling."""
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


class _RedirectRefused(urllib.request.HTTPRedirectHandler):
    """Leaves every 3xx to urllib's default error handler, which raises it as `HTTPError`:
    urllib follows a 301, 302 or 303 to a POST with a GET without the body, and that page's 200
    would read as the message delivered."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's time is up")
    return left


class _BoundedReader(io.RawIOBase):
    """The answer's bytes, each read given only the time left before the deadline."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_time_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _BoundedSocket:
    """A connected socket whose sends and reads end by the deadline; http.client uses only
    `sendall`, `makefile` and `close` once connected."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_time_left(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        # The socket's own unbuffered file: it holds a reference, so the socket stays open
        # while the answer is read even after urllib closes the connection.
        raw = self._sock.makefile(mode, buffering=0)
        return io.BufferedReader(_BoundedReader(raw, self._sock, self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _addresses_by_deadline(host: str, port: int, deadline: float) -> list[Any]:
    """`socket.getaddrinfo(host, port)` for a TCP connection, given only the time left: the
    lookup has no timeout of its own, and a resolver that does not answer (each of its servers
    tried in turn, each retried) held the request past the time kept for it. A lookup still
    running at the deadline is left to end in its daemon thread, which nothing waits for."""
    answer: list[Any] = []
    failure: list[OSError] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            answer.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=look_up, name="bounded-http-lookup", daemon=True).start()
    if not done.wait(_time_left(deadline)):
        raise TimeoutError("the request's time is up looking up its host")
    if failure:
        raise failure[0]
    return answer


class _ConnectionWithDeadline:
    """Connects (TLS handshake included, for HTTPS) within the time left, then hands http.client
    a socket whose sends and reads end by the deadline."""

    sock: Any

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        self.timeout = _time_left(self._deadline)
        self._create_connection = self._connect_by_deadline
        super().connect()  # type: ignore[misc]
        self.sock = _BoundedSocket(self.sock, self._deadline)

    def _connect_by_deadline(
        self,
        host_and_port: tuple[str, int],
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """`socket.create_connection`, each address of the host given only the time left: that
        gives each address the whole timeout, so a host of four unreachable addresses held the
        request four times as long, past the time the invocation kept for it."""
        host, port = host_and_port
        last_failure: OSError | None = None
        for family, kind, protocol, _, address in _addresses_by_deadline(
            host, port, self._deadline
        ):
            left = _time_left(self._deadline)
            connection = socket.socket(family, kind, protocol)
            try:
                connection.settimeout(left)
                if source_address:
                    connection.bind(source_address)
                connection.connect(address)
            except OSError as failure:
                connection.close()
                last_failure = failure
                continue
            return connection
        raise last_failure or OSError(f"{host} resolves to no address")


class _BoundedConnection(_ConnectionWithDeadline, http.client.HTTPConnection):
    """An HTTP connection held to a deadline."""


class _BoundedHTTPSConnection(_ConnectionWithDeadline, http.client.HTTPSConnection):
    """An HTTPS connection held to a deadline."""


class _BoundedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_BoundedConnection, deadline=self._deadline), req)


class _BoundedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> Any:
        connection = functools.partial(_BoundedHTTPSConnection, deadline=self._deadline)
        return self.do_open(connection, req, context=self._context)
