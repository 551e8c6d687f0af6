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
attempt fails with botocore's own timeout error. It sends with the TLS and proxy settings
botocore's sender was given for the client, not urllib's defaults (the system's CA store and
the process's proxy variables): the CA bundle the client verifies with (AWS_CA_BUNDLE, `ca_bundle`
in the config file, REQUESTS_CA_BUNDLE, else certifi's or botocore's own), its client
certificate, and its proxy (the config's `proxies`, else the proxy variables as botocore read
them for the client's endpoint, NO_PROXY included), so that behind a TLS-inspecting egress proxy
with a corporate CA its calls pass as every other client's do. What it cannot send with as
botocore would (an https:// proxy, which urllib cannot reach over TLS; a CA bundle it cannot
read; a botocore whose sender keeps them otherwise) is refused when the client is made
(`SenderSettingsError`), never replaced by other settings; `proxies_config` matters only to an
https:// proxy.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
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
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import (
    ProxyConfiguration,
    URLLib3Session,
    create_urllib3_context,
    get_cert_path,
)

from fleet_shared.exceptions import DeploymentError
from fleet_shared.validation_errors import shown_value

DEFAULT_PROXY_PORT = 80
"""The port of a proxy whose URL names none, as botocore's sender (urllib3) takes it: urllib's
HTTPS connection would take 443 for a tunnel through it."""


class SenderSettingsError(DeploymentError):
    """A botocore client whose TLS or proxy settings `bound_whole_answers` cannot send with as
    botocore would: sending with others would check the endpoint's certificate against another
    store, or bypass the proxy. The deployment (a variable, the config file, the packaged
    botocore), not the event, is wrong."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"cannot send the client's calls as botocore would: {problem}")


def open_bounded(
    request: urllib.request.Request,
    timeout_seconds: float,
    redirects: urllib.request.HTTPRedirectHandler | None = None,
    tls: ssl.SSLContext | None = None,
    proxy_variables: bool = True,
) -> Any:
    """urllib's `urlopen(request)`, every step of it within `timeout_seconds` in all; a step
    that would end after that raises `TimeoutError` (reading the body included). A redirect is
    followed as `redirects` decides, within the same time; by default not at all: it raises
    `HTTPError` with its 3xx status. HTTPS is checked with `tls`, by default urllib's (the
    system's CA store); the proxy is the process's proxy variables' unless `proxy_variables` is
    false (the request's own, `set_proxy`, or none)."""
    deadline = time.monotonic() + timeout_seconds
    handlers: list[urllib.request.BaseHandler] = [
        _BoundedHTTPHandler(deadline),
        _BoundedHTTPSHandler(deadline, tls),
        redirects or _RedirectRefused(),
    ]
    if not proxy_variables:
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers).open(request, timeout=timeout_seconds)


def bound_whole_answers(client: Any) -> Any:
    """`client` (a botocore client), each attempt of whose calls (connecting, sending, and the
    answer's status, headers and body) must end within the client's connect and read timeouts
    together, or fails with botocore's `ConnectTimeoutError` (before the request was sent) or
    `ReadTimeoutError`; connection failures are botocore's errors too, so callers and botocore's
    retries handle every failure as before. The `before-send` handlers still come first (moto's
    stub, a test's fault). Sent with the TLS and proxy settings botocore's sender was given for
    the client (the module's docstring); raises `SenderSettingsError` when it cannot take them."""
    config = client.meta.config
    # botocore has no public way to choose how a client sends: its endpoint sends each request
    # that no `before-send` handler answered through `http_session.send`.
    replaced = client._endpoint.http_session
    tls, proxies = _settings_of(replaced)
    sender = _WholeAnswerSender(config.connect_timeout + config.read_timeout, tls, proxies)
    # A proxy it cannot send through is refused now, not at the client's first call.
    sender.proxy_for(client.meta.endpoint_url)
    client._endpoint.http_session = sender
    return client


def _settings_of(session: object) -> tuple[ssl.SSLContext, ProxyConfiguration]:
    """The TLS context and proxies botocore's `session` sends with, read from what it was
    given: its attributes are botocore's own, private, so one it lacks is refused."""
    if not isinstance(session, URLLib3Session):
        raise SenderSettingsError(
            f"its sender is {type(session).__name__}, not botocore's URLLib3Session"
        )
    try:
        verify = session._verify
        cert_file = session._cert_file
        key_file = session._key_file
        proxies = session._proxy_config
    except AttributeError as missing:
        raise SenderSettingsError(
            f"botocore's URLLib3Session keeps no {missing.name} of its settings"
        ) from None
    if not isinstance(proxies, ProxyConfiguration):
        raise SenderSettingsError("botocore's URLLib3Session keeps its proxies otherwise")
    return _tls_context(verify, cert_file, key_file), proxies


def _tls_context(verify: object, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """The context botocore's sender would check an endpoint with, given the client's `verify`
    and client certificate: its own context, with the CA bundle urllib3 is given."""
    if verify is False:
        # The client was made with `verify=False`: botocore checks no certificate either.
        return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    if verify is not True and not isinstance(verify, str):
        raise SenderSettingsError(f"its verify is a {type(verify).__name__}, not a CA bundle")
    bundle = get_cert_path(verify)
    context = create_urllib3_context()
    # botocore's context leaves the host name to urllib3, which checks it; urllib leaves it to
    # the context.
    context.check_hostname = True
    try:
        context.load_verify_locations(cafile=bundle)
    except (OSError, ValueError) as failure:
        raise SenderSettingsError(
            f"its CA bundle {shown_value(bundle)} cannot be read ({type(failure).__name__})"
        ) from None
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ValueError) as failure:
            raise SenderSettingsError(
                f"its client certificate {shown_value(cert_file)} cannot be read"
                f" ({type(failure).__name__})"
            ) from None
    return context


class _WholeAnswerSender:
    """Sends a botocore request with `open_bounded`, and reads its whole answer, within
    `timeout_seconds`: in place of botocore's `URLLib3Session`, which bounds each socket read.
    HTTPS is checked with `tls`, and a request goes through its proxy in `proxies`, as that
    session would."""

    def __init__(
        self, timeout_seconds: float, tls: ssl.SSLContext, proxies: ProxyConfiguration
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._tls = tls
        self._proxies = proxies

    def proxy_for(self, url: str) -> str | None:
        """The URL of the proxy a request to `url` goes through, None for none; raises
        `SenderSettingsError` for one other than http://."""
        proxy_url = self._proxies.proxy_url_for(url)
        if proxy_url is None:
            return None
        try:
            parts = urllib.parse.urlsplit(proxy_url)
            valid = parts.scheme == "http" and bool(parts.hostname) and parts.port != 0
        except ValueError:
            valid = False
        if not valid:
            raise SenderSettingsError(
                f"its proxy {shown_value(_masked(proxy_url))} is not an http:// proxy"
                " with a host and a valid port (an https:// one urllib cannot reach over TLS)"
            )
        return proxy_url

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
        proxy_url = self.proxy_for(url)
        if proxy_url is not None:
            self._send_through(outgoing, proxy_url)
        try:
            answer = open_bounded(
                outgoing, self._timeout_seconds, tls=self._tls, proxy_variables=False
            )
        except urllib.error.HTTPError as error_answer:
            # An error status is an answer botocore reads, as any other.
            answer = error_answer
        except urllib.error.URLError as failure:
            # Raised before the request was sent: the connection (or the sending) failed.
            reason = failure.reason
            if isinstance(reason, TimeoutError):
                raise ConnectTimeoutError(endpoint_url=url, error=reason) from None
            if isinstance(reason, ssl.SSLError):
                raise SSLError(endpoint_url=url, error=reason) from None
            if proxy_url is not None:
                raise ProxyConnectionError(proxy_url=_masked(proxy_url), error=reason) from None
            raise EndpointConnectionError(endpoint_url=url, error=reason) from None
        except (OSError, http.client.HTTPException) as failure:
            raise _unanswered(url, failure) from None
        try:
            with answer:
                content = answer.read()
        except (OSError, http.client.HTTPException) as failure:
            raise _unanswered(url, failure) from None
        return AWSResponse(url, answer.status, dict(answer.headers.items()), _WholeAnswer(content))

    def _send_through(self, request: urllib.request.Request, proxy_url: str) -> None:
        """Have `request` go through the proxy at `proxy_url` (http://, checked), with the
        proxy's credentials from its URL: through a tunnel (CONNECT) for HTTPS."""
        parts = urllib.parse.urlsplit(proxy_url)
        address = parts.netloc.rpartition("@")[2]
        if parts.port is None:
            address = f"{address}:{DEFAULT_PROXY_PORT}"
        for name, value in self._proxies.proxy_headers_for(proxy_url).items():
            # urllib sends it to the proxy only: in the CONNECT of a tunnel, not in the request.
            request.add_header(name, value)
        # urllib names the host a request is for after the proxy is set, and through a tunnel
        # then names the proxy: the request is for the endpoint, whose host was signed.
        request.add_unredirected_header("Host", request.host)
        request.set_proxy(address, "http")

    def close(self) -> None:
        """Nothing to release: each request had its own connection, closed with its answer."""


def _masked(proxy_url: str) -> str:
    """A proxy's URL as an error may show it: its scheme and address, credentials masked.
    botocore's `mask_proxy_url` replaces the first text equal to the user name or the password
    anywhere in the URL, so a password such as `s` was shown whole, and the scheme masked."""
    try:
        parts = urllib.parse.urlsplit(proxy_url)
    except ValueError:
        return "(an unreadable URL)"
    _, at, address = parts.netloc.rpartition("@")
    return f"{parts.scheme}://{'***:***@' if at else ''}{address}"


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

    def _tunnel(self) -> None:
        """http.client's CONNECT through a proxy, its answer read within the time left too: its
        socket's timeout bounded each read alone, so a proxy trickling it held the request."""
        connected = self.sock
        self.sock = _BoundedSocket(connected, self._deadline)
        super()._tunnel()  # type: ignore[misc]
        self.sock = connected

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
    def __init__(self, deadline: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(context=tls)
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> Any:
        connection = functools.partial(_BoundedHTTPSConnection, deadline=self._deadline)
        return self.do_open(connection, req, context=self._context)
