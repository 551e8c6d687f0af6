"""The performance analyzer's environment, read once per container
(docs/functions/performance_analyzer.md is generated from these descriptions)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, IamRoleName, PositiveInt, S3BucketName


class PerformanceEnvironment(FunctionEnvironment):
    """What the analyzer needs; window, regression margin and parallelism have defaults."""

    state_table_name: DynamoDbTableName = Field(
        description="Open performance regressions, one per rule."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    alert_topic_arn: Arn = Field(description="The topic of regression warnings and resolutions.")
    data_bucket_name: S3BucketName = Field(
        description="The data bucket: the fleet inventory in, the analyses out."
    )
    performance_window_hours: int = Field(
        default=4,
        ge=1,
        le=24,
        description="Hours of metrics each run analyses (1-24); the schedule runs every 4 hours.",
    )
    performance_regression_percent: float = Field(
        default=20.0,
        gt=0,
        le=1000,
        description="How much a firing rule's figure must have risen week over week (percent) "
        "to count as a regression.",
    )
    performance_max_workers: PositiveInt = Field(
        default=4, description="Clusters analysed at once."
    )
