"""The scaling optimizer's environment, read once per container
(docs/functions/scaling_optimizer.md is generated from these descriptions)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import DynamoDbTableName, S3BucketName


class OptimizerEnvironment(FunctionEnvironment):
    """What the optimizer needs; the history, tolerance and data requirement have defaults."""

    state_table_name: DynamoDbTableName = Field(
        description="The scaler's change history, read only."
    )
    data_bucket_name: S3BucketName = Field(
        description="The data bucket: inventory, analyses and cost reports in, recommendations out."
    )
    optimizer_history_days: int = Field(
        default=14, ge=1, le=90, description="Days of analyses and scaler history read (1-90)."
    )
    optimizer_tolerance_percent: float = Field(
        default=10.0,
        ge=0,
        le=50,
        description="Points above the cluster's target utilisation still counted as on target.",
    )
    optimizer_min_hours: int = Field(
        default=24,
        ge=1,
        le=2160,
        description="Hours of measured utilisation a cluster needs before sizes are recommended.",
    )
