"""The events health_monitor accepts, as pydantic models.

Three shapes: the 5-minute schedule's `{"action": "check_fleet"}`, a request for one cluster, and
the native EventBridge "CloudWatch Alarm State Change" event forwarded from a member account to
the hub bus (its `account` and `region` are the member's), read with the fleet's EventBridge
model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.field_types import AccountId, AwsRegion, EksClusterName

ALARM_EVENT_SOURCE = "aws.cloudwatch"
ALARM_EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"


class CheckFleetEvent(BaseModel):
    """Check every member cluster of the fleet inventory."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["check_fleet"]


class CheckClusterEvent(BaseModel):
    """Check one cluster of the fleet inventory."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["check_cluster"]
    account_id: AccountId
    region: AwsRegion
    cluster: EksClusterName


class AlarmState(BaseModel):
    """`detail.state` of an alarm state change."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    value: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str = ""


class AlarmDetail(BaseModel):
    """`detail` of an alarm state change; `configuration.metrics` names the alarm's metrics."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    alarmName: str = Field(min_length=1)  # noqa: N815 (the event's own field name)
    state: AlarmState
    previousState: AlarmState | None = None  # noqa: N815
    configuration: dict[str, Any] = Field(default_factory=dict)

    def cluster_names(self) -> set[str]:
        """The `ClusterName` dimensions of the alarm's metrics (Container Insights, EKS)."""
        names: set[str] = set()
        for metric in self.configuration.get("metrics", []) or []:
            if not isinstance(metric, dict):
                continue
            stat = metric.get("metricStat") or {}
            dimensions = (stat.get("metric") or {}).get("dimensions") or {}
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
    resources: list[str] = Field(min_length=1)
    detail: AlarmDetail

    @property
    def alarm_arn(self) -> str:
        """The alarm's ARN (the event's only resource)."""
        return self.resources[0]
