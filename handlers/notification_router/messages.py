"""What arrives in a record, turned into one `Notification`.

A message is a fleet alert (`fleet_shared.alerts.Alert` as JSON), a native CloudWatch alarm
notification (what CloudWatch publishes to SNS), or, in an SQS body, an SNS envelope around
either. A fleet alert with `resolved: true` (`Alert.resolution`) is a resolution. A CloudWatch
alarm becomes an alert: ALARM is critical when its name matches one of
ROUTER_CRITICAL_ALARM_PATTERNS and a warning otherwise, OK is an info resolution (PagerDuty
closes the incident), INSUFFICIENT_DATA is info. The alert id of an alarm does not depend on its
state, so the OK carries the same PagerDuty dedup key as the ALARM it resolves.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import botocore.session
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet_shared.alerts import Alert, Severity, alert_id
from fleet_shared.event_parsing import decode_json
from fleet_shared.exceptions import EventValidationError, OutsideCalendarError
from fleet_shared.field_types import AccountId
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.validation_errors import first_error

CLOUDWATCH_SOURCE = "cloudwatch"
LONGEST_AHEAD = timedelta(minutes=5)
"""How far a notice's time may be ahead of the router's clock. Publishers stamp by AWS's clocks
(Lambda, CloudWatch); a notice stamped further ahead would stay its alert's newest notice until
that time, so every real notice of the other phase before it, a resolution included, would be
taken for a late copy."""

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Notification:
    """An alert to deliver."""

    alert: Alert
    published: tuple[str, str] | None = None
    """The MessageId and Message text of the SNS envelope it came in (a queue body), if any: the
    SNS message it is, however it was handed out again (`router.message_key`)."""

    @property
    def resolves(self) -> bool:
        """Whether it closes an earlier alert of the same id (a fleet alert with
        `resolved: true`, an alarm back to OK)."""
        return self.alert.resolved

    @property
    def kind(self) -> str:
        """The route key: `resolved`, or the alert's severity."""
        return "resolved" if self.resolves else self.alert.severity.value


class CloudWatchAlarmNotification(BaseModel):
    """The JSON CloudWatch publishes to SNS when an alarm changes state."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    AlarmName: str = Field(min_length=1)
    NewStateValue: Literal["ALARM", "OK", "INSUFFICIENT_DATA"]
    NewStateReason: str = ""
    AWSAccountId: AccountId
    Region: str | None = None
    AlarmArn: str | None = None
    AlarmDescription: str | None = None
    StateChangeTime: str = Field(min_length=1)
    """When the alarm changed state: the alert's time, so every copy of one change has the same."""
    Trigger: dict[str, Any] | None = None


def parse_message(
    text: object, field: str, critical_patterns: Iterable[str], now: datetime
) -> Notification:
    """The notification in a record's message text; `field` (e.g. `Records[0].Sns.Message`)
    prefixes the path of any `EventValidationError`. A notice stamped more than LONGEST_AHEAD
    after `now` (the router's clock) is refused."""
    if not isinstance(text, str):
        raise EventValidationError(field, f"expected a string, got {type(text).__name__}")
    document = decode_json(text, field)
    if not isinstance(document, dict):
        raise EventValidationError(field, "expected a JSON object")
    if document.get("Type") == "Notification" and "Message" in document:
        carried = parse_message(document["Message"], f"{field}.Message", critical_patterns, now)
        sns_message_id = document.get("MessageId")
        if not (isinstance(sns_message_id, str) and sns_message_id):
            return carried
        return Notification(carried.alert, published=(sns_message_id, document["Message"]))
    if "AlarmName" in document:
        alarm = _validate(CloudWatchAlarmNotification, document, field)
        notification = from_cloudwatch(alarm, critical_patterns, field)
        _refuse_ahead(notification, now, f"{field}.StateChangeTime", alarm.StateChangeTime)
        return notification
    notification = Notification(_validate(Alert, document, field))
    _refuse_ahead(notification, now, f"{field}.timestamp", document.get("timestamp"))
    return notification


def _refuse_ahead(notification: Notification, now: datetime, field: str, written: object) -> None:
    """Raise `EventValidationError` naming `field` and the start of its `written` value when the
    notice's time is more than LONGEST_AHEAD after `now`."""
    if notification.alert.timestamp > now + LONGEST_AHEAD:
        minutes = int(LONGEST_AHEAD.total_seconds() // 60)
        raise EventValidationError(
            field,
            f"{str(written)[:40]!r} is more than {minutes} minutes ahead of the router's clock "
            f"({iso_z(now)})",
        )


def from_cloudwatch(
    alarm: CloudWatchAlarmNotification, critical_patterns: Iterable[str], field: str
) -> Notification:
    """The alert for a CloudWatch alarm notification."""
    region = _region_of_arn(alarm.AlarmArn) or region_code(alarm.Region)
    if region is None:
        raise EventValidationError(f"{field}.Region", f"unknown region {alarm.Region!r}")
    resource = (
        alarm.AlarmArn
        or f"arn:aws:cloudwatch:{region}:{alarm.AWSAccountId}:alarm:{alarm.AlarmName}"
    )
    state = alarm.NewStateValue
    if state == "ALARM":
        critical = any(fnmatch.fnmatchcase(alarm.AlarmName, p) for p in critical_patterns)
        severity = Severity.CRITICAL if critical else Severity.WARNING
    else:
        severity = Severity.INFO
    detail = f"{state}: {alarm.NewStateReason}" if alarm.NewStateReason else state
    trigger = _describe_trigger(alarm.Trigger)
    if trigger:
        detail += f"\n{trigger}"
    if alarm.AlarmDescription:
        detail += f"\n{alarm.AlarmDescription}"
    stable_title = f"CloudWatch alarm {alarm.AlarmName}"
    alert = Alert.create(
        id=alert_id(CLOUDWATCH_SOURCE, resource, stable_title),
        severity=severity,
        source=CLOUDWATCH_SOURCE,
        title=f"{stable_title} is {state}",
        detail=detail,
        resource=resource,
        account_id=alarm.AWSAccountId,
        region=region,
        timestamp=_state_change_time(alarm, field),
    )
    # The alarm's own state change time, for OK as for ALARM.
    return Notification(alert.resolution(detail, alert.timestamp) if state == "OK" else alert)


def region_code(long_name: str | None) -> str | None:
    """`Asia Pacific (Mumbai)` -> `ap-south-1`, from botocore's region descriptions (CloudWatch
    writes `EU (Ireland)` where botocore says `Europe (Ireland)`: both are known)."""
    if not long_name:
        return None
    return _region_names().get(long_name.strip().casefold())


@functools.cache
def _region_names() -> dict[str, str]:
    endpoints = botocore.session.get_session().get_data("endpoints")
    names: dict[str, str] = {}
    for partition in endpoints.get("partitions", []):
        for code, region in partition.get("regions", {}).items():
            description = str(region.get("description", ""))
            if description:
                names[description.casefold()] = code
                if description.startswith("Europe ("):
                    names[("EU" + description.removeprefix("Europe")).casefold()] = code
    return names


def _region_of_arn(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def _describe_trigger(trigger: dict[str, Any] | None) -> str:
    if not trigger:
        return ""
    metric = trigger.get("MetricName")
    namespace = trigger.get("Namespace")
    if not metric:
        return ""
    # CloudWatch sends a list of {name, value}; anything else describes nothing, and must not
    # keep the alarm from its channels.
    listed = trigger.get("Dimensions")
    dimensions = ", ".join(
        f"{item.get('name')}={item.get('value')}"
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    )
    text = f"Metric {namespace}/{metric}" if namespace else f"Metric {metric}"
    return text + (f" ({dimensions})" if dimensions else "")


def _state_change_time(alarm: CloudWatchAlarmNotification, field: str) -> datetime:
    try:
        return parse_iso(alarm.StateChangeTime)
    except OutsideCalendarError as error:
        raise EventValidationError(f"{field}.StateChangeTime", str(error)) from None
    except ValueError:
        raise EventValidationError(
            f"{field}.StateChangeTime",
            f"not an ISO 8601 time with a zone: {alarm.StateChangeTime[:40]!r}",
        ) from None


def _validate(model_cls: type[ModelT], document: dict[str, Any], field: str) -> ModelT:
    try:
        return model_cls.model_validate(document)
    except ValidationError as error:
        path, problem = first_error(error, root="")
        raise EventValidationError(f"{field}.{path}" if path else field, problem) from None
