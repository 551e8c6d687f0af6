"""The events the security scanner accepts, as validated models."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from fleet_shared.field_types import AccountId, AwsRegion

GUARDDUTY_FINDING = "GuardDuty Finding"
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
CLOUDTRAIL_SIGN_IN = "AWS Console Sign In via CloudTrail"


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """The detail as the service sent it (with the fields it left out still absent)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class GuardDutyFinding(_Detail):
    """The detail of a GuardDuty finding: its severity (0-10) is the base of the risk score."""

    severity: float = Field(default=0, ge=0, le=10)
    account_id: AccountId | None = Field(default=None, alias="accountId")
    region: AwsRegion | None = None
    title: str | None = None
    type: str | None = None
    arn: str | None = None
    resource: dict[str, Any] = Field(default_factory=dict)
    service: dict[str, Any] = Field(default_factory=dict)


class CloudTrailRecord(_Detail):
    """The detail of a CloudTrail management event (an API call or a console sign-in)."""

    event_name: str = Field(default="unknown", alias="eventName")
    event_source: str = Field(default="unknown", alias="eventSource")
    user_identity: dict[str, Any] = Field(default_factory=dict, alias="userIdentity")
    recipient_account_id: AccountId | None = Field(default=None, alias="recipientAccountId")
    aws_region: AwsRegion | None = Field(default=None, alias="awsRegion")


class _SecurityEvent(EventBridgeModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # EventBridge refuses `aws.` sources from PutEvents: only AWS services send these.
    source: str = Field(pattern=r"^aws\.[a-z0-9-]+$")
    account: AccountId
    region: AwsRegion


class GuardDutyFindingEvent(_SecurityEvent):
    """The EventBridge event of a GuardDuty finding."""

    detail_type: Literal["GuardDuty Finding"] = Field(alias="detail-type")
    detail: GuardDutyFinding


class CloudTrailEvent(_SecurityEvent):
    """The EventBridge event of a CloudTrail management event or console sign-in."""

    detail_type: Literal["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"] = (
        Field(alias="detail-type")
    )
    detail: CloudTrailRecord


SecurityEventEnvelope = GuardDutyFindingEvent | CloudTrailEvent
"""An EventBridge event the scanner risk-scores."""


class SqsRecord(BaseModel):
    """The part of an SQS record the consumer reads (Powertools' `SqsRecordModel` also requires
    the attributes SQS sends, which the example events and redriven messages do not all carry)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    message_id: str = Field(alias="messageId")
    body: str
    event_source: Literal["aws:sqs"] = Field(alias="eventSource")


class SqsBatch(BaseModel):
    """An SQS event (batch size 1 in the catalog, but any size is handled)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    records: list[SqsRecord] = Field(alias="Records", min_length=1)
