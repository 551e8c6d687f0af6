"""cost_analyzer: the fleet's daily cost report.

Event: `{"action": "analyze"}` (daily schedule). Each section below runs on its own: a section
(or an account, a function, a cluster inside one) that fails is listed under `errors` and the
others go on.

1. Cost Explorer (`explorer.py`): daily cost of the last COST_LOOKBACK_DAYS by service, linked
   account and `cluster` tag, totals, and the month-end forecast.
2. Anomalies: each group's daily cost (groups averaging at least COST_ANOMALY_MIN_DAILY_USD) through
   the shared robust detector (`fleet_shared.numeric.robust_anomalies`); anomalies on the last
   COST_ANOMALY_RECENT_DAYS days become warning alerts, once each (state table `claim_once`).
3. CUR detail (`cur.py`, `athena.py`): top resources, spot vs on-demand share of EKS nodes and
   node hours per cluster, with pandas over s3://COST_CUR_BUCKET/COST_CUR_PREFIX or Athena.
4. Node groups (`rightsizing.py`): clusters of the inventory whose average node CPU utilisation is
   under COST_NODE_UTILISATION_THRESHOLD. Idle node hours per cluster = CUR node hours x (1 -
   average utilisation): the billed node capacity that did no work.
5. Lambda memory (`rightsizing.py`): every function named COST_FUNCTION_PREFIX* in the hub.

The report goes to s3://DATA_BUCKET_NAME/reports/cost/<date>/summary.json and detail.json, and an
info alert summarises it. Nothing in any account is changed, so dry run does not apply.

Environment variables:
- DATA_BUCKET_NAME (required): reports, the inventory (FLEET_INVENTORY_KEY), the default CUR bucket.
- MEMBER_ROLE_NAME, HUB_ACCOUNT_ID: member-account sessions (node utilisation).
- STATE_TABLE_NAME: anomaly dedup (optional: without it every run alerts its anomalies).
- ALERT_TOPIC_ARN (+ _INFO_ARN, _CRITICAL_ARN): alerts (optional: no alerts when unset).
- COST_QUERY_ENGINE: `pandas` (default) or `athena`.
- COST_CUR_BUCKET (default DATA_BUCKET_NAME), COST_CUR_PREFIX (default `cur/`): the CUR files.
- ATHENA_WORKGROUP, COST_ATHENA_DATABASE, COST_ATHENA_TABLE (required for athena),
  COST_ATHENA_OUTPUT (optional s3:// result location when the workgroup sets none).
- COST_LOOKBACK_DAYS (30), COST_TOP_RESOURCES (20), COST_FUNCTION_PREFIX (`lf-`),
  COST_LAMBDA_LOG_DAYS (7), COST_NODE_UTILISATION_THRESHOLD (0.3), COST_ANOMALY_RECENT_DAYS (3),
  COST_ANOMALY_MIN_DAILY_USD (1.0).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Alert, AlertPublisher, Severity
from fleet_shared.clock import Clock, SystemClock
from fleet_shared.cost_explorer import CE_REGION, CostPoint
from fleet_shared.environment import load_environment
from fleet_shared.event_parsing import error_result, parse_event
from fleet_shared.exceptions import ConfigurationError, FleetError
from fleet_shared.inventory_store import load_inventory
from fleet_shared.numeric.robust_anomalies import detect_anomalies
from fleet_shared.observability import observability_for
from fleet_shared.sessions import AccountSessions
from fleet_shared.state_table import StateTable
from handlers.cost_analyzer import explorer, rightsizing
from handlers.cost_analyzer.athena import aggregate_with_athena
from handlers.cost_analyzer.cur import aggregate_line_items, read_cur, summarise
from handlers.cost_analyzer.models import AnalyzeRequest, CostEnvironment

FUNCTION_NAME = "cost_analyzer"
SOURCE = FUNCTION_NAME
DEDUP_SECONDS = 14 * 86_400
OBSERVABILITY = observability_for(FUNCTION_NAME)
logger = OBSERVABILITY.logger

CLOCK: Clock = SystemClock()
"""Replaced by tests (and replays) before the first invocation."""
SLEEP: Callable[[float], None] = time.sleep
"""Pause between polls of Athena and Logs Insights; tests replace it."""

_SECTION_ERRORS = (FleetError, ClientError, BotoCoreError, ValueError, KeyError, RuntimeError)


@dataclass(frozen=True)
class Runtime:
    """Settings, sessions and clock shared by the invocations of this container."""

    environment: CostEnvironment
    sessions: AccountSessions
    clock: Clock


@functools.cache
def runtime() -> Runtime:
    """Built once per container, on the first invocation."""
    environment = load_environment(CostEnvironment)
    return Runtime(
        environment,
        AccountSessions.from_environment(environment, FUNCTION_NAME, clock=CLOCK),
        CLOCK,
    )


class Report:
    """Collects sections, and the error of each target that failed."""

    def __init__(self) -> None:
        self.summary: dict[str, Any] = {}
        self.detail: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []

    def failed(self, section: str, error: BaseException, **target: Any) -> None:
        """Record that `section` (for `target`) failed, and go on."""
        logger.warning("section failed", extra={"section": section, "error": str(error)})
        self.errors.append({"section": section, **target, "error": str(error)})


@OBSERVABILITY.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the analysis; bad input or configuration gives an error result."""
    try:
        parse_event(AnalyzeRequest, event)
        return analyze(runtime())
    except FleetError as error:
        logger.warning("refused", extra={"error": str(error)})
        return error_result(error)


def analyze(rt: Runtime) -> dict[str, Any]:
    """All sections, the report in S3, and the alerts."""
    env = rt.environment
    now = rt.clock.now()
    today = now.date()
    report = Report()
    daily = _cost_explorer(rt, today, report)
    anomalies = _anomalies(daily, today, env, report) if daily else []
    cur = _cur(rt, now, report)
    utilisation = _node_groups(rt, now, report)
    if cur is not None:
        report.summary["idle_node_hours"] = _idle_node_hours(cur, utilisation)
    _lambda_memory(rt, now, report)
    report.summary["anomalies"] = anomalies
    prefix = f"reports/cost/{today.isoformat()}/"
    keys = {"summary": f"{prefix}summary.json", "detail": f"{prefix}detail.json"}
    document = {
        "date": today.isoformat(),
        "generated_at": now.isoformat().replace("+00:00", "Z"),
        **report.summary,
        "errors": report.errors,
    }
    s3 = rt.sessions.hub_client("s3")
    s3.put_object(Bucket=env.data_bucket_name, Key=keys["summary"], Body=_json(document),
                  ContentType="application/json")  # fmt: skip
    s3.put_object(Bucket=env.data_bucket_name, Key=keys["detail"],
                  Body=_json({"date": today.isoformat(), **report.detail}),
                  ContentType="application/json")  # fmt: skip
    alerts = _alert(rt, document, anomalies, keys["summary"], report) if env.alert_topic_arn else 0
    return {
        "status": "ok" if not report.errors else "partial",
        "date": today.isoformat(),
        "report": keys,
        "anomalies": len(anomalies),
        "alerts": alerts,
        "errors": report.errors,
    }


def _cost_explorer(rt: Runtime, today: date, report: Report) -> dict[str, list[CostPoint]]:
    ce = rt.sessions.hub_client("ce", CE_REGION)
    try:
        daily = explorer.daily_costs(ce, today, rt.environment.cost_lookback_days)
    except _SECTION_ERRORS as error:
        report.failed("cost_explorer", error)
        return {}
    totals = {dim: explorer.totals(points, dim) for dim, points in daily.items()}
    report.summary["period"] = {
        "start": (today - timedelta(days=rt.environment.cost_lookback_days)).isoformat(),
        "end": today.isoformat(),
    }
    report.summary["total_cost"] = round(sum(p.amount for p in daily["service"]), 4)
    report.summary["by_service"] = totals["service"][:10]
    report.summary["by_account"] = totals["account"]
    report.summary["by_cluster"] = totals["cluster"]
    report.detail["daily"] = {
        dim: [
            {"date": p.start.isoformat(), "group": explorer.group_name(dim, p.group),
             "cost": round(p.amount, 6), "estimated": p.estimated}
            for p in points
        ]
        for dim, points in daily.items()
    }  # fmt: skip
    report.detail["by_service"] = totals["service"]
    try:
        report.summary["forecast"] = explorer.month_end_forecast(ce, today, daily["service"])
    except _SECTION_ERRORS as error:
        report.failed("forecast", error)
    return daily


def _anomalies(
    daily: dict[str, list[CostPoint]], today: date, env: CostEnvironment, report: Report
) -> list[dict[str, Any]]:
    since = today - timedelta(days=env.cost_anomaly_recent_days)
    found: list[dict[str, Any]] = []
    for dimension, points in daily.items():
        for name, (days, amounts) in explorer.series_by_group(points, dimension).items():
            if not amounts or sum(amounts) / len(amounts) < env.cost_anomaly_min_daily_usd:
                continue
            moments = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
            for anomaly in detect_anomalies(amounts, moments).anomalies:
                if anomaly.timestamp.date() < since:
                    continue
                found.append({"dimension": dimension, "group": name, **anomaly.to_dict()})
    return found


def _cur(rt: Runtime, now: datetime, report: Report) -> dict[str, Any] | None:
    env = rt.environment
    end = datetime(now.year, now.month, now.day, tzinfo=UTC)
    start = end - timedelta(days=env.cost_lookback_days)
    try:
        if env.cost_query_engine == "athena":
            aggregate = aggregate_with_athena(
                rt.sessions.hub_client("athena"),
                workgroup=env.required("athena_workgroup"),
                database=env.required("cost_athena_database"),
                table=env.required("cost_athena_table"),
                output_location=env.cost_athena_output,
                start=start,
                end=end,
                sleep=SLEEP,
            )
        else:
            lines = read_cur(rt.sessions.hub_client("s3"), env.cur_bucket, env.cost_cur_prefix)
            aggregate = aggregate_line_items(lines, start, end)
    except ConfigurationError:
        raise
    except _SECTION_ERRORS as error:
        report.failed("cur", error)
        return None
    summary = summarise(aggregate, env.cost_top_resources)
    report.summary["cur"] = {
        "engine": env.cost_query_engine,
        "total_cost": summary["total_cost"],
        "top_resources": summary["top_resources"][:10],
        "eks_nodes": summary["eks_nodes"],
    }
    report.detail["top_resources"] = summary["top_resources"]
    return summary


def _node_groups(rt: Runtime, now: datetime, report: Report) -> dict[str, float]:
    """Average utilisation per cluster name (for idle hours); under-used ones in the report."""
    env = rt.environment
    try:
        inventory = load_inventory(
            rt.sessions.hub_client("s3"), env.data_bucket_name, env.fleet_inventory_key
        )
    except FleetError as error:
        report.failed("node_groups", error)
        return {}
    utilisation: dict[str, float] = {}
    underused: list[dict[str, Any]] = []
    for member, cluster in inventory.clusters():
        target = {"account_id": member.account_id, "region": cluster.region,
                  "cluster": cluster.name}  # fmt: skip
        try:
            cloudwatch = rt.sessions.client("cloudwatch", member.account_id, cluster.region)
            average = rightsizing.cluster_utilisation(
                cloudwatch, cluster, now, env.cost_lookback_days
            )
        except _SECTION_ERRORS as error:
            report.failed("node_groups", error, **target)
            continue
        if average is None:
            continue
        utilisation[cluster.name] = average
        if average < env.cost_node_utilisation_threshold:
            underused.append(
                {
                    **target,
                    "average_cpu_utilisation": round(average, 4),
                    "threshold": env.cost_node_utilisation_threshold,
                    "node_groups": [
                        {"name": g.name, "desired_size": g.desired_size, "min_size": g.min_size,
                         "floor": g.floor, "instance_types": list(g.instance_types)}
                        for g in cluster.node_groups
                    ],
                }
            )  # fmt: skip
    report.summary["underused_node_groups"] = underused
    return utilisation


def _idle_node_hours(cur: dict[str, Any], utilisation: dict[str, float]) -> dict[str, Any]:
    clusters = {}
    for name, shares in cur["eks_nodes"]["clusters"].items():
        if name not in utilisation:
            continue
        hours = shares["node_hours"]
        clusters[name] = {
            "node_hours": hours,
            "average_cpu_utilisation": round(utilisation[name], 4),
            "idle_node_hours": round(hours * max(0.0, 1.0 - utilisation[name]), 2),
        }
    return {
        "definition": "CUR node hours x (1 - average Container Insights node CPU utilisation)",
        "clusters": clusters,
        "total": round(sum(c["idle_node_hours"] for c in clusters.values()), 2),
    }


def _lambda_memory(rt: Runtime, now: datetime, report: Report) -> None:
    env = rt.environment
    region = rt.sessions.home_region
    try:
        functions = rightsizing.fleet_functions(
            rt.sessions.hub_client("lambda"), env.cost_function_prefix
        )
    except _SECTION_ERRORS as error:
        report.failed("lambda_memory", error)
        return
    logs = rt.sessions.hub_client("logs")
    start = now - timedelta(days=env.cost_lambda_log_days)
    results: list[dict[str, Any]] = []
    for function in functions:
        name = function["FunctionName"]
        try:
            lines = rightsizing.report_lines(logs, f"/aws/lambda/{name}", start, now, SLEEP)
        except _SECTION_ERRORS as error:
            report.failed("lambda_memory", error, function=name)
            continue
        results.append(rightsizing.lambda_memory(function, lines, env.cost_lambda_log_days, region))
    savings = [r for r in results if r.get("recommendation") == "decrease"]
    report.summary["lambda_memory"] = {
        "functions": len(results),
        "monthly_saving_usd": round(sum(r["monthly_saving_usd"] for r in savings), 8),
        "decrease": [r["function"] for r in savings],
        "increase": [r["function"] for r in results if r.get("recommendation") == "increase"],
    }
    report.detail["lambda_memory"] = results


def _alert(
    rt: Runtime,
    document: dict[str, Any],
    anomalies: list[dict[str, Any]],
    summary_key: str,
    report: Report,
) -> int:
    env = rt.environment
    publisher = AlertPublisher(rt.sessions.hub_client("sns"), env)
    table = (
        StateTable(env.state_table_name, rt.sessions.hub_client("dynamodb"), rt.clock)
        if env.state_table_name
        else None
    )
    now = rt.clock.now()
    published = 0
    for anomaly in anomalies:
        key = f"cost-anomaly/{anomaly['dimension']}/{anomaly['group']}/{anomaly['timestamp']}"
        try:
            if table is not None and not table.claim_once(key, DEDUP_SECONDS):
                continue
            publisher.publish(
                Alert.create(
                    severity=Severity.WARNING,
                    source=SOURCE,
                    title=(
                        f"Cost anomaly: {anomaly['dimension']} {anomaly['group']} on "
                        f"{anomaly['timestamp'][:10]}"
                    ),
                    detail=(
                        f"Daily cost {anomaly['value']:.2f} USD where {anomaly['expected']:.2f} "
                        f"was expected ({anomaly['kind']}, robust score {anomaly['score']:.1f})."
                    ),
                    resource=f"cost/{anomaly['dimension']}/{anomaly['group']}",
                    timestamp=now,
                )
            )
            published += 1
        except (ClientError, BotoCoreError) as error:
            report.failed("alerts", error, anomaly=key)
    forecast = document.get("forecast", {})
    saving = document.get("lambda_memory", {}).get("monthly_saving_usd", 0.0)
    publisher.publish(
        Alert.create(
            severity=Severity.INFO,
            source=SOURCE,
            title=f"Cost report {document['date']}",
            detail=(
                f"Last {env.cost_lookback_days} days: {document.get('total_cost', 'n/a')} USD; "
                f"month-end forecast {forecast.get('month_end_total', 'n/a')} USD; "
                f"{len(anomalies)} anomalies; Lambda memory saving {saving} USD/month; "
                f"{len(document.get('underused_node_groups', []))} under-used clusters; "
                f"{len(document['errors'])} errors. s3://{env.data_bucket_name}/{summary_key}"
            ),
            resource=f"s3://{env.data_bucket_name}/{summary_key}",
            timestamp=now,
        )
    )
    return published + 1


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
