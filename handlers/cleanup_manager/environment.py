"""The cleanup manager's environment, read once per container (docs/functions/cleanup_manager.md
is generated from these descriptions)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, PositiveInt


class CleanupEnvironment(FunctionEnvironment):
    """What the cleanup manager needs; thresholds have defaults."""

    state_table_name: str = Field(description="The Lambda version marks, per target.")
    member_role_name: str = Field(description="The role assumed in each member account.")
    data_bucket_name: str = Field(description="The data bucket holding the fleet inventory.")
    alert_topic_arn: Arn = Field(
        description="The topic of the warning that lists the resources marked for deletion."
    )
    cleanup_snapshot_max_age_days: PositiveInt = Field(
        default=30, description="Snapshots at least this old (days) are candidates."
    )
    cleanup_volume_min_age_days: PositiveInt = Field(
        default=7,
        description=(
            "Unattached volumes created at least this long ago (days) are candidates; EC2 does "
            "not record when a volume was detached."
        ),
    )
    cleanup_keep_lambda_versions: PositiveInt = Field(
        default=3, description="The newest published versions kept per Lambda function."
    )
    cleanup_notice_days: PositiveInt = Field(
        default=7, description="Days between marking a candidate and deleting it."
    )
    cleanup_keep_tag: str = Field(
        default="keep",
        min_length=1,
        description="A snapshot or volume tagged `<tag>=true` is never a candidate.",
    )
    cleanup_max_workers: PositiveInt = Field(default=4, description="Targets cleaned at once.")
    cleanup_target_seconds: int = Field(
        default=30,
        ge=1,
        le=900,
        description="A generous estimate of one target's cleanup (seconds, 1-900): a target is "
        "not started with less time left in the invocation, and waits for the next run.",
    )
