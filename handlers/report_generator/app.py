"""report_generator: the availability report as Excel, JSON and CSV from a processed run.

generate.py says what is written and announced. Reference: docs/functions/report_generator.md.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.exceptions import LockNotAcquiredError, ObjectTooLargeError
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.s3_events import (
    OBJECT_FAILURES,
    CreatedObject,
    handle_each_object,
    parse_object_created,
)
from handlers.report_generator.environment import GeneratorEnvironment
from handlers.report_generator.generate import (
    GeneratorServices,
    generate_report,
    not_a_processed_run,
)

FUNCTION = FleetFunction("report_generator", GeneratorEnvironment)


@FUNCTION.handler(parse_object_created)
def handle(
    objects: list[CreatedObject], services: GeneratorServices, invocation: Invocation
) -> dict[str, Any]:
    """Generate the report of every processed run in the notification, once per object
    version; one failing object (a document whose run id is not its key's included) does not
    stop the others, and one that failed for a reason that may pass (one that waited too long
    for latest/ or its run's lock included) fails the invocation, so that Lambda retries the
    event (`handle_each_object`)."""

    def generate_and_count(obj: CreatedObject) -> dict[str, Any]:
        # Counted as each report is done: a later object may fail the invocation.
        result = generate_report(obj, services, FUNCTION.logger, invocation)
        if result["status"] == "generated":
            FUNCTION.observability.metrics.add_metric(
                name="ReportsGenerated", unit="Count", value=1
            )
        return result

    return handle_each_object(
        objects,
        generate_and_count,
        services=services,
        skip_reason=not_a_processed_run,
        ttl_seconds=services.environment.report_idempotency_ttl_seconds,
        deadline=invocation,
        logger=FUNCTION.logger,
        failures=(*OBJECT_FAILURES, ValueError, LockNotAcquiredError, ObjectTooLargeError),
    )


lambda_handler = FUNCTION.lambda_handler
