"""What each event asks of the monitor: the fleet, one cluster, or an alarm's state change.

Each returns the report the handler returns; runner.py checks the clusters and raises the alerts.
A cluster's report is `{"account_id", "region", "cluster", "status", "checks": [{"name",
"target", "status": "passed"|"failed", "severity", "detail", "data"}], "alerts": {"sent",
"resolved", "suppressed"}}`; `status` is the worst severity of the failed checks, `healthy` when
none failed and every check ran (`not_checked` when some were not checked for lack of time),
`error` for a cluster that could not be checked at all, `not_started` for one the
invocation had no time left to start (the fleet run, or the one-cluster run, is then `partial`).
A cluster whose endpoints could not all be probed in time names those left in `not_probed`: its
other results stand, and the run is `partial` too, its `not_probed` listing
`<account>/<region>/<cluster>/<endpoint>`; the next run probes them first. Likewise a check
there was no time left to call a member endpoint for is named in the cluster's `not_checked` (its
entry in `checks` has status `not_checked`), and in the run's as
`<account>/<region>/<cluster>/<check>`. A cluster whose list of check incidents holds entries
that cannot be read names each in `errors` (left_targets.py), its results settled as ever. The
next fleet run starts with the clusters this one left, not started or partly checked
(`CLUSTERS_LEFT`), so none is left for lack of time run after run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet_shared.alerts import Severity
from fleet_shared.exceptions import EventValidationError
from fleet_shared.fan_out import NOT_STARTED, TimeBudget
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from fleet_shared.listed_members import ListedMembers, note_listed_members
from fleet_shared.target_results import PARTIAL
from fleet_shared.targets_left import TargetsLeftList, in_turn_order
from fleet_shared.timestamps import iso_z
from handlers.health_monitor.checks.alarms import NAME as ALARM_CHECK
from handlers.health_monitor.checks.alarms import alarm_result
from handlers.health_monitor.checks.base import ClusterTarget
from handlers.health_monitor.cluster_time import CLUSTER_AWS_SECONDS
from handlers.health_monitor.deleted_alarms import (
    check_places,
    check_places_without_clusters,
    places_left_before,
    save_places_left,
)
from handlers.health_monitor.incidents import (
    OPEN_ALARM_INCIDENT_TTL_SECONDS,
    Scope,
    settle_incidents,
)
from handlers.health_monitor.left_clusters import (
    LEFT_FLEET,
    left_clusters_left_before,
    resolve_left_clusters,
    resolve_noted_left_clusters,
    save_left_clusters_left,
)
from handlers.health_monitor.models import CheckClusterEvent
from handlers.health_monitor.report import (
    NOT_CHECKED,
    CheckResult,
    worst_of_statuses,
    worst_status,
)
from handlers.health_monitor.runner import check_clusters, cluster_runs, logger, not_started_run
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices

if TYPE_CHECKING:
    from handlers.health_monitor.alarm_events import AlarmStateChangeEvent

CLUSTERS_LEFT = TargetsLeftList(
    f"{FUNCTION_NAME}/clusters-not-started", "clusters", ttl_seconds=24 * 3600
)
"""The labels of the clusters a fleet run left for lack of time, not started or partly checked
(`left_for_next_run`), for the next one; forgotten after a day, which only means the next run
starts in inventory order. The key keeps the name it had when it held only the clusters not
started, so a list saved before a deploy still orders the first run after it."""


LISTED_MEMBERS_KEY = f"{FUNCTION_NAME}/listed-members"
"""Where the monitor notes the accounts its inventories listed (`fleet_shared.listed_members`):
a place of an account the inventory does not list has left the fleet only if listed before."""


def note_listed_members_of(services: HealthServices, inventory: FleetInventory) -> ListedMembers:
    """Note the accounts `inventory` lists, each kept as long as an alarm incident's list after
    it stops being listed; the accounts noted before, by which the run judges which ones left."""
    return note_listed_members(
        services.state,
        LISTED_MEMBERS_KEY,
        inventory,
        now=services.clock.now(),
        keep_seconds=OPEN_ALARM_INCIDENT_TTL_SECONDS,
        logger=logger,
    )


def check_fleet(services: HealthServices, invocation: Invocation) -> dict[str, Any]:
    """Every cluster of every member account, each isolated from the others; a cluster is
    started only while the invocation has time for its AWS calls, and its endpoints are probed
    while it has time to finish them. The clusters the last run left, not started or partly
    checked, go first (`CLUSTERS_LEFT`, fleet_shared.targets_left); the reports are in inventory
    order. The accounts and regions without a cluster are walked after the clusters, except those
    the last run left for lack of time, walked before them (`deleted_alarms.PLACES_LEFT`). The
    open check incidents of clusters that left the inventory are resolved after the clusters
    (left_clusters.py), except those the last run left for lack of time, resolved before them
    (`left_clusters.LEFT_CLUSTERS_LEFT`), reported in `left_clusters` while any are listed. An
    alert SNS did not take, of a cluster or not, fails the invocation only once all of that is
    done and the lists of what was left are saved.

    `status` is `partial` when some clusters were not started (listed in `not_started`), some
    endpoints not probed (listed in `not_probed`) or some checks, places or left clusters not
    checked (listed in `not_checked`), else `health`: the worst status of the clusters checked.
    """
    inventory = services.inventory()
    listed = note_listed_members_of(services, inventory)
    targets = [
        ClusterTarget(member.account_id, cluster.region, cluster)
        for member, cluster in inventory.clusters()
    ]
    # The places and left clusters the last run had no time for go before the clusters: a run
    # short of time for its clusters would never come to them after.
    places_left = places_left_before(services)
    early_place_runs = check_places(services, inventory, listed, places_left, invocation)
    left_clusters_left = left_clusters_left_before(services)
    early_left_cluster_runs = resolve_left_clusters(
        services, inventory, left_clusters_left, invocation
    )
    left_before = CLUSTERS_LEFT.read(services.state, logger)
    in_turn = in_turn_order(targets, left_before, lambda target: target.label)
    budget = TimeBudget(invocation, CLUSTER_AWS_SECONDS, not_started_run)
    runs_in_turn = cluster_runs(in_turn, services, invocation, budget)
    reports_in_turn = [run.report for run in runs_in_turn]
    # One list, in the order this run came to the clusters: a run starts no cluster once time is
    # short, so one it left partly checked came before those it did not start, and goes before
    # them next run, where it has the whole invocation. Saved after them, it would be at the end
    # again whenever the fleet is too large for one run, and left partly checked every run.
    left = [
        target.label
        for target, report in zip(in_turn, reports_in_turn, strict=True)
        if left_for_next_run(report)
    ]
    CLUSTERS_LEFT.save(services.state, left, left_before, logger)
    left_cluster_runs = early_left_cluster_runs + resolve_noted_left_clusters(
        services, inventory, invocation, walked=left_clusters_left
    )
    save_left_clusters_left(services, left_cluster_runs, left_clusters_left)
    place_runs = early_place_runs + check_places_without_clusters(
        services, inventory, listed, invocation, walked=places_left
    )
    save_places_left(services, place_runs, places_left)
    # Raised once every list is saved and every left cluster and place walked: an alert SNS
    # refuses at every retry (its topic's key disabled) must not stop the others, nor the turns.
    for settled in [*runs_in_turn, *left_cluster_runs, *place_runs]:
        settled.settlement.raise_undelivered()
    place_runs.sort(key=lambda run: (run.report["account_id"], run.report["region"]))
    left_cluster_runs.sort(key=lambda run: _cluster_label(run.report))
    by_label = {
        target.label: report for target, report in zip(in_turn, reports_in_turn, strict=True)
    }
    reports = [by_label[target.label] for target in targets]
    checked = [report for report in reports if report["status"] != NOT_STARTED]
    health = worst_of_statuses(report["status"] for report in checked)
    result: dict[str, Any] = {
        "action": "check_fleet",
        "status": health,
        "health": health,
        "checked_at": iso_z(services.clock.now()),
        "clusters": reports,
    }
    if place_runs:
        result["alarm_regions"] = [place_run.report for place_run in place_runs]
    if left_cluster_runs:
        result["left_clusters"] = [run.report for run in left_cluster_runs]
    result = _with_left_over(result, reports)
    places_not_checked = [
        f"{place['account_id']}/{place['region']}/{ALARM_CHECK}"
        for place in (place_run.report for place_run in place_runs)
        if place["status"] == NOT_CHECKED
    ]
    left_clusters_not_checked = [
        f"{_cluster_label(run.report)}/{LEFT_FLEET}"
        for run in left_cluster_runs
        if run.report["status"] == NOT_CHECKED
    ]
    if places_not_checked or left_clusters_not_checked:
        result["status"] = PARTIAL
        result["not_checked"] = [
            *result.get("not_checked", []),
            *places_not_checked,
            *left_clusters_not_checked,
        ]
    return result


def _cluster_label(report: dict[str, Any]) -> str:
    """`<account>/<region>/<cluster>` of a left cluster's report; empty for the report of an
    index that could not be read, which names none."""
    if "cluster" not in report:
        return ""
    return f"{report['account_id']}/{report['region']}/{report['cluster']}"


def check_cluster(
    request: CheckClusterEvent, services: HealthServices, invocation: Invocation
) -> dict[str, Any]:
    """One cluster, which must be in the inventory (the monitor acts on fleet members only),
    started and probed only while the invocation has time, as in the fleet run; otherwise
    `status` is `partial` and `not_started` names it, or `not_probed` the endpoints left."""
    cluster = services.inventory().find_cluster(request.account_id, request.region, request.cluster)
    if cluster is None:
        raise EventValidationError(
            "cluster",
            f"{request.cluster} in {request.account_id}/{request.region} is not in the fleet "
            "inventory",
        )
    targets = [ClusterTarget(request.account_id, request.region, cluster)]
    budget = TimeBudget(invocation, CLUSTER_AWS_SECONDS, not_started_run)
    [report] = check_clusters(targets, services, invocation, budget)
    result: dict[str, Any] = {
        "action": "check_cluster",
        "status": report["status"],
        "clusters": [report],
    }
    return _with_left_over(result, [report])


def alarm_state_change(
    request: AlarmStateChangeEvent, services: HealthServices, invocation: Invocation
) -> dict[str, Any]:
    """Judge the alarm from the event; when it entered ALARM, check the clusters it concerns
    right away (those named by its ClusterName dimension, else every cluster of the account and
    region) instead of waiting for the next scheduled run, each only while the invocation has
    time for it (the others are listed in `not_started`, the endpoints left in `not_probed`)."""
    detail = request.detail
    result: CheckResult = alarm_result(
        detail.alarmName,
        request.alarm_arn,
        detail.state.value,
        detail.state.reason,
        services.environment.health_critical_alarm_patterns,
        since=detail.state.timestamp,
    )
    settlement = settle_incidents(
        [result], services, Scope(request.account, request.region, cluster=None), invocation
    )
    reports: list[dict[str, Any]] = []
    if not result.passed and result.severity != Severity.INFO:
        inventory = services.inventory()
        # Noted here too: the account may leave before the next fleet run, which then knows it
        # was listed (`deleted_alarms._left_member_runs`).
        note_listed_members_of(services, inventory)
        targets = _clusters_of_alarm(request, inventory)
        budget = TimeBudget(invocation, CLUSTER_AWS_SECONDS, not_started_run)
        reports = check_clusters(targets, services, invocation, budget)
    settlement.raise_undelivered()
    checked = [report["status"] for report in reports if report["status"] != NOT_STARTED]
    response: dict[str, Any] = {
        "action": "alarm_state_change",
        "account_id": request.account,
        "region": request.region,
        "status": worst_of_statuses([worst_status([result]), *checked]),
        "alarm": result.as_dict(),
        "alerts": settlement.counts(),
        "clusters": reports,
    }
    if settlement.unreadable:
        response["errors"] = settlement.errors()
    response.update(_left_over(reports))
    return response


def left_for_next_run(report: dict[str, Any]) -> bool:
    """Whether a cluster's report leaves some of its checking for the next run for lack of time:
    the cluster not started, a check refused its member call (`not_checked`) or an endpoint not
    probed (`not_probed`, every one of them when the cluster was started with less than its
    AWS calls' time and its longest endpoint timeout left)."""
    return report["status"] == NOT_STARTED or bool(
        report.get("not_checked") or report.get("not_probed")
    )


def _with_left_over(result: dict[str, Any], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """`result` made `partial`, naming what `reports` left for the next run, when they did."""
    left_over = _left_over(reports)
    if left_over:
        result["status"] = PARTIAL
    result.update(left_over)
    return result


def _left_over(reports: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What `reports` left for the next run, by kind, only the kinds they left:
    `not_started`, `<account>/<region>/<cluster>` of the clusters; `not_probed`,
    `<account>/<region>/<cluster>/<endpoint>` of the endpoints; `not_checked`,
    `<account>/<region>/<cluster>/<check>` of the checks there was no time for."""
    labels = [
        (report, f"{report['account_id']}/{report['region']}/{report['cluster']}")
        for report in reports
    ]
    left_over = {
        "not_started": [label for report, label in labels if report["status"] == NOT_STARTED],
        **{
            kind: [f"{label}/{name}" for report, label in labels for name in report.get(kind, [])]
            for kind in ("not_probed", "not_checked")
        },
    }
    return {kind: left for kind, left in left_over.items() if left}


def _clusters_of_alarm(
    request: AlarmStateChangeEvent, inventory: FleetInventory
) -> list[ClusterTarget]:
    member = inventory.member(request.account)
    if member is None:
        return []
    in_region = [cluster for cluster in member.clusters if cluster.region == request.region]
    named = request.detail.cluster_names()
    chosen = [cluster for cluster in in_region if cluster.name in named] or in_region
    return [ClusterTarget(member.account_id, request.region, cluster) for cluster in chosen]
