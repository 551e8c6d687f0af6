"""The events the demand forecaster accepts, and its environment.

Two actions: `forecast` for one cluster (the eks_scaler invokes it synchronously and uses the
result as is) and `forecast_fleet` for every cluster of the inventory (the hourly schedule).
The action is read first, so an error names the field of the action's own model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import AccountId, AwsRegion

MAX_HORIZON_MINUTES = 2880
"""Two days: beyond that the interval is too wide to size node groups with."""


class ForecasterEnvironment(FunctionEnvironment):
    """DATA_BUCKET_NAME (the inventory) is required; the FORECAST_* settings have defaults."""

    data_bucket_name: str
    forecast_history_days: int = Field(default=14, ge=3, le=63)
    """Days of hourly history read from CloudWatch (two weeks or more enable the weekly season;
    63 days is how long CloudWatch keeps 5-minute data, hourly data is kept longer)."""
    forecast_target_utilisation: float = Field(default=0.7, gt=0.0, le=1.0)
    """CPU utilisation the recommended node counts aim at, at the interval's upper bound."""
    forecast_interval: float = Field(default=0.9, gt=0.5, lt=1.0)
    """Central probability of the prediction interval."""


class ActionEvent(BaseModel):
    """Only the action; the rest is validated by the action's model."""

    action: Literal["forecast", "forecast_fleet"]


class ForecastRequest(BaseModel):
    """Forecast one cluster: `{"action": "forecast", "account_id", "region", "cluster",
    "horizon_minutes"}`."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["forecast"]
    account_id: AccountId
    region: AwsRegion
    cluster: str = Field(min_length=1)
    horizon_minutes: int = Field(default=180, ge=1, le=MAX_HORIZON_MINUTES)


class FleetForecastRequest(BaseModel):
    """Forecast every cluster of the inventory: `{"action": "forecast_fleet",
    "horizon_minutes"}`."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["forecast_fleet"]
    horizon_minutes: int = Field(default=180, ge=1, le=MAX_HORIZON_MINUTES)
