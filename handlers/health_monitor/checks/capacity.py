"""Desired against ready capacity of each node group, from its Auto Scaling groups.

EKS reports a node group's desired size; the nodes that actually serve are the instances of the
group's Auto Scaling groups (`resources.autoScalingGroups`) that are InService and Healthy. A
group that keeps less than a share of its desired capacity ready is degraded even when EKS still
says ACTIVE (instances failing to launch, a spot pool without capacity).

DescribeAutoScalingGroups asks a next page only within `cluster_time.LISTING_SECONDS` of the
check's first follow-up, else the check fails alone, naming the listing cut short: an Auto
Scaling (or a proxy) answering page after page under new tokens held the cluster until its member
calls were refused for lack of time, and the clusters waiting for their turn were not started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet_shared.alerts import Severity
from fleet_shared.aws_answers import answer_field
from fleet_shared.node_group_listings import auto_scaling_group_names
from fleet_shared.page_tokens import pages
from handlers.health_monitor.checks.base import ClusterContext
from handlers.health_monitor.cluster_time import next_request_allowed
from handlers.health_monitor.report import CheckResult

NAME = "capacity"
DESCRIBE_GROUPS = "DescribeAutoScalingGroups"


def run(context: ClusterContext) -> list[CheckResult]:
    """One result per described node group: ready/desired below the critical ratio is critical,
    below the warning ratio a warning; a group scaled to zero passes."""
    results: list[CheckResult] = []
    autoscaling = None
    next_page_allowed = next_request_allowed(context.deadline)
    for group in context.node_groups:
        if group.description is None:
            continue  # the node group check reports why it could not be described
        # Read when the node group was described: a malformed group made it undescribed.
        names = auto_scaling_group_names(group.description, f"DescribeNodegroup of {group.name}")
        if not names:
            results.append(
                CheckResult.failed(
                    NAME, group.name, Severity.WARNING, "EKS reports no Auto Scaling group"
                )
            )
            continue
        autoscaling = autoscaling or context.client("autoscaling")
        groups = _describe_groups(autoscaling, names, next_page_allowed)
        # A group without its name is not the call's answer: read as not found, or failing the
        # whole cluster's checks on a KeyError, it would be taken for what it is not.
        found = {answer_field(asg, DESCRIBE_GROUPS, "AutoScalingGroupName") for asg in groups}
        missing = sorted(set(names) - found)
        if missing:
            results.append(
                CheckResult.failed(
                    NAME,
                    group.name,
                    Severity.WARNING,
                    f"Auto Scaling group(s) not found: {', '.join(missing)}",
                )
            )
            continue
        results.append(_judge(context, group.name, groups))
    return results


def _describe_groups(
    autoscaling: Any, names: list[str], next_page_allowed: Callable[[], bool]
) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    listing = pages(
        autoscaling,
        DESCRIBE_GROUPS,
        {"AutoScalingGroupNames": names},
        "NextToken",
        next_page_allowed=next_page_allowed,
    )
    for page in listing:
        # Auto Scaling sends the list in every page: a page without it is not the call's, and
        # must not report the node group's groups missing.
        groups.extend(answer_field(page, DESCRIBE_GROUPS, "AutoScalingGroups"))
    return groups


def _judge(context: ClusterContext, name: str, groups: list[dict[str, Any]]) -> CheckResult:
    environment = context.environment
    desired = sum(int(asg.get("DesiredCapacity", 0)) for asg in groups)
    ready = sum(
        1
        for asg in groups
        for instance in asg.get("Instances", [])
        if instance.get("LifecycleState") == "InService"
        and instance.get("HealthStatus") == "Healthy"
    )
    data = {"desired": desired, "ready": ready}
    if desired == 0:
        return CheckResult.ok(NAME, name, "scaled to zero", **data, ratio=1.0)
    ratio = round(ready / desired, 3)
    detail = f"{ready} of {desired} desired instances ready ({ratio:.0%})"
    if ratio < environment.health_capacity_critical_ratio:
        return CheckResult.failed(NAME, name, Severity.CRITICAL, detail, **data, ratio=ratio)
    if ratio < environment.health_capacity_warning_ratio:
        return CheckResult.failed(NAME, name, Severity.WARNING, detail, **data, ratio=ratio)
    return CheckResult.ok(NAME, name, detail, **data, ratio=ratio)
