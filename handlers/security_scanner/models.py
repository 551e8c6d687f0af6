"""The events the security scanner accepts, as validated models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from fleet_shared.field_types import AccountId, AwsRegion


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


class SecurityEventEnvelope(BaseModel):
    """The EventBridge envelope of a GuardDuty finding or a CloudTrail management event."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1)
    detail_type: Literal[
        "GuardDuty Finding", "AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"
    ] = Field(alias="detail-type")
    source: str
    account: AccountId
    region: AwsRegion
    time: str
    detail: dict[str, Any]


class SqsRecord(BaseModel):
    """The part of an SQS record the consumer reads."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    message_id: str = Field(alias="messageId")
    body: str
    event_source: Literal["aws:sqs"] = Field(alias="eventSource")


class SqsBatch(BaseModel):
    """An SQS event (batch size 1 in the catalog, but any size is handled)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    records: list[SqsRecord] = Field(alias="Records", min_length=1)
