"""The check incidents of clusters that left the fleet: resolved once, not forgotten open.

A cluster's checks run only while it is in the inventory, so the check incidents open when it
left (removed from the inventory, or its member account with it) would never pass again: they
stayed open, and their PagerDuty incidents with them, until their records were forgotten a week
later. A failing check notes its incident under its cluster (`incidents.CHECK_INCIDENTS`) and the
cluster in `incidents.CHECK_INCIDENT_CLUSTERS`, so the fleet run reads that index (one read),
and for each cluster in it that is not in the inventory reads its list (one read) and resolves
each incident of it still open, saying the cluster (or its account) left the fleet. Incidents
settled (closed, their resolution sent) are forgotten from the list by the next run, and a cluster
whose list is empty from the index. An index or list that cannot be read resolves nothing; a note
of the index that cannot be read, or names no cluster, is one error, the others resolved, and so
is an entry of a cluster's list that cannot be read, or names no check and target. As for
the accounts and regions without a cluster (deleted_alarms.py), a cluster with incidents listed is
resolved only while the invocation has a cluster's AWS time left (else it is `not_checked`), and
the clusters a run left so (`LEFT_CLUSTERS_LEFT`) go before the inventory's clusters in the next
run: resolved after them, they would never be reached in a fleet whose runs end their clusters
short of time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from fleet_shared.targets_left import TargetsLeftList
from fleet_shared.validation_errors import cut_echo
from handlers.health_monitor.cluster_time import CLUSTER_AWS_SECONDS
from handlers.health_monitor.incidents import (
    CHECK_INCIDENT_CLUSTERS,
    Scope,
    Settlement,
    settle_incidents,
)
from handlers.health_monitor.left_targets import open_listed_results, read_check_incidents
from handlers.health_monitor.report import NOT_CHECKED
from handlers.health_monitor.runner import logger
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices

CLUSTER_LEFT = "cluster_left"
MEMBER_LEFT = "member_left"
ERROR = "error"
LEFT_FLEET = "left_fleet"
"""What the run's `not_checked` names after a left cluster's label: its resolutions."""

LEFT_CLUSTERS_LEFT = TargetsLeftList(
    f"{FUNCTION_NAME}/left-clusters-not-checked", "clusters", ttl_seconds=24 * 3600
)
"""The clusters that left the fleet a fleet run left `not_checked` for lack of time, in its
order, resolved first by the next run; forgotten after a day, which only means the next run
resolves them after the clusters again."""


@dataclass
class LeftClusterRun:
    """The report of one cluster that left the fleet, and what settling its incidents did."""

    report: dict[str, Any]
    settlement: Settlement = field(default_factory=Settlement)


def left_clusters_left_before(services: HealthServices) -> list[Scope]:
    """The clusters that left the fleet the last fleet run left for lack of time, in its order;
    none when the list cannot be read, or holds something that is no cluster."""
    return [
        Scope(str(cluster["account_id"]), str(cluster["region"]), str(cluster["cluster"]))
        for cluster in LEFT_CLUSTERS_LEFT.read(services.state, logger)
        if isinstance(cluster, dict) and {"account_id", "region", "cluster"} <= cluster.keys()
    ]


def resolve_left_clusters(
    services: HealthServices,
    inventory: FleetInventory,
    scopes: list[Scope],
    invocation: Invocation,
) -> list[LeftClusterRun]:
    """Resolve the open check incidents of each of `scopes` that `inventory` no longer has, in
    the order given; a cluster is reported only while its list holds some."""
    in_inventory = {
        Scope(member.account_id, cluster.region, cluster.name).label
        for member, cluster in inventory.clusters()
    }
    runs = []
    for scope in scopes:
        if scope.label in in_inventory:
            continue
        runs.extend(_left_cluster_runs(services, inventory, scope, invocation))
    return runs


def resolve_noted_left_clusters(
    services: HealthServices,
    inventory: FleetInventory,
    invocation: Invocation,
    *,
    walked: list[Scope],
) -> list[LeftClusterRun]:
    """Resolve the open check incidents of every cluster noted with some that `inventory` no
    longer has, in label order, except those this run `walked` already. An index that cannot be
    read is one `error` report, naming no cluster; a note of it that cannot be read, or names no
    cluster, is one `error` report naming the note, and the others are resolved."""
    try:
        noted = services.state.readable_values_named(CHECK_INCIDENT_CLUSTERS, "")
    except AWS_CALL_ERRORS as error:
        logger.warning(
            "the clusters with check incidents could not be read",
            extra={"error": repr(error)},
        )
        return [
            LeftClusterRun(
                {
                    "status": ERROR,
                    "error": f"clusters with check incidents could not be read: "
                    f"{call_error_text(error)}",
                }
            )
        ]
    unread = [_unread_note(str(error)) for error in noted.unreadable.values()]
    scopes: list[Scope] = []
    for name, note in sorted(noted.values.items()):
        scope = _noted_scope(note.value)
        if scope is None:
            unread.append(
                _unread_note(
                    f"{CHECK_INCIDENT_CLUSTERS} note {name[:60]!r} names no cluster "
                    "(account_id, region and cluster as text)"
                )
            )
        else:
            scopes.append(scope)
    return unread + resolve_left_clusters(
        services, inventory, [scope for scope in scopes if scope not in walked], invocation
    )


def _noted_scope(note: dict[str, Any]) -> Scope | None:
    """The cluster a note of CHECK_INCIDENT_CLUSTERS names; None when it lacks a part or one is
    not text (a hand edit), which would otherwise fail the whole run."""
    parts = [note.get(field) for field in ("account_id", "region", "cluster")]
    if not all(isinstance(part, str) and part for part in parts):
        return None
    account_id, region, cluster = parts
    return Scope(account_id, region, cluster)


def _unread_note(problem: str) -> LeftClusterRun:
    """The report of a note of CHECK_INCIDENT_CLUSTERS that cannot be read: its cluster, if it
    left, is not resolved by this run, the others are."""
    logger.warning("a cluster with check incidents could not be read", extra={"error": problem})
    return LeftClusterRun(
        {"status": ERROR, "error": f"a cluster with check incidents: {cut_echo(problem)}"}
    )


def save_left_clusters_left(
    services: HealthServices, runs: list[LeftClusterRun], left_before: list[Scope]
) -> None:
    """Save the clusters `runs` left `not_checked`, in the order they came to them, for the next
    run to resolve first."""
    LEFT_CLUSTERS_LEFT.save(
        services.state,
        [
            _stored_cluster(
                Scope(run.report["account_id"], run.report["region"], run.report["cluster"])
            )
            for run in runs
            if run.report["status"] == NOT_CHECKED
        ],
        [_stored_cluster(scope) for scope in left_before],
        logger,
    )


def _stored_cluster(scope: Scope) -> dict[str, str]:
    """A left cluster as `LEFT_CLUSTERS_LEFT` keeps it."""
    return {"account_id": scope.account_id, "region": scope.region, "cluster": str(scope.cluster)}


def _left_cluster_runs(
    services: HealthServices, inventory: FleetInventory, scope: Scope, invocation: Invocation
) -> list[LeftClusterRun]:
    """Resolve the open check incidents of one cluster that left; no run when none are listed
    (the cluster is then forgotten from the index), `not_checked` when some are and the
    invocation has no cluster's AWS time left. Each entry of its list that cannot be read, or
    names no check and target, is an `error` run of its own naming it, and the others are
    resolved."""
    member_left = inventory.member(scope.account_id) is None
    report: dict[str, Any] = {
        "account_id": scope.account_id,
        "region": scope.region,
        "cluster": scope.cluster,
    }
    try:
        listed, unreadable = read_check_incidents(services, scope)
        unread = [_failed_left_cluster(scope, report, error) for error in unreadable]
        if not listed and not unread:
            services.state.delete_value(CHECK_INCIDENT_CLUSTERS, scope.label)
            return []
        if not listed:
            return unread
        if not invocation.allows(CLUSTER_AWS_SECONDS):
            return [LeftClusterRun({**report, "status": NOT_CHECKED}), *unread]
        results, unreadable_records = open_listed_results(
            services, scope, listed, _why_left(scope, member_left)
        )
    except AWS_CALL_ERRORS as error:
        return [_failed_left_cluster(scope, report, error)]
    settlement = settle_incidents(results, services, scope, invocation)
    unread += [
        _failed_left_cluster(scope, report, error)
        for error in [*unreadable_records, *settlement.unreadable]
    ]
    status = MEMBER_LEFT if member_left else CLUSTER_LEFT
    return [
        LeftClusterRun({**report, "status": status, "alerts": settlement.counts()}, settlement),
        *unread,
    ]


def _failed_left_cluster(scope: Scope, report: dict[str, Any], error: Exception) -> LeftClusterRun:
    """The `error` run (`report`) of the cluster `scope` whose check incidents, or one of them,
    could not be read, logged with the error and reported with a short prefix of its text."""
    logger.warning(
        "check incidents of a cluster that left the fleet could not be read",
        extra={"cluster": scope.label, "error": repr(error)},
    )
    return LeftClusterRun(
        {
            **report,
            "status": ERROR,
            "error": f"check incidents could not be read: {call_error_text(error)}",
        }
    )


def _why_left(scope: Scope, member_left: bool) -> Callable[[str, str], str]:
    """What the resolutions of the incidents of a cluster that left say."""
    if member_left:
        why = (
            f"account {scope.account_id} left the fleet: "
            f"cluster {scope.cluster} is no longer checked"
        )
    else:
        why = f"cluster {scope.cluster} left the fleet: it is no longer checked"
    return lambda check, target: why
