"""The bottleneck rules: one row per rule, all registered in `BOTTLENECK_RULES`.

A rule fires when its figure of the window is above its threshold (in the rule's declared unit);
the bottleneck it names carries the figure as evidence. A new rule is one more row.
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


@dataclass(frozen=True)
class BottleneckRule:
    """`title` when `read(window)` is above `threshold` `unit`; `reading` says what was measured."""

    name: str
    title: str
    metric: str
    unit: str
    threshold: float
    reading: str
    read: Callable[[WindowMeasurements], tuple[str, float] | None]

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


BOTTLENECK_RULES: tuple[BottleneckRule, ...] = (
    BottleneckRule(
        "cpu_saturation", "Node CPU saturated", "cpu", "Percent", 80.0,
        "mean node_cpu_utilization", _figure("cpu"),
    ),
    BottleneckRule(
        "memory_pressure", "Node memory under pressure", "memory", "Percent", 85.0,
        "mean node_memory_utilization", _figure("memory"),
    ),
    BottleneckRule(
        "unschedulable_pods", "Pods cannot be scheduled", "pending_pods", "Count", 0.0,
        "peak pod_status_pending", _figure("pending_pods"),
    ),
    BottleneckRule(
        "failed_nodes", "Nodes failed", "failed_nodes", "Count", 0.0,
        "peak cluster_failed_node_count", _figure("failed_nodes"),
    ),
    BottleneckRule(
        "cpu_throttling", "Pods throttled at their CPU limit", "throttled_cpu", "Percent", 100.0,
        "peak pod_cpu_utilization_over_pod_limit", _figure("throttled_cpu"),
    ),
    BottleneckRule(
        "slow_load_balancer", "Load balancer responses slow", "lb_p99", "Seconds", 1.0,
        "TargetResponseTime p99", lambda measurements: measurements.worst_p99(),
    ),
)  # fmt: skip


def find_bottlenecks(measurements: WindowMeasurements, hours: int) -> list[Bottleneck]:
    """Every bottleneck the registered rules find, in rule order."""
    found = (rule.evaluate(measurements, hours) for rule in BOTTLENECK_RULES)
    return [bottleneck for bottleneck in found if bottleneck is not None]


def measured_rules(measurements: WindowMeasurements) -> frozenset[str]:
    """The rules whose figure the window has: only these can be said to have cleared."""
    return frozenset(rule.name for rule in BOTTLENECK_RULES if rule.read(measurements) is not None)
