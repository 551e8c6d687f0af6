"""The events the security scanner accepts, as validated models.

Only events AWS itself emits are scored: `accepted_source_problem` names what is wrong with the
`source`/`detail-type` pair of anything else, which the handler ignores. AWS refuses `PutEvents`
entries whose source starts with `aws.`, so a forged event cannot carry one of these sources.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from fleet_shared.event_bridge import EventBridgeEvent
from fleet_shared.field_types import AccountId, AwsRegion
from fleet_shared.validation_errors import cut_echo

GUARDDUTY_FINDING = "GuardDuty Finding"
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
CLOUDTRAIL_SIGN_IN = "AWS Console Sign In via CloudTrail"
GUARDDUTY_SOURCE = "aws.guardduty"
SIGN_IN_SOURCE = "aws.signin"
AWS_SERVICE_SOURCE = re.compile(r"^aws\.[a-z0-9-]+$")
"""The source of a CloudTrail API call event: `aws.<service>` (`aws.ec2`, `aws.iam`, ...)."""
EVENT_ID_MAX_LENGTH = 128
"""EventBridge event ids are UUIDs; the id keys the claims of the event's alert and country in
the state table, whose sort keys hold at most 1,024 bytes."""


def accepted_source_problem(source: object, detail_type: object) -> str | None:
    """None when (`source`, `detail-type`) is an AWS security event the scanner scores, else
    why it is not (repeating at most `ECHO_LIMIT` characters of the value it refuses)."""
    if detail_type == GUARDDUTY_FINDING:
        expected = source == GUARDDUTY_SOURCE
    elif detail_type == CLOUDTRAIL_SIGN_IN:
        expected = source == SIGN_IN_SOURCE
    elif detail_type == CLOUDTRAIL_API_CALL:
        expected = isinstance(source, str) and bool(AWS_SERVICE_SOURCE.fullmatch(source))
    else:
        shown = cut_echo(repr(detail_type))
        return f"detail-type {shown} is not a security event this function scores"
    if expected:
        return None
    return f"source {cut_echo(repr(source))} is not the AWS source of {detail_type!r} events"


class _Request(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class ScanRequest(_Request):
    """The schedule's payload: scan every member account and region of the inventory.

    `dry_run` evaluates and returns the findings but writes nothing (no Security Hub import, no
    report, no state, no alerts).
    """

    action: Literal["scan"]
    dry_run: StrictBool = False


class ScanTargetRequest(_Request):
    """One (account, region) to scan: the body of a fan-out SQS message, or a direct request."""

    action: Literal["scan_target"]
    account_id: AccountId
    region: AwsRegion
    dry_run: StrictBool = False


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
        except json.JSONDecodeError:
            return False
        return isinstance(embedded, dict) and embedded.get("sample") in {True, "true"}


class GuardDutyFinding(_Detail):
    """The detail of a GuardDuty finding: its severity (0-10) is the base of the risk score."""

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


class _SecurityEvent(EventBridgeEvent):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH)
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


class IgnoredEvent(BaseModel):
    """An EventBridge event that is not one the scanner scores (another source or detail
    type): logged, counted and answered `ignored`, never scored or alerted."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    event_id: str | None
    source: str | None
    detail_type: str | None
    reason: str


SecurityEventEnvelope = GuardDutyFindingEvent | CloudTrailEvent
"""An EventBridge event the scanner risk-scores."""


class SqsRecord(BaseModel):
    """The part of an SQS record the consumer reads (Powertools' `SqsRecordModel` also requires
    the attributes SQS sends, which the example events and redriven messages do not all carry)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore", populate_by_name=True)

    message_id: str = Field(alias="messageId")
    body: str
    event_source: Literal["aws:sqs"] = Field(alias="eventSource")


class SqsBatch(BaseModel):
    """An SQS event (batch size 1 in the catalog, but any size is handled)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore", populate_by_name=True)

    records: list[SqsRecord] = Field(alias="Records", min_length=1)
