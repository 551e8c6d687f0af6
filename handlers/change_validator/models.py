"""The events change_validator accepts, as pydantic models.

Three shapes: the CloudTrail record of an EKS change, forwarded from a member account to the hub
bus (an `aws.eks` "AWS API Call via CloudTrail" event, read with the fleet's EventBridge model and
a typed `detail`), the callback its own one-time schedules send,
`{"action": "follow_up", "validation_id": ...}`, and its hourly sweep's `{"action": "sweep"}`.

CloudTrail names the cluster of a node group call `clusterName` in some records and `name` in
others (the REST path parameter); both are read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.exceptions import EventValidationError
from fleet_shared.field_types import AccountId, AwsRegion, EksClusterName, EksNodeGroupName
from fleet_shared.timestamps import iso_z
from fleet_shared.utc_times import UtcTime

EKS_SOURCE = "aws.eks"
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
EKS_EVENT_SOURCE = "eks.amazonaws.com"

UPDATE_CLUSTER_VERSION = "UpdateClusterVersion"
UPDATE_NODEGROUP_VERSION = "UpdateNodegroupVersion"
UPDATE_NODEGROUP_CONFIG = "UpdateNodegroupConfig"
VALIDATED_CALLS = (UPDATE_CLUSTER_VERSION, UPDATE_NODEGROUP_VERSION, UPDATE_NODEGROUP_CONFIG)
"""The EKS calls whose updates are validated (a launch-template update is an
UpdateNodegroupVersion naming a launch template)."""

VALIDATION_ID_PATTERN = r"^[A-Za-z0-9-]{1,36}$"
"""A validation id is the EKS update id (a UUID, 36 characters). Its callback schedules are named
`<id>-<step>` (`-bake-retry-12`), and EventBridge Scheduler takes names of at most 64 characters:
a longer id would be validated up to its first callback, which could never be booked."""


class _Lenient(BaseModel):
    """Parts of a CloudTrail record: only the fields read here are declared."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)


class SessionIssuer(_Lenient):
    userName: str | None = None  # noqa: N815 (CloudTrail's own field names)
    arn: str | None = None


class SessionContext(_Lenient):
    sessionIssuer: SessionIssuer | None = None  # noqa: N815


class UserIdentity(_Lenient):
    """Who made the call: for an assumed role, the role is the session issuer."""

    type: str | None = None
    arn: str | None = None
    sessionContext: SessionContext | None = None  # noqa: N815

    def role_name(self) -> str | None:
        """The name of the role the caller assumed, or None for any other caller."""
        issuer = self.sessionContext.sessionIssuer if self.sessionContext else None
        if issuer is not None and issuer.userName:
            return issuer.userName
        if self.arn and ":assumed-role/" in self.arn:
            return self.arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        return None


class LaunchTemplate(_Lenient):
    name: str | None = None
    id: str | None = None
    version: str | None = None


class LabelsUpdate(_Lenient):
    """UpdateNodegroupConfig's `labels`: the labels set (key -> value) and the keys removed."""

    addOrUpdateLabels: dict[str, str] | None = None  # noqa: N815
    removeLabels: list[str] | None = None  # noqa: N815


class NodeTaint(_Lenient):
    key: str | None = None
    value: str | None = None
    effect: str | None = None


class TaintsUpdate(_Lenient):
    """UpdateNodegroupConfig's `taints`: the taints set and the taints removed."""

    addOrUpdateTaints: list[NodeTaint] | None = None  # noqa: N815
    removeTaints: list[NodeTaint] | None = None  # noqa: N815


class RequestParameters(_Lenient):
    """What the call asked for; which fields are present depends on the call."""

    # EKS's own name rules: a name with markup, control characters or past EKS's length is
    # refused naming the field before it reaches EKS, the state table's keys and the alerts.
    name: EksClusterName | None = None
    clusterName: EksClusterName | None = None  # noqa: N815
    nodegroupName: EksNodeGroupName | None = None  # noqa: N815
    version: str | None = None
    releaseVersion: str | None = None  # noqa: N815
    launchTemplate: LaunchTemplate | None = None  # noqa: N815
    scalingConfig: dict[str, int] | None = None  # noqa: N815
    labels: LabelsUpdate | None = None
    taints: TaintsUpdate | None = None

    @property
    def cluster(self) -> str | None:
        return self.clusterName or self.name


class UpdateResponse(_Lenient):
    id: str = Field(pattern=VALIDATION_ID_PATTERN)
    type: str | None = None
    status: str | None = None


class ResponseElements(_Lenient):
    update: UpdateResponse


class EksCallDetail(_Lenient):
    """`detail` of the CloudTrail record of an EKS call."""

    eventSource: Literal["eks.amazonaws.com"]  # noqa: N815
    eventName: Literal["UpdateClusterVersion", "UpdateNodegroupVersion", "UpdateNodegroupConfig"]  # noqa: N815
    eventID: str = Field(min_length=1)  # noqa: N815
    userIdentity: UserIdentity = Field(default_factory=UserIdentity)  # noqa: N815
    requestParameters: RequestParameters  # noqa: N815
    # CloudTrail sends null when the call failed: then no update exists to validate.
    responseElements: ResponseElements | None = None  # noqa: N815
    errorCode: str | None = None  # noqa: N815


class EksChangeEvent(EventBridgeEvent):
    """The EventBridge event of an EKS API call recorded by CloudTrail in a member account."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: str = "0"
    id: str = ""
    resources: list[str] = Field(default_factory=list)
    source: Literal["aws.eks"]
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    account: AccountId
    region: AwsRegion
    # The change's time, read in UTC (`changed_at`): a time without an offset, or one past the
    # calendar once in UTC, is refused naming the field rather than failing the invocation.
    time: UtcTime
    detail: EksCallDetail

    @property
    def cluster(self) -> str:
        """The cluster the call changed (checked by `check_change`)."""
        return self.detail.requestParameters.cluster or ""


class FollowUpEvent(BaseModel):
    """The callback of a one-time schedule: continue the validation `validation_id`."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    action: Literal["follow_up"]
    validation_id: str = Field(pattern=VALIDATION_ID_PATTERN)


class SweepEvent(BaseModel):
    """The hourly sweep's event: close the validations whose callback never came."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    action: Literal["sweep"]


def check_change(event: EksChangeEvent) -> None:
    """Rules that depend on the call, raised naming the exact field."""
    parameters = event.detail.requestParameters
    if parameters.cluster is None:
        raise EventValidationError(
            "detail.requestParameters.name", "names no cluster (neither `name` nor `clusterName`)"
        )
    if event.detail.eventName != UPDATE_CLUSTER_VERSION and parameters.nodegroupName is None:
        raise EventValidationError(
            "detail.requestParameters.nodegroupName",
            f"is required for {event.detail.eventName}",
        )


LONGEST_AHEAD = timedelta(minutes=5)
"""How far a change's `time` may be ahead of the validator's clock. CloudTrail stamps the call
with AWS's clock: a time further ahead was not written by it, and its baseline, measured over
the minutes before that time, would hold no endpoint result and no load-balancer traffic, so
every regression would pass."""


OLDEST_CHANGE = timedelta(days=30)
"""The oldest change a validation is opened for: as long as a validation's record and its
alert's claim are kept, so a change event delivered again (a dead-letter redrive, an archive's
replay) finds its validation and alerts nothing twice. An older one would open it afresh and
warn again; a change's time near the calendar's start would not even have a baseline window."""


def check_change_time(event: EksChangeEvent, now: datetime) -> None:
    """Refuse, naming `time`, a change timed more than LONGEST_AHEAD after `now` or more than
    OLDEST_CHANGE before it."""
    if event.time > now + LONGEST_AHEAD:
        minutes = int(LONGEST_AHEAD.total_seconds() // 60)
        raise EventValidationError(
            "time",
            f"{iso_z(event.time)} is more than {minutes} minutes ahead of the clock ({iso_z(now)})",
        )
    if event.time < now - OLDEST_CHANGE:
        raise EventValidationError(
            "time",
            f"{iso_z(event.time)} is more than {OLDEST_CHANGE.days} days before now "
            f"({iso_z(now)}): its validation, if it had one, is no longer kept",
        )


def event_summary(event: EksChangeEvent) -> dict[str, Any]:
    """The event's identity, for results and records."""
    return {
        "event_id": event.detail.eventID,
        "event_name": event.detail.eventName,
        "account_id": event.account,
        "region": event.region,
        "cluster": event.cluster,
        "node_group": event.detail.requestParameters.nodegroupName,
    }
