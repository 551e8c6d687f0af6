"""CloudWatch alarms in ALARM in the cluster's account and region.

Every alarm in ALARM there is reported, because alarms carry no reliable link to a cluster. The
alert's resource is the alarm ARN and its title names the alarm but not its state, so the same
alarm seen while checking two clusters of one account and region is one incident, and its state
change back to OK (a passed result with that resource and title) resolves it. An alarm whose name
matches one of HEALTH_CRITICAL_ALARM_PATTERNS is critical, any other a warning.

Each result carries when the alarm entered its state (`since`, at CloudWatch's precision of a
millisecond): the state change events and the scheduled runs see the same alarm at different
moments, and the incident must not be reopened by an ALARM seen before the OK it already settled.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import datetime

from fleet_shared.alerts import Severity
from fleet_shared.aws_answers import answer_field
from handlers.health_monitor.checks.base import ClusterContext
from handlers.health_monitor.report import CheckResult

NAME = "alarm"


def run(context: ClusterContext) -> list[CheckResult]:
    """One failed result per alarm in ALARM, or one passed result when there is none."""
    cloudwatch = context.client("cloudwatch")
    results: list[CheckResult] = []
    paginator = cloudwatch.get_paginator("describe_alarms")
    pages = paginator.paginate(StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    for page in pages:
        # CloudWatch lists MetricAlarms in every answer, empty or not: a page without them is
        # not its answer (a proxy's), which must not pass for no alarm in ALARM.
        metric_alarms = answer_field(page, "DescribeAlarms", "MetricAlarms")
        for alarm in [*metric_alarms, *page.get("CompositeAlarms", [])]:
            if alarm.get("StateValue") != "ALARM":
                continue
            results.append(
                alarm_result(
                    alarm["AlarmName"],
                    alarm.get("AlarmArn", ""),
                    "ALARM",
                    alarm.get("StateReason", ""),
                    context.environment.health_critical_alarm_patterns,
                    since=alarm.get("StateTransitionedTimestamp")
                    or alarm.get("StateUpdatedTimestamp"),
                )
            )
    if not results:
        return [CheckResult.ok(NAME, "alarms", "no alarm in ALARM")]
    return sorted(results, key=lambda result: result.target)


def alarm_result(
    alarm_name: str,
    alarm_arn: str,
    state: str,
    reason: str,
    critical_patterns: Iterable[str],
    *,
    since: datetime | None,
) -> CheckResult:
    """The result for one alarm in `state` since `since`: ALARM fails (critical or warning by
    name), OK passes, INSUFFICIENT_DATA fails at info (the metric stopped reporting, nobody needs
    paging)."""
    data = {"state": state}
    title = f"CloudWatch alarm {alarm_name} is not OK"
    if since is not None:
        since = since.replace(microsecond=since.microsecond // 1000 * 1000)
    if state == "OK":
        return CheckResult(
            NAME,
            alarm_name,
            True,
            Severity.INFO,
            reason or "OK",
            resource=alarm_arn,
            title=title,
            data=data,
            since=since,
        )
    if state == "ALARM":
        critical = any(fnmatch.fnmatchcase(alarm_name, pattern) for pattern in critical_patterns)
        severity = Severity.CRITICAL if critical else Severity.WARNING
    else:
        severity = Severity.INFO
    return CheckResult.failed(
        NAME,
        alarm_name,
        severity,
        f"{state}: {reason}" if reason else state,
        resource=alarm_arn,
        title=title,
        since=since,
        **data,
    )
