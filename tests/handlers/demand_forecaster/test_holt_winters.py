"""The double seasonal Holt-Winters model on generated demand: backtest against baselines."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.demand_forecaster.holt_winters import (
    DAY,
    WEEK,
    InsufficientHistoryError,
    fit,
    fit_with,
    mape,
    seasonal_naive,
)
from tests.handlers.demand_forecaster.demand_series import hourly_demand

HORIZON = 3  # the scheduled forecast's 180 minutes, in hourly steps


def test_backtest_beats_the_seasonal_naive_baseline_and_prints_both() -> None:
    # GIVEN four weeks of demand with a holiday on the Friday of week 3, fitted on three weeks
    values = hourly_demand(np.random.default_rng(42), days=28, holiday_day=18)
    train = 21 * DAY
    model = fit(values[:train])
    # WHEN 3-hour forecasts are made every 3 hours through week 4 (parameters fixed, states
    # updated with what was observed up to each origin)
    origins = range(train, len(values) - HORIZON + 1, HORIZON)
    actual, predicted, weekly_naive, daily_naive, inside = [], [], [], [], 0
    for origin in origins:
        forecast = fit_with(values[:origin], model.parameters).forecast(HORIZON, interval=0.9)
        truth = values[origin : origin + HORIZON]
        actual.append(truth)
        predicted.append(forecast.mean)
        weekly_naive.append(seasonal_naive(values, origin, HORIZON, WEEK))
        daily_naive.append(seasonal_naive(values, origin, HORIZON, DAY))
        inside += int(np.sum((truth >= forecast.lower) & (truth <= forecast.upper)))
    actual_all = np.concatenate(actual)
    model_mape = mape(actual_all, np.concatenate(predicted))
    weekly_mape = mape(actual_all, np.concatenate(weekly_naive))
    daily_mape = mape(actual_all, np.concatenate(daily_naive))
    coverage = inside / actual_all.size
    print(
        f"\nHolt-Winters backtest (3-hour horizon, week 4): model MAPE {model_mape:.2f}%, "
        f"seasonal-naive (1 week) MAPE {weekly_mape:.2f}%, seasonal-naive (1 day) MAPE "
        f"{daily_mape:.2f}%, 90% interval coverage {coverage:.1%}, parameters {model.parameters}"
    )
    # THEN the model beats both baselines and its 90% interval covers most observations
    assert model_mape < weekly_mape
    assert model_mape < daily_mape
    assert 0.75 <= coverage <= 1.0


def test_interval_widens_with_the_horizon() -> None:
    # GIVEN a model fitted on two weeks
    model = fit(hourly_demand(np.random.default_rng(1), days=14))
    # WHEN it forecasts a day ahead
    forecast = model.forecast(24, interval=0.9)
    width = forecast.upper - forecast.lower
    # THEN the interval never narrows with the horizon and contains the point forecast
    assert np.all(np.diff(width) >= 0)
    assert np.all((forecast.lower < forecast.mean) & (forecast.mean < forecast.upper))
    assert model.weekly_season


def test_model_fit_reports_its_in_sample_error_against_the_baseline() -> None:
    # GIVEN two weeks of demand WHEN fitted
    model = fit(hourly_demand(np.random.default_rng(3), days=14))
    # THEN its one-step error on the fitted week is measured, and below the seasonal-naive one
    assert 0 < model.fitted_mape < model.seasonal_naive_mape


def test_short_history_uses_the_daily_season_only() -> None:
    # GIVEN five days of demand WHEN fitted
    model = fit(hourly_demand(np.random.default_rng(4), days=5))
    # THEN the weekly season is left out
    assert not model.weekly_season
    assert model.parameters.omega == 0.0
    assert np.all(model.weekly == 0.0)


def test_too_short_or_gapped_history_is_refused() -> None:
    # GIVEN two days, or a history with a missing value WHEN fitted THEN it is refused
    with pytest.raises(InsufficientHistoryError):
        fit(np.ones(2 * DAY))
    gapped = hourly_demand(np.random.default_rng(5), days=4)
    gapped[10] = np.nan
    with pytest.raises(InsufficientHistoryError):
        fit(gapped)
