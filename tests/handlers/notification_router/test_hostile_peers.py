"""A webhook peer on 127.0.0.1 that answers in ways meant to hold or swamp the router."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from handlers.notification_router.channels import post_json
from tests.handlers.deadlines import THREAD_REACHED_SECONDS

ENDLESS_BODY_CAP_BYTES = 64 * 1024 * 1024
"""Where the "endless" body stops, so that a router reading it all ends the test: far more than
the socket buffers of both ends hold."""


@dataclass
class EndlessBody:
    """A peer that answers 200 and then a body without end (up to `ENDLESS_BODY_CAP_BYTES`);
    `cut_off` is set once the client hung up before the peer sent all of it."""

    url: str
    cut_off: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def endless_body() -> Iterator[EndlessBody]:
    server = socket.create_server(("127.0.0.1", 0))
    peer = EndlessBody(f"http://127.0.0.1:{server.getsockname()[1]}/hook")
    chunk = b"x" * 65536

    def answer() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return  # closed at teardown
        with connection:
            connection.recv(65536)
            try:
                # No Content-Length: the body ends only when the peer closes.
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                for _ in range(ENDLESS_BODY_CAP_BYTES // len(chunk)):
                    connection.sendall(chunk)
            except OSError:
                peer.cut_off.set()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield peer
    server.close()
    thread.join(5.0)


def test_a_2xx_followed_by_an_endless_body_is_delivered_without_reading_the_body(
    endless_body: EndlessBody,
) -> None:
    # GIVEN a peer that takes the message, answers 200, then sends a body without end
    # WHEN a message is posted to it, with time enough to read tens of megabytes
    post_json(endless_body.url, {"text": "hello"}, timeout_seconds=30)
    # THEN the post counts as delivered and the router hung up instead of reading on: a body
    # read to the end of the attempt's time fills the function's memory (256 MB) in a second,
    # and the invocation dies after the channel took the alert, unrecorded, so its retry posts
    # it again
    assert endless_body.cut_off.wait(THREAD_REACHED_SECONDS)
