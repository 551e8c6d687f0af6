"""API Gateway HTTP API events (payload format 2.0) in, proxy responses out.

A function with an `HttpRoute` trigger receives the request as an HTTP API event; it validates
it as `fleet_shared.http_api_event.HttpApiEvent` with `event_parsing.parse_event`, decodes the
JSON body with `json_body`, and answers with `http_response`. Non-HTTP events (schedules, direct
invocations) carry the payload as the event itself, so `is_http_api_event` lets one handler serve
both, and import the event's models only when a request comes: building their classes is about
15 M instructions of eks_scaler's import, which a scheduled invocation never uses.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from fleet_shared.event_parsing import decode_json
from fleet_shared.exceptions import EventValidationError
from fleet_shared.handler import strict_json

BODY_FIELD = "body"
BODY_BYTES_MOST = 64 * 1024
"""The largest request body read (decoded, in bytes). API Gateway passes bodies up to its own
10 MB and Lambda takes 6 MB; an operations request is a few kilobytes (the scaler's largest,
naming a cluster's most node groups, about 20 KB), so a larger one is a mistake or an attack,
refused before it is decoded."""


def is_http_api_event(event: object) -> bool:
    """Whether `event` is an HTTP API payload v2 event (not a REST API v1 or another source)."""
    if not isinstance(event, Mapping) or event.get("version") != "2.0":
        return False
    request_context = event.get("requestContext")
    return isinstance(request_context, Mapping) and isinstance(request_context.get("http"), Mapping)


def json_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """The request body as a JSON object, base64-decoded first when API Gateway encoded it.

    Raises `EventValidationError` on field `body` when the body is missing, larger than
    BODY_BYTES_MOST, not valid base64/UTF-8/JSON, nested deeper than the JSON decoder goes, or
    JSON but not an object.
    """
    body = event.get("body")
    if not body:
        raise EventValidationError(BODY_FIELD, "is empty; expected a JSON object")
    if not isinstance(body, str):
        raise EventValidationError(BODY_FIELD, f"expected a string, got {type(body).__name__}")
    if event.get("isBase64Encoded"):
        # Four base64 characters carry three bytes, less up to two of padding.
        _check_body_size((len(body) - 2) * 3 // 4)
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise EventValidationError(BODY_FIELD, f"is not valid base64 UTF-8: {error}") from None
    else:
        # Each character is a byte or more: counted first, the text is encoded only when short.
        _check_body_size(len(body))
    _check_body_size(len(body.encode("utf-8", "surrogatepass")))
    decoded = decode_json(body, BODY_FIELD)
    if not isinstance(decoded, dict):
        raise EventValidationError(
            BODY_FIELD, f"expected a JSON object, got {type(decoded).__name__}"
        )
    return decoded


def _check_body_size(size: int) -> None:
    if size > BODY_BYTES_MOST:
        raise EventValidationError(
            BODY_FIELD, f"is {size} bytes or more; at most {BODY_BYTES_MOST} are read"
        )


def http_response(status_code: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """A payload v2 proxy response carrying `body` as standard JSON (a NaN or infinite number
    becomes null: the skeleton cannot see inside the body text)."""
    return {
        "statusCode": status_code,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(strict_json(body), allow_nan=False),
        "isBase64Encoded": False,
    }
