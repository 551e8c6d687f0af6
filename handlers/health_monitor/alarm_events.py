"""The CloudWatch alarm state change (an EventBridge event) the health monitor reacts to, as a
model: `AlarmStateChangeEvent`.

Apart from `models`: only an alarm event needs it, so the app imports this module when one comes,
and a scheduled fleet or cluster check does not build its classes at every cold start.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.field_types import AccountId, AwsRegion
from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import shown_value

ALARM_NAME_MAX_LENGTH = 255
STATE_REASON_MAX_LENGTH = 1023
"""CloudWatch's limits on an alarm's name and its state reason."""

_ALARM_NAME = re.compile(rf"[^\x00-\x1f\x7f]{{1,{ALARM_NAME_MAX_LENGTH}}}")
_ALARM_ARN = re.compile(
    rf"arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{{12}}:alarm:{_ALARM_NAME.pattern}"
)


def _check_alarm_name(value: str) -> str:
    if not _ALARM_NAME.fullmatch(value):
        raise ValueError(
            f"must be a CloudWatch alarm name (1 to {ALARM_NAME_MAX_LENGTH} characters, no "
            f"control characters), got {shown_value(value)}"
        )
    return value


def _check_alarm_arn(value: str) -> str:
    if not _ALARM_ARN.fullmatch(value):
        raise ValueError(
            "must be a CloudWatch alarm ARN like "
            f"arn:aws:cloudwatch:<region>:<account>:alarm:<name>, got {shown_value(value)}"
        )
    return value


def _check_state_reason(value: str) -> str:
    if len(value) > STATE_REASON_MAX_LENGTH:
        raise ValueError(
            f"must be at most {STATE_REASON_MAX_LENGTH} characters, got {len(value)}: "
            f"{shown_value(value)}"
        )
    return value


AlarmName = Annotated[str, AfterValidator(_check_alarm_name)]
AlarmArn = Annotated[str, AfterValidator(_check_alarm_arn)]
StateReason = Annotated[str, AfterValidator(_check_state_reason)]


class AlarmState(BaseModel):
    """`detail.state` of an alarm state change."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    value: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: StateReason = ""
    timestamp: UtcTime | None = None
    """When the alarm entered this state."""


class EnteredAlarmState(AlarmState):
    """`detail.state`: the state the alarm entered, with its time, which CloudWatch always sends.
    It orders the state changes of one alarm, which may come late or twice: an incident opened
    from a state without one would be settled by no later OK, nor listed where a run resolves
    the incidents of deleted alarms."""

    timestamp: UtcTime


class AlarmDetail(BaseModel):
    """`detail` of an alarm state change; `configuration.metrics` names the alarm's metrics."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    alarmName: AlarmName  # noqa: N815 (the event's own field name)
    state: EnteredAlarmState
    previousState: AlarmState | None = None  # noqa: N815
    configuration: dict[str, Any] = Field(default_factory=dict)

    def cluster_names(self) -> set[str]:
        """The `ClusterName` dimensions of the alarm's metrics (Container Insights, EKS).

        A part of `configuration` in another shape than CloudWatch's names no cluster: it only
        chooses the clusters to check, so it must not fail the event after the alarm was
        alerted (every retry would fail the same way, to the dead-letter queue)."""
        names: set[str] = set()
        metrics = self.configuration.get("metrics")
        for metric in metrics if isinstance(metrics, list) else []:
            stat = metric.get("metricStat") if isinstance(metric, dict) else None
            described = stat.get("metric") if isinstance(stat, dict) else None
            dimensions = described.get("dimensions") if isinstance(described, dict) else None
            if isinstance(dimensions, dict) and isinstance(dimensions.get("ClusterName"), str):
                names.add(dimensions["ClusterName"])
        return names


class AlarmStateChangeEvent(EventBridgeEvent):
    """The EventBridge event CloudWatch sends when an alarm changes state."""

    model_config = ConfigDict(defer_build=True, extra="ignore", populate_by_name=True)

    # Not read here; with defaults an incomplete event is refused on the first field that is.
    version: str = "0"
    id: str = ""
    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    account: AccountId
    region: AwsRegion
    resources: list[AlarmArn] = Field(min_length=1)
    detail: AlarmDetail

    @field_validator("resources")
    @classmethod
    def _alarms_of_the_event(cls, arns: list[str], info: ValidationInfo) -> list[str]:
        # The ARN is the incident's identity and the account and region where runs look for
        # the alarm; one of another place would be resolved there as deleted while it fails.
        place = (info.data.get("region"), info.data.get("account"))
        for arn in arns:
            if tuple(arn.split(":", 5)[3:5]) != place:
                raise ValueError(
                    f"must be alarms of the event's account and region, got {shown_value(arn)}"
                )
        return arns

    @field_validator("detail")
    @classmethod
    def _alarm_of_the_arn(cls, detail: AlarmDetail, info: ValidationInfo) -> AlarmDetail:
        # The name is the alarm's identity in DescribeAlarms, the ARN in the incident.
        arns = info.data.get("resources")
        if arns and arns[0].split(":", 6)[-1] != detail.alarmName:
            raise ValueError(
                f"alarmName must be the alarm of resources[0], got {shown_value(detail.alarmName)}"
            )
        return detail

    @property
    def alarm_arn(self) -> str:
        """The alarm's ARN (the event's only resource)."""
        return self.resources[0]
