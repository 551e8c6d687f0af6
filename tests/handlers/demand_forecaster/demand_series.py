"""Generated hourly demand with daily and weekly seasonality, trend, noise and a holiday."""

from __future__ import annotations

import numpy as np

HOURS_PER_DAY = 24


def hourly_demand(
    rng: np.random.Generator,
    days: int,
    *,
    holiday_day: int | None = None,
    base: float = 20.0,
    noise: float = 0.6,
) -> np.ndarray:
    """vCPU demand starting on a Monday at 00:00: working-hours peak, quiet weekends, a slow
    upward trend, Gaussian noise, and `holiday_day` (a weekday) shaped like a weekend day."""
    hours = np.arange(days * HOURS_PER_DAY)
    hour_of_day = hours % HOURS_PER_DAY
    day = hours // HOURS_PER_DAY
    weekend = (day % 7) >= 5
    if holiday_day is not None:
        weekend = weekend | (day == holiday_day)
    working = np.clip(np.sin(np.pi * (hour_of_day - 7) / 12), 0.0, None)
    amplitude = np.where(weekend, 3.0, 12.0)
    return base + amplitude * working + 0.004 * hours + rng.normal(0.0, noise, len(hours))
