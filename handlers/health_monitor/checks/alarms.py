"""CloudWatch alarms in ALARM in the cluster's account and region.

Every alarm in ALARM there is reported, because alarms carry no reliable link to a cluster. The
alert's resource is the alarm ARN and its title names the alarm but not its state, so the same
alarm seen while checking two clusters of one account and region is one incident, and its state
change back to OK (a passed result with that resource and title) resolves it. An alarm whose name
matches one of HEALTH_CRITICAL_ALARM_PATTERNS is critical, any other a warning.

Each result carries when the alarm entered its state (`since`, at CloudWatch's precision of a
millisecond): the state change events and the scheduled runs see the same alarm at different
moments, and the incident must not be reopened by an ALARM seen before the OK it already settled.

A deleted alarm sends no state change, so the run also resolves the open incidents of alarms of
its account and region (`incidents.alarm_incidents_key`) that DescribeAlarms, asked by name and
read to its last page, no longer lists; a listing that fails fails the check and resolves nothing.
An alarm that listing finds OK, its incident open, is resolved as its state change would have: that
event was lost (its invocation dead-lettered), and the incident would page for 90 days.
Where the member has no cluster, the fleet run does the same (`deleted_alarms.py`). An entry of
that list that cannot be read, or names no alarm (a hand edit), is one warning result of the
check naming it (never its data), as a check that could not run is, and the other entries and
alarms are checked as ever.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from fleet_shared.alerts import Severity
from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.state_table import StateTable
from fleet_shared.validation_errors import cut_echo
from handlers.health_monitor.checks.base import ClusterContext
from handlers.health_monitor.incidents import (
    alarm_incidents_key,
    listed_unsettled_alerts,
    read_incident_list,
)
from handlers.health_monitor.report import CheckResult

NAME = "alarm"
DESCRIBE_ALARMS = "DescribeAlarms"
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]
NAMES_PER_CALL = 100
"""The most alarm names DescribeAlarms takes at once."""


def run(context: ClusterContext) -> list[CheckResult]:
    """One failed result per alarm in ALARM, or one passed result when there is none; one
    passed result per deleted alarm whose incident may be open; and one warning result per
    entry of the account and region's list of alarm incidents that cannot be read. That one is
    about the cluster, as the check's "could not run" failure is: it keeps that incident open
    (`runner._is_about_the_cluster`) until the entry is mended or gone."""
    cloudwatch = context.client("cloudwatch")
    results: list[CheckResult] = []
    paginator = cloudwatch.get_paginator("describe_alarms")
    pages = paginator.paginate(StateValue="ALARM", AlarmTypes=ALARM_TYPES)
    for alarm in _listed_alarms(pages):
        if alarm.get("StateValue") != "ALARM":
            continue
        results.append(
            alarm_result(
                alarm["AlarmName"],
                alarm["AlarmArn"],
                "ALARM",
                alarm.get("StateReason", ""),
                context.environment.health_critical_alarm_patterns,
                since=_state_since(alarm),
            )
        )
    target = context.target
    deleted, unreadable = deleted_alarm_results(
        context.state,
        cloudwatch,
        target.account_id,
        target.region,
        in_alarm={result.target for result in results},
    )
    unread = [
        CheckResult.failed(
            NAME,
            target.name,
            Severity.WARNING,
            f"an alarm incident could not be read: {cut_echo(str(error))}",
        )
        for error in unreadable
    ]
    if not results:
        return [CheckResult.ok(NAME, "alarms", "no alarm in ALARM"), *deleted, *unread]
    return [*sorted([*results, *deleted], key=lambda result: result.target), *unread]


def _listed_alarms(pages: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The alarms of every page of a DescribeAlarms listing, each with its name and ARN."""
    for page in pages:
        # CloudWatch lists MetricAlarms in every answer, empty or not: a page without them is
        # not its answer (a proxy's), which must not pass for no alarm in ALARM or for deleted.
        metric_alarms = answer_field(page, DESCRIBE_ALARMS, "MetricAlarms")
        for alarm in [*metric_alarms, *page.get("CompositeAlarms", [])]:
            # Nor is an alarm without its text name or ARN, the incident's identity: it fails
            # the check, not the whole cluster's run on a KeyError or (CloudWatch's CBOR or
            # JSON answer, whose values botocore hands on unchecked) a TypeError, nor opens an
            # incident under another identity than its state changes resolve.
            for field in ("AlarmName", "AlarmArn"):
                if not isinstance(answer_field(alarm, DESCRIBE_ALARMS, field), str):
                    raise UnreadableAnswerError(DESCRIBE_ALARMS, f"a text {field}", alarm)
            yield alarm


def deleted_alarm_results(
    state: StateTable, cloudwatch: Any, account_id: str, region: str, *, in_alarm: set[str]
) -> tuple[list[CheckResult], list[UnreadableStateValueError]]:
    """A passed result, resolving its incident as deleted, per alarm of the account and region
    with an incident that may be open and that DescribeAlarms (`cloudwatch`, of that account and
    region) no longer lists, asked by name for the alarms not `in_alarm`; the alarms whose
    incident is settled (closed, its resolution sent) are forgotten from the list. With them,
    the error of each entry of the list that cannot be read (`incidents.read_incident_list`)."""
    listed, unreadable = read_incident_list(
        state, alarm_incidents_key(account_id, region), ("alarm",)
    )
    alarm_of_incident = {
        alert_id: entry["alarm"]
        for alert_id, entry in listed.items()
        if entry["alarm"] not in in_alarm
    }
    asked = sorted(set(alarm_of_incident.values()))
    existing: dict[str, dict[str, Any]] = {}
    paginator = cloudwatch.get_paginator("describe_alarms")
    for start in range(0, len(asked), NAMES_PER_CALL):
        names = asked[start : start + NAMES_PER_CALL]
        pages = paginator.paginate(AlarmNames=names, AlarmTypes=ALARM_TYPES)
        existing.update((alarm["AlarmName"], alarm) for alarm in _listed_alarms(pages))
    back_to_ok, unreadable_ok = _back_to_ok_results(
        state,
        alarm_incidents_key(account_id, region),
        {
            alert_id: existing[alarm_name]
            for alert_id, alarm_name in alarm_of_incident.items()
            if existing.get(alarm_name, {}).get("StateValue") == "OK"
        },
    )
    gone, unreadable_records = gone_alarm_results(
        state,
        account_id,
        region,
        {
            alert_id: alarm_name
            for alert_id, alarm_name in alarm_of_incident.items()
            if alarm_name not in existing
        },
        detail="the alarm no longer exists",
        resolution=lambda alarm_name: (
            f"alarm {alarm_name} was deleted: no state change will resolve it"
        ),
    )
    return [*gone, *back_to_ok], [*unreadable, *unreadable_records, *unreadable_ok]


def _back_to_ok_results(
    state: StateTable, listed_key: str, ok_alarm_of_incident: dict[str, dict[str, Any]]
) -> tuple[list[CheckResult], list[UnreadableStateValueError]]:
    """The OK result, as its state change would bring it, of each alarm DescribeAlarms lists in
    OK (`ok_alarm_of_incident`, by alert id) whose incident may be open: that state change was
    lost on its way (its invocation dead-lettered, a member region without its rule), and the
    incident would otherwise stay open, paging, for 90 days. Its time orders it against the
    state the incident last settled, as the event's would."""
    alerts, unreadable = listed_unsettled_alerts(state, listed_key, sorted(ok_alarm_of_incident))
    results = [
        alarm_result(
            ok_alarm_of_incident[alert_id]["AlarmName"],
            alert["resource"],
            "OK",
            ok_alarm_of_incident[alert_id].get("StateReason", ""),
            (),
            since=_state_since(ok_alarm_of_incident[alert_id]),
        )
        for alert_id, alert in alerts.items()
    ]
    return results, unreadable


def _state_since(alarm: dict[str, Any]) -> datetime | None:
    """When a listed alarm entered its state (CloudWatch's transition time, else its update)."""
    since: datetime | None = alarm.get("StateTransitionedTimestamp") or alarm.get(
        "StateUpdatedTimestamp"
    )
    return since


def gone_alarm_results(
    state: StateTable,
    account_id: str,
    region: str,
    alarm_of_incident: dict[str, str],
    *,
    detail: str,
    resolution: Callable[[str], str],
) -> tuple[list[CheckResult], list[UnreadableStateValueError]]:
    """A passed result, resolving its incident with `resolution(alarm name)`, per alarm of
    `alarm_of_incident` (by alert id) in the account and region that is gone from view and whose
    incident may be open; the alarms whose incident is settled (closed, its resolution sent) are
    forgotten from the account and region's list. With them, the error of each incident whose
    record cannot be read (`incidents.read_incident`): it is left as it is."""
    alarm_of_incident = dict(sorted(alarm_of_incident.items()))
    alerts, unreadable = listed_unsettled_alerts(
        state, alarm_incidents_key(account_id, region), alarm_of_incident
    )
    results = []
    for alert_id, alert in alerts.items():
        alarm_name = alarm_of_incident[alert_id]
        results.append(
            CheckResult(
                NAME,
                alarm_name,
                True,
                Severity.INFO,
                detail,
                resource=alert["resource"],
                title=alert["title"],
                resolution=resolution(alarm_name),
            )
        )
    return results, unreadable


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
