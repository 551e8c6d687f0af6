"""The health monitor's environment: the fleet variables it needs and its severity thresholds
(docs/functions/health_monitor.md is generated from these descriptions).

Thresholds are plain settings with defaults, so a deployment changes them without a code change;
they are checked against each other at cold start (a warning level past its critical level would
silently turn every warning into a critical, or the reverse).
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from fleet_shared.endpoint_history import SCHEDULED_RUN_MINUTES
from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, IamRoleName, PositiveInt, S3BucketName


def _split_patterns(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


PatternList = Annotated[tuple[str, ...], BeforeValidator(_split_patterns)]
"""Comma-separated fnmatch patterns, e.g. `*-critical,*-Errors`."""

Ratio = Annotated[float, Field(ge=0, le=1)]

MAX_ERROR_RATE_WINDOW_MINUTES = 24 * 60
"""A longer window would keep a recovered endpoint failing for more than a day."""


def results_in_window(window_minutes: int) -> int:
    """The results of scheduled runs a window of `window_minutes` holds: the run one window back
    never counts (`checks.endpoints.SCHEDULE_JITTER`, under a minute), so a 15-minute window
    holds 3, a 16-minute one 4."""
    return math.ceil(window_minutes / SCHEDULED_RUN_MINUTES)


class HealthEnvironment(FunctionEnvironment):
    """Variables of health_monitor. FLEET_DRY_RUN is not read: the monitor changes nothing but
    its own state and alerts."""

    state_table_name: DynamoDbTableName = Field(
        description="Endpoint results, open incidents and alert deduplication."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    alert_topic_arn: Arn = Field(
        description="The topic of warnings (critical and info go to their own topics when set)."
    )
    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the fleet inventory (clusters, health endpoints)."
    )

    health_latency_warning_ms: PositiveInt = Field(
        default=1000, description="Endpoint latency (ms) at which a check is a warning."
    )
    health_latency_critical_ms: PositiveInt = Field(
        default=3000, description="Endpoint latency (ms) at which a check is critical."
    )
    health_error_rate_warning: Ratio = Field(
        default=0.2, description="Endpoint error rate (0-1) at which a check is a warning."
    )
    health_error_rate_critical: Ratio = Field(
        default=0.5, description="Endpoint error rate (0-1) at which a check is critical."
    )
    health_capacity_warning_ratio: Ratio = Field(
        default=0.8, description="Ready/desired instances below this ratio is a warning."
    )
    health_capacity_critical_ratio: Ratio = Field(
        default=0.5, description="Ready/desired instances below this ratio is critical."
    )
    health_targets_healthy_warning_ratio: Ratio = Field(
        default=0.9,
        description="Healthy/registered load-balancer targets below this ratio is a warning.",
    )
    health_targets_healthy_critical_ratio: Ratio = Field(
        default=0.5,
        description="Healthy/registered load-balancer targets below this ratio is critical.",
    )
    health_load_balancer_window_minutes: int = Field(
        default=5,
        ge=1,
        le=MAX_ERROR_RATE_WINDOW_MINUTES,
        description=(
            "Minutes of load-balancer metrics the response time and 5xx rate are computed over."
        ),
    )
    health_error_rate_window_minutes: int = Field(
        default=15,
        ge=1,
        le=MAX_ERROR_RATE_WINDOW_MINUTES,
        description=(
            "Minutes of recent endpoint results the error rate is computed over (1 to 1440)."
        ),
    )
    health_error_rate_min_samples: PositiveInt = Field(
        default=3,
        description=(
            "Results within the window an endpoint needs before its error rate is judged (at "
            "most the runs the window holds, one every 5 minutes)."
        ),
    )
    health_critical_alarm_patterns: PatternList = Field(
        default=("*critical*", "*Critical*"),
        description=(
            "Comma-separated fnmatch patterns of alarm names that are critical in ALARM; other "
            "alarms are warnings."
        ),
    )
    health_max_workers: PositiveInt = Field(default=8, description="Clusters checked at once.")

    @model_validator(mode="after")
    def _warning_before_critical(self) -> HealthEnvironment:
        if self.health_latency_warning_ms > self.health_latency_critical_ms:
            raise ValueError(
                "HEALTH_LATENCY_WARNING_MS must not exceed HEALTH_LATENCY_CRITICAL_MS, got "
                f"{self.health_latency_warning_ms} and {self.health_latency_critical_ms}"
            )
        if self.health_error_rate_warning > self.health_error_rate_critical:
            raise ValueError(
                "HEALTH_ERROR_RATE_WARNING must not exceed HEALTH_ERROR_RATE_CRITICAL, got "
                f"{self.health_error_rate_warning} and {self.health_error_rate_critical}"
            )
        if self.health_capacity_critical_ratio > self.health_capacity_warning_ratio:
            raise ValueError(
                "HEALTH_CAPACITY_CRITICAL_RATIO must not exceed HEALTH_CAPACITY_WARNING_RATIO, "
                f"got {self.health_capacity_critical_ratio} and "
                f"{self.health_capacity_warning_ratio}"
            )
        if self.health_targets_healthy_critical_ratio > self.health_targets_healthy_warning_ratio:
            raise ValueError(
                "HEALTH_TARGETS_HEALTHY_CRITICAL_RATIO must not exceed "
                "HEALTH_TARGETS_HEALTHY_WARNING_RATIO, got "
                f"{self.health_targets_healthy_critical_ratio} and "
                f"{self.health_targets_healthy_warning_ratio}"
            )
        return self

    @model_validator(mode="after")
    def _min_samples_within_window(self) -> HealthEnvironment:
        # More results than the window holds would turn the error-rate judgement off unsaid.
        held = results_in_window(self.health_error_rate_window_minutes)
        if self.health_error_rate_min_samples > held:
            raise ValueError(
                "HEALTH_ERROR_RATE_MIN_SAMPLES must not exceed the results "
                "HEALTH_ERROR_RATE_WINDOW_MINUTES holds at one run every "
                f"{SCHEDULED_RUN_MINUTES} minutes, got {self.health_error_rate_min_samples} for "
                f"a window of {self.health_error_rate_window_minutes} minutes, which holds {held}"
            )
        return self
