"""anomaly_detector: robust anomaly detection on metrics and daily cost, raised as alerts.

Events:
- `{"action": "scan"}` (every 15 minutes): each metric of ANOMALY_METRICS in every member account
  and region of the inventory, plus the daily cost from Cost Explorer; a failing account/region
  is reported and the others go on.
- the EventBridge "CloudWatch Alarm State Change" event: the alarm's metric around the alarm time.
- `{"action": "detect", "series": [...], "timestamps": [...]}`: detection on the given series
  only; no alert, no state (for people and other tools).

Detection is `fleet_shared.numeric.robust_anomalies` (seasonal residual, median/MAD z-scores,
level shifts; severity from the score). Each anomaly episode becomes one alert, raised once
(state table `claim_once`), see `findings.py`. Alerts are published in dry run too (they change
nothing).

Environment variables:
- STATE_TABLE_NAME (required for scan and alarm events): dedup claims.
- ALERT_TOPIC_ARN (required for scan and alarm events), ALERT_TOPIC_CRITICAL_ARN,
  ALERT_TOPIC_INFO_ARN: where alerts go by severity.
- DATA_BUCKET_NAME (required for scan), FLEET_INVENTORY_KEY: the inventory.
- MEMBER_ROLE_NAME, HUB_ACCOUNT_ID: sessions in member accounts.
- ANOMALY_METRICS: JSON list of {"namespace", "metric", "dimensions", "stat" (Average),
  "period" (3600)}; a dimension value "{cluster}" expands to every cluster of the account and
  region. Default: ContainerInsights node_cpu_utilization per ClusterName, hourly.
- ANOMALY_LOOKBACK_DAYS (28): history read per series.
- ANOMALY_RECENT_HOURS (48): metric findings ending earlier than this are not reported.
- ANOMALY_COST_ENABLED (true): scan the daily cost too.
- ANOMALY_COST_RECENT_DAYS (3): the same window for daily cost (Cost Explorer lags a day).
- ANOMALY_DEDUP_DAYS (7): how long a raised anomaly stays claimed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from fleet_shared.alerts import AlertPublisher
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import FleetError
from fleet_shared.inventory_store import load_inventory
from fleet_shared.numeric.robust_anomalies import detect_anomalies
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.anomaly_detector.alarm import alarm_summary, evaluate_alarm
from handlers.anomaly_detector.findings import raise_alerts
from handlers.anomaly_detector.models import (
    ActionEvent,
    AlarmEvent,
    AnomalyEnvironment,
    DetectRequest,
    ScanRequest,
    is_alarm_event,
)
from handlers.anomaly_detector.scan import TARGET_ERRORS, scan_cost, scan_metrics

FUNCTION_NAME = "anomaly_detector"
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger

CLOCK: Clock = SystemClock()
"""Replaced by tests (and replays) before the first invocation."""


@dataclass(frozen=True)
class Runtime:
    """Settings, sessions and clock shared by the invocations of this container."""

    environment: AnomalyEnvironment
    sessions: AccountSessions
    clock: Clock

    def table(self) -> StateTable:
        """The state table (STATE_TABLE_NAME is required for alerting)."""
        name = self.environment.required("state_table_name")
        return StateTable(name, self.sessions.hub_client("dynamodb"), self.clock)

    def publisher(self) -> AlertPublisher:
        """The alert publisher (ALERT_TOPIC_ARN is required for alerting)."""
        return AlertPublisher(self.sessions.hub_client("sns"), self.environment)


@functools.cache
def runtime() -> Runtime:
    """Built once per container, on the first invocation that needs AWS."""
    environment = load_environment(AnomalyEnvironment)
    return Runtime(
        environment,
        AccountSessions.from_environment(environment, FUNCTION_NAME, clock=CLOCK),
        CLOCK,
    )


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispatch on the event's kind; bad input or configuration gives an error result."""
    try:
        if is_alarm_event(event):
            return _alarm(runtime(), parse_event(AlarmEvent, event))
        action = parse_event(ActionEvent, event).action
        if action == "detect":
            return _detect(parse_event(DetectRequest, event))
        parse_event(ScanRequest, event)
        return _scan(runtime())
    except FleetError as error:
        logger.warning("refused", extra={"error": str(error)})
        return error_result(error)


def _detect(request: DetectRequest) -> dict[str, Any]:
    values = [float("nan") if value is None else value for value in request.series]
    detection = detect_anomalies(
        values,
        request.timestamps,
        point_threshold=request.point_threshold,
        shift_threshold=request.shift_threshold,
    )
    return {
        "status": "ok",
        "points": detection.points,
        "seasonality": list(detection.seasonality),
        "noise_sigma": round(detection.noise_sigma, 6),
        "anomalies": [anomaly.to_dict() for anomaly in detection.anomalies],
    }


def _scan(rt: Runtime) -> dict[str, Any]:
    env = rt.environment
    now = rt.clock.now()
    table, publisher = rt.table(), rt.publisher()
    inventory = load_inventory(
        rt.sessions.hub_client("s3"), env.required("data_bucket_name"), env.fleet_inventory_key
    )
    findings, evaluated, errors = scan_metrics(rt.sessions, env, inventory, now)
    if env.anomaly_cost_enabled:
        try:
            findings.extend(scan_cost(rt.sessions, env, now))
            evaluated += 1
        except TARGET_ERRORS as error:
            errors.append({"target": "cost", "error": str(error)})
    reported = raise_alerts(findings, table, publisher, dedup_days=env.anomaly_dedup_days, now=now)
    alerted = sum(1 for item in reported if item["alerted"])
    OBSERVABILITY.metrics.add_metric(name="AnomaliesAlerted", unit="Count", value=alerted)
    return {
        "status": "ok" if not errors else "partial",
        "evaluated": evaluated,
        "anomalies": reported,
        "alerts": alerted,
        "errors": errors,
    }


def _alarm(rt: Runtime, event: AlarmEvent) -> dict[str, Any]:
    summary = alarm_summary(event)
    try:
        findings, evaluated = evaluate_alarm(rt.sessions, rt.environment, event)
    except TARGET_ERRORS as error:
        return error_result(error, **summary)
    if evaluated == 0:
        return {"status": "skipped", **summary, "reason": "the alarm has no metricStat metric"}
    reported = raise_alerts(
        findings,
        rt.table(),
        rt.publisher(),
        dedup_days=rt.environment.anomaly_dedup_days,
        now=rt.clock.now(),
        title_prefix=f"Alarm {event.detail.alarm_name} confirmed",
    )
    return {
        "status": "ok",
        **summary,
        "anomalous": bool(reported),
        "anomalies": reported,
        "alerts": sum(1 for item in reported if item["alerted"]),
    }
