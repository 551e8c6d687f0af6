"""`analyze`: current sizes, cluster utilisation, the forecaster's view and a recommendation.
Changes nothing.

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

from fleet_shared.exceptions import FleetError
from fleet_shared.inventory import FleetInventory
from fleet_shared.observability import observability_for
from handlers.eks_scaler.models import ScalerEvent, Status, node_group_result
from handlers.eks_scaler.runtime import FUNCTION_NAME, ScalerRuntime
from handlers.eks_scaler.scaling import describe_error, node_group_floor
from handlers.eks_scaler.sizing import Sizes

logger = observability_for(FUNCTION_NAME).logger

NAMESPACE = "ContainerInsights"
METRICS = {"cpu": "node_cpu_utilization", "memory": "node_memory_utilization"}
PERIOD_SECONDS = 300
FORECAST_HORIZON_MINUTES = 60


def analyze(
    event: ScalerEvent, runtime: ScalerRuntime, inventory: FleetInventory | None
) -> dict[str, Any]:
    """The analysis result: `results` per node group plus cluster `utilization` and `forecast`."""
    utilization = cluster_utilization(event, runtime)
    forecast = request_forecast(event, runtime)
    names = [group.name for group in event.nodegroups]
    results: list[dict[str, Any]] = []
    if not names:
        try:
            names = _list_node_groups(event, runtime)
        except (FleetError, ClientError, BotoCoreError) as error:
            results.append(node_group_result("*", Status.ERROR, describe_error(error)))
    for name in names:
        try:
            results.append(
                _analyze_one(
                    event,
                    name,
                    runtime,
                    inventory=inventory,
                    utilization=utilization,
                    forecast=forecast,
                )
            )
        except (FleetError, ClientError, BotoCoreError) as error:
            results.append(node_group_result(name, Status.ERROR, describe_error(error)))
    return {"utilization": utilization, "forecast": forecast, "results": results}


def cluster_utilization(event: ScalerEvent, runtime: ScalerRuntime) -> dict[str, Any]:
    """Average and peak node CPU and memory utilisation (%) of the cluster over the window.

    Never raises: a failure is reported as `{"available": false, "reason": ...}`.
    """
    window = runtime.environment.scaler_utilization_window_minutes
    end = runtime.clock.now()
    start = end - timedelta(minutes=window)
    queries = []
    for short, metric in METRICS.items():
        for stat in ("Average", "Maximum"):
            queries.append(
                {
                    "Id": f"{short}_{stat.lower()}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": [{"Name": "ClusterName", "Value": event.cluster}],
                        },
                        "Period": PERIOD_SECONDS,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    try:
        cloudwatch = runtime.sessions.client("cloudwatch", event.account_id, event.region)
        values: dict[str, list[float]] = {query["Id"]: [] for query in queries}
        request: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
        }
        while True:
            response = cloudwatch.get_metric_data(**request)
            for series in response["MetricDataResults"]:
                values[series["Id"]].extend(float(v) for v in series.get("Values", []))
            if not response.get("NextToken"):
                break
            request["NextToken"] = response["NextToken"]
    except (FleetError, ClientError, BotoCoreError) as error:
        return {"available": False, "reason": describe_error(error), "window_minutes": window}
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
    return summary


def request_forecast(event: ScalerEvent, runtime: ScalerRuntime) -> dict[str, Any]:
    """The forecaster's answer, invoked synchronously; never raises.

    `{"available": true, "result": {...}}` or `{"available": false, "reason": "forecast
    unavailable: ..."}` when FORECASTER_FUNCTION_NAME is unset, the call fails, or the forecaster
    returns an error.
    """
    function_name = runtime.environment.forecaster_function_name
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
        response = runtime.lambda_client().invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode("utf-8"),
        )
        body = response["Payload"].read()
        result = json.loads(body) if body else None
    except (ClientError, BotoCoreError, FleetError, ValueError) as error:
        logger.warning("forecast unavailable", extra={"error": str(error)})
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
    floor: int,
    *,
    utilization: dict[str, Any],
    forecast: tuple[int, str] | None,
    scale_up_at: float,
    scale_down_at: float,
) -> tuple[str, Sizes, str]:
    """(action, target sizes, reason): the forecaster's size when it has one, else one node more
    when the busier of CPU/memory averages above `scale_up_at`, one less below `scale_down_at`,
    always within the floor and max."""
    if forecast is not None:
        wanted, why = forecast
        desired = min(max(wanted, floor, current.min_size), current.max_size)
        reason = f"forecast: {why} (desired {wanted}, within floor {floor} and max)"
    elif not utilization.get("available"):
        return "none", current, f"no recommendation: {utilization.get('reason')}"
    else:
        busiest = max(
            utilization[name]["average"]
            for name in ("cpu", "memory")
            if utilization[name]["average"] is not None
        )
        if busiest > scale_up_at:
            desired = min(current.desired_size + 1, current.max_size)
            reason = f"utilisation {busiest}% is above {scale_up_at}%"
        elif busiest < scale_down_at:
            desired = max(current.desired_size - 1, floor, current.min_size)
            reason = f"utilisation {busiest}% is below {scale_down_at}%"
        else:
            return "none", current, f"utilisation {busiest}% is within the target band"
    target = Sizes(current.min_size, desired, current.max_size)
    if desired > current.desired_size:
        return "scale_up", target, reason
    if desired < current.desired_size:
        return "scale_down", target, reason
    return "none", current, f"{reason}; already at the bound (floor {floor}, max)"


def _analyze_one(
    event: ScalerEvent,
    name: str,
    runtime: ScalerRuntime,
    *,
    inventory: FleetInventory | None,
    utilization: dict[str, Any],
    forecast: dict[str, Any],
) -> dict[str, Any]:
    eks = runtime.sessions.client("eks", event.account_id, event.region)
    described = eks.describe_nodegroup(clusterName=event.cluster, nodegroupName=name)["nodegroup"]
    current = Sizes.from_eks(described["scalingConfig"])
    capacity_type = described.get("capacityType", "ON_DEMAND")
    floor = node_group_floor(event, name, capacity_type, inventory)
    action, target, reason = recommend(
        current,
        floor,
        utilization=utilization,
        forecast=forecast_desired(forecast, name),
        scale_up_at=runtime.environment.scaler_scale_up_utilization,
        scale_down_at=runtime.environment.scaler_scale_down_utilization,
    )
    return node_group_result(
        name,
        Status.NO_CHANGE_NEEDED if action == "none" else Status.DRY_RUN,
        reason,
        current.as_dict(),
        target.as_dict(),
        recommended_action=action,
        capacity_type=capacity_type,
        floor=floor,
        node_group_status=described.get("status"),
    )


def _list_node_groups(event: ScalerEvent, runtime: ScalerRuntime) -> list[str]:
    eks = runtime.sessions.client("eks", event.account_id, event.region)
    names: list[str] = []
    for page in eks.get_paginator("list_nodegroups").paginate(clusterName=event.cluster):
        names.extend(page["nodegroups"])
    return names
