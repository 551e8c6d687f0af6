"""The scaler's environment variables (documented in app.py), read once per container."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn


class ScalerEnvironment(FunctionEnvironment):
    """Variables the scaler needs; the state table and member role are required."""

    state_table_name: str
    member_role_name: str
    alert_topic_arn: Arn
    forecaster_function_name: str | None = None
    scaler_cooldown_seconds: int = Field(default=300, ge=0)
    scaler_history_ttl_days: int = Field(default=90, gt=0)
    scaler_idempotency_ttl_hours: int = Field(default=48, gt=0)
    scaler_utilization_window_minutes: int = Field(default=60, ge=5, le=1440)
    scaler_scale_up_utilization: float = Field(default=75.0, gt=0, le=100)
    scaler_scale_down_utilization: float = Field(default=30.0, ge=0, lt=100)
    scaler_forecast_timeout_seconds: int = Field(default=30, gt=0, le=100)
