"""Baseline against bake: which figures moved past their thresholds, and by how much.

Three kinds of figure, each with its rule (thresholds from the environment):
- latencies (`latency_p95_ms` of an endpoint, `response_time_ms` of a load balancer) regress when
  they grow by VALIDATION_LATENCY_INCREASE_RATIO or more and by at least
  VALIDATION_LATENCY_MIN_INCREASE_MS (a 20 ms endpoint taking 35 ms is noise);
- rates (`error_rate`, `error_rate_5xx`) regress when they grow by VALIDATION_ERROR_RATE_INCREASE
  (absolute);
- shares (`healthy_ratio` of targets, `ready_ratio` of nodes) regress when they drop by
  VALIDATION_HEALTHY_RATIO_DROP (absolute).
A figure missing on either side (no traffic, no samples) is not compared, and neither are the
latencies and rates of a subject whose baseline holds fewer than MIN_BASELINE_SAMPLES samples
(`thin_baseline`): the validation then says it had not enough baseline rather than pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.change_validator.environment import ValidatorEnvironment
from handlers.change_validator.measurements import Figures

LATENCY_FIGURES = ("latency_p95_ms", "response_time_ms")
RATE_FIGURES = ("error_rate", "error_rate_5xx")
SHARE_FIGURES = ("healthy_ratio", "ready_ratio")

MIN_BASELINE_SAMPLES = 3
"""The fewest samples (an endpoint's health monitor results, a load balancer's requests) a
subject's baseline must hold for its figures to judge a change. The health monitor probes every
SCHEDULED_RUN_MINUTES (5), so the 15-minute baseline holds 3 results, and it judges an error rate
itself from 3 at the least (HEALTH_ERROR_RATE_MIN_SAMPLES). From one or two, the p95 is the slower
probe, and one failed probe is an error rate of 50 or 100 %: one cold connection before the change
would hide a regression after it, or invent one."""


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


def thin_baseline(before: Figures) -> dict[str, int]:
    """The subjects of the baseline `before` measured from fewer than MIN_BASELINE_SAMPLES
    samples, with their count: an endpoint with fewer results (none included: the endpoint is
    probed, but not in the baseline), a load balancer with some traffic but fewer requests (one
    without traffic has no traffic figures, and its healthy share is read, not sampled)."""
    thin: dict[str, int] = {}
    for subject, figures in before.items():
        if subject.startswith("endpoint/"):
            samples = figures.get("samples")
            count = samples if isinstance(samples, int | float) else 0
        elif subject.startswith("load_balancer/") and figures.get("requests"):
            count = figures["requests"]
        else:
            continue
        if count < MIN_BASELINE_SAMPLES:
            thin[subject] = int(count)
    return thin


def moved_figures(before: Figures, after: Figures, thresholds: Thresholds) -> list[dict[str, Any]]:
    """Every figure that moved past its threshold, as `{"subject", "figure", "before", "after",
    "change"}`, in subject order; the latencies and rates of a subject with a thin baseline
    are left out (a share is read when measured, not sampled)."""
    thin = thin_baseline(before)
    moved: list[dict[str, Any]] = []
    for subject in sorted(set(before) & set(after)):
        sampled = (*LATENCY_FIGURES, *RATE_FIGURES) if subject not in thin else ()
        for figure in (*sampled, *SHARE_FIGURES):
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
