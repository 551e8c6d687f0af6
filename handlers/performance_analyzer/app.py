"""performance_analyzer: every 4 hours, per cluster of the inventory, utilisation, bottlenecks
and week-over-week trends, written to the data bucket; a regression raises one alert.

Events: the schedule's `analyze_fleet`, or `analyze_cluster` for one cluster. Reference:
docs/functions/performance_analyzer.md. A fleet run also resolves the open regressions of the
clusters the inventory no longer has (`regressions.resolve_removed_cluster`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import EventValidationError, FleetError
from fleet_shared.fan_out import NOT_STARTED, TimeBudget, map_isolated
from fleet_shared.handler import FleetFunction, Invocation
from fleet_shared.inventory import Cluster
from fleet_shared.target_results import OK, PARTIAL
from fleet_shared.validation_errors import cut_echo, shown_value
from handlers.performance_analyzer.analysis import analyse_cluster
from handlers.performance_analyzer.environment import PerformanceEnvironment
from handlers.performance_analyzer.models import AnalyzeClusterEvent, AnalyzeFleetEvent
from handlers.performance_analyzer.region_load_balancers import RegionLoadBalancers
from handlers.performance_analyzer.regressions import (
    OPEN_REGRESSIONS_KEY,
    open_regression_clusters,
    resolve_removed_cluster,
)
from handlers.performance_analyzer.services import FUNCTION_NAME, PerformanceServices

FUNCTION = FleetFunction(FUNCTION_NAME, PerformanceEnvironment, services=PerformanceServices.create)

RESOURCE_PARTS = 3
"""An indexed resource is `<account>/<region>/<cluster>`."""
CLUSTER_SECONDS = 30.0
"""What one cluster's calls (two GetMetricData windows, ELB tags, S3, state table, SNS) may take."""

_ACTION_MODELS: dict[str, type[AnalyzeFleetEvent] | type[AnalyzeClusterEvent]] = {
    "analyze_fleet": AnalyzeFleetEvent,
    "analyze_cluster": AnalyzeClusterEvent,
}


def parse_request(event: object) -> AnalyzeFleetEvent | AnalyzeClusterEvent:
    """The model the event's `action` names; raises EventValidationError naming the field."""
    if not isinstance(event, Mapping):
        raise EventValidationError("event", f"expected a JSON object, got {type(event).__name__}")
    action = event.get("action")
    if not isinstance(action, str) or action not in _ACTION_MODELS:
        raise EventValidationError("action", f"must be one of {', '.join(sorted(_ACTION_MODELS))}")
    return parse_event(_ACTION_MODELS[action], event)


@FUNCTION.handler(parse_request)
def handle(
    request: AnalyzeFleetEvent | AnalyzeClusterEvent,
    services: PerformanceServices,
    invocation: Invocation,
) -> dict[str, Any]:
    """Analyse the clusters the event names; one cluster's failure is its own result."""
    inventory = services.inventory()
    if isinstance(request, AnalyzeClusterEvent):
        cluster = inventory.find_cluster(request.account_id, request.region, request.cluster)
        if cluster is None:
            raise EventValidationError(
                "cluster",
                f"{request.cluster} in {request.account_id}/{request.region} is not in the fleet "
                "inventory",
            )
        targets = [(request.account_id, cluster)]
    else:
        targets = [(member.account_id, cluster) for member, cluster in inventory.clusters()]

    def not_started(target: object) -> dict[str, Any]:
        account_id, cluster = target  # type: ignore[misc]
        return _cluster_fields(account_id, cluster, status=NOT_STARTED)

    def failed(target: tuple[str, Cluster], error: Exception) -> dict[str, Any]:
        account_id, cluster = target
        FUNCTION.logger.warning(
            "cluster analysis failed", extra={"cluster": cluster.name, "error": str(error)}
        )
        return error_result(error, **_cluster_fields(account_id, cluster))

    # One finding of each region's load balancers serves all its clusters.
    load_balancers = RegionLoadBalancers(
        (account_id, cluster.region, cluster.name) for account_id, cluster in targets
    )
    results = map_isolated(
        targets,
        lambda target: analyse_cluster(
            services, FUNCTION.logger, *target, deadline=invocation, load_balancers=load_balancers
        ),
        on_error=failed,
        errors=(FleetError, *AWS_CALL_ERRORS),
        max_workers=services.environment.performance_max_workers,
        budget=TimeBudget(invocation, CLUSTER_SECONDS, not_started),
    )
    FUNCTION.observability.metrics.add_metric(
        name="ClustersAnalysed", unit="Count", value=sum(r["status"] == "ok" for r in results)
    )
    response: dict[str, Any] = {
        "action": request.action,
        "bottlenecks": sum(len(result.get("bottlenecks", [])) for result in results),
        "regressions": sum(len(result.get("regressions", [])) for result in results),
        "clusters": results,
    }
    settled = results
    if isinstance(request, AnalyzeFleetEvent):
        present = {
            f"{account_id}/{cluster.region}/{cluster.name}" for account_id, cluster in targets
        }
        removed = _resolve_removed_clusters(services, present, invocation)
        response["removed_clusters"] = removed
        settled = [*results, *removed]
    return {
        **response,
        "status": OK if all(result["status"] == OK for result in settled) else PARTIAL,
    }


def _resolve_removed_clusters(
    services: PerformanceServices, present: set[str], invocation: Invocation
) -> list[dict[str, Any]]:
    """Resolve the open regressions of every indexed cluster not in `present` (the inventory):
    one result each, an error of its own, or `not_started` without the time for it. An entry
    of the index that cannot be read is an error of its own, naming it, never its data."""
    try:
        indexed, unreadable = open_regression_clusters(services)
    except AWS_CALL_ERRORS as error:
        FUNCTION.logger.warning("open regressions not listed", extra={"error": str(error)})
        return [error_result(error, resource=None)]
    removed = []
    for error in unreadable:
        FUNCTION.logger.warning("an open regression not read", extra={"error": str(error)})
        removed.append(error_result(error, resource=error.name))
    for resource in indexed:
        if resource in present:
            continue
        if not invocation.allows(CLUSTER_SECONDS):
            removed.append({"resource": resource, "status": NOT_STARTED})
            continue
        # The resource is `<account>/<region>/<cluster>`, as `analyse_cluster` names it; the
        # index is a state table record all the same, which a hand can edit.
        parts = resource.split("/", 2)
        if len(parts) != RESOURCE_PARTS or not all(parts):
            removed.append(
                {
                    "resource": cut_echo(resource),
                    "status": "error",
                    "error": f"{shown_value(resource)} in {OPEN_REGRESSIONS_KEY} is not "
                    "<account>/<region>/<cluster>: its regressions cannot be resolved",
                }
            )
            continue
        account_id, region, _ = parts
        try:
            alerts = resolve_removed_cluster(
                services,
                FUNCTION.logger,
                resource=resource,
                account_id=account_id,
                region=region,
                deadline=invocation,
            )
        except (FleetError, *AWS_CALL_ERRORS) as error:
            FUNCTION.logger.warning(
                "open regressions of a removed cluster not resolved",
                extra={"resource": resource, "error": str(error)},
            )
            removed.append(error_result(error, resource=resource))
            continue
        removed.append({"resource": resource, "status": OK, "alerts": alerts})
    return removed


def _cluster_fields(account_id: str, cluster: Cluster, **extra: Any) -> dict[str, Any]:
    return {"account_id": account_id, "region": cluster.region, "cluster": cluster.name, **extra}


lambda_handler = FUNCTION.lambda_handler
