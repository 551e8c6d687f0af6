"""The anomaly detector's environment, read once per container (docs/functions/anomaly_detector.md
is generated from these descriptions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationInfo, field_validator

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, BoolFlag, DynamoDbTableName, IamRoleName, S3BucketName
from handlers.anomaly_detector.models import (
    MAX_DIMENSIONS,
    MAX_LOOKBACK_DAYS,
    CloudWatchName,
    CloudWatchStatistic,
    DimensionValue,
)
from handlers.anomaly_detector.units import CloudWatchUnit

CLUSTER_PLACEHOLDER = "{cluster}"
"""A dimension value that stands for every cluster of the account and region being scanned."""


class MetricSpec(BaseModel):
    """One metric to scan in every member account and region of the inventory."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    # CloudWatch's limits: a query beyond one fails the request of every metric of the place.
    namespace: CloudWatchName
    metric: CloudWatchName
    dimensions: dict[CloudWatchName, DimensionValue] = Field(
        default_factory=dict, max_length=MAX_DIMENSIONS
    )
    stat: CloudWatchStatistic = "Average"
    period: int = Field(default=3600, ge=60, le=86_400)
    # GetMetricData answers no unit: the noise floor of the series is chosen by this one.
    unit: CloudWatchUnit | None = None

    @field_validator("period")
    @classmethod
    def _whole_minutes(cls, value: int) -> int:
        if value % 60:
            raise ValueError("must be a multiple of 60 seconds")
        return value

    @property
    def per_cluster(self) -> bool:
        """Whether the spec is expanded once per cluster (a dimension is `{cluster}`)."""
        return CLUSTER_PLACEHOLDER in self.dimensions.values()


DEFAULT_METRICS = (
    MetricSpec(
        namespace="ContainerInsights",
        metric="node_cpu_utilization",
        dimensions={"ClusterName": CLUSTER_PLACEHOLDER},
        stat="Average",
        period=3600,
        unit="Percent",
    ),
)


class AnomalyEnvironment(FunctionEnvironment):
    """What the detector needs; the tables, topics and bucket only for scan and alarm events,
    so the `detect` action works with none of them."""

    state_table_name: DynamoDbTableName | None = Field(
        default=None,
        description="Delivery records of anomaly alerts and their resolutions, and the open "
        "episodes (scan and alarm events).",
    )
    alert_topic_arn: Arn | None = Field(
        default=None,
        description="Where warning alerts go, and other severities without their own topic "
        "(scan and alarm events).",
    )
    data_bucket_name: S3BucketName | None = Field(
        default=None,
        description="The data bucket holding the fleet inventory (scan events).",
    )
    member_role_name: IamRoleName | None = Field(
        default=None, description="The role assumed in each member account to read its metrics."
    )
    anomaly_metrics: Json[list[MetricSpec]] | None = Field(
        default=None,
        description='JSON list of `{"namespace", "metric", "dimensions", "stat" (Average), '
        '"period" (3600), "unit"}` scanned in every member account and region; a dimension '
        "value `{cluster}` expands to every cluster there; `unit`, the metric's CloudWatch "
        "unit (`Percent`, `Count`, `Bytes`, ...), chooses the noise floor of its series "
        "(without one, 0.001). Unset: Container Insights `node_cpu_utilization` (`Percent`) "
        "per `ClusterName`, hourly. A statistic or unit CloudWatch does not know, or a name "
        "or dimension beyond its limits, is refused.",
    )
    anomaly_lookback_days: int = Field(
        default=28,
        ge=7,
        le=MAX_LOOKBACK_DAYS,
        description=f"Days of history read per series (7-{MAX_LOOKBACK_DAYS}).",
    )
    anomaly_recent_hours: int = Field(
        default=48,
        ge=1,
        le=24 * 14,
        description="Metric findings that ended earlier than this many hours ago are not "
        "reported (1-336).",
    )
    anomaly_cost_enabled: BoolFlag = Field(
        default=True, description="Whether the scan also looks at the daily cost."
    )
    anomaly_cost_recent_days: int = Field(
        default=3,
        ge=1,
        le=14,
        description="The same window for daily cost, in days, since Cost Explorer lags a day "
        "(1-14).",
    )
    anomaly_target_seconds: int = Field(
        default=20,
        ge=1,
        le=300,
        description="A generous estimate of one account and region's metric read and detection, "
        "or of the cost's (seconds, 1-300): none is started with less than this and one read "
        "that never answers (25 s) left in the invocation.",
    )
    anomaly_dedup_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="How long a raised anomaly stays claimed, and how long a series may stay "
        "silent before its open episodes are closed (1-90 days; at least ANOMALY_RECENT_HOURS "
        "and ANOMALY_COST_RECENT_DAYS, or a recent anomaly would be alerted again).",
    )

    @field_validator("anomaly_dedup_days")
    @classmethod
    def _claims_outlast_the_recent_windows(cls, days: int, info: ValidationInfo) -> int:
        # A finding is reported for its whole recent window: a claim that lapses sooner lets a
        # later scan alert the same episode again. (A window that failed its own validation is
        # not in `info.data`; its own error is the one reported.)
        recent_hours = info.data.get("anomaly_recent_hours")
        if recent_hours is not None and days * 24 < recent_hours:
            raise ValueError(
                f"{days} is shorter than ANOMALY_RECENT_HOURS={recent_hours}: an anomaly would "
                "be alerted again while it is still recent"
            )
        cost_days = info.data.get("anomaly_cost_recent_days")
        if cost_days is not None and days < cost_days:
            raise ValueError(
                f"{days} is shorter than ANOMALY_COST_RECENT_DAYS={cost_days}: a cost anomaly "
                "would be alerted again while it is still recent"
            )
        return days

    def metrics(self) -> tuple[MetricSpec, ...]:
        """ANOMALY_METRICS, or the Container Insights node CPU of every cluster."""
        return DEFAULT_METRICS if self.anomaly_metrics is None else tuple(self.anomaly_metrics)
