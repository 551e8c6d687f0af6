"""demand_forecaster: forecasts CPU demand and node counts per EKS cluster.

Events:
- `{"action": "forecast", "account_id", "region", "cluster", "horizon_minutes"}`: one cluster of
  the inventory; the eks_scaler invokes this synchronously and uses `recommendation`.
- `{"action": "forecast_fleet", "horizon_minutes"}`: every cluster of the inventory (hourly
  schedule), one at a time; a cluster that fails is reported and the others go on. Each result is
  saved in the state table (key `forecast/<account>/<region>/<cluster>`, value `latest`, kept 6
  hours) and a node group whose forecast needs more than its max_size raises a warning alert.

The model and the sizing are described in `holt_winters.py` and `forecast.py`. Nothing is
changed in any account: the forecaster only reads, so dry run does not apply.

Environment variables:
- DATA_BUCKET_NAME (required), FLEET_INVENTORY_KEY (default config/fleet-inventory.json): the
  inventory, which names the clusters and their node groups' floors.
- MEMBER_ROLE_NAME: the role assumed in member accounts (required for member clusters).
- HUB_ACCOUNT_ID: the hub account (asked from STS when unset).
- STATE_TABLE_NAME: where `forecast_fleet` saves each cluster's latest forecast (optional: not
  saved when unset).
- ALERT_TOPIC_ARN, ALERT_TOPIC_INFO_ARN, ALERT_TOPIC_CRITICAL_ARN: capacity-shortfall alerts of
  `forecast_fleet` (optional: no alert when ALERT_TOPIC_ARN is unset).
- FORECAST_HISTORY_DAYS (default 14, 3-63): days of hourly Container Insights history.
- FORECAST_TARGET_UTILISATION (default 0.7): CPU utilisation the node counts aim at.
- FORECAST_INTERVAL (default 0.9): central probability of the prediction interval.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import EventValidationError, FleetError
from fleet_shared.inventory import FleetInventory
from fleet_shared.inventory_store import load_inventory
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.demand_forecaster.forecast import forecast_cluster
from handlers.demand_forecaster.holt_winters import InsufficientHistoryError
from handlers.demand_forecaster.models import (
    ActionEvent,
    FleetForecastRequest,
    ForecasterEnvironment,
    ForecastRequest,
)

FUNCTION_NAME = "demand_forecaster"
FORECAST_TTL_SECONDS = 6 * 3600
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger

CLOCK: Clock = SystemClock()
"""Replaced by tests (and replays) before the first invocation."""

_TARGET_ERRORS = (FleetError, ClientError, BotoCoreError, InsufficientHistoryError)


@dataclass(frozen=True)
class Runtime:
    """What every invocation of this container shares: settings, sessions, clock."""

    environment: ForecasterEnvironment
    sessions: AccountSessions
    clock: Clock

    def inventory(self) -> FleetInventory:
        """The fleet inventory (re-read only when its ETag changes)."""
        s3 = self.sessions.hub_client("s3")
        env = self.environment
        return load_inventory(s3, env.data_bucket_name, env.fleet_inventory_key)


@functools.cache
def runtime() -> Runtime:
    """Built once per container, on the first invocation."""
    environment = load_environment(ForecasterEnvironment)
    return Runtime(
        environment,
        AccountSessions.from_environment(environment, FUNCTION_NAME, clock=CLOCK),
        CLOCK,
    )


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispatch on `action`; bad input and configuration give an error result, never a raise."""
    try:
        action = parse_event(ActionEvent, event).action
        if action == "forecast":
            return _forecast_one(runtime(), parse_event(ForecastRequest, event))
        return _forecast_fleet(runtime(), parse_event(FleetForecastRequest, event))
    except FleetError as error:
        logger.warning("refused", extra={"error": str(error)})
        return error_result(error)


def _forecast_one(rt: Runtime, request: ForecastRequest) -> dict[str, Any]:
    cluster = rt.inventory().find_cluster(request.account_id, request.region, request.cluster)
    if cluster is None:
        raise EventValidationError(
            "cluster",
            f"no cluster {request.cluster!r} in account {request.account_id} region "
            f"{request.region} of the fleet inventory",
        )
    context = {"account_id": request.account_id, "region": request.region}
    try:
        return forecast_cluster(
            rt.sessions,
            rt.environment,
            account_id=request.account_id,
            cluster=cluster,
            horizon_minutes=request.horizon_minutes,
            now=rt.clock.now(),
        )
    except _TARGET_ERRORS as error:
        logger.warning("forecast failed", extra={"cluster": cluster.name, "error": str(error)})
        return error_result(error, **context, cluster=cluster.name)


def _forecast_fleet(rt: Runtime, request: FleetForecastRequest) -> dict[str, Any]:
    env = rt.environment
    table = (
        StateTable(env.state_table_name, rt.sessions.hub_client("dynamodb"), rt.clock)
        if env.state_table_name
        else None
    )
    publisher = AlertPublisher(rt.sessions.hub_client("sns"), env) if env.alert_topic_arn else None
    results: list[dict[str, Any]] = []
    alerts = 0
    for member, cluster in rt.inventory().clusters():
        target = {"account_id": member.account_id, "region": cluster.region}
        try:
            result = forecast_cluster(
                rt.sessions,
                env,
                account_id=member.account_id,
                cluster=cluster,
                horizon_minutes=request.horizon_minutes,
                now=rt.clock.now(),
            )
        except _TARGET_ERRORS as error:
            logger.warning("forecast failed", extra={"cluster": cluster.name, "error": str(error)})
            results.append(error_result(error, **target, cluster=cluster.name))
            continue
        summary = {
            "status": "ok",
            **target,
            "cluster": cluster.name,
            "confidence": result["confidence"],
            "recommendation": result["recommendation"],
            "errors": list(result["errors"]),
        }
        try:
            if table is not None:
                key = f"forecast/{member.account_id}/{cluster.region}/{cluster.name}"
                table.put_value(key, "latest", result, ttl_seconds=FORECAST_TTL_SECONDS)
            if publisher is not None:
                alerts += _alert_shortfalls(publisher, result, rt.clock)
        except (ClientError, BotoCoreError) as error:
            # The forecast itself stands; saving or alerting failed for this cluster only.
            summary["errors"].append({"node_group": None, "error": f"saving/alerting: {error}"})
        results.append(summary)
    failed = sum(1 for r in results if r["status"] == "error")
    OBSERVABILITY.metrics.add_metric(name="ClustersForecast", unit="Count", value=len(results))
    return {
        "status": "ok" if failed == 0 else "partial",
        "horizon_minutes": request.horizon_minutes,
        "clusters": results,
        "failed": failed,
        "alerts": alerts,
    }


def _alert_shortfalls(publisher: AlertPublisher, result: dict[str, Any], clock: Clock) -> int:
    """A warning per node group whose peak forecast need is above its max_size."""
    published = 0
    recommended = {item["name"]: item["desired_size"] for item in result["recommendation"]}
    for group in result["node_groups"]:
        if group["peak_nodes_needed"] <= recommended[group["name"]]:
            continue
        resource = f"{result['account_id']}/{result['region']}/{result['cluster']}/{group['name']}"
        publisher.publish(
            Alert.create(
                severity=Severity.WARNING,
                source=FUNCTION_NAME,
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
                timestamp=clock.now(),
            )
        )
        published += 1
    return published
