"""The cluster's load balancers: healthy against registered targets, response time and 5xx rate.

Load balancers are found by the cluster's tag (`fleet_shared.load_balancers`). The severity is the
worst of: the share of healthy targets against HEALTH_TARGETS_HEALTHY_*_RATIO, the average target
response time over the last HEALTH_LOAD_BALANCER_WINDOW_MINUTES against HEALTH_LATENCY_*_MS (the
endpoints' thresholds: both measure what a caller waits), and the target 5xx rate over the same
window against HEALTH_ERROR_RATE_*. A load balancer with no registered target is critical: it
answers every request with an error.

Targets are counted from ELB's HealthyHostCount and UnHealthyHostCount, the window's latest minute
that has both, and only a target group without them is asked DescribeTargetHealth: a cluster of
hundreds of load balancers is counted in a few GetMetricData calls, where one DescribeTargetHealth
per target group at ELB's request rate outlasted `cluster_time.LISTING_SECONDS` from about 225
load balancers, and the check was cut short on every run.

The readings (GetResources' pages, DescribeLoadBalancers, the region's target groups,
GetMetricData, the health of the target groups the metrics did not count) send each request after
the first only within `cluster_time.LISTING_SECONDS` of the second, about a cluster's turn, else
the check fails alone, naming the reading cut short: an ELB or CloudWatch (or a proxy) answering
page after page under new markers held the cluster until its member calls were refused for lack
of time, and the clusters waiting for their turn were left unstarted.
"""

from __future__ import annotations

from datetime import timedelta

from fleet_shared.alerts import Severity
from fleet_shared.load_balancers import LoadBalancerHealth, cluster_load_balancer_health
from handlers.health_monitor.checks.base import ClusterContext
from handlers.health_monitor.cluster_time import next_request_allowed
from handlers.health_monitor.report import CheckResult, raise_severity, threshold_severity

NAME = "load_balancer"


def run(context: ClusterContext) -> list[CheckResult]:
    """One result per load balancer tagged for the cluster (none when it has none)."""
    end = context.clock.now()
    start = end - timedelta(minutes=context.environment.health_load_balancer_window_minutes)
    balancers = cluster_load_balancer_health(
        context.client("elbv2"),
        context.client("cloudwatch"),
        context.target.name,
        start,
        end,
        tagging=context.client("resourcegroupstaggingapi"),
        next_page_allowed=next_request_allowed(context.deadline),
        target_counts_from_metrics=True,
    )
    return [_judge(context, balancer) for balancer in balancers]


def _judge(context: ClusterContext, balancer: LoadBalancerHealth) -> CheckResult:
    environment = context.environment
    figures = balancer.figures()
    severity = Severity.INFO
    problems: list[str] = []
    ratio = balancer.healthy_ratio
    if ratio is None:
        severity = Severity.CRITICAL
        problems.append("no registered targets")
    elif ratio < environment.health_targets_healthy_critical_ratio:
        severity = Severity.CRITICAL
    elif ratio < environment.health_targets_healthy_warning_ratio:
        severity = Severity.WARNING
    if ratio is not None and ratio < 1:
        problems.append(f"{balancer.healthy} of {balancer.registered} targets healthy")
    response_time = figures["response_time_ms"]
    slow = threshold_severity(
        response_time,
        environment.health_latency_warning_ms,
        environment.health_latency_critical_ms,
    )
    if slow is not None:
        severity = raise_severity(severity, slow)
        problems.append(f"target response time {response_time:.0f} ms")
    error_rate = figures["error_rate_5xx"]
    failing = threshold_severity(
        error_rate, environment.health_error_rate_warning, environment.health_error_rate_critical
    )
    if failing is not None:
        severity = raise_severity(severity, failing)
        problems.append(f"target 5xx rate {error_rate:.1%}")
    # Values left out are not judged (a NaN was read as a slow response), but named.
    left_out = balancer.traffic.left_out if balancer.traffic else ()
    unjudged = [f"left out: {text}" for text in left_out]
    if severity is Severity.INFO:
        healthy = f"{balancer.healthy} of {balancer.registered} targets healthy"
        return CheckResult.ok(NAME, balancer.name, "; ".join([healthy, *unjudged]), **figures)
    detail = "; ".join([*problems, *unjudged])
    return CheckResult.failed(NAME, balancer.name, severity, detail, **figures)
