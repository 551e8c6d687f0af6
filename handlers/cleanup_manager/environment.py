"""The cleanup manager's environment, read once per container (docs/functions/cleanup_manager.md
is generated from these descriptions)."""

from __future__ import annotations

from pydantic import Field, Json

from fleet_shared.cleanup_policy import CleanupPolicy
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import (
    Arn,
    DynamoDbTableName,
    IamRoleName,
    PositiveInt,
    S3BucketName,
    StackName,
    TimeZoneName,
)


class CleanupEnvironment(FunctionEnvironment):
    """What the cleanup manager needs: its resources and the stack's cleanup policy."""

    state_table_name: DynamoDbTableName = Field(description="The Lambda version marks, per target.")
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    stack_name: StackName = Field(
        description="The stack the function belongs to (a Pulumi stack name): its marks on "
        "snapshots and volumes are the tag `lambda-fleet:delete-after:<stack>`, so stacks sharing "
        "a member account never count, lift or delete on each other's.",
    )
    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the fleet inventory."
    )
    alert_topic_arn: Arn = Field(
        description="The topic of the warning that lists the resources marked for deletion."
    )
    cleanup_policy: Json[CleanupPolicy] = Field(
        description=(
            "The stack's cleanup policy as JSON with its defaults filled in (the policy "
            "table above); the function refuses to run without it."
        )
    )
    schedule_time_zone: TimeZoneName = Field(
        default="UTC",
        description="The stack's schedule time zone, the daily run's: marks are dated by the "
        "run's day in it, and reached by a later run's.",
    )
    cleanup_max_workers: PositiveInt = Field(default=4, description="Targets cleaned at once.")
    cleanup_target_seconds: int = Field(
        default=30,
        ge=1,
        le=900,
        description="A generous estimate of one target's cleanup (seconds, 1-900): a target is "
        "started only with this much time left in the invocation beyond the 276 s its EC2, Auto "
        "Scaling and Lambda endpoints take when they never answer (one call of 92 s each) and "
        "the 56 s of settling the access episodes and sending the notices after the last "
        "target, and otherwise waits for the next run.",
    )
