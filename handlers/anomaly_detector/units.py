"""The noise floor of a metric's series by its CloudWatch unit.

The detector never takes a series' noise below an absolute floor, so that a series flat at 0
(errors, throttles, a queue's depth) has a scale to measure departures by: a departure is an
anomaly from 5 times the floor (`POINT_THRESHOLD`) and critical from 10 times. One floor for
every unit (0.001) made that scale meaningless in most of them: 5 bytes, a thousandth of an
event, five thousandths of a percentage point were anomalies of a flat series, and one byte or
one event from 0 was critical. GetMetricData returns no unit, so the unit is the one the
metric's query names: ANOMALY_METRICS' `unit` (the default node CPU is in `Percent`), an alarm's
`metricStat.unit` when its event carries one; a query without a unit (or with `None`) keeps
0.001 of its own unit, as before.

The floor of each unit is a fifth of the smallest departure from a flat series an engineer acts
on: a megabyte (or a megabyte a second), one event (or one event a minute, in a rate per
second), 5 ms, half a percentage point.
"""

from __future__ import annotations

from typing import Literal

from fleet_shared.numeric.robust_anomalies import ABSOLUTE_RESOLUTION, POINT_THRESHOLD

CloudWatchUnit = Literal[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
]
"""CloudWatch's units (`StandardUnit`), as PutMetricData and alarms name them."""

_DATA_SCALES = {"Bytes": 1e6, "Kilobytes": 1e3, "Megabytes": 1.0, "Gigabytes": 1e-3,
                "Terabytes": 1e-6}  # fmt: skip
"""A megabyte in each unit of bytes; in bits, eight times as many."""
_SMALLEST_DEPARTURES: dict[str, float] = {
    "Seconds": 0.005,
    "Milliseconds": 5.0,
    "Microseconds": 5_000.0,
    "Percent": 0.5,
    "Count": 1.0,
    "Count/Second": 1 / 60,
    **_DATA_SCALES,
    **{f"{unit}/Second": megabyte for unit, megabyte in _DATA_SCALES.items()},
    **{unit.replace("bytes", "bits").replace("Bytes", "Bits"): 8 * megabyte
       for unit, megabyte in _DATA_SCALES.items()},
    **{f"{unit.replace('bytes', 'bits').replace('Bytes', 'Bits')}/Second": 8 * megabyte
       for unit, megabyte in _DATA_SCALES.items()},
}  # fmt: skip
"""Per unit, the smallest departure from a flat series that is an anomaly."""
NOISE_FLOORS: dict[str, float] = {
    unit: departure / POINT_THRESHOLD for unit, departure in _SMALLEST_DEPARTURES.items()
}
"""Per unit, the noise floor of its series: an anomaly from its smallest departure, critical
from twice that."""


def noise_floor(unit: str | None) -> float:
    """The noise floor of a series in `unit` (`NOISE_FLOORS`); ABSOLUTE_RESOLUTION without one,
    for `None`, or for a unit the table lacks."""
    return NOISE_FLOORS.get(unit or "None", ABSOLUTE_RESOLUTION)
