"""The load balancers of an EKS cluster: target health and traffic figures from CloudWatch.

The AWS Load Balancer Controller tags every load balancer it creates with
`elbv2.k8s.aws/cluster` = the cluster's name, so the cluster's load balancers are found by that
tag. For each: its target groups' targets, healthy against registered, and over a window the
average target response time, requests and target 5xx responses (`AWS/ApplicationELB`, dimension
`LoadBalancer` = the ARN's `app/<name>/<id>` part). Network load balancers have target health but
no response time or HTTP codes; their traffic figures stay None.

A cluster may have hundreds of load balancers (one per ingress), and ELB takes an account's
Describe requests from a bucket of 40 refilled at 10 a second (the ELB guide's request
throttling), so a reading asks as few as it can: the region's load balancers and target groups in
pages of 400 (ELB's largest), their tags 20 ARNs a call (ELB's most), and the traffic of every
application load balancer in one GetMetricData per 500 queries (CloudWatch's most;
`metric_data`). One DescribeTargetGroups per load balancer had doubled a cluster's requests.

Target health comes one of two ways. DescribeTargetHealth, one request per target group (ELB has no
call for several), counts the targets now: the change validator's reading, whose measurement time
is sized for 300 load balancers at ELB's rate. That is N + N/20 + 2 ELB requests for N load
balancers with a target group each, a tenth of a second each past the burst of 40: more than the
20 s the health monitor gives a cluster's reads (`LISTING_SECONDS`) from about 225 load balancers
(fewer when the region's other clusters, checked at the same time, draw on the same bucket), so
such a cluster's reading was cut short on every run and its load balancers never judged. With
`target_counts_from_metrics` (the health monitor's) each target group is counted per load balancer
from ELB's own `HealthyHostCount` and `UnHealthyHostCount` (dimensions `TargetGroup`,
`LoadBalancer`; `AWS/ApplicationELB` or `AWS/NetworkELB`) in the same GetMetricData as the traffic,
two queries a pair: no ELB request per target group, 300 load balancers in one more GetMetricData
call (3 for their 1,500 queries). ELB publishes them a minute at a time, a minute or two late, so
the counts are those of the latest minute in the window that has both: the fewest healthy and the
most unhealthy targets of that minute, a target that changed state in it counted once, as
unhealthy; registered is their sum (targets still registering or draining, which
DescribeTargetHealth counts, are in neither). A pair without that minute (no data: a load balancer
created minutes ago, a window shorter than the delay, a target group whose health checks are off)
or counting no target at all has its target group asked DescribeTargetHealth as before, so "no
registered targets" is only ever what ELB answers for the target group now, never a metric not
published. The alternatives weighed: reading the region's load balancers, tags and target groups
once for all its clusters saves N/20 + 2 requests of a cluster, not its N DescribeTargetHealth; a
time share growing with the count would hold the run's other clusters and the region's bucket as
long.

A value no metric can have (NaN, an infinity) is left out of the figures and named in `left_out`.
The health monitor judges these figures; the change validator compares them before and after a
change. Given `next_page_allowed`, every request after a reading's first (a next page, a
DescribeTags batch, the target groups, GetMetricData, a target group's health) is
sent only while it answers True, else PagesCutShortError (MetricReadCutShortError for
GetMetricData): an ELB or CloudWatch (or a proxy) answering page after page under new markers
was read until Lambda ended the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.exceptions import MetricReadCutShortError, PagesCutShortError
from fleet_shared.metric_data import MetricQuery, MetricSeries, get_metric_series
from fleet_shared.page_tokens import pages

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
"""The tag the AWS Load Balancer Controller puts on the load balancers of a cluster."""

DESCRIBE_LOAD_BALANCERS = "DescribeLoadBalancers"
DESCRIBE_TAGS_BATCH = 20
"""DescribeTags accepts at most 20 resource ARNs per call."""
ELB_PAGE_SIZE = 400
"""The most load balancers or target groups DescribeLoadBalancers and DescribeTargetGroups answer
in one page (their `PageSize`; unsent, a page may hold fewer)."""

METRIC_PERIOD_SECONDS = 60
APPLICATION_NAMESPACE = "AWS/ApplicationELB"
TARGET_COUNT_NAMESPACES = {"application": APPLICATION_NAMESPACE, "network": "AWS/NetworkELB"}
"""Where ELB publishes a target group's HealthyHostCount and UnHealthyHostCount at a load
balancer, by the load balancer's `Type` (a gateway load balancer's target groups, which the
controller never creates, are asked DescribeTargetHealth)."""
HEALTHY_STATE = "healthy"

TargetCounts = tuple[int, int]
"""Registered and healthy targets of a target group."""
ServedTargetGroup = tuple[str, str, tuple[str, ...]]
"""A target group's name and ARN, and the load balancers read that forward to it (a tuple, not a
dataclass: building one at import costs a handler's cold start more than all of this module's
functions)."""


@dataclass(frozen=True)
class TargetGroupHealth:
    """Registered and healthy targets of one target group."""

    name: str
    registered: int
    healthy: int


@dataclass(frozen=True)
class TrafficFigures:
    """An application load balancer's traffic over a window (None when it reported nothing)."""

    response_time_ms: float | None
    requests: float
    target_5xx: float
    left_out: tuple[str, ...] = ()
    """Per metric whose answer held values no metric can have (`MetricSeries.left_out`), what
    was left out of the figures, for a person."""

    @property
    def error_rate(self) -> float | None:
        """Target 5xx responses per request; None without requests."""
        return round(self.target_5xx / self.requests, 4) if self.requests else None


@dataclass(frozen=True)
class LoadBalancerHealth:
    """One load balancer of the cluster: its target groups and its traffic over the window."""

    name: str
    arn: str
    kind: str
    target_groups: tuple[TargetGroupHealth, ...]
    traffic: TrafficFigures | None

    @property
    def registered(self) -> int:
        return sum(group.registered for group in self.target_groups)

    @property
    def healthy(self) -> int:
        return sum(group.healthy for group in self.target_groups)

    @property
    def healthy_ratio(self) -> float | None:
        """Healthy targets per registered target; None without registered targets."""
        return round(self.healthy / self.registered, 4) if self.registered else None

    def figures(self) -> dict[str, Any]:
        """The figures as a JSON object (reports, validation records)."""
        traffic = self.traffic
        return {
            "registered": self.registered,
            "healthy": self.healthy,
            "healthy_ratio": self.healthy_ratio,
            "response_time_ms": traffic.response_time_ms if traffic else None,
            "requests": traffic.requests if traffic else None,
            "error_rate_5xx": traffic.error_rate if traffic else None,
        }


def metric_dimension(load_balancer_arn: str) -> str:
    """The `LoadBalancer` dimension of a load balancer: `app/<name>/<id>` from its ARN."""
    return load_balancer_arn.split(":loadbalancer/", 1)[-1]


def target_group_dimension(target_group_arn: str) -> str:
    """The `TargetGroup` dimension of a target group: `targetgroup/<name>/<id>` from its ARN."""
    return target_group_arn.rsplit(":", 1)[-1]


def cluster_load_balancers(
    elbv2: Any, cluster: str, *, next_page_allowed: Callable[[], bool] | None = None
) -> list[dict[str, Any]]:
    """The load balancers tagged for `cluster`, as DescribeLoadBalancers describes them
    (`load_balancers_by_cluster`)."""
    return load_balancers_by_cluster(elbv2, next_page_allowed=next_page_allowed).get(cluster, [])


def load_balancers_by_cluster(
    elbv2: Any, *, next_page_allowed: Callable[[], bool] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The load balancers of the client's account and region tagged for a cluster, as
    DescribeLoadBalancers describes them, by the cluster their `CLUSTER_TAG` names (one listing
    serves every cluster of the region; one without the tag is no cluster's). With
    `next_page_allowed`, every request after the first (a next page, a DescribeTags batch) is
    sent only while it answers True, else PagesCutShortError: an ELB (or a proxy) answering page
    after page under new markers was listed until Lambda ended the run at its timeout."""

    described: list[dict[str, Any]] = []
    # ELBv2 sends each list below in every answer, empty or not: an answer without it is not
    # the call's, and must not pass for a cluster without load balancers or targets.
    # Nor is one listing a load balancer without its ARN or name, a tag without its key or a
    # tag description without its ARN: read with a KeyError, which no caller takes for one
    # call's failure, it failed every check of the cluster in health_monitor.
    listing = pages(
        elbv2,
        DESCRIBE_LOAD_BALANCERS,
        {"PageSize": ELB_PAGE_SIZE},
        "Marker",
        answer_token_field="NextMarker",
        next_page_allowed=next_page_allowed,
    )
    for page in listing:
        for balancer in answer_field(page, DESCRIBE_LOAD_BALANCERS, "LoadBalancers"):
            answer_field(balancer, DESCRIBE_LOAD_BALANCERS, "LoadBalancerArn")
            answer_field(balancer, DESCRIBE_LOAD_BALANCERS, "LoadBalancerName")
            described.append(balancer)
    cluster_of: dict[str, str] = {}
    arns = [balancer["LoadBalancerArn"] for balancer in described]
    for offset in range(0, len(arns), DESCRIBE_TAGS_BATCH):
        batch = arns[offset : offset + DESCRIBE_TAGS_BATCH]
        _ask_next_request("DescribeTags", next_page_allowed)
        answer = elbv2.describe_tags(ResourceArns=batch)
        for description in answer_field(answer, "DescribeTags", "TagDescriptions"):
            tags = {
                answer_field(tag, "DescribeTags", "Key"): tag.get("Value", "")
                for tag in description.get("Tags", [])
            }
            if CLUSTER_TAG in tags:
                arn = answer_field(description, "DescribeTags", "ResourceArn")
                cluster_of[arn] = tags[CLUSTER_TAG]
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for balancer in described:
        cluster = cluster_of.get(balancer["LoadBalancerArn"])
        if cluster is not None:
            by_cluster.setdefault(cluster, []).append(balancer)
    return by_cluster


def _ask_next_request(operation: str, next_page_allowed: Callable[[], bool] | None) -> None:
    """Let a reading send its next `operation` request only while `next_page_allowed()` answers
    True (always without it), else PagesCutShortError."""
    if next_page_allowed is not None and not next_page_allowed():
        raise PagesCutShortError(operation)


def served_target_groups(
    elbv2: Any,
    load_balancer_arns: Collection[str],
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> list[ServedTargetGroup]:
    """The target groups that `load_balancer_arns` forward to, in name order, each with those of
    them it serves: the region's target groups listed once (each names its load balancers). With
    `next_page_allowed`, every request (this is never a reading's first) only while it answers
    True, else PagesCutShortError."""
    wanted = set(load_balancer_arns)
    if not wanted:
        return []
    served: list[ServedTargetGroup] = []
    _ask_next_request("DescribeTargetGroups", next_page_allowed)
    listing = pages(
        elbv2,
        "DescribeTargetGroups",
        {"PageSize": ELB_PAGE_SIZE},
        "Marker",
        answer_token_field="NextMarker",
        next_page_allowed=next_page_allowed,
    )
    for page in listing:
        for group in answer_field(page, "DescribeTargetGroups", "TargetGroups"):
            arn = answer_field(group, "DescribeTargetGroups", "TargetGroupArn")
            name = answer_field(group, "DescribeTargetGroups", "TargetGroupName")
            # A target group no listener or rule forwards to serves no load balancer (its list
            # empty, or not sent: the model leaves it optional).
            balancers = tuple(
                balancer for balancer in group.get("LoadBalancerArns", []) if balancer in wanted
            )
            if balancers:
                served.append((name, arn, balancers))
    return sorted(served)


def target_groups_by_load_balancer(
    elbv2: Any,
    groups: Collection[ServedTargetGroup],
    counted: Mapping[tuple[str, str], TargetCounts],
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> dict[str, tuple[TargetGroupHealth, ...]]:
    """Registered and healthy targets of each of `groups` at each load balancer it serves, by
    load balancer ARN, in the order of `groups`: those `counted` holds (by target group and load
    balancer ARN) when it holds the group at every one of them, else the group asked
    DescribeTargetHealth once, however many it serves. With `next_page_allowed`, every request
    (this is never a reading's first) only while it answers True, else PagesCutShortError."""
    by_balancer: dict[str, list[TargetGroupHealth]] = {}
    for name, arn, balancers in groups:
        answered = [counted.get((arn, balancer)) for balancer in balancers]
        counts = [found for found in answered if found is not None]
        if len(counts) < len(balancers):
            counts = [_target_health(elbv2, arn, next_page_allowed)] * len(balancers)
        for balancer, (registered, healthy) in zip(balancers, counts, strict=True):
            by_balancer.setdefault(balancer, []).append(
                TargetGroupHealth(name, registered, healthy)
            )
    return {balancer: tuple(found) for balancer, found in by_balancer.items()}


def _target_health(
    elbv2: Any, target_group_arn: str, next_page_allowed: Callable[[], bool] | None
) -> TargetCounts:
    """Registered and healthy targets of one target group now (DescribeTargetHealth)."""
    _ask_next_request("DescribeTargetHealth", next_page_allowed)
    targets = answer_field(
        elbv2.describe_target_health(TargetGroupArn=target_group_arn),
        "DescribeTargetHealth",
        "TargetHealthDescriptions",
    )
    healthy = sum(
        1 for target in targets if target.get("TargetHealth", {}).get("State") == HEALTHY_STATE
    )
    return len(targets), healthy


def target_counts(healthy: MetricSeries, unhealthy: MetricSeries) -> TargetCounts | None:
    """Registered and healthy targets of a target group at a load balancer from its
    HealthyHostCount minimums and UnHealthyHostCount maximums: the latest minute both have,
    registered the sum of the two; None without such a minute, or when it counts no target
    (for DescribeTargetHealth to say whether any is registered)."""
    fewest_healthy = dict(zip(healthy.timestamps, healthy.values, strict=True))
    most_unhealthy = dict(zip(unhealthy.timestamps, unhealthy.values, strict=True))
    minutes = fewest_healthy.keys() & most_unhealthy.keys()
    if not minutes:
        return None
    minute = max(minutes)
    # Counts ELB publishes whole; rounded, should one not be, towards the less healthy.
    healthy_count = math.floor(fewest_healthy[minute])
    unhealthy_count = math.ceil(most_unhealthy[minute])
    if min(healthy_count, unhealthy_count) < 0 or healthy_count + unhealthy_count == 0:
        return None
    return healthy_count + unhealthy_count, healthy_count


TRAFFIC_METRICS = (
    ("time", "TargetResponseTime", "Average"),
    ("requests", "RequestCount", "Sum"),
    ("errors", "HTTPCode_Target_5XX_Count", "Sum"),
)
"""An application load balancer's traffic: query id suffix, metric and statistic."""
TARGET_COUNT_METRICS = (
    ("healthy", "HealthyHostCount", "Minimum"),
    ("unhealthy", "UnHealthyHostCount", "Maximum"),
)
"""A target group's counts at a load balancer: query id suffix, metric and statistic."""


def _metric_queries(
    prefix: str,
    namespace: str,
    dimensions: dict[str, str],
    metrics: tuple[tuple[str, str, str], ...],
) -> list[MetricQuery]:
    """One query per metric of `metrics`, with the id `<prefix>_<suffix>`."""
    return [
        MetricQuery(
            f"{prefix}_{suffix}", namespace, metric, dimensions, stat, METRIC_PERIOD_SECONDS
        )
        for suffix, metric, stat in metrics
    ]


def _traffic_queries(load_balancer_arns: list[str]) -> list[MetricQuery]:
    """Three queries per application load balancer, `lb<index>_<time|requests|errors>`."""
    return [
        query
        for index, arn in enumerate(load_balancer_arns)
        for query in _metric_queries(
            f"lb{index}",
            APPLICATION_NAMESPACE,
            {"LoadBalancer": metric_dimension(arn)},
            TRAFFIC_METRICS,
        )
    ]


def _count_queries(pairs: list[tuple[str, str, str]]) -> list[MetricQuery]:
    """Two queries per (target group, load balancer, namespace) of `pairs`,
    `tg<index>_<healthy|unhealthy>`."""
    return [
        query
        for index, (group, balancer, namespace) in enumerate(pairs)
        for query in _metric_queries(
            f"tg{index}",
            namespace,
            {
                "LoadBalancer": metric_dimension(balancer),
                "TargetGroup": target_group_dimension(group),
            },
            TARGET_COUNT_METRICS,
        )
    ]


def load_balancer_metrics(
    cloudwatch: Any,
    load_balancer_arns: list[str],
    counted_pairs: list[tuple[str, str, str]],
    start: datetime,
    end: datetime,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> tuple[dict[str, TrafficFigures], dict[tuple[str, str], TargetCounts]]:
    """Traffic of each application load balancer of `load_balancer_arns` between `start` and
    `end`, by ARN, and the targets each (target group, load balancer, namespace) of
    `counted_pairs` counts in that window (`target_counts`), by target group and load balancer
    ARN, those without counts left out; one GetMetricData per 500 queries. With
    `next_page_allowed`, every GetMetricData request (this is never a reading's first) only
    while it answers True, else MetricReadCutShortError."""
    traffic_queries = _traffic_queries(load_balancer_arns)
    queries = [*traffic_queries, *_count_queries(counted_pairs)]
    if not queries:
        return {}, {}
    if next_page_allowed is not None and not next_page_allowed():
        raise MetricReadCutShortError
    series = get_metric_series(cloudwatch, queries, start, end, next_page_allowed=next_page_allowed)
    figures: dict[str, TrafficFigures] = {}
    for index, arn in enumerate(load_balancer_arns):
        times = series[f"lb{index}_time"].values
        left_out = (
            f"{query.metric_name}: {summary}"
            for query in traffic_queries[3 * index : 3 * index + 3]
            if (summary := series[query.id].left_out_summary()) is not None
        )
        figures[arn] = TrafficFigures(
            # TargetResponseTime is in seconds; the mean of the per-minute averages.
            response_time_ms=round(1000 * sum(times) / len(times), 1) if times else None,
            requests=sum(series[f"lb{index}_requests"].values),
            target_5xx=sum(series[f"lb{index}_errors"].values),
            left_out=tuple(left_out),
        )
    counted: dict[tuple[str, str], TargetCounts] = {}
    for index, (group, balancer, _) in enumerate(counted_pairs):
        counts = target_counts(series[f"tg{index}_healthy"], series[f"tg{index}_unhealthy"])
        if counts is not None:
            counted[group, balancer] = counts
    return figures, counted


def cluster_load_balancer_health(
    elbv2: Any,
    cloudwatch: Any,
    cluster: str,
    start: datetime,
    end: datetime,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
    target_counts_from_metrics: bool = False,
) -> list[LoadBalancerHealth]:
    """Every load balancer of `cluster` with its target health and its traffic over
    `start`..`end`, ordered by name. The target health is DescribeTargetHealth's now, or with
    `target_counts_from_metrics` that of the window's latest minute of ELB's target counts where
    it has them (see the module docstring). With `next_page_allowed`, every request after the
    first DescribeLoadBalancers only while it answers True."""
    balancers = cluster_load_balancers(elbv2, cluster, next_page_allowed=next_page_allowed)
    types = {balancer["LoadBalancerArn"]: balancer.get("Type") for balancer in balancers}
    groups = served_target_groups(elbv2, list(types), next_page_allowed=next_page_allowed)
    counted_pairs = [
        (arn, balancer, TARGET_COUNT_NAMESPACES[str(types[balancer])])
        for _, arn, balancers in groups
        for balancer in balancers
        if target_counts_from_metrics and types[balancer] in TARGET_COUNT_NAMESPACES
    ]
    applications = [arn for arn, kind in types.items() if kind == "application"]
    traffic, counted = load_balancer_metrics(
        cloudwatch, applications, counted_pairs, start, end, next_page_allowed=next_page_allowed
    )
    target_groups = target_groups_by_load_balancer(
        elbv2, groups, counted, next_page_allowed=next_page_allowed
    )
    found = [
        LoadBalancerHealth(
            name=balancer["LoadBalancerName"],
            arn=balancer["LoadBalancerArn"],
            kind=str(balancer.get("Type", "application")),
            target_groups=target_groups.get(balancer["LoadBalancerArn"], ()),
            traffic=traffic.get(balancer["LoadBalancerArn"]),
        )
        for balancer in balancers
    ]
    return sorted(found, key=lambda balancer: balancer.name)
