"""Hourly demand forecast: a robust seasonal regression, a tracked level, conformal intervals.

Model, on z = log(demand + offset) (so the daily swing and a level shift scale with the load and
no forecast is below 0; offset = 5% of the mean demand keeps idle hours finite, no hour counting
in that mean as more than `TYPICAL_CAP_FACTOR` times the 90th percentile of the demand above 0)::

    z_t = profile(t) + level_t + noise

- profile: a regression on Fourier terms of the hour of the day (`HARMONICS` sine/cosine pairs)
  shared by every day, plus per day of the week an offset and its own Fourier deviations. The
  deviations are ridge-penalised towards the shared shape, so one week of history already gives
  weekdays and weekends their shapes and more weeks sharpen them. The days of the week are the
  caller's (`forecast.py` gives the cluster's local ones), and no weekend convention is assumed:
  a day whose load differs (a weekend, a Friday afternoon) gets its own shape. Observations
  weigh less with age (half-life `HALF_LIFE_DAYS`) and by their Huber weight, so a holiday or a
  spike barely moves it.
  It is fitted twice. The first fit's residuals give each day's level: the day's median residual,
  smoothed by a running median over `LEVEL_WINDOW_DAYS` days, so a holiday is outvoted while a
  level shift stays. The second fit is made on the load less that level, relative to the last
  day's, so a level shift inside the window is not taken for the shape of the days of the week
  it happened to land on.
- level: what the profile leaves, tracked hour by hour by a robust exponential smoothing,
  ``level_t = level_{t-1} + alpha * clip(r_t - level_{t-1}, +-CLIP_SCALES * scale)`` (scale: the
  profile's robust residual scale, at least `MIN_CLIP_SCALE`): a level shift
  is followed within hours, while a holiday (a day of low residuals) can only move it by a bounded
  step per hour and is forgotten as soon as the load is back. `alpha` is the one of
  `LEVEL_ALPHAS` with the least out-of-sample error.

- persistence: the last hour's deviation from profile + level, ``d_T``, fades geometrically
  (``persistence ** h``): load that is above its usual level now is likely still above it in the
  next hour or two, and back to the level later. `persistence` is the one of `PERSISTENCES` that,
  with `alpha`, has the least out-of-sample error (0 when the series has no such memory).

Forecast ``h`` hours after the last one:
``exp(profile(T + h) + level_T + persistence ** h * d_T) - offset``, at least 0.

Out-of-sample errors (a backtest inside every forecast): for each of the last `CALIBRATION_DAYS`
days that have at least `MIN_FIT_HOURS` of history before them, the profile is fitted on the
history before that day only, and the model forecasts 1..steps hours ahead from every hour of
that day. With less than a week before it, a fit has no day-of-week terms.

Prediction interval: the empirical quantiles of the out-of-sample errors in the model's log space
(actual less forecast of z) at each horizon (pooled with the `POOL_HORIZONS` neighbouring horizons
on each side) of the hours forecast within `POOL_HOURS_OF_DAY` hours of the day of the step's own
(more hours of the day when those give fewer than `MIN_HOUR_ERRORS` errors), added to the
forecast's z and taken back to demand (exp, less the offset), as in split conformal prediction:
coverage is what the model achieved on the recent days at that time of the day, not an assumption
about the noise. Pooled over every hour of the day, the quiet hours, whose errors are the smallest,
got every hour's spread: on the forecast backtest their 80% interval held 85% of the load and
the busy hours' 79% (their p90 exceeded in 6% and 9% of the hours); calibrated per hour of the day,
81% and 79% (9% and 9%). Taken back as a ratio of the demand instead (forecast x exp(error)), an
error measured on log(demand + offset) shrinks where the demand is of the offset's order: on load
idle at 0.5 vCPU beside 40 in working hours, an idle hour's p90 was exceeded with probability
0.19-0.30, not 0.1.

Confidence: the share of those out-of-sample forecasts, at the requested horizons, whose error
was within `TOLERANCE` of the actual demand (of at least a tenth of that mean demand, so idle
hours do not count as misses for a few hundredths of a vCPU). It is thus a calibrated estimate
of the probability that the coming hours land within +-15% of the forecast, and falls as soon as
the model forecasts the cluster badly. `step_confidence` is the same share per horizon (the first
hours are forecast better than the later ones), for a decision that uses some steps only. When
the latest calibration day with data (`MIN_SCORED_HOURS`) scored under `LATEST_DAY_SHARE` of
that share, both are at most that day's share: the days before it measured a regime that has
ended (load of a day on a cluster idle for weeks, whose idle days were all hits). With
fewer than `MIN_CALIBRATION_DAYS` days of out-of-sample forecasts with data (a day counts with
at least `MIN_SCORED_HOURS` hours with data: the days of a gap measure nothing) both are 0 and
`confidence_reason` says why; the interval is still given. Without a single out-of-sample
forecast to score there is no interval: `InsufficientHistoryError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handlers.demand_forecaster.exceptions import InsufficientHistoryError
from handlers.demand_forecaster.quantiles import mixture_quantile

DAY = 24
WEEK = 168
HARMONICS = 4
HALF_LIFE_DAYS = 14
MAX_FIT_HOURS = 8 * WEEK
"""Older hours weigh less than 1/16 and are left out of the fit."""
MIN_FIT_HOURS = 2 * DAY
CALIBRATION_DAYS = 14
MIN_CALIBRATION_DAYS = 3
MIN_SCORED_HOURS = DAY // 2
"""Hours with data a calibration day needs to count towards `MIN_CALIBRATION_DAYS`."""
MIN_HISTORY_HOURS = MIN_FIT_HOURS + DAY
"""Two days to fit the profile and one to measure its out-of-sample error."""
LEVEL_ALPHAS = (0.02, 0.05, 0.1, 0.2)
PERSISTENCES = (0.0, 0.3, 0.6)
"""Shares of the last hour's deviation carried to the next (decaying geometrically)."""
CLIP_SCALES = 2.0
MIN_CLIP_SCALE = 0.05
"""Floor of the clip's log scale: a quiet series follows a level shift as fast as a noisy one."""
HUBER_SCALES = 1.345
HUBER_ITERATIONS = 6
LEVEL_PASS_ITERATIONS = 3
"""Huber iterations of the first fit, which only has to give the daily levels."""
LEVEL_WINDOW_DAYS = 7
SHARED_SHAPE_PENALTY = 1e-4
DAY_OFFSET_PENALTY = 1e-3
DAY_SHAPE_PENALTY = 0.002
"""Ridge penalties per unit of total observation weight; the day-of-week shapes are shrunk most."""
OFFSET_SHARE = 0.05
POOL_HORIZONS = 2
POOL_HOURS_OF_DAY = 3
"""Errors of targets up to this many hours of the day from a step's describe it, or more
hours of the day when those are fewer than `MIN_HOUR_ERRORS`."""
MIN_HOUR_ERRORS = 200
"""Errors that describe a step at least (5 beyond each bound of a 95% interval), when that many
were measured at its horizons: 14 calibration days give 294 at 3 horizons and 7 hours of the
day, 98 at a single horizon, whose interval then pools 15 hours of the day."""
TOLERANCE = 0.15
TOLERANCE_FLOOR_SHARE = 0.1
LATEST_DAY_SHARE = 0.5
"""When the latest day's forecasts hit less than this share of the calibration days' rate, the
confidence is the latest day's."""
TYPICAL_CAP_FACTOR = 10.0
"""The offset and the tolerance floor count no hour as more than this many times the 90th
percentile of the demand above 0 (`_typical_demand`)."""


@dataclass(frozen=True)
class DemandForecast:
    """Forecasts for the `steps` hours after the history, with what the model measured of itself."""

    mean: np.ndarray
    log_mean: np.ndarray
    """The forecast in the model's log space, log(demand + offset), of each step."""
    offset: float
    """What the model adds to the demand before taking its log."""
    log_errors: np.ndarray
    """Out-of-sample errors in the model's log space (log of actual + offset over forecast +
    offset), one row per origin, one column per step."""
    error_hours_of_day: np.ndarray
    """The local hour of the day (0-23) of the hour each of `log_errors` forecast."""
    step_hours_of_day: np.ndarray
    """The local hour of the day of each step."""
    confidence: float
    step_confidence: np.ndarray
    """The confidence of each step alone (its horizon's out-of-sample forecasts)."""
    confidence_reason: str
    level_alpha: float
    persistence: float
    weekly_season: bool
    history_hours: int
    observed_hours: int
    calibration_days: int
    calibration_forecasts: int
    """Out-of-sample forecasts (origin, step) with an observed actual."""
    backtest_mape: float
    seasonal_naive_mape: float
    """MAPE of the model and of seasonal-naive (the latest value known at the origin at the same
    local hour `seasonal_naive_lag` earlier, an hour more or less across a daylight-saving change)
    on the same out-of-sample hours, in percent."""
    seasonal_naive_lag: int
    """A week, or a day with less than two weeks of history."""

    def interval(self, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds meant to hold the actual demand with probability `coverage`."""
        if not 0 < coverage < 1:
            raise ValueError("coverage must be between 0 and 1")
        steps = len(self.mean)
        lower = np.empty(steps)
        upper = np.empty(steps)
        for step in range(steps):
            low, high = np.quantile(
                self.step_log_errors(step), [(1 - coverage) / 2, (1 + coverage) / 2]
            )
            # Never narrower than the forecast itself: the bounds hold it.
            lower[step] = self._demand(self.log_mean[step] + min(low, 0.0))
            upper[step] = self._demand(self.log_mean[step] + max(high, 0.0))
        return lower, upper

    def mixture_quantile(self, weights: np.ndarray, quantile: float) -> float:
        """The `quantile` of the demand at a moment drawn from the steps with probabilities
        proportional to `weights` (one per step, at least one above 0): the demand of the coming
        hour when the hour spans two steps, weighted by the minutes of it each covers.

        Each step's distribution is `step_demand_samples` (as `interval` takes its bounds);
        `quantiles.mixture_quantile` mixes them. The result is kept between the weighted steps'
        own quantiles as `interval` bounds them (never below the forecast), so one weighted step
        gives exactly its interval's bound.
        """
        if not 0.5 < quantile < 1:
            raise ValueError("quantile must be between 0.5 and 1")
        weights = np.asarray(weights, dtype=float)
        if weights.shape != self.mean.shape or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("weights must be one per step, not negative, with a positive sum")
        weighted = np.flatnonzero(weights > 0)
        value = mixture_quantile(
            [self.step_demand_samples(step) for step in weighted],
            weights[weighted],
            quantile,
        )
        bounds = self.interval(2 * quantile - 1)[1][weighted]
        return float(np.clip(value, bounds.min(), bounds.max()))

    def step_demand_samples(self, step: int) -> np.ndarray:
        """The demand of step `step` that each of its out-of-sample errors would have given:
        its forecast's log plus the error, taken back to demand."""
        return self._demand(self.log_mean[step] + self.step_log_errors(step))

    def _demand(self, log_value: np.ndarray | float) -> np.ndarray:
        """Demand from the model's log space: exp less the offset, at least 0."""
        return np.maximum(np.exp(log_value) - self.offset, 0.0)

    def step_log_errors(self, step: int) -> np.ndarray:
        """The out-of-sample log errors that describe step `step`: its horizon's, pooled with
        the `POOL_HORIZONS` neighbouring horizons on each side, of the targets whose hour of the
        day is within `POOL_HOURS_OF_DAY` of the step's (a quiet night's errors are not a busy
        afternoon's), or within as many more hours as it takes to have `MIN_HOUR_ERRORS` of
        them; every hour's when even those are fewer."""
        steps = len(self.mean)
        first, last = max(0, step - POOL_HORIZONS), min(steps, step + POOL_HORIZONS + 1)
        pooled = self.log_errors[:, first:last]
        known = np.isfinite(pooled)
        if not known.any():
            # Steps longer than the calibration days reach: the errors of every shorter step.
            pooled = self.log_errors[:, :last]
            return pooled[np.isfinite(pooled)]
        apart = np.abs(self.error_hours_of_day[:, first:last][known] - self.step_hours_of_day[step])
        apart = np.minimum(apart, DAY - apart)
        # Errors within each number of hours of the day (0 to 12, every hour).
        within = np.cumsum(np.bincount(apart, minlength=DAY // 2 + 1))
        enough = np.flatnonzero(within >= min(MIN_HOUR_ERRORS, within[-1]))
        hours_apart = max(POOL_HOURS_OF_DAY, int(enough[0]))
        return pooled[known][apart <= hours_apart]


@dataclass(frozen=True)
class _Profile:
    coefficients: np.ndarray
    weekly: bool
    scale: float
    """Robust scale (MAD) of the fit's residuals."""


def forecast_demand(
    values: np.ndarray, hours_of_week: int | np.ndarray, steps: int
) -> DemandForecast:
    """Forecast `steps` hours after hourly `values` (oldest first, NaN where missing; a
    negative or infinite value counts as missing).

    `hours_of_week`: the hour of a week starting Monday 00:00, in the time zone whose days the
    load follows, of each value and then of each forecast step (`len(values) + steps` of them:
    across a daylight-saving change the local hours are not consecutive), or of the first value
    alone when they are.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    y = np.asarray(values, dtype=float)
    # A negative or infinite value is no demand a node reported (a metric anyone may publish
    # under the namespace): missing, as NaN is, where it made the offset negative, its log NaN
    # and the regression singular.
    y = np.where(np.isfinite(y) & (y >= 0.0), y, np.nan)
    observed = np.isfinite(y)
    length, observed_hours = len(y), int(observed.sum())
    observed_before = np.concatenate([[0], np.cumsum(observed)])
    # A calibration day needs MIN_FIT_HOURS of history before it, at least half of them observed.
    cuts = [
        length - DAY * day
        for day in range(CALIBRATION_DAYS, 0, -1)
        if length - DAY * day >= MIN_FIT_HOURS
        and observed_before[length - DAY * day] >= MIN_FIT_HOURS // 2
    ]
    if not cuts:
        raise InsufficientHistoryError(MIN_HISTORY_HOURS, length, observed_hours)
    typical = _typical_demand(y[observed])
    offset = OFFSET_SHARE * typical or 1.0
    z = np.log(np.maximum(y, 0.0) + offset)
    if np.ndim(hours_of_week) == 0:
        hours = (int(hours_of_week) + np.arange(length + steps)) % WEEK
    else:
        hours = np.asarray(hours_of_week, dtype=int)
        if hours.shape != (length + steps,) or hours.min() < 0 or hours.max() >= WEEK:
            raise ValueError("hours_of_week must be len(values) + steps hours from 0 to 167")
    season = WEEK if length >= 2 * WEEK else DAY
    forecasts, actual, naive, targets = _out_of_sample(z, hours, cuts, steps, season)
    known = np.isfinite(actual)
    if not known.any():
        # Nothing to measure the model's error on, so no interval either.
        raise InsufficientHistoryError(
            MIN_HISTORY_HOURS,
            length,
            observed_hours,
            problem=f"no hour with data in the last {len(cuts)} day(s) to measure the model's "
            "out-of-sample error on",
        )
    forecast_demand_values = np.maximum(np.exp(forecasts) - offset, 0.0)
    # From the values themselves: exp(log(0 + offset)) - offset can be 1e-17, not 0, and
    # MAPE leaves out only the hours without demand.
    actual_demand = np.concatenate([np.maximum(y, 0.0), np.full(steps, np.nan)])[targets]
    absolute_errors = np.abs(forecast_demand_values - actual_demand[np.newaxis])
    best = int(np.argmin(np.nanmean(absolute_errors.reshape(len(forecasts), -1), axis=1)))
    alpha = LEVEL_ALPHAS[best // len(PERSISTENCES)]
    persistence = PERSISTENCES[best % len(PERSISTENCES)]
    log_errors = actual - forecasts[best]

    profile = _fit_profile(z, hours[:length])
    values_now = _profile_values(profile, hours)
    level = _levels(z, hours, profile, len(z), (alpha,))[-1, 0]
    deviation = _last_deviation(z, values_now, length, np.array([level]))[0]
    future = values_now[length:] + level + _decay(persistence, steps) * deviation
    mean = np.maximum(np.exp(future) - offset, 0.0)

    floor = TOLERANCE_FLOOR_SHARE * typical
    within_tolerance = absolute_errors[best] <= TOLERANCE * np.maximum(actual_demand, floor)
    within = within_tolerance[known]
    # A day of forecasts measures the model only where the day itself has data: after a gap
    # the days in it would otherwise count, and a few scored hours give the confidence.
    calibration_days = sum(
        1
        for cut in cuts
        if observed_before[min(cut + DAY, length)] - observed_before[cut] >= MIN_SCORED_HOURS
    )
    if calibration_days < MIN_CALIBRATION_DAYS:
        confidence = 0.0
        step_confidence = np.zeros(steps)
        reason = (
            f"too little history: {calibration_days} day(s) of out-of-sample forecasts "
            f"with data ({length} hours of history, {observed_hours} with data), at least "
            f"{MIN_CALIBRATION_DAYS} needed ({MIN_FIT_HOURS + MIN_CALIBRATION_DAYS * DAY} "
            f"hours, each day at least {MIN_SCORED_HOURS} with data)"
        )
    else:
        confidence = float(within.mean())
        # Per horizon: the share of that step's out-of-sample forecasts within the tolerance
        # (0 for a step none of whose targets has data).
        step_confidence = np.array(
            [
                float(within_tolerance[known[:, step], step].mean())
                if known[:, step].any()
                else 0.0
                for step in range(steps)
            ]
        )
        reason = (
            f"{int(within.sum())} of {int(known.sum())} out-of-sample forecasts 1-{steps} h ahead "
            f"over the last {len(cuts)} days were within {TOLERANCE:.0%} of the actual"
        )
        latest = _latest_day_hits(
            cuts,
            observed_before,
            length,
            origins=targets[:, 0],
            within_tolerance=within_tolerance,
            known=known,
        )
        if latest is not None and latest[0] < LATEST_DAY_SHARE * confidence:
            # The days before it measured a regime that has ended (load began on a cluster idle
            # for weeks): their hits do not earn the coming hours' confidence.
            confidence = latest[0]
            step_confidence = np.minimum(step_confidence, latest[0])
            reason = (
                f"the latest day with data: {latest[1]} of {latest[2]} out-of-sample forecasts "
                f"within {TOLERANCE:.0%} of the actual, under {LATEST_DAY_SHARE:.0%} of the "
                f"{len(cuts)} days' share ({reason})"
            )
    naive_known = known & np.isfinite(naive)
    return DemandForecast(
        mean=mean,
        log_mean=future,
        offset=offset,
        log_errors=log_errors,
        error_hours_of_day=hours[targets] % DAY,
        step_hours_of_day=hours[length:] % DAY,
        confidence=confidence,
        step_confidence=step_confidence,
        confidence_reason=reason,
        level_alpha=alpha,
        persistence=persistence,
        weekly_season=profile.weekly,
        history_hours=length,
        observed_hours=observed_hours,
        calibration_days=calibration_days,
        calibration_forecasts=int(known.sum()),
        backtest_mape=_mape(actual_demand[naive_known], forecast_demand_values[best][naive_known]),
        seasonal_naive_mape=_mape(actual_demand[naive_known], np.exp(naive[naive_known]) - offset),
        seasonal_naive_lag=season,
    )


def _latest_day_hits(
    cuts: list[int],
    observed_before: np.ndarray,
    length: int,
    *,
    origins: np.ndarray,
    within_tolerance: np.ndarray,
    known: np.ndarray,
) -> tuple[float, int, int] | None:
    """The share, hits and count of the out-of-sample forecasts from the latest calibration day
    with at least `MIN_SCORED_HOURS` hours with data (None without one)."""
    for cut in reversed(cuts):
        if observed_before[min(cut + DAY, length)] - observed_before[cut] >= MIN_SCORED_HOURS:
            rows = (origins >= cut) & (origins < cut + DAY)
            scored = known[rows]
            hits = int(within_tolerance[rows][scored].sum())
            return hits / max(int(scored.sum()), 1), hits, int(scored.sum())
    return None


def _typical_demand(observed: np.ndarray) -> float:
    """The mean demand, each value counted at most `TYPICAL_CAP_FACTOR` times the 90th
    percentile of the values above 0: one hour at 1e15 (a metric anyone may publish under the
    namespace) made the offset and the tolerance floor of the mean, so every hour looked alike
    in log space and every forecast, absurd or not, within the tolerance."""
    positive = observed[observed > 0]
    if not positive.size:
        return 0.0
    cap = TYPICAL_CAP_FACTOR * float(np.quantile(positive, 0.9))
    return float(np.mean(np.minimum(observed, cap)))


def _out_of_sample(
    z: np.ndarray, hours: np.ndarray, cuts: list[int], steps: int, season: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forecasts per (alpha, persistence) pair (pairs x origins x steps), actuals,
    seasonal-naive values and the index of the hour forecast (origins x steps) of every hour of
    each calibration day, each from a profile fitted before that day."""
    length = len(z)
    origin_rows = []
    forecast_rows = []
    decays = np.stack([_decay(persistence, steps) for persistence in PERSISTENCES])
    for cut in cuts:
        profile = _fit_profile(z[:cut], hours[:cut])
        last = min(cut + DAY, length) - 1
        levels = _levels(z, hours, profile, last + 1, LEVEL_ALPHAS)
        values = _profile_values(profile, hours[: length + steps])
        for origin in range(cut, last + 1):
            targets = origin + np.arange(steps)
            # levels[origin - 1]: the level after the last hour observed before this origin.
            level = levels[origin - 1]
            deviation = _last_deviation(z, values, origin, level)
            # alphas x persistences x steps, flattened to one row per (alpha, persistence).
            rows = (
                values[targets][np.newaxis, np.newaxis]
                + level[:, np.newaxis, np.newaxis]
                + decays[np.newaxis] * deviation[:, np.newaxis, np.newaxis]
            )
            forecast_rows.append(rows.reshape(-1, steps))
            origin_rows.append(origin)
    origins = np.array(origin_rows)[:, np.newaxis]
    targets = origins + np.arange(steps)
    forecasts = np.stack(forecast_rows, axis=1)
    padded = np.concatenate([z, np.full(steps, np.nan)])
    actual = padded[targets]
    naive_index = _seasonal_naive_index(hours, origins, targets, season)
    naive = np.where(naive_index >= 0, padded[naive_index.clip(min=0)], np.nan)
    return forecasts, actual, naive, targets


def _seasonal_naive_index(
    hours: np.ndarray, origins: np.ndarray, targets: np.ndarray, season: int
) -> np.ndarray:
    """The index of seasonal-naive's value for each target: the latest hour known at the origin
    at the same local hour of the season (of the week, or of the day), `season` hours before or
    a multiple of it. Across a daylight-saving change that hour is one more or one less back:
    168 hours before, in the week after the clocks went forward, is an hour early in local time."""
    base = targets - season * ((targets - origins) // season + 1)
    wanted = hours[targets] % season
    index = base
    for shift in (-1, 1):
        candidate = base + shift
        same_hour = hours[candidate.clip(0, len(hours) - 1)] % season == wanted
        usable = (candidate >= 0) & (candidate < origins) & same_hour
        index = np.where((hours[base.clip(min=0)] % season != wanted) & usable, candidate, index)
    return index


def _last_deviation(
    z: np.ndarray, values: np.ndarray, origin: int, level: np.ndarray
) -> np.ndarray:
    """How far the last hour before `origin` was above profile + level (per level; 0 when
    that hour is missing)."""
    residual = z[origin - 1] - values[origin - 1]
    if math.isnan(residual):
        return np.zeros_like(level)
    return residual - level


def _decay(persistence: float, steps: int) -> np.ndarray:
    """The share of the last deviation left 1..steps hours later."""
    return persistence ** np.arange(1, steps + 1)


def _levels(
    z: np.ndarray, hours: np.ndarray, profile: _Profile, end: int, alphas: tuple[float, ...]
) -> np.ndarray:
    """The tracked level after each hour of [0, end) for each alpha (end x alphas); it starts one
    week and a day before `end` at the median residual of that first day, and is 0 before."""
    start = max(0, end - DAY - WEEK)
    residuals = z[start:end] - _profile_values(profile, hours[start:end])
    bound = CLIP_SCALES * max(profile.scale, MIN_CLIP_SCALE)
    first_day = residuals[:DAY][np.isfinite(residuals[:DAY])]
    first_level = float(np.median(first_day)) if first_day.size else 0.0
    out = np.zeros((end, len(alphas)))
    # Plain floats: a few hundred steps of a scalar recursion are faster than numpy calls.
    for column, alpha in enumerate(alphas):
        level = first_level
        tracked = []
        for residual in residuals.tolist():
            if not math.isnan(residual):  # a missing hour leaves the level as it was
                level += alpha * min(max(residual - level, -bound), bound)
            tracked.append(level)
        out[start:end, column] = tracked
    return out


def _fit_profile(z: np.ndarray, hours: np.ndarray) -> _Profile:
    """The profile of the last `MAX_FIT_HOURS` (see the module docstring) of `z`, whose hours of
    the week are `hours`."""
    start = max(0, len(z) - MAX_FIT_HOURS)
    z = z[start:]
    known = np.isfinite(z)
    weekly = int(known.sum()) >= WEEK
    table = _columns(WEEK_DESIGN, weekly)
    row_hours = hours[start:][known]
    hours_ago = len(z) - 1 - np.flatnonzero(known)
    age_weight = 0.5 ** (hours_ago / DAY / HALF_LIFE_DAYS)
    penalty = _penalties(weekly) * age_weight.sum()
    target = z[known]
    coefficients, _ = _huber_regression(
        table, row_hours, target, age_weight, penalty, iterations=LEVEL_PASS_ITERATIONS
    )
    daily_level = _daily_levels(target - (table @ coefficients)[row_hours], hours_ago // DAY)
    coefficients, scale = _huber_regression(
        table, row_hours, target - daily_level, age_weight, penalty, iterations=HUBER_ITERATIONS
    )
    return _Profile(coefficients, weekly, scale)


def _daily_levels(residuals: np.ndarray, days_ago: np.ndarray) -> np.ndarray:
    """The level of each residual's day (`days_ago`: days before the last): the median of the
    median residuals of the days within `LEVEL_WINDOW_DAYS` around it, less the last day's."""
    days, day_of_residual = np.unique(days_ago, return_inverse=True)
    medians = np.array(
        [np.median(residuals[day_of_residual == index]) for index in range(len(days))]
    )
    half = LEVEL_WINDOW_DAYS // 2
    levels = np.array([np.median(medians[np.abs(days - day) <= half]) for day in days])
    return (levels - levels[0])[day_of_residual]


def _huber_regression(
    table: np.ndarray,
    row_hours: np.ndarray,
    target: np.ndarray,
    age_weight: np.ndarray,
    penalty: np.ndarray,
    *,
    iterations: int,
) -> tuple[np.ndarray, float]:
    """Ridge-penalised, age-weighted Huber regression by reweighted least squares: coefficients
    and the robust (MAD) scale of the residuals.

    The design is `table[row_hours]`: the rows of one hour of the week are equal, so the normal
    equations sum the weights per hour and solve on the table's 168 rows, not on up to 1,344
    (the same equations, about 5x faster).
    """
    weight = age_weight
    scale = 1.0
    coefficients = np.zeros(table.shape[1])
    for _ in range(iterations):
        hour_weight = np.bincount(row_hours, weights=weight, minlength=len(table))
        hour_target = np.bincount(row_hours, weights=weight * target, minlength=len(table))
        coefficients = np.linalg.solve(
            (table.T * hour_weight) @ table + np.diag(penalty), table.T @ hour_target
        )
        residuals = target - (table @ coefficients)[row_hours]
        scale = max(1.4826 * float(np.median(np.abs(residuals - np.median(residuals)))), 1e-6)
        huber = np.minimum(1.0, HUBER_SCALES * scale / np.maximum(np.abs(residuals), 1e-12))
        weight = age_weight * huber
    return coefficients, scale


def _profile_values(profile: _Profile, hours: np.ndarray) -> np.ndarray:
    """The profile's value at each of `hours` (hours of the week)."""
    return (_columns(WEEK_DESIGN, profile.weekly) @ profile.coefficients)[hours]


def _columns(design: np.ndarray, weekly: bool) -> np.ndarray:
    """The weekly design's columns a fit uses: all, or the daily ones (the first `DAY`)."""
    return design if weekly else design[:, :DAY]


def _week_design() -> np.ndarray:
    """One row per hour of the week: intercept, hour-of-day offsets (hour 0 is the reference),
    per day of the week an offset (Monday is the reference) and Fourier deviations of the daily
    shape. A daily fit takes the first `DAY` columns."""
    hours = np.arange(WEEK)
    hour_of_day = np.eye(DAY)[hours % DAY][:, 1:]
    angle = 2 * np.pi * (hours % DAY)[:, np.newaxis] / DAY * np.arange(1, HARMONICS + 1)
    fourier = np.hstack([np.cos(angle), np.sin(angle)])
    days = np.eye(7)[hours // DAY]
    day_shapes = (days[:, :, np.newaxis] * fourier[:, np.newaxis, :]).reshape(WEEK, -1)
    return np.hstack([np.ones((WEEK, 1)), hour_of_day, days[:, 1:], day_shapes])


WEEK_DESIGN = _week_design()


def _penalties(weekly: bool) -> np.ndarray:
    parts = [[0.0], [SHARED_SHAPE_PENALTY] * (DAY - 1)]
    if weekly:
        parts += [[DAY_OFFSET_PENALTY] * 6, [DAY_SHAPE_PENALTY] * 7 * 2 * HARMONICS]
    return np.concatenate(parts)


def _mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error in percent, over the hours whose actual is above 0."""
    positive = actual > 0
    if not positive.any():
        return 0.0
    return float(np.mean(np.abs(actual[positive] - forecast[positive]) / actual[positive]) * 100)
