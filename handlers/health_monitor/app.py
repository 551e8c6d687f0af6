"""health_monitor: the health of every member cluster, with severities, alerts and metrics.

Events: the 5-minute `check_fleet`, `check_cluster` for one cluster of the inventory, and the
native "CloudWatch Alarm State Change" forwarded from a member account. The checks are registered
in `checks/__init__.py`. Reference: docs/functions/health_monitor.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fleet_shared.event_parsing import parse_event
from fleet_shared.exceptions import EventValidationError
from fleet_shared.handler import FleetFunction, Invocation
from handlers.health_monitor.actions import alarm_state_change, check_cluster, check_fleet
from handlers.health_monitor.environment import HealthEnvironment
from handlers.health_monitor.models import ALARM_EVENT_SOURCE, CheckClusterEvent, CheckFleetEvent
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices

if TYPE_CHECKING:
    from handlers.health_monitor.alarm_events import AlarmStateChangeEvent

    HealthRequest = CheckFleetEvent | CheckClusterEvent | AlarmStateChangeEvent

FUNCTION = FleetFunction(FUNCTION_NAME, HealthEnvironment, services=HealthServices.create)

_ACTION_MODELS: dict[str, type[CheckFleetEvent] | type[CheckClusterEvent]] = {
    "check_fleet": CheckFleetEvent,
    "check_cluster": CheckClusterEvent,
}


def parse_request(event: object) -> HealthRequest:
    """The alarm state change (by its `source` or `detail-type`) or the model its `action`
    names; raises EventValidationError naming the field."""
    if not isinstance(event, Mapping):
        raise EventValidationError("event", f"expected a JSON object, got {type(event).__name__}")
    if event.get("source") == ALARM_EVENT_SOURCE or "detail-type" in event:
        # Imported here: a scheduled check never builds the alarm event's models.
        from handlers.health_monitor.alarm_events import AlarmStateChangeEvent  # noqa: PLC0415

        return parse_event(AlarmStateChangeEvent, event)
    action = event.get("action")
    if not isinstance(action, str) or action not in _ACTION_MODELS:
        expected = ", ".join(sorted(_ACTION_MODELS))
        raise EventValidationError(
            "action", f"must be one of {expected} (or an alarm state change event)"
        )
    return parse_event(_ACTION_MODELS[action], event)


@FUNCTION.handler(parse_request)
def handle(
    request: HealthRequest, services: HealthServices, invocation: Invocation
) -> dict[str, Any]:
    """The report of the check the event asks for."""
    if isinstance(request, CheckClusterEvent):
        return check_cluster(request, services, invocation)
    if isinstance(request, CheckFleetEvent):
        return check_fleet(services, invocation)
    return alarm_state_change(request, services, invocation)


lambda_handler = FUNCTION.lambda_handler
