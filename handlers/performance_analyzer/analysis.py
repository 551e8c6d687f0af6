"""One cluster's analysis: measure the window and the same window a week earlier, name the
bottlenecks, find the regressions, write the analysis to the data bucket and settle the alerts.

The analysis is written to `analyses/<account>/<region>/<cluster>/<time>.json`
(`fleet_shared.performance_documents`), validated against the model the optimizer reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from fleet_shared.handler import Invocation
from fleet_shared.inventory import Cluster
from fleet_shared.performance_documents import (
    SCHEMA_VERSION,
    HourlyUtilisation,
    PerformanceAnalysis,
    analysis_key,
)
from fleet_shared.sessions import HUB_CALL_SECONDS, bounded_config, longest_hung_call_seconds
from fleet_shared.timestamps import iso_z
from fleet_shared.wall_clocks import hour_start
from fleet_shared.working_hours import in_working_hours, working_hours_change
from handlers.performance_analyzer.bottlenecks import (
    cleared_rules,
    find_bottlenecks,
    measured_rules,
)
from handlers.performance_analyzer.measurements import CLUSTER_METRICS, measure_window
from handlers.performance_analyzer.region_load_balancers import RegionLoadBalancers
from handlers.performance_analyzer.regressions import (
    MeasuredWindow,
    regressions,
    settle_regression_alerts,
    trends,
)
from handlers.performance_analyzer.services import PerformanceServices

WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)
CLUSTER_CALL_CONFIG = bounded_config(connect_seconds=2, read_seconds=6, attempts=2)
"""The clients of a cluster's reads (CloudWatch, ELB): an endpoint that never answers fails the
cluster at its first call within two attempts of 2 s connect and 6 s read and botocore's pause
between them (17 s, inside the 30 s a cluster is started with), where botocore's defaults (5
attempts of 60 s) outlasted the invocation."""
NEXT_PAGE_SECONDS = longest_hung_call_seconds(CLUSTER_CALL_CONFIG) + HUB_CALL_SECONDS
"""What a cluster's metric read or load balancer listing needs left of the invocation to ask for
a next page (or batch): the page itself, never answered (17 s), then the analysis's write (15 s).
A CloudWatch or ELB (or a proxy) answering page after page, each with a new token, was read on
until Lambda ended the run at its timeout, with every other cluster's result."""


def cluster_zone(cluster: Cluster) -> tzinfo:
    """The time zone of the cluster's days: its schedule's, else its calendar's, else UTC."""
    if cluster.schedule is not None:
        return cluster.schedule.zone
    if cluster.calendar is not None:
        return ZoneInfo(cluster.calendar.time_zone)
    return UTC


def hour_minute(cluster: Cluster) -> int:
    """The minute of its zone's clock on which the cluster's hours start: its schedule's
    scale-up minute (08:30 starts hours on the half hour), else the whole hour. The optimizer
    classes an hour by its start, so an hour the scale-up falls within was counted whole outside
    the working hours; a scale-down on another minute (08:30, 18:00) still falls within one
    hour a day, which `without_split_hours` leaves out."""
    return cluster.schedule.scale_up_time.minute if cluster.schedule is not None else 0


def window_end(now: datetime, cluster: Cluster) -> datetime:
    """The end of the window analysed at `now`: the last time the clock of the cluster's time
    zone (`cluster_zone`) read the minute its hours start on (`hour_minute`, `hour_start`), so
    that each hourly value is one local hour, from the scale-up on. On the UTC hour, a value of
    Asia/Kolkata (UTC+5:30) ran from 07:30 to 08:30, half before and half after an 08:00
    scale-up, and the optimizer classed the hour by its start alone: an hour outside the
    working hours was counted in them (and one in them outside).

    The window's hours are CloudWatch's 3600-s periods from its start, hours of elapsed time. In
    a zone whose clocks change by whole hours each is a local hour across a change as well: a
    day the clocks go forward has 23 of them (none for the hour skipped), a day they go back 25
    (the repeated hour twice, each dated by its own instant, which the optimizer classes by the
    first reading of the schedule's times, `fleet_shared.wall_clocks`). In Australia/Lord_Howe,
    whose clocks change by 30 minutes, the hours of a window across the change that lie before
    it are half an hour off its local hours, in that one window."""
    return hour_start(cluster_zone(cluster), now, hour_minute(cluster))


def without_split_hours(
    hourly: list[HourlyUtilisation], cluster: Cluster
) -> tuple[list[HourlyUtilisation], list[str]]:
    """`hourly` without the hours within which the cluster's schedule opens or closes its
    working hours (`working_hours_change`), and each hour left out, named for a person. The
    optimizer classes an hour by its start, so such an hour, half at the day's size and half
    at the night's, would count its load whole on one side; its values still count in the
    window's figures."""
    schedule = cluster.schedule
    if schedule is None:
        return hourly, []
    kept: list[HourlyUtilisation] = []
    named: list[str] = []
    for hour in hourly:
        change = working_hours_change(
            schedule, hour.hour, hour.hour + HOUR, calendar=cluster.calendar
        )
        if change is None:
            kept.append(hour)
            continue
        opens = in_working_hours(schedule, change, calendar=cluster.calendar)
        local = hour.hour.astimezone(schedule.zone)
        named.append(
            f"hourly {local.isoformat(timespec='minutes')}: left out, the "
            f"{'scale-up' if opens else 'scale-down'} at "
            f"{change.astimezone(schedule.zone).strftime('%H:%M')} falls within it"
        )
    return kept, named


def a_week_earlier(end: datetime, cluster: Cluster) -> datetime:
    """`end` a week earlier on the clock of the cluster's time zone (`cluster_zone`): a
    cluster's load follows its people's days, so across a daylight-saving change the same hours
    of the week before are 167 or 169 hours earlier (167.5 or 168.5 in Australia/Lord_Howe: not
    on the hour, which `measure_window` keeps), and 168 would compare a window with one an hour
    off its daily cycle (a morning ramp read as a regression)."""
    # Arithmetic on an aware datetime of one zone is on the wall clock.
    return (end.astimezone(cluster_zone(cluster)) - WEEK).astimezone(UTC)


def analyse_cluster(
    services: PerformanceServices,
    logger: Any,
    account_id: str,
    cluster: Cluster,
    *,
    deadline: Invocation | None,
    load_balancers: RegionLoadBalancers | None = None,
) -> dict[str, Any]:
    """Analyse `cluster` in `account_id`; the summary the handler returns for it. A metric read
    or load balancer listing asks for a next page only while `deadline` (the invocation) has
    NEXT_PAGE_SECONDS left (else the cluster fails with `MetricReadCutShortError` or
    `PagesCutShortError`), and the alerts' delivery claims are bound to it. The cluster's load
    balancers come from `load_balancers`, the run's finding of each region's (a finding of its
    own without it)."""
    environment = services.environment
    hours = environment.performance_window_hours
    now = services.clock.now()
    end = window_end(now, cluster)

    def client(service: str) -> Any:
        return services.sessions.client(service, account_id, cluster.region, CLUSTER_CALL_CONFIG)

    def next_page_allowed() -> bool:
        return deadline is None or deadline.allows(NEXT_PAGE_SECONDS)

    # Found once: a week earlier is measured on the load balancers the cluster has now.
    balancers = (load_balancers or RegionLoadBalancers()).of_cluster(
        account_id,
        cluster.region,
        cluster.name,
        client,
        next_page_allowed=next_page_allowed,
    )
    cloudwatch = client("cloudwatch")
    current = measure_window(
        cloudwatch, cluster.name, balancers, end, hours, next_page_allowed=next_page_allowed
    )
    week_earlier = measure_window(
        cloudwatch,
        cluster.name,
        balancers,
        a_week_earlier(end, cluster),
        hours,
        next_page_allowed=next_page_allowed,
    )
    hourly, hours_left_out = without_split_hours(current.hourly, cluster)
    bottlenecks = find_bottlenecks(current, hours)
    metric_trends = trends(current, week_earlier)
    # A rule firing now without a figure a week earlier (a cluster younger than a week, a gap
    # in Container Insights then) cannot be compared, so it opens no regression; firing, it is
    # above its clear level, so it resolves none either.
    regressing = regressions(
        bottlenecks,
        find_bottlenecks(week_earlier, hours),
        metric_trends,
        environment.performance_regression_percent,
        measured_rules(week_earlier),
    )
    analysis = PerformanceAnalysis(
        schema_version=SCHEMA_VERSION,
        account_id=account_id,
        region=cluster.region,
        cluster=cluster.name,
        analysed_at=now,
        window_start=end - timedelta(hours=hours),
        window_end=end,
        scope="cluster",
        metrics=metric_trends,
        load_balancers=current.load_balancers,
        bottlenecks=bottlenecks,
        regressions=regressing,
        hourly=hourly,
    )
    key = analysis_key(account_id, cluster.region, cluster.name, now)
    services.hub_client("s3").put_object(
        Bucket=environment.data_bucket_name,
        Key=key,
        Body=analysis.model_dump_json(indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    unmeasured = [m.name for m in CLUSTER_METRICS if current.figures.get(m.name) is None]
    if unmeasured:
        logger.warning(
            "Container Insights metrics missing",
            extra={"cluster": cluster.name, "account_id": account_id, "unmeasured": unmeasured},
        )
    left_out = [
        *current.left_out,
        *(text.replace(": ", " a week earlier: ", 1) for text in week_earlier.left_out),
    ]
    if left_out:
        logger.warning(
            "metric values left out",
            extra={"cluster": cluster.name, "account_id": account_id, "left_out": left_out},
        )
    resource = f"{account_id}/{cluster.region}/{cluster.name}"
    alerts = settle_regression_alerts(
        services,
        logger,
        resource=resource,
        account_id=account_id,
        region=cluster.region,
        regressing=regressing,
        bottlenecks=bottlenecks,
        cleared=cleared_rules(current, hours),
        measured=MeasuredWindow(measured_rules(current), end),
        deadline=deadline,
    )
    return {
        "account_id": account_id,
        "region": cluster.region,
        "cluster": cluster.name,
        "status": "ok",
        "analysed_at": iso_z(now),
        "analysis": key,
        "bottlenecks": [bottleneck.rule for bottleneck in bottlenecks],
        "regressions": regressing,
        "unmeasured": unmeasured,
        "left_out": left_out,
        "split_hours": hours_left_out,
        "alerts": alerts,
    }
