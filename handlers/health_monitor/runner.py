"""Runs the registered checks on clusters, settles their incidents and publishes the metrics.

Isolation: a member account whose role cannot be assumed yields one critical `member_access`
result for its clusters; a check that fails with an AWS error yields one warning result for that
check; an unexpected error in one cluster is that cluster's `error` report. In every case the
other checks and clusters go on.

Alerts: the results of each cluster open, escalate and resolve incidents (incidents.py). Besides
the results in the report, a check that ran clears its own "could not run" failure, and an
assumed member role clears the account's `member_access` failure, so those incidents resolve too.
A run that completed the cluster's checks resolves the open incidents of the targets that left it
(left_targets.py); an entry of the cluster's list of check incidents that cannot be read is named
in the report's `errors`, and the other results are settled.
An alert SNS did not take fails the invocation once every cluster was checked and settled.

Deadline: with a `TimeBudget`, a cluster whose turn comes when the invocation could not finish
its AWS calls is not started (status `not_started`); within a cluster, a batch of endpoint probes
is started only while the invocation can finish it, and the endpoints left are listed in the
report's `not_probed`; a check's call to a member endpoint not yet given up is started only
while the invocation has one hung call and the report after it left
(`cluster_time.MEMBER_CALL_SECONDS_LEFT`), and a check refused one is listed in `not_checked`,
neither passed nor failed. The caller reports the run as `partial` in each case, and the fleet
run starts the next run with the clusters it left so (actions.py, `CLUSTERS_LEFT`).

Every function here takes the monitor's `HealthServices`; logs and metrics go to the function's
one `Observability` (the skeleton's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Severity
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import FleetError, MemberAccessError
from fleet_shared.fan_out import NOT_STARTED, TimeBudget, map_isolated
from fleet_shared.handler import Invocation
from fleet_shared.observability import NAMESPACE, observability_for
from fleet_shared.validation_errors import cut_echo
from handlers.health_monitor.checks import CHECKS
from handlers.health_monitor.checks.base import Check, ClusterContext, ClusterTarget
from handlers.health_monitor.exceptions import TooLittleTimeError
from handlers.health_monitor.incidents import Scope, Settlement, settle_incidents
from handlers.health_monitor.left_targets import left_target_results
from handlers.health_monitor.report import HEALTHY, NOT_CHECKED, CheckResult, worst_status
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices, member_calls_within

SOURCE = FUNCTION_NAME
MEMBER_ACCESS_CHECK = "member_access"

OBSERVABILITY = observability_for(SOURCE)
logger = OBSERVABILITY.logger


@dataclass
class ClusterRun:
    """The report of one cluster and the settlement of its incidents."""

    report: dict[str, Any]
    settlement: Settlement = field(default_factory=Settlement)


@dataclass
class CheckRun:
    """The results of a cluster's checks, and the passes that are in no report: a check that ran
    (its "could not run" failure is over) and the member role assumed."""

    results: list[CheckResult]
    cleared: list[CheckResult] = field(default_factory=list)
    not_probed: list[str] = field(default_factory=list)
    """The endpoints left for the next run for lack of time."""
    not_checked: list[str] = field(default_factory=list)
    """The checks that needed a member call there was no time left for (`TooLittleTimeError`)."""
    finished: list[str] = field(default_factory=list)
    """The checks that ran to their end, in `CHECKS` order: not those that errored or were not
    checked."""

    @property
    def complete(self) -> bool:
        """Whether every check ran to its end and every endpoint was probed: only then is a
        target no result names known to be gone, not just unseen this run."""
        return not self.not_probed and self.finished == [check.name for check in CHECKS]


def check_clusters(
    targets: list[ClusterTarget],
    services: HealthServices,
    invocation: Invocation,
    budget: TimeBudget | None = None,
) -> list[dict[str, Any]]:
    """Reports of `targets`, checked in parallel threads, in the order given.

    Raises the first `AlertNotDeliveredError` once every cluster was checked and settled.
    """
    runs = cluster_runs(targets, services, invocation, budget)
    for run in runs:
        run.settlement.raise_undelivered()
    return [run.report for run in runs]


def cluster_runs(
    targets: list[ClusterTarget],
    services: HealthServices,
    invocation: Invocation,
    budget: TimeBudget | None = None,
) -> list[ClusterRun]:
    """The runs of `targets`, checked in parallel threads, in the order given, each with what
    its settlement did not deliver, for the caller to raise once it has done the rest of its
    work: the fleet run walks the clusters that left and the places without a cluster after the
    clusters, and one cluster's alert SNS refuses every time must not stop them."""
    runs = map_isolated(
        targets,
        lambda target: cluster_run(target, services, invocation),
        on_error=_failed_cluster_run,
        errors=(Exception,),
        max_workers=services.environment.health_max_workers,
        budget=budget,
    )
    # A cluster left for the next run was not checked.
    checked = sum(1 for run in runs if run.report["status"] != NOT_STARTED)
    OBSERVABILITY.metrics.add_metric(name="ClustersChecked", unit=MetricUnit.Count, value=checked)
    return runs


def not_started_run(target: ClusterTarget) -> ClusterRun:
    """The report of a cluster left for the next run because time was running out."""
    return ClusterRun(
        {
            "account_id": target.account_id,
            "region": target.region,
            "cluster": target.name,
            "status": NOT_STARTED,
        }
    )


def _failed_cluster_run(target: ClusterTarget, error: Exception) -> ClusterRun:
    """An `error` report when something unexpected broke for this cluster only."""
    logger.error(
        "health check of a cluster failed",
        extra={"cluster": target.label, "error": repr(error)},
        exc_info=error,
    )
    return ClusterRun(
        error_result(error, account_id=target.account_id, region=target.region, cluster=target.name)
    )


def cluster_run(
    target: ClusterTarget, services: HealthServices, invocation: Invocation
) -> ClusterRun:
    """Run every registered check on one cluster, settle its incidents, publish metrics."""
    run = run_checks(target, services, invocation)
    scope = Scope(target.account_id, target.region, target.name)
    left, errors, unread = _left_targets(services, scope, run)
    settlement = settle_incidents([*run.results, *run.cleared, *left], services, scope, invocation)
    settlement.unsettled.extend(unread)
    publish_metrics(target, run.results)
    report: dict[str, Any] = {
        "account_id": target.account_id,
        "region": target.region,
        "cluster": target.name,
        "status": cluster_status(run),
        "checks": [
            *(result.as_dict() for result in run.results),
            *(not_checked_entry(name, target) for name in run.not_checked),
        ],
        "alerts": settlement.counts(),
    }
    if run.not_probed:
        report["not_probed"] = run.not_probed
    if run.not_checked:
        report["not_checked"] = run.not_checked
    errors += settlement.errors()
    if errors:
        report["errors"] = errors
    return ClusterRun(report, settlement)


def _left_targets(
    services: HealthServices, scope: Scope, run: CheckRun
) -> tuple[list[CheckResult], list[str], list[ClientError | BotoCoreError]]:
    """The resolutions of the open incidents of targets that left the cluster, when `run`
    completed its checks (none otherwise); the report's error of each entry of its list of
    check incidents that cannot be read, logged, whose incident is left for a person; and the
    state-table error that kept them from being read: the invocation then fails, and its retry
    resolves them."""
    if not run.complete:
        return [], [], []
    try:
        left, unreadable = left_target_results(services, scope, [*run.results, *run.cleared])
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "check incidents of the cluster could not be read",
            extra={"cluster": scope.label, "error": repr(error)},
        )
        return [], [], [error]
    errors = []
    for error in unreadable:
        logger.warning(
            "a check incident of the cluster could not be read",
            extra={"cluster": scope.label, "error": str(error)},
        )
        errors.append(f"check incident could not be read: {cut_echo(str(error))}")
    return left, errors, []


def cluster_status(run: CheckRun) -> str:
    """The worst status of the cluster's results; `not_checked` instead of `healthy` when some
    checks were not checked: a cluster is healthy only when every check ran and passed."""
    status = worst_status(run.results)
    if status == HEALTHY and run.not_checked:
        return NOT_CHECKED
    return status


def not_checked_entry(name: str, target: ClusterTarget) -> dict[str, Any]:
    """The report's entry of a check not checked for lack of time: neither passed nor failed."""
    return {
        "name": name,
        "target": target.name,
        "status": NOT_CHECKED,
        "detail": "not checked: too little time left",
    }


def run_checks(target: ClusterTarget, services: HealthServices, invocation: Invocation) -> CheckRun:
    """The results of every check in `CHECKS`, each isolated from the others."""
    try:
        services.sessions.session(target.account_id, target.region)
    except MemberAccessError as error:
        return CheckRun(
            [
                CheckResult.failed(
                    MEMBER_ACCESS_CHECK, target.account_id, Severity.CRITICAL, str(error)
                )
            ]
        )
    context = ClusterContext(
        target,
        client=lambda service: services.member_client(service, target.account_id, target.region),
        environment=services.environment,
        state=services.state,
        clock=services.clock,
        probe=services.probe,
        deadline=invocation,
    )
    run = CheckRun(
        [],
        [CheckResult.ok(MEMBER_ACCESS_CHECK, target.account_id, "member role assumed")],
    )
    with member_calls_within(invocation):
        for check in CHECKS:
            _run_check(check, context, run)
    run.not_probed = context.not_probed
    return run


def _run_check(check: Check, context: ClusterContext, run: CheckRun) -> None:
    """Add `check`'s results on `context`'s cluster to `run`: its own, a failed warning when it
    could not run, or its name to `not_checked` when there was no time for a call it needed."""
    target = context.target
    try:
        check_results = check.run(context)
    except TooLittleTimeError as error:
        # Neither a pass nor a failure: the check's incidents stay as they are for the next run.
        logger.info(
            "check not started for lack of time",
            extra={"check": check.name, "cluster": target.label, "call": error.operation},
        )
        run.not_checked.append(check.name)
        return
    except (FleetError, *AWS_CALL_ERRORS) as error:
        logger.warning("check could not run", extra={"check": check.name, "cluster": target.label})
        run.results.append(
            CheckResult.failed(
                check.name,
                target.name,
                Severity.WARNING,
                f"check could not run: {call_error_text(error)}",
            )
        )
        return
    run.results.extend(check_results)
    run.finished.append(check.name)
    if not any(_is_about_the_cluster(result, target) for result in check_results):
        run.cleared.append(CheckResult.ok(check.name, target.name, "check ran"))


def _is_about_the_cluster(result: CheckResult, target: ClusterTarget) -> bool:
    """Whether `result` settles the incident a "could not run" failure of its check opened: one
    about the cluster itself, named by it (not an alarm that has the cluster's name, whose
    incident is its ARN's)."""
    return result.target == target.name and not result.resource and not result.title


def publish_metrics(target: ClusterTarget, results: list[CheckResult]) -> None:
    """`HealthChecksPassed` and `HealthChecksFailed` for the cluster (dimensions cluster,
    account_id, region), emitted now as EMF: dimensions differ per cluster, so they cannot share
    the invocation's metric set."""
    passed = sum(1 for result in results if result.passed)
    for name, value in (
        ("HealthChecksPassed", passed),
        ("HealthChecksFailed", len(results) - passed),
    ):
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=NAMESPACE,
            default_dimensions={"service": OBSERVABILITY.service},
        ) as metric:
            metric.add_dimension(name="cluster", value=target.name)
            metric.add_dimension(name="account_id", value=target.account_id)
            metric.add_dimension(name="region", value=target.region)
