"""The AWS security events the scanner risk-scores (GuardDuty findings, CloudTrail calls and
console sign-ins), as models.

Apart from `models`: only a security event needs them, so the app imports this module when one
comes, and a scheduled scan or an SQS batch does not build their classes at every cold start.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.field_types import AccountId, AwsRegion
from fleet_shared.utc_times import UtcTime
from handlers.security_scanner.models import AWS_SERVICE_SOURCE, EVENT_ID_MAX_LENGTH
from handlers.security_scanner.security_group_rule_updates import modifies_rules, rule_updates

FINDING_ID_MAX_LENGTH = 300
"""GuardDuty's own limit on a finding id (`FindingId`, 1-300 characters)."""


class _Detail(BaseModel):
    # The fields the risk rules read are typed; the rest of the service's document is kept.
    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow", populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """The detail as the service sent it (with the fields it left out still absent)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class AccessKeyDetails(_Detail):
    """Who used the access key of a GuardDuty finding."""

    principal_id: str | None = Field(default=None, alias="principalId")
    user_name: str | None = Field(default=None, alias="userName")
    user_type: str | None = Field(default=None, alias="userType")


class GuardDutyResource(_Detail):
    """The resource of a GuardDuty finding; the rules read its access key details."""

    access_key_details: AccessKeyDetails = Field(
        default_factory=AccessKeyDetails, alias="accessKeyDetails"
    )


class GuardDutyService(_Detail):
    """The service part of a GuardDuty finding: the action (with the remote country) and
    `additionalInfo` (`sample: true` on generated sample findings)."""

    action: dict[str, Any] | None = None
    # How many times GuardDuty has seen the finding's activity: it grows with every update.
    count: int | None = Field(default=None, ge=0)
    additional_info: dict[str, Any] | None = Field(default=None, alias="additionalInfo")

    @property
    def is_sample(self) -> bool:
        """Whether GuardDuty generated the finding as a sample (`CreateSampleFindings`): it says
        so in `additionalInfo.sample`, or in the JSON of `additionalInfo.value`."""
        info = self.additional_info or {}
        if info.get("sample") in {True, "true"}:
            return True
        value = info.get("value")
        if not isinstance(value, str):
            return False
        try:
            embedded = json.loads(value)
        except (ValueError, RecursionError):
            # Not JSON, or JSON Python refuses (nested too deeply, a number too long): no flag.
            return False
        return isinstance(embedded, dict) and embedded.get("sample") in {True, "true"}


class GuardDutyFinding(_Detail):
    """The detail of a GuardDuty finding: its severity (0-10) is the base of the risk score; its
    `id` stays the same across the updates GuardDuty publishes of an ongoing finding."""

    id: str | None = Field(default=None, min_length=1, max_length=FINDING_ID_MAX_LENGTH)
    updated_at: str | None = Field(default=None, alias="updatedAt", max_length=64)
    severity: float = Field(default=0, ge=0, le=10)
    account_id: AccountId | None = Field(default=None, alias="accountId")
    region: AwsRegion | None = None
    title: str | None = None
    type: str | None = None
    arn: str | None = None
    resource: GuardDutyResource = Field(default_factory=GuardDutyResource)
    service: GuardDutyService = Field(default_factory=GuardDutyService)


class CloudTrailRecord(_Detail):
    """The detail of a CloudTrail management event (an API call or a console sign-in)."""

    event_name: str = Field(default="unknown", alias="eventName")
    event_source: str = Field(default="unknown", alias="eventSource")
    user_identity: dict[str, Any] = Field(default_factory=dict, alias="userIdentity")
    # CloudTrail sends null for these when a call failed or had no parameters.
    request_parameters: dict[str, Any] | None = Field(default=None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(default=None, alias="responseElements")
    additional_event_data: dict[str, Any] | None = Field(default=None, alias="additionalEventData")
    error_code: str | None = Field(default=None, alias="errorCode")
    recipient_account_id: AccountId | None = Field(default=None, alias="recipientAccountId")
    aws_region: AwsRegion | None = Field(default=None, alias="awsRegion")

    @model_validator(mode="after")
    def _rule_updates_readable(self) -> CloudTrailRecord:
        """A security group's rule changes are risk-scored from the request: one whose rules
        cannot be read (requestParameters absent included) is refused naming the part, not
        scored as opening nothing."""
        if modifies_rules(self.event_source, self.event_name, self.error_code):
            rule_updates(self.request_parameters)
        return self


class _SecurityEvent(EventBridgeEvent):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH)
    # Aware and in UTC: the event's age decides whether it may still alert (security_events.py).
    time: UtcTime
    # EventBridge refuses `aws.` sources from PutEvents: only AWS services send these.
    source: str = Field(pattern=r"^aws\.[a-z0-9-]+$")
    account: AccountId
    region: AwsRegion


class GuardDutyFindingEvent(_SecurityEvent):
    """The EventBridge event of a GuardDuty finding."""

    source: Literal["aws.guardduty"]
    detail_type: Literal["GuardDuty Finding"] = Field(alias="detail-type")
    detail: GuardDutyFinding


class CloudTrailEvent(_SecurityEvent):
    """The EventBridge event of a CloudTrail management event or console sign-in."""

    source: str = Field(pattern=AWS_SERVICE_SOURCE.pattern)
    detail_type: Literal["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"] = (
        Field(alias="detail-type")
    )
    detail: CloudTrailRecord


SecurityEventEnvelope = GuardDutyFindingEvent | CloudTrailEvent
"""An EventBridge event the scanner risk-scores."""
