"""An S3 object's bytes read only up to a size its reader can take into memory.

A GetObject's `Body.read()` takes the whole object, whatever its size: a huge object, written by
mistake or by someone who may write the bucket, takes the function past its memory, and Lambda
ends the invocation with nothing done. `bounded_body` refuses it instead, unread when S3's
`ContentLength` says so, else once more bytes than the bound came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet_shared.exceptions import ObjectTooLargeError


def bounded_body(response: Mapping[str, Any], key: str, max_bytes: int, etag: str = "") -> bytes:
    """The bytes of the GetObject answer `response` of object `key`. Raises
    ObjectTooLargeError (naming `key` and `etag`), without reading the body, for an object over
    `max_bytes` by its length, or as soon as its bytes pass `max_bytes` when the length
    understates them."""
    body = response["Body"]
    length = response.get("ContentLength")
    if isinstance(length, int) and length > max_bytes:
        body.close()
        raise ObjectTooLargeError(key, length, max_bytes, etag)
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
