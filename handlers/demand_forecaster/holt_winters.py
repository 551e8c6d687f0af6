"""Additive Holt-Winters with a daily and a weekly season (Taylor's double seasonal method).

Model, on hourly values y_t (period 24 for the day, 168 for the week)::

    forecast  y(t+h) = l_t + h * b_t + d[t+h] + w[t+h]           (latest estimate of each season)
    level     l_t = alpha * (y_t - d[t] - w[t]) + (1 - alpha) * (l_{t-1} + b_{t-1})
    trend     b_t = beta * (l_t - l_{t-1}) + (1 - beta) * b_{t-1}
    daily     d[t] <- delta * (y_t - l_t - w[t]) + (1 - delta) * d[t]
    weekly    w[t] <- omega * (y_t - l_t - d[t]) + (1 - omega) * w[t]

Why this form: node demand repeats every day (working hours) and every week (quiet weekends); a
single 168-hour season would need many weeks of history to learn each hour of the week, while
a 24-hour season plus a weekly one learn from 14 days. Taylor, J. W. (2003), "Short-term
electricity demand forecasting using double seasonal exponential smoothing", JORS 54(8).

Initialisation uses the first week: level and trend from the first two weekly means, the daily
season from each hour's mean departure from its day's mean, the weekly season from what the
level and the daily season leave of each hour of the first week (so weekend days keep their
own shape, not only their own mean). The smoothing parameters are the point of `GRID` with the
smallest sum of squared one-step-ahead errors over the rest of the history; every grid point is
run at once, as one numpy array per state, so fitting costs one pass over the history.

With less than two weeks of history (but at least `MIN_DAILY_HOURS`), the weekly season is left
out (omega = 0) and the first day initialises the daily season.

Prediction interval: h-step variance sigma^2 * (1 + sum_{j=1}^{h-1} c_j^2) with
c_j = alpha * (1 + j * beta) + delta * [j mod 24 = 0] + omega * [j mod 168 = 0], sigma^2 the
variance of the one-step errors; this is the ETS(A,A,A) result of Hyndman et al. (2008,
"Forecasting with Exponential Smoothing", ch. 6) extended to the second season. Normal quantiles.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

DAY = 24
WEEK = 168
MIN_DAILY_HOURS = 3 * DAY
"""Shortest usable history: one day to initialise, two to fit."""
MIN_WEEKLY_HOURS = 2 * WEEK
"""History needed for the weekly season: one week to initialise, one to fit."""

GRID: tuple[tuple[float, float, float, float], ...] = tuple(
    itertools.product(
        (0.02, 0.05, 0.1, 0.2, 0.35, 0.5),  # alpha (level)
        (0.0, 0.01, 0.05),  # beta (trend)
        (0.0, 0.05, 0.15, 0.3),  # delta (daily season)
        (0.0, 0.05, 0.15, 0.3),  # omega (weekly season)
    )
)
_PARAMETER_COUNT = 4


class InsufficientHistoryError(ValueError):
    """Too few hourly values to initialise and fit the model."""


@dataclass(frozen=True)
class Parameters:
    """Smoothing parameters, each in [0, 1]."""

    alpha: float
    beta: float
    delta: float
    omega: float


@dataclass(frozen=True)
class Forecast:
    """Point forecasts and prediction interval for steps 1..h after the history."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float


@dataclass(frozen=True)
class HoltWinters:
    """A fitted model: parameters, final states and the one-step error it made on its history."""

    parameters: Parameters
    level: float
    trend: float
    daily: np.ndarray
    """Daily season, indexed by (t mod 24) of the history's time index t."""
    weekly: np.ndarray
    """Weekly season, indexed by (t mod 168); zeros without a weekly season."""
    length: int
    """Number of values in the history (the next step is t = length)."""
    sigma: float
    """Standard deviation of the one-step-ahead errors over the fitted part of the history."""
    fitted_mape: float
    """Mean absolute percentage error of the one-step forecasts over the fitted part."""
    seasonal_naive_mape: float
    """The same for the seasonal-naive forecast (value one season earlier), as a baseline."""
    weekly_season: bool

    def forecast(self, steps: int, interval: float = 0.9) -> Forecast:
        """Forecasts for the `steps` hours after the history with a central `interval`."""
        if steps < 1:
            raise ValueError("steps must be at least 1")
        if not 0 < interval < 1:
            raise ValueError("interval must be between 0 and 1")
        horizon = np.arange(1, steps + 1)
        times = self.length - 1 + horizon
        mean = (
            self.level + horizon * self.trend + self.daily[times % DAY] + self.weekly[times % WEEK]
        )
        p = self.parameters
        j = np.arange(1, steps)
        c = (
            p.alpha * (1 + j * p.beta)
            + p.delta * (j % DAY == 0)
            + p.omega * ((j % WEEK == 0) & self.weekly_season)
        )
        variance_factor = 1.0 + np.concatenate(([0.0], np.cumsum(c**2)))
        quantile = NormalDist().inv_cdf(0.5 + interval / 2)
        half_width = quantile * self.sigma * np.sqrt(variance_factor)
        return Forecast(mean, mean - half_width, mean + half_width, interval)


Grid = tuple[tuple[float, float, float, float], ...]


def fit(values: np.ndarray, grid: Grid = GRID) -> HoltWinters:
    """The model of `GRID` (or `grid`) with the least one-step squared error on `values` (hourly,
    oldest first, no gaps: fill them before)."""
    y = np.asarray(values, dtype=float)
    if len(y) < MIN_DAILY_HOURS or not np.all(np.isfinite(y)):
        raise InsufficientHistoryError(
            f"need at least {MIN_DAILY_HOURS} finite hourly values, got {int(np.isfinite(y).sum())}"
        )
    weekly = len(y) >= MIN_WEEKLY_HOURS
    candidates = np.array(grid if weekly else [g for g in grid if g[3] == 0.0], dtype=float)
    sse = _run(y, candidates, weekly)[0]
    best = candidates[int(np.argmin(sse))]
    return _fitted(y, best, weekly)


def fit_with(values: np.ndarray, parameters: Parameters) -> HoltWinters:
    """The model with given parameters run over `values` (for backtests with fixed parameters)."""
    y = np.asarray(values, dtype=float)
    weekly = len(y) >= MIN_WEEKLY_HOURS
    row = np.array(
        [parameters.alpha, parameters.beta, parameters.delta, parameters.omega if weekly else 0.0]
    )
    return _fitted(y, row, weekly)


def _fitted(y: np.ndarray, row: np.ndarray, weekly: bool) -> HoltWinters:
    sse, level, trend, daily, week, errors, start = _run(y, row[np.newaxis, :], weekly)
    fitted_points = len(y) - start
    sigma = float(np.sqrt(sse[0] / max(1, fitted_points - _PARAMETER_COUNT)))
    actual = y[start:]
    forecasts = actual - errors[0]
    season = WEEK if weekly else DAY
    naive = y[start - season : len(y) - season]
    return HoltWinters(
        parameters=Parameters(*(float(v) for v in row)),
        level=float(level[0]),
        trend=float(trend[0]),
        daily=daily[0].copy(),
        weekly=week[0].copy(),
        length=len(y),
        sigma=sigma,
        fitted_mape=mape(actual, forecasts),
        seasonal_naive_mape=mape(actual, naive),
        weekly_season=weekly,
    )


def _run(
    y: np.ndarray, params: np.ndarray, weekly: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Run the recursions for every parameter row at once; returns the one-step SSE per row,
    the final states, the one-step errors (rows x fitted points) and the first fitted index."""
    alpha, beta, delta, omega = (params[:, i : i + 1].ravel() for i in range(4))
    init = WEEK if weekly else DAY
    level0, trend0, daily0, weekly0 = _initial_states(y, weekly)
    rows = len(params)
    level = np.full(rows, level0 + trend0 * (init - 1 - (init - 1) / 2))
    trend = np.full(rows, trend0)
    daily = np.tile(daily0, (rows, 1))
    week = np.tile(weekly0, (rows, 1))
    errors = np.empty((rows, len(y) - init))
    for t in range(init, len(y)):
        d_index, w_index = t % DAY, t % WEEK
        d_t = daily[:, d_index]
        w_t = week[:, w_index]
        errors[:, t - init] = y[t] - (level + trend + d_t + w_t)
        new_level = alpha * (y[t] - d_t - w_t) + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        new_daily = delta * (y[t] - new_level - w_t) + (1 - delta) * d_t
        daily[:, d_index] = new_daily
        week[:, w_index] = omega * (y[t] - new_level - new_daily) + (1 - omega) * w_t
        level = new_level
    return (errors**2).sum(axis=1), level, trend, daily, week, errors, init


def _initial_states(y: np.ndarray, weekly: bool) -> tuple[float, float, np.ndarray, np.ndarray]:
    period = WEEK if weekly else DAY
    first, second = y[:period], y[period : 2 * period]
    trend = (second.mean() - first.mean()) / period
    detrended = first - trend * (np.arange(period) - (period - 1) / 2)
    level = float(detrended.mean())
    days = detrended.reshape(-1, DAY)
    day_means = days.mean(axis=1)
    daily = (days - day_means[:, np.newaxis]).mean(axis=0)
    week = detrended - level - np.tile(daily, WEEK // DAY) if weekly else np.zeros(WEEK)
    return level, float(trend), daily, week


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error in percent, over the points where `actual` is not 0."""
    actual = np.asarray(actual, dtype=float)
    forecast = np.asarray(forecast, dtype=float)
    mask = actual != 0
    if not mask.any():
        return 0.0
    return float(np.mean(np.abs((actual[mask] - forecast[mask]) / actual[mask])) * 100)


def seasonal_naive(values: np.ndarray, origin: int, steps: int, season: int = WEEK) -> np.ndarray:
    """The seasonal-naive forecast from `origin`: each step's value one `season` earlier."""
    y = np.asarray(values, dtype=float)
    return y[origin - season + np.arange(steps)]
