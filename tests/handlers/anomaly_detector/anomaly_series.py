"""Generated metric series with known anomalies, for the detector's tests (seeded, offline)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

START = datetime(2025, 5, 19, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class LabelledSeries:
    """A series and where its injected anomalies are."""

    timestamps: list[datetime]
    values: np.ndarray
    spikes: tuple[int, ...]
    shifts: tuple[int, ...]


def seasonal_series(
    rng: np.random.Generator,
    days: int = 14,
    *,
    end: datetime | None = None,
    zone: ZoneInfo | None = None,
    noise: float = 1.0,
) -> tuple[list[datetime], np.ndarray]:
    """Hourly CPU-like load: a daily cycle, quieter weekends (in `zone`'s calendar, UTC by
    default), a slight trend and Gaussian noise; from START, or ending at `end` (inclusive)."""
    count = days * 24
    first = START if end is None else end - timedelta(hours=count - 1)
    timestamps = [first + timedelta(hours=i) for i in range(count)]
    local = [t.astimezone(zone or UTC) for t in timestamps]
    hour = np.array([t.hour + t.minute / 60 for t in local])
    weekend = np.array([t.weekday() >= 5 for t in local])
    daily = 15.0 * np.sin(2 * np.pi * (hour - 6) / 24)
    values = 50.0 + daily - 12.0 * weekend + 0.01 * np.arange(count) + rng.normal(0.0, noise, count)
    return timestamps, values


def labelled_series(rng: np.random.Generator, days: int = 28) -> LabelledSeries:
    """A seasonal series with 0-3 spikes (8-15 sigma) anywhere and, in half of them, one level
    shift (6-10 sigma) within the last week, where a scan looks for it."""
    timestamps, values = seasonal_series(rng, days)
    count = len(values)
    spikes = tuple(
        sorted(rng.choice(np.arange(30, count - 30), size=int(rng.integers(0, 4)), replace=False))
    )
    for index in spikes:
        values[index] += rng.choice([-1.0, 1.0]) * rng.uniform(8.0, 15.0)
    shifts: tuple[int, ...] = ()
    if rng.random() < 0.5:
        shift = int(rng.integers(count - 7 * 24, count - 30))
        values[shift:] += rng.choice([-1.0, 1.0]) * rng.uniform(6.0, 10.0)
        shifts = (shift,)
        spikes = tuple(index for index in spikes if abs(index - shift) > 2)
    return LabelledSeries(timestamps, values, tuple(int(i) for i in spikes), shifts)
