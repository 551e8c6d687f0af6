"""The alerts the report pipeline functions raise about work they have done (or failed to do).

Each is stamped with the function's name and clock and published with
`AlertPublisher.publish_or_log`: a notification SNS refuses must not undo or repeat the work it
reports on (a rejected document is already moved, a report already published), so the caller
records whether it went out instead.
"""

from __future__ import annotations

from typing import Any

from fleet_shared.alerts import Alert, Severity
from fleet_shared.function_services import FunctionServices


def publish_report_alert(
    services: FunctionServices[Any],
    logger: Any,
    *,
    severity: Severity,
    title: str,
    detail: str,
    resource: str,
) -> bool:
    """Publish an alert from `services.function_name` at `services.clock`'s time; whether SNS
    took it (a refusal is logged on `logger`)."""
    alert = Alert.create(
        severity=severity,
        source=services.function_name,
        title=title,
        detail=detail,
        resource=resource,
        timestamp=services.clock.now(),
    )
    return services.alerts.publish_or_log(alert, logger) is not None
