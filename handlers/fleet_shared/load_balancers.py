"""The load balancers of an EKS cluster: target health and traffic figures from CloudWatch.

The AWS Load Balancer Controller tags every load balancer it creates with
`elbv2.k8s.aws/cluster` = the cluster's name, so the cluster's load balancers are found by that
tag. For each: its target groups' targets, healthy against registered, and over a window the
average target response time, requests and target 5xx responses (`AWS/ApplicationELB`, dimension
`LoadBalancer` = the ARN's `app/<name>/<id>` part). Network load balancers have target health but
no response time or HTTP codes; their traffic figures stay None.

A cluster may have hundreds of load balancers (one per ingress), and ELB takes an account's
Describe requests from a bucket of 40 refilled at 10 a second (the ELB guide's request
throttling), shared with the cluster's own controller, so a reading asks as few as it can: the
cluster's load balancers found by their tag, the region's target groups in pages of 400 (ELB's
largest), and the traffic of every application load balancer in one GetMetricData per 500
queries (CloudWatch's most; `metric_data`). One DescribeTargetGroups per load balancer had
doubled a cluster's requests.

Finding them: ELBv2 cannot filter by tag, and listing the region's load balancers (pages of 400)
then DescribeTags for all of them (20 ARNs a call) cost a cluster ceil(N/400) + ceil(N/20) ELB
requests for the N load balancers of the region, however few were its own: 105 a cluster of each
run in a region of 2,000 shared with other workloads. The Resource Groups Tagging API's
GetResources filters by the tag and type instead (`elbv2.k8s.aws/cluster` = the cluster, at most
20 clusters a request; `elasticloadbalancing:loadbalancer`; 100 a page, tags included, off ELB's
bucket), and DescribeLoadBalancers by `LoadBalancerArns` (20 a call) gives their type and
scheme: ceil(K/100) + ceil(K/20) requests for the K tagged for the clusters asked, ceil(K/20) of
them ELB's, never more ELB requests than the listing took. The other way weighed, one region
listing shared by a run's clusters (performance_analyzer's `RegionLoadBalancers` shares the
finding of its run's clusters still), saves a region's repeats but not its 105. GetResources
needs `tag:GetResources`, a grant without resource-level permissions (`*`). A member role
without it (a member stack not updated since; an SCP refusing it) is refused AccessDenied, and
the reading falls back to the listing and DescribeTags, as before, logging the grant refused:
the same load balancers, at the old cost. The Tagging API's index is eventually consistent: a
load balancer created moments ago may be missing from it, and one deleted may stay in it for a
while ("tagged or previously tagged resources"). A missing one is not read in that run:
health_monitor (every 5 minutes) judges it from a later run; change_validator compares only load
balancers measured at the baseline and after the bake, so one missing on a side is compared in
neither, as one created during the bake always was; performance_analyzer (every 4 hours) reads
its latency from its next run. A deleted one makes ELBv2 refuse the DescribeLoadBalancers naming
it (LoadBalancerNotFound, the whole call): the ARNs from that call on are then looked for in one
listing of the region, ceil(N/400) requests more, so a load balancer gone is never judged as one
without targets.

Target health comes one of two ways. DescribeTargetHealth, one request per target group (ELB has no
call for several), counts the targets now: the change validator's reading, whose measurement time
is sized for 300 load balancers at ELB's rate. That is N + N/20 + 1 ELB requests for N load
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
DescribeLoadBalancers or DescribeTags batch, the target groups, GetMetricData, a target group's
health) is sent only while it answers True, else PagesCutShortError (MetricReadCutShortError for
GetMetricData): an ELB or CloudWatch (or a proxy) answering page after page under new markers
was read until Lambda ended the run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from fleet_shared.aws_answers import answer_field
from fleet_shared.exceptions import MetricReadCutShortError, PagesCutShortError
from fleet_shared.member_calls import ACCESS_DENIED_CODES
from fleet_shared.metric_data import MetricQuery, MetricSeries, get_metric_series
from fleet_shared.page_tokens import pages

_logger = logging.getLogger(__name__)

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
"""The tag the AWS Load Balancer Controller puts on the load balancers of a cluster."""

DESCRIBE_LOAD_BALANCERS = "DescribeLoadBalancers"
DESCRIBE_BY_ARN_BATCH = 20
"""DescribeLoadBalancers takes at most 20 `LoadBalancerArns` a call."""
LOAD_BALANCER_NOT_FOUND = "LoadBalancerNotFound"
"""ELBv2's refusal of a DescribeLoadBalancers naming a load balancer it does not have."""
DESCRIBE_TAGS_BATCH = 20
"""DescribeTags accepts at most 20 resource ARNs per call."""
GET_RESOURCES = "GetResources"
TAGGING_GRANT = "tag:GetResources"
"""The member roles' grant of GetResources (no resource-level permissions: `*`)."""
GET_RESOURCES_PAGE_SIZE = 100
"""The most resources GetResources answers in one page (its `ResourcesPerPage`)."""
TAG_FILTER_VALUES = 20
"""The most values a GetResources tag filter takes: the clusters one listing asks for."""
TAGGED_RESOURCE_TYPE = "elasticloadbalancing:loadbalancer"
"""GetResources' type of load balancers: ELBv2's and classic ones."""
ELBV2_KINDS = ("app/", "net/", "gwy/")
"""How the ARN of an application, network or gateway load balancer goes on after
`:loadbalancer/` (a classic load balancer's goes on with its name)."""
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
    elbv2: Any,
    cluster: str,
    *,
    tagging: Any,
    next_page_allowed: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """The load balancers tagged for `cluster`, as DescribeLoadBalancers describes them
    (`load_balancers_by_cluster`)."""
    found = load_balancers_by_cluster(
        elbv2, [cluster], tagging=tagging, next_page_allowed=next_page_allowed
    )
    return found.get(cluster, [])


def load_balancers_by_cluster(
    elbv2: Any,
    clusters: Collection[str],
    *,
    tagging: Any,
    next_page_allowed: Callable[[], bool] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The load balancers of the client's account and region tagged for one of `clusters`, as
    DescribeLoadBalancers describes them, by the cluster their `CLUSTER_TAG` names: found with
    the Resource Groups Tagging API client `tagging` (GetResources), then described by ARN; where
    IAM refuses GetResources, the region's load balancers listed and their tags read instead (see
    the module docstring). With `next_page_allowed`, every request after the first is sent only
    while it answers True, else PagesCutShortError: an ELB (or a proxy) answering page after
    page under new markers was listed until Lambda ended the run at its timeout."""
    wanted = sorted(set(clusters))
    if not wanted:
        return {}
    try:
        cluster_of = _tagged_load_balancers(tagging, wanted, next_page_allowed)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ACCESS_DENIED_CODES:
            raise
        _logger.warning(
            "%s refused: the member role predates the grant (update the member stack); "
            "the region's load balancers are listed with their tags instead",
            TAGGING_GRANT,
        )
        _ask_next_request(DESCRIBE_LOAD_BALANCERS, next_page_allowed)
        described = _region_load_balancers(elbv2, next_page_allowed)
        cluster_of = {
            arn: cluster
            for arn, cluster in _clusters_by_tags(
                elbv2, [balancer["LoadBalancerArn"] for balancer in described], next_page_allowed
            ).items()
            if cluster in wanted
        }
    else:
        described = _described_by_arn(elbv2, sorted(cluster_of), next_page_allowed)
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for balancer in described:
        cluster = cluster_of.get(balancer["LoadBalancerArn"])
        if cluster is not None:
            by_cluster.setdefault(cluster, []).append(balancer)
    return by_cluster


def _tagged_load_balancers(
    tagging: Any, clusters: list[str], next_page_allowed: Callable[[], bool] | None
) -> dict[str, str]:
    """The ELBv2 load balancers GetResources answers tagged for one of `clusters` (each
    request for at most TAG_FILTER_VALUES of them), by ARN: the cluster each is tagged for."""
    wanted = set(clusters)
    cluster_of: dict[str, str] = {}
    for offset in range(0, len(clusters), TAG_FILTER_VALUES):
        if offset:
            _ask_next_request(GET_RESOURCES, next_page_allowed)
        request = {
            "TagFilters": [
                {"Key": CLUSTER_TAG, "Values": clusters[offset : offset + TAG_FILTER_VALUES]}
            ],
            "ResourceTypeFilters": [TAGGED_RESOURCE_TYPE],
            "ResourcesPerPage": GET_RESOURCES_PAGE_SIZE,
        }
        listing = pages(
            tagging, GET_RESOURCES, request, "PaginationToken", next_page_allowed=next_page_allowed
        )
        for page in listing:
            for mapping in answer_field(page, GET_RESOURCES, "ResourceTagMappingList"):
                arn = answer_field(mapping, GET_RESOURCES, "ResourceARN")
                tags = {
                    answer_field(tag, GET_RESOURCES, "Key"): tag.get("Value", "")
                    for tag in mapping.get("Tags", [])
                }
                cluster = tags.get(CLUSTER_TAG)
                # The type filter also answers classic load balancers, which ELBv2 does not
                # describe (refusing the whole call), as its listing never held them.
                if cluster in wanted and metric_dimension(arn).startswith(ELBV2_KINDS):
                    cluster_of[arn] = cluster
    return cluster_of


def _described_by_arn(
    elbv2: Any, arns: list[str], next_page_allowed: Callable[[], bool] | None
) -> list[dict[str, Any]]:
    """`arns`' load balancers as DescribeLoadBalancers describes them, DESCRIBE_BY_ARN_BATCH a
    call. ELBv2 refuses a whole call naming one it does not have (LoadBalancerNotFound): one
    deleted since GetResources indexed it, which may answer it for a while after; the ARNs from
    that call on are then looked for in one listing of the region, those it lacks left out."""
    described: list[dict[str, Any]] = []
    for offset in range(0, len(arns), DESCRIBE_BY_ARN_BATCH):
        _ask_next_request(DESCRIBE_LOAD_BALANCERS, next_page_allowed)
        try:
            answer = elbv2.describe_load_balancers(
                LoadBalancerArns=arns[offset : offset + DESCRIBE_BY_ARN_BATCH]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != LOAD_BALANCER_NOT_FOUND:
                raise
            _ask_next_request(DESCRIBE_LOAD_BALANCERS, next_page_allowed)
            left = set(arns[offset:])
            listed = _region_load_balancers(elbv2, next_page_allowed)
            return described + [
                balancer for balancer in listed if balancer["LoadBalancerArn"] in left
            ]
        described.extend(_read_load_balancers(answer))
    return described


def _region_load_balancers(
    elbv2: Any, next_page_allowed: Callable[[], bool] | None
) -> list[dict[str, Any]]:
    """Every load balancer of the region, in pages of ELB_PAGE_SIZE."""
    listing = pages(
        elbv2,
        DESCRIBE_LOAD_BALANCERS,
        {"PageSize": ELB_PAGE_SIZE},
        "Marker",
        answer_token_field="NextMarker",
        next_page_allowed=next_page_allowed,
    )
    return [balancer for page in listing for balancer in _read_load_balancers(page)]


def _read_load_balancers(answer: object) -> list[dict[str, Any]]:
    """The load balancers a DescribeLoadBalancers answer holds, each with its ARN and name."""
    # ELBv2 sends the list in every answer, empty or not: an answer without it is not the
    # call's, and must not pass for a cluster without load balancers. Nor is one describing a
    # load balancer without its ARN or name: read with a KeyError, which no caller takes for
    # one call's failure, it failed every check of the cluster in health_monitor.
    balancers = answer_field(answer, DESCRIBE_LOAD_BALANCERS, "LoadBalancers")
    for balancer in balancers:
        answer_field(balancer, DESCRIBE_LOAD_BALANCERS, "LoadBalancerArn")
        answer_field(balancer, DESCRIBE_LOAD_BALANCERS, "LoadBalancerName")
    return list(balancers)


def _clusters_by_tags(
    elbv2: Any, arns: list[str], next_page_allowed: Callable[[], bool] | None
) -> dict[str, str]:
    """Of `arns`, those tagged for a cluster, by ARN: the cluster (DescribeTags, 20 a call)."""
    cluster_of: dict[str, str] = {}
    for offset in range(0, len(arns), DESCRIBE_TAGS_BATCH):
        _ask_next_request("DescribeTags", next_page_allowed)
        answer = elbv2.describe_tags(ResourceArns=arns[offset : offset + DESCRIBE_TAGS_BATCH])
        for description in answer_field(answer, "DescribeTags", "TagDescriptions"):
            tags = {
                answer_field(tag, "DescribeTags", "Key"): tag.get("Value", "")
                for tag in description.get("Tags", [])
            }
            if CLUSTER_TAG in tags:
                arn = answer_field(description, "DescribeTags", "ResourceArn")
                cluster_of[arn] = tags[CLUSTER_TAG]
    return cluster_of


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
    tagging: Any,
    target_counts_from_metrics: bool = False,
) -> list[LoadBalancerHealth]:
    """Every load balancer of `cluster` with its target health and its traffic over
    `start`..`end`, ordered by name. The target health is DescribeTargetHealth's now, or with
    `target_counts_from_metrics` that of the window's latest minute of ELB's target counts where
    it has them (see the module docstring); `tagging` is the Resource Groups Tagging API client
    the load balancers are found with. With `next_page_allowed`, every request after the first
    only while it answers True."""
    balancers = cluster_load_balancers(
        elbv2, cluster, tagging=tagging, next_page_allowed=next_page_allowed
    )
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
