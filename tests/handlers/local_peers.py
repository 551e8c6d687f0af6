"""A TCP peer on 127.0.0.1 that answers its connections as a test scripts it: for the tests of
what talks HTTP to a peer it does not control (the router's webhooks, health_monitor's probes,
report_fetcher's feed) and must survive a peer that answers, fails with a status, hangs,
trickles or cuts the connection.

`LocalPeer` reads each request (an HTTP request's headers and the body its Content-Length
announces, or the first bytes of anything else, such as a TLS ClientHello), sends `answer` at
once, then each of `pieces` after a pause of `pause_seconds`, and then closes the connection, or
holds it open without a word more (`hang`) until the client hangs up; `LocalPeer.responding`
makes one whose reply a function of the request decides (per path, method or count: a webhook
receiver, an endpoint with routes, a redirect). Given `tls`, it speaks HTTPS with that server
context; with `tunnel` too, it is a TLS-inspecting proxy: it answers a CONNECT with 200 and then
serves the tunnel's HTTPS itself. A client that hangs up before the peer sent it
all is noted in `cut_off`: the test of a timeout sees that the client gave up, and did not just
wait the peer out. Everything the peer does is bounded by its `with` block, so a failing test
leaves no thread writing or holding a socket.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

REQUEST_CHUNK_BYTES = 65536
POLL_SECONDS = 0.01
"""How often the peer's threads look for the end of the `with` block while they wait."""
HANDSHAKE_SECONDS = 5.0
"""The longest a TLS handshake may take the peer: a client refusing its certificate ends it at
once."""
TUNNEL_OPENED = b"HTTP/1.1 200 Connection established\r\n\r\n"
_HTTP_METHOD = re.compile(rb"[A-Z]+ ")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def http_answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """The bytes of an HTTP/1.1 answer with `status`, `headers` and `body` (its Content-Length
    added unless `headers` name one)."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    given = headers or {}
    lines += [f"{name}: {value}" for name, value in given.items()]
    if not any(name.lower() == "content-length" for name in given):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode() + body


@dataclass(frozen=True)
class PeerRequest:
    """An HTTP request a peer read: its method, path, headers (names in lower case) and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def parse(cls, request: bytes) -> PeerRequest:
        """The parts of `request` (empty ones for what is missing: it may not be HTTP)."""
        head, _, body = request.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, *_ = [*request_line.split(" "), "", ""]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return cls(method, path, headers, body)


@dataclass(frozen=True)
class PeerReply:
    """How a peer answers one connection: send `answer` at once, then `pieces` one per
    `pause_seconds`, then close, or with `hang` hold the connection unanswered until the client
    closes it."""

    answer: bytes = b""
    pieces: Sequence[bytes] = ()
    pause_seconds: float = 0.0
    hang: bool = False


class LocalPeer:
    """A peer on 127.0.0.1 serving every connection (each in a thread) alike: read the request,
    send `answer`, then `pieces` one per `pause_seconds`, then close, or with `hang` hold the
    connection unanswered until the client closes it; or, made by `responding`, as its function
    says for each request.

    `requests` holds what each connection sent (a tunnel's CONNECT, then its request),
    `connections` counts them, `handshakes_failed` counts the TLS handshakes that failed (a
    client refusing the certificate), and `cut_off` is set once a client hung up before the peer
    was done with it.
    """

    def __init__(
        self,
        answer: bytes = b"",
        pieces: Sequence[bytes] = (),
        *,
        pause_seconds: float = 0.0,
        hang: bool = False,
        tls: ssl.SSLContext | None = None,
        tunnel: bool = False,
    ) -> None:
        reply = PeerReply(answer, pieces, pause_seconds, hang)
        self._respond: Callable[[PeerRequest], PeerReply] = lambda _request: reply
        self.requests: list[bytes] = []
        self.connections = 0
        self.pieces_sent = 0
        """The pieces the peer sent, over every connection."""
        self.handshakes_failed = 0
        self.cut_off = threading.Event()
        self._tls = tls
        self._tunnel = tunnel
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=32)
        self._listener.settimeout(POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @classmethod
    def trickling_lines(
        cls, answer: bytes, pause_seconds: float, lines_at_once: int = 1
    ) -> LocalPeer:
        """A peer sending `answer` a line at a time, pausing `pause_seconds` before each line
        after the first `lines_at_once`."""
        lines = answer.splitlines(keepends=True)
        return cls(
            b"".join(lines[:lines_at_once]), lines[lines_at_once:], pause_seconds=pause_seconds
        )

    @classmethod
    def responding(cls, respond: Callable[[PeerRequest], PeerReply]) -> LocalPeer:
        """A peer answering each connection with the reply `respond` gives for its request
        (called in the connection's thread, so it may wait for what the test does meanwhile)."""
        peer = cls()
        peer._respond = respond
        return peer

    def url(self, path: str = "/") -> str:
        """The peer's URL with `path` (https: for an HTTPS peer; a proxy's is http:)."""
        scheme = "https" if self._tls is not None and not self._tunnel else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LocalPeer:
        self._start(self._accept)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        # The accepting thread first: once it has ended, no thread is added.
        while self._threads:
            self._threads.pop(0).join()
        self._listener.close()

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.connections += 1
            self._start(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(POLL_SECONDS)
            if self._tls is None:
                self._answer(connection)
                return
            if self._tunnel:
                self._record(self._read_request(connection))
                self._send(connection, TUNNEL_OPENED)
            connection.settimeout(HANDSHAKE_SECONDS)
            try:
                secured = self._tls.wrap_socket(connection, server_side=True)
            except OSError:
                with self._lock:
                    self.handshakes_failed += 1
                return
            with secured:
                secured.settimeout(POLL_SECONDS)
                self._answer(secured)

    def _record(self, request: bytes) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer(self, connection: socket.socket) -> None:
        """Read the connection's request, and reply as the peer does."""
        request = self._read_request(connection)
        self._record(request)
        reply = self._respond(PeerRequest.parse(request))
        try:
            self._send(connection, reply.answer)
            for piece in reply.pieces:
                if not self._wait_while_open(connection, reply.pause_seconds):
                    return
                self._send(connection, piece)
                with self._lock:
                    self.pieces_sent += 1
        except OSError:
            self.cut_off.set()
            return
        if reply.hang:
            self._wait_while_open(connection, None)

    def _read_request(self, connection: socket.socket) -> bytes:
        """An HTTP request's headers and the body they announce, or the first bytes of anything
        else (or less, if the client stops sending or the `with` block ends)."""
        received = b""
        while not self._stop.is_set():
            try:
                chunk = connection.recv(REQUEST_CHUNK_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return received
            received += chunk
            if not chunk or not _HTTP_METHOD.match(received):
                return received
            head, separator, body = received.partition(b"\r\n\r\n")
            if separator:
                length = _CONTENT_LENGTH.search(head + b"\r\n")
                if len(body) >= (int(length.group(1)) if length else 0):
                    return received
        return received

    def _send(self, connection: socket.socket, data: bytes) -> None:
        """Send `data`, a chunk at a time so that the end of the `with` block stops a send the
        client does not read."""
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                sent = connection.send(view[:REQUEST_CHUNK_BYTES])
            except TimeoutError:
                continue
            view = view[sent:]

    def _wait_while_open(self, connection: socket.socket, seconds: float | None) -> bool:
        """Wait `seconds` (or until the `with` block ends, given None) while the client keeps
        the connection open; False once it has shut or closed it (`cut_off` set), or once the
        `with` block ended. A client that hung up before the block ended is noted even when the
        block ends first: its hang-up has reached the peer by then."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            stopping = self._stop.is_set()
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            wait = 0.0 if stopping else max(0.0, min(left, POLL_SECONDS))
            readable, _, _ = select.select([connection], [], [], wait)
            if readable and not _still_open(connection):
                self.cut_off.set()
                return False
            if stopping:
                return False
            if left <= 0:
                return True


def _still_open(connection: socket.socket) -> bool:
    """Whether a readable connection is still open: it sent more (read and dropped), not an end
    or a reset."""
    try:
        return connection.recv(REQUEST_CHUNK_BYTES) != b""
    except TimeoutError:
        return True
    except OSError:
        return False
