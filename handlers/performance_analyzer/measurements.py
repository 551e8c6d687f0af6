"""What the analyzer measures per cluster, read through the member role.

Container Insights (`ContainerInsights` namespace, dimension `ClusterName`): its standard metrics
have no node-group dimension, so every figure is per cluster; the scaling optimizer attributes a
cluster's utilisation to its node groups by their sizes. A figure of the window is the mean of
its hourly values (utilisation) or their peak (counts of pending pods and failed nodes,
throttling). Load balancers: the cluster's ALBs, found by the tag the AWS Load Balancer
Controller puts on them (`elbv2.k8s.aws/cluster`; found once per account and region a run for
its clusters there, `RegionLoadBalancers`), with TargetResponseTime p50/p90/p99
(extended statistics) over the whole window. One GetMetricData read per window (a request per
500 queries) answers the hourly values and every load balancer's percentiles.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fleet_shared.metric_data import (
    MetricQuery,
    MetricSeries,
    align,
    get_metric_series,
    within_range,
)
from fleet_shared.performance_documents import (
    MAX_MEASURED_UTILISATION,
    HourlyUtilisation,
    LoadBalancerLatency,
)

CONTAINER_INSIGHTS = "ContainerInsights"
LOAD_BALANCER_NAMESPACE = "AWS/ApplicationELB"
HOUR = 3600
MINUTE = 60
PERCENTILES = ("p50", "p90", "p99")
COMPLETE = "Complete"
MIN_MEASURED_SHARE = 0.5
"""The share of a window's hours a Container Insights metric needs values for to have a figure."""


@dataclass(frozen=True)
class ClusterMetric:
    """One Container Insights metric and how a window's hours become one figure."""

    name: str
    metric_name: str
    unit: str
    peak: bool
    """True: the window's figure is the highest hour (Maximum); False: the mean (Average)."""
    highest: float | None = None
    """The highest value the metric can have, None for no bound; none can be below 0."""

    def query(self, cluster: str) -> MetricQuery:
        """The hourly query of this metric for `cluster`."""
        stat = "Maximum" if self.peak else "Average"
        return MetricQuery(
            self.name, CONTAINER_INSIGHTS, self.metric_name, {"ClusterName": cluster}, stat, HOUR
        )

    def within_range(self, series: MetricSeries) -> tuple[MetricSeries, str | None]:
        """`series` without the values no measurement of this metric can be (`within_range`)."""
        return within_range(series, self.highest, self.unit)

    def figure(self, series: MetricSeries | None, hours: int) -> float | None:
        """The window's figure from its hourly values; None without data for at least half of
        its `hours`, or when CloudWatch did not answer the series whole (`is_whole`)."""
        if series is None or not is_whole(series) or not series.values:
            return None
        if len(series.values) < math.ceil(hours * MIN_MEASURED_SHARE):
            # An hour or two of a longer window is no figure of it: a week earlier measured in
            # its one quiet hour opened a regression on a load as busy as now.
            return None
        return max(series.values) if self.peak else statistics.fmean(series.values)


def is_whole(series: MetricSeries) -> bool:
    """Whether CloudWatch answered every value of the window: its StatusCode for the series is
    `Complete`, not `InternalError`, `Forbidden` or `PartialData`. A figure of some of the hours
    is no figure of the window: the hour missing may be the one that breaks a rule, so it would
    resolve an open regression (or, a week earlier, open one) on what was not measured."""
    return series.status == COMPLETE


CLUSTER_METRICS: tuple[ClusterMetric, ...] = (
    ClusterMetric(
        "cpu", "node_cpu_utilization", "Percent", peak=False, highest=MAX_MEASURED_UTILISATION
    ),
    ClusterMetric(
        "memory",
        "node_memory_utilization",
        "Percent",
        peak=False,
        highest=MAX_MEASURED_UTILISATION,
    ),
    ClusterMetric("network", "node_network_total_bytes", "Bytes/Second", peak=False),
    ClusterMetric("node_count", "cluster_node_count", "Count", peak=False),
    ClusterMetric("failed_nodes", "cluster_failed_node_count", "Count", peak=True),
    ClusterMetric("pending_pods", "pod_status_pending", "Count", peak=True),
    ClusterMetric("throttled_cpu", "pod_cpu_utilization_over_pod_limit", "Percent", peak=True),
)
METRICS_BY_NAME = {metric.name: metric for metric in CLUSTER_METRICS}


@dataclass(frozen=True)
class WindowMeasurements:
    """The figures of one window: per metric, and per load balancer."""

    figures: dict[str, float | None]
    load_balancers: list[LoadBalancerLatency]
    hourly: list[HourlyUtilisation]
    left_out: list[str] = field(default_factory=list)
    """Per series whose answer held values no metric can have (`MetricSeries.left_out`), what
    was left out of its figures, for a person."""
    p99_not_whole: tuple[str, ...] = ()
    """The load balancers whose p99 CloudWatch did not answer whole (`is_whole`)."""

    def worst_p99(self) -> tuple[str, float] | None:
        """The load balancer with the highest p99 and that p99, if any has one; None while a
        load balancer's p99 was not answered whole: it may be the slowest, and the highest of
        the others resolved an open regression on what was not measured. (One without
        responses, answered whole with no value, has nothing slow to miss.)"""
        if self.p99_not_whole:
            return None
        measured = [
            (lb.name, lb.p99_seconds) for lb in self.load_balancers if lb.p99_seconds is not None
        ]
        return max(measured, key=lambda item: item[1]) if measured else None


def measure_window(
    cloudwatch: Any,
    cluster: str,
    load_balancers: list[str],
    end: datetime,
    hours: int,
    *,
    next_page_allowed: Callable[[], bool] | None = None,
) -> WindowMeasurements:
    """The figures of `cluster` and its `load_balancers` (ARNs) over the `hours` hours before
    `end` (on a minute: CloudWatch takes a start on any minute for values less than 15 days old,
    and its hourly buckets then start there); a next page of the read is asked for only while
    `next_page_allowed()` (`get_metric_series`)."""
    # Not on the hour: a week earlier in Australia/Lord_Howe, whose clocks change by 30 minutes,
    # is 167.5 or 168.5 hours earlier, and a window put back on the hour compared hours half an
    # hour off the cluster's day (the current window's end is on its zone's hour already).
    window_end = align(end, MINUTE)
    window_start = window_end - timedelta(hours=hours)
    latency_queries = load_balancer_queries(load_balancers, window_start, window_end)
    # One read for the cluster's metrics and every load balancer's percentiles (500 queries a
    # request): a read per load balancer made a cluster of hundreds of them hundreds of calls
    # a window, past its budget and the invocation's timeout, which ended every other cluster.
    series = get_metric_series(
        cloudwatch,
        [*(metric.query(cluster) for metric in CLUSTER_METRICS), *latency_queries],
        window_start,
        window_end,
        next_page_allowed=next_page_allowed,
    )
    left_out = _left_out({metric.name: series.get(metric.name) for metric in CLUSTER_METRICS})
    for metric in CLUSTER_METRICS:
        if metric.name in series:
            series[metric.name], outside = metric.within_range(series[metric.name])
            if outside is not None:
                left_out.append(f"{metric.name}: {outside}")
    figures = {
        metric.name: metric.figure(series.get(metric.name), hours) for metric in CLUSTER_METRICS
    }
    latencies: list[LoadBalancerLatency] = []
    for index, arn in enumerate(load_balancers):
        latency, latency_left_out = load_balancer_latency(series, index, arn)
        latencies.append(latency)
        left_out.extend(latency_left_out)
    p99_not_whole = tuple(
        latency.name
        for index, latency in enumerate(latencies)
        if not is_whole(series[_query_id(index, "p99")])
    )
    return WindowMeasurements(
        figures=figures,
        load_balancers=latencies,
        hourly=_hourly(series),
        left_out=left_out,
        p99_not_whole=p99_not_whole,
    )


def _left_out(series: dict[str, MetricSeries | None]) -> list[str]:
    """`<name>: <what was left out>` per series with values left out."""
    summaries = {name: found.left_out_summary() for name, found in series.items() if found}
    return [f"{name}: {summary}" for name, summary in summaries.items() if summary is not None]


def _hourly(series: dict[str, MetricSeries]) -> list[HourlyUtilisation]:
    by_hour: dict[datetime, dict[str, float]] = {}
    for name in ("cpu", "memory", "node_count"):
        found = series.get(name)
        if found is None:
            continue
        for moment, value in zip(found.timestamps, found.values, strict=True):
            by_hour.setdefault(moment, {})[name] = value
    return [
        HourlyUtilisation(
            hour=moment,
            cpu_percent=values.get("cpu"),
            memory_percent=values.get("memory"),
            node_count=values.get("node_count"),
        )
        for moment, values in sorted(by_hour.items())
    ]


def cluster_application_load_balancers(
    elbv2: Any,
    cluster: str,
    *,
    tagging: Any,
    next_page_allowed: Callable[[], bool] | None = None,
) -> list[str]:
    """ARNs of the cluster's application load balancers
    (`application_load_balancers_by_cluster`), in ARN order."""
    by_cluster = application_load_balancers_by_cluster(
        elbv2, [cluster], tagging=tagging, next_page_allowed=next_page_allowed
    )
    return by_cluster.get(cluster, [])


def application_load_balancers_by_cluster(
    elbv2: Any,
    clusters: Collection[str],
    *,
    tagging: Any,
    next_page_allowed: Callable[[], bool] | None = None,
) -> dict[str, list[str]]:
    """ARNs of the application load balancers of the client's account and region tagged for one
    of `clusters`, in ARN order, by the cluster they are tagged for (`fleet_shared.load_balancers`:
    by `elbv2.k8s.aws/cluster=<cluster>`, found with the Tagging API client `tagging`, every
    request after the first only while `next_page_allowed()`, else PagesCutShortError): only they
    report TargetResponseTime."""
    # Imported here: the module's dataclasses would cost every cold start of the function.
    from fleet_shared.load_balancers import load_balancers_by_cluster  # noqa: PLC0415

    listed = load_balancers_by_cluster(
        elbv2, clusters, tagging=tagging, next_page_allowed=next_page_allowed
    )
    return {
        cluster: sorted(
            balancer["LoadBalancerArn"]
            for balancer in balancers
            if balancer.get("Type", "application") == "application"
        )
        for cluster, balancers in listed.items()
    }


def _dimension(arn: str) -> str:
    """The metric's LoadBalancer dimension of `arn`: the ARN's suffix, app/<name>/<id>."""
    return arn.split(":loadbalancer/", 1)[-1]


def _query_id(index: int, percentile: str) -> str:
    """The GetMetricData id of the `index`-th load balancer's `percentile` (an id starts with a
    lower-case letter and holds letters, digits and underscores only)."""
    return f"lb{index}_{percentile}"


def load_balancer_queries(arns: list[str], start: datetime, end: datetime) -> list[MetricQuery]:
    """TargetResponseTime p50/p90/p99 of each load balancer of `arns` over the whole window."""
    period = max(60, int((end - start).total_seconds()))
    return [
        MetricQuery(
            _query_id(index, percentile),
            LOAD_BALANCER_NAMESPACE,
            "TargetResponseTime",
            {"LoadBalancer": _dimension(arn)},
            percentile,
            period,
        )
        for index, arn in enumerate(arns)
        for percentile in PERCENTILES
    ]


def load_balancer_latency(
    series: dict[str, MetricSeries], index: int, arn: str
) -> tuple[LoadBalancerLatency, list[str]]:
    """The latency of the `index`-th load balancer, `arn`, from the `series` of its
    `load_balancer_queries`, and what was left out of them (`MetricSeries.left_out`, and
    latencies below 0 s: `within_range`), for a person."""
    dimension = _dimension(arn)
    name = dimension.split("/")[1] if dimension.count("/") >= 2 else dimension
    answered = {
        f"load balancer {name} {percentile}": series[_query_id(index, percentile)]
        for percentile in PERCENTILES
    }
    left_out = _left_out(answered)
    found: dict[str, MetricSeries] = {}
    for percentile, (label, percentile_series) in zip(PERCENTILES, answered.items(), strict=True):
        found[percentile], outside = within_range(percentile_series, None, "Seconds")
        if outside is not None:
            left_out.append(f"{label}: {outside}")

    def last(percentile: str) -> float | None:
        kept = found[percentile]
        return kept.values[-1] if kept.values and is_whole(kept) else None

    latency = LoadBalancerLatency(
        name=name, p50_seconds=last("p50"), p90_seconds=last("p90"), p99_seconds=last("p99")
    )
    return latency, left_out
