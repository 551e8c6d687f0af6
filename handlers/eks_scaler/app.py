"""eks_scaler: scales EKS managed node groups in member accounts on schedule or request.

Actions: `scale_up`, `scale_down`, `restore` (change sizes, within floors, under the node group
lock shared with spot_optimizer, with cooldown and idempotency) and `analyze` (changes nothing).
Events come from the cluster schedules, the fleet's HTTP API (payload v2 with the same JSON as
body, answered as HTTP responses) or other functions. See README.md, `### eks_scaler`.

Environment variables (read once per container, validated; a bad one fails naming it):
- STATE_TABLE_NAME (required): locks, idempotency, cooldowns, saved sizes, change history.
- MEMBER_ROLE_NAME (required): role assumed in each member account.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_INFO_ARN, ALERT_TOPIC_CRITICAL_ARN: alert topics; every
  change is announced at info level.
- HUB_ACCOUNT_ID: the hub account (asked from STS when unset).
- FLEET_DRY_RUN (default false): report what would change, change nothing.
- DATA_BUCKET_NAME, FLEET_INVENTORY_KEY (default config/fleet-inventory.json): the fleet
  inventory, source of configured floors; when DATA_BUCKET_NAME is unset the default floors apply
  (1 ON_DEMAND, 0 SPOT); when set but unreadable, changes are refused.
- FORECASTER_FUNCTION_NAME: the demand forecaster invoked by `analyze`; unset = no forecast.
- SCALER_COOLDOWN_SECONDS (default 300): no decrease within this time of the last change.
- SCALER_HISTORY_TTL_DAYS (default 90): how long change history is kept.
- SCALER_IDEMPOTENCY_TTL_HOURS (default 48): how long a request_id is remembered.
- SCALER_UTILIZATION_WINDOW_MINUTES (default 60): utilisation window of `analyze`.
- SCALER_SCALE_UP_UTILIZATION (default 75) / SCALER_SCALE_DOWN_UTILIZATION (default 30): the
  utilisation (%) above/below which `analyze` recommends one node more/less.
- SCALER_FORECAST_TIMEOUT_SECONDS (default 30): read timeout of the forecaster call.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import (
    EventValidationError,
    FleetError,
    RequestInProgressError,
)
from fleet_shared.http_api import http_response, is_http_api_event, json_body
from fleet_shared.observability import observability_for
from handlers.eks_scaler.analysis import analyze
from handlers.eks_scaler.environment import ScalerEnvironment
from handlers.eks_scaler.models import Action, ScalerEvent, Status, check_node_groups
from handlers.eks_scaler.models import node_group_result as _result
from handlers.eks_scaler.runtime import FUNCTION_NAME, ScalerRuntime
from handlers.eks_scaler.scaling import scale_node_groups

OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger

IDEMPOTENCY_SCOPE = FUNCTION_NAME
_RETRYABLE = frozenset({Status.LOCKED.value, Status.ERROR.value})


@functools.cache
def _runtime() -> ScalerRuntime:
    return ScalerRuntime.create(load_environment(ScalerEnvironment))


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: HTTP API events get HTTP responses, everything else gets the result dict."""
    invocation = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    if is_http_api_event(event):
        return handle_http(event, _runtime(), invocation)
    return handle(event, _runtime(), invocation)


def handle_http(event: dict[str, Any], runtime: ScalerRuntime, invocation: str) -> dict[str, Any]:
    """400 for bad input, 409 when a request with the same id is running or every node group
    was locked (retry later), 200 otherwise (per-node-group outcomes are in the body)."""
    try:
        request = parse_request(json_body(event))
    except EventValidationError as error:
        logger.warning("bad HTTP request", extra={"error": str(error)})
        return http_response(400, error_result(error))
    caller = event.get("requestContext", {}).get("authorizer", {}).get("iam", {}).get("userArn")
    result = run(request, runtime, invocation, requested_by=caller)
    if result.get("status") == "error":
        return http_response(409, result)
    statuses = {item["status"] for item in result["results"]}
    return http_response(409 if statuses == {Status.LOCKED.value} else 200, result)


def handle(payload: object, runtime: ScalerRuntime, invocation: str) -> dict[str, Any]:
    """The result for a schedule or function event; bad input gives `{"status": "error"}`."""
    try:
        request = parse_request(payload)
    except EventValidationError as error:
        logger.warning("bad event", extra={"error": str(error)})
        return error_result(error)
    return run(request, runtime, invocation)


def parse_request(payload: object) -> ScalerEvent:
    """The validated event; raises EventValidationError naming the field."""
    request = parse_event(ScalerEvent, payload)
    check_node_groups(request)
    return request


def run(
    event: ScalerEvent,
    runtime: ScalerRuntime,
    invocation: str,
    *,
    requested_by: str | None = None,
) -> dict[str, Any]:
    """Analyze, or change under idempotency when the event has a request_id (not in dry run,
    which writes nothing)."""
    dry_run = event.dry_run or runtime.environment.fleet_dry_run
    if event.action is Action.ANALYZE:
        inventory, problem = _inventory(runtime)
        analysis = analyze(event, runtime, inventory)
        if problem:
            analysis["inventory"] = problem
        return {**_header(event, dry_run=True), **analysis}
    if event.request_id is None or dry_run:
        return _change(event, runtime, dry_run, invocation, requested_by)
    request_key = f"{event.account_id}/{event.region}/{event.cluster}/{event.request_id}"
    ttl = runtime.environment.scaler_idempotency_ttl_hours * 3600
    try:
        with runtime.state.idempotent(IDEMPOTENCY_SCOPE, request_key, ttl) as request:
            if request.is_repeat and request.result is not None:
                return {**request.result, "repeated_request": True}
            result = _change(event, runtime, dry_run, invocation, requested_by)
            # Locked or failed node groups leave the request open, so a retry can finish it;
            # node groups that did change are then found already at their target.
            if not any(item["status"] in _RETRYABLE for item in result["results"]):
                request.complete(result)
            return result
    except RequestInProgressError as error:
        return error_result(error, action=event.action.value, request_id=event.request_id)


def _change(
    event: ScalerEvent,
    runtime: ScalerRuntime,
    dry_run: bool,
    invocation: str,
    requested_by: str | None,
) -> dict[str, Any]:
    inventory, problem = _inventory(runtime)
    if problem:
        # Floors cannot be known: refuse every change rather than assume the defaults.
        results = [_result(group.name, Status.ERROR, problem) for group in event.nodegroups]
    else:
        results = scale_node_groups(
            event,
            runtime,
            dry_run=dry_run,
            owner=f"{FUNCTION_NAME}:{invocation}",
            inventory=inventory,
            requested_by=requested_by,
        )
    changed = sum(item["status"] == Status.SCALING_INITIATED.value for item in results)
    OBSERVABILITY.metrics.add_metric(name="NodeGroupsScaled", unit="Count", value=changed)
    return {**_header(event, dry_run=dry_run), "results": results}


def _inventory(runtime: ScalerRuntime) -> tuple[Any, str | None]:
    try:
        return runtime.inventory(), None
    except FleetError as error:
        return None, str(error)


def _header(event: ScalerEvent, *, dry_run: bool) -> dict[str, Any]:
    return {
        "action": event.action.value,
        "account_id": event.account_id,
        "region": event.region,
        "cluster": event.cluster,
        "dry_run": dry_run,
    }
