"""Where each figure's threshold lies (`moved_figures`): a figure moved by exactly its threshold is
a regression, one just short of it is not, and a thin baseline's latencies and rates are not
judged. Thresholds are binary-exact so that "exactly" means exactly."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.change_validator.comparison import Thresholds, moved_figures, thin_baseline

THRESHOLDS = Thresholds(
    latency_increase_ratio=0.5,
    latency_min_increase_ms=100,
    error_rate_increase=0.25,
    healthy_ratio_drop=0.25,
)


def endpoint(samples: int, **figures: float) -> dict[str, Any]:
    return {"endpoint/api": {"samples": samples, **figures}}


@pytest.mark.parametrize(
    ("figure", "before", "after", "change"),
    [
        pytest.param("latency_p95_ms", 100, 200, "+100 ms (+100%)", id="latency_by_the_minimum_ms"),
        pytest.param("latency_p95_ms", 100, 199, None, id="latency_1_ms_short_of_the_minimum"),
        pytest.param("latency_p95_ms", 300, 450, "+150 ms (+50%)", id="latency_by_the_ratio"),
        pytest.param("latency_p95_ms", 300, 449, None, id="latency_past_the_ms_short_of_the_ratio"),
        pytest.param("error_rate", 0.25, 0.5, "+25.0 percentage points", id="rate_by_the_step"),
        pytest.param("error_rate_5xx", 0.25, 0.49, None, id="rate_short_of_the_step"),
        pytest.param("healthy_ratio", 1.0, 0.75, "-25.0 percentage points", id="share_by_the_drop"),
        pytest.param("ready_ratio", 1.0, 0.76, None, id="share_short_of_the_drop"),
        pytest.param("latency_p95_ms", 400, 100, None, id="latency_that_fell"),
        pytest.param("healthy_ratio", 0.5, 1.0, None, id="share_that_rose"),
    ],
)
def test_a_figure_is_a_regression_from_exactly_its_threshold_on(
    figure: str, before: float, after: float, change: str | None
) -> None:
    # GIVEN a baseline and a bake of one endpoint, enough samples on both sides
    # WHEN one figure moves from `before` to `after`
    moved = moved_figures(
        endpoint(3, **{figure: before}), endpoint(3, **{figure: after}), THRESHOLDS
    )
    # THEN it is reported, with how it moved, exactly when the move reaches its threshold
    expected = (
        []
        if change is None
        else [
            {
                "subject": "endpoint/api",
                "figure": figure,
                "before": before,
                "after": after,
                "change": change,
            }
        ]
    )
    assert moved == expected


@pytest.mark.parametrize(("samples", "judged"), [(2, False), (3, True)])
def test_the_latencies_and_rates_of_a_baseline_thinner_than_three_samples_are_not_judged(
    samples: int, judged: bool
) -> None:
    # GIVEN an endpoint whose latency and error rate both regressed, and whose share of healthy
    # targets did too, measured in a baseline of `samples` results
    before = endpoint(samples, latency_p95_ms=100, error_rate=0.0, healthy_ratio=1.0)
    after = endpoint(14, latency_p95_ms=400, error_rate=0.5, healthy_ratio=0.5)
    # WHEN the figures are compared
    figures = [item["figure"] for item in moved_figures(before, after, THRESHOLDS)]
    # THEN the sampled figures count only from three samples on; the read share always counts
    sampled = ["latency_p95_ms", "error_rate"] if judged else []
    assert figures == [*sampled, "healthy_ratio"]
    assert thin_baseline(before) == ({} if judged else {"endpoint/api": samples})


def test_a_load_balancer_is_thin_with_a_little_traffic_and_not_without_any() -> None:
    # GIVEN load balancers with 2, 3 and no requests in the baseline
    before = {
        "load_balancer/few": {"requests": 2},
        "load_balancer/enough": {"requests": 3},
        "load_balancer/idle": {"requests": 0, "healthy_ratio": 1.0},
    }
    # WHEN the thin subjects are named
    # THEN only the one with some traffic but fewer than three requests is
    assert thin_baseline(before) == {"load_balancer/few": 2}
