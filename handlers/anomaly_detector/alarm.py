"""A CloudWatch alarm went to ALARM: is its metric anomalous around the alarm time?

Static thresholds fire on busy Mondays too. The detector reads the alarm's metric (each
`metricStat` query of the alarm; metric-math-only alarms have nothing to evaluate) in the
alarm's account and region, from ANOMALY_LOOKBACK_DAYS before the alarm (at most
`MAX_POINTS` values at the alarm's period) to one period after it, and reports the findings
that end within `max(3 periods, 1 hour)` before the alarm: the alarm is then confirmed as
anomalous. No finding means the alarm fired on a usual value for that time of day and week; a
series GetMetricData did not return whole is not read, since its missing part may hold the
anomaly, and neither is one whose read CloudWatch refuses (AccessDenied, a validation error) or
whose pages do not end (`page_tokens`): the alarm's other metrics are read and alerted all the
same, and the result is `partial`, naming each such metric and why under `not_read` (an error
result naming them, when no metric was read). The invocation does not fail for them, since a
retry would fail them again, unless another read is to be retried (below): the invocation's
error names them too, and its retry reads them again. A read that may pass on a retry
(`may_pass_on_retry`, after botocore's retries: CloudWatch answers with "later", throttling or a
server failure, or does not answer at all, every attempt timed out or the endpoint given up
after earlier reads hung; or it cannot be reached, cuts the connection, or an answer not its own
comes back) fails the invocation once the other metrics were evaluated and alerted
(`AlarmReadsToRetryError`): Lambda retries the event, where an error result ended it and the
check of that metric was lost; so does an AssumeRole of the member's role STS answers with
"later" or not at all (a hang, a connection refused or cut: `may_pass_on_retry`), before any
metric is read. A hung read is retried whatever the time left, since no time left makes the
retry do worse: it is a new invocation with the whole timeout and its own record of unanswered
endpoints, so it gives the read its whole bound again (and an invocation Lambda ends for lack of
time is retried alike), and this one alerts the others first with time to spare (the endpoint is
given up after two hung reads, `MEMBER_CALLS_GIVEN_UP_AFTER`: 50 s of its 300 s).
A confirmed anomaly is alerted once, like a scan's (`findings.raise_alerts`), its claim kept
ANOMALY_DEDUP_DAYS or, when longer, the alarm's confirmation window in whole days (an alarm of
a period over 8 hours confirms an episode for more than a day, and a later alarm found it again
once a shorter claim lapsed); an alert SNS refuses fails the invocation, so EventBridge retries
the event and the alert goes out then. An anomaly that continues an episode a scan alerted
(`episodes.continue_open_episodes`: the alarm reads another window, and may draw the episode
from another start) is that episode, whose alert is out. The episodes the alarm alerted are
recorded as open (`episodes.record_alerted_episodes`), so a scan that draws one from another
start continues it, and resolves it once it is over; their series are put in the index for the
scans to follow (`followed.py`), so the episode is resolved even where no scan reads its metric.
A metric the event gives no unit takes the unit the alarm names (`alarm_units.py`), by which its
noise floor is chosen and the scans follow it; the result lists under `without_unit` each metric
read that has none either, with why, which keeps the floor of 0.001 of its own unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fleet_shared.aws_answers import call_error_text
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import MemberAccessError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from fleet_shared.later_answers import may_pass_on_retry
from fleet_shared.metric_data import MetricQuery, align, get_metric_series
from fleet_shared.numeric.robust_anomalies import ABSOLUTE_RESOLUTION, detect_anomalies
from fleet_shared.sessions import AccountSessions
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import echo_field, shown_value
from handlers.anomaly_detector.alarm_units import AlarmUnits
from handlers.anomaly_detector.environment import AnomalyEnvironment
from handlers.anomaly_detector.episodes import (
    continue_open_episodes,
    follow_series,
    record_alerted_episodes,
)
from handlers.anomaly_detector.exceptions import AlarmReadsToRetryError, IncompleteSeriesError
from handlers.anomaly_detector.findings import Finding, findings_from, raise_alerts
from handlers.anomaly_detector.followed import MAX_POINTS, FollowedSeries
from handlers.anomaly_detector.models import AlarmEvent
from handlers.anomaly_detector.scan import (
    COMPLETE,
    TARGET_ERRORS,
    MetricTarget,
    metric_label,
    note_listed_members_of,
)
from handlers.anomaly_detector.target_calls import member_cloudwatch
from handlers.anomaly_detector.units import noise_floor

DAY = timedelta(days=1)
ALARM_STATE = "ALARM"
"""The state of an alarm state change this function confirms (the only one its rule sends)."""


def confirm_alarm(
    services: FunctionServices[AnomalyEnvironment], event: AlarmEvent, invocation: Invocation
) -> dict[str, Any]:
    """Evaluate the alarm's metrics and alert what is anomalous; the alarm's result (`partial`,
    naming each metric not read, when a read failed in a way a retry does not change; an error
    result naming the alarm when its account cannot be read, or each metric when none could be).
    Raises `AlertNotDeliveredError` when SNS refused an alert, and `AlarmReadsToRetryError`, once
    the metrics read were alerted, when CloudWatch answered a metric's read with "later" or not
    at all, or before any read when STS so answered the AssumeRole of the member's role."""
    summary = alarm_summary(event)
    if event.detail.state.value != ALARM_STATE:
        # Only a change to ALARM is one to confirm: evaluated, a change back to OK (an invoke
        # by hand, a rule without the state filter) alerted "Alarm ... confirmed" on a spike
        # the alarm has just stopped reporting.
        return {
            "status": "skipped",
            **summary,
            "reason": f"the alarm went to {shown_value(event.detail.state.value)}, not ALARM",
        }
    inventory = services.inventory()
    # An alarm may come before any scan since its account was listed: noted, the account is
    # known to have left when a later inventory drops it.
    note_listed_members_of(services, inventory)
    units = AlarmUnits(services.sessions, event)
    try:
        reads = evaluate_alarm(services.sessions, services.environment, event, inventory, units)
    except TARGET_ERRORS as error:
        cause = error.__cause__
        passing = isinstance(cause, Exception) and may_pass_on_retry(cause)
        if isinstance(error, MemberAccessError) and passing:
            # STS throttled the member's AssumeRole, or did not answer it: nothing of the alarm
            # was read, and the event's retry, minutes later, may get through.
            place = f"{event.account}/{event.region}"
            raise AlarmReadsToRetryError(event.detail.alarm_name, [(place, str(error))]) from error
        return error_result(error, **summary)
    if reads.metrics == 0:
        return {"status": "skipped", **summary, "reason": "the alarm has no metricStat metric"}
    if len(reads.not_read) == reads.metrics:
        # No metric was read, and a retry would fail each again: nothing to confirm or alert.
        return {"status": "error", **summary, "error": "; ".join(reads.not_read)}
    dedup_days = claim_days(services.environment, event)
    now = services.clock.now()
    continued = continue_open_episodes(
        reads.findings, services.state, now=now, ttl_seconds=dedup_days * 86_400
    )
    if continued.unreadable:
        # The alarm is one target: its error names the record, where a scan goes on without it.
        raise next(iter(continued.unreadable.values()))
    episodes = continued.findings
    raised = raise_alerts(
        episodes,
        services.state,
        services.alerts,
        dedup_days=dedup_days,
        now=now,
        deadline=invocation,
        title_prefix=f"Alarm {event.detail.alarm_name} confirmed",
    )
    recorded = record_alerted_episodes(
        episodes, raised.delivered, services.state, ttl_seconds=dedup_days * 86_400, now=now
    )
    followed = alarm_series(event, inventory, units)
    follow_series(
        services.state,
        {
            resource: followed[resource].to_value(iso_z(now))
            for resource in recorded
            if resource in followed
        },
    )
    if raised.failures:
        raise raised.failures[0]
    if reads.to_retry:
        raise AlarmReadsToRetryError(event.detail.alarm_name, reads.to_retry, reads.not_read)
    return {
        "status": "partial" if reads.not_read else "ok",
        **summary,
        "anomalous": bool(raised.reported),
        "anomalies": raised.reported,
        "alerts": sum(1 for item in raised.reported if item["alerted"]),
        "left_out": reads.left_out,
        "not_read": reads.not_read,
        "without_unit": [
            f"{label}: no unit, {why}; noise floor {ABSOLUTE_RESOLUTION} of its own unit"
            for label, why in units.missing.items()
        ],
    }


@dataclass
class AlarmReads:
    """What the reads of an alarm's metrics found."""

    metrics: int = 0
    """How many metrics the alarm has to read (its `metricStat` queries)."""
    findings: list[Finding] = field(default_factory=list)
    """The findings of the metrics read, around the alarm time."""
    left_out: list[str] = field(default_factory=list)
    """Per metric read with values that are no metric value (`MetricSeries.left_out`), what was
    left out."""
    to_retry: list[tuple[str, str]] = field(default_factory=list)
    """The label and error of each metric whose read may pass on a retry."""
    not_read: list[str] = field(default_factory=list)
    """Per metric whose read failed in a way a retry does not change (refused, a page token
    loop, a series not returned whole), its label and why, the error as `call_error_text`
    quotes it."""


def evaluate_alarm(
    sessions: AccountSessions,
    environment: AnomalyEnvironment,
    event: AlarmEvent,
    inventory: FleetInventory,
    units: AlarmUnits,
) -> AlarmReads:
    """Read and evaluate each metric of the alarm; a failed read fails that metric alone. One
    that may pass on a retry (`later_answers.may_pass_on_retry`, after botocore's retries:
    CloudWatch answered "later" or not at all, was not reached, cut the connection, or the
    answer was not its own) is to be read again by the event's retry; any other (AccessDenied,
    a validation error, a page token loop, a series GetMetricData did not return whole) is not
    read, since a retry would fail it again. A failure to reach the member (its AssumeRole) is
    raised: nothing of the alarm can be read.

    A metric of a cluster of the inventory (its `ClusterName` dimension) is profiled in the
    cluster's time zone, as the scan profiles it: the same spike is then the same episode, whose
    one alert the scan and the alarm share."""
    alarm_time = event.detail.state.timestamp
    queries = alarm_queries(event, inventory)
    if not queries:
        return AlarmReads()
    cloudwatch = member_cloudwatch(sessions, event.account, event.region)
    reads = AlarmReads(metrics=len(queries))
    for query, label, time_zone in queries:
        period = timedelta(seconds=query.period)
        lookback = min(timedelta(days=environment.anomaly_lookback_days), period * MAX_POINTS)
        end = align(alarm_time, query.period) + period
        start = align(end - lookback, query.period)
        try:
            series = get_metric_series(cloudwatch, [query], start, end)[query.id]
        except TARGET_ERRORS as error:
            if may_pass_on_retry(error):
                # A hung, unreachable or cut-off endpoint is a busy or failing one, as a
                # throttling one is, which the event's retry, minutes later, may find answering.
                reads.to_retry.append((label, call_error_text(error)))
            else:
                # Refused, or pages without end: a retry fails it again, and the alarm's other
                # metrics are read and alerted all the same.
                reads.not_read.append(f"{label}: {call_error_text(error)}")
            continue
        if series.status != COMPLETE:
            # What GetMetricData did return may lack the anomaly: not read, rather than a usual
            # value drawn from part of the series.
            reads.not_read.append(str(IncompleteSeriesError(label, series.status)))
            continue
        summary = series.left_out_summary()
        if summary is not None:
            reads.left_out.append(f"{label}: {summary}")
        detection = detect_anomalies(
            series.values,
            series.timestamps,
            time_zone=time_zone,
            absolute_resolution=noise_floor(units.unit_of(query, label)),
        )
        reads.findings.extend(
            findings_from(
                detection,
                label=label,
                resource=f"{event.account}/{event.region}/{label}",
                account_id=event.account,
                region=event.region,
                since=alarm_time - confirmation_window(query.period),
                value_span=timedelta(0),
                period=period,
            )
        )
    return reads


def alarm_queries(event: AlarmEvent, inventory: FleetInventory) -> list[MetricTarget]:
    """The query, label and profile time zone of each `metricStat` metric of the alarm."""
    queries: list[MetricTarget] = []
    for index, item in enumerate(event.detail.configuration.metrics):
        if item.metric_stat is None:
            continue
        stat = item.metric_stat
        query = MetricQuery(f"a{index}", stat.metric.namespace, stat.metric.name,
                            stat.metric.dimensions, stat.stat, stat.period,
                            stat.unit)  # fmt: skip
        label = metric_label(query)
        time_zone = _cluster_time_zone(inventory, event, stat.metric.dimensions)
        queries.append((query, label, time_zone))
    return queries


def alarm_series(
    event: AlarmEvent, inventory: FleetInventory, units: AlarmUnits
) -> dict[str, FollowedSeries]:
    """How a scan reads each `metricStat` metric of the alarm, by the series' resource, in the
    unit the alarm was read in."""
    return {
        f"{event.account}/{event.region}/{label}": FollowedSeries(
            account_id=event.account,
            region=event.region,
            namespace=query.namespace,
            metric=query.metric_name,
            dimensions=dict(query.dimensions),
            stat=query.stat,
            period=query.period,
            time_zone=time_zone,
            unit=units.known_unit_of(query),
        )
        for query, label, time_zone in alarm_queries(event, inventory)
    }


def confirmation_window(period_seconds: int) -> timedelta:
    """How long before the alarm an episode may end and still confirm it: 3 periods of the
    alarm's metric, at least an hour."""
    return max(3 * timedelta(seconds=period_seconds), timedelta(hours=1))


def claim_days(environment: AnomalyEnvironment, event: AlarmEvent) -> int:
    """How many days the alarm's alerts stay claimed: ANOMALY_DEDUP_DAYS, or the longest
    confirmation window of its metrics in whole days when that is longer, so a later alarm
    still confirming the same episode finds it claimed (as the environment keeps the claim at
    least the scans' recent windows)."""
    windows = [
        confirmation_window(item.metric_stat.period)
        for item in event.detail.configuration.metrics
        if item.metric_stat is not None
    ]
    longest = max(windows, default=timedelta(0))
    return max(environment.anomaly_dedup_days, math.ceil(longest / DAY))


def _cluster_time_zone(
    inventory: FleetInventory, event: AlarmEvent, dimensions: dict[str, str]
) -> str | None:
    """The schedule time zone of the inventory cluster a metric's `ClusterName` names, if any."""
    name = dimensions.get("ClusterName")
    cluster = inventory.find_cluster(event.account, event.region, name) if name else None
    return cluster.schedule.time_zone if cluster is not None and cluster.schedule else None


def alarm_summary(event: AlarmEvent) -> dict[str, Any]:
    """What the result says about the alarm itself."""
    return {
        "alarm": event.detail.alarm_name,
        "account_id": event.account,
        "region": event.region,
        "state": echo_field(event.detail.state.value),
        "alarm_time": iso_z(event.detail.state.timestamp),
    }
