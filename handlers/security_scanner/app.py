"""security_scanner: compliance checks across the member accounts, and risk scoring of events.
Reference: docs/functions/security_scanner.md.

Events (examples under events/security_scanner/): the schedule's `{"action": "scan"}` and
`{"action": "scan_target", ...}` (scan_requests.py); SQS batches of `scan_target` bodies from the
fan-out queue; EventBridge GuardDuty findings and CloudTrail events, risk-scored and alerted
(security_events.py, risk.py). EventBridge events of any other source or detail type are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fleet_shared.event_parsing import decode_json, error_result, parse_event
from fleet_shared.exceptions import EventValidationError
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.sqs_batch import QueueMessage, process_partial_batch
from fleet_shared.target_results import FAILED
from fleet_shared.validation_errors import echo_field
from handlers.security_scanner.environment import ScannerEnvironment
from handlers.security_scanner.exceptions import TargetScanFailedError
from handlers.security_scanner.models import (
    GUARDDUTY_FINDING,
    IgnoredEvent,
    ScanRequest,
    ScanTargetRequest,
    SqsBatch,
    accepted_source_problem,
)
from handlers.security_scanner.scan import ScanServices
from handlers.security_scanner.scan_requests import scan_fleet, scan_one

if TYPE_CHECKING:
    from handlers.security_scanner.security_event_models import SecurityEventEnvelope

    ScannerRequest = (
        SqsBatch | SecurityEventEnvelope | IgnoredEvent | ScanTargetRequest | ScanRequest
    )

FUNCTION = FleetFunction("security_scanner", ScannerEnvironment, services=ScanServices.create)


def parse(event: object) -> ScannerRequest:
    """The request an event is, by its shape: an SQS batch, a security event (or an EventBridge
    event of another source or detail type, ignored), or a scan."""
    if isinstance(event, Mapping) and "Records" in event:
        return parse_event(SqsBatch, event)
    if isinstance(event, Mapping) and ("detail-type" in event or "source" in event):
        source, detail_type = event.get("source"), event.get("detail-type")
        problem = accepted_source_problem(source, detail_type)
        if problem is not None:
            return IgnoredEvent(
                event_id=echo_field(event.get("id")),
                source=echo_field(source),
                detail_type=echo_field(detail_type),
                reason=problem,
            )
        # Imported here: a scheduled scan or an SQS batch never builds the security event models.
        from handlers.security_scanner.security_event_models import (  # noqa: PLC0415
            CloudTrailEvent,
            GuardDutyFindingEvent,
        )

        is_finding = detail_type == GUARDDUTY_FINDING
        return parse_event(GuardDutyFindingEvent if is_finding else CloudTrailEvent, event)
    if isinstance(event, Mapping) and event.get("action") == "scan_target":
        return parse_event(ScanTargetRequest, event)
    return parse_event(ScanRequest, event)


@FUNCTION.handler(parse)
def handle(
    request: ScannerRequest, services: ScanServices, invocation: Invocation
) -> dict[str, Any]:
    """Consume the queue, score a security event, or scan one target or the whole fleet."""
    if isinstance(request, SqsBatch):
        return _consume_queue(request, services, invocation)
    if isinstance(request, IgnoredEvent):
        return _ignore(request)
    if isinstance(request, ScanTargetRequest):
        return scan_one(request, services, services.inventory(), invocation)
    if isinstance(request, ScanRequest):
        return scan_fleet(request, services, invocation)
    # A security event (parse imported its models): its scoring is imported with it.
    from handlers.security_scanner.security_events import handle_security_event  # noqa: PLC0415

    result = handle_security_event(
        request,
        services.state,
        services.alerts,
        services.clock.now(),
        services.environment.risk_country_window_days,
        ec2_client_of=lambda account_id, region: services.member_client("ec2", account_id, region),
        deadline=invocation,
    )
    if result["status"] == "stale":
        FUNCTION.logger.warning(result["reason"], extra={"event_id": result["event_id"]})
    if result["status"] == "repeat":
        FUNCTION.logger.info(
            result["repeat_of"],
            extra={key: result[key] for key in ("event_id", "count", "last_seen", "severity")},
        )
    return result


def _ignore(event: IgnoredEvent) -> dict[str, Any]:
    """Log and count an event that is not an AWS security event; nothing is scored or kept."""
    FUNCTION.logger.warning("event ignored", extra=event.model_dump())
    FUNCTION.observability.metrics.add_metric(name="EventsIgnored", unit="Count", value=1)
    return {"status": "ignored", "reason": event.reason, "event_id": event.event_id}


def _consume_queue(
    batch: SqsBatch, services: ScanServices, invocation: Invocation
) -> dict[str, Any]:
    """Scan the target of each message; only failures worth retrying go back to the queue.

    A message that can never succeed (invalid body, target not in the inventory) and a denied
    account are logged, listed under `refused` and dropped: redelivering them would fail the
    same way.
    """
    refused: list[dict[str, Any]] = []

    def scan_message(message: QueueMessage) -> None:
        try:
            request = parse_event(ScanTargetRequest, decode_json(message.body, "body"))
            outcome = scan_one(request, services, services.inventory(), invocation)
        except EventValidationError as error:
            FUNCTION.logger.error(
                "dropping message", extra={"message_id": message.message_id, "error": str(error)}
            )
            refused.append(error_result(error, message_id=message.message_id))
            return
        target = outcome["targets"][0]
        if target["status"] == FAILED:
            raise TargetScanFailedError(message.message_id, str(target.get("error")))
        FUNCTION.logger.info(
            "target scanned", extra={"message_id": message.message_id, "target": target}
        )

    records = [record.model_dump(by_alias=True) for record in batch.records]
    return {**process_partial_batch(records, scan_message, FUNCTION.logger), "refused": refused}


lambda_handler = FUNCTION.lambda_handler
