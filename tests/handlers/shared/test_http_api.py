"""Behaviour of fleet_shared.http_api: HTTP API v2 events in, proxy responses out."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest

from fleet_shared.event_parsing import parse_event
from fleet_shared.exceptions import EventValidationError
from fleet_shared.http_api import BODY_BYTES_MOST, http_response, is_http_api_event, json_body
from fleet_shared.http_api_event import HttpApiEvent
from tests.handlers.fresh_interpreter import probe_output


def http_event(body: str | None, *, encoded: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /scale",
        "rawPath": "/scale",
        "requestContext": {"http": {"method": "POST", "path": "/scale"}},
        "isBase64Encoded": encoded,
    }
    if body is not None:
        event["body"] = body
    return event


def test_http_api_v2_event_is_recognised_and_others_are_not() -> None:
    # GIVEN an HTTP API v2 event, a REST v1 event and a scheduled payload
    rest_v1 = {"version": "1.0", "httpMethod": "POST", "requestContext": {}}
    # WHEN checked THEN only the v2 event is an HTTP API event
    assert is_http_api_event(http_event("{}"))
    assert not is_http_api_event(rest_v1)
    assert not is_http_api_event({"action": "scale_up"})
    assert not is_http_api_event([1])


def test_plain_json_body_is_decoded() -> None:
    # GIVEN a JSON body WHEN decoded THEN the object comes back
    assert json_body(http_event('{"cluster": "dev-apps"}')) == {"cluster": "dev-apps"}


def test_base64_body_is_decoded_first() -> None:
    # GIVEN a body API Gateway base64-encoded WHEN decoded THEN the JSON object comes back
    encoded = base64.b64encode(b'{"cluster": "dev-apps"}').decode("ascii")
    assert json_body(http_event(encoded, encoded=True)) == {"cluster": "dev-apps"}


@pytest.mark.parametrize(
    ("body", "encoded", "problem"),
    [
        ("{not json", False, "not valid JSON"),
        ("[1, 2]", False, "expected a JSON object, got list"),
        (None, False, "is empty"),
        ("***", True, "not valid base64"),
        ("[" * 50_000, False, "nested too deeply"),
        # Past the bound, refused before it is decoded: counted in characters, in UTF-8 bytes
        # (two per "é"), and in the bytes a base64 body decodes to.
        (f'{{"a": "{"x" * BODY_BYTES_MOST}"}}', False, f"at most {BODY_BYTES_MOST} are read"),
        (f'{{"a": "{"é" * 40_000}"}}', False, "is 80009 bytes or more"),
        (
            base64.b64encode(b"x" * (BODY_BYTES_MOST + 1)).decode("ascii"),
            True,
            f"at most {BODY_BYTES_MOST} are read",
        ),
    ],
)
def test_bad_body_is_reported_on_field_body(body: str | None, encoded: bool, problem: str) -> None:
    # GIVEN a body that is not a JSON object WHEN decoded THEN the error names `body`
    with pytest.raises(EventValidationError) as raised:
        json_body(http_event(body, encoded=encoded))
    assert raised.value.field == "body"
    assert problem in raised.value.problem


def test_response_carries_json_body_and_content_type() -> None:
    # GIVEN a result WHEN turned into a response THEN it is a v2 proxy response with JSON
    response = http_response(400, {"status": "error", "error": "bad"})
    assert response["statusCode"] == 400
    assert response["headers"] == {"content-type": "application/json"}
    assert json.loads(response["body"]) == {"status": "error", "error": "bad"}
    assert response["isBase64Encoded"] is False


def test_response_body_is_strict_json() -> None:
    # GIVEN a result holding NaN and an infinite number
    result = {"status": "ok", "ratio": math.nan, "limit": math.inf}
    # WHEN turned into a response THEN its body is standard JSON with nulls in their place
    body = http_response(200, result)["body"]
    assert "NaN" not in body and "Infinity" not in body
    assert json.loads(body) == {"status": "ok", "ratio": None, "limit": None}


EXAMPLE_REQUEST = Path(__file__).parents[3] / "events" / "eks_scaler" / "http_api_scale_up.json"


@pytest.mark.parametrize("source_ip", ["198.51.100.7", "10.1.15.242:39870", "[2001:db8::1]:443"])
def test_http_api_request_with_a_source_address_and_port_is_read(source_ip: str) -> None:
    # GIVEN the example request from an address, with or without the port a proxy adds
    event = json.loads(EXAMPLE_REQUEST.read_text())
    event["requestContext"]["http"]["sourceIp"] = source_ip
    # WHEN validated THEN it is accepted and the caller is read
    request = parse_event(HttpApiEvent, event)
    assert request.requestContext.authorizer is not None
    assert request.requestContext.authorizer.iam is not None
    assert request.requestContext.authorizer.iam.userArn.endswith(":user/platform-oncall")


def test_http_api_request_from_an_invalid_address_names_the_field() -> None:
    # GIVEN the example request with a source address that is not an IP address
    event = json.loads(EXAMPLE_REQUEST.read_text())
    event["requestContext"]["http"]["sourceIp"] = "not-an-address:80"
    # WHEN validated THEN it is refused naming requestContext.http.sourceIp
    with pytest.raises(EventValidationError) as refused:
        parse_event(HttpApiEvent, event)
    assert refused.value.field.startswith("requestContext.http.sourceIp")
    assert "Invalid IP address in sourceIp: not-an-address" in str(refused.value)


@pytest.mark.parametrize("source_ip", [None, [], {"ip": "10.0.0.1"}])
def test_http_api_request_whose_source_address_is_not_a_string_names_the_field(
    source_ip: object,
) -> None:
    # GIVEN the example request whose source address is not a string at all
    event = json.loads(EXAMPLE_REQUEST.read_text())
    event["requestContext"]["http"]["sourceIp"] = source_ip
    # WHEN validated THEN it is refused naming requestContext.http.sourceIp (no AttributeError)
    with pytest.raises(EventValidationError) as refused:
        parse_event(HttpApiEvent, event)
    assert refused.value.field.startswith("requestContext.http.sourceIp")


_IMPORT_PROBE = """
import json, sys
import handlers.eks_scaler.app as app
imported = [name in sys.modules for name in ("fleet_shared.http_api_event", "pydantic.networks")]
call = app.parse(json.loads(sys.argv[1]))
print(*imported, type(call.event).__name__, call.over_http)
"""


def test_http_api_event_models_are_imported_only_when_a_request_comes() -> None:
    # GIVEN a fresh interpreter with eks_scaler imported (the event's models and
    # pydantic.networks are a fifth of its own import cost, unused by a scheduled run)
    event = json.loads(EXAMPLE_REQUEST.read_text())
    # WHEN the function is imported, then the example request parsed
    printed = probe_output(_IMPORT_PROBE, json.dumps(event))
    # THEN the import left both out, and the request is still read as an HTTP request
    assert printed == ["False", "False", "ScalerEvent", "True"]
