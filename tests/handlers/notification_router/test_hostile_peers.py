"""A webhook peer on 127.0.0.1 that answers in ways meant to hold or swamp the router."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handlers.notification_router.channels import post_json
from tests.handlers.deadlines import THREAD_REACHED_SECONDS
from tests.handlers.local_peers import LocalPeer

ENDLESS_BODY_CAP_BYTES = 64 * 1024 * 1024
"""Where the "endless" body stops, so that a router reading it all ends the test: far more than
the socket buffers of both ends hold."""


@pytest.fixture
def endless_body() -> Iterator[LocalPeer]:
    """A peer that answers 200 and then a body without end (up to `ENDLESS_BODY_CAP_BYTES`);
    its `cut_off` is set once the client hung up before the peer sent all of it."""
    chunk = b"x" * 65536
    # No Content-Length: the body ends only when the peer closes.
    with LocalPeer(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        [chunk] * (ENDLESS_BODY_CAP_BYTES // len(chunk)),
    ) as peer:
        yield peer


def test_a_2xx_followed_by_an_endless_body_is_delivered_without_reading_the_body(
    endless_body: LocalPeer,
) -> None:
    # GIVEN a peer that takes the message, answers 200, then sends a body without end
    # WHEN a message is posted to it, with time enough to read tens of megabytes
    post_json(endless_body.url("/hook"), {"text": "hello"}, timeout_seconds=30)
    # THEN the post counts as delivered and the router hung up instead of reading on: a body
    # read to the end of the attempt's time fills the function's memory (256 MB) in a second,
    # and the invocation dies after the channel took the alert, unrecorded, so its retry posts
    # it again
    assert endless_body.cut_off.wait(THREAD_REACHED_SECONDS)
