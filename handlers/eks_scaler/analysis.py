"""`analyze`: current sizes, cluster utilisation, the forecaster's view, a recommendation, the
autoscaler that manages each node group, if any (autoscalers.py), and the cluster's last
predictive decisions (fleet_shared/predictive_decisions.py). Changes nothing.

Utilisation comes from CloudWatch Container Insights in the member account: the
`node_cpu_utilization` and `node_memory_utilization` metrics of the `ContainerInsights`
namespace with the single dimension `ClusterName`. Container Insights publishes node metrics per
cluster (`ClusterName`) and per node (`ClusterName`, `InstanceId`, `NodeName`) but has no node
group dimension, so the recommendation of every node group of a cluster rests on the cluster's
figures; the forecaster, when it names a node group, refines that.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.exceptions import FleetError, UnreadableStateValueError
from fleet_shared.inventory import FleetInventory
from fleet_shared.metric_data import MetricQuery, get_metric_series
from fleet_shared.node_group_autoscalers import declared_autoscaler
from fleet_shared.predictive_decisions import decisions_key, recent_decisions
from handlers.eks_scaler.autoscalers import left_alone_explanation, managing_autoscaler
from handlers.eks_scaler.declared_node_groups import undeclared_refusal
from handlers.eks_scaler.member_node_groups import (
    describe_error,
    describe_node_group,
    list_node_groups,
)
from handlers.eks_scaler.models import ScalerEvent, Status, node_group_result
from handlers.eks_scaler.services import ScalerServices
from handlers.eks_scaler.sizing import Limits, Sizes, node_group_limits

NAMESPACE = "ContainerInsights"
METRICS = {"cpu": "node_cpu_utilization", "memory": "node_memory_utilization"}
PERIOD_SECONDS = 300
FORECAST_HORIZON_MINUTES = 60


def analyze(
    event: ScalerEvent, services: ScalerServices, inventory: FleetInventory | None
) -> dict[str, Any]:
    """The analysis result: `results` per node group plus cluster `utilization`, `forecast` and
    `predictive_decisions` (newest first; None with `predictive_decisions_unavailable` saying
    why when the state table cannot be read)."""
    utilization = cluster_utilization(event, services)
    forecast = request_forecast(event, services)
    names = [group.name for group in event.nodegroups]
    results: list[dict[str, Any]] = []
    if not names:
        try:
            eks = services.member_client("eks", event.account_id, event.region)
            names = list_node_groups(eks, event.cluster)
        except (FleetError, *AWS_CALL_ERRORS) as error:
            results.append(node_group_result("*", Status.ERROR, describe_error(error)))
    for name in names:
        try:
            results.append(
                _analyze_one(
                    event,
                    name,
                    services,
                    inventory=inventory,
                    utilization=utilization,
                    forecast=forecast,
                )
            )
        except (FleetError, *AWS_CALL_ERRORS) as error:
            results.append(node_group_result(name, Status.ERROR, describe_error(error)))
    analysis: dict[str, Any] = {"utilization": utilization, "forecast": forecast}
    try:
        analysis["predictive_decisions"] = recent_decisions(
            services.state, decisions_key(event.account_id, event.region, event.cluster)
        )
    except (ClientError, BotoCoreError, UnreadableStateValueError) as error:
        # None, not []: the decisions are unknown, which is not the same as none made.
        analysis["predictive_decisions"] = None
        analysis["predictive_decisions_unavailable"] = (
            f"predictive decisions unavailable: {describe_error(error)}"
        )
    return {**analysis, "results": results}


def cluster_utilization(event: ScalerEvent, services: ScalerServices) -> dict[str, Any]:
    """Average and peak node CPU and memory utilisation (%) of the cluster over the window.

    Never raises: a failure is reported as `{"available": false, "reason": ...}`.
    """
    window = services.environment.scaler_utilization_window_minutes
    end = services.clock.now()
    start = end - timedelta(minutes=window)
    queries = [
        MetricQuery(
            f"{short}_{stat.lower()}",
            NAMESPACE,
            metric,
            {"ClusterName": event.cluster},
            stat,
            PERIOD_SECONDS,
        )
        for short, metric in METRICS.items()
        for stat in ("Average", "Maximum")
    ]
    try:
        cloudwatch = services.member_client("cloudwatch", event.account_id, event.region)
        series = get_metric_series(cloudwatch, queries, start, end)
    except (FleetError, *AWS_CALL_ERRORS) as error:
        return {"available": False, "reason": describe_error(error), "window_minutes": window}
    values = {query_id: found.values for query_id, found in series.items()}
    if not values["cpu_average"] and not values["memory_average"]:
        return {
            "available": False,
            "reason": f"no Container Insights data for cluster {event.cluster} in the last "
            f"{window} minutes",
            "window_minutes": window,
        }
    summary: dict[str, Any] = {"available": True, "window_minutes": window}
    for short in METRICS:
        averages = values[f"{short}_average"]
        peaks = values[f"{short}_maximum"]
        summary[short] = {
            "average": round(sum(averages) / len(averages), 2) if averages else None,
            "maximum": round(max(peaks), 2) if peaks else None,
            "datapoints": len(averages),
        }
    # A value no metric can have would make the average NaN or infinite, and the
    # recommendation follow it: it is left out, and named.
    summary["left_out"] = [
        f"{query_id}: {left_out}"
        for query_id, found in series.items()
        if (left_out := found.left_out_summary()) is not None
    ]
    return summary


def request_forecast(event: ScalerEvent, services: ScalerServices) -> dict[str, Any]:
    """The forecaster's answer, invoked synchronously; never raises.

    `{"available": true, "result": {...}}` or `{"available": false, "reason": "forecast
    unavailable: ..."}` when FORECASTER_FUNCTION_NAME is unset, the call fails, or the forecaster
    returns an error.
    """
    function_name = services.environment.forecaster_function_name
    if not function_name:
        return {
            "available": False,
            "reason": "forecast unavailable: FORECASTER_FUNCTION_NAME is not set",
        }
    payload = {
        "action": "forecast",
        "account_id": event.account_id,
        "region": event.region,
        "cluster": event.cluster,
        "horizon_minutes": FORECAST_HORIZON_MINUTES,
    }
    try:
        response = services.forecaster_client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode("utf-8"),
        )
        body = response["Payload"].read()
        result = json.loads(body) if body else None
    except (ClientError, BotoCoreError, FleetError, ValueError) as error:
        services.logger.warning("forecast unavailable", extra={"error": str(error)})
        return {"available": False, "reason": f"forecast unavailable: {describe_error(error)}"}
    if response.get("FunctionError"):
        message = result.get("errorMessage") if isinstance(result, dict) else None
        return {
            "available": False,
            "reason": f"forecast unavailable: the forecaster failed: {message or 'no message'}",
        }
    if not isinstance(result, dict) or result.get("status") == "error":
        problem = result.get("error") if isinstance(result, dict) else "not a JSON object"
        return {"available": False, "reason": f"forecast unavailable: {problem}"}
    return {"available": True, "result": result}


def forecast_desired(forecast: dict[str, Any], node_group: str) -> tuple[int, str] | None:
    """The forecaster's desired size for `node_group`, with its reason, when it gives one.

    Read from the demand forecaster's `result.recommendation`: a list of
    `{"name", "desired_size", "reason"?}`, one per node group.
    """
    if not forecast.get("available"):
        return None
    recommendations = forecast["result"].get("recommendation")
    if not isinstance(recommendations, list):
        return None
    for item in recommendations:
        if isinstance(item, dict) and item.get("name") == node_group:
            desired = item.get("desired_size")
            if isinstance(desired, int) and not isinstance(desired, bool) and desired >= 0:
                return desired, str(item.get("reason") or "the forecaster recommends it")
    return None


def recommend(
    current: Sizes,
    limits: Limits,
    *,
    utilization: dict[str, Any],
    forecast: tuple[int, str] | None,
    scale_up_at: float,
    scale_down_at: float,
) -> tuple[str, Sizes, str]:
    """(action, target sizes, reason): the forecaster's size when it has one, else one node more
    when the busier of CPU/memory averages above `scale_up_at`, one less below `scale_down_at`,
    always within the limits (floor and min_size, max_size)."""
    bounds = f"floor {limits.floor}, max_size {limits.highest}"
    if forecast is not None:
        wanted, why = forecast
        desired = min(max(wanted, limits.lowest), limits.highest)
        reason = f"forecast: {why} (desired {wanted}, within {bounds})"
    elif not utilization.get("available"):
        return "none", current, f"no recommendation: {utilization.get('reason')}"
    else:
        busiest = max(
            utilization[name]["average"]
            for name in ("cpu", "memory")
            if utilization[name]["average"] is not None
        )
        if busiest > scale_up_at:
            desired = min(current.desired_size + 1, limits.highest)
            reason = f"utilisation {busiest}% is above {scale_up_at}%"
        elif busiest < scale_down_at:
            desired = max(current.desired_size - 1, limits.lowest)
            reason = f"utilisation {busiest}% is below {scale_down_at}%"
        else:
            return "none", current, f"utilisation {busiest}% is within the target band"
    target = current.with_desired(desired)
    if desired > current.desired_size:
        return "scale_up", target, reason
    if desired < current.desired_size:
        return "scale_down", target, reason
    return "none", current, f"{reason}; already at the bound ({bounds})"


def _analyze_one(
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    *,
    inventory: FleetInventory | None,
    utilization: dict[str, Any],
    forecast: dict[str, Any],
) -> dict[str, Any]:
    eks = services.member_client("eks", event.account_id, event.region)
    described = describe_node_group(eks, event.cluster, name)
    configured = (
        inventory.find_node_group(event.account_id, event.region, event.cluster, name)
        if inventory is not None
        else None
    )
    limits = node_group_limits(described.sizes, described.capacity_type, configured)
    action, target, reason = recommend(
        described.sizes,
        limits,
        utilization=utilization,
        forecast=forecast_desired(forecast, name),
        scale_up_at=services.environment.scaler_scale_up_utilization,
        scale_down_at=services.environment.scaler_scale_down_utilization,
    )
    autoscaling = services.member_client("autoscaling", event.account_id, event.region)
    cluster = (
        inventory.find_cluster(event.account_id, event.region, event.cluster)
        if inventory is not None
        else None
    )
    autoscaler = managing_autoscaler(
        eks, autoscaling, event.cluster, name, declared=declared_autoscaler(cluster)
    )
    if autoscaler is not None:
        reason = f"{reason}; {left_alone_explanation(autoscaler)}"
    undeclared = undeclared_refusal(event, name, inventory)
    if undeclared is not None:
        reason = f"{reason}; {undeclared}"
    return node_group_result(
        name,
        Status.NO_CHANGE_NEEDED if action == "none" else Status.DRY_RUN,
        reason,
        described.sizes.as_dict(),
        target.as_dict(),
        recommended_action=action,
        capacity_type=described.capacity_type,
        floor=limits.floor,
        node_group_status=described.status,
        autoscaler=autoscaler.as_dict() if autoscaler is not None else None,
        declared=None if inventory is None else undeclared is None,
    )
