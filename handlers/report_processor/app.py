"""report_processor: raw availability document -> matrix, statistics, quality and changes.

process.py says what is checked, written and rejected. Reference:
docs/functions/report_processor.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.exceptions import LockNotAcquiredError
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.s3_events import (
    OBJECT_FAILURES,
    CreatedObject,
    handle_each_object,
    parse_object_created,
)
from handlers.report_processor.environment import ProcessorEnvironment
from handlers.report_processor.process import (
    ProcessorServices,
    not_a_raw_document,
    process_raw_document,
)

FUNCTION = FleetFunction("report_processor", ProcessorEnvironment)


@FUNCTION.handler(parse_object_created)
def handle(
    objects: list[CreatedObject], services: ProcessorServices, invocation: Invocation
) -> dict[str, Any]:
    """Process every raw document of the notification, once per object version; one failing
    object (one that waited too long for another version of its run included) does not stop
    the others, and one that failed for a reason that may pass fails the invocation, so that
    Lambda retries the event (`handle_each_object`)."""

    def process_and_measure(obj: CreatedObject) -> dict[str, Any]:
        # Measured as each object is done: a later object may fail the invocation.
        result = process_raw_document(obj, services, FUNCTION.logger, invocation)
        if result["status"] == "processed":
            FUNCTION.observability.metrics.add_metric(
                name="ReportQualityScore", unit="None", value=result["quality_score"]
            )
        return result

    return handle_each_object(
        objects,
        process_and_measure,
        services=services,
        skip_reason=not_a_raw_document,
        ttl_seconds=services.environment.report_idempotency_ttl_seconds,
        deadline=invocation,
        logger=FUNCTION.logger,
        failures=(*OBJECT_FAILURES, LockNotAcquiredError),
    )


lambda_handler = FUNCTION.lambda_handler
