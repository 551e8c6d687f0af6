"""The figures a change is judged by, measured the same way at the baseline and after the bake.

- `endpoint/<name>`: latency percentiles and error rate of the cluster's health endpoints, from
  the health monitor's recent results in the state table (`fleet_shared.endpoint_history`);
- `load_balancer/<name>`: healthy against registered targets now, and average target response
  time and 5xx rate over the window, of the load balancers tagged for the cluster;
- `node_group/<name>`: ready (InService and Healthy) instances against the desired size (1 for a
  desired size of 0), for the changed node group, or every node group for a cluster version
  change. At the baseline of a
  scaling change, against the smaller of the desired sizes before and after it: EKS shows the
  new size at once, and a scale-up's nodes still starting then are not the health before the
  change (read against the new size, a scale-up whose nodes never came up would pass). Only the
  scaler's record gives the size before; for another scaling change EKS's size on arrival is
  usually the new one, and such a scale-up passes this figure (the doc page says so).

A measurement asks a next page of a member listing (GetResources, ListNodegroups,
DescribeTargetGroups, GetMetricData), and every load-balancer request after the first, only while
`next_page_allowed()` answers True, else it fails with PagesCutShortError or
MetricReadCutShortError: a member (or a proxy) answering page after page under new markers held
the check until Lambda ended it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.endpoint_history import (
    HISTORY_VALUE,
    endpoint_history_key,
    read_results,
    summarise,
)
from fleet_shared.inventory import FleetInventory
from fleet_shared.load_balancers import cluster_load_balancer_health
from fleet_shared.node_group_listings import auto_scaling_group_names, node_group_names
from fleet_shared.state_table import StateTable
from handlers.change_validator.changes import Change

Figures = dict[str, dict[str, Any]]
"""Figures by subject (`endpoint/api`, `load_balancer/k8s-web`, `node_group/system`)."""


@dataclass(frozen=True)
class Window:
    """When to measure: endpoint results and load-balancer traffic between `start` and `end`."""

    start: datetime
    end: datetime


def measure(
    change: Change,
    window: Window,
    *,
    member_client: Callable[[str], Any],
    state: StateTable,
    inventory: FleetInventory,
    desired_before: int | None = None,
    next_page_allowed: Callable[[], bool] | None = None,
) -> Figures:
    """Every figure of the changed cluster over `window`; `desired_before` is the changed node
    group's desired size before the change, given for the baseline of a scaling change, and
    `next_page_allowed` says whether the measurement may read on (see the module docstring)."""
    figures: Figures = {}
    figures.update(endpoint_figures(change, window, state, inventory))
    balancers = cluster_load_balancer_health(
        member_client("elbv2"),
        member_client("cloudwatch"),
        change.cluster,
        window.start,
        window.end,
        tagging=member_client("resourcegroupstaggingapi"),
        next_page_allowed=next_page_allowed,
    )
    for balancer in balancers:
        figures[f"load_balancer/{balancer.name}"] = balancer.figures()
    figures.update(
        node_readiness(
            change,
            member_client("eks"),
            member_client("autoscaling"),
            desired_before,
            next_page_allowed=next_page_allowed,
        )
    )
    return figures


def endpoint_figures(
    change: Change, window: Window, state: StateTable, inventory: FleetInventory
) -> Figures:
    """Latency percentiles and error rate of each health endpoint of the cluster in `window`."""
    cluster = inventory.find_cluster(change.account_id, change.region, change.cluster)
    if cluster is None:
        return {}
    label = f"{change.account_id}/{change.region}/{change.cluster}"
    figures: Figures = {}
    for endpoint in cluster.health_endpoints:
        stored = state.get_value(endpoint_history_key(label, endpoint.name), HISTORY_VALUE)
        results = [
            result for result in read_results(stored) if window.start <= result.at <= window.end
        ]
        figures[f"endpoint/{endpoint.name}"] = summarise(results)
    return figures


def node_readiness(
    change: Change,
    eks: Any,
    autoscaling: Any,
    desired_before: int | None = None,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> Figures:
    """Ready against desired instances of the changed node group (all groups for a cluster
    change, ListNodegroups' next page only while `next_page_allowed()`); with `desired_before`,
    the changed group's ready instances are counted against the smaller of it and its desired
    size now (see the module docstring)."""
    if change.node_group is not None:
        names = [change.node_group]
    else:
        # A listing EKS would not send fails the measure, rather than pass for a cluster
        # without node groups, whose readiness has nothing to regress.
        names = node_group_names(eks, change.cluster, next_page_allowed=next_page_allowed)
    figures: Figures = {}
    for name in sorted(names):
        call = f"DescribeNodegroup of {name}"
        group = answer_field(
            eks.describe_nodegroup(clusterName=change.cluster, nodegroupName=name),
            call,
            "nodegroup",
        )
        desired = int((group.get("scalingConfig") or {}).get("desiredSize") or 0)
        asg_names = auto_scaling_group_names(group, call)
        ready = 0
        if asg_names:
            described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=asg_names)
            # Auto Scaling sends the list in every answer: one without it (not the call's) must
            # not measure no ready node, a regression that is not there.
            groups = answer_field(described, "DescribeAutoScalingGroups", "AutoScalingGroups")
            ready = sum(
                1
                for asg in groups
                for instance in asg.get("Instances", [])
                if instance.get("LifecycleState") == "InService"
                and instance.get("HealthStatus") == "Healthy"
            )
        against = desired
        if desired_before is not None and name == change.node_group:
            against = min(desired, desired_before)
        figure: dict[str, Any] = {
            "status": group.get("status"),
            "desired": desired,
            "ready": ready,
            # No node wanted is none missing: a scale-up from 0 whose nodes never come up must
            # read as a drop from 1, not as nothing to compare.
            "ready_ratio": round(min(ready / against, 1.0), 4) if against else 1.0,
        }
        if against != desired:
            figure["desired_before"] = against
        figures[f"node_group/{name}"] = figure
    return figures
