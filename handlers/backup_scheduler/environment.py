"""The backup scheduler's environment, read once per container (docs/functions/backup_scheduler.md
is generated from these descriptions)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import (
    DynamoDbTableName,
    IamRoleName,
    PositiveInt,
    S3BucketName,
    StackName,
)

Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WEEKDAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
RetentionDays = Annotated[int, Field(ge=1, le=36500)]
"""A hundred years at most: a copy's expiry must stay a date (a mistyped retention would
otherwise overflow the calendar in every run, and no copy would be made)."""


class BackupEnvironment(FunctionEnvironment):
    """What the backup scheduler needs; retention and the weekly day have defaults."""

    state_table_name: DynamoDbTableName = Field(
        description="Once-a-day records per target, the expiry of DynamoDB backups and the "
        "targets the last run did not start."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    stack_name: StackName = Field(
        description="The stack the function belongs to (as the program accepts "
        "one): each snapshot it makes is tagged with it, and "
        "each DynamoDB backup named `lambda-fleet.<stack>.<table>-<yyyymmdd>`; it prunes only "
        "its stack's copies, so stacks sharing a member account never prune each other's.",
    )
    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the fleet inventory."
    )
    backup_daily_retention_days: RetentionDays = Field(
        default=7, description="How long daily copies are kept (days, 1-36500)."
    )
    backup_weekly_retention_days: RetentionDays = Field(
        default=35, description="How long weekly copies are kept (days, 1-36500)."
    )
    backup_weekly_day: Weekday = Field(
        default="SUN", description="The UTC weekday (`MON`..`SUN`) on which weekly copies are made."
    )
    backup_max_workers: PositiveInt = Field(default=4, description="Targets backed up at once.")
    backup_target_seconds: int = Field(
        default=30,
        ge=1,
        le=900,
        description="A generous estimate of one target's backup (seconds, 1-900): a target is "
        "started only with this much time left in the invocation beyond the 184 s its EC2 and "
        "DynamoDB endpoints take when they never answer (one call of 92 s each) and the 28 s of "
        "settling a member's access episode after the last target, and otherwise waits for the "
        "next run.",
    )
