"""Forecast backtest: the demand forecaster's model against seasonal-naive on generated EKS load.

Twelve hourly series of 8 weeks (seeded) with what cluster CPU demand has: a working-hours day
in the cluster's time zone, nightly batch peaks on some, quieter weekends, a trend, noise,
level shifts, weekday holidays shaped like a Sunday, short spikes, missing hours (scattered and a
gap of several hours), and one cluster born 10 days before the backtest (cold start).

Rolling origin: a forecast 24 hours ahead from every midnight (UTC) of the last `BACKTEST_DAYS`
days, each from the history before it only (at most `HISTORY_DAYS` days, as the function reads;
leading hours without data are dropped, as `forecast.py` does). Per series and in median: MASE
(mean absolute error over that of the in-sample seasonal-naive forecast before the first
origin) and MAPE of the model and of seasonal-naive (same hour one week earlier), the coverage
of the 80% and 95% intervals, the mean confidence and the share of forecasts that were actually
within the confidence's tolerance (what a calibrated confidence should match). Pooled over the
series, the same coverage and the share of hours above the 80% interval's upper bound (the p90)
in each series' quiet and busy half of the hours of the day (the 12 local hours with the lowest
and the highest mean load before the first origin): a calibrated interval holds in both.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# In Lambda the shared layer is on the path as `fleet_shared`; here it lives under handlers/.
HANDLERS_DIR = str(Path(__file__).resolve().parent.parent / "handlers")
if HANDLERS_DIR not in sys.path:
    sys.path.append(HANDLERS_DIR)

from handlers.demand_forecaster.seasonal_model import (  # noqa: E402
    DAY,
    TOLERANCE,
    TOLERANCE_FLOOR_SHARE,
    WEEK,
    forecast_demand,
)

SEED = 17
SERIES_COUNT = 12
WEEKS = 8
BACKTEST_DAYS = 21
HISTORY_DAYS = 42
COLD_START_DAYS = 10
HORIZON = DAY
COVERAGES = (0.8, 0.95)
HALVES = ("quiet", "busy")
MASE_GOAL = 0.85
COVERAGE_GOAL_POINTS = 5.0


@dataclass(frozen=True)
class Series:
    """A generated load series (hour 0 is a Monday 00:00 UTC) and what shaped it."""

    name: str
    values: np.ndarray
    description: str
    utc_offset: int
    """Hours from UTC of the time zone whose days the load follows (the cluster's)."""


@dataclass(frozen=True)
class Scores:
    """Backtest results of one series."""

    name: str
    description: str
    model_mase: float
    naive_mase: float
    model_mape: float
    naive_mape: float
    coverage: tuple[float, ...]
    confidence: float
    within_tolerance: float
    by_half: np.ndarray
    """Per half of the hours of the day (`HALVES`): hours observed, inside each interval of
    `COVERAGES`, above the p90."""


def generated_series(index: int, rng: np.random.Generator) -> Series:
    """One cluster's load in vCPU (see the module docstring); the last is the cold start."""
    hours = np.arange(WEEKS * WEEK)
    utc_offset = int(rng.choice([-8, -5, 0, 1, 5, 8, 9]))
    local = hours + utc_offset
    hour_of_day = local % DAY
    day = local // DAY
    weekend = (day % 7) >= 5
    holidays = rng.choice(np.arange(WEEKS * 7)[np.arange(WEEKS * 7) % 7 < 5], 2, replace=False)
    holiday = np.isin(day, holidays)
    quiet = weekend | holiday
    base = float(rng.uniform(4, 120))
    working = np.clip(np.sin(np.pi * (hour_of_day - 7.5) / 11), 0.0, None) ** 0.7
    weekday_amplitude = float(rng.uniform(0.6, 1.6))
    weekend_share = float(rng.uniform(0.15, 0.5))
    shape = working * np.where(quiet, weekend_share, 1.0) * weekday_amplitude
    friday = (day % 7 == 4) & ~holiday
    shape = np.where(friday & (hour_of_day >= 13), shape * 0.8, shape)
    description = [f"UTC{utc_offset:+d}"]
    if rng.random() < 0.5:
        batch = 0.5 * np.exp(-0.5 * ((hour_of_day - 2) / 1.0) ** 2)
        shape = shape + batch
        description.append("nightly batch")
    trend = float(rng.uniform(-0.1, 0.4))
    level = 1.0 + trend * hours / len(hours)
    shift_count = int(rng.integers(0, 3))
    for at in rng.integers(2 * WEEK, len(hours) - DAY, shift_count):
        level = level * np.where(hours >= at, float(rng.choice([0.7, 0.8, 1.25, 1.4])), 1.0)
    noise_share = float(rng.uniform(0.03, 0.1))
    noise = np.zeros(len(hours))
    shocks = rng.normal(0.0, noise_share, len(hours))
    for hour in range(1, len(hours)):
        noise[hour] = 0.5 * noise[hour - 1] + shocks[hour]
    values = base * level * (0.35 + shape) * np.exp(noise)
    spikes = rng.choice(len(hours), 4, replace=False)
    values[spikes] *= rng.uniform(1.5, 2.5, len(spikes))
    values[rng.random(len(hours)) < 0.02] = np.nan
    gap = int(rng.integers(WEEK, len(hours) - WEEK))
    values[gap : gap + int(rng.integers(3, 9))] = np.nan
    description += [f"trend {trend:+.0%}", f"{shift_count} shift(s)", f"noise {noise_share:.0%}"]
    if index == SERIES_COUNT - 1:
        values[: len(hours) - (COLD_START_DAYS + BACKTEST_DAYS) * DAY] = np.nan
        description.append("cold start")
    return Series(f"cluster-{index + 1:02d}", values, ", ".join(description), utc_offset)


def busy_hours_of_day(series: Series, end: int) -> np.ndarray:
    """Per local hour of the day (0-23), whether it is in the series' busy half: the 12 hours
    whose mean load before hour `end` is the highest (the others are its quiet half)."""
    local_hour = (np.arange(end) + series.utc_offset) % DAY
    hourly_load = [np.nanmean(series.values[:end][local_hour == hour]) for hour in range(DAY)]
    busy = np.zeros(DAY, dtype=bool)
    busy[np.argsort(hourly_load)[DAY // 2 :]] = True
    return busy


def backtest(series: Series) -> Scores:
    """Rolling-origin backtest of one series (see the module docstring)."""
    values = series.values
    origins = range(len(values) - BACKTEST_DAYS * DAY, len(values) - HORIZON + 1, DAY)
    first_observed = int(np.flatnonzero(np.isfinite(values))[0])
    training = values[first_observed : origins[0]]
    scale = float(np.nanmean(np.abs(training[WEEK:] - training[:-WEEK])))
    local_hour = (np.arange(len(values)) + series.utc_offset) % DAY
    busy_hour = busy_hours_of_day(series, origins[0]).astype(int)
    by_half = np.zeros((len(HALVES), 2 + len(COVERAGES)), dtype=int)
    model_errors, naive_errors, actuals = [], [], []
    inside = dict.fromkeys(COVERAGES, 0)
    observed = 0
    confidences, within = [], []
    for origin in origins:
        start = max(first_observed, origin - HISTORY_DAYS * DAY)
        # The days of the week in the cluster's time zone, as forecast.py counts them.
        result = forecast_demand(values[start:origin], (start + series.utc_offset) % WEEK, HORIZON)
        actual = values[origin : origin + HORIZON]
        naive = values[origin - WEEK : origin - WEEK + HORIZON]
        # Both forecasts are scored on the same hours: observed now and a week earlier.
        known = np.isfinite(actual) & np.isfinite(naive)
        observed += int(np.isfinite(actual).sum())
        half = busy_hour[local_hour[origin : origin + HORIZON]]
        np.add.at(by_half[:, 0], half, np.isfinite(actual))
        actuals.append(actual[known])
        model_errors.append(np.abs(result.mean - actual)[known])
        naive_errors.append(np.abs(naive - actual)[known])
        for column, coverage in enumerate(COVERAGES, start=1):
            lower, upper = result.interval(coverage)
            inside[coverage] += int(np.sum((actual >= lower) & (actual <= upper)))
            np.add.at(by_half[:, column], half, (actual >= lower) & (actual <= upper))
        np.add.at(by_half[:, -1], half, actual > result.interval(0.8)[1])
        confidences.append(result.confidence)
        floor = TOLERANCE_FLOOR_SHARE * float(np.nanmean(values[start:origin]))
        within.extend(model_errors[-1] <= TOLERANCE * np.maximum(actual[known], floor))
    actual_all = np.concatenate(actuals)
    model_all = np.concatenate(model_errors)
    naive_all = np.concatenate(naive_errors)
    return Scores(
        name=series.name,
        description=series.description,
        model_mase=float(model_all.mean() / scale),
        naive_mase=float(naive_all.mean() / scale),
        model_mape=float(np.mean(model_all / actual_all) * 100),
        naive_mape=float(np.mean(naive_all / actual_all) * 100),
        coverage=tuple(inside[coverage] / observed * 100 for coverage in COVERAGES),
        confidence=float(np.mean(confidences)),
        within_tolerance=float(np.mean(within)),
        by_half=by_half,
    )


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    series = [generated_series(index, rng) for index in range(SERIES_COUNT)]
    # One BLAS thread per worker process (spawned, so they read it when importing numpy): two
    # workers keep two cores busy, while OpenBLAS threads competing for them run far slower.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        scores = list(pool.map(backtest, series))
    print(
        f"{len(series)} series x {WEEKS} weeks, {BACKTEST_DAYS} daily origins, "
        f"{HORIZON}-hour horizon, history up to {HISTORY_DAYS} days (cold start: "
        f"{COLD_START_DAYS}), seed {SEED}"
    )
    header = (
        f"{'series':<11} {'MASE':>6} {'naive':>6} {'ratio':>6} {'MAPE%':>6} {'naive%':>7} "
        f"{'cov80':>6} {'cov95':>6} {'conf':>5} {'hit':>5}  shaped by"
    )
    print(header)
    for item in scores:
        print(_row(item.name, item) + f"  {item.description}")
    median = Scores(
        name="median",
        description="",
        model_mase=_median(s.model_mase for s in scores),
        naive_mase=_median(s.naive_mase for s in scores),
        model_mape=_median(s.model_mape for s in scores),
        naive_mape=_median(s.naive_mape for s in scores),
        coverage=tuple(_median(s.coverage[i] for s in scores) for i in range(len(COVERAGES))),
        confidence=_median(s.confidence for s in scores),
        within_tolerance=_median(s.within_tolerance for s in scores),
        # The halves' counts are pooled over the series, not a median.
        by_half=np.sum([s.by_half for s in scores], axis=0),
    )
    print(_row("median", median))
    ratio = median.model_mase / median.naive_mase
    gaps = [abs(c - nominal * 100) for c, nominal in zip(median.coverage, COVERAGES, strict=True)]
    print(
        f"goal: median MASE at most {MASE_GOAL:.2f} x seasonal-naive: {ratio:.3f} "
        f"({'met' if ratio <= MASE_GOAL else 'NOT met'}); interval coverage within "
        f"{COVERAGE_GOAL_POINTS:.0f} points of nominal: "
        f"{', '.join(f'{gap:.1f}' for gap in gaps)} "
        f"({'met' if max(gaps) <= COVERAGE_GOAL_POINTS else 'NOT met'})"
    )
    for name, (observed, *inside, above) in zip(HALVES, median.by_half, strict=True):
        print(
            f"{name} half of the hours of the day, all series: "
            + ", ".join(
                f"{coverage:.0%} interval covers {count / observed:.1%}"
                for coverage, count in zip(COVERAGES, inside, strict=True)
            )
            + f", p90 exceeded in {above / observed:.1%} ({observed} hours)"
        )
    print(f"conf: mean confidence; hit: share of forecasts within {TOLERANCE:.0%} of the actual")
    print(f"{time.perf_counter() - started:.1f} s")


def _row(name: str, item: Scores) -> str:
    return (
        f"{name:<11} {item.model_mase:>6.3f} {item.naive_mase:>6.3f} "
        f"{item.model_mase / item.naive_mase:>6.3f} {item.model_mape:>6.1f} "
        f"{item.naive_mape:>7.1f} {item.coverage[0]:>6.1f} {item.coverage[1]:>6.1f} "
        f"{item.confidence:>5.2f} {item.within_tolerance:>5.2f}"
    )


def _median(values: object) -> float:
    return float(np.median(list(values)))  # type: ignore[call-overload]
