"""The check incidents of targets that left a cluster still in the fleet: resolved once.

A check reports only the targets it finds (the node groups EKS lists, the load balancers tagged
for the cluster, the inventory's endpoints), so the incident of a target that went (a node group
deleted, an endpoint removed from the inventory) would never pass again: it stayed open, and its
PagerDuty incident with it, until its record was forgotten a week later. A cluster's run that
completed its checks (`runner.CheckRun.complete`: every check ran to the end, none errored or
was left for lack of time, every endpoint probed) reads the cluster's list of check incidents
(`incidents.CHECK_INCIDENTS`, one read) and resolves each incident still open whose target no
result of its check names, saying the target left the cluster. A target is still there when a
result of its own check names it (`STILL_THERE_BY`: a node group that could not be described is
named by the `node_group` check though `capacity` skipped it); another check's target of the
same name (an endpoint and a node group both called `system`) does not keep it open. Only
incidents about the cluster's own targets (their alert's resource is `incidents.own_resource`)
are resolved so: an alarm's is about a thing other clusters see too, and is resolved by its own
state. A run that did not complete the cluster's checks resolves nothing of it.

The incidents of a cluster that left the fleet are resolved the same way (left_clusters.py):
`open_listed_results` is that shared path, one passed result per listed incident still open (or
holding a resolution not yet sent), settled like any other result, so the resolution goes out
once; the settled ones are forgotten from the list by the next run. An entry of the list that
cannot be read, or names no check and target (a hand edit), is named as one error of the run
(never its data) and its incident left for a person, while the others are resolved: where one
such entry failed the cluster's whole run, none of its results settled, or every left cluster's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fleet_shared.alerts import Severity
from fleet_shared.exceptions import UnreadableStateValueError
from handlers.health_monitor.checks import capacity, node_groups
from handlers.health_monitor.incidents import (
    Scope,
    check_incidents_key,
    listed_unsettled_alerts,
    own_resource,
    read_incident_list,
)
from handlers.health_monitor.report import CheckResult
from handlers.health_monitor.services import HealthServices

LISTED_FIELDS = ("check", "target")
"""What each entry of a cluster's `incidents.CHECK_INCIDENTS` list names, as text."""

STILL_THERE_BY: dict[str, tuple[str, ...]] = {capacity.NAME: (capacity.NAME, node_groups.NAME)}
"""The checks whose results show that a target of a check is still there, where not only its own:
capacity skips a node group EKS could not describe, which node_group names all the same."""


def open_listed_results(
    services: HealthServices,
    scope: Scope,
    listed: dict[str, dict[str, str]],
    why: Callable[[str, str], str],
    *,
    resolves: Callable[[str, str, dict[str, Any]], bool] = lambda check, target, alert: True,
) -> tuple[list[CheckResult], list[UnreadableStateValueError]]:
    """A passed result per incident `listed` under the cluster (alert id: its check and target,
    as `read_check_incidents` read them) still open (or holding a resolution not yet sent) for
    which `resolves(check, target, alert)`, resolving it with `why(check, target)`; the settled
    ones are forgotten from the list. With them, the error of each incident whose record cannot
    be read (`incidents.read_incident`): it is left as it is, the others are resolved."""
    alerts, unreadable = listed_unsettled_alerts(
        services.state, check_incidents_key(scope.label), listed
    )
    results = []
    for alert_id, alert in alerts.items():
        check, target = listed[alert_id]["check"], listed[alert_id]["target"]
        if not resolves(check, target, alert):
            continue
        reason = why(check, target)
        results.append(
            CheckResult(
                check,
                target,
                True,
                Severity.INFO,
                reason,
                resource=alert["resource"],
                title=alert["title"],
                resolution=reason,
            )
        )
    return results, unreadable


def read_check_incidents(
    services: HealthServices, scope: Scope
) -> tuple[dict[str, dict[str, str]], list[UnreadableStateValueError]]:
    """The cluster's list of check incidents (`open_listed_results`), and the error of each
    entry of it that cannot be read or names no check and target."""
    return read_incident_list(services.state, check_incidents_key(scope.label), LISTED_FIELDS)


def left_target_results(
    services: HealthServices, scope: Scope, seen: Iterable[CheckResult]
) -> tuple[list[CheckResult], list[UnreadableStateValueError]]:
    """A passed result per open check incident of the cluster whose target no result of its
    check among `seen` (the results of a run that completed the cluster's checks) names,
    resolving it; and the error of each entry of its list that cannot be read."""
    named = {(result.name, result.target) for result in seen}
    listed, unreadable = read_check_incidents(services, scope)
    gone = {
        alert_id: entry
        for alert_id, entry in listed.items()
        if not any(
            (check, entry["target"]) in named
            for check in STILL_THERE_BY.get(entry["check"], (entry["check"],))
        )
    }
    if not gone:
        return [], unreadable
    results, unreadable_records = open_listed_results(
        services,
        scope,
        gone,
        lambda check, target: (
            f"{target} left cluster {scope.cluster}: the {check} check no longer finds it"
        ),
        resolves=lambda check, target, alert: (
            alert["resource"] == own_resource(scope, check, target)
        ),
    )
    return results, [*unreadable, *unreadable_records]
