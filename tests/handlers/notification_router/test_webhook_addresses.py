"""A webhook host with several addresses, or one its resolver does not answer for: looking it
up and connecting to every address share the request's time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from handlers.notification_router.channels import post_json
from handlers.notification_router.exceptions import ChannelError

WEBHOOK_HOST = "hooks.example"


@dataclass
class TwoAddresses:
    """`WEBHOOK_HOST`'s two addresses on one port: 127.0.0.2, where connecting hangs (its
    listener's queue is full, so the connection is never made), then 127.0.0.3, which takes
    connections without answering them."""

    port: int
    reachable: socket.socket

    def connected_to_the_second(self) -> bool:
        """Whether a connection to 127.0.0.3 was made: the kernel makes it before the client's
        connect returns, so it waits in the listener's queue."""
        self.reachable.setblocking(False)
        try:
            connection, _ = self.reachable.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True


@pytest.fixture
def two_addresses(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoAddresses]:
    unreachable = socket.socket()
    unreachable.bind(("127.0.0.2", 0))
    unreachable.listen(0)
    port = unreachable.getsockname()[1]
    # One connection fills a queue of 0 (Linux takes one more than the backlog): the next
    # one's SYN is dropped, as by a host that is down.
    queued = socket.create_connection(("127.0.0.2", port))
    reachable = socket.create_server(("127.0.0.3", port))
    resolve = socket.getaddrinfo

    def resolver(host: str, *arguments: Any, **options: Any) -> list[Any]:
        if host != WEBHOOK_HOST:
            return resolve(host, *arguments, **options)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
            for address in ("127.0.0.2", "127.0.0.3")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    yield TwoAddresses(port, reachable)
    reachable.close()
    queued.close()
    unreachable.close()


def test_a_host_whose_first_address_hangs_gets_no_more_time_for_its_next_one(
    two_addresses: TwoAddresses,
) -> None:
    # GIVEN a webhook host whose first address never takes the connection
    # WHEN a message is posted to it with 0.3 s in all
    with pytest.raises(ChannelError) as raised:
        post_json(f"http://{WEBHOOK_HOST}:{two_addresses.port}/hook", {"text": "hi"}, 0.3)
    # THEN the post failed once that time was spent on the first address, and the next one was
    # not tried past it: each address had the whole timeout again, so a host of four unreachable
    # addresses held an attempt four times as long, past the time kept for it in the invocation
    assert "timed out" in str(raised.value) or "time is up" in str(raised.value)
    assert not two_addresses.connected_to_the_second()


@pytest.fixture
def silent_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """`WEBHOOK_HOST`'s lookup never answers until the returned event is set (at teardown)."""
    release = threading.Event()
    resolve = socket.getaddrinfo

    def resolver(host: str, *arguments: Any, **options: Any) -> list[Any]:
        if host != WEBHOOK_HOST:
            return resolve(host, *arguments, **options)
        release.wait()
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    yield release
    release.set()


def test_a_host_whose_lookup_never_answers_fails_the_post_within_its_time(
    silent_resolver: threading.Event,
) -> None:
    # GIVEN a webhook host whose resolver does not answer
    # WHEN a message is posted to it with 0.2 s in all
    with pytest.raises(ChannelError) as raised:
        post_json(f"http://{WEBHOOK_HOST}:9/hook", {"text": "hi"}, 0.2)
    # THEN the post fails saying its time was up looking the host up, with the lookup still
    # unanswered: it did not wait for the resolver to give up on its own
    assert "looking up its host" in str(raised.value)
    assert not silent_resolver.is_set()
