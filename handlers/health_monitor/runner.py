"""Runs the registered checks on clusters, raises the alerts and publishes the metrics.

Isolation: a member account whose role cannot be assumed yields one critical `member_access`
result for its clusters; a check that fails with an AWS error yields one warning result for that
check; an unexpected error in one cluster is that cluster's `error` report. In every case the
other checks and clusters go on.

Alerts: each failed check raises an alert with its severity. A check failing every five minutes
must not alert every five minutes, so an alert is sent once per HEALTH_ALERT_WINDOW_SECONDS per
(alert id, severity); an escalation from warning to critical is a new alert. The claim is an
idempotent request in the state table rather than a bare `claim_once`, because a claim must be
given back when publishing fails, or the alert would be lost for the whole window.

Every function here takes the monitor's `HealthServices`; logs and metrics go to the function's
one `Observability` (the skeleton's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Alert, Severity
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import FleetError, MemberAccessError, RequestInProgressError
from fleet_shared.fan_out import map_isolated
from fleet_shared.observability import NAMESPACE, observability_for
from handlers.health_monitor.checks import CHECKS
from handlers.health_monitor.checks.base import ClusterContext, ClusterTarget
from handlers.health_monitor.report import CheckResult, worst_status
from handlers.health_monitor.services import FUNCTION_NAME, HealthServices

SOURCE = FUNCTION_NAME
MEMBER_ACCESS_CHECK = "member_access"
ALERT_SCOPE = "health_monitor/alerts"

OBSERVABILITY = observability_for(SOURCE)
logger = OBSERVABILITY.logger


def check_clusters(targets: list[ClusterTarget], services: HealthServices) -> list[dict[str, Any]]:
    """Reports of `targets`, checked in parallel threads, in the order given."""
    OBSERVABILITY.metrics.add_metric(
        name="ClustersChecked", unit=MetricUnit.Count, value=len(targets)
    )
    return map_isolated(
        targets,
        lambda target: cluster_report(target, services),
        on_error=_failed_cluster_report,
        errors=(Exception,),
        max_workers=services.environment.health_max_workers,
    )


def _failed_cluster_report(target: ClusterTarget, error: Exception) -> dict[str, Any]:
    """An `error` report when something unexpected broke for this cluster only."""
    logger.error(
        "health check of a cluster failed",
        extra={"cluster": target.label, "error": repr(error)},
        exc_info=error,
    )
    return error_result(
        error, account_id=target.account_id, region=target.region, cluster=target.name
    )


def cluster_report(target: ClusterTarget, services: HealthServices) -> dict[str, Any]:
    """Run every registered check on one cluster, alert on failures, publish metrics."""
    results = run_checks(target, services)
    alerts = raise_alerts(results, services, target.account_id, target.region, target.name)
    publish_metrics(target, results)
    return {
        "account_id": target.account_id,
        "region": target.region,
        "cluster": target.name,
        "status": worst_status(results),
        "checks": [result.as_dict() for result in results],
        "alerts": alerts,
    }


def run_checks(target: ClusterTarget, services: HealthServices) -> list[CheckResult]:
    """The results of every check in `CHECKS`, each isolated from the others."""
    try:
        services.sessions.session(target.account_id, target.region)
    except MemberAccessError as error:
        return [
            CheckResult.failed(
                MEMBER_ACCESS_CHECK, target.account_id, Severity.CRITICAL, str(error)
            )
        ]
    context = ClusterContext(
        target,
        client=lambda service: services.sessions.client(service, target.account_id, target.region),
        environment=services.environment,
        state=services.state,
        clock=services.clock,
        probe=services.probe,
    )
    results: list[CheckResult] = []
    for check in CHECKS:
        try:
            results.extend(check.run(context))
        except (ClientError, BotoCoreError, FleetError) as error:
            logger.warning(
                "check could not run", extra={"check": check.name, "cluster": target.label}
            )
            results.append(
                CheckResult.failed(
                    check.name, target.name, Severity.WARNING, f"check could not run: {error}"
                )
            )
    return results


def raise_alerts(
    results: Iterable[CheckResult],
    services: HealthServices,
    account_id: str,
    region: str,
    cluster: str | None,
) -> dict[str, int]:
    """Publish an alert per failed result unless the same one went out within the window.

    Returns counts: `sent`, `suppressed` (sent earlier within the window, or being sent by a
    concurrent run) and `failed` (publishing failed; the claim is released for the next run).
    """
    counts = {"sent": 0, "suppressed": 0, "failed": 0}
    for result in results:
        if result.passed:
            continue
        alert = _alert_for(result, services, account_id, region, cluster)
        request_id = f"{alert.id}/{alert.severity.value}"
        try:
            with services.state.idempotent(
                ALERT_SCOPE,
                request_id,
                ttl_seconds=services.environment.health_alert_window_seconds,
            ) as request:
                if request.is_repeat:
                    counts["suppressed"] += 1
                    continue
                message_id = services.alerts.publish_or_log(alert, logger)
                if message_id is None:
                    # Leaving the block without completing gives the claim back for the next run.
                    counts["failed"] += 1
                    continue
                request.complete({"message_id": message_id})
                counts["sent"] += 1
        except RequestInProgressError:
            counts["suppressed"] += 1
        except (ClientError, BotoCoreError) as error:
            logger.error("alert claim failed", extra={"alert_id": alert.id, "error": str(error)})
            counts["failed"] += 1
    return counts


def _alert_for(
    result: CheckResult, services: HealthServices, account_id: str, region: str, cluster: str | None
) -> Alert:
    scope = f"{account_id}/{region}" + (f"/{cluster}" if cluster else "")
    title = result.title or f"{cluster or scope}: {result.name} check failed for {result.target}"
    return Alert.create(
        severity=result.severity,
        source=SOURCE,
        title=title,
        detail=result.detail,
        resource=result.resource or f"{scope}/{result.name}/{result.target}",
        account_id=account_id,
        region=region,
        timestamp=services.clock.now(),
    )


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
