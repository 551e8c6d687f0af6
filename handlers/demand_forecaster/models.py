"""The events the demand forecaster accepts, as validated models.

Two actions: `forecast` for one cluster (the eks_scaler invokes it synchronously and uses the
result as is) and `forecast_fleet` for every cluster of the inventory (the hourly schedule).
The action is read first, so an error names the field of the action's own model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from fleet_shared.field_types import AccountId, AwsRegion, EksClusterName
from fleet_shared.utc_times import UtcTime

MAX_HORIZON_MINUTES = 2880
"""Two days: beyond that the interval is too wide to size node groups with."""

HorizonMinutes = Annotated[int, Strict(), Field(ge=1, le=MAX_HORIZON_MINUTES)]
"""Minutes ahead, a JSON integer: strict, so `true` (or "60") is refused, not read as 1 (or 60)."""


class ActionEvent(BaseModel):
    """Only the action; the rest is validated by the action's model."""

    model_config = ConfigDict(defer_build=True)

    action: Literal["forecast", "forecast_fleet"]


class ForecastRequest(BaseModel):
    """Forecast one cluster: `{"action": "forecast", "account_id", "region", "cluster",
    "horizon_minutes"}`."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["forecast"]
    account_id: AccountId
    region: AwsRegion
    cluster: EksClusterName
    horizon_minutes: HorizonMinutes = 180


class FleetForecastRequest(BaseModel):
    """Forecast every cluster of the inventory: `{"action": "forecast_fleet",
    "horizon_minutes", "run"?}`. The schedule adds `run`, the time its run was scheduled for,
    which every attempt of the run carries: the scaler's request ids are the run's, so a retry
    in the next hour is the same request, not the next run's."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["forecast_fleet"]
    horizon_minutes: HorizonMinutes = 180
    run: UtcTime | None = None
