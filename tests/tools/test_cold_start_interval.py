"""The cold-start benchmark's interval for a median: the order statistics the binomial law picks,
covering the median at least as often as it says."""

from __future__ import annotations

import math
import random
import statistics

from benchmarks.cold_start import median_interval


def _below(n: int, k: int) -> float:
    """P(Binomial(n, 1/2) < k)."""
    return sum(math.comb(n, i) for i in range(k)) / 2**n


def test_seven_values_give_their_range() -> None:
    # GIVEN 7 pairs, the benchmark's old count: even min..max covers the median only 98.4% of runs
    values = [1.3, 1.1, 1.25, 1.0, 1.2, 1.15, 1.4]

    # WHEN the interval is taken
    low, high = median_interval(values)

    # THEN it is the whole range
    assert (low, high) == (1.0, 1.4)


def test_interval_uses_the_widest_order_statistics_the_level_allows() -> None:
    # GIVEN 33 distinct values
    values = [float(value) for value in range(1, 34)]

    # WHEN the 95% interval is taken
    low, high = median_interval(values, level=0.95)

    # THEN it runs from the 11th to the 23rd value: one step narrower would leave more than 2.5%
    # on each side
    assert (low, high) == (11.0, 23.0)
    assert _below(33, 11) <= 0.025 < _below(33, 12)


def test_interval_covers_the_true_median_at_least_as_often_as_its_level() -> None:
    # GIVEN many samples of 33 from a skewed distribution with a known median
    generator = random.Random(7)
    true_median = math.log(2)
    runs = 2_000

    # WHEN each sample's interval is taken
    covered = 0
    for _ in range(runs):
        sample = [generator.expovariate(1.0) for _ in range(33)]
        low, high = median_interval(sample)
        covered += low <= true_median <= high

    # THEN at least 95% of the intervals hold the median (allowing for sampling error)
    assert covered / runs >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / runs)


def test_interval_holds_the_sample_median() -> None:
    # GIVEN a sample
    generator = random.Random(3)
    sample = [generator.uniform(0.8, 1.6) for _ in range(25)]

    # WHEN the interval is taken
    low, high = median_interval(sample)

    # THEN the sample's own median lies inside it
    assert low <= statistics.median(sample) <= high
