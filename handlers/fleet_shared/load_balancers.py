"""The load balancers of an EKS cluster: target health and traffic figures from CloudWatch.

The AWS Load Balancer Controller tags every load balancer it creates with
`elbv2.k8s.aws/cluster` = the cluster's name, so the cluster's load balancers are found by that
tag. For each: its target groups' targets, healthy against registered (DescribeTargetHealth), and
over a window the average target response time, requests and target 5xx responses
(`AWS/ApplicationELB`, dimension `LoadBalancer` = the ARN's `app/<name>/<id>` part). Network load
balancers have target health but no response time or HTTP codes; their traffic figures stay None.

A cluster may have hundreds of load balancers (one per ingress), and ELB takes an account's
Describe requests from a bucket of 40 refilled at 10 a second (the ELB guide's request
throttling), so a reading asks as few as it can: the region's load balancers and target groups in
pages of 400 (ELB's largest), their tags 20 ARNs a call (ELB's most), each target group's health
once (ELB has no call for several), and the traffic of every application load balancer in one
GetMetricData per 500 queries (CloudWatch's most; `metric_data`). One DescribeTargetGroups per
load balancer had doubled a cluster's requests.

A value no metric can have (NaN, an infinity) is left out of the figures and named in `left_out`.
The health monitor judges these figures; the change validator compares them before and after a
change. Given `next_page_allowed`, every request after a reading's first (a next page, a
DescribeTags batch, the target groups, a target group's health, GetMetricData) is
sent only while it answers True, else PagesCutShortError (MetricReadCutShortError for
GetMetricData): an ELB or CloudWatch (or a proxy) answering page after page under new markers
was read until Lambda ended the run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleet_shared.aws_answers import answer_field
from fleet_shared.exceptions import MetricReadCutShortError, PagesCutShortError
from fleet_shared.metric_data import MetricQuery, get_metric_series
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
HEALTHY_STATE = "healthy"


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


def target_groups_by_load_balancer(
    elbv2: Any,
    load_balancer_arns: Collection[str],
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> dict[str, tuple[TargetGroupHealth, ...]]:
    """Registered and healthy targets of each target group of each of `load_balancer_arns`, by
    load balancer ARN, in target group name order (a load balancer without one is left out):
    the region's target groups listed once (each names its load balancers), then each target
    group of those load balancers asked its health once, however many of them it serves. With
    `next_page_allowed`, every request (this is never a reading's first) only while it answers
    True, else PagesCutShortError."""
    wanted = set(load_balancer_arns)
    if not wanted:
        return {}
    serving: list[tuple[str, str, list[str]]] = []
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
            balancers = [
                balancer for balancer in group.get("LoadBalancerArns", []) if balancer in wanted
            ]
            if balancers:
                serving.append((name, arn, balancers))
    by_balancer: dict[str, list[TargetGroupHealth]] = {}
    for name, arn, balancers in sorted(serving):
        _ask_next_request("DescribeTargetHealth", next_page_allowed)
        targets = answer_field(
            elbv2.describe_target_health(TargetGroupArn=arn),
            "DescribeTargetHealth",
            "TargetHealthDescriptions",
        )
        healthy = sum(
            1 for target in targets if target.get("TargetHealth", {}).get("State") == HEALTHY_STATE
        )
        for balancer in balancers:
            by_balancer.setdefault(balancer, []).append(
                TargetGroupHealth(name, len(targets), healthy)
            )
    return {balancer: tuple(groups) for balancer, groups in by_balancer.items()}


def traffic_figures(
    cloudwatch: Any,
    load_balancer_arns: list[str],
    start: datetime,
    end: datetime,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> dict[str, TrafficFigures]:
    """Traffic of each application load balancer between `start` and `end`, by ARN; with
    `next_page_allowed`, every GetMetricData request (this is never a reading's first) only
    while it answers True, else MetricReadCutShortError."""
    queries: list[MetricQuery] = []
    for index, arn in enumerate(load_balancer_arns):
        dimensions = {"LoadBalancer": metric_dimension(arn)}
        for suffix, metric, stat in (
            ("time", "TargetResponseTime", "Average"),
            ("requests", "RequestCount", "Sum"),
            ("errors", "HTTPCode_Target_5XX_Count", "Sum"),
        ):
            queries.append(
                MetricQuery(
                    f"lb{index}_{suffix}",
                    APPLICATION_NAMESPACE,
                    metric,
                    dimensions,
                    stat,
                    METRIC_PERIOD_SECONDS,
                )
            )
    if not queries:
        return {}
    if next_page_allowed is not None and not next_page_allowed():
        raise MetricReadCutShortError
    series = get_metric_series(cloudwatch, queries, start, end, next_page_allowed=next_page_allowed)
    figures: dict[str, TrafficFigures] = {}
    for index, arn in enumerate(load_balancer_arns):
        times = series[f"lb{index}_time"].values
        left_out = (
            f"{query.metric_name}: {summary}"
            for query in queries[3 * index : 3 * index + 3]
            if (summary := series[query.id].left_out_summary()) is not None
        )
        figures[arn] = TrafficFigures(
            # TargetResponseTime is in seconds; the mean of the per-minute averages.
            response_time_ms=round(1000 * sum(times) / len(times), 1) if times else None,
            requests=sum(series[f"lb{index}_requests"].values),
            target_5xx=sum(series[f"lb{index}_errors"].values),
            left_out=tuple(left_out),
        )
    return figures


def cluster_load_balancer_health(
    elbv2: Any,
    cloudwatch: Any,
    cluster: str,
    start: datetime,
    end: datetime,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> list[LoadBalancerHealth]:
    """Every load balancer of `cluster` with its target health now and its traffic over
    `start`..`end`, ordered by name; with `next_page_allowed`, every request after the first
    DescribeLoadBalancers only while it answers True (see the module docstring)."""
    balancers = cluster_load_balancers(elbv2, cluster, next_page_allowed=next_page_allowed)
    applications = [
        balancer["LoadBalancerArn"]
        for balancer in balancers
        if balancer.get("Type") == "application"
    ]
    traffic = traffic_figures(
        cloudwatch, applications, start, end, next_page_allowed=next_page_allowed
    )
    target_groups = target_groups_by_load_balancer(
        elbv2,
        [balancer["LoadBalancerArn"] for balancer in balancers],
        next_page_allowed=next_page_allowed,
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
