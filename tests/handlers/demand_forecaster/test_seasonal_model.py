"""The seasonal model on small generated series with known answers."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import numpy as np
import pytest

from handlers.demand_forecaster.exceptions import InsufficientHistoryError
from handlers.demand_forecaster.forecast import local_hour_of_week
from handlers.demand_forecaster.seasonal_model import DAY, WEEK, forecast_demand
from tests.handlers.demand_forecaster.demand_series import hourly_demand


def seasonal(days: int, *, holiday_day: int | None = None) -> np.ndarray:
    """Noise-free demand starting on a Monday: a working-hours peak, lower on weekends."""
    hours = np.arange(days * DAY)
    day = hours // DAY
    quiet = (day % 7 >= 5) | (day == holiday_day)
    working = np.clip(np.sin(np.pi * (hours % DAY - 7) / 12), 0.0, None)
    return 20.0 + np.where(quiet, 3.0, 12.0) * working


def test_pure_seasonal_series_is_forecast_almost_exactly() -> None:
    # GIVEN three weeks of noise-free daily and weekly seasonal demand
    history = seasonal(22)
    # WHEN the next day is forecast
    forecast = forecast_demand(history[: 21 * DAY], 0, DAY)
    # THEN every hour is within 2% of the truth (0.5% on average), and the model is confident
    relative = np.abs(forecast.mean - history[21 * DAY :]) / history[21 * DAY :]
    assert relative.max() < 0.02
    assert relative.mean() < 0.005
    assert forecast.confidence > 0.95
    assert forecast.weekly_season


def test_level_shift_is_followed_within_a_day() -> None:
    # GIVEN three weeks of demand whose level rises by 40% on the last day
    truth = hourly_demand(np.random.default_rng(7), days=23, noise=0.2)
    truth[20 * DAY :] *= 1.4
    # WHEN forecast one day after the shift
    forecast = forecast_demand(truth[: 21 * DAY], 0, DAY)
    # THEN the next day is forecast near the new level (within 10%), far above the old one
    actual = truth[21 * DAY : 22 * DAY]
    assert abs(forecast.mean.mean() / actual.mean() - 1) < 0.1
    assert forecast.mean.mean() > 1.25 * (actual.mean() / 1.4)


def test_a_level_shift_inside_the_history_is_not_taken_for_day_of_week_shape() -> None:
    # GIVEN four weeks of demand whose level rose by 30% twelve days ago (a Wednesday), so that
    # some days of the week were seen twice at the new level and the others once
    truth = hourly_demand(np.random.default_rng(3), days=29, noise=0.3)
    truth[16 * DAY :] *= 1.3
    # WHEN the next day (a Monday) is forecast
    forecast = forecast_demand(truth[: 28 * DAY], 0, DAY)
    # THEN it is forecast within 5% on average (a single fit of the profile misses by 9.6%)
    actual = truth[28 * DAY :]
    assert np.mean(np.abs(forecast.mean - actual) / actual) < 0.05


def test_a_holiday_does_not_pull_the_next_day_down() -> None:
    # GIVEN three weeks of demand ending on a weekday holiday shaped like a Sunday
    truth = hourly_demand(np.random.default_rng(8), days=23, holiday_day=21, noise=0.3)
    # WHEN the day after the holiday is forecast
    forecast = forecast_demand(truth[: 22 * DAY], 0, DAY)
    lower, _ = forecast.interval(0.95)
    # THEN it is forecast as a usual weekday (within 10%), far above 0 even at the interval's
    # lower bound
    actual = truth[22 * DAY : 23 * DAY]
    assert np.mean(np.abs(forecast.mean - actual) / actual) < 0.1
    assert lower.min() > 0.5 * actual.min()


def test_confidence_falls_on_a_series_the_model_cannot_forecast() -> None:
    # GIVEN a clean seasonal series and a random walk of the same level
    rng = np.random.default_rng(9)
    clean = hourly_demand(rng, days=21, noise=0.3)
    random_walk = 25.0 * np.exp(np.cumsum(rng.normal(0.0, 0.05, 21 * DAY)))
    # WHEN each is forecast 3 hours and 24 hours ahead
    # THEN the random walk's confidence is far below the seasonal one's, and falls with the
    # horizon, where a random walk's error grows
    clean_confidence = forecast_demand(clean, 0, 3).confidence
    walk_short = forecast_demand(random_walk, 0, 3).confidence
    walk_day = forecast_demand(random_walk, 0, DAY).confidence
    assert clean_confidence > 0.9
    assert walk_day < walk_short
    assert walk_day < clean_confidence - 0.3


def test_intervals_widen_with_noise() -> None:
    # GIVEN the same seasonal demand with little and with much noise
    quiet = hourly_demand(np.random.default_rng(10), days=22, noise=0.2)
    noisy = hourly_demand(np.random.default_rng(10), days=22, noise=2.0)
    # WHEN each is forecast a day ahead with an 80% interval
    widths = []
    for values in (quiet, noisy):
        forecast = forecast_demand(values[: 21 * DAY], 0, DAY)
        lower, upper = forecast.interval(0.8)
        assert np.all((lower <= forecast.mean) & (forecast.mean <= upper))
        widths.append(float(np.mean(upper - lower)))
    # THEN the noisy series' interval is several times wider
    assert widths[1] > 4 * widths[0]


def test_an_hour_spanning_two_steps_is_exceeded_for_a_tenth_of_its_minutes() -> None:
    # GIVEN a forecast at 5 past a rising hour: its hour spans 55 minutes of a step and 5 of a
    # higher one
    values = hourly_demand(np.random.default_rng(13), days=21, noise=1.0)
    forecast = forecast_demand(values, 7, 2)
    weights = np.array([55.0, 5.0])
    p90 = forecast.interval(0.8)[1]
    assert p90[1] > p90[0]
    # WHEN the hour's 0.9 quantile is asked for
    hour_p90 = forecast.mixture_quantile(weights, 0.9)
    # THEN it lies between the steps' p90s, nearer the step that fills most of the hour
    assert p90[0] < hour_p90 < (p90[0] + p90[1]) / 2
    # AND the steps' out-of-sample demand exceeds it in 10% of the hour's minutes
    exceeded = [np.mean(forecast.step_demand_samples(step) > hour_p90) for step in range(2)]
    assert np.average(exceeded, weights=weights) == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize(
    ("weights", "quantile"),
    [([0.0, 0.0], 0.9), ([1.0, -1.0], 0.9), ([1.0], 0.9), ([1.0, 0.0], 0.4), ([1.0, 0.0], 1.0)],
)
def test_a_quantile_needs_one_weight_per_step_and_a_quantile_above_the_median(
    weights: list[float], quantile: float
) -> None:
    # GIVEN a two-step forecast
    forecast = forecast_demand(hourly_demand(np.random.default_rng(14), days=14, noise=1.0), 0, 2)
    # WHEN a quantile is asked for with weights that select no step, or a quantile out of range
    # THEN it is refused
    with pytest.raises(ValueError, match=r"^(weights|quantile) "):
        forecast.mixture_quantile(np.array(weights), quantile)


def test_missing_hours_are_skipped() -> None:
    # GIVEN two weeks of demand with scattered missing hours and a six-hour gap
    truth = hourly_demand(np.random.default_rng(11), days=15, noise=0.2)
    history = truth[: 14 * DAY].copy()
    history[::17] = np.nan
    history[200:206] = np.nan
    # WHEN forecast THEN the forecast is as good as with every hour
    forecast = forecast_demand(history, 0, DAY)
    assert forecast.observed_hours < forecast.history_hours == 14 * DAY
    actual = truth[14 * DAY :]
    assert np.mean(np.abs(forecast.mean - actual) / actual) < 0.05


@pytest.mark.parametrize("bad_value", [-5.0, -np.inf, np.inf])
def test_a_negative_or_infinite_hour_is_no_demand_and_is_skipped(bad_value: float) -> None:
    # GIVEN two weeks of demand in which every 17th hour reads a value no node reports
    truth = hourly_demand(np.random.default_rng(11), days=15, noise=0.2)
    history = truth[: 14 * DAY].copy()
    history[::17] = bad_value
    # WHEN forecast
    forecast = forecast_demand(history, 0, DAY)
    # THEN those hours count as missing, and the forecast is as good as with every hour
    assert forecast.observed_hours == 14 * DAY - len(history[::17])
    actual = truth[14 * DAY :]
    assert np.mean(np.abs(forecast.mean - actual) / actual) < 0.05


@pytest.mark.parametrize("hours_before_the_end", [200, 30, 1])
def test_one_absurd_hour_does_not_inflate_the_forecast_or_its_interval(
    hours_before_the_end: int,
) -> None:
    # GIVEN three weeks of demand of about 20 vCPU in which one hour reads 1e15 (a finite value
    # anyone may publish under the namespace)
    truth = hourly_demand(np.random.default_rng(11), days=22, noise=0.2)
    history = truth[: 21 * DAY].copy()
    history[-hours_before_the_end] = 1e15
    # WHEN the next day is forecast
    forecast = forecast_demand(history, 0, DAY)
    # THEN it is forecast as without that hour (it made the model's offset and tolerance floor
    # of 1e12, and forecasts of 1e8 vCPU at 0.997 confidence), within its upper bound
    actual = truth[21 * DAY :]
    assert np.mean(np.abs(forecast.mean - actual) / actual) < 0.05
    assert forecast.interval(0.8)[1].max() < 2 * actual.max()
    assert forecast.offset < actual.max()


def test_load_that_began_a_day_ago_on_an_idle_cluster_earns_no_confidence() -> None:
    # GIVEN three weeks of a cluster idle at 0.5 vCPU whose load (about 20 vCPU) began a day ago
    history = hourly_demand(np.random.default_rng(5), days=21, noise=0.2)
    history[: 20 * DAY] = 0.5
    # WHEN the next hours are forecast (far below the load: the idle weeks outvote the day)
    forecast = forecast_demand(history, 0, 3)
    # THEN the idle days' hits do not make the forecast confident (they gave 0.93, above
    # predictive scaling's default threshold of 0.85): the latest day's share does, and says so
    assert forecast.confidence < 0.5
    assert forecast.step_confidence.max() < 0.5
    assert forecast.confidence_reason.startswith("the latest day with data")


def test_short_history_has_no_confidence_and_says_why() -> None:
    # GIVEN four days of demand (two days to fit, two of out-of-sample forecasts)
    history = hourly_demand(np.random.default_rng(12), days=4, noise=0.2)
    # WHEN forecast
    forecast = forecast_demand(history, 0, 3)
    # THEN it forecasts with the daily shape only, with confidence 0 and the reason
    assert not forecast.weekly_season
    assert forecast.calibration_days == 2
    assert forecast.confidence == 0.0
    assert forecast.confidence_reason.startswith("too little history: 2 day(s)")
    assert np.all(forecast.mean > 0)


def test_history_shorter_than_three_days_is_refused() -> None:
    # GIVEN 71 hours WHEN forecast THEN the error says what is needed
    with pytest.raises(InsufficientHistoryError, match="need at least 72 hours"):
        forecast_demand(np.full(71, 5.0), 0, 3)


def test_forecast_starts_on_the_given_hour_of_the_week() -> None:
    # GIVEN two weeks and a day of noise-free demand starting on a Tuesday at 05:00
    start = DAY + 5
    values = np.concatenate([seasonal(16)[start:], seasonal(17)[16 * DAY :]])[: 15 * DAY]
    # WHEN forecast from that hour of the week
    forecast = forecast_demand(values[: 14 * DAY], start % WEEK, DAY)
    # THEN the working-hours peak lands on the right hours
    assert np.abs(forecast.mean - values[14 * DAY :]).max() < 0.5


def test_a_deviation_that_lasts_is_carried_into_the_next_hours() -> None:
    # GIVEN three weeks of seasonal demand whose deviations last (each hour keeps 60% of the
    # last one's, as a busy afternoon stays busy), ending 15% above its usual level
    rng = np.random.default_rng(11)
    lasting = np.zeros(22 * DAY)
    for hour in range(1, len(lasting)):
        lasting[hour] = 0.6 * lasting[hour - 1] + rng.normal(0.0, 0.06)
    truth = seasonal(22) * np.exp(lasting)
    history = truth[: 21 * DAY].copy()
    history[-1] = seasonal(22)[21 * DAY - 1] * 1.15
    # WHEN the next hours are forecast
    forecast = forecast_demand(history, 0, 6)
    # THEN the model chose to carry deviations, the next hour is forecast well above the usual
    # level and the effect fades with the horizon
    usual = seasonal(22)[21 * DAY : 21 * DAY + 6]
    assert forecast.persistence > 0
    assert forecast.mean[0] / usual[0] > 1.04
    assert forecast.mean[5] / usual[5] < forecast.mean[0] / usual[0]
    # AND the first hour is forecast at least as confidently as the sixth
    assert forecast.step_confidence[0] >= forecast.step_confidence[5]


def test_a_series_without_lasting_deviations_is_not_extrapolated() -> None:
    # GIVEN three weeks of seasonal demand with independent hourly noise, ending on an outlier
    truth = hourly_demand(np.random.default_rng(12), days=22, noise=0.6)
    history = truth[: 21 * DAY].copy()
    without_outlier = forecast_demand(history, 0, 1)
    history[-1] *= 1.5
    # WHEN the next hour is forecast
    forecast = forecast_demand(history, 0, 1)
    # THEN the forecast without the outlier is near the truth (within 5%), and the outlier, 50%
    # above, moves it by less than a third of that
    assert abs(without_outlier.mean[0] / truth[21 * DAY] - 1) < 0.05
    assert forecast.mean[0] / without_outlier.mean[0] - 1 < 0.5 / 3
    assert forecast.persistence < 0.6


def test_hours_without_demand_are_left_out_of_the_out_of_sample_mape() -> None:
    for seed in range(15, 25):
        # GIVEN two weeks of demand of 2-3 vCPU that has dropped to exactly 0 for its last two
        # days (a cluster whose workload was stopped)
        history = hourly_demand(np.random.default_rng(seed), days=14, noise=0.2) * 0.1
        history[12 * DAY :] = 0.0
        # WHEN forecast
        forecast = forecast_demand(history, 0, 3)
        # THEN the MAPEs are of the hours with demand only, so they are percentages of a
        # usual size, not an error over the log transform's rounding of 0 (about 1e-17)
        assert 0 < forecast.backtest_mape < 100, seed
        assert 0 < forecast.seasonal_naive_mape < 100, seed


@pytest.mark.parametrize(
    ("days", "weekly", "naive_lag"), [(6, False, DAY), (7, True, DAY), (14, True, WEEK)]
)
def test_a_week_of_data_gives_the_days_of_the_week_their_shapes(
    days: int, weekly: bool, naive_lag: int
) -> None:
    # GIVEN six days, a week and two weeks of hourly demand
    history = hourly_demand(np.random.default_rng(1), days=days, noise=0.2)
    # WHEN forecast
    forecast = forecast_demand(history, 0, 3)
    # THEN a week of data is enough for the weekly season (what FORECAST_HISTORY_DAYS's
    # description says), and two weeks make seasonal-naive a week's lag
    assert forecast.weekly_season is weekly
    assert forecast.seasonal_naive_lag == naive_lag


def test_two_weeks_of_history_give_twelve_days_of_out_of_sample_forecasts() -> None:
    # GIVEN the default two weeks of history
    history = hourly_demand(np.random.default_rng(2), days=14, noise=0.2)
    # WHEN forecast
    forecast = forecast_demand(history, 0, 3)
    # THEN the first two days only fit the profile: the last 12 are forecast out of sample
    assert forecast.calibration_days == 12
    assert forecast.confidence_reason.endswith(
        "h ahead over the last 12 days were within 15% of the actual"
    )


@pytest.mark.parametrize("hours", [np.arange(14 * DAY), np.full(14 * DAY + 3, WEEK)])
def test_hours_of_the_week_must_cover_the_history_and_the_steps_within_a_week(
    hours: np.ndarray,
) -> None:
    # GIVEN two weeks of demand and hours of the week that miss the steps, or are out of range
    history = hourly_demand(np.random.default_rng(2), days=14, noise=0.2)
    # WHEN forecast three steps THEN it is refused
    with pytest.raises(ValueError, match=r"^hours_of_week must be"):
        forecast_demand(history, hours, 3)


def test_the_p90_of_an_idle_hour_is_exceeded_a_tenth_of_the_time() -> None:
    # GIVEN three weeks of a cluster at 40 vCPU in working hours and idle at 0.5 vCPU otherwise,
    # noisy as the model assumes (log(load + offset) normal around its usual value, spread 0.2,
    # offset 5% of the mean load): the idle load is below the offset
    spread = 0.2
    hours = np.arange(21 * DAY)
    working = (hours % DAY >= 8) & (hours % DAY < 18)
    usual = np.where(working, 40.0, 0.5)
    offset = 0.05 * float(usual.mean())
    noise = np.random.default_rng(1).normal(0.0, spread, len(hours))
    history = (usual + offset) * np.exp(noise) - offset
    # WHEN the next day is forecast from midnight
    forecast = forecast_demand(history, 0, DAY)
    p90 = forecast.interval(0.8)[1]
    idle = ~working[:DAY]
    # The p90 of each idle hour that starts at 5 past an idle step and ends in the next one
    idle_hours = [step for step in range(DAY - 1) if idle[step] and idle[step + 1]]
    hour_p90 = np.array(
        [
            forecast.mixture_quantile(np.eye(DAY)[step] * 55 + np.eye(DAY)[step + 1] * 5, 0.9)
            for step in idle_hours
        ]
    )

    def exceeded(bound: np.ndarray, usual_load: np.ndarray) -> np.ndarray:
        """The probability that the hour's load is above `bound`."""
        z = np.log((bound + offset) / (usual_load + offset)) / spread
        return np.array([1 - NormalDist().cdf(value) for value in z])

    # THEN the idle hours' load exceeds their p90, and the p90 of the coming hour that
    # predictive scaling sizes on, with probability near 0.1 on average
    assert 0.03 < float(np.mean(exceeded(p90[idle], usual[:DAY][idle]))) < 0.15
    assert 0.03 < float(np.mean(exceeded(hour_p90, usual[idle_hours]))) < 0.15
    # AND the working hours' stay near 0.1 too
    assert 0.03 < float(np.mean(exceeded(p90[~idle], usual[:DAY][~idle]))) < 0.15


def busy_day_noise(
    days: int, seed: int, *, busy_load: float, quiet_load: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Demand noisy as the model assumes (log(load + offset) normal around its usual value), with
    a spread that follows the working day: 0.04 at night, rising to 0.2 at 12:00. Returns the
    demand, its usual value and spread per hour, and the offset (5% of the mean usual load)."""
    hours = np.arange(days * DAY)
    working = np.clip(np.sin(np.pi * (hours % DAY - 6) / 12), 0.0, None)
    usual = quiet_load + (busy_load - quiet_load) * working
    spread = 0.04 + 0.16 * working
    offset = 0.05 * float(usual.mean())
    noise = np.random.default_rng(seed).normal(0.0, 1.0, len(hours)) * spread
    return (usual + offset) * np.exp(noise) - offset, usual, spread, offset


def test_quiet_hours_get_a_narrower_interval_than_busy_hours_of_the_same_load() -> None:
    # GIVEN three weeks of a cluster at 20 vCPU all day whose noise is five times larger at
    # midday than at night
    history, _, _, _ = busy_day_noise(21, 5, busy_load=20.0, quiet_load=20.0)
    # WHEN the next day is forecast from midnight
    forecast = forecast_demand(history, 0, DAY)
    lower, upper = forecast.interval(0.8)
    width = upper - lower
    # THEN the night's interval (00:00-05:00) is less than half as wide as midday's
    # (10:00-15:00); pooled over every hour of the day, the two were as wide
    assert width[:6].mean() < 0.5 * width[10:16].mean()


def test_a_one_step_forecast_takes_more_hours_of_the_day_until_it_has_enough_errors() -> None:
    # GIVEN three weeks of a cluster at 20 vCPU all day whose noise is five times larger at
    # midday than at night, and the same series half a day longer
    history, _, _, _ = busy_day_noise(22, 5, busy_load=20.0, quiet_load=20.0)
    night, noon = history[: 21 * DAY], history[: 21 * DAY + 12]
    # WHEN the next hour alone is forecast, at midnight and at noon: its 14 calibration days
    # measured 14 errors per hour of the day, 98 within 3 hours of the day of the step's
    forecasts = [forecast_demand(values, 0, 1) for values in (night, noon)]
    # THEN each step's interval takes the errors of as many more hours of the day as give at
    # least 200 (15 hours of the day), not every hour's, so the night's interval is still
    # narrower than noon's
    widths = [np.subtract(*forecast.interval(0.8)[::-1])[0] for forecast in forecasts]
    assert widths[0] < 0.7 * widths[1]
    for forecast in forecasts:
        assert 200 <= forecast.step_log_errors(0).size < np.isfinite(forecast.log_errors).sum()


def test_a_short_history_takes_every_hour_of_the_days_errors() -> None:
    # GIVEN four days of demand: two days of out-of-sample forecasts, 48 errors per horizon
    history = hourly_demand(np.random.default_rng(4), days=4, noise=0.6)
    # WHEN three steps are forecast
    forecast = forecast_demand(history, 0, 3)
    # THEN its horizons measured fewer than 200 errors, so each step takes them all, of every
    # hour of the day
    errors = forecast.log_errors[np.isfinite(forecast.log_errors)]
    for step in range(3):
        assert sorted(forecast.step_log_errors(step)) == sorted(errors)


def test_each_hour_of_the_day_gets_about_its_nominal_coverage() -> None:
    # GIVEN seven weeks of a cluster at 40 vCPU at midday and 8 at night, whose noise is five
    # times larger at midday
    days = 49
    values, usual, spread, offset = busy_day_noise(days, 1, busy_load=40.0, quiet_load=8.0)
    hour_of_day = np.arange(DAY)
    busy = np.sin(np.pi * (hour_of_day - 6) / 12) > 0.5
    quiet = (hour_of_day < 6) | (hour_of_day >= 18)
    covered: dict[float, dict[str, list[float]]] = {0.8: {}, 0.95: {}}
    # WHEN the next day is forecast from every midnight of the last four weeks
    for day in range(21, days):
        forecast = forecast_demand(values[: day * DAY], 0, DAY)
        today = slice(day * DAY, (day + 1) * DAY)
        for coverage, groups in covered.items():
            lower, upper = forecast.interval(coverage)
            # The probability that the hour's load lands within its bounds.
            z = (
                np.log((np.stack([lower, upper]) + offset) / (usual[today] + offset))
                / spread[today]
            )
            inside = np.array([NormalDist().cdf(high) - NormalDist().cdf(low) for low, high in z.T])
            groups.setdefault("busy", []).extend(inside[busy])
            groups.setdefault("quiet", []).extend(inside[quiet])
    # THEN the busy hours (09:00-15:00) and the quiet ones (18:00-05:00) are each covered near
    # the nominal share; pooled over every hour of the day, the busy hours' 80% interval held
    # about half of their load and the quiet hours' more than 90%
    # (a 7-hour window of the hours of the day gives the ramps' hours some of their neighbours'
    # spread: here busy 74.6% and 92.0%, quiet 85.7% and 97.0%; 74-86% and 91-97% on 6 seeds)
    for coverage, groups in covered.items():
        for group, shares in groups.items():
            tolerance = 0.08 if coverage == 0.8 else 0.05
            assert abs(np.mean(shares) - coverage) < tolerance, (coverage, group)


@pytest.mark.parametrize(
    "end",
    [datetime(2026, 3, 14, 12, tzinfo=UTC), datetime(2026, 11, 7, 12, tzinfo=UTC)],
    ids=["clocks-forward", "clocks-back"],
)
def test_seasonal_naive_after_a_daylight_saving_change_is_the_same_local_hour_a_week_before(
    end: datetime,
) -> None:
    # GIVEN 15 days of New York load that repeats every local week exactly, ending six days after
    # the clocks went forward (2026-03-08) or back (2026-11-01): the same local hour a week
    # before the change is 167 or 169 hours before, not 168
    zone = zoneinfo.ZoneInfo("America/New_York")
    moments = [end - timedelta(hours=hour) for hour in range(15 * DAY, -3, -1)]
    hours = np.array([local_hour_of_week(moment, zone) for moment in moments])
    hour_of_day = hours % DAY
    load = 20.0 + np.where(hours // DAY < 5, 60.0, 10.0) * (hour_of_day >= 9) * (hour_of_day < 17)
    history = load[: 15 * DAY]
    # WHEN forecast
    forecast = forecast_demand(history, hours, 3)
    # THEN seasonal-naive, the same local hour a week before, forecasts every out-of-sample hour
    # exactly, as it does on load without a change (the hour 168 positions before was an hour
    # off in local time after the change: its ramps a whole 60 vCPU off)
    assert forecast.seasonal_naive_lag == WEEK
    assert forecast.seasonal_naive_mape == pytest.approx(0.0, abs=1e-9)
