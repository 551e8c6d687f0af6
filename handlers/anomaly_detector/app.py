"""anomaly_detector: robust anomaly detection on metrics and daily cost, raised as alerts.

A scan (the schedule) or a CloudWatch alarm state change looks for anomalies with
`fleet_shared.numeric.robust_anomalies` and raises each episode once; `detect` runs the detector
on a given series. Events are in models.py. Reference: docs/functions/anomaly_detector.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.event_parsing import parse_event
from fleet_shared.exceptions import EventValidationError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.validation_errors import shown_value
from handlers.anomaly_detector.alarm import confirm_alarm
from handlers.anomaly_detector.detect import detect_series
from handlers.anomaly_detector.environment import AnomalyEnvironment
from handlers.anomaly_detector.models import (
    ALARM_DETAIL_TYPE,
    ActionEvent,
    AlarmEvent,
    AnomalyRequest,
    DetectRequest,
    ScanRequest,
    is_alarm_event,
    is_other_eventbridge_event,
)
from handlers.anomaly_detector.scan import scan_fleet

FUNCTION = FleetFunction("anomaly_detector", AnomalyEnvironment)


def parse_request(event: object) -> AnomalyRequest:
    """An alarm state change by its `detail-type`, else the model of its `action`."""
    if is_alarm_event(event):
        return parse_event(AlarmEvent, event)
    if is_other_eventbridge_event(event):
        detail_type = event.get("detail-type") if isinstance(event, dict) else None
        raise EventValidationError(
            "detail-type",
            f"{shown_value(detail_type)} is not {ALARM_DETAIL_TYPE!r}, the only EventBridge "
            "event this function takes",
        )
    action = parse_event(ActionEvent, event).action
    return parse_event(DetectRequest if action == "detect" else ScanRequest, event)


@FUNCTION.handler(parse_request)
def handle(
    request: AnomalyRequest,
    services: FunctionServices[AnomalyEnvironment],
    invocation: Invocation,
) -> dict[str, Any]:
    """Detect on the given series, confirm an alarm, or scan the fleet."""
    if isinstance(request, DetectRequest):
        return detect_series(request)
    if isinstance(request, AlarmEvent):
        return confirm_alarm(services, request, invocation)
    result = scan_fleet(services, invocation)
    FUNCTION.observability.metrics.add_metric(
        name="AnomaliesAlerted", unit="Count", value=result["alerts"]
    )
    FUNCTION.observability.metrics.add_metric(
        name="AnomaliesResolved", unit="Count", value=result["resolved"]
    )
    return result


lambda_handler = FUNCTION.lambda_handler
