"""The bottleneck rules' clear levels: where an open regression of each rule resolves."""

from __future__ import annotations

import pytest

from fleet_shared.performance_documents import LoadBalancerLatency
from handlers.performance_analyzer.bottlenecks import (
    BOTTLENECK_RULES,
    BottleneckRule,
    cleared_rules,
)
from handlers.performance_analyzer.measurements import WindowMeasurements

RULES = {rule.name: rule for rule in BOTTLENECK_RULES}


def window(
    figures: dict[str, float | None], p99_seconds: float | None = None
) -> WindowMeasurements:
    """A window with `figures` and, given `p99_seconds`, one load balancer with that p99."""
    load_balancers = (
        []
        if p99_seconds is None
        else [LoadBalancerLatency(name="k8s-apps-web", p50_seconds=None, p90_seconds=None,
                                  p99_seconds=p99_seconds)]
    )  # fmt: skip
    return WindowMeasurements(figures=figures, load_balancers=load_balancers, hourly=[])


@pytest.mark.parametrize("rule", BOTTLENECK_RULES, ids=lambda rule: rule.name)
def test_every_rule_clears_below_its_threshold_by_the_margin_of_its_unit(
    rule: BottleneckRule,
) -> None:
    # GIVEN a registered rule (every one fires above its threshold)
    # WHEN its clear level is read
    # THEN it is at or below the threshold, by the margin of its unit: 5 points for a percent,
    # 10 % of the threshold otherwise (a count firing above 0 clears at 0)
    margin = 5.0 if rule.unit == "Percent" else rule.threshold * 0.1
    assert rule.clear_level == pytest.approx(rule.threshold - margin)


@pytest.mark.parametrize(
    ("figures", "p99_seconds", "cleared"),
    [
        ({"cpu": 75.0, "memory": 80.0, "pending_pods": 0.0, "failed_nodes": 0.0,
          "throttled_cpu": 95.0}, 0.9,
         ["cpu_saturation", "memory_pressure", "unschedulable_pods", "failed_nodes",
          "cpu_throttling", "slow_load_balancer"]),
        ({"cpu": 75.01, "memory": 80.01, "pending_pods": 0.25, "failed_nodes": 1.0,
          "throttled_cpu": 95.5}, 0.95, []),
        ({"cpu": None, "memory": None}, None, []),
    ],
    ids=["at the clear levels", "just above them", "not measured"],
)  # fmt: skip
def test_a_rule_clears_at_or_below_its_clear_level_and_only_on_a_measured_figure(
    figures: dict[str, float | None], p99_seconds: float | None, cleared: list[str]
) -> None:
    # GIVEN a window's figures
    measurements = window(figures, p99_seconds)
    # WHEN the rules that cleared are read
    found = cleared_rules(measurements, 4)
    # THEN a rule clears with its figure at or below its clear level, not above it, and not
    # without a figure
    assert list(found) == cleared


def test_the_reason_a_slow_load_balancer_cleared_names_the_load_balancer_figure_and_level() -> None:
    # GIVEN a window whose slowest load balancer answered its p99 in 0.85 s
    measurements = window({}, 0.85)
    # WHEN the rules that cleared are read
    why = cleared_rules(measurements, 4)["slow_load_balancer"]
    # THEN the reason names the load balancer, its figure and the rule's clear level
    assert why == (
        "Load balancer responses slow cleared: TargetResponseTime p99 of k8s-apps-web was "
        "0.85 Seconds over the last 4 h, at or below its clear level of 0.9 Seconds "
        "(threshold 1 Seconds)"
    )
    assert RULES["slow_load_balancer"].clearance(window({}, 0.95), 4) is None
