"""Pure scoring of spot capacity: savings, volatility, trend, interruption risk, opportunity score.

No AWS calls and no clock here: every function takes its inputs explicitly, so the numbers can be
checked by hand (tests/handlers/spot_optimizer/test_spot_scoring.py).

Definitions (prices in USD per hour):
- savings % = (1 - spot / on-demand) * 100, with `spot` the price in effect now.
- The history is resampled hourly as a step function: the price at each hour of the window is the
  last price published at or before that hour. A point published before the window starts is the
  price in effect at its start (the EC2 API returns exactly that point for a StartTime).
- volatility = coefficient of variation (population standard deviation / mean) of the hourly
  series. trend = least-squares slope of the hourly series, per day, divided by its mean (so 0.02
  means prices rise 2 % of their mean per day).
- Both need at least MIN_HISTORY_POINTS published prices, at distinct times; with fewer they
  are "insufficient history" (None), the score uses a neutral 0.5 for stability and trend, and
  its confidence is "low" instead of "high".
- interruption risk = min(interruptions in the last 7 days, INTERRUPTION_SATURATION) /
  INTERRUPTION_SATURATION: 0 interruptions is 0.0, five or more is 1.0.
- opportunity score (0-100) = 50 * savings share + 20 * stability + 15 * trend component
  + 15 * (1 - interruption risk), where savings share = clamp(savings % / 100, 0, 1),
  stability = 1 - clamp(volatility / VOLATILITY_CEILING, 0, 1) and trend component
  = 1 - clamp(trend / TREND_CEILING, 0, 1) (flat or falling prices score 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_HISTORY_POINTS = 2
"""Fewer published prices than this say nothing about movement."""

VOLATILITY_CEILING = 0.25
"""A coefficient of variation at or above this counts as fully unstable (stability 0)."""

TREND_CEILING = 0.05
"""A rise of 5 % of the mean price per day or more scores 0 on trend."""

INTERRUPTION_SATURATION = 5
"""Interruptions in 7 days at which the risk reaches 1.0."""

WEIGHT_SAVINGS = 50.0
WEIGHT_STABILITY = 20.0
WEIGHT_TREND = 15.0
WEIGHT_INTERRUPTION = 15.0

NEUTRAL = 0.5
"""Stability and trend component used when the history is insufficient."""

INSUFFICIENT_HISTORY = "insufficient history"

_HOUR = timedelta(hours=1)
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class PricePoint:
    """One published spot price."""

    timestamp: datetime
    price: float


@dataclass(frozen=True)
class Score:
    """The opportunity score and the parts it was made of."""

    score: float
    savings_percent: float
    volatility: float | None
    trend_per_day: float | None
    interruption_risk: float
    confidence: str


def savings_percent(spot_price: float, on_demand_price: float) -> float:
    """(1 - spot / on-demand) * 100; negative when spot costs more than on-demand."""
    if on_demand_price <= 0:
        raise ValueError(f"on-demand price must be positive, got {on_demand_price}")
    return (1.0 - spot_price / on_demand_price) * 100.0


def hourly_series(points: Sequence[PricePoint], start: datetime, end: datetime) -> list[float]:
    """The price in effect at each whole hour from `start` to `end` (both included).

    Hours before the first known price are left out: nothing was known then.
    """
    ordered = sorted(points, key=lambda point: point.timestamp)
    series: list[float] = []
    index = 0
    current: float | None = None
    moment = start
    while moment <= end:
        while index < len(ordered) and ordered[index].timestamp <= moment:
            current = ordered[index].price
            index += 1
        if current is not None:
            series.append(current)
        moment += _HOUR
    return series


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Population standard deviation / mean; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean == 0:
        return None
    variance = sum((value - mean) ** 2 for value in values) / len(values)
    return math.sqrt(variance) / mean


def relative_trend_per_day(values: Sequence[float]) -> float | None:
    """Least-squares slope of hourly `values`, per day, divided by their mean."""
    count = len(values)
    if count < 2:
        return None
    mean = sum(values) / count
    if mean == 0:
        return None
    x_mean = (count - 1) / 2.0
    denominator = sum((x - x_mean) ** 2 for x in range(count))
    slope_per_hour = (
        sum((x - x_mean) * (value - mean) for x, value in enumerate(values)) / denominator
    )
    return slope_per_hour * 24.0 / mean


def history_statistics(
    points: Sequence[PricePoint], start: datetime, end: datetime
) -> tuple[float | None, float | None]:
    """(volatility, trend per day) of the history, both None when it is insufficient.

    Only points inside the window count as observations of movement, one per moment (an answer
    listing a price twice, as a repeated page does, is one observation, not a history); the one
    point before it only gives the starting price.
    """
    observed = {point.timestamp for point in points if start <= point.timestamp <= end}
    earlier = any(point.timestamp < start for point in points)
    if len(observed) + earlier < MIN_HISTORY_POINTS:
        return None, None
    series = hourly_series(points, start, end)
    return coefficient_of_variation(series), relative_trend_per_day(series)


def interruption_risk(interruptions: int) -> float:
    """Interruptions in the last 7 days mapped to 0..1 (saturating at INTERRUPTION_SATURATION)."""
    return min(max(interruptions, 0), INTERRUPTION_SATURATION) / INTERRUPTION_SATURATION


def opportunity_score(
    savings: float,
    volatility: float | None,
    trend_per_day: float | None,
    risk: float,
) -> Score:
    """The weighted 0-100 score (see the module docstring) with its confidence."""
    savings_share = _clamp(savings / 100.0)
    stability = NEUTRAL if volatility is None else 1.0 - _clamp(volatility / VOLATILITY_CEILING)
    trend_component = (
        NEUTRAL if trend_per_day is None else 1.0 - _clamp(trend_per_day / TREND_CEILING)
    )
    total = (
        WEIGHT_SAVINGS * savings_share
        + WEIGHT_STABILITY * stability
        + WEIGHT_TREND * trend_component
        + WEIGHT_INTERRUPTION * (1.0 - _clamp(risk))
    )
    confidence = "high" if volatility is not None and trend_per_day is not None else "low"
    return Score(
        score=round(total, 2),
        savings_percent=round(savings, 2),
        volatility=None if volatility is None else round(volatility, 6),
        trend_per_day=None if trend_per_day is None else round(trend_per_day, 6),
        interruption_risk=round(risk, 4),
        confidence=confidence,
    )


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))
