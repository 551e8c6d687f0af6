"""The health monitor's environment: the fleet variables it needs and its severity thresholds.

Thresholds are plain settings with defaults, so a deployment changes them without a code change;
they are checked against each other at cold start (a warning level past its critical level would
silently turn every warning into a critical, or the reverse).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, PositiveInt


def _split_patterns(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


PatternList = Annotated[tuple[str, ...], BeforeValidator(_split_patterns)]
"""Comma-separated fnmatch patterns, e.g. `*-critical,*-Errors`."""

Ratio = Annotated[float, Field(ge=0, le=1)]


class HealthEnvironment(FunctionEnvironment):
    """Variables of health_monitor; see the module docstring of `app` for their meaning."""

    state_table_name: str
    member_role_name: str
    alert_topic_arn: Arn
    data_bucket_name: str

    health_latency_warning_ms: PositiveInt = 1000
    health_latency_critical_ms: PositiveInt = 3000
    health_error_rate_warning: Ratio = 0.2
    health_error_rate_critical: Ratio = 0.5
    health_capacity_warning_ratio: Ratio = 0.8
    health_capacity_critical_ratio: Ratio = 0.5
    health_endpoint_history: PositiveInt = 10
    health_error_rate_min_samples: PositiveInt = 3
    health_alert_window_seconds: PositiveInt = 3600
    health_critical_alarm_patterns: PatternList = ("*critical*", "*Critical*")
    health_max_workers: PositiveInt = 8

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
        return self
