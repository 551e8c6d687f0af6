"""The events the security scanner accepts, as validated models.

Only events AWS itself emits are scored: `accepted_source_problem` names what is wrong with the
`source`/`detail-type` pair of anything else, which the handler ignores. AWS refuses `PutEvents`
entries whose source starts with `aws.`, so a forged event cannot carry one of these sources.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

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


class IgnoredEvent(BaseModel):
    """An EventBridge event that is not one the scanner scores (another source or detail
    type): logged, counted and answered `ignored`, never scored or alerted."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    event_id: str | None
    source: str | None
    detail_type: str | None
    reason: str


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
