"""spot_optimizer: scores spot capacity per instance type and AZ, and handles the spot
interruption warnings of the member accounts.

Events: the hourly `analyze_fleet`, `analyze_opportunities`, `recommend_node_group_mix` and the
native "EC2 Spot Instance Interruption Warning" (any other EventBridge event is ignored).
Reference: docs/functions/spot_optimizer.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import call_error_text
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import DeploymentError, FleetError
from fleet_shared.handler import FleetFunction, Invocation
from handlers.spot_optimizer.environment import SpotEnvironment
from handlers.spot_optimizer.fleet import analyze_fleet
from handlers.spot_optimizer.interruptions import handle_interruption
from handlers.spot_optimizer.mix import recommend_node_group_mix
from handlers.spot_optimizer.models import (
    Action,
    ActionOnly,
    AnalyzeFleetEvent,
    AnalyzeOpportunitiesEvent,
    IgnoredEvent,
    InterruptionEvent,
    RecommendMixEvent,
)
from handlers.spot_optimizer.opportunities import analyze_opportunities
from handlers.spot_optimizer.services import FUNCTION_NAME, SpotServices

FUNCTION = FleetFunction(FUNCTION_NAME, SpotEnvironment, services=SpotServices.create)

SpotRequest = AnalyzeFleetEvent | AnalyzeOpportunitiesEvent | RecommendMixEvent | InterruptionEvent

_MODELS = {
    Action.ANALYZE_FLEET: AnalyzeFleetEvent,
    Action.ANALYZE_OPPORTUNITIES: AnalyzeOpportunitiesEvent,
    Action.RECOMMEND_NODE_GROUP_MIX: RecommendMixEvent,
}


def parse_request(payload: object) -> SpotRequest | IgnoredEvent:
    """The interruption event (an EventBridge event, recognised by its `source` or
    `detail-type`; ignored unless it is the AWS interruption warning) or the model its `action`
    names; raises EventValidationError naming the field."""
    if isinstance(payload, Mapping) and ("detail-type" in payload or "source" in payload):
        ignored = IgnoredEvent.unless_interruption(payload)
        return ignored if ignored is not None else parse_event(InterruptionEvent, payload)
    action = parse_event(ActionOnly, payload).action
    return parse_event(_MODELS[action], payload)


@FUNCTION.handler(parse_request)
def handle(
    request: SpotRequest | IgnoredEvent, services: SpotServices, invocation: Invocation
) -> dict[str, Any]:
    """The result of one event. Each event concerns one target (a node group, a region, the
    fleet's inventory): when it fails, the error result names that target. An alert SNS, or
    its delivery claim or an interruption record the state table, did not take, and a warned
    instance the member account did not describe, fail the invocation
    (`AlertNotDeliveredError`, `NoticesNotDeliveredError`, `InterruptionNotRecordedError`
    propagate), so the platform retries; so does an inventory S3 did not serve
    (`InventoryUnreadableError`), and a wrong deployment, an invalid inventory or variable
    (`DeploymentError`), which the skeleton raises naming it."""
    if isinstance(request, IgnoredEvent):
        return _ignore(request)
    dry_run = request.dry_run or services.environment.fleet_dry_run
    try:
        return _dispatch(request, services, dry_run, invocation)
    except DeploymentError:
        # A FleetError too, but no retry or error result mends it: the Errors alarm tells people.
        raise
    except (FleetError, ClientError, BotoCoreError) as error:
        FUNCTION.logger.warning("request failed", extra={"error": call_error_text(error)})
        return error_result(error, **_context(request))


def _dispatch(
    request: SpotRequest, services: SpotServices, dry_run: bool, invocation: Invocation
) -> dict[str, Any]:
    if isinstance(request, InterruptionEvent):
        result = handle_interruption(
            request,
            services,
            dry_run=dry_run,
            owner=f"{FUNCTION_NAME}:{invocation.request_id}",
            deadline=invocation,
        )
        FUNCTION.observability.metrics.add_metric(name="SpotInterruptions", unit="Count", value=1)
        return result
    if isinstance(request, AnalyzeFleetEvent):
        return analyze_fleet(services, dry_run=dry_run, deadline=invocation)
    if isinstance(request, AnalyzeOpportunitiesEvent):
        analysis = analyze_opportunities(
            services,
            request.account_id,
            request.region,
            request.instance_types,
            deadline=invocation,
        )
        return {"action": request.action.value, "dry_run": dry_run, **analysis}
    result = recommend_node_group_mix(
        services, request.account_id, request.region, request.cluster, deadline=invocation
    )
    return {**result, "dry_run": dry_run}


def _ignore(event: IgnoredEvent) -> dict[str, Any]:
    """Log and count an event that is not a spot interruption warning; nothing is kept."""
    FUNCTION.logger.warning("event ignored", extra=event.model_dump())
    FUNCTION.observability.metrics.add_metric(name="EventsIgnored", unit="Count", value=1)
    return {"status": "ignored", "reason": event.reason, "event_id": event.event_id}


def _context(request: SpotRequest) -> dict[str, Any]:
    if isinstance(request, InterruptionEvent):
        return {
            "action": "handle_interruption",
            "account_id": request.account,
            "region": request.region,
            "instance_id": request.detail.instance_id,
        }
    context: dict[str, Any] = {"action": request.action.value}
    for field in ("account_id", "region", "cluster"):
        if hasattr(request, field):
            context[field] = getattr(request, field)
    return context


lambda_handler = FUNCTION.lambda_handler
