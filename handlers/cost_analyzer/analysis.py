"""The daily cost report: each section on its own, the report in S3, and the alerts.

Each section below runs on its own: a section (or an account, a function, a cluster inside one)
that fails is listed under `errors` and the others go on.

1. Cost Explorer (`explorer.py`): daily cost of the last COST_LOOKBACK_DAYS by service, linked
   account and `cluster` tag, totals, and the month-end forecast.
2. Anomalies: each group's daily cost (groups averaging at least COST_ANOMALY_MIN_DAILY_USD) through
   the shared robust detector (`fleet_shared.numeric.robust_anomalies`); anomalies on the last
   COST_ANOMALY_RECENT_DAYS days become warning alerts, once each (see below); a drop only on
   complete days (`fleet_shared.cost_explorer.COST_FILLING`: yesterday is still being filled in).
3. CUR detail (`cur.py`, `athena.py`): top resources, spot vs on-demand share of EKS nodes and
   node hours per cluster, with pandas over s3://COST_CUR_BUCKET/COST_CUR_PREFIX or Athena.
4. Node groups (`rightsizing.py`): clusters of the inventory whose average node CPU utilisation is
   under COST_NODE_UTILISATION_THRESHOLD. Idle node hours per cluster = CUR node hours x (1 -
   average utilisation): the billed node capacity that did no work. A cluster is its account,
   region and name on both sides, so two clusters of one name never share their hours.
5. Lambda memory (`rightsizing.py`): every function of the stack (the inventory's names) in the hub.

The loops over clusters (4) and functions (5) start a target only while the invocation has more
than COST_TARGET_SECONDS left (a function's query, also more than POLL_RESERVE_SECONDS, which
its first poll needs); the others are listed under `not_started` and the run is `partial`, so
the report and its alerts are still written in time. A section (1, its forecast, 3, 5) whose
first call would not fit, one hung call and the report's WRITE_RESERVE_SECONDS, is not started:
its error is NOT_STARTED; so is a later request of section 1 (a dimension's, the forecast after
the month to date, which the report keeps without it).

The report goes to s3://DATA_BUCKET_NAME/reports/cost/<date>/summary.json and detail.json, then
the alerts go out with `deliver_all` (each anomaly under its own key, the summary under the
schedule's run, else the invocation's request id, which Lambda keeps when it retries an
invocation; not under the date, which a retry past midnight UTC changes): a publish SNS
refuses fails the invocation after the report is written, and the retry sends what is missing,
nothing twice. Nothing in any account is changed, so dry run does not apply.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_shared.alert_delivery import deliver_all
from fleet_shared.alerts import Alert, Severity, encodable
from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.cost_explorer import CE_REGION, COST_FILLING, CostPoint, is_complete_day
from fleet_shared.exceptions import ConfigurationError, FleetError, InventoryUnreadableError
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.numeric.robust_anomalies import detect_anomalies
from fleet_shared.sessions import bounded_config, longest_hung_call_seconds
from fleet_shared.timestamps import iso_z
from handlers.cost_analyzer import explorer, rightsizing
from handlers.cost_analyzer.athena import aggregate_with_athena
from handlers.cost_analyzer.cur import in_currency, summarise
from handlers.cost_analyzer.environment import CostEnvironment

SOURCE = "cost_analyzer"
DEDUP_SECONDS = 14 * 86_400
DEDUP_KEY_MAX_BYTES = 512
"""A dedup key is a sort key of the state table, which DynamoDB limits to 1,024 bytes: an anomaly
whose group would make its key longer (a tag value, a service name) is keyed by the group's
digest instead, well inside the limit."""
WRITE_RESERVE_SECONDS = 10.0
"""Time kept for writing the report and delivering its alerts."""
TARGET_CALL_CONFIG = bounded_config(connect_seconds=2, read_seconds=6, attempts=2)
"""The clients of a target's calls (a cluster's utilisation, a function's Logs Insights query),
of the Athena query and of the listing of the fleet's functions: an endpoint that never answers
costs a call at most two attempts of 2 s connect and 6 s read and botocore's pause between them
(TARGET_CALL_SECONDS, leaving the report 13 s of COST_TARGET_SECONDS' default 30 s), where
botocore's defaults (5 attempts of 60 s) used up the invocation before the report."""
TARGET_CALL_SECONDS = longest_hung_call_seconds(TARGET_CALL_CONFIG)
"""The longest one call of `TARGET_CALL_CONFIG` takes when its endpoint never answers (17 s)."""
COST_EXPLORER_CALL_CONFIG = bounded_config(connect_seconds=2, read_seconds=10, attempts=2)
"""The Cost Explorer client: a grouped GetCostAndUsage page of up to 90 days takes longer to
answer than a target's call, but one that never answers costs at most COST_EXPLORER_CALL_SECONDS,
where botocore's defaults spent minutes of the invocation that the Athena query and the targets
of the other sections then lacked."""
COST_EXPLORER_CALL_SECONDS = longest_hung_call_seconds(COST_EXPLORER_CALL_CONFIG)
"""The longest one Cost Explorer call takes when its endpoint never answers (25 s)."""
COST_EXPLORER_PAGE_RESERVE_SECONDS = WRITE_RESERVE_SECONDS + COST_EXPLORER_CALL_SECONDS
"""A next page of a Cost Explorer answer is asked only with more than this left: Cost Explorer
(or a proxy) answering page after page under new tokens was otherwise read until Lambda ended
the invocation, and no report was written."""
CALL_RESERVE_SECONDS = WRITE_RESERVE_SECONDS + TARGET_CALL_SECONDS
"""One more call of a query (the next Athena result page, the stop of a query given up, a
StartQueryExecution sent again) is made only with more than this left in the invocation: one
that hung would eat into the report's time."""
POLL_RESERVE_SECONDS = CALL_RESERVE_SECONDS + TARGET_CALL_SECONDS
"""A Logs Insights or Athena query still running with less left is given up (the function's or
the section's error) while one more call, its stop, still fits before the report's time."""
NOT_STARTED = "not started: no time left"
"""The error of a section whose first call would not fit before the report's time."""

# An inventory that cannot be read fails its section, as an AWS error does: each section of the
# report fails on its own (docs/functions/cost_analyzer.md). botocore hands a JSON answer's
# values on unchecked (a null among a list's items, a number where text is due), so reading one
# can raise a TypeError or AttributeError as well as a KeyError or ValueError: each fails the
# section or target whose answer it was, not the report.
_SECTION_ERRORS = (
    FleetError,
    InventoryUnreadableError,
    *AWS_CALL_ERRORS,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    RuntimeError,
)


class CostServices(FunctionServices[CostEnvironment]):
    """The cost analyzer's services: the common ones, and the pause between polls."""

    def pause(self, seconds: float) -> None:
        """Wait between polls of Athena and Logs Insights (tests' services return at once)."""
        time.sleep(seconds)


class Report:
    """Collects sections, the error of each target that failed (logged to `logger`), and the
    targets left for lack of time."""

    def __init__(self, logger: Any, invocation: Invocation, target_seconds: int) -> None:
        self.summary: dict[str, Any] = {}
        self.detail: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self.not_started: list[dict[str, Any]] = []
        self.logger = logger
        self._invocation = invocation
        self._target_seconds = target_seconds

    def has_time_for(self, section: str, *, reserve_seconds: float = 0.0, **target: Any) -> bool:
        """Whether one more target of `section` fits in the time left: more than
        COST_TARGET_SECONDS, and than `reserve_seconds` (what the target's own calls need); if
        not, it is listed under `not_started`."""
        if self._invocation.allows(max(self._target_seconds, reserve_seconds)):
            return True
        self.not_started.append({"section": section, **target})
        return False

    def starts(self, section: str, reserve_seconds: float, **target: Any) -> bool:
        """Whether `section` (or its request for `target`) may make its call: more than
        `reserve_seconds` (one hung call of it and the report's time) left; if not, it fails
        as not started."""
        if self._invocation.allows(reserve_seconds):
            return True
        self.failed(section, NOT_STARTED, **target)
        return False

    def failed(self, section: str, error: BaseException | str, **target: Any) -> None:
        """Record that `section` (for `target`) failed, and go on."""
        self.logger.warning("section failed", extra={"section": section, "error": str(error)})
        self.errors.append({"section": section, **target, "error": str(error)})


def analyze(
    services: CostServices,
    invocation: Invocation,
    logger: Any,
    *,
    run: datetime | None = None,
) -> dict[str, Any]:
    """All sections, the report in S3, and the alerts (`AlertNotDeliveredError` when SNS
    refused one, after the report is written). `run`: the schedule's run, which names the
    summary's delivery (else the invocation's request id)."""
    env = services.environment
    if env.alert_topic_arn:
        # Alerts are delivered once through the state table: refuse before doing any work.
        env.required("state_table_name")
    now = services.clock.now()
    today = now.date()
    report = Report(logger, invocation, env.cost_target_seconds)
    daily = _cost_explorer(services, now, report, invocation)
    anomalies = _anomalies(daily, now, env) if daily else []
    cur = _cur(services, now, report, invocation)
    utilisation = _node_groups(services, now, report)
    if cur is not None:
        report.summary["idle_node_hours"] = _idle_node_hours(cur, utilisation)
    _lambda_memory(services, now, report, invocation)
    report.summary["anomalies"] = anomalies
    prefix = f"reports/cost/{today.isoformat()}/"
    keys = {"summary": f"{prefix}summary.json", "detail": f"{prefix}detail.json"}
    document = {
        "date": today.isoformat(),
        "generated_at": iso_z(now),
        **report.summary,
        "errors": report.errors,
        "not_started": report.not_started,
    }
    s3 = services.sessions.hub_client("s3")
    s3.put_object(Bucket=env.data_bucket_name, Key=keys["summary"], Body=_json(document),
                  ContentType="application/json")  # fmt: skip
    s3.put_object(Bucket=env.data_bucket_name, Key=keys["detail"],
                  Body=_json({"date": today.isoformat(), **report.detail}),
                  ContentType="application/json")  # fmt: skip
    alerts = (
        _deliver_alerts(
            services,
            iso_z(run) if run is not None else invocation.request_id,
            document,
            anomalies,
            keys["summary"],
            invocation=invocation,
        )
        if env.alert_topic_arn
        else 0
    )
    return {
        "status": "ok" if not report.errors and not report.not_started else "partial",
        "date": today.isoformat(),
        "report": keys,
        "anomalies": len(anomalies),
        "alerts": alerts,
        "errors": report.errors,
        "not_started": report.not_started,
    }


def _cost_explorer(
    services: CostServices, now: datetime, report: Report, invocation: Invocation
) -> dict[str, list[CostPoint]]:
    """The Cost Explorer sections of the report; the daily points the anomalies are judged on
    (`explorer.anomaly_points`), amounts that are no cost included, so their series tell a day
    of no cost from a day whose amount was no cost."""
    today = now.date()
    # Watched: once one call went unanswered, the section's next calls (the forecast) fail at
    # once instead of waiting out the bound again.
    ce = services.sessions.watched_hub_client("ce", CE_REGION, COST_EXPLORER_CALL_CONFIG)

    def next_page_allowed() -> bool:
        return invocation.allows(COST_EXPLORER_PAGE_RESERVE_SECONDS)

    # Each later request of the section (a dimension's, the forecast) starts only with a hung
    # call's and the report's time left, as its first does: else that part is not started.
    def dimension_starts(dimension: str) -> bool:
        return report.starts(
            "cost_explorer", COST_EXPLORER_PAGE_RESERVE_SECONDS, dimension=dimension
        )

    def forecast_starts() -> bool:
        return report.starts("forecast", COST_EXPLORER_PAGE_RESERVE_SECONDS)

    if not report.starts("cost_explorer", COST_EXPLORER_PAGE_RESERVE_SECONDS):
        return {}
    try:
        daily = explorer.daily_costs(
            ce,
            today,
            services.environment.cost_lookback_days,
            next_page_allowed=next_page_allowed,
            request_allowed=dimension_starts,
        )
    except _SECTION_ERRORS as error:
        report.failed("cost_explorer", error)
        return {}
    answered = daily
    currency = explorer.report_currency(answered)
    usable, rejected = explorer.usable_points(answered, currency)
    for dimension, message in rejected:
        report.failed("cost_explorer", message, dimension=dimension)
    daily = {dim: explorer.daily_totals(points) for dim, points in usable.items()}
    totals = {dim: explorer.totals(points, dim) for dim, points in daily.items()}
    period_start = today - timedelta(days=services.environment.cost_lookback_days)
    report.summary["currency"] = currency
    report.summary["period"] = {"start": period_start.isoformat(), "end": today.isoformat()}
    report.summary["total_cost"] = round(sum(p.amount for p in daily["service"]), 4)
    report.summary["by_service"] = totals["service"][:10]
    # A dimension whose request did not start has no totals, rather than none of cost.
    for dimension in ("account", "cluster"):
        if dimension in totals:
            report.summary[f"by_{dimension}"] = totals[dimension]
    report.detail["daily"] = {
        dim: [
            {"date": p.start.isoformat(), "group": explorer.group_name(dim, p.group),
             "cost": round(p.amount, 6), "estimated": p.estimated}
            for p in points
        ]
        for dim, points in daily.items()
    }  # fmt: skip
    report.detail["by_service"] = totals["service"]
    if forecast_starts():
        try:
            forecast = explorer.month_end_forecast(
                ce,
                now,
                answered["service"],
                period_start,
                currency,
                next_page_allowed=next_page_allowed,
                forecast_allowed=forecast_starts,
            )
        except _SECTION_ERRORS as error:
            report.failed("forecast", error)
        else:
            report.summary["forecast"] = forecast
    return {dim: explorer.anomaly_points(points, currency) for dim, points in answered.items()}


def _anomalies(
    daily: dict[str, list[CostPoint]], now: datetime, env: CostEnvironment
) -> list[dict[str, Any]]:
    """The anomalies of each group's daily cost on the last COST_ANOMALY_RECENT_DAYS days. A drop
    counts only on a complete day (`is_complete_day`: yesterday's cost is still being filled in,
    which reads as a drop), its days shifted back by COST_FILLING, so a drop is reported for as
    many runs once its day is complete as an increase is once its day ended."""
    recent = timedelta(days=env.cost_anomaly_recent_days)
    since = now.date() - recent
    drops_since = (now - COST_FILLING).date() - recent
    found: list[dict[str, Any]] = []
    for dimension, points in daily.items():
        for name, (days, amounts) in explorer.series_by_group(points, dimension).items():
            if not amounts or sum(amounts) / len(amounts) < env.cost_anomaly_min_daily_usd:
                continue
            moments = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
            for anomaly in detect_anomalies(amounts, moments).anomalies:
                day = anomaly.timestamp.date()
                if anomaly.score > 0:
                    if day < since:
                        continue
                elif day < drops_since or not is_complete_day(day, now):
                    continue
                found.append({"dimension": dimension, "group": name, **anomaly.to_dict()})
    return found


def _cur(
    services: CostServices, now: datetime, report: Report, invocation: Invocation
) -> dict[str, Any] | None:
    env = services.environment
    end = datetime(now.year, now.month, now.day, tzinfo=UTC)
    start = end - timedelta(days=env.cost_lookback_days)
    # Either engine's first step needs a poll's reserve: an Athena query started with less is
    # given up (and stopped) at its first poll, and the CUR reader reads only until that reserve.
    if not report.starts("cur", POLL_RESERVE_SECONDS):
        return None
    try:
        if env.cost_query_engine == "athena":
            source = f"Athena table {env.cost_athena_database}.{env.cost_athena_table}"
            aggregate = aggregate_with_athena(
                services.sessions.client(
                    "athena",
                    services.sessions.hub_account_id,
                    services.sessions.home_region,
                    TARGET_CALL_CONFIG,
                ),
                workgroup=env.required("athena_workgroup"),
                database=env.required("cost_athena_database"),
                table=env.required("cost_athena_table"),
                output_location=env.cost_athena_output,
                start=start,
                end=end,
                sleep=services.pause,
                keep_waiting=lambda: invocation.allows(POLL_RESERVE_SECONDS),
                can_call=lambda: invocation.allows(CALL_RESERVE_SECONDS),
            )
        else:
            # Arrow's Parquet and CSV readers load only on this path (Athena never needs them).
            from handlers.cost_analyzer.cur_reader import aggregate_cur  # noqa: PLC0415

            source = f"s3://{env.cur_bucket}/{env.cost_cur_prefix}"
            aggregate = aggregate_cur(
                services.sessions.hub_client("s3"),
                env.cur_bucket,
                env.cost_cur_prefix,
                start,
                end,
                # Read only until a poll's reserve is left: a month of many files, or a manifest
                # or file that trickles, would otherwise run past the deadline, and no report
                # would be written.
                time_left=lambda: invocation.remaining_seconds() - POLL_RESERVE_SECONDS,
            )
    except ConfigurationError:
        raise
    except _SECTION_ERRORS as error:
        report.failed("cur", error)
        return None
    if aggregate.empty:
        # A prefix the export does not write to, or an export that stopped: not a zero cost.
        report.failed(
            "cur", f"no CUR line items from {start:%Y-%m-%d} to {end:%Y-%m-%d} in {source}"
        )
        return None
    # The CUR's figures are in Cost Explorer's currency, the report's, when it was read.
    split = in_currency(aggregate, report.summary.get("currency"))
    if split.left_out is not None:
        report.failed("cur", split.left_out)
    summary = summarise(split.aggregate, env.cost_top_resources)
    report.summary["cur"] = {
        "engine": env.cost_query_engine,
        "currency": split.currency,
        "total_cost": summary["total_cost"],
        "top_resources": summary["top_resources"][:10],
        "eks_nodes": summary["eks_nodes"],
    }
    report.detail["top_resources"] = summary["top_resources"]
    return summary


ClusterKey = tuple[str, str, str]
"""A cluster as the CUR and the inventory both name it: account id, region, cluster name."""


def _node_groups(services: CostServices, now: datetime, report: Report) -> dict[ClusterKey, float]:
    """Average utilisation per cluster (for idle hours); under-used ones in the report."""
    env = services.environment
    try:
        inventory = services.inventory()
    except (FleetError, InventoryUnreadableError) as error:
        report.failed("node_groups", error)
        return {}
    utilisation: dict[ClusterKey, float] = {}
    underused: list[dict[str, Any]] = []
    for member, cluster in inventory.clusters():
        target = {"account_id": member.account_id, "region": cluster.region,
                  "cluster": cluster.name}  # fmt: skip
        # At least a hung call's time and the report's, whatever COST_TARGET_SECONDS says (1 s
        # is valid): a cluster started with less could hang past the report's time.
        if not report.has_time_for("node_groups", reserve_seconds=CALL_RESERVE_SECONDS, **target):
            continue
        try:
            cloudwatch = services.sessions.client(
                "cloudwatch", member.account_id, cluster.region, TARGET_CALL_CONFIG
            )
            average, left_out = rightsizing.cluster_utilisation(
                cloudwatch, cluster, now, env.cost_lookback_days
            )
        except ConfigurationError:
            # MEMBER_ROLE_NAME unset: every cluster's error alike, and no alarm, were the run to
            # go on; it fails naming the variable before anything is written.
            raise
        except _SECTION_ERRORS as error:
            report.failed("node_groups", error, **target)
            continue
        if left_out is not None:
            report.failed("node_groups", left_out, **target)
        if average is None:
            # Not measured is not idle nor busy: say so, rather than leave the cluster out.
            report.failed(
                "node_groups",
                f"no Container Insights node_cpu_utilization in the last "
                f"{env.cost_lookback_days} days: utilisation and idle node hours unknown",
                **target,
            )
            continue
        utilisation[(member.account_id, cluster.region, cluster.name)] = average
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


def _idle_node_hours(cur: dict[str, Any], utilisation: dict[ClusterKey, float]) -> dict[str, Any]:
    """Idle node hours of each CUR cluster whose utilisation is known. A CUR without
    `product_region_code` names no region: its cluster is matched by account and name when the
    inventory has exactly one such cluster, and left out when the name is ambiguous."""
    by_account_and_name: dict[tuple[str, str], list[ClusterKey]] = {}
    for key in utilisation:
        by_account_and_name.setdefault((key[0], key[2]), []).append(key)
    clusters = []
    for shares in cur["eks_nodes"]["clusters"]:
        key = (shares["account_id"], shares["region"], shares["cluster"])
        if key not in utilisation and not shares["region"]:
            candidates = by_account_and_name.get((key[0], key[2]), [])
            key = candidates[0] if len(candidates) == 1 else key
        if key not in utilisation:
            continue
        hours = shares["node_hours"]
        clusters.append(
            {
                "account_id": key[0],
                "region": key[1],
                "cluster": key[2],
                "node_hours": hours,
                "average_cpu_utilisation": round(utilisation[key], 4),
                "idle_node_hours": round(hours * max(0.0, 1.0 - utilisation[key]), 2),
            }
        )
    return {
        "definition": "CUR node hours x (1 - average Container Insights node CPU utilisation)",
        "clusters": clusters,
        "total": round(sum(c["idle_node_hours"] for c in clusters), 2),
    }


def _lambda_memory(
    services: CostServices, now: datetime, report: Report, invocation: Invocation
) -> None:
    env = services.environment
    region = services.sessions.home_region
    if not report.starts("lambda_memory", CALL_RESERVE_SECONDS):
        return
    try:
        # Only this stack's functions, by exact name: another stack's match the prefix too, and
        # this function's role may not query their log groups.
        own = set(services.inventory().functions.values())
        listing = rightsizing.fleet_functions(
            services.sessions.client(
                "lambda", services.sessions.hub_account_id, region, TARGET_CALL_CONFIG
            ),
            env.cost_function_prefix,
            next_page_allowed=lambda: invocation.allows(CALL_RESERVE_SECONDS),
        )
    except _SECTION_ERRORS as error:
        report.failed("lambda_memory", error)
        return
    # An item of the listing that is no function fails alone: the others are still sized.
    for unreadable in listing.unreadable:
        report.failed("lambda_memory", unreadable)
    functions = [function for function in listing.functions if function["FunctionName"] in own]
    logs = services.sessions.client(
        "logs", services.sessions.hub_account_id, region, TARGET_CALL_CONFIG
    )
    start = now - timedelta(days=env.cost_lambda_log_days)
    results: list[dict[str, Any]] = []
    for function in functions:
        name = function["FunctionName"]
        # With less than a poll needs, the query would only be started to be given up (and
        # stopped) at its first poll, or polled into the report's time.
        if not report.has_time_for(
            "lambda_memory", reserve_seconds=POLL_RESERVE_SECONDS, function=name
        ):
            continue
        try:
            lines = rightsizing.report_lines(
                logs,
                f"/aws/lambda/{name}",
                start,
                now,
                services.pause,
                keep_waiting=lambda: invocation.allows(POLL_RESERVE_SECONDS),
                can_stop=lambda: invocation.allows(CALL_RESERVE_SECONDS),
            )
            results.append(rightsizing.lambda_memory(function, lines, region))
        except _SECTION_ERRORS as error:
            report.failed("lambda_memory", error, function=name)
    savings = [r for r in results if r.get("recommendation") == "decrease"]
    report.summary["lambda_memory"] = {
        "functions": len(results),
        "monthly_saving_usd": round(sum(r["monthly_saving_usd"] for r in savings), 8),
        "decrease": [r["function"] for r in savings],
        "increase": [r["function"] for r in results if r.get("recommendation") == "increase"],
    }
    report.detail["lambda_memory"] = results


def _deliver_alerts(
    services: CostServices,
    run_name: str,
    document: dict[str, Any],
    anomalies: list[dict[str, Any]],
    summary_key: str,
    *,
    invocation: Invocation,
) -> int:
    """A warning per anomaly and the info summary, each delivered once (each claim bound to
    `invocation`); how many went out now."""
    env = services.environment
    now = services.clock.now()
    # The cost figures' currency (Cost Explorer's); the Lambda saving is from Lambda's USD prices.
    currency = document.get("currency", "USD")
    deliveries: list[tuple[str, Alert]] = []
    for anomaly in anomalies:
        key = anomaly_delivery_key(anomaly["dimension"], anomaly["group"], anomaly["timestamp"])
        alert = Alert.create(
            severity=Severity.WARNING,
            source=SOURCE,
            title=(
                f"Cost anomaly: {anomaly['dimension']} {anomaly['group']} on "
                f"{anomaly['timestamp'][:10]}"
            ),
            detail=(
                f"Daily cost {anomaly['value']:.2f} {currency} where {anomaly['expected']:.2f} "
                f"was expected ({anomaly['kind']}, robust score {anomaly['score']:.1f})."
            ),
            resource=f"cost/{anomaly['dimension']}/{anomaly['group']}",
            timestamp=now,
        )
        deliveries.append((key, alert))
    # A month to date whose forecast was not started has no month-end total (None).
    month_end = document.get("forecast", {}).get("month_end_total")
    saving = document.get("lambda_memory", {}).get("monthly_saving_usd", 0.0)
    total = document.get("total_cost")
    summary = Alert.create(
        severity=Severity.INFO,
        source=SOURCE,
        title=f"Cost report {document['date']}",
        detail=(
            f"Last {env.cost_lookback_days} days: "
            f"{'n/a' if total is None else f'{total} {currency}'}; "
            f"month-end forecast {'n/a' if month_end is None else f'{month_end} {currency}'}; "
            f"{len(anomalies)} anomalies; Lambda memory saving {saving} USD/month; "
            f"{len(document.get('underused_node_groups', []))} under-used clusters; "
            f"{len(document['errors'])} errors; {len(document['not_started'])} not started. "
            f"s3://{env.data_bucket_name}/{summary_key}"
        ),
        resource=f"s3://{env.data_bucket_name}/{summary_key}",
        timestamp=now,
    )
    # Keyed by the run alone: a retry past midnight UTC has another report date, same run.
    deliveries.append((f"cost-report/{run_name}", summary))
    return len(
        deliver_all(services.state, services.alerts, deliveries, DEDUP_SECONDS, deadline=invocation)
    )


def anomaly_delivery_key(dimension: str, group: str, timestamp: str) -> str:
    """The dedup key of a cost anomaly: `cost-anomaly/<dimension>/<group>/<day>`, with the group
    as `sha256:<hex digest>` when the key would exceed DEDUP_KEY_MAX_BYTES, and a surrogate in
    it as U+FFFD (`encodable`: the state table sends its keys as UTF-8)."""
    key = f"cost-anomaly/{dimension}/{encodable(group)}/{timestamp}"
    if len(key.encode("utf-8")) <= DEDUP_KEY_MAX_BYTES:
        return key
    digest = hashlib.sha256(group.encode("utf-8", "surrogatepass")).hexdigest()
    return f"cost-anomaly/{dimension}/sha256:{digest}/{timestamp}"


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
