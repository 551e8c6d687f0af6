"""Events and environment of the anomaly detector.

Events: `{"action": "scan"}` (the schedule), the native EventBridge "CloudWatch Alarm State
Change" event, and `{"action": "detect", "series": [...], "timestamps": [...]}`. The alarm event
is recognised by its `source` and `detail-type`; the others by `action`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, field_validator, model_validator

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import AccountId, AwsRegion, BoolFlag

CLUSTER_PLACEHOLDER = "{cluster}"
"""A dimension value that stands for every cluster of the account and region being scanned."""


class MetricSpec(BaseModel):
    """One metric to scan in every member account and region of the inventory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str = "Average"
    period: int = Field(default=3600, ge=60, le=86_400)

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
    ),
)


class AnomalyEnvironment(FunctionEnvironment):
    """Settings of the detector; all have defaults (see app.py)."""

    anomaly_metrics: Json[list[MetricSpec]] | None = None
    anomaly_lookback_days: int = Field(default=28, ge=7, le=455)
    anomaly_recent_hours: int = Field(default=48, ge=1, le=24 * 14)
    anomaly_cost_enabled: BoolFlag = True
    anomaly_cost_recent_days: int = Field(default=3, ge=1, le=14)
    anomaly_dedup_days: int = Field(default=7, ge=1, le=90)

    def metrics(self) -> tuple[MetricSpec, ...]:
        """ANOMALY_METRICS, or the Container Insights node CPU of every cluster."""
        return DEFAULT_METRICS if self.anomaly_metrics is None else tuple(self.anomaly_metrics)


class ActionEvent(BaseModel):
    """Only the action; the rest is validated by the action's model."""

    action: Literal["scan", "detect"]


class ScanRequest(BaseModel):
    """`{"action": "scan"}`."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["scan"]


class DetectRequest(BaseModel):
    """`{"action": "detect", "series": [numbers or null], "timestamps": [ISO 8601]}`."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["detect"]
    series: list[float | None] = Field(min_length=1, max_length=100_000)
    timestamps: list[datetime] = Field(min_length=1, max_length=100_000)
    point_threshold: float = Field(default=5.0, gt=0)
    shift_threshold: float = Field(default=4.0, gt=0)

    @field_validator("series")
    @classmethod
    def _finite(cls, values: list[float | None]) -> list[float | None]:
        for position, value in enumerate(values):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"value {position} is not a finite number")
        return values

    @field_validator("timestamps")
    @classmethod
    def _aware(cls, values: list[datetime]) -> list[datetime]:
        for position, value in enumerate(values):
            if value.tzinfo is None:
                raise ValueError(f"timestamp {position} has no time zone (add Z or +00:00)")
        return values

    @model_validator(mode="after")
    def _same_length(self) -> DetectRequest:
        if len(self.series) != len(self.timestamps):
            raise ValueError(
                f"series has {len(self.series)} values but timestamps has {len(self.timestamps)}"
            )
        return self


class AlarmMetric(BaseModel):
    """`detail.configuration.metrics[].metricStat` of an alarm event."""

    model_config = ConfigDict(populate_by_name=True)

    namespace: str
    name: str
    dimensions: dict[str, str] = Field(default_factory=dict)


class AlarmMetricStat(BaseModel):
    metric: AlarmMetric
    period: int = Field(ge=1)
    stat: str


class AlarmMetricQuery(BaseModel):
    id: str
    metric_stat: AlarmMetricStat | None = Field(default=None, alias="metricStat")
    return_data: bool = Field(default=True, alias="returnData")


class AlarmConfiguration(BaseModel):
    metrics: list[AlarmMetricQuery] = Field(default_factory=list)


class AlarmState(BaseModel):
    value: str
    timestamp: datetime


class AlarmDetail(BaseModel):
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState
    configuration: AlarmConfiguration


class AlarmEvent(BaseModel):
    """The EventBridge "CloudWatch Alarm State Change" event (fields used here)."""

    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    account: AccountId
    region: AwsRegion
    detail: AlarmDetail


def is_alarm_event(event: Any) -> bool:
    """Whether `event` looks like an alarm state change (then it is validated as one)."""
    return isinstance(event, dict) and event.get("detail-type") == "CloudWatch Alarm State Change"
