"""A peer on 127.0.0.1 that answers a GetObject at once and then trickles its body, a byte at a
time, each well within the client's read timeout: the fault of an S3 endpoint (or a proxy on
the way) that holds a reader as long as it likes, unless the reader bounds the whole read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TricklingObject:
    """A peer on 127.0.0.1 answering one GetObject at once with its status and headers, then its
    body one byte every 50 ms; `sent` counts the bytes the reader took before it hung up."""

    port: int
    size: int
    sent: int = 0
    asked: threading.Event = field(default_factory=threading.Event)

    def serve(self, server: socket.socket) -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            self.asked.set()
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f'Content-Length: {self.size}\r\nETag: "trickle"\r\n\r\n'.encode()
            )
            try:
                for _ in range(self.size):
                    connection.sendall(b" ")
                    self.sent += 1
                    # The peer's pace, not a wait of the test for something to happen.
                    threading.Event().wait(0.05)
            except OSError:
                return


@contextmanager
def trickling_get_object(client: Any, key_part: str, size: int) -> Iterator[TricklingObject]:
    """Send `client`'s GetObject of a key holding `key_part` to a `TricklingObject` peer of
    `size` bytes; other calls go to moto as before."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        peer = TricklingObject(server.getsockname()[1], size)

        def to_peer(request: Any, **_: Any) -> None:
            if key_part in request.url:
                request.url = f"http://127.0.0.1:{peer.port}/object"

        client.meta.events.register_first("before-send.s3.GetObject", to_peer, unique_id="peer")
        thread = threading.Thread(target=peer.serve, args=(server,), daemon=True)
        thread.start()
        try:
            yield peer
        finally:
            client.meta.events.unregister("before-send.s3.GetObject", unique_id="peer")
            thread.join(timeout=10)
