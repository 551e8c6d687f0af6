"""health_monitor: the health of every member cluster, with severities, alerts and metrics.

Events (see README `### health_monitor` and `events/health_monitor/`):
- `{"action": "check_fleet"}` (the 5-minute schedule): every cluster of the fleet inventory.
- `{"action": "check_cluster", "account_id", "region", "cluster"}`: one cluster of the inventory.
- the native EventBridge "CloudWatch Alarm State Change" event, forwarded from a member account:
  the alarm is judged (and alerted on); on ALARM the clusters it concerns are checked at once.

Checks per cluster (registered in `checks/__init__.py`): cluster status, node group status and
health issues, ready against desired capacity of each node group's Auto Scaling groups, CloudWatch
alarms in ALARM, and the cluster's HTTP health endpoints (status, latency, error rate over the
recent results kept in the state table).

Environment variables:
- STATE_TABLE_NAME (required): the state table (endpoint history, alert dedup).
- MEMBER_ROLE_NAME (required): the role assumed in each member account.
- ALERT_TOPIC_ARN (required), ALERT_TOPIC_CRITICAL_ARN, ALERT_TOPIC_INFO_ARN: alert topics.
- DATA_BUCKET_NAME (required), FLEET_INVENTORY_KEY (default `config/fleet-inventory.json`): the
  fleet inventory listing the clusters and their health endpoints.
- HUB_ACCOUNT_ID: the hub account (asked from STS when unset).
- HEALTH_LATENCY_WARNING_MS (1000), HEALTH_LATENCY_CRITICAL_MS (3000): endpoint latency levels.
- HEALTH_ERROR_RATE_WARNING (0.2), HEALTH_ERROR_RATE_CRITICAL (0.5): endpoint error-rate levels
  over the last HEALTH_ENDPOINT_HISTORY (10) results, once there are at least
  HEALTH_ERROR_RATE_MIN_SAMPLES (3) of them.
- HEALTH_CAPACITY_WARNING_RATIO (0.8), HEALTH_CAPACITY_CRITICAL_RATIO (0.5): ready/desired levels.
- HEALTH_CRITICAL_ALARM_PATTERNS (`*critical*,*Critical*`): fnmatch patterns of alarm names that
  are critical when in ALARM; other alarms are warnings.
- HEALTH_ALERT_WINDOW_SECONDS (3600): one alert per failing check and severity in this window.
- HEALTH_MAX_WORKERS (8): clusters checked in parallel.
FLEET_DRY_RUN is not read: the monitor changes nothing but its own state and alerts.

Result: `{"action", "status", "clusters": [{"account_id", "region", "cluster", "status",
"checks": [{"name", "target", "status": "passed"|"failed", "severity", "detail", "data"}],
"alerts": {"sent", "suppressed", "failed"}}]}`; `status` is the worst severity of the failed
checks, `healthy` when none failed, `error` for a cluster that could not be checked at all.
Bad events return `{"status": "error", "error": "<message naming the field>"}`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from fleet_shared.alerts import AlertPublisher, Severity
from fleet_shared.clock import SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import EventValidationError, InventoryError
from fleet_shared.inventory import FleetInventory
from fleet_shared.inventory_store import load_inventory
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.health_monitor.checks.alarms import alarm_result
from handlers.health_monitor.checks.base import ClusterTarget
from handlers.health_monitor.models import (
    ALARM_EVENT_SOURCE,
    AlarmStateChangeEvent,
    CheckClusterEvent,
    CheckFleetEvent,
)
from handlers.health_monitor.probe import http_probe
from handlers.health_monitor.report import CheckResult, worst_of_statuses, worst_status
from handlers.health_monitor.runner import (
    OBSERVABILITY,
    SOURCE,
    Dependencies,
    check_clusters,
    raise_alerts,
)
from handlers.health_monitor.settings import HealthEnvironment

logger = OBSERVABILITY.logger


@functools.cache
def _dependencies() -> Dependencies:
    """Settings and clients, built on the first invocation and kept for the container."""
    settings = load_environment(HealthEnvironment)
    sessions = AccountSessions.from_environment(settings, SOURCE)
    clock = SystemClock()
    return Dependencies(
        settings=settings,
        sessions=sessions,
        state=StateTable(settings.state_table_name, sessions.hub_client("dynamodb"), clock),
        publisher=AlertPublisher(sessions.hub_client("sns"), settings),
        clock=clock,
        probe=http_probe,
        s3=sessions.hub_client("s3"),
    )


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point: dispatch on the event's shape; bad events get an error result."""
    return handle(event, _dependencies())


def handle(event: object, deps: Dependencies) -> dict[str, Any]:
    """Validate `event`, run the matching action and return its report."""
    try:
        action, model_cls = _action_of(event)
        request = parse_event(model_cls, event)
        return action(request, deps)
    except EventValidationError as error:
        logger.warning("event refused", extra={"error": str(error)})
        return error_result(error)
    except InventoryError as error:
        logger.error("fleet inventory unavailable", extra={"error": str(error)})
        return error_result(error)


def check_fleet(_: CheckFleetEvent, deps: Dependencies) -> dict[str, Any]:
    """Every cluster of every member account, each isolated from the others."""
    inventory = _inventory(deps)
    targets = [
        ClusterTarget(member.account_id, cluster.region, cluster)
        for member, cluster in inventory.clusters()
    ]
    reports = check_clusters(targets, deps)
    return {
        "action": "check_fleet",
        "status": worst_of_statuses(report["status"] for report in reports),
        "checked_at": deps.clock.now().isoformat(),
        "clusters": reports,
    }


def check_cluster(request: CheckClusterEvent, deps: Dependencies) -> dict[str, Any]:
    """One cluster, which must be in the inventory (the monitor acts on fleet members only)."""
    cluster = _inventory(deps).find_cluster(request.account_id, request.region, request.cluster)
    if cluster is None:
        raise EventValidationError(
            "cluster",
            f"{request.cluster} in {request.account_id}/{request.region} is not in the fleet "
            "inventory",
        )
    [report] = check_clusters([ClusterTarget(request.account_id, request.region, cluster)], deps)
    return {"action": "check_cluster", "status": report["status"], "clusters": [report]}


def alarm_state_change(request: AlarmStateChangeEvent, deps: Dependencies) -> dict[str, Any]:
    """Judge the alarm from the event; when it entered ALARM, check the clusters it concerns
    right away (those named by its ClusterName dimension, else every cluster of the account and
    region) instead of waiting for the next scheduled run."""
    detail = request.detail
    result: CheckResult = alarm_result(
        detail.alarmName,
        request.alarm_arn,
        detail.state.value,
        detail.state.reason,
        deps.settings.health_critical_alarm_patterns,
    )
    alerts = raise_alerts([result], deps, request.account, request.region, None)
    reports: list[dict[str, Any]] = []
    if not result.passed and result.severity != Severity.INFO:
        reports = check_clusters(_clusters_of_alarm(request, _inventory(deps)), deps)
    return {
        "action": "alarm_state_change",
        "account_id": request.account,
        "region": request.region,
        "status": worst_of_statuses([worst_status([result])] + [r["status"] for r in reports]),
        "alarm": result.as_dict(),
        "alerts": alerts,
        "clusters": reports,
    }


Action = Callable[[Any, Dependencies], dict[str, Any]]
"""An action takes the validated event model it is registered with."""

ACTIONS: dict[str, tuple[Action, type[BaseModel]]] = {
    "check_fleet": (check_fleet, CheckFleetEvent),
    "check_cluster": (check_cluster, CheckClusterEvent),
}


def _action_of(event: object) -> tuple[Action, type[BaseModel]]:
    if not isinstance(event, Mapping):
        raise EventValidationError("event", f"expected a JSON object, got {type(event).__name__}")
    if event.get("source") == ALARM_EVENT_SOURCE or "detail-type" in event:
        return alarm_state_change, AlarmStateChangeEvent
    action = event.get("action")
    if action not in ACTIONS:
        expected = ", ".join(sorted(ACTIONS))
        raise EventValidationError(
            "action", f"must be one of {expected} (or an alarm state change event)"
        )
    return ACTIONS[action]


def _inventory(deps: Dependencies) -> FleetInventory:
    return load_inventory(
        deps.s3, deps.settings.data_bucket_name, deps.settings.fleet_inventory_key
    )


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
