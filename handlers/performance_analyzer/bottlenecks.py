"""The bottleneck rules: one row per rule, all registered in `BOTTLENECK_RULES`.

A rule fires when its figure of the window is above its threshold (in the rule's declared unit);
the bottleneck it names carries the figure as evidence. An open regression of the rule resolves
only once the figure is at or below the rule's clear level, a margin under the threshold: a figure
wandering around the threshold (CPU 79 %, 81 %, 79 %) would otherwise open and resolve an alert on
every run. A count that fires above 0 has no level under its threshold to clear at, so its
regression resolves only after COUNT_CLEAR_RUNS clean runs in a row (`clear_runs`): a count
going 1, 0, 1, 0 is one regression, not a warning and a resolution every run. No rule fires on a
figure that is too low. A new rule is one more row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleet_shared.performance_documents import Bottleneck
from handlers.performance_analyzer.measurements import WindowMeasurements


def _figure(name: str) -> Callable[[WindowMeasurements], tuple[str, float] | None]:
    def read(measurements: WindowMeasurements) -> tuple[str, float] | None:
        value = measurements.figures.get(name)
        return None if value is None else ("the cluster", value)

    return read


COUNT_CLEAR_RUNS = 3
"""The clean runs in a row a count rule's open regression needs to resolve: 12 hours of the
4-hourly schedule with no pending pod or failed node."""


@dataclass(frozen=True)
class BottleneckRule:
    """`title` when `read(window)` is above `threshold` `unit`; an open regression of it resolves
    once the figure is at or below `clear_level` `unit` in `clear_runs` runs in a row; `reading`
    says what was measured."""

    name: str
    title: str
    metric: str
    unit: str
    threshold: float
    clear_level: float
    reading: str
    read: Callable[[WindowMeasurements], tuple[str, float] | None]
    clear_runs: int = 1

    def evaluate(self, measurements: WindowMeasurements, hours: int) -> Bottleneck | None:
        """The bottleneck this rule finds in `measurements`, if it fires."""
        found = self.read(measurements)
        if found is None:
            return None
        where, value = found
        if value <= self.threshold:
            return None
        return Bottleneck(
            rule=self.name,
            title=self.title,
            metric=self.metric,
            unit=self.unit,
            value=round(value, 4),
            threshold=self.threshold,
            evidence=(
                f"{self.reading} of {where} was {value:.4g} {self.unit} over the last {hours} h "
                f"(threshold {self.threshold:g} {self.unit})"
            ),
        )

    def clearance(self, measurements: WindowMeasurements, hours: int) -> str | None:
        """Why an open regression of this rule resolves on `measurements`: its figure is at or
        below the clear level. None while the figure is above it, and when the window has no
        figure (a rule that was not measured did not clear)."""
        found = self.read(measurements)
        if found is None:
            return None
        where, value = found
        if value > self.clear_level:
            return None
        return (
            f"{self.title} cleared: {self.reading} of {where} was {value:.4g} {self.unit} over "
            f"the last {hours} h, at or below its clear level of {self.clear_level:g} {self.unit} "
            f"(threshold {self.threshold:g} {self.unit})"
        )


# The clear level, after the threshold: 5 points under it for a percent of capacity or of a limit,
# 10 % under it for a latency; a count that fires above 0 clears at 0, there being no count below
# (a single pending pod or failed node keeps its regression open), and only in COUNT_CLEAR_RUNS
# runs in a row, as 0 and 1 are all a count has to hover between.
BOTTLENECK_RULES: tuple[BottleneckRule, ...] = (
    BottleneckRule(
        "cpu_saturation", "Node CPU saturated", "cpu", "Percent", 80.0, 75.0,
        "mean node_cpu_utilization", _figure("cpu"),
    ),
    BottleneckRule(
        "memory_pressure", "Node memory under pressure", "memory", "Percent", 85.0, 80.0,
        "mean node_memory_utilization", _figure("memory"),
    ),
    BottleneckRule(
        "unschedulable_pods", "Pods cannot be scheduled", "pending_pods", "Count", 0.0, 0.0,
        "peak pod_status_pending", _figure("pending_pods"), clear_runs=COUNT_CLEAR_RUNS,
    ),
    BottleneckRule(
        "failed_nodes", "Nodes failed", "failed_nodes", "Count", 0.0, 0.0,
        "peak cluster_failed_node_count", _figure("failed_nodes"), clear_runs=COUNT_CLEAR_RUNS,
    ),
    BottleneckRule(
        "cpu_throttling", "Pods throttled at their CPU limit", "throttled_cpu", "Percent",
        100.0, 95.0, "peak pod_cpu_utilization_over_pod_limit", _figure("throttled_cpu"),
    ),
    BottleneckRule(
        "slow_load_balancer", "Load balancer responses slow", "lb_p99", "Seconds", 1.0, 0.9,
        "TargetResponseTime p99", lambda measurements: measurements.worst_p99(),
    ),
)  # fmt: skip


def find_bottlenecks(measurements: WindowMeasurements, hours: int) -> list[Bottleneck]:
    """Every bottleneck the registered rules find, in rule order."""
    found = (rule.evaluate(measurements, hours) for rule in BOTTLENECK_RULES)
    return [bottleneck for bottleneck in found if bottleneck is not None]


def cleared_rules(measurements: WindowMeasurements, hours: int) -> dict[str, str]:
    """The rules whose figure is at or below their clear level, each with why it cleared."""
    found = ((rule.name, rule.clearance(measurements, hours)) for rule in BOTTLENECK_RULES)
    return {name: why for name, why in found if why is not None}


def measured_rules(measurements: WindowMeasurements) -> frozenset[str]:
    """The rules whose figure the window has: only these can be said to have cleared."""
    return frozenset(rule.name for rule in BOTTLENECK_RULES if rule.read(measurements) is not None)
