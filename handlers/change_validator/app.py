"""change_validator: validates every EKS change in the member accounts (cluster and node group
versions, launch templates, scaling, the fleet scaler's own changes) against the health the
cluster had before it, and names the rollback. Events: the forwarded CloudTrail record of the
change, and the callbacks of its own one-time schedules. Reference:
docs/functions/change_validator.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet_shared.event_parsing import parse_event
from fleet_shared.exceptions import EventValidationError
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.validation_errors import shown_value
from handlers.change_validator.environment import ValidatorEnvironment
from handlers.change_validator.models import (
    CLOUDTRAIL_API_CALL,
    EKS_SOURCE,
    EksChangeEvent,
    FollowUpEvent,
    SweepEvent,
    check_change,
)
from handlers.change_validator.services import FUNCTION_NAME, ValidatorServices
from handlers.change_validator.sweep import sweep
from handlers.change_validator.validation import follow_up, start

FUNCTION = FleetFunction(FUNCTION_NAME, ValidatorEnvironment, services=ValidatorServices.create)

ValidatorRequest = EksChangeEvent | FollowUpEvent | SweepEvent


def parse_request(event: object) -> ValidatorRequest:
    """The CloudTrail record of an EKS change (by its `source` or `detail-type`), the hourly
    sweep or a callback; raises EventValidationError naming the field."""
    if not isinstance(event, Mapping):
        raise EventValidationError("event", f"expected a JSON object, got {type(event).__name__}")
    if "source" in event or "detail-type" in event:
        source, detail_type = event.get("source"), event.get("detail-type")
        if source != EKS_SOURCE:
            raise EventValidationError(
                "source", f"must be {EKS_SOURCE!r}, got {shown_value(source)}"
            )
        if detail_type != CLOUDTRAIL_API_CALL:
            raise EventValidationError(
                "detail-type", f"must be {CLOUDTRAIL_API_CALL!r}, got {shown_value(detail_type)}"
            )
        change = parse_event(EksChangeEvent, event)
        check_change(change)
        return change
    if event.get("action") == "sweep":
        return parse_event(SweepEvent, event)
    return parse_event(FollowUpEvent, event)


@FUNCTION.handler(parse_request)
def handle(
    request: ValidatorRequest, services: ValidatorServices, invocation: Invocation
) -> dict[str, Any]:
    """Start the validation of a change, continue one, or sweep those whose callback never came
    (the verdict's metric is counted where it is reached, validation.py)."""
    if isinstance(request, EksChangeEvent):
        return start(request, services, invocation)
    if isinstance(request, SweepEvent):
        return sweep(services, invocation)
    return follow_up(request.validation_id, services, invocation)


lambda_handler = FUNCTION.lambda_handler
