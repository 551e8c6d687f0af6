"""The shared robust detector (fleet_shared.numeric.robust_anomalies) on generated series."""

from __future__ import annotations

import math
import tracemalloc
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from fleet_shared.alerts import Severity
from fleet_shared.numeric.robust_anomalies import (
    ABSOLUTE_RESOLUTION,
    MAX_ABS_VALUE,
    MAX_SCORE,
    detect_anomalies,
    modified_z_scores,
    severity_for,
)
from handlers.anomaly_detector.units import NOISE_FLOORS, CloudWatchUnit, noise_floor
from tests.handlers.anomaly_detector.anomaly_series import (
    LabelledSeries,
    labelled_series,
    seasonal_series,
)

SHIFT_TOLERANCE = 3
"""A level shift counts as found when located within this many samples of the true one."""
WEEK_HOURS = 7 * 24


def test_clean_seasonal_series_gives_no_anomaly() -> None:
    # GIVEN four weeks of hourly load with a daily cycle, quiet weekends, trend and noise
    for seed in range(5):
        timestamps, values = seasonal_series(np.random.default_rng(seed), days=28)
        # WHEN it is scanned
        detection = detect_anomalies(values, timestamps)
        # THEN both seasonal profiles are removed and nothing is reported
        assert detection.seasonality == ("hour_of_day", "day_of_week")
        assert detection.anomalies == ()


def test_injected_spike_is_found_with_its_expected_value() -> None:
    # GIVEN a clean series with one +12 spike
    timestamps, values = seasonal_series(np.random.default_rng(11), days=28)
    clean = values[400]
    values[400] += 12.0
    # WHEN it is scanned
    anomalies = detect_anomalies(values, timestamps).anomalies
    # THEN exactly that point is reported, expected near its clean value
    assert [(a.index, a.kind) for a in anomalies] == [(400, "point")]
    assert abs(anomalies[0].expected - clean) < 3.0
    assert anomalies[0].score > 5.0
    assert anomalies[0].timestamp == timestamps[400]


def test_injected_level_shift_is_found_near_where_it_starts() -> None:
    # GIVEN a clean series that steps down by 8 for its last 100 hours
    timestamps, values = seasonal_series(np.random.default_rng(12), days=28)
    values[-100:] -= 8.0
    # WHEN it is scanned
    anomalies = detect_anomalies(values, timestamps).anomalies
    # THEN one downward level shift is reported at the step, and no point anomalies
    assert [a.kind for a in anomalies] == ["level_shift"]
    assert abs(anomalies[0].index - (len(values) - 100)) <= SHIFT_TOLERANCE
    assert anomalies[0].score < -4.0
    assert anomalies[0].value < anomalies[0].expected


Flags = tuple[set[int], list[int]]
"""The indexes a detector flags as point anomalies, and those it flags as level shifts."""


def precision_and_recall(flag: Callable[[LabelledSeries], Flags]) -> tuple[float, float]:
    """Precision and recall of `flag` on 60 labelled series with random spikes and level
    shifts (seeded): a spike is found at its index, a shift within `SHIFT_TOLERANCE`."""
    rng = np.random.default_rng(2025)
    true_positives = false_positives = false_negatives = 0
    for _ in range(60):
        labelled = labelled_series(rng)
        points, shifts = flag(labelled)
        true_positives += len(points & set(labelled.spikes))
        false_negatives += len(set(labelled.spikes) - points)
        false_positives += len(points - set(labelled.spikes))
        for shift in labelled.shifts:
            if any(abs(found - shift) <= SHIFT_TOLERANCE for found in shifts):
                true_positives += 1
            else:
                false_negatives += 1
        false_positives += sum(
            all(abs(found - shift) > SHIFT_TOLERANCE for shift in labelled.shifts)
            for found in shifts
        )
    return (
        true_positives / max(1, true_positives + false_positives),
        true_positives / (true_positives + false_negatives),
    )


def robust_detector(labelled: LabelledSeries) -> Flags:
    anomalies = detect_anomalies(labelled.values, labelled.timestamps).anomalies
    return (
        {a.index for a in anomalies if a.kind == "point"},
        [a.index for a in anomalies if a.kind == "level_shift"],
    )


def static_threshold(labelled: LabelledSeries) -> Flags:
    """Baseline: a value more than 3 standard deviations from the series' mean."""
    values = labelled.values
    return set(np.flatnonzero(np.abs(values - values.mean()) > 3 * values.std()).tolist()), []


def week_earlier(labelled: LabelledSeries) -> Flags:
    """Baseline: a value more than 3 standard deviations of those differences away from the
    same hour a week earlier (plus their mean difference)."""
    difference = labelled.values[WEEK_HOURS:] - labelled.values[:-WEEK_HOURS]
    unusual = np.abs(difference - difference.mean()) > 3 * difference.std()
    return set((np.flatnonzero(unusual) + WEEK_HOURS).tolist()), []


def test_on_a_labelled_set_the_detector_beats_both_baselines() -> None:
    # GIVEN 60 labelled series with random spikes and level shifts (seeded)
    # WHEN each is scanned by the detector and by two baselines
    detector = precision_and_recall(robust_detector)
    static = precision_and_recall(static_threshold)
    weekly = precision_and_recall(week_earlier)
    for name, (precision, recall) in (
        ("robust detector", detector),
        ("static 3-sigma threshold", static),
        ("3 sigmas from a week earlier", weekly),
    ):
        print(f"\n{name} on 60 labelled series: precision {precision:.3f}, recall {recall:.3f}")
    # THEN the detector's precision and recall are both above 0.9
    assert detector[0] > 0.9
    assert detector[1] > 0.9
    # AND its F1 is above each baseline's: the static threshold misses spikes inside the daily
    # swing, the week-earlier difference doubles the noise and flags every hour after a shift
    assert f1(*detector) > max(f1(*static), f1(*weekly))


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_daily_cost_spike_is_found_over_a_weekly_pattern() -> None:
    # GIVEN 30 days of daily cost, lower on weekends, with one day at three times the usual
    rng = np.random.default_rng(5)
    days = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
    cost = np.array([100.0 if day.weekday() < 5 else 60.0 for day in days])
    cost += rng.normal(0.0, 2.0, 30)
    cost[27] = 300.0
    # WHEN it is scanned
    detection = detect_anomalies(cost, days)
    # THEN the weekly profile is used and only that day is reported, as critical
    assert detection.seasonality == ("day_of_week",)
    assert [(a.index, a.severity) for a in detection.anomalies] == [(27, Severity.CRITICAL)]


@pytest.mark.parametrize("days", [14, 17, 21, 24, 27])
def test_a_daily_series_too_short_for_a_weekly_profile_does_not_report_its_weekends(
    days: int,
) -> None:
    # GIVEN daily cost, 40% lower on weekends, over 2 to 4 weeks: fewer than the 4 values per
    # weekday of the weekly profile (a new account, or a shorter cost lookback)
    rng = np.random.default_rng(days)
    moments = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(days)]
    cost = np.array([100.0 if moment.weekday() < 5 else 60.0 for moment in moments])
    cost *= 1 + rng.normal(0.0, 0.03, days)
    # WHEN it is scanned
    detection = detect_anomalies(cost, moments)
    # THEN the weekend profile is removed and no weekend is an anomaly
    assert detection.seasonality == ("weekend",)
    assert detection.anomalies == ()
    # AND a weekday at 1.5 times the usual is still found
    cost[days - 2] = 150.0 if moments[days - 2].weekday() < 5 else 90.0
    assert [a.index for a in detect_anomalies(cost, moments).anomalies] == [days - 2]


def test_constant_series_reports_any_departure_and_nothing_else() -> None:
    # GIVEN a constant hourly series with one different value (MAD and mean deviation of 0)
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(48)]
    values = np.full(48, 3.0)
    values[30] = 4.0
    # WHEN it is scanned THEN only that value is reported, with a capped score
    anomalies = detect_anomalies(values, timestamps).anomalies
    assert [a.index for a in anomalies if a.kind == "point"] == [30]
    assert all(0 < a.score <= MAX_SCORE for a in anomalies)


@pytest.mark.parametrize(
    ("step", "values"),
    [
        # Cost Explorer's decimal amount of a flat fee, one day in its tenth decimal
        (timedelta(days=1), [2.4] * 29 + [2.4000000001]),
        # the same amount from a day on, a "level shift" of its rounding
        (timedelta(days=1), [2.4] * 15 + [2.3999999999] * 15),
        # a constant gauge sent once as a float32
        (timedelta(hours=1), [0.1] * 671 + [0.10000000149011612]),
        # a constant byte count of 5 GB sent once as a float32, 123 bytes off
        (timedelta(hours=1), [5_000_000_123.0] * 671 + [5_000_000_000.0]),
        # a constant average whose sum rounded differently once
        (timedelta(hours=1), [3.0] * 400 + [3.0000000000000004] + [3.0] * 271),
    ],
)
def test_a_flat_series_departing_only_in_its_rounding_gives_no_anomaly(
    step: timedelta, values: list[float]
) -> None:
    # GIVEN a flat series whose one departure is a millionth of its value or less
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + i * step for i in range(len(values))]
    # WHEN it is scanned
    detection = detect_anomalies(values, timestamps)
    # THEN nothing is reported: the rounding of a value is no noise level to score it by
    assert detection.anomalies == ()


def test_a_flat_series_still_reports_a_departure_beyond_its_rounding() -> None:
    # GIVEN a flat daily cost that rises by a percent (2.4 cents) on its last day
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
    values = [2.4] * 29 + [2.424]
    # WHEN it is scanned THEN that day is reported
    anomalies = detect_anomalies(values, timestamps).anomalies
    assert [(a.index, a.kind) for a in anomalies] == [(29, "point")]


@pytest.mark.parametrize(
    ("departure", "severities"),
    [
        pytest.param(0.001, [], id="a-thousandth"),
        pytest.param(0.007, [Severity.WARNING], id="seven-thousandths"),
        pytest.param(1.0, [Severity.CRITICAL], id="one"),
        pytest.param(5000.0, [Severity.CRITICAL], id="a-large-jump"),
    ],
)
def test_a_series_flat_at_zero_scores_a_departure_against_an_absolute_noise_floor(
    departure: float, severities: list[Severity]
) -> None:
    # GIVEN two days of an hourly metric that reads 0 (an error count, a queue's depth), but
    # for one hour
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(48)]
    values = np.zeros(48)
    values[30] = departure
    # WHEN it is scanned
    anomalies = detect_anomalies(values, timestamps).anomalies
    # THEN the departure is scored against a noise of 0.001 of the unit: a thousandth is no
    # anomaly, seven thousandths a warning, one whole unit and more critical
    assert [(a.index, a.severity) for a in anomalies] == [(30, s) for s in severities]


@pytest.mark.parametrize(
    ("unit", "departure", "severities"),
    [
        pytest.param("Bytes", 5.0, [], id="five-bytes"),
        pytest.param("Bytes", 5e6, [Severity.CRITICAL], id="five-megabytes"),
        pytest.param("Count", 0.5, [], id="half-an-event"),
        pytest.param("Count", 1.5, [Severity.WARNING], id="one-and-a-half-events"),
        pytest.param("Count", 3.0, [Severity.CRITICAL], id="three-events"),
        pytest.param("Percent", 0.05, [], id="five-hundredths-of-a-point"),
        pytest.param("Percent", 0.7, [Severity.WARNING], id="seven-tenths-of-a-point"),
        pytest.param("Percent", 2.0, [Severity.CRITICAL], id="two-points"),
        pytest.param("Seconds", 0.007, [Severity.WARNING], id="seven-milliseconds"),
        pytest.param(None, 0.007, [Severity.WARNING], id="no-unit"),
    ],
)
def test_a_series_flat_at_zero_scores_a_departure_against_its_units_noise_floor(
    unit: str | None, departure: float, severities: list[Severity]
) -> None:
    # GIVEN two days of an hourly metric in `unit` that reads 0, but for one hour
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(48)]
    values = np.zeros(48)
    values[30] = departure
    # WHEN it is scanned with the noise floor of its unit
    floor = noise_floor(unit)
    anomalies = detect_anomalies(values, timestamps, absolute_resolution=floor).anomalies
    # THEN the departure is judged in that unit: bytes and fractions of an event or of a
    # percentage point are no anomaly, a megabyte, an event or half a point are; without a
    # unit, as in seconds, a thousandth of the unit is the floor
    assert [(a.index, a.severity) for a in anomalies] == [(30, s) for s in severities]


def test_every_cloudwatch_unit_but_none_has_a_noise_floor() -> None:
    # GIVEN CloudWatch's units WHEN their noise floors are looked up
    floors = {unit: noise_floor(unit) for unit in typing.get_args(CloudWatchUnit)}
    # THEN each has its own, but `None`, which keeps the floor of a series without a unit
    assert set(NOISE_FLOORS) == set(floors) - {"None"}
    assert floors["None"] == ABSOLUTE_RESOLUTION
    assert noise_floor("Kilobytes") == noise_floor("Bytes") / 1000
    assert noise_floor("Megabits/Second") == 8 * noise_floor("Megabytes/Second")


def test_values_beyond_the_cloudwatch_limit_are_refused_instead_of_giving_infinities() -> None:
    # GIVEN values whose differences exceed the largest float (sigma would be infinite)
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(20)]
    values = [1.7e308, -1.7e308] * 10
    # WHEN scanned THEN the first value out of range is named
    with pytest.raises(ValueError, match=r"value 1\.7e\+308 at 2025-05-01T00:00:00Z is beyond"):
        detect_anomalies(values, timestamps)


@pytest.mark.parametrize(
    ("values", "anomalous"),
    [
        (
            [MAX_ABS_VALUE, -MAX_ABS_VALUE] * 12
            + [MAX_ABS_VALUE, 0.0]
            + [MAX_ABS_VALUE, -MAX_ABS_VALUE] * 7,
            [],
        ),
        ([MAX_ABS_VALUE] * 25 + [-MAX_ABS_VALUE] + [MAX_ABS_VALUE] * 14, [25]),
    ],
    ids=["alternating-ends-with-one-zero", "one-end-with-one-value-at-the-other"],
)
def test_values_at_the_limit_give_finite_noise_and_scores(
    values: list[float], anomalous: list[int]
) -> None:
    # GIVEN 40 hourly values at the ends of the accepted range: alternating between them with
    # one zero, or at one end with one value at the other
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(40)]
    # WHEN scanned THEN the noise level is finite, the value at the other end is the one
    # anomaly, and every number of it is finite
    detection = detect_anomalies(values, timestamps)
    assert math.isfinite(detection.noise_sigma)
    assert detection.noise_sigma > 0
    assert [anomaly.index for anomaly in detection.anomalies] == anomalous
    for anomaly in detection.anomalies:
        assert all(map(math.isfinite, (anomaly.value, anomaly.expected, anomaly.score)))


def test_short_or_missing_values_give_no_anomaly() -> None:
    # GIVEN fewer than 8 usable values (NaNs are dropped)
    timestamps = [datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(10)]
    values = [1.0, np.nan, 1.0, np.nan, 50.0, np.nan, 1.0, 1.0, np.nan, 1.0]
    # WHEN scanned THEN nothing is reported and the usable count is given
    detection = detect_anomalies(values, timestamps)
    assert detection.anomalies == ()
    assert detection.points == 6


def test_modified_z_scores_follow_iglewicz_hoaglin_and_severity_thresholds() -> None:
    # GIVEN values 1..9 with median 5 and MAD 2 WHEN scored
    scores = modified_z_scores(np.arange(1.0, 10.0))
    # THEN the score is 0.6745 * (x - 5) / 2, and severity switches at 10
    assert np.allclose(scores, 0.6745 * (np.arange(1.0, 10.0) - 5.0) / 2.0)
    # AND with more than half the values at the median (MAD 0), not constant, the scale is the
    # mean absolute deviation's, 1.253314 * 2/7, instead of none
    flat = modified_z_scores(np.array([4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0]))
    assert np.allclose(flat, np.array([-1.0, 0, 0, 0, 0, 0, 1.0]) / (1.253314 * 2 / 7))
    assert severity_for(9.9) is Severity.WARNING
    assert severity_for(-10.0) is Severity.CRITICAL


def test_seasonal_profile_follows_the_given_time_zone() -> None:
    # GIVEN four clean weeks whose weekends follow the Asia/Kolkata calendar (18:30 UTC Friday)
    timestamps, values = seasonal_series(
        np.random.default_rng(21), days=28, zone=ZoneInfo("Asia/Kolkata")
    )
    # WHEN scanned in that time zone THEN nothing is reported
    assert detect_anomalies(values, timestamps, time_zone="Asia/Kolkata").anomalies == ()


@pytest.mark.parametrize("days", [7, 10, 14, 20])
def test_a_weekly_pattern_is_not_a_level_shift_before_its_profile_can_be_estimated(
    days: int,
) -> None:
    for seed in range(10):
        # GIVEN hourly load with quieter weekends, of a cluster younger than three weeks (or
        # read with a shorter lookback): too few dates per weekday for the weekly profile
        timestamps, values = seasonal_series(np.random.default_rng(seed), days=days)
        # WHEN it is scanned
        detection = detect_anomalies(values, timestamps)
        # THEN the weekend's start and end are not reported as level shifts (they scored
        # -10 and +10, critical), and nothing else either
        assert detection.seasonality == ("hour_of_day",)
        assert detection.anomalies == (), (seed, detection.anomalies)


@pytest.mark.parametrize(
    ("zone", "end"),
    [
        # Clocks go from 00:00 to 01:00 on Friday 2026-04-24.
        ("Africa/Cairo", datetime(2026, 5, 10, tzinfo=UTC)),
        # Clocks go from 00:00 to 01:00 on Sunday 2026-09-06.
        ("America/Santiago", datetime(2026, 9, 20, tzinfo=UTC)),
    ],
)
def test_a_day_without_a_local_midnight_is_profiled(zone: str, end: datetime) -> None:
    # GIVEN four clean weeks in the calendar of a zone whose clocks skip midnight on a day
    # inside them
    timestamps, values = seasonal_series(
        np.random.default_rng(22), days=28, end=end, zone=ZoneInfo(zone)
    )
    # WHEN scanned in that time zone
    detection = detect_anomalies(values, timestamps, time_zone=zone)
    # THEN both profiles are removed and nothing is reported (counting the dates per weekday
    # raised NonExistentTimeError on the midnight that does not exist, failing the whole scan)
    assert detection.seasonality == ("hour_of_day", "day_of_week")
    assert detection.anomalies == ()


@pytest.mark.parametrize(
    ("points", "step_seconds"),
    [(10_080, 60), (1_500, 1)],
    ids=["a week of 1-minute values", "1-second values given to detect"],
)
def test_the_detectors_memory_stays_bounded_for_short_steps(points: int, step_seconds: int) -> None:
    # GIVEN a series whose step makes the local level's window a day of values (1,441 at 1
    # minute, 86,401 at 1 second): four weeks of a 1-minute metric copied those windows whole,
    # 450 MB, more than the function's 512 MB leave room for
    start = datetime(2025, 6, 2, tzinfo=UTC)
    times = [start + timedelta(seconds=step_seconds * index) for index in range(points)]
    values = np.random.default_rng(3).normal(50.0, 2.0, points)
    values[points // 2] += 40.0
    # WHEN its anomalies are detected, the memory it allocates traced
    tracemalloc.start()
    try:
        detection = detect_anomalies(values, times)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # THEN the planted spike is found, with at most 48 MB allocated at any time
    assert [anomaly.index for anomaly in detection.anomalies] == [points // 2]
    assert peak < 48 * 2**20
