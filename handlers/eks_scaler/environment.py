"""The scaler's environment, read once per container (docs/functions/eks_scaler.md is generated
from these descriptions)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, IamRoleName


class ScalerEnvironment(FunctionEnvironment):
    """What the scaler needs; the state table, member role and alert topic are required."""

    state_table_name: DynamoDbTableName = Field(
        description="Node group locks, idempotency, cooldowns, saved sizes and change history."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    alert_topic_arn: Arn = Field(
        description="The default alert topic; every change is announced at info level."
    )
    forecaster_function_name: str | None = Field(
        default=None,
        description="The demand forecaster that `analyze` invokes; unset means no forecast.",
    )
    scaler_cooldown_seconds: int = Field(
        default=300,
        ge=0,
        description="No decrease of desiredSize within this many seconds of the last change.",
    )
    scaler_history_ttl_days: int = Field(
        default=90, gt=0, description="How long the change history is kept (days)."
    )
    scaler_idempotency_ttl_hours: int = Field(
        default=48, gt=0, description="How long a `request_id` is remembered (hours)."
    )
    scaler_utilization_window_minutes: int = Field(
        default=60,
        ge=5,
        le=1440,
        description="The utilisation window of `analyze` (minutes).",
    )
    scaler_scale_up_utilization: float = Field(
        default=75.0,
        gt=0,
        le=100,
        description="The utilisation (%) above which `analyze` recommends one node more.",
    )
    scaler_scale_down_utilization: float = Field(
        default=30.0,
        ge=0,
        lt=100,
        description="The utilisation (%) below which `analyze` recommends one node less.",
    )
    scaler_forecast_timeout_seconds: int = Field(
        default=30,
        gt=0,
        le=100,
        description="The read timeout of the forecaster call (one attempt, seconds).",
    )
