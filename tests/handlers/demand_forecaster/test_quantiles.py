"""The quantile of a weighted mixture of samples, against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.demand_forecaster.quantiles import mixture_quantile

# A search for the CDF narrows p 2,048-fold per `np.quantile` call on a grid (one call of 2,049
# p costs less than two of one p): four calls pin p to 2**-44, where bisection took 44 calls.
GRID_STEPS = 2048
GRID_ROUNDS = 4


def reference_cdf(sample: np.ndarray, value: float) -> float:
    """The largest p whose `np.quantile(sample, p)` is at most `value` (to 2**-44, by a grid
    search on p): the CDF that `np.quantile` is the inverse of, found from `np.quantile` alone."""
    if value < np.min(sample):
        return 0.0
    low, width = 0.0, 1.0
    for _ in range(GRID_ROUNDS):
        # The grid's first p is `low`, whose quantile is at most `value`: the quantile grows
        # with p, so the grid's p up to the last such one are all such.
        grid = np.minimum(low + width * np.linspace(0.0, 1.0, GRID_STEPS + 1), 1.0)
        last = int(np.flatnonzero(np.quantile(sample, grid) <= value)[-1])
        low, width = float(grid[last]), width / GRID_STEPS
    return low


def reference_quantile(samples: list[np.ndarray], weights: np.ndarray, quantile: float) -> float:
    """The smallest value whose weighted mixture CDF reaches `quantile` (bisection on it)."""
    share = weights / weights.sum()

    def cdf(value: float) -> float:
        return sum(w * reference_cdf(s, value) for w, s in zip(share, samples, strict=True))

    low = float(min(np.min(s) for s in samples)) - 1.0
    high = float(max(np.max(s) for s in samples))
    for _ in range(48):
        middle = (low + high) / 2
        if cdf(middle) >= quantile - 1e-12:
            high = middle
        else:
            low = middle
    return high


def random_case(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Two or three samples of 1-6 values, some with ties, and their weights and a quantile."""
    samples = []
    for _ in range(int(rng.integers(2, 4))):
        size = int(rng.integers(1, 7))
        if rng.random() < 0.5:
            sample = rng.integers(0, 5, size).astype(float)  # ties
        else:
            sample = rng.normal(float(rng.integers(0, 4)), 1.0, size)
        samples.append(sample)
    weights = rng.uniform(0.1, 3.0, len(samples))
    return samples, weights, float(rng.uniform(0.55, 0.98))


def test_the_mixture_quantile_is_the_brute_force_one_with_ties_and_single_values() -> None:
    # GIVEN 60 random mixtures of small samples, with tied values and one-value samples
    rng = np.random.default_rng(5)
    for _ in range(60):
        samples, weights, quantile = random_case(rng)
        # WHEN their quantile is computed THEN it is the brute-force one
        expected = reference_quantile(samples, weights, quantile)
        assert mixture_quantile(samples, weights, quantile) == pytest.approx(expected, abs=1e-8)


def test_one_sample_gives_back_its_own_quantile() -> None:
    # GIVEN one sample of continuous values
    sample = np.random.default_rng(6).lognormal(0.0, 0.3, 40)
    # WHEN its mixture quantile is computed THEN it is numpy's quantile of the sample
    for quantile in (0.6, 0.9, 0.97):
        expected = float(np.quantile(sample, quantile))
        assert mixture_quantile([sample], np.ones(1), quantile) == pytest.approx(expected)


def test_a_tied_value_that_holds_the_quantile_is_the_answer() -> None:
    # GIVEN a sample that is always 4 and one spread over 1-2, weighed equally
    # WHEN the 0.9 quantile is computed
    # THEN it is 4, where the mixture's CDF jumps past 0.9, not a value on the way up to it
    assert mixture_quantile([np.array([4.0]), np.array([1.0, 2.0])], np.ones(2), 0.9) == 4.0
    # AND a flat load (every error 0) has its one value as every quantile
    flat = [np.array([1.0, 1.0]), np.array([2.0, 2.0, 2.0])]
    assert mixture_quantile(flat, np.array([5.0, 55.0]), 0.9) == 2.0
