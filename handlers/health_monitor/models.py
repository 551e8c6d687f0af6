"""The events health_monitor accepts, as pydantic models.

Three shapes: the 5-minute schedule's `{"action": "check_fleet"}`, a request for one cluster, and
the native EventBridge "CloudWatch Alarm State Change" event forwarded from a member account to
the hub bus (its `account` and `region` are the member's), read with the fleet's EventBridge
model. Its alarm name, reason and ARN are held to what CloudWatch itself accepts: they reach
the alert's title, detail and id, and a reason of 200 KB would make an alert SNS refuses, failing
every retry of the event. Its ARN is of the event's account, region and alarm name, and its state
has its time: runs look for the alarm where the ARN says and order its state changes by that time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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
