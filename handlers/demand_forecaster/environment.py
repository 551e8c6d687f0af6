"""The demand forecaster's environment, read once per container
(docs/functions/demand_forecaster.md is generated from these descriptions)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, IamRoleName, S3BucketName


class ForecasterEnvironment(FunctionEnvironment):
    """The inventory's bucket is required; saving and alerting are on when their variable is
    set, and the FORECAST_* settings have defaults."""

    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the fleet inventory, which names the clusters and "
        "their node groups' floors."
    )
    member_role_name: IamRoleName | None = Field(
        default=None,
        description="The role assumed in each member account (required for member clusters).",
    )
    state_table_name: DynamoDbTableName | None = Field(
        default=None,
        description="Where `forecast_fleet` keeps each cluster's latest forecast (for 6 hours, "
        "for a person or a tool to read: no function reads it back), the clusters a run had no "
        "time for (the next run starts with them) and the predictive decisions the scaler's "
        "`analyze` shows (none kept when unset).",
    )
    alert_topic_arn: Arn | None = Field(
        default=None,
        description="Where `forecast_fleet` sends capacity-shortfall warnings (no alert when "
        "unset).",
    )
    # 63 days is how long CloudWatch keeps 5-minute data; hourly data is kept longer.
    forecast_history_days: int = Field(
        default=14,
        ge=3,
        le=63,
        description="Days of hourly Container Insights history read (3-63); a week of hours "
        "with data gives each day of the week its own shape (`weekly_season`), two weeks make "
        "the seasonal-naive baseline the same hour a week earlier.",
    )
    forecast_target_utilisation: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="CPU utilisation the recommended node counts aim at, at the interval's upper "
        "bound.",
    )
    forecast_interval: float = Field(
        default=0.9,
        gt=0.5,
        lt=1.0,
        description="Central probability of the prediction interval.",
    )
    scaler_function_name: str | None = Field(
        default=None,
        description="The eks_scaler that `forecast_fleet` asks for the sizes of clusters in "
        "predictive mode (unset: their schedule stays in charge).",
    )
