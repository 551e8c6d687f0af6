"""Baseline against bake: which figures moved past their thresholds, and by how much.

Three kinds of figure, each with its rule (thresholds from the environment):
- latencies (`latency_p95_ms` of an endpoint, `response_time_ms` of a load balancer) regress when
  they grow by VALIDATION_LATENCY_INCREASE_RATIO or more and by at least
  VALIDATION_LATENCY_MIN_INCREASE_MS (a 20 ms endpoint taking 35 ms is noise);
- rates (`error_rate`, `error_rate_5xx`) regress when they grow by VALIDATION_ERROR_RATE_INCREASE
  (absolute);
- shares (`healthy_ratio` of targets, `ready_ratio` of nodes) regress when they drop by
  VALIDATION_HEALTHY_RATIO_DROP (absolute).
A figure missing on either side (no traffic, no samples) is not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.change_validator.environment import ValidatorEnvironment
from handlers.change_validator.measurements import Figures

LATENCY_FIGURES = ("latency_p95_ms", "response_time_ms")
RATE_FIGURES = ("error_rate", "error_rate_5xx")
SHARE_FIGURES = ("healthy_ratio", "ready_ratio")


@dataclass(frozen=True)
class Thresholds:
    latency_increase_ratio: float
    latency_min_increase_ms: float
    error_rate_increase: float
    healthy_ratio_drop: float

    @classmethod
    def from_environment(cls, environment: ValidatorEnvironment) -> Thresholds:
        return cls(
            latency_increase_ratio=environment.validation_latency_increase_ratio,
            latency_min_increase_ms=environment.validation_latency_min_increase_ms,
            error_rate_increase=environment.validation_error_rate_increase,
            healthy_ratio_drop=environment.validation_healthy_ratio_drop,
        )


def moved_figures(before: Figures, after: Figures, thresholds: Thresholds) -> list[dict[str, Any]]:
    """Every figure that moved past its threshold, as `{"subject", "figure", "before", "after",
    "change"}`, in subject order."""
    moved: list[dict[str, Any]] = []
    for subject in sorted(set(before) & set(after)):
        for figure in (*LATENCY_FIGURES, *RATE_FIGURES, *SHARE_FIGURES):
            old, new = before[subject].get(figure), after[subject].get(figure)
            if not isinstance(old, int | float) or not isinstance(new, int | float):
                continue
            change = _regression(figure, float(old), float(new), thresholds)
            if change is not None:
                moved.append(
                    {
                        "subject": subject,
                        "figure": figure,
                        "before": old,
                        "after": new,
                        "change": change,
                    }
                )
    return moved


def _regression(figure: str, old: float, new: float, thresholds: Thresholds) -> str | None:
    """How the figure moved, when that is a regression; else None."""
    if figure in LATENCY_FIGURES:
        growth = new - old
        grew_enough = new >= old * (1 + thresholds.latency_increase_ratio)
        if growth >= thresholds.latency_min_increase_ms and grew_enough:
            relative = f" ({growth / old:+.0%})" if old > 0 else ""
            return f"{growth:+.0f} ms{relative}"
        return None
    if figure in RATE_FIGURES:
        if new - old >= thresholds.error_rate_increase:
            return f"{(new - old) * 100:+.1f} percentage points"
        return None
    if old - new >= thresholds.healthy_ratio_drop:
        return f"{(new - old) * 100:+.1f} percentage points"
    return None


def describe_moved(moved: list[dict[str, Any]]) -> str:
    """One line per moved figure, for the alert."""
    return "; ".join(
        f"{item['subject']} {item['figure']} {item['before']} -> {item['after']} ({item['change']})"
        for item in moved
    )
