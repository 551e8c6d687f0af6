"""eks_scaler: scales EKS managed node groups in member accounts, desiredSize only, within the
floors and max sizes of the stack file; on the cluster schedules, on `POST /scale` (HTTP API,
answered as HTTP responses) or when another function asks. Reference:
docs/functions/eks_scaler.md.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import EventValidationError, FleetError, RequestInProgressError
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.http_api import http_response, is_http_api_event, json_body
from fleet_shared.http_api_alias import HTTP_API_ALIAS, invoked_through_the_api
from handlers.eks_scaler.actions import run, unfinished_results
from handlers.eks_scaler.environment import ScalerEnvironment
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from handlers.eks_scaler.models import (
    Action,
    ScalerCall,
    ScalerEvent,
    Status,
    check_node_groups,
)
from handlers.eks_scaler.services import ScalerServices

FUNCTION = FleetFunction("eks_scaler", ScalerEnvironment, services=ScalerServices.create)
HTTP_REQUEST_ID_PREFIX = "http-"
"""Put before an HTTP caller's `request_id` (with the caller's scope, `callers_request_id`): the
fleet's own callers name their requests (`schedule-<action>-<run>`, `predictive-<hour>`, ...),
and an HTTP request under one of those names would be remembered as that request, whose own run
would then be answered from the HTTP request's stored result and change nothing."""
CALLER_SCOPE_DIGITS = 16
"""Hex digits of the SHA-256 of the caller's ARN that scope its `request_id`: 64 bits, so two
callers' scopes meet with a chance of about one in 10**19, and the id stays short whatever the
ARN's length."""
HTTP_REQUEST_ID_REQUIRED = (
    "is required over HTTP for every action but analyze: an id of yours (a ticket number), sent "
    "again with a retry, so that the retry is answered and not made a second time"
)
"""The refusal of an HTTP change without `request_id` (kept under the 200 characters an error
echoes). A change needs an id its retry repeats: API Gateway's `requestContext.requestId` is
new for every HTTP request, a caller's retry after a 504 (API Gateway stops waiting at 30 s,
the scaler does not) included, so an id derived from it would make that retry a second change,
and Lambda's request id is new for every invocation API Gateway makes."""
CALLER_FIELD = "requestContext.authorizer.iam.userArn"
"""Where API Gateway puts the IAM caller it verified (every route is `AWS_IAM`)."""
NOT_THROUGH_THE_API = (
    f"is an HTTP API request's, but the invocation did not come through the API (alias "
    f"{HTTP_API_ALIAS}); a direct invocation sends the scaler event as it is"
)
"""The refusal of an HTTP-shaped event invoked directly: its caller would be whoever it names."""


def parse(event: object) -> ScalerCall:
    """A schedule or function event as it is, or an HTTP API (payload v2) request whose JSON
    body is the same event, with a `request_id` unless it is `analyze` (HTTP_REQUEST_ID_REQUIRED);
    raises EventValidationError naming the field."""
    if not is_http_api_event(event):
        return ScalerCall(_scaler_event(event))
    # Imported here: building the event's model classes would cost every scheduled cold start.
    from fleet_shared.http_api_event import HttpApiEvent  # noqa: PLC0415

    request = parse_event(HttpApiEvent, event)
    authorizer = request.requestContext.authorizer
    caller = authorizer.iam.userArn if authorizer is not None and authorizer.iam else None
    if not caller:
        # Not a request API Gateway authorised: the route is AWS_IAM, so it always names one.
        raise EventValidationError(CALLER_FIELD, "is missing: the HTTP API names every caller")
    # json_body rather than a model-typed body: it also decodes a base64-encoded body.
    body = json_body(request.model_dump(include={"body", "isBase64Encoded"}))
    scaler_event = _scaler_event(body)
    if scaler_event.request_id is None:
        if scaler_event.action is not Action.ANALYZE:
            raise EventValidationError("request_id", HTTP_REQUEST_ID_REQUIRED)
    else:
        scaler_event = scaler_event.model_copy(
            update={"request_id": callers_request_id(scaler_event.request_id, caller)}
        )
    return ScalerCall(scaler_event, requested_by=caller, over_http=True)


def _scaler_event(payload: object) -> ScalerEvent:
    scaler_event = parse_event(ScalerEvent, payload)
    check_node_groups(scaler_event)
    return scaler_event


def callers_request_id(request_id: str, caller: str | None) -> str:
    """An HTTP caller's `request_id` as the scaler keeps it: `http-<scope>-<request_id>`, the
    scope being the caller's ARN's digest (CALLER_SCOPE_DIGITS). Ids are the callers' own (a
    ticket number), so two callers may send the same one: unscoped, the second was answered
    with the first one's result, or refused as a reuse, and took the first one's changes for
    its own. The same caller's repeat keeps its id, and so its answer."""
    scope = hashlib.sha256((caller or "").encode("utf-8")).hexdigest()[:CALLER_SCOPE_DIGITS]
    return f"{HTTP_REQUEST_ID_PREFIX}{scope}-{request_id}"


def http_error_response(error: FleetError, event: object) -> dict[str, Any]:
    """A refused request: the error result, as an HTTP response for HTTP API events (400 bad
    input, 409 a request with the same id in progress, 500 any other refusal). A bad variable
    is raised before this (`fleet_shared.handler`), and API Gateway answers that with its own
    5xx error."""
    result = error_result(error)
    if not is_http_api_event(event):
        return result
    if isinstance(error, EventValidationError):
        return http_response(400, result)
    if isinstance(error, RequestInProgressError):
        return http_response(409, result)
    return http_response(500, result)


@FUNCTION.handler(parse, error_response=http_error_response)
def handle(call: ScalerCall, services: ScalerServices, invocation: Invocation) -> dict[str, Any]:
    """Analyze or change; HTTP callers get 409 when the same request is running or every node
    group was locked (retry later), 200 otherwise (per-node-group outcomes are in the body).
    An HTTP request's caller is believed only when Lambda ran it through the API's alias
    (`fleet_shared.http_api_alias`); shaped like one and invoked directly, it is refused."""
    if call.over_http and not invoked_through_the_api(invocation.invoked_function_arn):
        raise EventValidationError("requestContext", NOT_THROUGH_THE_API)
    event = call.event if call.over_http else _keyed_on_the_invocation(call.event, invocation)
    result = run(
        event, services, invocation, requested_by=call.requested_by, over_http=call.over_http
    )
    results = result.get("results", [])
    changed = sum(item["status"] == Status.SCALING_INITIATED.value for item in results)
    FUNCTION.observability.metrics.add_metric(name="NodeGroupsScaled", unit="Count", value=changed)
    if not call.over_http:
        if event.scheduled:
            _fail_an_unfinished_run(event, result)
        return result
    if result.get("status") == "error":
        return http_response(409, result)
    statuses = {item["status"] for item in results}
    return http_response(409 if statuses == {Status.LOCKED.value} else 200, result)


def _keyed_on_the_invocation(event: ScalerEvent, invocation: Invocation) -> ScalerEvent:
    """`event`, with `invocation-<Lambda request id>` as its `request_id` when it has none.

    Lambda retries an asynchronous invocation with the same request id, so the retry of an
    invocation killed between a node group's update and its record finds the request's
    `change_intent` and records and announces the change once, as it does for a schedule's run.
    An HTTP change is not keyed so: a caller's retry is a new invocation, and `parse` refuses
    one without its caller's own `request_id`.
    """
    if event.request_id is not None:
        return event
    return event.model_copy(update={"request_id": f"invocation-{invocation.request_id}"})


def _fail_an_unfinished_run(event: ScalerEvent, result: dict[str, Any]) -> None:
    """Raise ScheduledRunUnfinishedError when a schedule's run left node groups locked, failed,
    or (a scale-down) held by the cooldown: nothing else retries a run that returned, and nobody
    reads its result."""
    unfinished = unfinished_results(event, result)
    if unfinished:
        raise ScheduledRunUnfinishedError(event.action.value, event.cluster, unfinished)


lambda_handler = FUNCTION.lambda_handler
