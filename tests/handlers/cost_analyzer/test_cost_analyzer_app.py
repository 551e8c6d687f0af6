"""cost_analyzer handler against moto: Cost Explorer, CUR (pandas and Athena), rightsizing,
anomalies, the report in S3, alerts, a denied member account and bad input."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import io
import json
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import moto.logs.models
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from botocore.awsrequest import AWSResponse

from benchmarks.cur_files import cur_tables
from catalog.functions import function_spec
from catalog.model import FixedSchedule
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.validation_errors import ECHO_LIMIT, escaped_echo, shown_value
from fleetctl.schedule_replay import scheduler_input
from handlers.cost_analyzer import app, cur_reader, explorer, rightsizing
from handlers.cost_analyzer import athena as athena_query
from handlers.cost_analyzer.analysis import (
    CALL_RESERVE_SECONDS,
    COST_EXPLORER_CALL_CONFIG,
    COST_EXPLORER_CALL_SECONDS,
    COST_EXPLORER_PAGE_RESERVE_SECONDS,
    NOT_STARTED,
    POLL_RESERVE_SECONDS,
    TARGET_CALL_CONFIG,
    TARGET_CALL_SECONDS,
    WRITE_RESERVE_SECONDS,
    CostServices,
)
from handlers.cost_analyzer.app import lambda_handler
from handlers.cost_analyzer.cur import REQUIRED_COLUMNS, aggregate_line_items, summarise
from tests.handlers.analytics_accounts import deny_assume_role, member_session
from tests.handlers.analytics_services import inject_services
from tests.handlers.conftest import (
    DATA_BUCKET_NAME,
    HUB_ACCOUNT_ID,
    MEMBER_ACCOUNT_ID,
    REGION,
)
from tests.handlers.deadlines import (
    ContextRunningOutOfTime,
    HungOperation,
    LambdaTime,
    killed_while_publishing_then_retried,
)
from tests.handlers.endless_listings import EndlessListing, EndlessSlowPages
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    answer_malformed,
    fail_every_attempt,
    lose_first_answer,
    refuse_every_attempt,
    refuse_unseen_by_moto,
)
from tests.handlers.trickling_objects import trickling_get_object

CE_QUEUE_URL = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"
ATHENA_QUEUE_URL = "http://motoapi.amazonaws.com/moto-api/static/athena/query-results"
EC2 = "Amazon Elastic Compute Cloud - Compute"
RDS = "Amazon Relational Database Service"
DENIED_ACCOUNT_ID = "333333333333"


class InstantCostServices(CostServices):
    """The analyzer's services with no pause between polls."""

    def pause(self, seconds: float) -> None:
        """Poll again at once: moto answers every query at once."""


@pytest.fixture
def analyzer(
    *,
    fleet_environment: dict[str, str],
    inventory_in_s3: dict[str, Any],
    state_table: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> ManualClock:
    """The handler on the fake clock, with no pauses; moto's logs accept the clock's events."""
    inject_services(monkeypatch, app.FUNCTION, fake_clock, InstantCostServices)
    monkeypatch.setattr(moto.logs.models, "utcnow", lambda: fake_clock.now().replace(tzinfo=None))
    return fake_clock


def cost_explorer_client() -> Any:
    """The handler's own Cost Explorer client (the one its calls go through)."""
    return app.FUNCTION.services().sessions.client(
        "ce", HUB_ACCOUNT_ID, "us-east-1", COST_EXPLORER_CALL_CONFIG
    )


def stub_cost_forecast(amount: float, unit: str = "USD") -> None:
    """Answer GetCostForecast (moto does not implement it) on the handler's own CE client."""
    ce = cost_explorer_client()

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://ce.us-east-1.amazonaws.com", 200, {}, None), {
            "Total": {"Amount": str(amount), "Unit": unit},
            "ForecastResultsByTime": [
                {"MeanValue": str(amount), "PredictionIntervalLowerBound": str(amount * 0.9),
                 "PredictionIntervalUpperBound": str(amount * 1.1)}
            ],
        }  # fmt: skip

    ce.meta.events.register("before-call.ce.GetCostForecast", answer)


def day_result(
    day: date, groups: dict[str, float], *, record_type: str = "Usage", unit: str = "USD"
) -> dict[str, Any]:
    """One day of a GetCostAndUsage answer grouped by a dimension and charge type: `groups`,
    each of `record_type`, in `unit`."""
    return {
        "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
        "Total": {},
        "Groups": [
            {"Keys": [key, record_type],
             "Metrics": {"UnblendedCost": {"Amount": f"{v:.4f}", "Unit": unit}}}
            for key, v in groups.items()
        ],
        "Estimated": False,
    }  # fmt: skip


Charges = dict[str, dict[date, dict[tuple[str, str], float]]]
"""Per GroupBy key (SERVICE, LINKED_ACCOUNT, cluster), per day, the cost of each group and
charge type (RECORD_TYPE)."""


def answer_cost_explorer_by_request(charges: Charges, units: dict[str, str]) -> None:
    """Answer each GetCostAndUsage of the handler's own CE client from `charges` as Cost Explorer
    would the request botocore sends: grouped by its first GroupBy's key, and by charge type
    too only when its last GroupBy is RECORD_TYPE (else each group's charges summed); a group
    in the currency `units` gives it (USD by default)."""
    ce = cost_explorer_client()

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        keys = [group["Key"] for group in json.loads(params["body"])["GroupBy"]]
        by_record_type = keys[-1] == "RECORD_TYPE"
        results = []
        for day, costs in charges[keys[0]].items():
            groups: dict[tuple[str, ...], float] = {}
            for (group, record_type), amount in costs.items():
                group_keys = (group, record_type) if by_record_type else (group,)
                groups[group_keys] = groups.get(group_keys, 0.0) + amount
            results.append({
                **day_result(day, {}),
                "Groups": [
                    {"Keys": list(group_keys), "Metrics": {"UnblendedCost": {
                        "Amount": f"{amount:.4f}", "Unit": units.get(group_keys[0], "USD")}}}
                    for group_keys, amount in groups.items()
                ],
            })  # fmt: skip
        return AWSResponse("https://ce.us-east-1.amazonaws.com", 200, {}, None), {
            "ResultsByTime": results
        }

    ce.meta.events.register("before-call.ce.GetCostAndUsage", answer)


def usual_month(today: date, account_ids: tuple[str, ...]) -> Charges:
    """The 30 days before `today`: EC2 usage of about 100 a day in each of `account_ids`, all
    of it tagged dev-apps."""
    rng = np.random.default_rng(8)
    charges: Charges = {"SERVICE": {}, "LINKED_ACCOUNT": {}, "cluster": {}}
    for offset in range(30, 0, -1):
        day = today - timedelta(days=offset)
        amounts = {account_id: 100.0 + rng.normal(0.0, 2.0) for account_id in account_ids}
        charges["SERVICE"][day] = {(EC2, "Usage"): sum(amounts.values())}
        charges["LINKED_ACCOUNT"][day] = {(a, "Usage"): v for a, v in amounts.items()}
        charges["cluster"][day] = {("cluster$dev-apps", "Usage"): sum(amounts.values())}
    return charges


def queue_cost_explorer(
    today: date,
    ec2_last_day: float,
    cluster_key: str = "cluster$dev-apps",
    rds_amounts: dict[int, float] | None = None,
) -> None:
    """Queue the answers in request order: service (two pages), account, cluster tag (EC2's
    cost under `cluster_key`); `rds_amounts` replaces RDS's cost on the days it indexes."""
    rng = np.random.default_rng(11)
    days = [today - timedelta(days=30 - i) for i in range(30)]
    ec2 = 100.0 + rng.normal(0.0, 2.0, 30)
    ec2[-1] = ec2_last_day
    rds = 40.0 + rng.normal(0.0, 1.0, 30)
    for day_index, amount in (rds_amounts or {}).items():
        rds[day_index] = amount
    service = [day_result(d, {EC2: e, RDS: r}) for d, e, r in zip(days, ec2, rds, strict=True)]
    account = [
        day_result(d, {MEMBER_ACCOUNT_ID: e + r}) for d, e, r in zip(days, ec2, rds, strict=True)
    ]
    cluster = [day_result(d, {cluster_key: e, "cluster$": r})
               for d, e, r in zip(days, ec2, rds, strict=True)]  # fmt: skip
    results = [
        {"ResultsByTime": service[:15], "NextPageToken": "page-2"},
        {"ResultsByTime": service[15:]},
        {"ResultsByTime": account},
        {"ResultsByTime": cluster},
    ]
    assert requests.post(CE_QUEUE_URL, json={"results": results}).status_code == 201


def put_cur(
    clock: ManualClock, regions: tuple[str, ...] = (REGION,), currencies: tuple[str, ...] = ()
) -> pa.Table:
    """A month of generated CUR line items as Parquet under cur/ in the data bucket, in
    `regions` by turns (row by row), in USD but the first rows in `currencies`; the table
    written."""
    end = datetime.combine(clock.now().date(), datetime.min.time(), tzinfo=UTC)
    table, _ = cur_tables(3_000, end - timedelta(days=30), 30, seed=3)
    column = table.schema.get_field_index("product_region_code")
    in_turn = [regions[row % len(regions)] for row in range(table.num_rows)]
    table = table.set_column(column, "product_region_code", pa.array(in_turn))
    column = table.schema.get_field_index("line_item_currency_code")
    units = [*currencies, *["USD"] * (table.num_rows - len(currencies))]
    table = table.set_column(column, "line_item_currency_code", pa.array(units))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key="cur/data/part-0.parquet", Body=buffer.getvalue()
    )
    return table


def put_node_utilisation(
    session: boto3.Session, clock: ManualClock, percent: float, region: str = REGION
) -> None:
    """30 days of hourly node CPU utilisation of dev-apps in `region` at about `percent`."""
    end = clock.now().replace(minute=0, second=0, microsecond=0)
    data = [
        {"MetricName": "node_cpu_utilization",
         "Dimensions": [{"Name": "ClusterName", "Value": "dev-apps"}],
         "Timestamp": end - timedelta(hours=h + 1), "Value": percent + (h % 5)}
        for h in range(30 * 24)
    ]  # fmt: skip
    cloudwatch = session.client("cloudwatch", region_name=region)
    for offset in range(0, len(data), 1000):
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights", MetricData=data[offset : offset + 1000]
        )


OTHER_STACKS_FUNCTION = "lf-handlers-eu-eks-scaler"


def text_report(request: int, used_mb: int) -> str:
    """A REPORT line as Lambda writes it in the plain text log format (200 ms billed)."""
    return (f"REPORT RequestId: r{request}\tDuration: 199.20 ms\tBilled Duration: 200 ms\t"
            f"Memory Size: 1024 MB\tMax Memory Used: {used_mb} MB")  # fmt: skip


def create_functions(clock: ManualClock, report: Callable[[int, int], str] = text_report) -> None:
    """lf-handlers-eks-scaler (1024 MB, using about 100 MB; its REPORT lines as `report` writes
    them), a function outside the fleet's prefix and one of stack `handlers-eu`, whose name
    starts with this stack's."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client = boto3.client("lambda", region_name=REGION)
    for name in ("lf-handlers-eks-scaler", "someone-else", OTHER_STACKS_FUNCTION):
        lambda_client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}, MemorySize=1024,
            Architectures=["arm64"],
        )  # fmt: skip
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/aws/lambda/lf-handlers-eks-scaler")
    logs.create_log_stream(logGroupName="/aws/lambda/lf-handlers-eks-scaler", logStreamName="s")
    start = clock.now() - timedelta(days=2)
    events = [
        {"timestamp": int((start + timedelta(minutes=10 * i)).timestamp() * 1000),
         "message": report(i, 90 + i % 11)}
        for i in range(100)
    ]  # fmt: skip
    events.append({"timestamp": events[-1]["timestamp"] + 1, "message": "START RequestId: x"})
    logs.put_log_events(
        logGroupName="/aws/lambda/lf-handlers-eks-scaler", logStreamName="s", logEvents=events
    )


def read_report(key: str) -> dict[str, Any]:
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=DATA_BUCKET_NAME, Key=key)
    return json.loads(body["Body"].read())


def test_daily_analysis_writes_the_report_and_alerts(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of cost with EC2 at four times its usual on the last day, a CUR, an
    # under-used member cluster and an over-sized fleet function
    today = analyzer.now().date()
    queue_cost_explorer(today, ec2_last_day=400.0)
    stub_cost_forecast(2_000.0)
    put_cur(analyzer)
    put_node_utilisation(member_session(MEMBER_ACCOUNT_ID), analyzer, percent=10.0)
    create_functions(analyzer)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN it succeeds and the summary is in the data bucket under reports/cost/<date>/
    assert result["status"] == "ok", result["errors"]
    assert result["report"]["summary"] == "reports/cost/2025-06-02/summary.json"
    summary = read_report(result["report"]["summary"])
    # Cost Explorer: both pages of the service answer, the account and the cluster tag
    assert [s["name"] for s in summary["by_service"]] == [EC2, RDS]
    assert summary["by_account"][0]["name"] == MEMBER_ACCOUNT_ID
    assert {c["name"] for c in summary["by_cluster"]} == {"dev-apps", "(untagged)"}
    assert summary["period"] == {"start": "2025-05-03", "end": "2025-06-02"}
    forecast = summary["forecast"]
    assert forecast["month_end_total"] == pytest.approx(forecast["month_to_date"] + 2_000.0)
    # the EC2 jump is an anomaly (service, account and cluster views all see it)
    assert {(a["dimension"], a["group"]) for a in summary["anomalies"]} == {
        ("service", EC2),
        ("account", MEMBER_ACCOUNT_ID),
        ("cluster", "dev-apps"),
    }
    # CUR: spot share of EKS nodes and top resources
    nodes = summary["cur"]["eks_nodes"]
    assert 0.3 < nodes["spot_hours_share"] < 0.5
    assert {c["cluster"] for c in nodes["clusters"]} == {"dev-apps", "prod-apps"}
    assert {c["region"] for c in nodes["clusters"]} == {REGION}
    assert len(summary["cur"]["top_resources"]) == 10
    # node groups and idle hours: dev-apps averages 12% < 30%
    [underused] = summary["underused_node_groups"]
    assert underused["cluster"] == "dev-apps"
    assert underused["average_cpu_utilisation"] == pytest.approx(0.12)
    [idle] = summary["idle_node_hours"]["clusters"]
    assert (idle["account_id"], idle["region"], idle["cluster"]) == (
        MEMBER_ACCOUNT_ID,
        REGION,
        "dev-apps",
    )
    assert idle["idle_node_hours"] == pytest.approx(idle["node_hours"] * 0.88, abs=0.01)
    # Lambda memory: only this stack's function, 100 MB used x 1.3 -> 192 MB; the function of
    # stack handlers-eu is neither analysed nor an error
    assert summary["lambda_memory"]["decrease"] == ["lf-handlers-eks-scaler"]
    detail = read_report(result["report"]["detail"])
    [memory] = detail["lambda_memory"]
    assert OTHER_STACKS_FUNCTION not in json.dumps([summary, detail])
    assert (memory["max_used_mb"], memory["recommended_mb"]) == (100, 192)
    expected = (1024 - 192) / 1024 * (100 * 0.2 * 30 / 7) * 0.0000133334
    assert memory["monthly_saving_usd"] == pytest.approx(expected, rel=1e-4)
    # THEN three warning alerts (one per anomaly) and one info summary are published
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning", "warning", "warning"]
    # WHEN it is invoked again the same day THEN the anomalies are not alerted twice, and the
    # new invocation sends its own summary
    queue_cost_explorer(today, ec2_last_day=400.0)
    lambda_handler({"action": "analyze"}, dataclasses.replace(lambda_context, aws_request_id="r2"))
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def cur_node_hours(table: pa.Table, account_id: str, region: str, cluster: str) -> float:
    """EC2 instance hours of one cluster in the generated CUR, counted here by hand."""
    lines = table.to_pandas()
    tagged = lines["resource_tags"].map(
        lambda tags: (
            cluster in (dict(tags).get("user_cluster"), dict(tags).get("aws_eks_cluster_name"))
        )
    )
    chosen = lines[
        tagged
        & (lines["line_item_usage_account_id"] == account_id)
        & (lines["product_region_code"] == region)
        & (lines["line_item_product_code"] == "AmazonEC2")
        & lines["line_item_usage_type"].str.contains("BoxUsage|SpotUsage")
    ]
    return float(chosen["line_item_usage_amount"].sum())


def test_two_clusters_of_one_name_keep_their_own_idle_node_hours(
    analyzer: ManualClock,
    inventory_in_s3: dict[str, Any],
    fleet_environment: dict[str, str],
    lambda_context: Any,
) -> None:
    # GIVEN the member account runs a dev-apps cluster in two regions, one at about 12% node
    # CPU and the other at about 72%, and a CUR whose line items alternate between them (the
    # generated CUR also has dev-apps clusters in two other accounts)
    other_region = "eu-west-1"
    twin = copy.deepcopy(inventory_in_s3["members"][0]["clusters"][0])
    twin["region"] = other_region
    inventory_in_s3["members"][0]["clusters"].append(twin)
    inventory_in_s3["members"][0]["regions"].append(other_region)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=fleet_environment["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory_in_s3).encode("utf-8"),
    )
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_500.0)
    table = put_cur(analyzer, regions=(REGION, other_region))
    session = member_session(MEMBER_ACCOUNT_ID)
    put_node_utilisation(session, analyzer, percent=10.0)
    put_node_utilisation(session, analyzer, percent=70.0, region=other_region)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN each cluster's idle hours are its own CUR node hours times its own idle share
    assert result["status"] == "ok", result["errors"]
    idle = read_report(result["report"]["summary"])["idle_node_hours"]["clusters"]
    by_region = {entry["region"]: entry for entry in idle}
    assert {(e["account_id"], e["cluster"]) for e in idle} == {(MEMBER_ACCOUNT_ID, "dev-apps")}
    for region, idle_share in ((REGION, 0.88), (other_region, 0.28)):
        hours = cur_node_hours(table, MEMBER_ACCOUNT_ID, region, "dev-apps")
        assert by_region[region]["node_hours"] == pytest.approx(hours)
        assert by_region[region]["idle_node_hours"] == pytest.approx(hours * idle_share, abs=0.01)


def test_alerts_sns_refuses_fail_the_run_and_its_retry_sends_each_exactly_once(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN an EC2 jump on the last day, and the hub's SNS failing on every attempt
    today = analyzer.now().date()
    queue_cost_explorer(today, ec2_last_day=400.0)
    stub_cost_forecast(2_000.0)
    fault = fail_every_attempt(app.FUNCTION.services().hub_client("sns"), "sns", "Publish")
    # WHEN the daily analysis runs
    with pytest.raises(AlertNotDeliveredError):
        lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the report is written, and nothing reached the alert topics
    summary = read_report(f"reports/cost/{today.isoformat()}/summary.json")
    assert len(summary["anomalies"]) == 3
    assert fault.attempts > 1
    assert alert_inbox.receive() == []
    # WHEN Lambda retries the invocation (same request id) with SNS healthy again
    fault.healed = True
    queue_cost_explorer(today, ec2_last_day=400.0)
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the three anomaly warnings and the summary go out, once each
    assert result["alerts"] == 4
    severities = sorted(a.alert["severity"] for a in alert_inbox.receive())
    assert severities == ["info", "warning", "warning", "warning"]
    # WHEN the same invocation is retried once more THEN nothing is sent again
    queue_cost_explorer(today, ec2_last_day=400.0)
    assert lambda_handler({"action": "analyze"}, lambda_context)["alerts"] == 0
    assert alert_inbox.receive() == []


def test_an_analysis_killed_while_sns_hangs_is_announced_once_by_the_platforms_retry(
    analyzer: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN an EC2 jump on the last day: three anomaly warnings and the summary to announce
    today = analyzer.now().date()
    stub_cost_forecast(2_000.0)

    def analyze(context: Any) -> dict[str, Any]:
        queue_cost_explorer(today, ec2_last_day=400.0)
        return lambda_handler({"action": "analyze"}, context)

    # WHEN SNS never answers the run's first Publish, so Lambda kills the run at its deadline,
    # and retries it a minute later
    sns = app.FUNCTION.services().hub_client("sns")
    retried = killed_while_publishing_then_retried(sns, analyzer, analyze)
    # THEN the retry is not refused by the killed run's claim: it announces all four, once each
    assert retried["alerts"] == 4, retried
    severities = sorted(a.alert["severity"] for a in alert_inbox.receive())
    assert severities == ["info", "warning", "warning", "warning"]


@pytest.mark.parametrize(
    ("ec2_last_day", "rds_amounts"),
    [(50.0, None), (100.0, {-5: 10.0})],
    ids=["yesterday_still_filling_in", "five_days_ago_before_the_three_recent_days"],
)
def test_a_drop_on_a_day_still_filling_in_or_before_the_recent_days_is_not_an_anomaly(
    analyzer: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    ec2_last_day: float,
    rds_amounts: dict[int, float] | None,
) -> None:
    # GIVEN a run at 03:30 UTC reporting anomalies of the last 3 days, and a month of cost whose
    # newest day (yesterday, ended three and a half hours ago, so Cost Explorer has not all of it
    # yet) has EC2 at `ec2_last_day`, or whose day five days ago (before the three recent
    # complete days, from four days ago to the day before yesterday) has RDS at a quarter its usual
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=ec2_last_day, rds_amounts=rds_amounts)
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN no anomaly is reported, and only the summary goes out
    summary = read_report(result["report"]["summary"])
    assert summary["anomalies"] == []
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


@pytest.mark.parametrize(
    ("recent_days", "days_ago"),
    [(1, 2), (3, 2), (3, 4)],
    ids=[
        "one_day_drop_before_yesterday",
        "three_days_drop_before_yesterday",
        "three_days_drop_4_ago",
    ],
)
def test_a_drop_is_an_anomaly_once_its_day_is_complete(  # noqa: PLR0917
    analyzer: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    recent_days: int,
    days_ago: int,
) -> None:
    # GIVEN anomalies reported on the last `recent_days` days, and a month of cost whose day
    # `days_ago` (complete: it ended more than a day ago) has RDS at a quarter its usual
    monkeypatch.setenv("COST_ANOMALY_RECENT_DAYS", str(recent_days))
    today = analyzer.now().date()
    queue_cost_explorer(today, ec2_last_day=100.0, rds_amounts={-days_ago: 10.0})
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the drop is an anomaly on that day in each view that holds RDS, each alerted
    summary = read_report(result["report"]["summary"])
    drop_day = f"{(today - timedelta(days=days_ago)).isoformat()}T00:00:00Z"
    assert {(a["dimension"], a["group"], a["timestamp"]) for a in summary["anomalies"]} == {
        ("service", RDS, drop_day),
        ("account", MEMBER_ACCOUNT_ID, drop_day),
        ("cluster", "(untagged)", drop_day),
    }
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning", "warning", "warning"]


def test_a_flat_fee_whose_amount_differs_in_its_tenth_decimal_is_not_an_anomaly(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of cost in which an EKS control plane costs its flat 2.40 USD a day, as
    # Cost Explorer writes it yesterday "2.4000000001", in every view
    today = analyzer.now().date()
    days = [today - timedelta(days=30 - i) for i in range(30)]
    fees = ["2.4000000000"] * 29 + ["2.4000000001"]

    def results(key: str) -> dict[str, Any]:
        return {
            "ResultsByTime": [
                {**day_result(day, {}), "Groups": [
                    {"Keys": [key, "Usage"],
                     "Metrics": {"UnblendedCost": {"Amount": fee, "Unit": "USD"}}}
                ]}
                for day, fee in zip(days, fees, strict=True)
            ]
        }  # fmt: skip

    answers = [results("Amazon Elastic Container Service for Kubernetes"),
               results(MEMBER_ACCOUNT_ID), results("cluster$dev-apps")]  # fmt: skip
    assert requests.post(CE_QUEUE_URL, json={"results": answers}).status_code == 201
    stub_cost_forecast(70.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN that rounding is no anomaly in any view: only the summary goes out
    summary = read_report(result["report"]["summary"])
    assert summary["total_cost"] == 72.0
    assert summary["anomalies"] == []
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_tax_posted_on_the_1st_is_in_the_totals_but_no_anomaly(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a usual month of EC2 usage up to 1 June, on which the month's tax of 30 is posted
    # to the member account (as Cost Explorer does, on the 1st), untagged
    today = analyzer.now().date()
    charges = usual_month(today, (MEMBER_ACCOUNT_ID,))
    first = date(2025, 6, 1)
    charges["SERVICE"][first][("Tax", "Tax")] = 30.0
    charges["LINKED_ACCOUNT"][first][(MEMBER_ACCOUNT_ID, "Tax")] = 30.0
    charges["cluster"][first][("cluster$", "Tax")] = 30.0
    answer_cost_explorer_by_request(charges, units={})
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the tax is in the totals, as on the bill, and in the day's detail
    summary = read_report(result["report"]["summary"])
    usage = sum(amount for day in charges["SERVICE"].values() for amount in day.values())
    assert summary["total_cost"] == pytest.approx(usage, abs=1e-3)
    assert summary["by_account"][0]["cost"] == pytest.approx(usage, abs=1e-3)
    # AND it is no spike of the account, nor of any other group: nothing but the summary goes out
    assert summary["anomalies"] == []
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_an_account_billed_in_another_currency_is_left_out_and_named_and_the_report_says_eur(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of cost in EUR from two member accounts, a third account's in USD among
    # them every day, and a forecast in EUR
    today = analyzer.now().date()
    charges = usual_month(today, (MEMBER_ACCOUNT_ID, "444444444444"))
    for costs in charges["LINKED_ACCOUNT"].values():
        costs[(DENIED_ACCOUNT_ID, "Usage")] = 90.0
    units = {EC2: "EUR", MEMBER_ACCOUNT_ID: "EUR", "444444444444": "EUR",
             "cluster$dev-apps": "EUR"}  # fmt: skip
    answer_cost_explorer_by_request(charges, units)
    stub_cost_forecast(2_000.0, unit="EUR")
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the USD amounts are left out of the account view, with one error naming the field,
    # the count and the first one's currency
    summary = read_report(result["report"]["summary"])
    first_day = (today - timedelta(days=30)).isoformat()
    assert [e for e in result["errors"] if e["section"] == "cost_explorer"] == [
        {
            "section": "cost_explorer",
            "dimension": "account",
            "error": "Metrics.UnblendedCost.Unit: 30 values left out, not in EUR as the others; "
            f"the first 'USD' on {first_day}",
        }
    ]
    assert {a["name"] for a in summary["by_account"]} == {MEMBER_ACCOUNT_ID, "444444444444"}
    # AND the report and its summary alert say their figures are in EUR
    assert (summary["currency"], summary["forecast"]["unit"]) == ("EUR", "EUR")
    [summary_alert] = alert_inbox.receive()
    assert f"{summary['total_cost']} EUR" in summary_alert.alert["detail"]
    assert "USD;" not in summary_alert.alert["detail"]


@pytest.mark.parametrize("outside", [date(2300, 1, 1), date(2000, 1, 1)], ids=["2300", "2000"])
def test_a_cost_explorer_day_outside_the_period_asked_is_the_sections_error_not_the_runs(
    analyzer: ManualClock, lambda_context: Any, outside: date
) -> None:
    # GIVEN a Cost Explorer answer of the cluster tag's costs whose last day is not in the
    # period asked (past pandas' time index, or long before the lookback)
    today = analyzer.now().date()
    days = [today - timedelta(days=30 - i) for i in range(30)]
    service = [day_result(d, {EC2: 100.0 + i % 3}) for i, d in enumerate(days)]
    account = [day_result(d, {MEMBER_ACCOUNT_ID: 100.0 + i % 3}) for i, d in enumerate(days)]
    cluster = [day_result(d, {"cluster$dev-apps": 100.0 + i % 3}) for i, d in enumerate(days)]
    cluster[-1] = day_result(outside, {"cluster$dev-apps": 500.0})
    results = [{"ResultsByTime": service}, {"ResultsByTime": account}, {"ResultsByTime": cluster}]
    assert requests.post(CE_QUEUE_URL, json={"results": results}).status_code == 201
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the Cost Explorer section is one error naming the day, and the report is written
    [error] = [e for e in result["errors"] if e["section"] == "cost_explorer"]
    start = today - timedelta(days=30)
    assert f"TimePeriod.Start {outside} is outside {start} to {today}" in error["error"]
    assert read_report(result["report"]["summary"])["anomalies"] == []


def test_a_cluster_whose_cost_stops_is_a_drop_on_the_first_day_cost_explorer_leaves_it_out(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of cost in which the nodes of cluster dev-apps lost their cluster tag three
    # days ago: Cost Explorer lists no dev-apps group on those days (it sends no group of no
    # cost), and the untagged cost grows by as much; the total, by service and account, is as
    # usual
    today = analyzer.now().date()
    days = [today - timedelta(days=30 - i) for i in range(30)]
    rng = np.random.default_rng(5)
    tagged = 100.0 + rng.normal(0.0, 2.0, 30)
    untagged = 40.0 + rng.normal(0.0, 1.0, 30)
    untagged[-3:] += tagged[-3:]
    cluster = [
        day_result(day, {"cluster$dev-apps": t, "cluster$": u} if i < 27 else {"cluster$": u})
        for i, (day, t, u) in enumerate(zip(days, tagged, untagged, strict=True))
    ]
    totals = tagged + untagged - np.where(np.arange(30) >= 27, tagged, 0.0)
    results = [
        {"ResultsByTime": [day_result(d, {EC2: v}) for d, v in zip(days, totals, strict=True)]},
        {"ResultsByTime": [day_result(d, {MEMBER_ACCOUNT_ID: v})
                           for d, v in zip(days, totals, strict=True)]},
        {"ResultsByTime": cluster},
    ]  # fmt: skip
    assert requests.post(CE_QUEUE_URL, json={"results": results}).status_code == 201
    stub_cost_forecast(4_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN dev-apps' cost falling to nothing is a drop on the first of those days, alerted, as the
    # untagged cost's rise is
    summary = read_report(result["report"]["summary"])
    first_day = f"{(today - timedelta(days=3)).isoformat()}T00:00:00Z"
    found = {(a["dimension"], a["group"], a["timestamp"], a["score"] > 0)
             for a in summary["anomalies"]}  # fmt: skip
    assert ("cluster", "dev-apps", first_day, False) in found
    assert ("cluster", "(untagged)", first_day, True) in found
    assert {dimension for dimension, *_ in found} == {"cluster"}
    dev_apps = [a for a in summary["anomalies"] if a["group"] == "dev-apps"]
    assert all(a["value"] == 0.0 for a in dev_apps)
    assert len(alert_inbox.receive()) == len(summary["anomalies"]) + 1


def test_a_monthly_charge_is_not_a_spike_every_month(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a 60-day lookback on 2 June, over which Cost Explorer lists Tax only on the days it
    # is charged, 200 USD on 1 May and on 1 June, beside about 140 USD a day of EC2
    monkeypatch.setenv("COST_LOOKBACK_DAYS", "60")
    today = analyzer.now().date()
    days = [today - timedelta(days=60 - i) for i in range(60)]
    ec2 = 140.0 + np.random.default_rng(7).normal(0.0, 2.0, 60)
    service = [
        day_result(day, {EC2: amount, "Tax": 200.0} if day.day == 1 else {EC2: amount})
        for day, amount in zip(days, ec2, strict=True)
    ]
    others = [{"ResultsByTime": [day_result(d, {key: a}) for d, a in zip(days, ec2, strict=True)]}
              for key in (MEMBER_ACCOUNT_ID, "cluster$dev-apps")]  # fmt: skip
    answers = [{"ResultsByTime": service}, *others]
    assert requests.post(CE_QUEUE_URL, json={"results": answers}).status_code == 201
    stub_cost_forecast(4_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the charge of 1 June, like the one of 1 May, is no anomaly: the days between are not
    # taken for days of a daily cost that stopped
    summary = read_report(result["report"]["summary"])
    assert [a["group"] for a in summary["anomalies"]] == []
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_day_whose_cost_is_not_a_number_is_no_drop_to_nothing(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a month of usual cost in which Cost Explorer answers NaN for RDS on the day before
    # yesterday (a complete day, so a drop there would be judged)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0, rds_amounts={-2: float("nan")})
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN that day is left out of RDS' series, not taken for a day without cost: no anomaly,
    # and only the summary goes out
    summary = read_report(result["report"]["summary"])
    assert summary["anomalies"] == []
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_an_anomaly_of_a_cluster_tag_too_long_for_a_key_is_alerted_once_with_the_summary(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN an EC2 jump on the last day, its cost tagged with a 10,000-character cluster tag of
    # markup and control characters (longer than a state table key may be)
    today = analyzer.now().date()
    hostile_tag = "<b>x</b>\x00\n" * 1000
    queue_cost_explorer(today, ec2_last_day=400.0, cluster_key=f"cluster${hostile_tag}")
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the run succeeds: the three anomalies and the summary went out, the cluster's under
    # the whole tag
    assert result["alerts"] == 4, result
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning", "warning", "warning"]
    [cluster_alert] = [a for a in alerts if a.alert["resource"].startswith("cost/cluster/")]
    assert cluster_alert.alert["resource"] == f"cost/cluster/{hostile_tag}"
    # WHEN the next invocation of the day runs THEN the cluster's anomaly is not sent again
    queue_cost_explorer(today, ec2_last_day=400.0, cluster_key=f"cluster${hostile_tag}")
    lambda_handler({"action": "analyze"}, dataclasses.replace(lambda_context, aws_request_id="r2"))
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_an_anomaly_of_a_cluster_tag_holding_a_lone_surrogate_is_alerted_with_the_summary(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN an EC2 jump on the last day, its cost under a cluster tag that Cost Explorer's JSON
    # answer writes with an escaped lone surrogate (`\\ud800`), which no UTF-8 text can hold
    today = analyzer.now().date()
    queue_cost_explorer(today, ec2_last_day=400.0, cluster_key="cluster$team-\ud800-apps")
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the run succeeds: the three anomalies and the summary went out, the cluster's naming
    # the tag with U+FFFD in the surrogate's place
    assert result["alerts"] == 4, result
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning", "warning", "warning"]
    [cluster_alert] = [a for a in alerts if a.alert["resource"].startswith("cost/cluster/")]
    assert cluster_alert.alert["resource"] == "cost/cluster/team-\ufffd-apps"
    assert "team-\ufffd-apps" in cluster_alert.alert["title"]


def refuse_non_json_numbers(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")


def test_a_cost_that_is_not_a_number_is_left_out_and_reported_and_the_rest_goes_on(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN an EC2 jump on the last day, and Cost Explorer answering NaN for RDS on one day and
    # Infinity on another (so for the linked account and the untagged cluster cost too)
    today = analyzer.now().date()
    queue_cost_explorer(today, ec2_last_day=400.0, rds_amounts={5: float("nan"), 9: float("inf")})
    stub_cost_forecast(2_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the run is partial with one error per dimension naming the field and the bad value
    assert result["status"] == "partial"
    errors = [e for e in result["errors"] if e["section"] == "cost_explorer"]
    assert sorted(e["dimension"] for e in errors) == ["account", "cluster", "service"]
    for error in errors:
        assert error["error"].startswith("Metrics.UnblendedCost.Amount: 2 values left out")
        assert "'nan'" in error["error"]
    # AND the report is strict JSON, its totals leave the bad days out
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=result["report"]["summary"])["Body"]
        .read()
    )
    summary = json.loads(body, parse_constant=refuse_non_json_numbers)
    assert summary["by_service"][1]["name"] == RDS
    assert 40.0 * 25 < summary["by_service"][1]["cost"] < 40.0 * 30
    # AND the EC2 anomalies and the summary still went out
    severities = sorted(a.alert["severity"] for a in alert_inbox.receive())
    assert severities == ["info", "warning", "warning", "warning"]


def scheduled_run_event(scheduled_time: str) -> dict[str, Any]:
    """The cost-analysis schedule's payload as the catalog declares it, as Scheduler delivers
    it."""
    [schedule] = [
        t for t in function_spec("cost_analyzer").triggers if isinstance(t, FixedSchedule)
    ]
    return scheduler_input(
        schedule.payload,
        scheduled_at=datetime.fromisoformat(scheduled_time),
        execution_id="cost-analysis-run",
        attempt=1,
    )


def test_a_scheduler_retry_of_the_daily_run_does_not_send_the_summary_again(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the schedule's daily run, delivered twice: Scheduler retried after a lost answer, so
    # Lambda sees two requests with different request ids, both for the same scheduled time
    today = analyzer.now().date()
    run = scheduled_run_event(f"{today.isoformat()}T06:30:00Z")
    # WHEN both are handled
    for request_id in ("attempt-1", "attempt-2"):
        queue_cost_explorer(today, ec2_last_day=100.0)
        stub_cost_forecast(1_500.0)
        lambda_handler(run, dataclasses.replace(lambda_context, aws_request_id=request_id))
    # THEN the day's summary went out once
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]
    # AND a run of another scheduled time (the next day's) sends its own
    queue_cost_explorer(today, ec2_last_day=100.0)
    lambda_handler(
        scheduled_run_event(f"{today.isoformat()}T07:30:00Z"),
        dataclasses.replace(lambda_context, aws_request_id="attempt-3"),
    )
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_scheduler_retry_after_midnight_utc_does_not_send_the_runs_summary_again(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the daily run scheduled at 06:30 in Asia/Bangkok, 23:30 UTC, whose first attempt
    # ends at 23:40 and whose answer is lost, so Scheduler retries it at 00:10 UTC
    day = analyzer.now().date()
    run = scheduled_run_event(f"{day + timedelta(days=1)}T06:30:00+07:00")
    attempts = [
        ("attempt-1", datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
            hours=23, minutes=40)),
        ("attempt-2", datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
            days=1, minutes=10)),
    ]  # fmt: skip
    # WHEN both attempts are handled
    for request_id, moment in attempts:
        analyzer.set(moment)
        queue_cost_explorer(moment.date(), ec2_last_day=100.0)
        stub_cost_forecast(1_500.0)
        lambda_handler(run, dataclasses.replace(lambda_context, aws_request_id=request_id))
    # THEN the run's summary went out once, though the second attempt's UTC day is the next
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_clusters_and_functions_left_without_time_are_not_started(
    analyzer: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN an under-used member cluster and a fleet function, and an invocation with 28 s left:
    # time for the listing of the functions (a hung call and the report's, 27 s), too little
    # for a cluster or a function (COST_TARGET_SECONDS, 30 s)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_500.0)
    put_node_utilisation(member_session(MEMBER_ACCOUNT_ID), analyzer, percent=10.0)
    create_functions(analyzer)
    running_out = ContextRunningOutOfTime(millis_left=[28_000])
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, running_out)
    # THEN no cluster or function query was started, they are listed, and the run is partial
    assert result["status"] == "partial"
    assert result["not_started"] == [
        {"section": "node_groups", "account_id": MEMBER_ACCOUNT_ID, "region": REGION,
         "cluster": "dev-apps"},
        {"section": "lambda_memory", "function": "lf-handlers-eks-scaler"},
    ]  # fmt: skip
    summary = read_report(result["report"]["summary"])
    assert summary["underused_node_groups"] == []
    assert summary["not_started"] == result["not_started"]
    # AND the report's summary still went out, once
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_sections_whose_first_call_would_not_fit_are_not_started_and_the_report_written(
    analyzer: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a member cluster and a fleet function, and a Cost Explorer whose answers take 11 s
    # each of an invocation with 70 s left: 37 s are left for its last daily read and 26 s
    # after it, less than a hung call of any later section and the report's time
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_500.0)
    create_functions(analyzer)
    time = LambdaTime(70.0)
    cost_explorer_client().meta.events.register(
        "after-call.ce.GetCostAndUsage", lambda **_: time.spend(11.0)
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the forecast, the CUR and the Lambda memory sections are not started, each its error,
    # and the cluster is listed as not started
    assert [(e["section"], e["error"]) for e in result["errors"]] == [
        ("forecast", NOT_STARTED), ("cur", NOT_STARTED), ("lambda_memory", NOT_STARTED),
    ]  # fmt: skip
    assert [t["section"] for t in result["not_started"]] == ["node_groups"]
    # AND the report holds Cost Explorer's totals, and its summary went out, once
    summary = read_report(result["report"]["summary"])
    assert summary["total_cost"] > 0
    assert summary["errors"] == result["errors"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_denied_member_is_reported_and_the_rest_of_the_report_is_written(
    analyzer: ManualClock,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a second member whose role cannot be assumed, and usual cost and CUR
    denied = json.loads(json.dumps(inventory_document["members"][0]))
    denied["account_id"] = DENIED_ACCOUNT_ID
    inventory_document["members"].append(denied)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode(),
    )  # fmt: skip
    deny_assume_role(monkeypatch, DENIED_ACCOUNT_ID)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_500.0)
    put_cur(analyzer)
    put_node_utilisation(member_session(MEMBER_ACCOUNT_ID), analyzer, percent=50.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the denied account is one error and the report is still complete for the rest
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert (error["section"], error["account_id"]) == ("node_groups", DENIED_ACCOUNT_ID)
    summary = read_report(result["report"]["summary"])
    assert summary["anomalies"] == []
    assert summary["underused_node_groups"] == []
    assert summary["forecast"]["forecast_remaining"] == 1_500.0


def truncated_gzip() -> bytes:
    """A gzipped CSV export cut off half-way, as a failed upload leaves it."""
    header = ",".join(REQUIRED_COLUMNS)
    line = "2025-06-01T00:00:00Z,222222222222,AmazonEC2,i-1,BoxUsage:m7g.large,1.0,0.08"
    whole = gzip.compress("\n".join([header, *[line] * 20_000]).encode())
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("key", "body"),
    [("cur/data/part-1.csv.gz", truncated_gzip()),
     ("cur/data/part-1.csv.gz", b"<html>not gzip</html>"),
     ("cur/data/part-1.parquet", b"")],
    ids=["truncated-gzip", "not-gzip", "empty-parquet"],
)  # fmt: skip
def test_a_cur_file_that_cannot_be_read_is_the_cur_error_naming_it_and_the_report_is_written(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any, key: str, body: bytes
) -> None:
    # GIVEN a readable month of CUR beside one file that cannot be read, and usual cost
    put_cur(analyzer)
    boto3.client("s3", region_name=REGION).put_object(Bucket=DATA_BUCKET_NAME, Key=key, Body=body)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section is one error naming the file, the run is partial
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"].startswith(f"CUR file {key} cannot be read: ")
    assert len(error["error"]) < 200
    # AND the report and its summary are still written with the other sections
    summary = read_report(result["report"]["summary"])
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def spend_until_left(time: LambdaTime, seconds_left: float) -> Callable[..., None]:
    """A botocore event handler spending `time` until `seconds_left` are left (nothing once
    fewer are): the call it is registered on takes the invocation that long."""

    def spend(**_: Any) -> None:
        time.spend(max(0.0, time.seconds_left - time.spent - seconds_left))

    return spend


def _a_second_file_at_40_s_left(table: pa.Table, _: ExitStack) -> tuple[Any, str]:
    """A second CUR file, and an invocation with 10 minutes left whose first file takes until
    40 s (less than a poll's reserve, 44 s) are left to read."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key="cur/data/part-1.parquet", Body=buffer.getvalue()
    )
    time = LambdaTime(600.0)
    spend = spend_until_left(time, 40.0)
    app.FUNCTION.services().sessions.hub_client("s3").meta.events.register(
        "before-parameter-build.s3.GetObject",
        lambda params, **_: spend() if params["Key"] == "cur/data/part-0.parquet" else None,
    )
    return time.context(), (
        f"CUR read given up after 1 of 2 files under s3://{DATA_BUCKET_NAME}/cur/: too little "
        "time left in the invocation"
    )


def _endless_empty_listing_pages(_: pa.Table, __: ExitStack) -> tuple[Any, str]:
    """An invocation with 60 s left, and S3 answering every page of the CUR's listing with no
    object and a next page under a new token, a second a page."""
    time = LambdaTime(60.0)
    client = app.FUNCTION.services().sessions.hub_client("s3")
    client.meta.events.register_first("before-send.s3.ListObjectsV2", EndlessListing(time, "cur/"))
    return time.context(), (
        f"CUR listing of s3://{DATA_BUCKET_NAME}/cur/ given up after 0 objects: too little time "
        "left in the invocation"
    )


def _a_manifest_that_trickles(_: pa.Table, stack: ExitStack) -> tuple[Any, str]:
    """May's Data Exports manifest, whose body S3 sends a byte every 50 ms (each read well
    within the client's read timeout; 40 s for its 800 bytes), and an invocation with a poll's
    reserve (44 s) and 0.3 s more."""
    key = "cur/fleet/metadata/BILLING_PERIOD=2025-05/fleet-Manifest.json"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME, Key=key, Body=b'{"dataFiles": []}'
    )
    client = app.FUNCTION.services().sessions.hub_client("s3")
    stack.enter_context(trickling_get_object(client, "Manifest.json", 800))
    return ContextRunningOutOfTime(millis_left=[round((POLL_RESERVE_SECONDS + 0.3) * 1000)]), (
        f"CUR manifest {key}: its bytes did not all come within the 0.3 s the invocation had "
        "left for them"
    )


def _a_csv_file_that_trickles(_: pa.Table, stack: ExitStack) -> tuple[Any, str]:
    """The month's CUR as a CSV file in place of the Parquet one (read first, that one would
    have to come within the same 0.3 s, which a loaded machine may not give it), whose body S3
    sends as the manifest's above, and an invocation with a poll's reserve and 0.3 s more: the
    file is streamed, not read whole."""
    key = "cur/data/part-1.csv"
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_object(Bucket=DATA_BUCKET_NAME, Key="cur/data/part-0.parquet")
    s3.put_object(Bucket=DATA_BUCKET_NAME, Key=key, Body=b"line_item_usage_start_date\n")
    return _trickling(stack, key)


def _a_parquet_file_that_trickles(_: pa.Table, stack: ExitStack) -> tuple[Any, str]:
    """The month's Parquet file, whose ranged reads S3 answers as the manifest's above, and an
    invocation with a poll's reserve and 0.3 s more."""
    return _trickling(stack, "cur/data/part-0.parquet")


def _a_parquet_file_answered_after_its_time(_: pa.Table, stack: ExitStack) -> tuple[Any, str]:
    """The month's Parquet file trickling as above, and its first ranged read answered only
    after the 0.3 s the file had (on the reader's clock, which each GetObject moves a second)."""
    now = [0.0]
    reader_time = SimpleNamespace(monotonic=lambda: now[0])
    stack.enter_context(pytest.MonkeyPatch.context()).setattr(cur_reader, "time", reader_time)
    app.FUNCTION.services().sessions.hub_client("s3").meta.events.register(
        "before-send.s3.GetObject", lambda **_: now.__setitem__(0, now[0] + 1.0)
    )
    return _trickling(stack, "cur/data/part-0.parquet")


def _trickling(stack: ExitStack, key: str) -> tuple[Any, str]:
    client = app.FUNCTION.services().sessions.hub_client("s3")
    stack.enter_context(trickling_get_object(client, key, 800))
    return ContextRunningOutOfTime(millis_left=[round((POLL_RESERVE_SECONDS + 0.3) * 1000)]), (
        f"CUR file {key}: its bytes did not all come within the 0.3 s the invocation had left "
        "for them"
    )


@pytest.mark.parametrize(
    "running_short",
    [
        _a_second_file_at_40_s_left,
        _endless_empty_listing_pages,
        _a_manifest_that_trickles,
        _a_csv_file_that_trickles,
        _a_parquet_file_that_trickles,
        _a_parquet_file_answered_after_its_time,
    ],
)
def test_the_pandas_engine_gives_up_the_cur_when_time_runs_short_and_the_report_is_written(
    analyzer: ManualClock,
    alert_inbox: Any,
    running_short: Callable[[pa.Table, ExitStack], tuple[Any, str]],
) -> None:
    # GIVEN a month of CUR, usual cost, and an invocation running short of time before the next
    # CUR file, before the next page of the CUR's listing, or in a manifest or file that
    # trickles
    table = put_cur(analyzer)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    with ExitStack() as stack:
        context, given_up = running_short(table, stack)
        # WHEN the analysis runs
        result = lambda_handler({"action": "analyze"}, context)
    # THEN the CUR is given up while a poll's reserve is left, instead of Lambda ending the run
    # in it: the CUR section is one error saying how far it got
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"] == given_up
    # AND the report, without CUR figures, and its summary are still written
    summary = read_report(result["report"]["summary"])
    assert "cur" not in summary
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_the_pandas_engine_reads_only_the_billing_periods_the_lookback_overlaps(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a CUR 2.0 export of a year of billing periods (BILLING_PERIOD=YYYY-MM, as Data
    # Exports partitions it); the 30-day lookback from 2025-06-02 reaches back into May
    table = put_cur(analyzer)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    export = "cur/fleet/data"
    months = [f"2024-{m:02d}" for m in range(7, 13)] + [f"2025-{m:02d}" for m in range(1, 7)]
    for month in months:
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=DATA_BUCKET_NAME, Key=f"{export}/BILLING_PERIOD={month}/fleet-00001.parquet",
            Body=buffer.getvalue(),
        )  # fmt: skip
    s3 = app.FUNCTION.services().sessions.hub_client("s3")
    fetched: set[str] = set()
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: fetched.add(params["Key"])
    )
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN only May's and June's partitions (and the file outside any partition) were read
    assert not [e for e in result["errors"] if e["section"] == "cur"]
    assert {key for key in fetched if key.startswith("cur/")} == {
        "cur/data/part-0.parquet",
        f"{export}/BILLING_PERIOD=2025-05/fleet-00001.parquet",
        f"{export}/BILLING_PERIOD=2025-06/fleet-00001.parquet",
    }


def test_a_create_new_export_is_counted_once_in_the_report_from_its_latest_refresh(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a CUR 2.0 export delivered with "create new": May's line items in two refreshes'
    # folders, May's manifest naming the files of the later one, and usual Cost Explorer data
    table = put_cur(analyzer)
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_object(Bucket=DATA_BUCKET_NAME, Key="cur/data/part-0.parquet")
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    period = "cur/fleet/data/BILLING_PERIOD=2025-05"
    for execution_id in ("exec-0001", "exec-0002"):
        s3.put_object(
            Bucket=DATA_BUCKET_NAME, Key=f"{period}/{execution_id}/fleet-00001.snappy.parquet",
            Body=buffer.getvalue(),
        )  # fmt: skip
    latest = f"s3://{DATA_BUCKET_NAME}/{period}/exec-0002/fleet-00001.snappy.parquet"
    s3.put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="cur/fleet/metadata/BILLING_PERIOD=2025-05/fleet-Manifest.json",
        Body=json.dumps({"executionId": "exec-0002", "dataFiles": [latest]}).encode(),
    )
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the report's CUR cost is the month's once, not once per refresh kept
    assert not [e for e in result["errors"] if e["section"] == "cur"]
    lines = table.to_pandas()
    start, end = datetime(2025, 5, 3, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)
    once = summarise(aggregate_line_items(lines, start, end), top_n=10)["total_cost"]
    assert read_report(result["report"]["summary"])["cur"]["total_cost"] == pytest.approx(once)


def test_a_cur_prefix_without_line_items_in_the_lookback_is_the_cur_error_not_a_zero_cost(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN no CUR under the prefix the function reads (the export writes elsewhere), and usual
    # Cost Explorer data
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section is one error naming where it looked, not a CUR costing nothing
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"] == (
        f"no CUR line items from 2025-05-03 to 2025-06-02 in s3://{DATA_BUCKET_NAME}/cur/"
    )
    assert "cur" not in read_report(result["report"]["summary"])


def hang_operation(time: LambdaTime, account_id: str, region: str, operation: str) -> HungOperation:
    """Make every attempt of `operation` (`<service>.<Operation>`) through the handler's clients
    of `account_id` and `region` go to an endpoint that accepts the connection and never answers;
    the fault, which counts them."""
    fault = HungOperation(time)
    session = app.FUNCTION.services().sessions.session(account_id, region)
    session.events.register_first(f"before-parameter-build.{operation}", fault.note_config)
    session.events.register_first(f"before-send.{operation}", fault.hang)
    return fault


@pytest.mark.parametrize(
    ("account_id", "operation", "target"),
    [(MEMBER_ACCOUNT_ID, "cloudwatch.GetMetricData", {"section": "node_groups",
                                                     "cluster": "dev-apps"}),
     (HUB_ACCOUNT_ID, "logs.StartQuery", {"section": "lambda_memory",
                                           "function": "lf-handlers-eks-scaler"})],
    ids=["cluster-utilisation", "function-memory"],
)  # fmt: skip
def test_a_target_whose_endpoint_hangs_costs_at_most_its_budget_and_the_report_is_written(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    account_id: str,
    operation: str,
    target: dict[str, str],
) -> None:
    # GIVEN an invocation with 120 s left, and one cluster's CloudWatch (or one function's Logs
    # Insights) endpoint that accepts the connection and never answers
    time = LambdaTime(120).spend_botocore_waits(monkeypatch)
    hang_operation(time, account_id, REGION, operation)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    put_cur(analyzer)
    create_functions(analyzer)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the hung target is its error well inside COST_TARGET_SECONDS (30 s), leaving the
    # report time, instead of botocore's default timeouts and attempts using up the invocation
    [error] = [e for e in result["errors"] if e["section"] == target["section"]]
    assert {key: error[key] for key in target} == target
    assert "Read timeout" in error["error"]
    assert time.spent <= 20
    # AND the report and its summary are written
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_cluster_needs_time_for_a_hung_call_and_the_report_whatever_the_target_seconds(
    analyzer: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN COST_TARGET_SECONDS set to 1 (a typo of 10, or of 30: a valid value), an invocation
    # with 20 s left, less than one hung call (17 s) and the report's time (10 s), and a
    # member CloudWatch endpoint that accepts the connection and never answers
    monkeypatch.setenv("COST_TARGET_SECONDS", "1")
    time = LambdaTime(20).spend_botocore_waits(monkeypatch)
    hung = hang_operation(time, MEMBER_ACCOUNT_ID, REGION, "cloudwatch.GetMetricData")
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the cluster is not started, instead of a call that could hang past the report's time
    assert hung.attempts == 0
    assert {"section": "node_groups", "account_id": MEMBER_ACCOUNT_ID, "region": REGION,
            "cluster": "dev-apps"} in result["not_started"]  # fmt: skip
    # AND the report and its summary are written
    assert read_report(result["report"]["summary"])["not_started"] == result["not_started"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


@pytest.mark.parametrize(
    ("region", "operation", "section"),
    [("us-east-1", "ce.GetCostAndUsage", "cost_explorer"),
     (REGION, "lambda.ListFunctions", "lambda_memory")],
    ids=["cost-explorer", "function-listing"],
)  # fmt: skip
def test_a_hub_api_that_hangs_costs_its_section_one_bounded_call_and_the_report_is_written(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    region: str,
    operation: str,
    section: str,
) -> None:
    # GIVEN an invocation with the function's whole timeout left, and the hub's Cost Explorer
    # (or Lambda, which lists the fleet's functions) endpoint that accepts the connection and
    # never answers
    timeout = function_spec("cost_analyzer").timeout_seconds
    time = LambdaTime(timeout).spend_botocore_waits(monkeypatch)
    hang_operation(time, HUB_ACCOUNT_ID, region, operation)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    put_cur(analyzer)
    create_functions(analyzer)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the hung call is its section's error within a target's bound, instead of botocore's
    # defaults (5 attempts of 60 s) spending minutes of the invocation that the Athena query and
    # the other sections' targets then lack
    [error] = [e for e in result["errors"] if e["section"] == section]
    assert "Read timeout" in error["error"]
    assert time.spent <= COST_EXPLORER_CALL_SECONDS
    # AND every other target is started, and the report and its summary are written
    assert result["not_started"] == []
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


@pytest.mark.parametrize(
    ("service", "operation", "tokens", "section", "reserve_seconds"),
    [
        ("ce", "GetCostAndUsage", ("NextPageToken", "NextPageToken"), "cost_explorer",
         COST_EXPLORER_PAGE_RESERVE_SECONDS),
        ("lambda", "ListFunctions", ("Marker", "NextMarker"), "lambda_memory",
         CALL_RESERVE_SECONDS),
    ],
)  # fmt: skip
def test_a_hub_api_paging_on_under_new_tokens_is_its_sections_error_and_the_report_written(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    alert_inbox: Any,
    service: str,
    operation: str,
    tokens: tuple[str, str],
    section: str,
    reserve_seconds: float,
) -> None:
    # GIVEN Cost Explorer (or Lambda, listing the fleet's functions), or a proxy, answering
    # every page with a next page under a token never sent before, each page taking 10 s of an
    # invocation with 120 s left
    time = LambdaTime(120.0)
    client = cost_explorer_client() if service == "ce" else hub_client(service)
    EndlessSlowPages(time, 10.0, tokens[1]).register(
        client.meta.events, f"{service}.{operation}", tokens[0]
    )
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the pages are followed only while a hung next page would still leave the report its
    # time, instead of until Lambda ended the run with no report: the section's one error
    assert time.seconds_left - time.spent <= reserve_seconds
    [error] = [e for e in result["errors"] if e["section"] == section]
    assert error["error"] == f"{operation} read cut short before its next page, for lack of time"
    # AND the report and its summary are written
    assert read_report(result["report"]["summary"])["errors"] == result["errors"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_function_listing_without_its_functions_is_the_memory_sections_error_alone(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the hub's Lambda answering ListFunctions with an answer (HTTP 200) without the
    # `Functions` Lambda sends in every answer, and usual cost and CUR
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    put_cur(analyzer)
    create_functions(analyzer)
    lambda_client = app.FUNCTION.services().sessions.client(
        "lambda", HUB_ACCOUNT_ID, REGION, TARGET_CALL_CONFIG
    )
    listing = answer_malformed(lambda_client, "lambda", "ListFunctions", b"{}")
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the memory section is one error naming what the answer lacked, the run is partial
    assert listing.answered >= 1
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert "ListFunctions answered without Functions" in error["error"]
    # AND the report and its summary are still written with the other sections
    summary = read_report(result["report"]["summary"])
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


@pytest.mark.parametrize("memory_size", [None, 10**400, -1], ids=["null", "400-digits", "negative"])
def test_a_function_listed_without_a_memory_size_of_lambdas_is_its_error_alone(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any, memory_size: object
) -> None:
    # GIVEN the hub's Lambda listing two fleet functions, the second one's MemorySize as null
    # (which botocore leaves out of the answer it parses), a number of 400 digits or a negative
    # one, which botocore hands on unchecked, and usual cost
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    boto3.client("logs", region_name=REGION).create_log_group(
        logGroupName="/aws/lambda/lf-handlers-spot-optimizer"
    )
    listed = [
        {"FunctionName": "lf-handlers-eks-scaler", "MemorySize": 1024, "Architectures": ["arm64"]},
        {"FunctionName": "lf-handlers-spot-optimizer", "MemorySize": memory_size},
    ]
    listing = answer_malformed(
        hub_client("lambda"),
        "lambda",
        "ListFunctions",
        json.dumps({"Functions": listed}).encode(),
        content_type="application/json",
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN that function is the memory section's one error, naming the field and showing the
    # start of its value only, instead of the bare KeyError (or the OverflowError of a saving
    # beyond floats) that ended the run before the report
    assert listing.answered >= 1
    assert result["status"] == "partial"
    assert [e for e in result["errors"] if e["section"] == "lambda_memory"] == [
        {
            "section": "lambda_memory",
            "function": "lf-handlers-spot-optimizer",
            "error": "ListFunctions answered without a MemorySize of 128 to 10240 MB, not its "
            f"answer: {shown_value(memory_size)}",
        }
    ]
    # AND the other function is sized and the report and its summary are written
    summary = read_report(result["report"]["summary"])
    assert summary["lambda_memory"]["decrease"] == ["lf-handlers-eks-scaler"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_function_listing_holding_a_null_or_an_unnamed_item_fails_those_items_alone(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN the hub's Lambda listing a null, an item whose FunctionName is a number (botocore
    # hands a JSON answer's list items and text on unchecked) and a fleet function, and usual
    # cost
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    listed = [
        None,
        {"FunctionName": 7, "MemorySize": 512, "Environment": {"Variables": {"TOKEN": "x"}}},
        {"FunctionName": "lf-handlers-eks-scaler", "MemorySize": 1024, "Architectures": ["arm64"]},
    ]
    listing = answer_malformed(
        hub_client("lambda"),
        "lambda",
        "ListFunctions",
        json.dumps({"Functions": listed}).encode(),
        content_type="application/json",
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN each of the two items is a memory section error of its own, naming its place and
    # showing its FunctionName only, instead of the TypeError that failed the whole section
    assert listing.answered >= 1
    assert result["status"] == "partial"
    assert [e for e in result["errors"] if e["section"] == "lambda_memory"] == [
        {
            "section": "lambda_memory",
            "error": "ListFunctions answered without a function with a text FunctionName as "
            f"item {position} of Functions, not its answer: {shown}",
        }
        for position, shown in ((0, "None"), (1, "7"))
    ]
    # AND the fleet function is sized, and the report and its summary are written
    summary = read_report(result["report"]["summary"])
    assert summary["lambda_memory"]["functions"] == 1
    assert summary["lambda_memory"]["decrease"] == ["lf-handlers-eks-scaler"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_memory_query_answered_with_a_null_row_is_its_functions_error_alone(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN a fleet function whose Logs Insights results come back holding a null row (botocore
    # keeps a null among a list's items), and usual cost
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    results = answer_malformed(
        hub_client("logs"),
        "logs",
        "GetQueryResults",
        json.dumps({"status": "Complete", "results": [None]}).encode(),
        content_type="application/x-amz-json-1.1",
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the function is the memory section's error, instead of the TypeError that ended the
    # run before the report
    assert results.answered >= 1
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert error["function"] == "lf-handlers-eks-scaler"
    # AND the report and its summary are written with the other sections
    summary = read_report(result["report"]["summary"])
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert summary["lambda_memory"]["functions"] == 0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


FLEET_LOG_GROUP = "/aws/lambda/lf-handlers-eks-scaler"


def hub_client(service: str) -> Any:
    """The handler's own hub client of `service` (the one its queries go through)."""
    return app.FUNCTION.services().sessions.client(
        service, HUB_ACCOUNT_ID, REGION, TARGET_CALL_CONFIG
    )


def answer_every_call(client: Any, service: str, operation: str, answer: dict[str, Any]) -> None:
    """Answer every `operation` on `client` with a copy of `answer` (HTTP 200), unsent."""

    def answered(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        url = f"https://{service}.{REGION}.amazonaws.com"
        return AWSResponse(url, 200, {}, None), copy.deepcopy(answer)

    client.meta.events.register(f"before-call.{service}.{operation}", answered)


def answer_still_running(logs: Any) -> None:
    """Answer every GetQueryResults on `logs` with a query still running."""
    answer_every_call(logs, "logs", "GetQueryResults", {"status": "Running", "results": []})


def answer_stop_query(logs: Any, *, refused: bool = False) -> list[str]:
    """Answer StopQuery on `logs` (moto does not implement it) as stopped, or with `refused` as
    AccessDeniedException; returns the ids of the queries it was asked to stop, in order."""
    stopped: list[str] = []

    def stop(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        stopped.append(json.loads(params["body"])["queryId"])
        if refused:
            return AWSResponse("https://logs.ap-south-1.amazonaws.com", 400, {}, None), {
                "Error": {"Code": "AccessDeniedException", "Message": "not authorized"}
            }
        return AWSResponse("https://logs.ap-south-1.amazonaws.com", 200, {}, None), {
            "success": True
        }

    logs.meta.events.register("before-call.logs.StopQuery", stop)
    return stopped


def started_query_ids(log_group: str) -> list[str]:
    """The ids of the Logs Insights queries started on `log_group` (moto keeps every one)."""
    queries = boto3.client("logs", region_name=REGION).describe_queries(logGroupName=log_group)
    return [query["queryId"] for query in queries["queries"]]


def test_a_memory_query_is_not_polled_again_when_a_hung_poll_would_outlast_the_report(
    analyzer: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invocation with 60 s left, a fleet function whose Logs Insights query keeps
    # running, pauses between polls that spend the invocation's time, and a Logs endpoint that
    # stops answering (accepts the connection, never answers) once 12.5 s or less are left
    time = LambdaTime(60).spend_botocore_waits(monkeypatch)
    monkeypatch.setattr(InstantCostServices, "pause", lambda _, seconds: time.spend(seconds))
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    fault = HungOperation(time)

    def running_while_answering(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if time.seconds_left - time.spent <= 12.5:
            return None
        return AWSResponse("https://logs.ap-south-1.amazonaws.com", 200, {}, None), {
            "status": "Running",
            "results": [],
        }

    session = app.FUNCTION.services().sessions.session(HUB_ACCOUNT_ID, REGION)
    session.events.register_first("before-call.logs.GetQueryResults", running_while_answering)
    session.events.register_first("before-parameter-build.logs.GetQueryResults",
                                  fault.note_config)  # fmt: skip
    session.events.register_first("before-send.logs.GetQueryResults", fault.hang)
    stopped = answer_stop_query(hub_client("logs"))
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the query is given up and stopped while a hung poll and a hung StopQuery would still
    # leave time to write the report (no poll hung), the function's error says so, and the
    # report and its summary are written
    assert fault.attempts == 0
    assert stopped == started_query_ids(FLEET_LOG_GROUP)
    assert time.seconds_left - time.spent >= WRITE_RESERVE_SECONDS
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert "still Running" in error["error"]
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_memory_query_is_not_started_with_too_little_time_left_to_poll_it(
    analyzer: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invocation with 40 s left: more than COST_TARGET_SECONDS (30 s), less than a
    # poll of a memory query needs (one more poll's 17 s, its StopQuery's 17 s and 10 s to
    # write); a fleet function, and a Logs endpoint that accepts GetQueryResults and never answers
    time = LambdaTime(40).spend_botocore_waits(monkeypatch)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    fault = hang_operation(time, HUB_ACCOUNT_ID, REGION, "logs.GetQueryResults")
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the function's query is not started, and the function is listed as not started,
    # instead of a query started only to be polled into the report's time (a poll that hangs)
    # or given up at its first poll
    assert started_query_ids(FLEET_LOG_GROUP) == []
    assert fault.attempts == 0
    assert {"section": "lambda_memory", "function": "lf-handlers-eks-scaler"} in result[
        "not_started"
    ]
    assert not [e for e in result["errors"] if e["section"] == "lambda_memory"]
    # AND the report and its summary are written
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


ATHENA_HEADER = ["account_id", "region", "product_code", "resource_id", "instance_type",
                 "purchase", "cluster", "cost", "instance_hours", "currency",
                 "undated_lines"]  # fmt: skip


def use_athena_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "COST_QUERY_ENGINE": "athena",
        "ATHENA_WORKGROUP": "primary",
        "COST_ATHENA_DATABASE": "cur",
        "COST_ATHENA_TABLE": "data",
        "COST_ATHENA_OUTPUT": "s3://lambda-fleet-data/athena/",
    }.items():
        monkeypatch.setenv(name, value)  # fmt: skip


def queue_athena_rows(rows: list[list[str]]) -> None:
    """The result rows (header first) of the next Athena query in moto."""
    queued = {
        "account_id": HUB_ACCOUNT_ID,
        "region": REGION,
        "results": [{"rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]}],
    }
    assert requests.post(ATHENA_QUEUE_URL, json=queued).status_code == 201


def queue_one_instance_of_costs(analyzer: ManualClock) -> None:
    """The next Athena query's rows (one on-demand instance of dev-apps), Cost Explorer's days
    and its forecast."""
    queue_athena_rows(
        [
            ATHENA_HEADER,
            [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-1", "m7g.large", "on_demand", "dev-apps",
             "60", "720", "USD", "0"],
        ]
    )  # fmt: skip
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)


def test_cur_line_items_in_another_currency_are_left_out_and_named(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN usual Cost Explorer data (in USD), and a CUR whose first two line items are in EUR
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    table = put_cur(analyzer, currencies=("EUR", "EUR"))
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the EUR line items are left out, with one cur error naming the column, the count of
    # groups and the currency
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"] == (
        "line_item_currency_code: 2 groups of line items left out, not in USD as the report; "
        "the first 'EUR'"
    )
    # AND the CUR section says its currency, and its total is that of the USD line items alone
    cur = read_report(result["report"]["summary"])["cur"]
    assert cur["currency"] == "USD"
    costs = table.column("line_item_unblended_cost").to_pylist()
    assert cur["total_cost"] == pytest.approx(sum(costs[2:]), abs=1e-3)


def test_a_cluster_without_container_insights_data_is_reported_not_left_out_silently(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any
) -> None:
    # GIVEN usual cost and a CUR, and a member cluster whose Container Insights reported nothing
    # in the lookback
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    put_cur(analyzer)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the cluster is a node_groups error saying it was not measured, and the run is partial
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert (error["section"], error["account_id"], error["region"], error["cluster"]) == (
        "node_groups",
        MEMBER_ACCOUNT_ID,
        REGION,
        "dev-apps",
    )
    assert "node_cpu_utilization" in error["error"]
    # AND the rest of the report is written, with no idle hours guessed for the cluster
    summary = read_report(result["report"]["summary"])
    assert summary["idle_node_hours"]["clusters"] == []
    assert summary["cur"]["eks_nodes"]["clusters"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_athena_engine_reads_the_aggregate_from_the_query_results(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, and the query's result rows queued in moto
    use_athena_engine(monkeypatch)
    rows = [
        ATHENA_HEADER,
        [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-1", "m7g.large", "on_demand", "dev-apps",
         "60", "720", "USD", "0"],
        [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-2", "m7g.large", "spot", "dev-apps", "20",
         "720", "USD", "0"],
        [MEMBER_ACCOUNT_ID, REGION, "AmazonRDS", "db-1", "", "other", "", "90", "0", "USD", "0"],
        [MEMBER_ACCOUNT_ID, REGION, "AmazonRDS", "db-2", "", "other", "", "75", "0", "EUR", "0"],
    ]  # fmt: skip
    queue_athena_rows(rows)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the period is bound by Athena as execution parameters, not written into the SQL
    athena = boto3.client("athena", region_name=REGION)
    [execution_id] = athena.list_query_executions()["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["ExecutionParameters"][2:] == [
        "'2025-05-03 00:00:00'",
        "'2025-06-02 00:00:00'",
    ]
    assert "2025-" not in execution["Query"]
    assert 'FROM "cur"."data"' in execution["Query"]
    # AND the CUR section comes from Athena's rows in USD, the EUR one left out and named
    cur = read_report(result["report"]["summary"])["cur"]
    assert cur["engine"] == "athena"
    assert cur["total_cost"] == 170.0
    assert [e["error"] for e in result["errors"] if e["section"] == "cur"] == [
        "line_item_currency_code: 1 group of line items left out, not in USD as the report; "
        "the first 'EUR'"
    ]
    assert cur["top_resources"][0]["resource_id"] == "db-1"
    assert cur["eks_nodes"]["spot_cost_share"] == 0.25
    assert cur["eks_nodes"]["spot_hours_share"] == 0.5
    [cluster] = cur["eks_nodes"]["clusters"]
    assert (cluster["account_id"], cluster["region"], cluster["cluster"]) == (
        MEMBER_ACCOUNT_ID,
        REGION,
        "dev-apps",
    )


def test_athena_line_items_without_a_usage_start_are_the_cur_sections_error_not_left_out(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose result counts 3 line items of the billing periods without
    # a usage start in one group (a period's bounds alone would leave them out unseen)
    use_athena_engine(monkeypatch)
    queue_athena_rows(
        [
            ATHENA_HEADER,
            [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-1", "m7g.large", "on_demand", "dev-apps",
             "60", "720", "USD", "0"],
            [MEMBER_ACCOUNT_ID, REGION, "AmazonRDS", "db-1", "", "other", "", "90", "0", "USD",
             "3"],
        ]
    )  # fmt: skip
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query reads the undated line items with the period's, and counts them
    athena = boto3.client("athena", region_name=REGION)
    [execution_id] = athena.list_query_executions()["QueryExecutionIds"]
    query = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Query"]
    assert "line_item_usage_start_date IS NULL" in query
    # AND the CUR section is one error naming the column and the count, as the pandas engine's
    # for a file holding one, and the run is partial with no CUR total short of their cost
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"] == (
        "line_item_usage_start_date is empty in 3 line item(s) of the billing periods read"
    )
    assert "cur" not in read_report(result["report"]["summary"])


def test_the_athena_query_scans_only_the_billing_periods_the_lookback_overlaps(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine over a CUR 2.0 table partitioned by billing_period (YYYY-MM); the
    # 30-day lookback from 2025-06-02 reaches back into May
    use_athena_engine(monkeypatch)
    queue_one_instance_of_costs(analyzer)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query restricts the billing_period partitions to May and June, bound by Athena as
    # execution parameters (not written into the SQL), so it does not scan the whole export
    athena = boto3.client("athena", region_name=REGION)
    [execution_id] = athena.list_query_executions()["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert "WHERE billing_period BETWEEN ? AND ?" in execution["Query"]
    assert execution["ExecutionParameters"][:2] == ["'2025-05'", "'2025-06'"]
    assert "2025-" not in execution["Query"]
    assert read_report(result["report"]["summary"])["cur"]["total_cost"] == 60.0


def test_a_cur_cost_that_is_not_an_amount_is_the_cur_sections_error_and_the_rest_goes_on(
    analyzer: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the Athena engine, whose sum of one resource's cost is Infinity (a line item of the
    # CUR holds one), and usual Cost Explorer data
    use_athena_engine(monkeypatch)
    queue_athena_rows(
        [
            ATHENA_HEADER,
            [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-1", "m7g.large", "on_demand", "dev-apps",
             "60", "720", "USD", "0"],
            [MEMBER_ACCOUNT_ID, REGION, "AmazonRDS", "db-1", "", "other", "", "Infinity", "0",
             "USD", "0"],
        ]
    )  # fmt: skip
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section is one error naming the column and the value, the run is partial
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"].startswith("line_item_unblended_cost: 1 values")
    assert "'Infinity'" in error["error"]
    # AND the report is strict JSON with the other sections, and its summary went out
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=result["report"]["summary"])["Body"]
        .read()
    )
    summary = json.loads(body, parse_constant=refuse_non_json_numbers)
    assert "cur" not in summary
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_an_athena_query_still_running_when_time_runs_short_is_given_up_and_the_report_written(
    analyzer: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the Athena engine, whose query never finishes and whose first poll takes an
    # invocation with a minute left until 5 s are left
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    athena = app.FUNCTION.services().sessions.client(
        "athena", HUB_ACCOUNT_ID, REGION, TARGET_CALL_CONFIG
    )
    polls: list[str] = []
    time = LambdaTime(60.0)
    slow_answer = spend_until_left(time, 5.0)

    def still_running(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        polls.append("poll")
        slow_answer()
        return AWSResponse("https://athena.ap-south-1.amazonaws.com", 200, {}, None), {
            "QueryExecution": {"Status": {"State": "RUNNING"}}
        }

    athena.meta.events.register("before-call.athena.GetQueryExecution", still_running)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN it stops waiting for the query after that poll (instead of polling it for minutes),
    # the CUR section is its error, and the report and its summary are still written
    assert len(polls) == 1
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "still RUNNING" in error["error"]
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]
    # AND with no time left for a StopQueryExecution, the query is logged as left running
    [(execution_id, state)] = athena_query_states().items()
    assert state != "CANCELLED"
    assert (
        f"Athena query {execution_id} left running: too little time left to stop it"
        in caplog.messages
    )


@dataclass
class AthenaResultPages:
    """Answers every GetQueryResults of the hub's Athena client with one cost row (the header
    first), spending 2 s of the invocation's time a page, each page with `next_token(pages)`."""

    time: LambdaTime
    next_token: Callable[[int], str]
    read: int = 0

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.read += 1
        self.time.spend(2)
        row = [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-1", "m7g.large", "on_demand",
               "dev-apps", "60", "720", "USD", "0"]  # fmt: skip
        rows = [ATHENA_HEADER, row] if self.read == 1 else [row]
        return AWSResponse("https://athena.ap-south-1.amazonaws.com", 200, {}, None), {
            "ResultSet": {"Rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in rows]},
            "NextToken": self.next_token(self.read),
        }


def athena_result_pages(
    analyzer: ManualClock, monkeypatch: pytest.MonkeyPatch, next_token: Callable[[int], str]
) -> AthenaResultPages:
    """The Athena engine, whose query has succeeded, in an invocation with 60 s left, its
    results answered by `AthenaResultPages`."""
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    athena = app.FUNCTION.services().sessions.client(
        "athena", HUB_ACCOUNT_ID, REGION, TARGET_CALL_CONFIG
    )
    pages = AthenaResultPages(LambdaTime(60), next_token)
    athena.meta.events.register("before-call.athena.GetQueryResults", pages)
    return pages


def test_athena_result_pages_are_read_only_while_the_report_can_still_be_written(
    analyzer: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose query has succeeded, in an invocation with 60 s left, and a
    # result too large to read in that time: every page (2 s to read) has a next one
    pages = athena_result_pages(analyzer, monkeypatch, lambda read: f"page-{read + 1}")
    time = pages.time
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN it stops reading pages while the report still has its time (instead of reading until
    # Lambda ends the invocation), the CUR section is its error saying why
    assert 1 < pages.read < 30
    assert time.seconds_left - time.spent >= WRITE_RESERVE_SECONDS
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert f"{pages.read} pages read" in error["error"]
    assert "too little time left" in error["error"]
    # AND the report and its summary are written, without a CUR section from a partial result
    summary = read_report(result["report"]["summary"])
    assert summary["date"] == result["date"]
    assert "cur" not in summary
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_athena_result_pages_answering_their_token_again_fail_the_cur_section_at_once(
    analyzer: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose query has succeeded, and its results answered (as by a
    # proxy replaying one answer) with the same NextToken on every page, in an invocation with
    # 60 s left (2 s a page)
    pages = athena_result_pages(analyzer, monkeypatch, lambda read: "page-2")
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, pages.time.context())
    # THEN it stops at the first repeat (two pages), not when the time runs short, and the CUR
    # section is its error naming the token, with no section from rows read twice
    assert pages.read == 2
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "GetQueryResults answered the NextToken 'page-2' again" in error["error"]
    assert "cur" not in read_report(result["report"]["summary"])


def test_an_athena_result_of_more_rows_than_the_memory_bound_fails_the_cur_section_alone(
    analyzer: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose query has succeeded with a result larger than the rows the
    # function reads into its memory (the bound lowered to 3 rows; a row a page, each with a
    # next one), in an invocation with time enough for every page
    pages = athena_result_pages(analyzer, monkeypatch, lambda read: f"page-{read + 1}")
    monkeypatch.setattr(athena_query, "MAX_RESULT_ROWS", 3)
    page_sizes: list[int] = []
    hub_client("athena").meta.events.register(
        "before-parameter-build.athena.GetQueryResults",
        lambda params, **_: page_sizes.append(params["MaxResults"]),
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, pages.time.context())
    # THEN it stops at the page that passed the bound, not when the time runs short, each page
    # asked at GetQueryResults' largest size, and the CUR section is its error naming the bound
    assert pages.read == 4
    assert page_sizes == [athena_query.RESULT_PAGE_ROWS] * 4 == [1_000] * 4
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert (
        "results: more than 3 rows, the most the function reads into its memory, after 4 pages"
        in error["error"]
    )
    # AND the report and its summary are written with the other sections, without a CUR
    # section from a part of the result
    summary = read_report(result["report"]["summary"])
    assert "cur" not in summary
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def athena_cells(*rows: list[object]) -> list[dict[str, Any]]:
    """GetQueryResults' `ResultSet.Rows` holding `rows`, each value a cell's VarCharValue."""
    return [{"Data": [{"VarCharValue": value} for value in row]} for row in rows]


ONE_INSTANCE_COSTING_A_NUMBER = [MEMBER_ACCOUNT_ID, REGION, "AmazonEC2", "i-1", "m7g.large",
                                 "on_demand", "dev-apps", 60, "720", "USD", "0"]  # fmt: skip
"""A result row whose cost is a JSON number, not the text Athena sends every value as."""


@pytest.mark.parametrize(
    ("answer", "expected_error"),
    [
        pytest.param(
            {}, "GetQueryResults answered without ResultSet, not its answer: {}", id="no-result-set"
        ),
        pytest.param(
            {"ResultSet": {"Rows": [None]}},
            "GetQueryResults answered without an object for each of ResultSet.Rows, not its "
            "answer: None",
            id="a-null-row",
        ),
        pytest.param(
            {"ResultSet": {"Rows": [{"Data": [None]}]}},
            "GetQueryResults answered without an object for each cell of ResultSet.Rows[].Data, "
            "not its answer: [None]",
            id="a-null-cell",
        ),
        pytest.param(
            {"ResultSet": {"Rows": athena_cells(ATHENA_HEADER, ONE_INSTANCE_COSTING_A_NUMBER)}},
            "GetQueryResults answered without a text VarCharValue for each cell of "
            "ResultSet.Rows[].Data, not its answer: ['",
            id="a-number-as-a-cost",
        ),
    ],
)
def test_athena_results_the_cur_cannot_read_are_the_cur_sections_error_naming_the_field(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    answer: dict[str, Any],
    expected_error: str,
) -> None:
    # GIVEN the Athena engine, whose query succeeds, and its GetQueryResults answered (HTTP 200)
    # without its ResultSet (a proxy's page), with a null row or cell, or with a cost that is a
    # JSON number, none of which botocore checks
    use_athena_engine(monkeypatch)
    queue_one_instance_of_costs(analyzer)
    results = answer_malformed(
        hub_client("athena"),
        "athena",
        "GetQueryResults",
        json.dumps(answer).encode(),
        content_type="application/x-amz-json-1.1",
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section alone is its error, naming the call and the field (instead of a bare
    # `'ResultSet'` or a TypeError, or a number taken for the cost)
    assert results.answered >= 1
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"].startswith(expected_error)
    # AND the report and its summary are written with the other sections
    summary = read_report(result["report"]["summary"])
    assert "cur" not in summary
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


@pytest.mark.parametrize(
    ("answer", "expected_error"),
    [
        pytest.param(
            {},
            "GetQueryExecution answered without QueryExecution, not its answer: {}",
            id="no-query-execution",
        ),
        pytest.param(
            {"QueryExecution": {"Status": {"State": 7}}},
            "GetQueryExecution answered without a text QueryExecution.Status.State, not its "
            "answer: 7",
            id="a-number-as-its-state",
        ),
    ],
)
def test_an_athena_poll_the_cur_cannot_read_is_the_cur_sections_error_and_the_query_stopped(
    analyzer: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    answer: dict[str, Any],
    expected_error: str,
) -> None:
    # GIVEN the Athena engine, and its GetQueryExecution answered (HTTP 200) without the
    # query's status (a proxy's page) or with a state that is no text
    use_athena_engine(monkeypatch)
    queue_one_instance_of_costs(analyzer)
    polls = answer_malformed(
        hub_client("athena"),
        "athena",
        "GetQueryExecution",
        json.dumps(answer).encode(),
        content_type="application/x-amz-json-1.1",
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section alone is its error, naming the call and the field, and the query it
    # gave up is stopped
    assert polls.answered == 1
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"] == expected_error
    assert list(athena_query_states().values()) == ["CANCELLED"]
    assert read_report(result["report"]["summary"])["forecast"]["forecast_remaining"] == 1_000.0


def answer_athena_still_running(athena_client: Any) -> None:
    """Answer every GetQueryExecution on `athena_client` with a query still running."""
    answer_every_call(
        athena_client,
        "athena",
        "GetQueryExecution",
        {"QueryExecution": {"Status": {"State": "RUNNING"}}},
    )


def athena_query_states() -> dict[str, str]:
    """The state of each Athena query started in moto, by id (CANCELLED once it was stopped)."""
    client = boto3.client("athena", region_name=REGION)
    return {
        execution_id: client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
            "Status"
        ]["State"]
        for execution_id in client.list_query_executions()["QueryExecutionIds"]
    }


def test_an_athena_query_given_up_for_lack_of_time_is_stopped_while_a_hung_stop_still_fits(
    analyzer: ManualClock, alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose query keeps running, in an invocation with 60 s left whose
    # pauses between polls spend its time
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    time = LambdaTime(60)
    monkeypatch.setattr(InstantCostServices, "pause", lambda _, seconds: time.spend(seconds))
    athena_client = hub_client("athena")
    answer_athena_still_running(athena_client)
    seconds_left_at_stop: list[float] = []
    athena_client.meta.events.register(
        "before-call.athena.StopQueryExecution",
        lambda **_: seconds_left_at_stop.append(time.seconds_left - time.spent),
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the query it gave up is stopped, instead of scanning on and holding one of the
    # account's concurrent DML queries, early enough that a stop that hung would still leave
    # the report its time
    assert list(athena_query_states().values()) == ["CANCELLED"]
    [seconds_left] = seconds_left_at_stop
    assert seconds_left >= CALL_RESERVE_SECONDS
    # AND the CUR section is the error that gave it up, and the report and its summary are written
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "still RUNNING with too little time left" in error["error"]
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_an_athena_query_still_running_after_every_poll_is_stopped(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose query is still running at each of its polls (the poll
    # budget shrunk to 3), in an invocation with time to spare
    monkeypatch.setattr(athena_query, "MAX_POLLS", 3)
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    answer_athena_still_running(hub_client("athena"))
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query is stopped, and the CUR section's error names the polls it was given up after
    assert list(athena_query_states().values()) == ["CANCELLED"]
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "did not finish in 3 polls" in error["error"]


def test_an_athena_query_that_failed_is_the_cur_sections_error_quoting_the_start_of_its_reason(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine, whose query fails half way with a reason of 5,000 characters over
    # lines (Athena's may quote the query and the data it failed on; a proxy's answer anything)
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    reason = "HIVE_BAD_DATA: row\nAll costs normal \x1b[31m\u2028" + "x" * 5_000
    answer_every_call(
        hub_client("athena"),
        "athena",
        "GetQueryExecution",
        {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": reason}}},
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section's one error names the query and its state, and quotes the start of
    # its reason only (not 5,000 characters into the report and the logs), on one line
    [execution_id] = athena_query_states()
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"] == f"Athena query {execution_id} FAILED: {escaped_echo(reason)}"
    assert "HIVE_BAD_DATA: row\\nAll costs normal \\x1b[31m\\u2028xxx" in error["error"]
    assert len(error["error"]) < ECHO_LIMIT + 80
    # AND the report and its summary are written with the other sections
    summary = read_report(result["report"]["summary"])
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_an_athena_query_whose_poll_fails_is_stopped_and_a_refused_stop_hides_no_error(
    analyzer: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the Athena engine, whose query starts, then an endpoint that no longer accepts
    # connections for GetQueryExecution (every attempt), and refuses StopQueryExecution
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    athena_client = hub_client("athena")
    polls = fail_every_attempt(athena_client, "athena", "GetQueryExecution")
    stop = refuse_every_attempt(athena_client, "athena", "StopQueryExecution")
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN after botocore's attempts at the poll it tried to stop the query
    assert polls.attempts == TARGET_CALL_CONFIG.retries["total_max_attempts"]
    assert stop.refused == 1
    # AND the CUR section's error is the poll's, the refused stop only logged, and the report
    # written
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "Could not connect" in error["error"]
    [execution_id] = athena_query_states()
    assert any(
        f"Athena query {execution_id} not stopped" in message and "AccessDenied" in message
        for message in caplog.messages
    )
    assert read_report(result["report"]["summary"])["date"] == result["date"]


@pytest.mark.parametrize(
    "unanswered",
    [("StartQueryExecution", "GetQueryExecution", "StopQueryExecution"),
     ("GetQueryExecution", "StopQueryExecution")],
    ids=["from-start-query-execution", "after-start-query-execution"],
)  # fmt: skip
def test_an_athena_endpoint_that_stops_answering_costs_the_query_one_call_not_two(
    analyzer: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    unanswered: tuple[str, ...],
) -> None:
    # GIVEN the Athena engine in an invocation with 120 s left, and an Athena endpoint that
    # accepts connections and never answers (from StartQueryExecution on, or once it answered)
    use_athena_engine(monkeypatch)
    time = LambdaTime(120).spend_botocore_waits(monkeypatch)
    fault = HungOperation(time)
    session = app.FUNCTION.services().sessions.session(HUB_ACCOUNT_ID, REGION)
    for operation in unanswered:
        session.events.register_first(f"before-parameter-build.athena.{operation}",
                                      fault.note_config)  # fmt: skip
        session.events.register_first(f"before-send.athena.{operation}", fault.hang)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the CUR section's error is the call left unanswered, after that one call's attempts:
    # the endpoint is not asked again for the query nor to stop it, which would cost as long
    # again, and a query that may be running is logged as left running
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "Read timeout" in error["error"]
    assert fault.attempts == TARGET_CALL_CONFIG.retries["total_max_attempts"]
    assert time.spent <= TARGET_CALL_SECONDS
    assert any(
        "left running: its endpoint did not answer" in message for message in caplog.messages
    )


def answer_a_seen_token_with_its_query(athena_client: Any) -> None:
    """Answer a StartQueryExecution on `athena_client` whose ClientRequestToken an earlier call
    sent with the query that call started in moto, which would start another (moto ignores the
    token), as Athena does: the same answer, and no other query."""
    started_by_token: dict[str, set[str]] = {}
    moto_athena = boto3.client("athena", region_name=REGION)

    def known_token(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        token = json.loads(params["body"])["ClientRequestToken"]
        listed = set(moto_athena.list_query_executions()["QueryExecutionIds"])
        if token not in started_by_token:
            started_by_token[token] = listed
            return None
        [execution_id] = listed - started_by_token[token]
        return AWSResponse("https://athena.ap-south-1.amazonaws.com", 200, {}, None), {
            "QueryExecutionId": execution_id
        }

    athena_client.meta.events.register("before-call.athena.StartQueryExecution", known_token)


def lose_the_start_answer_then_refuse_the_retry(athena_client: Any) -> None:
    lose_first_answer(athena_client, "athena", "StartQueryExecution", then_unreachable=True)


def answer_the_start_without_an_id(athena_client: Any) -> None:
    answer_malformed(athena_client, "athena", "StartQueryExecution", b"{}")


@pytest.mark.parametrize(
    "fault",
    [lose_the_start_answer_then_refuse_the_retry, answer_the_start_without_an_id],
    ids=["answer-lost-then-unreachable", "answer-unreadable"],
)
def test_an_athena_query_a_failed_start_query_execution_started_is_read_not_left_running(
    analyzer: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[Any], None],
) -> None:
    # GIVEN the Athena engine, whose query's rows are queued, and an Athena endpoint that starts
    # the query, then fails the StartQueryExecution: its answer lost and the retry unable to
    # connect, or its answer one without a query id; Athena answers a request whose token it has
    # seen with the query that token started
    use_athena_engine(monkeypatch)
    queue_one_instance_of_costs(analyzer)
    athena_client = hub_client("athena")
    fault(athena_client)
    answer_a_seen_token_with_its_query(athena_client)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query the failed call started is the one read, not left running unknown to the
    # run, and no second query is started
    assert list(athena_query_states().values()) == ["SUCCEEDED"]
    assert not [e for e in result["errors"] if e["section"] == "cur"]
    assert read_report(result["report"]["summary"])["cur"]["total_cost"] == 60.0


@pytest.mark.parametrize(
    ("seconds_left", "calls", "logged"),
    [(900, 2, "asking for it again failed"), (20, 1, "too little time left to ask for it")],
    ids=["asked-again-in-vain", "no-time-to-ask-again"],
)  # fmt: skip
def test_a_failed_start_query_execution_not_answered_again_keeps_its_error_and_is_logged(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    seconds_left: int,
    calls: int,
    logged: str,
) -> None:
    # GIVEN the Athena engine, an invocation with 900 s left, and an Athena endpoint that starts
    # the query and loses the answer (or does so only after holding the call until 20 s are
    # left, too few for one more call and the report), and then accepts no connection, for that
    # call's retry and for any later call
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    athena_client = hub_client("athena")
    tokens: list[str] = []
    athena_client.meta.events.register_first(
        "before-send.athena.StartQueryExecution",
        lambda request, **_: tokens.append(json.loads(request.body)["ClientRequestToken"]),
    )
    time = LambdaTime(900.0)
    # Registered before the lost answer's fault, so the lost attempt spends the time too.
    athena_client.meta.events.register_first(
        "before-send.athena.StartQueryExecution", spend_until_left(time, seconds_left)
    )
    lost = lose_first_answer(athena_client, "athena", "StartQueryExecution", then_unreachable=True)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the request was sent once more with the same token (each of its attempts refused), or
    # not without the time for it; the CUR section's error is the failed call's, and the query
    # that may be running is logged as left running
    assert lost.lost == 1
    assert len(tokens) == calls * TARGET_CALL_CONFIG.retries["total_max_attempts"]
    assert len(set(tokens)) == 1
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert "Could not connect" in error["error"]
    assert any(
        f"may have started is left running: {logged}" in message for message in caplog.messages
    )
    assert read_report(result["report"]["summary"])["date"] == result["date"]


def test_athena_engine_without_its_settings_is_a_configuration_error(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine without a database WHEN the analysis runs
    monkeypatch.setenv("COST_QUERY_ENGINE", "athena")
    monkeypatch.setenv("ATHENA_WORKGROUP", "primary")
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    with pytest.raises(ConfigurationError) as raised:
        lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the invocation fails naming the missing variable, and no report is written
    assert str(raised.value) == (
        "environment variable COST_ATHENA_DATABASE: is required by this function but not set"
    )
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="reports/"
    )
    assert listed["KeyCount"] == 0


def test_without_a_member_role_name_the_invocation_fails_naming_it_and_writes_no_report(
    analyzer: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an inventory with a member cluster, and no MEMBER_ROLE_NAME to read its utilisation
    monkeypatch.delenv("MEMBER_ROLE_NAME")
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    put_cur(analyzer)
    # WHEN the analysis runs
    with pytest.raises(ConfigurationError) as raised:
        lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the invocation fails naming the variable (so the Errors alarm fires and the event is
    # kept), instead of a partial report with every cluster's error and no alarm
    assert str(raised.value).startswith("environment variable MEMBER_ROLE_NAME: is required")
    # AND nothing is written or sent
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="reports/"
    )
    assert listed["KeyCount"] == 0
    assert alert_inbox.receive() == []


@pytest.mark.parametrize("variable", ["COST_ATHENA_DATABASE", "COST_ATHENA_TABLE"])
def test_an_athena_name_that_is_no_glue_name_is_refused_naming_the_variable_before_any_work(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # GIVEN the Athena engine with a database or table name that would end the SQL's quoted
    # name, padded to 10,000 characters
    use_athena_engine(monkeypatch)
    monkeypatch.setenv(variable, 'cur"; DROP TABLE cur; --' + "x" * 10_000)
    # WHEN the analysis runs
    with pytest.raises(ConfigurationError) as raised:
        lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the invocation fails with one short error naming the variable, and no report is
    # written
    assert str(raised.value).startswith(f"environment variable {variable}: ")
    assert len(str(raised.value)) < 200
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="reports/"
    )
    assert listed["KeyCount"] == 0


@pytest.mark.parametrize("output", ["lambda-fleet-data/athena/", "https://s3.amazonaws.com/x/"])
def test_an_athena_output_that_is_no_s3_location_is_refused_naming_it_before_any_work(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    # GIVEN the Athena engine with a results location mistyped without its s3:// scheme (or as
    # an HTTPS address)
    use_athena_engine(monkeypatch)
    monkeypatch.setenv("COST_ATHENA_OUTPUT", output)
    # WHEN the analysis runs
    with pytest.raises(ConfigurationError) as raised:
        lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the invocation fails naming the variable, instead of a `cur` error in Athena's words
    # (naming no variable) in a partial report; no query is started and no report written
    assert str(raised.value).startswith("environment variable COST_ATHENA_OUTPUT: ")
    assert athena_query_states() == {}
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="reports/"
    )
    assert listed["KeyCount"] == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [("analyze", "event"), ({"action": "report"}, "action"), ({}, "action"),
     ({"action": "analyze", "days": 3}, "days")],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field(
    analyzer: ManualClock, lambda_context: Any, event: Any, field: str
) -> None:
    # GIVEN a malformed event WHEN handled THEN the error names the field
    result = lambda_handler(event, lambda_context)
    assert result["status"] == "error"
    assert f"invalid event: {field}:" in result["error"]


@pytest.mark.parametrize("run", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_run_time_outside_utcs_years_is_refused_naming_it_before_any_report(
    analyzer: ManualClock, lambda_context: Any, run: str
) -> None:
    # GIVEN a run time with its offset, whose UTC time is past year 9999 or before year 1
    event = {"action": "analyze", "run": run}
    # WHEN handled
    result = lambda_handler(event, lambda_context)
    # THEN it is refused naming the field and the value, and no report is written
    assert result["status"] == "error"
    assert result["error"].startswith("invalid event: run: ")
    assert run[:19] in result["error"]
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="reports/"
    )
    assert listed["KeyCount"] == 0


def refuse_cost_forecast(
    code: str, message: str = "Insufficient amount of historical data"
) -> None:
    """Answer GetCostForecast, which moto lacks, with the error Cost Explorer gives (e.g. too
    little history)."""
    refuse_unseen_by_moto(cost_explorer_client(), "cost-explorer", "GetCostForecast", code, message)


def test_without_a_cost_explorer_forecast_the_month_is_projected_at_the_run_rate_and_labelled(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a month of about 140 USD a day and an account Cost Explorer cannot forecast yet,
    # its refusal's message a page of many long lines (a proxy's)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    refuse_cost_forecast("DataUnavailableException", MULTI_LINE_PAGE)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the forecast is no error: the rest of June (29 days from 2 June) is projected at the
    # last week's daily cost, labelled as a projection with the reason, its message one line
    # cut short
    assert not [error for error in result["errors"] if error["section"] == "forecast"]
    forecast = read_report(result["report"]["summary"])["forecast"]
    assert forecast["source"] == "run rate of the last 7 days"
    reason = forecast["forecast_unavailable"]
    assert reason.startswith("DataUnavailableException: <html>\\n<title>Console")
    assert "\n" not in reason
    assert len(reason) < 2 * ECHO_LIMIT
    assert 29 * 135 < forecast["forecast_remaining"] < 29 * 145
    assert forecast["month_end_total"] == pytest.approx(
        forecast["month_to_date"] + forecast["forecast_remaining"]
    )
    assert forecast["interval_80"] is None


def test_the_run_rate_leaves_out_the_day_cost_explorer_is_still_filling_in(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a month of about 140 USD a day whose newest day (yesterday, still being filled in)
    # reads 60 so far, and an account Cost Explorer cannot forecast yet
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=20.0)
    refuse_cost_forecast("DataUnavailableException")
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the rest of June (29 days) is projected at the seven complete days' 140 USD a day,
    # not lowered by the partial day
    forecast = read_report(result["report"]["summary"])["forecast"]
    assert forecast["source"] == "run rate of the last 7 days"
    assert 29 * 135 < forecast["forecast_remaining"] < 29 * 145


def queue_june_with_a_short_lookback(
    analyzer: ManualClock, monkeypatch: pytest.MonkeyPatch, june_1st: str = "100.0000"
) -> None:
    """A 7-day lookback on 20 June, every day of June so far costing 100 USD (1 June:
    `june_1st`, outside the lookback)."""
    monkeypatch.setenv("COST_LOOKBACK_DAYS", "7")
    analyzer.set(datetime(2025, 6, 20, 7, 0, tzinfo=UTC))
    today = analyzer.now().date()
    week = [today - timedelta(days=7 - i) for i in range(7)]
    month = [date(2025, 6, day) for day in range(1, 20)]
    results = [
        {"ResultsByTime": [day_result(d, {EC2: 100.0}) for d in week]},
        {"ResultsByTime": [day_result(d, {MEMBER_ACCOUNT_ID: 100.0}) for d in week]},
        {"ResultsByTime": [day_result(d, {"cluster$dev-apps": 100.0}) for d in week]},
        {
            "ResultsByTime": [
                {
                    "TimePeriod": {
                        "Start": d.isoformat(),
                        "End": (d + timedelta(days=1)).isoformat(),
                    },
                    "Total": {
                        "UnblendedCost": {
                            "Amount": june_1st if d.day == 1 else "100.0000",
                            "Unit": "USD",
                        }
                    },
                    "Groups": [],
                    "Estimated": False,
                }
                for d in month
            ]
        },
    ]
    assert requests.post(CE_QUEUE_URL, json={"results": results}).status_code == 201


def test_month_to_date_covers_the_whole_month_when_the_lookback_is_shorter(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a 7-day lookback on 20 June, every day of June so far costing 100 USD, and a
    # Cost Explorer forecast of 1,000 USD for the rest of the month
    queue_june_with_a_short_lookback(analyzer, monkeypatch)
    stub_cost_forecast(1_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the month to date is the cost of 1 to 19 June, not only of the lookback's 7 days,
    # and the month-end total adds the forecast to it
    assert not [error for error in result["errors"] if error["section"] == "forecast"]
    summary = read_report(result["report"]["summary"])
    assert summary["total_cost"] == pytest.approx(700.0)
    assert summary["forecast"]["month_to_date"] == pytest.approx(1_900.0)
    assert summary["forecast"]["month_end_total"] == pytest.approx(2_900.0)


@pytest.mark.parametrize(
    ("seconds_left", "first_errors", "summary_keys", "month_to_date"),
    [
        # 47 s left after the services, 34 s after the accounts: no time for the clusters, nor
        # for the month to date
        (60.0, [("cost_explorer", "cluster"), ("forecast", None)], {"by_account"}, None),
        # 44 s left after the three dimensions, 31 s after the month to date: no forecast
        (83.0, [("forecast", None)], {"by_account", "by_cluster"}, 1_900.0),
    ],
    ids=["cluster-request", "forecast-after-month-to-date"],
)
def test_a_cost_explorer_request_that_would_not_fit_is_not_started_and_the_report_written(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: float,
    first_errors: list[tuple[str, str | None]],
    summary_keys: set[str],
    month_to_date: float | None,
) -> None:
    # GIVEN a 7-day lookback on 20 June (the month to date read on its own after the three
    # dimensions), Cost Explorer answers that take 13 s each, and an invocation whose time
    # runs below a hung call's and the report's (35 s) before a later request
    queue_june_with_a_short_lookback(analyzer, monkeypatch)
    time = LambdaTime(seconds_left)
    cost_explorer_client().meta.events.register(
        "after-call.ce.GetCostAndUsage", lambda **_: time.spend(13.0)
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN that request is not started (GetCostForecast, unstubbed, would be moto's error), its
    # part of the section is the not-started error, and the sections after it fail likewise
    errors = [(e["section"], e.get("dimension"), e["error"]) for e in result["errors"]]
    assert errors[: len(first_errors)] == [(s, d, NOT_STARTED) for s, d in first_errors]
    # AND the report holds what was read: the services' total, only the dimensions asked, and
    # a month to date read (1 to 19 June) with no month-end total, saying why
    summary = read_report(result["report"]["summary"])
    assert summary["total_cost"] == pytest.approx(700.0)
    assert {"by_account", "by_cluster"} & summary.keys() == summary_keys
    if month_to_date is None:
        assert "forecast" not in summary
    else:
        forecast = summary["forecast"]
        assert forecast["month_to_date"] == pytest.approx(month_to_date)
        assert (forecast["month_end_total"], forecast["source"]) == (None, None)
        assert forecast["forecast_unavailable"] == explorer.FORECAST_NOT_STARTED
        # AND the summary alert says the month-end forecast is not known
        [alert] = alert_inbox.receive()
        assert "month-end forecast n/a;" in alert.alert["detail"]


@pytest.mark.parametrize(
    ("june_1st", "forecast", "unit", "named"),
    [
        ("NaN", 1_000.0, "USD", "Metrics.UnblendedCost.Amount: 1 month-to-date values"),
        ("100.0000", float("nan"), "USD", "Total.Amount: 'nan'"),
        ("100.0000", 1_000.0, "EUR", "Total.Unit: the forecast is in 'EUR', not in USD"),
    ],
)
def test_a_month_to_date_or_forecast_that_is_not_a_number_is_the_forecasts_error(  # noqa: PLR0917 - pytest passes fixtures positionally
    analyzer: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    june_1st: str,
    forecast: float,
    unit: str,
    named: str,
) -> None:
    # GIVEN a lookback shorter than the month so far, with Cost Explorer answering NaN for
    # 1 June's cost or for the forecast, or the forecast in another currency than the costs
    queue_june_with_a_short_lookback(analyzer, monkeypatch, june_1st=june_1st)
    stub_cost_forecast(forecast, unit)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the forecast is one error naming the field, and the report is strict JSON without it
    [error] = [e for e in result["errors"] if e["section"] == "forecast"]
    assert error["error"].startswith(named)
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=result["report"]["summary"])["Body"]
        .read()
    )
    summary = json.loads(body, parse_constant=refuse_non_json_numbers)
    assert "forecast" not in summary
    assert summary["total_cost"] == pytest.approx(700.0)


def test_a_month_to_date_cost_that_is_not_a_number_is_the_forecasts_error_with_a_long_lookback(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN the usual lookback, reaching back before the 1st, with Cost Explorer answering NaN
    # for RDS' cost on 1 June, a day of the month to date
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0, rds_amounts={-1: float("nan")})
    stub_cost_forecast(1_000.0)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the forecast is one error naming the field, not a month to date without RDS' day
    [error] = [e for e in result["errors"] if e["section"] == "forecast"]
    assert error["error"].startswith("Metrics.UnblendedCost.Amount: 1 month-to-date values")
    assert "forecast" not in read_report(result["report"]["summary"])


def test_the_run_rate_leaves_out_a_day_whose_cost_is_not_a_number(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a month of about 140 USD a day in which Cost Explorer answers NaN for RDS' cost on
    # 30 May, one of the last seven complete days, and cannot forecast
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0, rds_amounts={-3: float("nan")})
    refuse_cost_forecast("DataUnavailableException")
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the rest of June is projected at the other six days' 140 USD a day, not lowered by a
    # day counted at EC2's cost alone
    forecast = read_report(result["report"]["summary"])["forecast"]
    assert forecast["source"] == "run rate of the last 7 days"
    assert 29 * 138 < forecast["forecast_remaining"] < 29 * 142


def test_the_run_rate_is_the_usage_without_the_monthly_charges_and_credits_in_its_days(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN on 8 June a month of about 100 USD a day of EC2 usage, with the month's tax of 700
    # posted on 1 June and a credit of 300 granted on 3 June, both among the last seven
    # complete days, in every view, and an account Cost Explorer cannot forecast yet
    analyzer.set(datetime(2025, 6, 8, 7, 0, tzinfo=UTC))
    charges = usual_month(analyzer.now().date(), (MEMBER_ACCOUNT_ID,))
    for day, record_type, amount in ((1, "Tax", 700.0), (3, "Credit", -300.0)):
        charges["SERVICE"][date(2025, 6, day)][(record_type, record_type)] = amount
        charges["LINKED_ACCOUNT"][date(2025, 6, day)][(MEMBER_ACCOUNT_ID, record_type)] = amount
        charges["cluster"][date(2025, 6, day)][("cluster$", record_type)] = amount
    answer_cost_explorer_by_request(charges, units={})
    refuse_cost_forecast("DataUnavailableException")
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the rest of June (23 days) is projected at the mean EC2 usage of 31 May to 6 June,
    # neither raised by the tax nor lowered by the credit, which the month to date holds
    forecast = read_report(result["report"]["summary"])["forecast"]
    assert forecast["source"] == "run rate of the last 7 days"
    week = [date(2025, 5, 31) + timedelta(days=offset) for offset in range(7)]
    usage = sum(charges["SERVICE"][day][(EC2, "Usage")] for day in week) / 7
    assert forecast["forecast_remaining"] == pytest.approx(23 * usage, abs=1e-3)
    june = sum(sum(charges["SERVICE"][date(2025, 6, day)].values()) for day in range(1, 8))
    assert forecast["month_to_date"] == pytest.approx(june, abs=1e-3)


def json_report(request: int, used_mb: int) -> str:
    """A REPORT line as Lambda writes it in the JSON log format, the fleet's functions' (200 ms
    billed)."""
    return json.dumps(
        {"time": "2025-06-01T10:00:00.000Z", "type": "platform.report",
         "record": {"requestId": f"r{request}", "metrics": {
             "durationMs": 199.2, "billedDurationMs": 200, "memorySizeMB": 1024,
             "maxMemoryUsedMB": used_mb}, "status": "success"}},
        separators=(",", ":"),
    )  # fmt: skip


def test_a_memory_query_row_whose_time_is_no_time_is_its_functions_error_alone(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a busy fleet function (its newest lines fill the Logs Insights answer: 40 here, as
    # 10,000 in production), whose answer gives one row's @timestamp as a number of 400 digits,
    # which botocore hands on unchecked
    monkeypatch.setattr(rightsizing, "QUERY_LIMIT", 40)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)

    def far_future_row(parsed: dict[str, Any], **_: Any) -> None:
        for cell in parsed.get("results", [[]])[0]:
            if cell["field"] == "@timestamp":
                cell["value"] = "9" * 400

    hub_client("logs").meta.events.register("after-call.logs.GetQueryResults", far_future_row)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN that function is the memory section's error, naming the field and showing the start
    # of the value, instead of the OverflowError that ended the run before the report
    assert [e for e in result["errors"] if e["section"] == "lambda_memory"] == [
        {
            "section": "lambda_memory",
            "function": "lf-handlers-eks-scaler",
            "error": f"@timestamp {'9' * 40!r} is not a time",
        }
    ]
    # AND the report and its summary are written
    assert read_report(result["report"]["summary"])["lambda_memory"]["functions"] == 0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_the_memory_of_a_function_logging_in_the_json_format_is_sized_from_its_reports(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a fleet function deployed as the fleet deploys its functions, with the JSON log
    # format, whose 100 REPORT lines are Lambda's `platform.report` records (about 100 MB used)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer, report=json_report)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN its memory is sized from those lines, as from plain text REPORT lines, instead of
    # finding no REPORT line in the window (so no fleet function was ever sized)
    [memory] = read_report(result["report"]["detail"])["lambda_memory"]
    assert memory["invocations"] == 100
    assert memory["max_used_mb"] == 100
    assert (memory["recommended_mb"], memory["recommendation"]) == (192, "decrease")
    expected_billed = 100 * 0.2 * 30 * 86_400 / (7 * 86_400)
    assert memory["billed_seconds_per_month"] == pytest.approx(expected_billed, rel=1e-3)


def test_a_busy_functions_saving_scales_the_billed_time_of_the_lines_read_by_their_span(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a fleet function with 100 REPORT lines 10 minutes apart, starting 2 days ago, and a
    # Logs Insights answer limited to the newest 40 lines (as 10,000 limits a busy function's)
    monkeypatch.setattr(rightsizing, "QUERY_LIMIT", 40)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the billed time of the lines read is scaled to a month from the time they span up to
    # now, not from the 7-day window, of which they cover only part. (moto's Insights does not
    # apply the query's `filter`, so the START line after the last REPORT takes one of the 40
    # rows: the REPORT lines read are the newest 39, 200 ms each, the oldest 2 days ago + 610
    # minutes.)
    [memory] = read_report(result["report"]["detail"])["lambda_memory"]
    span_seconds = (2 * 86_400) - 610 * 60
    expected_billed = 39 * 0.2 * 30 * 86_400 / span_seconds
    assert memory["billed_seconds_per_month"] == pytest.approx(expected_billed, rel=1e-3)


HOSTILE_REPORTS = {
    "memory-of-400-digits": text_report(99, 0).replace("Max Memory Used: 0", "Max Memory Used: "
                                                       + "9" * 400),
    "json-memory-near-the-float-limit": json.dumps({"type": "platform.report", "record": {
        "metrics": {"maxMemoryUsedMB": 1.7e308, "billedDurationMs": 200}}}),
    "billed-of-400-digits": text_report(99, 100).replace("Billed Duration: 200", "Billed Duration: "
                                                         + "9" * 400),
    "billed-not-a-number": text_report(99, 100).replace("200 ms", "1.2.3 ms"),
}  # fmt: skip
"""REPORT lines no Lambda invocation writes, as a function could log them itself."""


@pytest.mark.parametrize("hostile", HOSTILE_REPORTS.values(), ids=HOSTILE_REPORTS.keys())
def test_a_report_line_beyond_lambdas_limits_is_left_out_and_the_report_written(
    analyzer: ManualClock, lambda_context: Any, hostile: str
) -> None:
    # GIVEN a fleet function whose newest of 100 REPORT lines has a figure no invocation has
    stub_cost_forecast(1_000.0)

    def report(request: int, used_mb: int) -> str:
        return hostile if request == 99 else text_report(request, used_mb)

    create_functions(analyzer, report=report)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN that line is no REPORT line: the function is sized from the 99 others, the report is
    # written (no OverflowError) and is standard JSON (no infinite saving)
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=result["report"]["detail"])["Body"]
        .read()
    )
    [memory] = json.loads(body, parse_constant=lambda name: pytest.fail(f"{name} in the report"))[
        "lambda_memory"
    ]
    assert (memory["invocations"], memory["max_used_mb"]) == (99, 100)


@pytest.mark.parametrize(
    "message", ['{"log": ' + "[" * 50_000, '{"n": ' + "9" * 5000 + "}"], ids=["deep", "long-int"]
)
def test_a_logged_line_python_cannot_decode_is_no_report_line(message: str) -> None:
    # GIVEN a line a function logged that starts like JSON Python refuses to read
    # WHEN it is read for a REPORT record THEN it is none, not a RecursionError
    assert rightsizing.report_figures(message) is None


@pytest.mark.parametrize(
    ("current_mb", "used_mb", "recommended_mb", "recommendation"),
    [
        (1024, 100, 192, "decrease"),
        (192, 100, 192, "keep"),
        (128, 500, 704, "increase"),
        (128, 10, 128, "keep"),
        (10_240, 10_000, 10_240, "keep"),
    ],
    ids=["above_need", "at_need", "below_need", "need_below_lambdas_least", "need_past_its_most"],
)
def test_a_functions_memory_is_recommended_with_headroom_within_lambdas_range(
    current_mb: int, used_mb: int, recommended_mb: int, recommendation: str
) -> None:
    # GIVEN a function of `current_mb` whose REPORT lines used at most `used_mb`
    function = {"FunctionName": "lf-handlers-eks-scaler", "MemorySize": current_mb}
    report = (
        "REPORT RequestId: 1 Duration: 9.5 ms Billed Duration: 10 ms "
        f"Memory Size: {current_mb} MB Max Memory Used: {used_mb} MB"
    )
    lines = rightsizing.ReportLines([report], 3600.0, [])
    # WHEN it is rightsized
    memory = rightsizing.lambda_memory(function, lines, REGION)
    # THEN the size is 1.3 x the most used, rounded up to 64 MB, kept within 128 to 10,240 MB,
    # and the recommendation says which way it moves, "keep" when it does not
    assert (memory["recommended_mb"], memory["recommendation"]) == (recommended_mb, recommendation)


def memory_used_mb(message: str) -> int | None:
    """The memory a REPORT line (plain text, or a JSON `platform.report` record) says was used."""
    if message.startswith("REPORT"):
        return int(message.rsplit("Max Memory Used: ", 1)[1].split(maxsplit=1)[0])
    if not message.startswith('{"time"'):
        return None
    record = json.loads(message)
    if record["type"] != "platform.report":
        return None
    return int(record["record"]["metrics"]["maxMemoryUsedMB"])


def sort_by_memory_used(logs: Any, field: str) -> None:
    """Answer a query of `logs` sorted by `field` (descending), the memory a REPORT line says was
    used, as Logs Insights does: the lines of its log group that used the most first, up to its
    limit of one (moto sorts every query by time)."""
    query_strings: list[str] = []
    sorted_ids: set[str] = set()
    polled: list[str] = []

    def note_query_string(params: dict[str, Any], **_: Any) -> None:
        query_strings.append(json.loads(params["body"])["queryString"])

    def note_sorted(parsed: dict[str, Any], **_: Any) -> None:
        if f"sort {field} desc" in query_strings[-1] and "queryId" in parsed:
            sorted_ids.add(parsed["queryId"])

    def note_polled(params: dict[str, Any], **_: Any) -> None:
        polled.append(json.loads(params["body"])["queryId"])

    def by_memory_used(parsed: dict[str, Any], **_: Any) -> None:
        if polled[-1] not in sorted_ids:
            return
        events = boto3.client("logs", region_name=REGION).filter_log_events(
            logGroupName=FLEET_LOG_GROUP
        )["events"]
        lines = [e for e in events if memory_used_mb(e["message"]) is not None]
        [most] = sorted(lines, key=lambda e: memory_used_mb(e["message"]) or 0)[-1:]
        parsed["results"] = [
            [{"field": "@timestamp", "value": str(most["timestamp"])},
             {"field": "@message", "value": most["message"]}]
        ]  # fmt: skip

    logs.meta.events.register("before-call.logs.StartQuery", note_query_string)
    logs.meta.events.register("after-call.logs.StartQuery", note_sorted)
    logs.meta.events.register("before-call.logs.GetQueryResults", note_polled)
    logs.meta.events.register("after-call.logs.GetQueryResults", by_memory_used)


@pytest.mark.parametrize(
    ("report", "memory_field"),
    [(text_report, "@maxMemoryUsed"), (json_report, "record.metrics.maxMemoryUsedMB")],
    ids=["text-log-format", "json-log-format"],
)
def test_a_busy_functions_memory_is_sized_from_the_peak_of_its_whole_window(
    analyzer: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    report: Callable[[int, int], str],
    memory_field: str,
) -> None:
    # GIVEN a fleet function (1024 MB) whose 100 REPORT lines (in plain text, or in the JSON log
    # format) use about 100 MB, but one, two days ago, 900 MB; and a Logs Insights answer
    # limited to the newest 40 lines (as 10,000 limits a busy function's), which leave that
    # peak out
    monkeypatch.setattr(rightsizing, "QUERY_LIMIT", 40)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer, report=report)
    peak_at = int((analyzer.now() - timedelta(days=2, minutes=-5)).timestamp() * 1000)
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_stream(logGroupName=FLEET_LOG_GROUP, logStreamName="peak")
    logs.put_log_events(
        logGroupName=FLEET_LOG_GROUP,
        logStreamName="peak",
        logEvents=[{"timestamp": peak_at, "message": report(100, 900)}],
    )
    sort_by_memory_used(hub_client("logs"), memory_field)
    # WHEN the daily analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the recommendation rests on the most memory any invocation of the window used, not
    # on the newest lines' (a decrease to 192 MB, which the scaling optimizer would apply, and
    # the function would run out of memory at its next such peak)
    [memory] = read_report(result["report"]["detail"])["lambda_memory"]
    assert memory["max_used_mb"] == 900
    assert memory["recommended_mb"] == rightsizing.recommended_memory(900)
    assert memory["recommendation"] == "increase"
    assert (
        "lf-handlers-eks-scaler"
        not in read_report(result["report"]["summary"])["lambda_memory"]["decrease"]
    )


def test_a_memory_query_still_running_when_time_runs_short_is_given_up_and_the_report_written(
    analyzer: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a fleet function whose Logs Insights query never finishes, started with a minute
    # left, after which 5 s are left
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    logs = app.FUNCTION.services().sessions.client(
        "logs", HUB_ACCOUNT_ID, REGION, TARGET_CALL_CONFIG
    )
    time = LambdaTime(60.0)
    logs.meta.events.register("after-call.logs.StartQuery", lambda **_: time.spend(55.0))
    polls: list[str] = []
    time = LambdaTime(60.0)
    slow_answer = spend_until_left(time, 5.0)

    def still_running(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        polls.append("poll")
        slow_answer()
        return AWSResponse("https://logs.ap-south-1.amazonaws.com", 200, {}, None), {
            "status": "Running",
            "results": [],
        }

    logs.meta.events.register("before-call.logs.GetQueryResults", still_running)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN it stops waiting for the query once the time left is short (instead of polling it
    # for minutes), lists the function's error, and still writes the report and its summary
    assert len(polls) <= 2
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert error["function"] == "lf-handlers-eks-scaler"
    assert "Running" in error["error"]
    assert read_report(result["report"]["summary"])["date"] == result["date"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def test_a_memory_query_given_up_for_lack_of_time_is_stopped_and_the_report_written(
    analyzer: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a fleet function whose Logs Insights query never finishes, started with a minute
    # left, after which 40 s are left: too little to wait on, enough for one more call
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    logs = hub_client("logs")
    answer_still_running(logs)
    stopped = answer_stop_query(logs)
    time = LambdaTime(60.0)
    logs.meta.events.register("after-call.logs.StartQuery", lambda **_: time.spend(20.0))
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the query it gave up is stopped, instead of running on for up to an hour and holding
    # one of the account's concurrent Logs Insights queries
    assert stopped == started_query_ids(FLEET_LOG_GROUP)
    assert len(stopped) == 1
    # AND the function's error says it was given up, and the report is written
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert "given up" in error["error"]
    assert read_report(result["report"]["summary"])["date"] == result["date"]


def test_a_memory_query_still_running_after_every_poll_is_stopped_and_named_as_given_up(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a fleet function whose Logs Insights query is still running at each of its polls
    # (the poll budget shrunk to 3), in an invocation with time to spare
    monkeypatch.setattr(rightsizing, "_MAX_POLLS", 3)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    logs = hub_client("logs")
    answer_still_running(logs)
    stopped = answer_stop_query(logs)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query is stopped, and the function's error names the polls it was given up after
    assert stopped == started_query_ids(FLEET_LOG_GROUP)
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert "still Running after 3 polls: given up" in error["error"]


def test_queries_given_up_after_their_last_poll_are_stopped_without_a_pause_after_it(
    analyzer: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Athena engine and a fleet function, whose queries are still running at each of
    # their polls (each poll budget shrunk to 3), and the pauses between polls recorded
    monkeypatch.setattr(athena_query, "MAX_POLLS", 3)
    monkeypatch.setattr(rightsizing, "_MAX_POLLS", 3)
    use_athena_engine(monkeypatch)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    answer_athena_still_running(hub_client("athena"))
    create_functions(analyzer)
    answer_still_running(hub_client("logs"))
    stopped = answer_stop_query(hub_client("logs"))
    pauses: list[float] = []
    monkeypatch.setattr(InstantCostServices, "pause", lambda _, seconds: pauses.append(seconds))
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN each query is paused for only between its polls, not once more after its last one
    # (up to 5 s of the invocation spent before a query the run no longer waits for is stopped)
    assert pauses == [0.25, 0.5, 0.25, 0.5]
    # AND both are stopped and given up as after their poll budget
    assert list(athena_query_states().values()) == ["CANCELLED"]
    assert stopped == started_query_ids(FLEET_LOG_GROUP)
    errors = {e["section"]: e["error"] for e in result["errors"]}
    assert "did not finish in 3 polls" in errors["cur"]
    assert "after 3 polls: given up" in errors["lambda_memory"]


def test_a_memory_query_whose_poll_fails_is_stopped_and_a_refused_stop_hides_no_error(
    analyzer: ManualClock, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a fleet function whose query starts, then a Logs endpoint that no longer accepts
    # connections for GetQueryResults (every attempt), and refuses StopQuery
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    logs = hub_client("logs")
    polls = fail_every_attempt(logs, "logs", "GetQueryResults")
    stop_attempts = answer_stop_query(logs, refused=True)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN after botocore's attempts at the poll it tried to stop the query
    assert polls.attempts == TARGET_CALL_CONFIG.retries["total_max_attempts"]
    [query_id] = started_query_ids(FLEET_LOG_GROUP)
    assert stop_attempts == [query_id]
    # AND the function's error is the poll's, the refused stop only logged, and the report written
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert "Could not connect" in error["error"]
    assert any(
        f"query {query_id} on {FLEET_LOG_GROUP} not stopped" in message
        for message in caplog.messages
    )
    assert read_report(result["report"]["summary"])["date"] == result["date"]


def list_queries_as_running(logs: Any) -> None:
    """List every query DescribeQueries answers on `logs` as still running (moto's end as they
    start), as a query over days of logs is a second after it starts."""

    def listed_as_running(parsed: dict[str, Any], **_: Any) -> None:
        for query in parsed.get("queries", []):
            query["status"] = "Running"

    logs.meta.events.register("after-call.logs.DescribeQueries", listed_as_running)


def test_a_query_started_twice_after_a_lost_answer_is_stopped_and_no_other_query_is(
    analyzer: ManualClock, lambda_context: Any
) -> None:
    # GIVEN a concurrent invocation's query on a fleet function's log group (the same query,
    # with its own call's comment line), and a Logs endpoint that starts this run's query and
    # loses its answer, so botocore's retry starts it a second time; every query is listed as
    # still running, as a query over days of logs is a second after it starts
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    now = int(analyzer.now().timestamp())
    others = boto3.client("logs", region_name=REGION).start_query(
        logGroupName=FLEET_LOG_GROUP, startTime=now - 3600, endTime=now,
        queryString="fields @timestamp, @message\n| filter @message like /^REPORT RequestId/\n"
                    f"# lambda-fleet rightsizing {uuid.uuid4()}\n| sort @timestamp desc\n"
                    "| limit 10000",
    )["queryId"]  # fmt: skip
    logs = hub_client("logs")
    lost = lose_first_answer(logs, "logs", "StartQuery")
    list_queries_as_running(logs)
    stopped = answer_stop_query(logs)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query the lost attempt started is stopped, and neither the one whose answer came
    # back nor the concurrent invocation's is
    assert lost.lost == 1
    other, first, _answered = started_query_ids(FLEET_LOG_GROUP)
    assert other == others
    assert stopped == [first]
    # AND the function's memory is read from the query whose answer came back
    [memory] = read_report(result["report"]["detail"])["lambda_memory"]
    assert memory["invocations"] == 100
    assert not [e for e in result["errors"] if e["section"] == "lambda_memory"]


def test_queries_listed_page_after_page_after_a_lost_answer_are_looked_for_only_while_time_is_left(
    analyzer: ManualClock, alert_inbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a Logs endpoint that starts a fleet function's query and loses its answer, and
    # answers every DescribeQueries (the search for the query the lost attempt started) with a
    # next page under a new token, each page taking 10 s of an invocation with 120 s left
    time = LambdaTime(120.0)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    logs = hub_client("logs")
    lose_first_answer(logs, "logs", "StartQuery")
    EndlessSlowPages(time, 10.0, "nextToken").register(
        logs.meta.events, "logs.DescribeQueries", "nextToken"
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the pages are followed only while a stop still fits, instead of until Lambda ended
    # the run: the search is logged as cut short
    assert time.seconds_left - time.spent <= CALL_RESERVE_SECONDS
    assert "DescribeQueries read cut short before its next page" in caplog.text
    # AND the function is sized from the query whose answer came back, and the report and its
    # summary are written
    summary = read_report(result["report"]["summary"])
    assert summary["lambda_memory"]["functions"] == 1
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]


def lose_the_answer_then_refuse_the_retry(logs: Any) -> None:
    lose_first_answer(logs, "logs", "StartQuery", then_unreachable=True)


def answer_without_a_query_id(logs: Any) -> None:
    answer_malformed(logs, "logs", "StartQuery", b"{}")


@pytest.mark.parametrize(
    ("fault", "error_part"),
    [(lose_the_answer_then_refuse_the_retry, "Could not connect"),
     (answer_without_a_query_id, "queryId")],
    ids=["answer-lost-then-unreachable", "answer-unreadable"],
)  # fmt: skip
def test_a_query_started_by_a_start_query_that_then_failed_is_stopped(
    analyzer: ManualClock,
    lambda_context: Any,
    fault: Callable[[Any], None],
    error_part: str,
) -> None:
    # GIVEN a Logs endpoint that starts a fleet function's query, then fails the StartQuery: its
    # answer lost and the retry unable to connect, or its answer one without a query id
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    logs = hub_client("logs")
    fault(logs)
    list_queries_as_running(logs)
    stopped = answer_stop_query(logs)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the query AWS started is stopped, and the function's error is the StartQuery's
    assert stopped == started_query_ids(FLEET_LOG_GROUP)
    assert len(stopped) == 1
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert error_part in error["error"]


@pytest.mark.parametrize(
    "unanswered",
    [("StartQuery", "GetQueryResults", "StopQuery", "DescribeQueries"),
     ("GetQueryResults", "StopQuery", "DescribeQueries")],
    ids=["from-start-query", "after-start-query"],
)  # fmt: skip
def test_a_logs_endpoint_that_stops_answering_costs_a_memory_query_one_call_not_two(
    analyzer: ManualClock, monkeypatch: pytest.MonkeyPatch, unanswered: tuple[str, ...]
) -> None:
    # GIVEN an invocation with 120 s left and a Logs endpoint that accepts connections and never
    # answers (from StartQuery on, or once StartQuery has answered)
    time = LambdaTime(120).spend_botocore_waits(monkeypatch)
    fault = HungOperation(time)
    session = app.FUNCTION.services().sessions.session(HUB_ACCOUNT_ID, REGION)
    for operation in unanswered:
        session.events.register_first(f"before-parameter-build.logs.{operation}",
                                      fault.note_config)  # fmt: skip
        session.events.register_first(f"before-send.logs.{operation}", fault.hang)
    stub_cost_forecast(1_000.0)
    create_functions(analyzer)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, time.context())
    # THEN the function's error is the call left unanswered, after that one call's attempts: the
    # endpoint is not asked to stop or list queries, which would cost as long again
    [error] = [e for e in result["errors"] if e["section"] == "lambda_memory"]
    assert "Read timeout" in error["error"]
    assert fault.attempts == TARGET_CALL_CONFIG.retries["total_max_attempts"]
    assert time.spent <= TARGET_CALL_SECONDS


def answer_node_cpu_hour_as(value: float) -> list[str]:
    """Make the member's GetMetricData answer the oldest hour of every series as `value` (what
    CloudWatch's CBOR answer can carry, and moto's store cannot); the ids it answered so."""
    replaced: list[str] = []

    def replace(parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Values"]:
                result["Values"][0] = value
                replaced.append(result["Id"])

    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register("after-call.cloudwatch.GetMetricData", replace)
    return replaced


CLOUDWATCH_LIMIT = "not a number within +-2**360 (CloudWatch's limit)"
NO_PERCENTAGE = "not a percentage from 0 to 100"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), CLOUDWATCH_LIMIT),
        (float("inf"), CLOUDWATCH_LIMIT),
        (-1e6, NO_PERCENTAGE),
        (100.5, NO_PERCENTAGE),
    ],
)
def test_a_node_utilisation_that_is_no_percentage_is_left_out_and_named(
    analyzer: ManualClock, alert_inbox: Any, lambda_context: Any, value: float, reason: str
) -> None:
    # GIVEN usual cost, a CUR, a member cluster at about 10% node CPU, and GetMetricData
    # answering its oldest hour as `value`: no number, or a percentage no node's CPU has (a
    # negative one made the average, and the idle node hours, any figure)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    table = put_cur(analyzer)
    put_node_utilisation(member_session(MEMBER_ACCOUNT_ID), analyzer, percent=10.0)
    replaced = answer_node_cpu_hour_as(value)
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the cluster is a node_groups error naming the metric and the value left out
    assert replaced == ["cpu"]
    assert result["status"] == "partial"
    [error] = result["errors"]
    assert (error["section"], error["cluster"]) == ("node_groups", "dev-apps")
    assert error["error"].startswith(
        f"node_cpu_utilization: 1 value left out, {reason}; the first {value!r} at "
    )
    # AND the report is strict JSON, the cluster's idle hours from the other hours
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=result["report"]["summary"])["Body"]
        .read()
    )
    summary = json.loads(body, parse_constant=refuse_non_json_numbers)
    [idle] = [
        entry
        for entry in summary["idle_node_hours"]["clusters"]
        if entry["account_id"] == MEMBER_ACCOUNT_ID
    ]
    hours = cur_node_hours(table, MEMBER_ACCOUNT_ID, REGION, "dev-apps")
    assert idle["idle_node_hours"] == pytest.approx(hours * 0.88, abs=0.01)


def cur_listing(contents: str) -> bytes:
    """S3's ListObjectsV2 answer of the CUR prefix, root and all, listing `contents`."""
    return (
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{DATA_BUCKET_NAME}</Name><Prefix>cur/</Prefix><KeyCount>1</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


@pytest.mark.parametrize(
    ("contents", "missing"),
    [
        pytest.param("<Contents><Size>5</Size></Contents>", "Key", id="an-object-without-key"),
        pytest.param(
            "<Contents><Key>cur/data/part-0.parquet</Key></Contents>",
            "Size",
            id="a-file-without-size",
        ),
    ],
)
def test_a_cur_listing_item_without_its_key_or_size_is_the_cur_sections_error_naming_it(
    analyzer: ManualClock,
    alert_inbox: Any,
    lambda_context: Any,
    contents: str,
    missing: str,
) -> None:
    # GIVEN a month of CUR, and S3 answering the CUR prefix's ListObjectsV2 with an object
    # without its Key or Size (an XML element S3 sends with each, which botocore's parser
    # leaves out of the item when the page lacks it)
    put_cur(analyzer)
    queue_cost_explorer(analyzer.now().date(), ec2_last_day=100.0)
    stub_cost_forecast(1_000.0)
    listing = answer_malformed(
        app.FUNCTION.services().sessions.hub_client("s3"),
        "s3",
        "ListObjectsV2",
        cur_listing(contents),
        url_part="prefix=cur",
    )
    # WHEN the analysis runs
    result = lambda_handler({"action": "analyze"}, lambda_context)
    # THEN the CUR section alone is its error, naming the call and the field in a short line
    # (instead of a bare `'Key'`), and the report is written with the other sections
    assert listing.answered >= 1
    assert result["status"] == "partial"
    [error] = [e for e in result["errors"] if e["section"] == "cur"]
    assert error["error"].startswith(f"ListObjectsV2 answered without {missing}, not its answer")
    assert len(error["error"]) < 300
    summary = read_report(result["report"]["summary"])
    assert "cur" not in summary
    assert summary["forecast"]["forecast_remaining"] == 1_000.0
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["info"]
