"""An S3 object's bytes read only up to a size its reader can take into memory, and, when asked,
within a time.

A GetObject's `Body.read()` takes the whole object, whatever its size: a huge object, written by
mistake or by someone who may write the bucket, takes the function past its memory, and Lambda
ends the invocation with nothing done. `bounded_body` refuses it instead, unread when S3's
`ContentLength` says so, else once more bytes than the bound came.

The client's read timeout bounds each socket read on its own: a body that trickles, a few bytes
within each timeout, holds the reader as long as it likes, until Lambda ends the invocation.
Given `within_seconds`, `bounded_body` shuts the answer's socket down once that time is up (a
read blocked on it then ends at once) and raises `ObjectReadTimeoutError` naming the object;
`streamed_within` does the same for a reader that streams a body too large to hold whole (a CUR
file through gzip and Arrow's CSV reader).
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from fleet_shared.exceptions import ObjectReadTimeoutError, ObjectTooLargeError


def bounded_body(
    response: Mapping[str, Any],
    key: str,
    max_bytes: int,
    etag: str = "",
    *,
    within_seconds: float | None = None,
) -> bytes:
    """The bytes of the GetObject answer `response` of object `key`. Raises
    ObjectTooLargeError (naming `key` and `etag`), without reading the body, for an object over
    `max_bytes` by its length, or as soon as its bytes pass `max_bytes` when the length
    understates them; and ObjectReadTimeoutError (naming `key`) when `within_seconds` is given
    and the bytes have not all come by then (an infinite time, an invocation with no deadline,
    is none)."""
    body = response["Body"]
    length = response.get("ContentLength")
    if isinstance(length, int) and length > max_bytes:
        body.close()
        raise ObjectTooLargeError(key, length, max_bytes, etag)
    with streamed_within(response, key, within_seconds) as stream:
        return _read_bounded(stream, key, max_bytes, etag)


@contextmanager
def streamed_within(
    response: Mapping[str, Any], key: str, within_seconds: float | None
) -> Iterator[Any]:
    """The body of the GetObject answer `response` of object `key`, for a reader that streams
    it (a file too large to hold whole) inside the block: when `within_seconds` is given (and
    finite), its socket is shut down once that time is up, so a read blocked on it ends at once,
    and the block ends in ObjectReadTimeoutError naming `key`, whatever error the read cut short
    raised in the reader (botocore's, gzip's, a parser's) or, the answer having no length,
    when the block ended as if the body had."""
    body = response["Body"]
    if within_seconds is None or math.isinf(within_seconds):
        yield body
        return
    cut_off = _Cutoff(_answer_socket(body))
    timer = threading.Timer(max(within_seconds, 0.0), cut_off)
    timer.daemon = True
    timer.start()
    try:
        yield body
    except ObjectTooLargeError:
        raise
    except Exception as error:
        # A read the cut-off ended fails as botocore sees a socket shut: a body cut short.
        if cut_off.done.is_set():
            # Closed, so its connection, shut down, goes back to no pool.
            with suppress(Exception):
                body.close()
            raise ObjectReadTimeoutError(key, within_seconds) from error
        raise
    finally:
        timer.cancel()
    if cut_off.done.is_set() and not isinstance(response.get("ContentLength"), int):
        # Without a length botocore cannot tell a body the cut-off ended from a whole one.
        raise ObjectReadTimeoutError(key, within_seconds)


def _read_bounded(body: Any, key: str, max_bytes: int, etag: str) -> bytes:
    chunks: list[bytes] = []
    received = 0
    # Read until an empty chunk: botocore checks the bytes received against the length on that
    # read only (a body cut short is then an IncompleteReadError, which a retry may mend).
    while chunk := body.read(max_bytes + 1 - received):
        chunks.append(chunk)
        received += len(chunk)
        if received > max_bytes:
            body.close()
            raise ObjectTooLargeError(key, received, max_bytes, etag)
    return b"".join(chunks)


def _answer_socket(body: Any) -> socket.socket | None:
    """The socket a streamed answer is read from, by the path botocore's own
    `StreamingBody.set_socket_timeout` takes; None for a body read from memory (moto's
    in-process answers) or one whose stream no longer has it."""
    try:
        candidate = body._raw_stream._fp.fp.raw._sock
    except AttributeError:
        return None
    return candidate if isinstance(candidate, socket.socket) else None


class _Cutoff:
    """Called once the time is up: notes it, and shuts the answer's socket down so that a read
    blocked on it ends at once (closing it would not wake that read)."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock
        self.done = threading.Event()

    def __call__(self) -> None:
        self.done.set()
        if self._sock is not None:
            with suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
