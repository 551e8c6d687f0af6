"""The optimizer's event models.

Validation happens before anything is read or changed, so a bad event changes nothing and its
error names the field (`instance_types[1]: ...`, `detail.instance-id: ...`). An EventBridge
event (it has a `source` or `detail-type`) is the native EC2 spot interruption warning, read with
the fleet's EventBridge model, or is ignored (`IgnoredEvent`); every other event names an
`action`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.field_types import AccountId, AwsRegion, BoolFlag, EksClusterName
from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import cut_echo, echo_field, shown_value

INTERRUPTION_SOURCE = "aws.ec2"
INTERRUPTION_DETAIL_TYPE = "EC2 Spot Instance Interruption Warning"

_INSTANCE_TYPE = re.compile(r"[a-z0-9-]+\.[a-z0-9-]+")
_INSTANCE_TYPE_MAX = 40
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
INSTANCE_ACTIONS = ("terminate", "stop", "hibernate")
"""What EC2 does to an interrupted spot instance (its interruption behavior)."""


def _check_instance_type(value: str) -> str:
    if len(value) > _INSTANCE_TYPE_MAX or not _INSTANCE_TYPE.fullmatch(value):
        raise ValueError(f"must be an EC2 instance type like m7g.large, got {shown_value(value)}")
    return value


def _check_instance_id(value: str) -> str:
    if not _INSTANCE_ID.fullmatch(value):
        raise ValueError(
            f"must be an EC2 instance id like i-0123456789abcdef0, got {shown_value(value)}"
        )
    return value


def _check_instance_action(value: str) -> str:
    if value not in INSTANCE_ACTIONS:
        raise ValueError(f"must be terminate, stop or hibernate, got {shown_value(value)}")
    return value


InstanceType = Annotated[str, AfterValidator(_check_instance_type)]
"""An EC2 instance type such as `m7g.large`."""


class Action(StrEnum):
    """What an action event asks for (the interruption event carries no action)."""

    ANALYZE_FLEET = "analyze_fleet"
    ANALYZE_OPPORTUNITIES = "analyze_opportunities"
    RECOMMEND_NODE_GROUP_MIX = "recommend_node_group_mix"


class _Event(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class ActionOnly(_Event):
    """Reads only the action, to pick the model of the whole event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Action


class AnalyzeFleetEvent(_Event):
    """`{"action": "analyze_fleet"}`: the hourly schedule."""

    action: Literal[Action.ANALYZE_FLEET]
    dry_run: BoolFlag = False


class AnalyzeOpportunitiesEvent(_Event):
    """`{"action": "analyze_opportunities", "account_id", "region", "instance_types"}`."""

    action: Literal[Action.ANALYZE_OPPORTUNITIES]
    account_id: AccountId
    region: AwsRegion
    instance_types: tuple[InstanceType, ...] = Field(min_length=1, max_length=50)
    dry_run: BoolFlag = False


class RecommendMixEvent(_Event):
    """`{"action": "recommend_node_group_mix", "account_id", "region", "cluster"}`."""

    action: Literal[Action.RECOMMEND_NODE_GROUP_MIX]
    account_id: AccountId
    region: AwsRegion
    cluster: EksClusterName
    dry_run: BoolFlag = False


class InterruptionDetail(BaseModel):
    """The `detail` of the native event."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True, populate_by_name=True)

    instance_id: Annotated[str, AfterValidator(_check_instance_id)] = Field(alias="instance-id")
    instance_action: Annotated[str, AfterValidator(_check_instance_action)] = Field(
        alias="instance-action"
    )
    """What EC2 does to the instance when the two minutes are up (the interruption behavior)."""


class InterruptionEvent(EventBridgeEvent):
    """The native EventBridge "EC2 Spot Instance Interruption Warning", forwarded from a member
    account's default bus to the hub bus (so `account` is the member)."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True, populate_by_name=True)

    # Not read here; with defaults an incomplete event is refused on the first field that is.
    version: str = "0"
    id: str = ""
    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Spot Instance Interruption Warning"] = Field(alias="detail-type")
    account: AccountId
    region: AwsRegion
    time: UtcTime
    detail: InterruptionDetail
    dry_run: BoolFlag = False


class IgnoredEvent(BaseModel):
    """An EventBridge event that is not the EC2 spot interruption warning (another source or
    detail type): logged, counted and answered `ignored`, never recorded or alerted."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    event_id: str | None
    source: str | None
    detail_type: str | None
    reason: str

    @classmethod
    def unless_interruption(cls, payload: Mapping[str, Any]) -> IgnoredEvent | None:
        """None when `payload` says it is the AWS spot interruption warning, else why not
        (repeating at most `ECHO_LIMIT` characters of the value it refuses)."""
        source, detail_type = payload.get("source"), payload.get("detail-type")
        if detail_type != INTERRUPTION_DETAIL_TYPE:
            reason = (
                f"detail-type {cut_echo(repr(detail_type))} is not {INTERRUPTION_DETAIL_TYPE!r}"
            )
        elif source != INTERRUPTION_SOURCE:
            reason = f"source {cut_echo(repr(source))} is not {INTERRUPTION_SOURCE!r}"
        else:
            return None
        return cls(
            event_id=echo_field(payload.get("id")),
            source=echo_field(source),
            detail_type=echo_field(detail_type),
            reason=reason,
        )
