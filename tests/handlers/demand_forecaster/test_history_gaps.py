"""Histories with long gaps: the days without data measure nothing, and say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fleet_shared.inventory import Cluster, NodeGroup
from handlers.demand_forecaster.capacity import InstanceCapacity, LiveNodeGroup
from handlers.demand_forecaster.environment import ForecasterEnvironment
from handlers.demand_forecaster.exceptions import InsufficientHistoryError
from handlers.demand_forecaster.forecast import DemandHistory, Sized, forecast_from_history
from handlers.demand_forecaster.seasonal_model import DAY, forecast_demand
from tests.handlers.demand_forecaster.demand_series import hourly_demand

HISTORY_START = datetime(2025, 6, 2, tzinfo=UTC)
"""A Monday 00:00 UTC."""
INSTANCE = InstanceCapacity("m5.2xlarge", vcpus=8, memory_mib=32768, max_pods=58)


def back_after_a_gap(days: int, observed_days: int, hours_back: int) -> np.ndarray:
    """`days` of hourly demand of which only the first `observed_days` and the last
    `hours_back` hours have data: a cluster switched off for the days between."""
    values = hourly_demand(np.random.default_rng(5), days=days, noise=0.2)
    values[observed_days * DAY : len(values) - hours_back] = np.nan
    return values


def test_days_without_data_do_not_count_towards_the_confidence() -> None:
    # GIVEN 14 days of history of which only the first three and the last two hours have data
    history = back_after_a_gap(14, observed_days=3, hours_back=2)
    # WHEN the next hours are forecast
    forecast = forecast_demand(history, 0, 3)
    # THEN only the one day with data among the out-of-sample days counts, so there is no
    # confidence (the 75 forecasts scored were all of that day and the last two hours), and
    # the reason says so
    assert forecast.calibration_days == 1
    assert forecast.confidence == 0.0
    assert not forecast.step_confidence.any()
    assert forecast.confidence_reason.startswith(
        "too little history: 1 day(s) of out-of-sample forecasts with data "
        "(336 hours of history, 74 with data)"
    )
    # AND the interval is still given
    lower, upper = forecast.interval(0.8)
    assert np.all(lower <= forecast.mean) and np.all(forecast.mean <= upper)


def test_a_history_without_data_in_its_out_of_sample_days_is_refused() -> None:
    # GIVEN 14 days of history with data in the first two days only
    history = back_after_a_gap(14, observed_days=2, hours_back=0)
    # WHEN forecast THEN it is refused: there is no error to measure an interval with
    with pytest.raises(InsufficientHistoryError, match=r"^no hour with data in the last 12 day"):
        forecast_demand(history, 0, 3)


def test_memory_history_that_stopped_leaves_the_node_group_sized_on_cpu() -> None:
    # GIVEN two weeks of CPU demand, and memory demand whose metric stopped after two days
    moments = pd.date_range(HISTORY_START, periods=14 * DAY, freq="h")
    cpu = pd.Series(hourly_demand(np.random.default_rng(3), days=14, noise=0.2), index=moments)
    memory = pd.Series(back_after_a_gap(14, observed_days=2, hours_back=0) * 1000, index=moments)
    group = LiveNodeGroup("workers", "ON_DEMAND", (INSTANCE.instance_type,), 1, 20, 10, 1)
    cluster = Cluster(
        name="apps",
        region="eu-west-1",
        kubernetes_version="1.31",
        node_groups=(
            NodeGroup(
                name="workers",
                capacity_type="ON_DEMAND",
                instance_types=(INSTANCE.instance_type,),
                min_size=1,
                desired_size=10,
                max_size=20,
                floor=1,
            ),
        ),
    )
    # WHEN the cluster is forecast
    result = forecast_from_history(
        DemandHistory(cpu, memory.dropna(), pd.Series(dtype=float)),
        [Sized(group, INSTANCE)],
        ForecasterEnvironment(data_bucket_name="data"),
        account_id="123456789012",
        cluster=cluster,
        horizon_minutes=180,
        now=moments[-1].to_pydatetime() + timedelta(hours=1, minutes=5),
        errors={},
    )
    # THEN it is forecast on CPU alone, and the errors say why memory was left out
    assert result["status"] == "ok"
    assert result["history"]["memory_history"] is False
    assert "p90_memory_mib" not in result["coming_hour"]
    assert [error["error"] for error in result["errors"]] == [
        "memory: sized on CPU only: no hour with data in the last 12 day(s) to measure the "
        "model's out-of-sample error on, got 336 hours (48 with data)"
    ]
