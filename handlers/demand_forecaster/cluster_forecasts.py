"""The two requests: one cluster of the inventory, or every cluster of it.

`forecast_fleet` forecasts the clusters one at a time; a cluster that fails is reported and the
others go on. A cluster is started only while the invocation has `cluster_seconds` left (one
bounded member read, its other work, a bounded call each of the state table and SNS and, in
predictive mode, asking the scaler): Lambda would otherwise end the run inside it and the
clusters after it would get nothing that hour. The clusters not started are `not_started`, the
run `partial`, and the next run starts with them (saved in the state table), so one slow cluster
cannot starve the same others every hour.

Each result is saved in the state table (key `forecast/<account>/<region>/<cluster>`, value
`latest`, kept `FORECAST_TTL_SECONDS`, for a person or a tool: no function reads it back) when
STATE_TABLE_NAME is set, and a node group whose
forecast needs more than its max_size raises a warning alert when ALERT_TOPIC_ARN is set. The
forecast stands when saving or an alert fails: that is listed under the cluster's `errors`.
The forecaster changes nothing itself; for a cluster in predictive mode it asks the scaler for
the next hour's sizes (predictive_request.py), and the scaler applies the fleet's dry run. A
predictive decision the scaler failed, or that could not be made, makes the run `partial` and
raises a warning when ALERT_TOPIC_ARN is set: nobody reads the hourly run's result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Alert, Severity
from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import EventValidationError, FleetError
from fleet_shared.fan_out import NOT_STARTED, Deadline
from fleet_shared.inventory import Cluster, MemberAccount
from fleet_shared.scheduled_runs import accepted_run
from fleet_shared.sessions import HUB_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from fleet_shared.targets_left import TargetsLeftList, in_turn_order
from handlers.demand_forecaster.environment import ForecasterEnvironment
from handlers.demand_forecaster.forecast import forecast_cluster
from handlers.demand_forecaster.models import FleetForecastRequest, ForecastRequest
from handlers.demand_forecaster.predictive_request import SIZES_KEPT, scale_predictively
from handlers.demand_forecaster.services import (
    READ_CALL_SECONDS,
    SCALER_CALL_SECONDS,
    ForecasterServices,
)

SOURCE = "demand_forecaster"
FORECAST_TTL_SECONDS = 6 * 3600
SCALER_ERROR_STATUS = "error"
"""The scaler's status of a node group it failed on (and of an answer it could not give)."""
PREDICTIVE_FAILURE_DETAIL_CHARS = 1000
"""The most of the scaler's error a predictive failure alert repeats."""
_TARGET_ERRORS = (FleetError, *AWS_CALL_ERRORS)
CLUSTER_WORK_SECONDS = 15
"""A cluster's work besides one member read that times out: the other reads, the model, the state
table and SNS answering."""
HUB_SILENCE_SECONDS = STATE_TABLE_CALL_SECONDS + HUB_CALL_SECONDS
"""The state table and SNS each not answering one call of the run (28 s): after that call, the
run's calls of that service fail at once (`fleet_shared.unanswered_endpoints`)."""
RUN_END_SECONDS = 5
"""Kept for the end of the fleet run: saving the clusters not started and returning."""
CLUSTERS_LEFT = TargetsLeftList(f"{SOURCE}/forecast-fleet", "clusters")
"""Where the clusters a fleet run left for lack of time are kept, for the next run."""


def forecast_one(
    services: ForecasterServices, request: ForecastRequest, logger: Any
) -> dict[str, Any]:
    """The forecast of the requested cluster, or an error result naming it."""
    cluster = services.inventory().find_cluster(request.account_id, request.region, request.cluster)
    if cluster is None:
        raise EventValidationError(
            "cluster",
            f"no cluster {request.cluster!r} in account {request.account_id} region "
            f"{request.region} of the fleet inventory",
        )
    try:
        return forecast_cluster(
            services,
            account_id=request.account_id,
            cluster=cluster,
            horizon_minutes=request.horizon_minutes,
            now=services.clock.now(),
        )
    except _TARGET_ERRORS as error:
        logger.warning("forecast failed", extra={"cluster": cluster.name, "error": str(error)})
        return error_result(
            error, account_id=request.account_id, region=request.region, cluster=cluster.name
        )


def forecast_fleet(
    services: ForecasterServices, request: FleetForecastRequest, invocation: Deadline, logger: Any
) -> dict[str, Any]:
    """A summary per cluster of the inventory, each forecast saved and its shortfalls alerted.

    The clusters the last run did not start go first, in the order it would have started them;
    a cluster is started only while the invocation has `cluster_seconds` left, the others are
    `not_started` and saved, in the order this run came to them, for the next run: so the
    clusters left over take turns and none is left out run after run. Results are in inventory
    order, whatever order the clusters were forecast in.
    """
    environment = services.environment
    if request.run is not None:
        # The run's hour names its requests to the scaler, which remembers one 48 hours: a
        # `run` of another day would be answered with that day's result, or take its id.
        accepted_run(request.run, services.clock.now())
    inventory = services.inventory()
    targets = {_target_key(*target): target for target in inventory.clusters()}
    # Without a state table there is no list: the run goes in inventory order.
    left_before = CLUSTERS_LEFT.read(services.state, logger) if environment.state_table_name else []
    order = in_turn_order(list(targets), left_before, _target_fields)
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    alerts = 0
    for key in order:
        member, cluster = targets[key]
        if not invocation.allows(cluster_seconds(cluster, environment)):
            by_key[key] = {"status": NOT_STARTED, **_target_fields(key)}
            continue
        by_key[key], sent = _forecast_fleet_cluster(
            services,
            request,
            member.account_id,
            cluster,
            dry_run=inventory.dry_run,
            logger=logger,
            # A cluster's further reads only while the run still has the time it was started
            # with: its rest (a read timing out, the hub's calls, the scaler) must still fit.
            next_call_allowed=functools.partial(
                invocation.allows, cluster_seconds(cluster, environment)
            ),
        )
        alerts += sent
    results = [by_key[key] for key in targets]
    not_started = [_target_fields(key) for key in targets if by_key[key]["status"] == NOT_STARTED]
    if not_started:
        logger.warning("clusters left for the next run", extra={"not_started": not_started})
    if environment.state_table_name:
        next_first = [_target_fields(key) for key in order if by_key[key]["status"] == NOT_STARTED]
        CLUSTERS_LEFT.save(services.state, next_first, left_before, logger)
    failed = sum(1 for r in results if r["status"] == "error")
    predictive_failed = sum(
        1 for r in results if "predictive" in r and predictive_failure(r["predictive"]) is not None
    )
    response: dict[str, Any] = {
        "status": "ok" if failed == 0 and predictive_failed == 0 and not not_started else "partial",
        "horizon_minutes": request.horizon_minutes,
        "clusters": results,
        "failed": failed,
        "predictive_failed": predictive_failed,
        "alerts": alerts,
    }
    if not_started:
        response["not_started"] = not_started
    return response


def cluster_seconds(cluster: Cluster, environment: ForecasterEnvironment) -> float:
    """The time left a fleet run needs to start `cluster`: one member read with every attempt
    timing out (a hung endpoint fails the cluster at its first call), its other work, one call
    each of the state table and SNS timing out, asking the scaler in predictive mode (when there
    is a scaler to ask), and the end of the run."""
    seconds = READ_CALL_SECONDS + CLUSTER_WORK_SECONDS + HUB_SILENCE_SECONDS + RUN_END_SECONDS
    if cluster.scaling.mode == "predictive" and environment.scaler_function_name is not None:
        seconds += SCALER_CALL_SECONDS
    return seconds


def _forecast_fleet_cluster(
    services: ForecasterServices,
    request: FleetForecastRequest,
    account_id: str,
    cluster: Cluster,
    *,
    dry_run: bool,
    logger: Any,
    next_call_allowed: Callable[[], bool],
) -> tuple[dict[str, Any], int]:
    """One cluster of the fleet run: its summary (or error result) and the alerts published."""
    environment = services.environment
    target = {"account_id": account_id, "region": cluster.region}
    alerts = 0
    try:
        result = forecast_cluster(
            services,
            account_id=account_id,
            cluster=cluster,
            horizon_minutes=request.horizon_minutes,
            now=services.clock.now(),
            next_call_allowed=next_call_allowed,
        )
    except _TARGET_ERRORS as error:
        logger.warning("forecast failed", extra={"cluster": cluster.name, "error": str(error)})
        failed = error_result(error, **target, cluster=cluster.name)
        alerts += _add_predictive(
            services,
            request,
            account_id,
            cluster,
            failed,
            forecast=None,
            problem=error,
            dry_run=dry_run,
            logger=logger,
        )
        return failed, alerts
    summary = {
        "status": "ok",
        **target,
        "cluster": cluster.name,
        "confidence": result["confidence"],
        "recommendation": result["recommendation"],
        "errors": list(result["errors"]),
    }
    if environment.state_table_name:
        key = f"forecast/{account_id}/{cluster.region}/{cluster.name}"
        try:
            services.state.put_value(key, "latest", result, ttl_seconds=FORECAST_TTL_SECONDS)
        except (ClientError, BotoCoreError) as error:
            summary["errors"].append({"node_group": None, "error": f"saving: {error}"})
    if environment.alert_topic_arn:
        for node_group, alert in shortfall_alerts(result, services.clock.now()):
            if services.alerts.publish_or_log(alert, logger) is None:
                summary["errors"].append({"node_group": node_group, "error": "alert not published"})
            else:
                alerts += 1
    alerts += _add_predictive(
        services,
        request,
        account_id,
        cluster,
        summary,
        forecast=result,
        problem=None,
        dry_run=dry_run,
        logger=logger,
    )
    return summary, alerts


def _target_key(member: MemberAccount, cluster: Cluster) -> tuple[str, str, str]:
    return (member.account_id, cluster.region, cluster.name)


def _target_fields(key: tuple[str, str, str]) -> dict[str, str]:
    account_id, region, cluster = key
    return {"account_id": account_id, "region": region, "cluster": cluster}


def _add_predictive(
    services: ForecasterServices,
    request: FleetForecastRequest,
    account_id: str,
    cluster: Cluster,
    cluster_result: dict[str, Any],
    *,
    forecast: dict[str, Any] | None,
    problem: Exception | None,
    dry_run: bool,
    logger: Any,
) -> int:
    """For a cluster in predictive mode, its predictive decision (on `forecast`, or on none for
    `problem`) added to `cluster_result` as `predictive`, and its failure reported: the alerts
    published (0 or 1). A cluster in another mode gets none."""
    if cluster.scaling.mode != "predictive":
        return 0
    try:
        decision = scale_predictively(
            services,
            account_id,
            cluster,
            forecast=forecast,
            problem=problem,
            dry_run=dry_run,
            run=request.run,
        )
    except _TARGET_ERRORS as error:
        cluster_result["predictive"] = {
            "outcome": "error",
            "reason": f"predictive decision not made: {error}"[:300],
        }
    else:
        cluster_result["predictive"] = _predictive_summary(decision)
    return _report_predictive_failure(services, cluster_result, logger)


def _predictive_summary(decision: dict[str, Any]) -> dict[str, Any]:
    """A predictive decision in short (the state table and the scaler's `analyze` keep it
    whole; `not_recorded` says why they do not)."""
    summary: dict[str, Any] = {
        "outcome": decision["outcome"],
        "reason": decision["reason"],
        "node_groups": [
            {
                "name": group["name"],
                "nodes_wanted": group.get("nodes_wanted"),
                "hand_back": group.get("hand_back", False),
                "scaler_status": group["scaler_status"],
                "scaler_reason": group["scaler_reason"],
                "desired_size": group["desired_size"],
            }
            for group in decision.get("node_groups", [])
        ],
    }
    if "not_recorded" in decision:
        summary["not_recorded"] = decision["not_recorded"]
    return summary


def predictive_failure(predictive: dict[str, Any]) -> str | None:
    """Why a cluster's predictive decision (as `_add_predictive` adds it) failed: not made, made
    without a forecast (its node groups' sizes kept), or the scaler's error for its node groups
    (the whole request, or some of them); None when it did not fail. A `locked`, `updating` (an
    EKS upgrade) or `held` node group is not a failure (the next hour asks again), nor the same
    request `in_progress` in another copy of the run."""
    if predictive["outcome"] in {"error", SIZES_KEPT}:
        return str(predictive["reason"])
    failures = [
        f"{group['name']}: {group['scaler_reason']}"
        for group in predictive["node_groups"]
        if group["scaler_status"] == SCALER_ERROR_STATUS
    ]
    return "; ".join(failures) or None


def _report_predictive_failure(
    services: ForecasterServices, summary: dict[str, Any], logger: Any
) -> int:
    """Log and raise a warning when the cluster's predictive request failed, since nobody reads
    the hourly run's result; the number of alerts published (0 or 1). An alert SNS refused is
    listed under the summary's `errors`."""
    failure = predictive_failure(summary["predictive"])
    if failure is None:
        return 0
    logger.warning(
        "predictive request failed", extra={"cluster": summary["cluster"], "error": failure}
    )
    if not services.environment.alert_topic_arn:
        return 0
    resource = f"{summary['account_id']}/{summary['region']}/{summary['cluster']}"
    alert = Alert.create(
        severity=Severity.WARNING,
        source=SOURCE,
        title=f"Predictive scaling of {summary['cluster']} failed",
        detail=(
            f"The scaler did not act on this hour's predictive decision for {resource}: {failure}"[
                :PREDICTIVE_FAILURE_DETAIL_CHARS
            ]
            + ". The next hourly run asks again; the scaler's analyze shows the decision."
        ),
        resource=resource,
        account_id=summary["account_id"],
        region=summary["region"],
        timestamp=services.clock.now(),
    )
    if services.alerts.publish_or_log(alert, logger) is None:
        summary.setdefault("errors", []).append(
            {"node_group": None, "error": "predictive failure alert not published"}
        )
        return 0
    return 1


def shortfall_alerts(result: dict[str, Any], now: datetime) -> list[tuple[str, Alert]]:
    """A warning per node group whose peak forecast need is above its max_size, with the node
    group's name."""
    alerts: list[tuple[str, Alert]] = []
    recommended = {item["name"]: item["desired_size"] for item in result["recommendation"]}
    for group in result["node_groups"]:
        if group["peak_nodes_needed"] <= recommended[group["name"]]:
            continue
        resource = f"{result['account_id']}/{result['region']}/{result['cluster']}/{group['name']}"
        alert = Alert.create(
            severity=Severity.WARNING,
            source=SOURCE,
            title=f"Forecast demand exceeds max size of {result['cluster']}/{group['name']}",
            detail=(
                f"The next {result['horizon_minutes']} minutes need up to "
                f"{group['peak_nodes_needed']} nodes of {group['instance_type']}; the node "
                f"group stops at {recommended[group['name']]} (forecast confidence "
                f"{result['confidence']:.2f})."
            ),
            resource=resource,
            account_id=result["account_id"],
            region=result["region"],
            timestamp=now,
        )
        alerts.append((group["name"], alert))
    return alerts
