"""Properties of the shared statistics (`fleet_shared.numeric.robust_anomalies`): the leave-one-out
median is the median of the others, and "every number of a `Detection` is finite" for any
values within +-`MAX_ABS_VALUE`, whatever their spread, gaps and repeats."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fleet_shared.numeric.robust_anomalies import (
    MAX_ABS_VALUE,
    MAX_SCORE,
    detect_anomalies,
    leave_one_out_median,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
WITHIN_RANGE = (
    st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, allow_nan=False)
    | st.sampled_from((0.0, 1.0, -0.0, 5e-324, MAX_ABS_VALUE, -MAX_ABS_VALUE))
    | st.integers(min_value=-(10**6), max_value=10**6).map(float)
)


@given(values=st.lists(FINITE.filter(lambda value: abs(value) < 1e300), min_size=2, max_size=40))
def test_each_leave_one_out_median_is_the_median_of_the_other_values(values: list[float]) -> None:
    # GIVEN any values WHEN the leave-one-out medians are taken
    medians = leave_one_out_median(values)
    # THEN each is numpy's median of the values without it
    for position, median in enumerate(medians):
        others = np.delete(np.asarray(values), position)
        assert median == np.median(others) or math.isclose(
            median, float(np.median(others)), rel_tol=1e-12, abs_tol=1e-300
        )


@st.composite
def series(draw: st.DrawFn) -> tuple[list[float], list[datetime]]:
    """Values within the detector's range at hourly or daily steps, some missing (NaN) or
    repeated."""
    step = draw(st.sampled_from((timedelta(minutes=15), timedelta(hours=1), timedelta(days=1))))
    count = draw(st.integers(min_value=0, max_value=120))
    level = draw(WITHIN_RANGE)
    values = [
        draw(
            WITHIN_RANGE
            | st.just(level)
            | st.just(math.nan)
            | st.floats(min_value=-2.0, max_value=2.0).map(lambda noise, base=level: base + noise)
        )
        for _ in range(count)
    ]
    times = [START + step * index for index in range(count)]
    if times and draw(st.booleans()):
        times[draw(st.integers(0, count - 1))] = times[0]
    return [min(max(value, -MAX_ABS_VALUE), MAX_ABS_VALUE) for value in values], times


@given(drawn=series(), time_zone=st.sampled_from((None, "Asia/Kolkata", "America/Santiago")))
def test_every_number_of_a_detection_is_finite_within_the_value_range(
    drawn: tuple[list[float], list[datetime]], time_zone: str | None
) -> None:
    # GIVEN any series of values within +-MAX_ABS_VALUE
    values, times = drawn
    # WHEN anomalies are detected
    detection = detect_anomalies(values, times, time_zone=time_zone)
    # THEN the noise and every anomaly's numbers are finite, scores within +-MAX_SCORE, and
    # each anomaly is standard JSON
    assert math.isfinite(detection.noise_sigma)
    for anomaly in detection.anomalies:
        assert math.isfinite(anomaly.value)
        assert math.isfinite(anomaly.expected)
        assert abs(anomaly.score) <= MAX_SCORE
        json.dumps(anomaly.to_dict(), allow_nan=False)
