"""The quantile of a weighted mixture of empirical distributions.

Each sample's distribution has the CDF whose inverse is `np.quantile`'s default (linear)
interpolation: with the sorted values x_0..x_{n-1}, F(x_i) = i / (n - 1), linear in between, so
that one sample alone gives back `np.quantile(sample, q)`. Tied values make F jump (from the
first tied index's share to the last's), and a single value is a step from 0 to 1. The
mixture's CDF is the weighted sum of its samples' CDFs; its q-quantile is the smallest value at
which that sum reaches q.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mixture_quantile(samples: Sequence[np.ndarray], weights: np.ndarray, quantile: float) -> float:
    """The `quantile` (0 < quantile < 1) of the mixture of `samples` (each non-empty) weighted
    by `weights` (one per sample, positive)."""
    points = np.unique(np.concatenate(samples))
    share = np.asarray(weights, dtype=float) / float(np.sum(weights))
    below = np.zeros(len(points))
    at = np.zeros(len(points))
    for weight, sample in zip(share, samples, strict=True):
        sample_below, sample_at = _cdf(np.sort(sample), points)
        below += weight * sample_below
        at += weight * sample_at
    # Rounding can leave the sum a hair below 1 at the last point: the last point then.
    first = min(int(np.searchsorted(at, quantile)), len(points) - 1)
    if below[first] < quantile:
        # The CDF reaches the quantile by jumping at this point (always so at the first point,
        # below which it is 0).
        return float(points[first])
    # It reaches it on the straight line from the point before, which ends at `below[first]`.
    part = (quantile - at[first - 1]) / (below[first] - at[first - 1])
    return float(points[first - 1] + part * (points[first] - points[first - 1]))


def _cdf(sorted_sample: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sample's CDF just below each of `points` and at it (see the module docstring)."""
    values, first_index, counts = np.unique(sorted_sample, return_index=True, return_counts=True)
    if len(sorted_sample) == 1:
        left, right = np.zeros(1), np.ones(1)
    else:
        left = first_index / (len(sorted_sample) - 1)
        right = (first_index + counts - 1) / (len(sorted_sample) - 1)
    index = np.searchsorted(values, points)
    inside = np.minimum(index, len(values) - 1)
    exact = values[inside] == points
    # Between two values the CDF runs straight from the right one's share of the lower to the
    # left one's share of the upper.
    lower, upper = np.maximum(index - 1, 0), inside
    span = values[upper] - values[lower]
    line = right[lower] + np.divide(
        (points - values[lower]) * (left[upper] - right[lower]),
        span,
        out=np.zeros(len(points)),
        where=span > 0,
    )
    between = np.where(index == 0, 0.0, np.where(index == len(values), 1.0, line))
    return np.where(exact, left[inside], between), np.where(exact, right[inside], between)
