"""spot_optimizer: scores spot capacity per instance type and AZ, and handles spot interruption
warnings of the member accounts. See README.md, `### spot_optimizer`.

Events (examples under events/spot_optimizer/):
- `{"action": "analyze_fleet"}` (the hourly schedule): every SPOT node group of the inventory.
- `{"action": "analyze_opportunities", "account_id", "region", "instance_types": [...]}`.
- `{"action": "recommend_node_group_mix", "account_id", "region", "cluster"}`.
- The native EventBridge "EC2 Spot Instance Interruption Warning" (forwarded to the hub bus).
Any of them may carry `"dry_run": true`.

Environment variables (read once per container, validated; a bad one fails naming it):
- STATE_TABLE_NAME (required): interruptions, dedup claims, saved analyses, locks, changes.
- MEMBER_ROLE_NAME (required): role assumed in each member account.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_CRITICAL_ARN, ALERT_TOPIC_INFO_ARN: alert topics
  (interruptions are warnings, an applied on-demand fallback is info).
- HUB_ACCOUNT_ID: the hub account (asked from STS when unset).
- FLEET_DRY_RUN (default false): report what would change, change nothing.
- DATA_BUCKET_NAME, FLEET_INVENTORY_KEY (default config/fleet-inventory.json): the fleet
  inventory, required by analyze_fleet only.
- SPOT_RECOMMEND_SCORE (default 60): score (0-100) at or above which a type is recommended.
- SPOT_INTERRUPTION_THRESHOLD (default 3): more interruptions of a node group than this in one
  hour trigger the on-demand fallback proposal.
- SPOT_AUTO_APPLY (default false): apply the fallback (+1 on the on-demand group) instead of
  only proposing it.
- SPOT_HISTORY_DAYS (default 7): spot price history window.
- SPOT_HISTORY_TTL_DAYS (default 8): how long interruption records are kept.
- SPOT_CHANGE_HISTORY_TTL_DAYS (default 90): how long an applied fallback stays in the node
  group's change history.
- SPOT_ANALYSIS_TTL_DAYS (default 2): how long a saved fleet analysis is kept.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import EventValidationError, FleetError
from fleet_shared.observability import observability_for
from handlers.spot_optimizer.environment import SpotEnvironment
from handlers.spot_optimizer.fleet import analyze_fleet
from handlers.spot_optimizer.interruptions import handle_interruption
from handlers.spot_optimizer.mix import recommend_node_group_mix
from handlers.spot_optimizer.models import (
    Action,
    ActionOnly,
    AnalyzeFleetEvent,
    AnalyzeOpportunitiesEvent,
    InterruptionEvent,
    RecommendMixEvent,
)
from handlers.spot_optimizer.opportunities import analyze_opportunities
from handlers.spot_optimizer.runtime import FUNCTION_NAME, SpotRuntime

OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger

_MODELS = {
    Action.ANALYZE_FLEET: AnalyzeFleetEvent,
    Action.ANALYZE_OPPORTUNITIES: AnalyzeOpportunitiesEvent,
    Action.RECOMMEND_NODE_GROUP_MIX: RecommendMixEvent,
}


@functools.cache
def _runtime() -> SpotRuntime:
    return SpotRuntime.create(load_environment(SpotEnvironment))


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point for the schedule, direct invocations and the native interruption event."""
    invocation = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    return handle(event, _runtime(), invocation)


def parse_request(payload: object) -> Any:
    """The validated event model; raises EventValidationError naming the field."""
    if isinstance(payload, Mapping) and "detail-type" in payload:
        return parse_event(InterruptionEvent, payload)
    action = parse_event(ActionOnly, payload).action
    return parse_event(_MODELS[action], payload)


def handle(payload: object, runtime: SpotRuntime, invocation: str) -> dict[str, Any]:
    """The result of one event; bad input gives `{"status": "error"}` and changes nothing, and a
    failure of the one target of an event is reported the same way."""
    try:
        request = parse_request(payload)
    except EventValidationError as error:
        logger.warning("bad event", extra={"error": str(error)})
        return error_result(error)
    dry_run = request.dry_run or runtime.environment.fleet_dry_run
    try:
        return _dispatch(request, runtime, dry_run, f"{FUNCTION_NAME}:{invocation}")
    except (FleetError, ClientError, BotoCoreError) as error:
        logger.warning("request failed", extra={"error": str(error)})
        return error_result(error, **_context(request))


def _dispatch(request: Any, runtime: SpotRuntime, dry_run: bool, owner: str) -> dict[str, Any]:
    if isinstance(request, InterruptionEvent):
        result = handle_interruption(request, runtime, dry_run=dry_run, owner=owner)
        OBSERVABILITY.metrics.add_metric(name="SpotInterruptions", unit="Count", value=1)
        return result
    if isinstance(request, AnalyzeFleetEvent):
        return analyze_fleet(runtime, dry_run=dry_run)
    if isinstance(request, AnalyzeOpportunitiesEvent):
        analysis = analyze_opportunities(
            runtime, request.account_id, request.region, request.instance_types
        )
        return {"action": request.action.value, "dry_run": dry_run, **analysis}
    result = recommend_node_group_mix(runtime, request.account_id, request.region, request.cluster)
    return {**result, "dry_run": dry_run}


def _context(request: Any) -> dict[str, Any]:
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
