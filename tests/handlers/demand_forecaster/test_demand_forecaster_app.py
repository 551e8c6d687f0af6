"""demand_forecaster handler against moto: member-account history, sizing, fleet runs, bad input."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.timestamps import iso_z
from handlers.demand_forecaster import app
from handlers.demand_forecaster.app import lambda_handler
from handlers.demand_forecaster.services import ForecasterServices
from tests.handlers.analytics_accounts import add_member_copy, deny_assume_role, member_session
from tests.handlers.analytics_services import inject_services
from tests.handlers.conftest import (
    DATA_BUCKET_NAME,
    MEMBER_ACCOUNT_ID,
    REGION,
)
from tests.handlers.demand_forecaster.demand_series import hourly_demand
from tests.handlers.faults import answer_malformed

SECOND_MEMBER_ID = "333333333333"


def create_cluster(session: boto3.Session, name: str, desired: int = 2, max_size: int = 4) -> None:
    """An EKS cluster with one m7g.large node group called `system`."""
    eks = session.client("eks")
    eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )
    eks.create_nodegroup(
        clusterName=name,
        nodegroupName="system",
        scalingConfig={"minSize": 1, "maxSize": max_size, "desiredSize": desired},
        instanceTypes=["m7g.large"],
        capacityType="ON_DEMAND",
        nodeRole=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/node",
        subnets=["subnet-1"],
    )


def put_history(
    session: boto3.Session, cluster: str, clock: ManualClock, demand: np.ndarray, nodes: int = 2
) -> None:
    """Container Insights history ending at the last whole hour: utilisation of m7g.large nodes
    (2 vCPU each) that carries `demand` vCPU, and the node count: `nodes`, or as many as the
    hour's demand takes at up to 100% (a cluster measures no more)."""
    cloudwatch = session.client("cloudwatch")
    end = clock.now().replace(minute=0, second=0, microsecond=0)
    data = []
    for i, value in enumerate(demand):
        moment = end - timedelta(hours=len(demand) - i)
        dimensions = [{"Name": "ClusterName", "Value": cluster}]
        count = max(nodes, math.ceil(float(value) / 2))
        data.append(
            {
                "MetricName": "node_cpu_utilization",
                "Dimensions": dimensions,
                "Timestamp": moment,
                "Value": float(value) / (2 * count) * 100,
            }
        )
        data.append(
            {
                "MetricName": "cluster_node_count",
                "Dimensions": dimensions,
                "Timestamp": moment,
                "Value": float(count),
            }
        )
    for offset in range(0, len(data), 1000):
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights", MetricData=data[offset : offset + 1000]
        )


@pytest.fixture
def forecaster(
    fleet_environment: dict[str, str],
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> ManualClock:
    """The handler on the fake clock, in moto, with the inventory."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # only instance types are needed
    inject_services(monkeypatch, app.FUNCTION, fake_clock, ForecasterServices)
    return fake_clock


def demand(seed: int, scale: float = 0.1) -> np.ndarray:
    """Two weeks of hourly vCPU demand (about 2 to 3.2 vCPU at scale 0.1)."""
    return hourly_demand(np.random.default_rng(seed), days=14) * scale


def forecast_dev_apps(lambda_context: Any, horizon_minutes: int) -> dict[str, Any]:
    """The handler's answer to the scaler's `forecast` of the inventory's cluster dev-apps."""
    return lambda_handler(
        {"action": "forecast", "account_id": MEMBER_ACCOUNT_ID, "region": REGION,
         "cluster": "dev-apps", "horizon_minutes": horizon_minutes},
        lambda_context,
    )  # fmt: skip


def test_forecast_reads_member_history_and_recommends_node_counts(
    forecaster: ManualClock, lambda_context: Any
) -> None:
    # GIVEN the inventory's cluster and two weeks of its Container Insights history, in the
    # member account only
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", forecaster, demand(1))
    # WHEN the scaler asks for a 180-minute forecast
    result = lambda_handler(
        {
            "action": "forecast",
            "account_id": MEMBER_ACCOUNT_ID,
            "region": REGION,
            "cluster": "dev-apps",
            "horizon_minutes": 180,
        },
        lambda_context,
    )
    # THEN the result is self-contained: steps with intervals up to the horizon, the model's
    # out-of-sample error, capacity per node group, a confidence from that error and a
    # recommendation
    assert result["status"] == "ok", result
    assert result["model"]["weekly_season"] is True
    model = result["model"]
    assert model["out_of_sample_mape_percent"] < model["seasonal_naive_mape_percent"]
    steps = result["forecast"]
    assert steps[0]["timestamp"] == "2025-06-02T03:00:00Z"
    assert steps[-1]["timestamp"] == "2025-06-02T06:00:00Z"
    assert all(s["lower_vcpu"] <= s["demand_vcpu"] <= s["upper_vcpu"] for s in steps)
    assert all(1.5 < s["demand_vcpu"] < 3.5 for s in steps)
    assert 0.5 < result["confidence"] < 1.0
    # AND the p90 of the hour after the call (03:30-04:30) is given for predictive scaling
    hour = result["coming_hour"]
    assert (hour["start"], hour["end"]) == ("2025-06-02T03:30:00Z", "2025-06-02T04:30:00Z")
    assert hour["p90_vcpu"] > 0
    group = result["node_groups"][0]
    assert group["instance_type"] == "m7g.large"
    assert group["allocatable_vcpu_per_node"] == pytest.approx(1.805)
    assert result["recommendation"] == [
        {
            "name": "system",
            "desired_size": group["peak_nodes_needed"],
            "reason": result["recommendation"][0]["reason"],
        }
    ]
    assert 1 <= group["peak_nodes_needed"] <= 4
    assert result["errors"] == []


def test_demand_above_capacity_is_capped_at_max_size_and_alerted_by_the_fleet_run(
    forecaster: ManualClock, lambda_context: Any, state_table: Any, alert_inbox: Any
) -> None:
    # GIVEN a cluster whose demand (20-32 vCPU) needs far more than its 4 nodes
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", forecaster, demand(2, scale=1.0), nodes=4)
    # WHEN the scheduled fleet forecast runs
    result = lambda_handler({"action": "forecast_fleet", "horizon_minutes": 180}, lambda_context)
    # THEN the recommendation stops at max_size and says so
    assert result["status"] == "ok", result
    [cluster] = result["clusters"]
    [recommendation] = cluster["recommendation"]
    assert recommendation["desired_size"] == 4
    assert "kept at max_size 4" in recommendation["reason"]
    # AND a capacity warning is raised, and the forecast is saved
    [alert] = alert_inbox.receive()
    assert alert.alert["severity"] == "warning"
    assert alert.alert["resource"] == f"{MEMBER_ACCOUNT_ID}/{REGION}/dev-apps/system"
    saved = state_table.get_value(f"forecast/{MEMBER_ACCOUNT_ID}/{REGION}/dev-apps", "latest")
    assert saved["recommendation"] == cluster["recommendation"]


@pytest.mark.parametrize(
    ("metric", "forged", "named"),
    [
        ("node_cpu_utilization", 60_000.0, "outside 0-105 Percent; the first 30"),
        ("node_cpu_utilization", -500.0, "outside 0-105 Percent; the first -2"),
        ("cluster_node_count", 2_000.0, "outside 0-20 Count; the first 1001.0"),
    ],
    ids=["utilisation-1000x", "utilisation-negative", "node-count-1000x"],
)
def test_a_forged_last_hour_no_cluster_measures_is_left_out_not_forecast(
    forecaster: ManualClock, lambda_context: Any, metric: str, forged: float, named: str
) -> None:
    # GIVEN two weeks of 2-3.3 vCPU on the cluster's 2 nodes (system: max_size 4), and a last
    # hour whose `metric` someone (Container Insights' namespace takes anyone's PutMetricData)
    # or a glitch also published as `forged`: a utilisation outside 0-105%, or more nodes than
    # twice the node group's max size and an update's 12
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", forecaster, demand(1))
    last_hour = forecaster.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    member.client("cloudwatch").put_metric_data(
        Namespace="ContainerInsights",
        MetricData=[
            {"MetricName": metric, "Timestamp": last_hour, "Value": forged,
             "Dimensions": [{"Name": "ClusterName", "Value": "dev-apps"}]}
        ],
    )  # fmt: skip
    # WHEN the scaler asks for a forecast
    result = forecast_dev_apps(lambda_context, horizon_minutes=60)
    # THEN the coming hour is forecast from the other hours (the forged hour made its p90 about
    # 100 vCPU, 30 times the usual), that hour missing from the history and named with how many
    # were left out
    assert result["status"] == "ok", result
    assert result["coming_hour"]["p90_vcpu"] < 6
    assert result["history"]["last_observation"] == iso_z(last_hour - timedelta(hours=1))
    [error] = result["errors"]
    assert error["node_group"] is None
    assert error["error"].startswith(f"{metric}: 1 value left out, {named}")


def test_unpublished_shortfall_alert_is_listed_and_the_forecast_still_saved(
    forecaster: ManualClock, lambda_context: Any, state_table: Any
) -> None:
    # GIVEN a cluster that needs more than its 4 nodes, and no alert topic in SNS
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", forecaster, demand(2, scale=1.0), nodes=4)
    # WHEN the scheduled fleet forecast runs
    result = lambda_handler({"action": "forecast_fleet", "horizon_minutes": 180}, lambda_context)
    # THEN the cluster is forecast, the lost alert is listed, and the forecast is saved
    assert (result["status"], result["alerts"]) == ("ok", 0)
    [cluster] = result["clusters"]
    assert cluster["errors"] == [{"node_group": "system", "error": "alert not published"}]
    saved = state_table.get_value(f"forecast/{MEMBER_ACCOUNT_ID}/{REGION}/dev-apps", "latest")
    assert saved["recommendation"] == cluster["recommendation"]


def test_fleet_run_reports_a_denied_account_and_forecasts_the_others(
    forecaster: ManualClock,
    lambda_context: Any,
    state_table: Any,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a second member account whose role cannot be assumed
    second = copy.deepcopy(inventory_document["members"][0])
    second["account_id"] = SECOND_MEMBER_ID
    second["name"] = "denied"
    inventory_document["members"].insert(0, second)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode(),
    )
    deny_assume_role(monkeypatch, SECOND_MEMBER_ID)
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", forecaster, demand(3))
    # WHEN the fleet forecast runs
    result = lambda_handler({"action": "forecast_fleet", "horizon_minutes": 60}, lambda_context)
    # THEN the denied account is reported and the other is forecast
    assert result["status"] == "partial"
    denied, ok = result["clusters"]
    assert denied["account_id"] == SECOND_MEMBER_ID
    assert denied["status"] == "error"
    assert "AccessDenied" in denied["error"]
    assert ok["status"] == "ok"
    assert ok["recommendation"][0]["name"] == "system"


def test_cluster_without_history_is_an_error_for_that_cluster(
    forecaster: ManualClock, lambda_context: Any
) -> None:
    # GIVEN the cluster exists but Container Insights has no history for it (only the hub has)
    create_cluster(member_session(MEMBER_ACCOUNT_ID), "dev-apps")
    put_history(boto3.Session(region_name=REGION), "dev-apps", forecaster, demand(4))
    # WHEN forecast THEN the error names the missing history, for that cluster
    result = lambda_handler(
        {
            "action": "forecast",
            "account_id": MEMBER_ACCOUNT_ID,
            "region": REGION,
            "cluster": "dev-apps",
        },
        lambda_context,
    )
    assert result["status"] == "error"
    assert result["cluster"] == "dev-apps"
    assert "no Container Insights history" in result["error"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("not an object", "event"),
        ({"action": "predict"}, "action"),
        ({"action": "forecast", "region": REGION, "cluster": "dev-apps"}, "account_id"),
        (
            {
                "action": "forecast",
                "account_id": MEMBER_ACCOUNT_ID,
                "region": REGION,
                "cluster": "dev-apps",
                "horizon_minutes": 0,
            },
            "horizon_minutes",
        ),
        ({"action": "forecast_fleet", "horizon_minutes": "soon"}, "horizon_minutes"),
        ({"action": "forecast_fleet", "horizon_minutes": True}, "horizon_minutes"),
        # Past the calendar's ends once in UTC.
        ({"action": "forecast_fleet", "run": "9999-12-31T23:59:59-14:00"}, "run"),
        ({"action": "forecast_fleet", "run": "0001-01-01T00:00:00+14:00"}, "run"),
        # A day later than now, or more than a day before: no attempt of a scheduled run; its
        # hour would name the scaler's request of that day's run.
        ({"action": "forecast_fleet", "run": "2025-06-03T03:00:00Z"}, "run"),
        ({"action": "forecast_fleet", "run": "2025-05-31T03:00:00Z"}, "run"),
        # An hour of today as a JSON number, or text that is one: not read as Unix seconds.
        ({"action": "forecast_fleet", "run": 1748833200}, "run"),
        ({"action": "forecast_fleet", "run": "1748833200"}, "run"),
        (
            {
                "action": "forecast",
                "account_id": MEMBER_ACCOUNT_ID,
                "region": REGION,
                "cluster": "unknown",
            },
            "cluster",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    forecaster: ManualClock, lambda_context: Any, event: Any, field: str
) -> None:
    # GIVEN a malformed event WHEN handled THEN an error result names the field
    result = lambda_handler(event, lambda_context)
    assert result["status"] == "error"
    assert f"invalid event: {field}:" in result["error"]


def test_missing_data_bucket_is_a_configuration_error(
    forecaster: ManualClock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DATA_BUCKET_NAME is not set
    monkeypatch.delenv("DATA_BUCKET_NAME")
    # WHEN invoked THEN the invocation fails naming the variable
    with pytest.raises(
        ConfigurationError,
        match=r"^environment variable DATA_BUCKET_NAME: is required but not set$",
    ):
        lambda_handler({"action": "forecast_fleet"}, lambda_context)


def test_the_recommendation_stops_at_the_stack_files_max_size_when_eks_allows_more(
    forecaster: ManualClock, lambda_context: Any, state_table: Any, alert_inbox: Any
) -> None:
    # GIVEN a cluster whose demand needs far more than 4 nodes, whose node group's maxSize was
    # raised to 10 in EKS by hand while the stack file (the inventory) keeps max_size 4
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps", max_size=10)
    put_history(member, "dev-apps", forecaster, demand(2, scale=1.0), nodes=4)
    # WHEN the scheduled fleet forecast runs
    result = lambda_handler({"action": "forecast_fleet", "horizon_minutes": 180}, lambda_context)
    # THEN the recommendation stops at the stack file's max_size, which the scaler never goes
    # past, and the shortfall is alerted
    [cluster] = result["clusters"]
    [recommendation] = cluster["recommendation"]
    assert recommendation["desired_size"] == 4
    assert "kept at max_size 4" in recommendation["reason"]
    [alert] = alert_inbox.receive()
    assert alert.alert["resource"] == f"{MEMBER_ACCOUNT_ID}/{REGION}/dev-apps/system"


def two_members_with_history(inventory_document: dict[str, Any], clock: ManualClock) -> None:
    """The inventory's member and a second one, each with the cluster dev-apps and its history."""
    add_member_copy(inventory_document, SECOND_MEMBER_ID)
    for account_id in (MEMBER_ACCOUNT_ID, SECOND_MEMBER_ID):
        member = member_session(account_id)
        create_cluster(member, "dev-apps")
        put_history(member, "dev-apps", clock, demand(3))


def test_a_member_answering_with_a_proxy_page_fails_its_cluster_alone_in_the_fleet_run(
    forecaster: ManualClock,
    lambda_context: Any,
    state_table: Any,
    inventory_document: dict[str, Any],
) -> None:
    # GIVEN two members with a cluster and its history each, the first member's EC2 answering
    # DescribeInstanceTypes with a page that is not XML (HTTP 200), and the second member's EKS
    # answering DescribeNodegroup of its one node group with a page without the node group
    two_members_with_history(inventory_document, forecaster)
    services = app.FUNCTION.services()
    page = answer_malformed(
        services.member_client("ec2", MEMBER_ACCOUNT_ID, REGION),
        "ec2",
        "DescribeInstanceTypes",
        b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000,
    )
    page_without_the_group = answer_malformed(
        services.member_client("eks", SECOND_MEMBER_ID, REGION),
        "eks",
        "DescribeNodegroup",
        b"<html>gateway</html>",
    )
    # WHEN the fleet forecast runs
    result = lambda_handler({"action": "forecast_fleet", "horizon_minutes": 60}, lambda_context)
    # THEN each member's cluster is an error saying, in a short line, what its answer was; the
    # run answers for both
    assert page.answered >= 1
    assert page_without_the_group.answered >= 1
    assert result["status"] == "partial"
    first, other = result["clusters"]
    assert (first["account_id"], first["status"]) == (MEMBER_ACCOUNT_ID, "error")
    assert "Unable to parse response" in first["error"]
    assert (other["account_id"], other["status"]) == (SECOND_MEMBER_ID, "error")
    assert "DescribeNodegroup of system answered without nodegroup" in other["error"]
    assert all(len(cluster["error"]) <= 400 for cluster in (first, other))


@pytest.mark.parametrize(
    ("described", "field"),
    [
        pytest.param({"instanceTypes": ["x" * 500, None]}, "instanceTypes", id="null-type"),
        pytest.param({"capacityType": "SPOT" * 100}, "capacityType", id="unknown-capacity"),
    ],
)
def test_a_node_group_field_eks_does_not_send_fails_its_cluster_alone_in_the_fleet_run(
    forecaster: ManualClock,
    lambda_context: Any,
    inventory_document: dict[str, Any],
    described: dict[str, Any],
    field: str,
) -> None:
    # GIVEN two members with a cluster and its history each, the first member's EKS answering
    # DescribeNodegroup with a null among the instance types, or a capacity type that is none of
    # EKS's (botocore's parser passes a JSON answer's text values, enums included, on
    # unchecked; a size that is no number it refuses itself)
    two_members_with_history(inventory_document, forecaster)
    odd = answer_malformed(
        app.FUNCTION.services().member_client("eks", MEMBER_ACCOUNT_ID, REGION),
        "eks",
        "DescribeNodegroup",
        json.dumps({"nodegroup": {"nodegroupName": "system", **described}}).encode(),
    )
    # WHEN the fleet forecast runs
    result = lambda_handler({"action": "forecast_fleet", "horizon_minutes": 60}, lambda_context)
    # THEN the first cluster is an error naming the field in a short line; the other is forecast
    assert odd.answered >= 1
    assert result["status"] == "partial"
    first, other = result["clusters"]
    assert (first["account_id"], first["status"]) == (MEMBER_ACCOUNT_ID, "error")
    assert "DescribeNodegroup of system answered without a" in first["error"]
    assert f"nodegroup.{field}" in first["error"]
    assert len(first["error"]) <= 400
    assert (other["account_id"], other["status"]) == (SECOND_MEMBER_ID, "ok")


def _history_answering(
    clock: ManualClock, query_ids: list[str], field: str, answer: object
) -> list[str]:
    """The inventory's cluster with two weeks of Container Insights history, whose GetMetricData
    answers the hour of a week ago of each of `query_ids` with its `field` (`Values`,
    `Timestamps`) set to `answer`; the ids changed, as the answers come."""
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", clock, demand(1))
    changed: list[str] = []

    def change(parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Id"] in query_ids and len(result["Values"]) > 168:
                result[field][-168] = answer
                changed.append(result["Id"])

    services = app.FUNCTION.services()
    cloudwatch = services.member_client("cloudwatch", MEMBER_ACCOUNT_ID, REGION)
    cloudwatch.meta.events.register("after-call.cloudwatch.GetMetricData", change)
    return changed


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_an_hour_of_history_that_is_not_a_number_is_left_out_and_named(
    forecaster: ManualClock, lambda_context: Any, value: float
) -> None:
    # GIVEN the inventory's cluster with two weeks of Container Insights history, whose
    # GetMetricData answers one CPU hour of a week ago as `value`
    replaced = _history_answering(forecaster, ["cpu_utilization"], "Values", value)
    # WHEN the cluster is forecast
    result = forecast_dev_apps(lambda_context, horizon_minutes=60)
    # THEN the forecast is made from the other hours, the one left out named among the errors
    assert replaced == ["cpu_utilization"]
    assert result["status"] == "ok", result
    assert 1 <= result["recommendation"][0]["desired_size"] <= 4
    [error] = result["errors"]
    assert error["node_group"] is None
    assert error["error"].startswith(
        f"node_cpu_utilization: 1 value left out, not a number within +-2**360 (CloudWatch's "
        f"limit); the first {value!r} at "
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, tzinfo=UTC),
        datetime(2025, 6, 3, 3, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2025, 5, 26, 3, 17, tzinfo=UTC),
    ],
    ids=["year-9999", "tomorrow", "1970", "off-the-hour"],
)
def test_an_hour_of_history_dated_outside_the_hours_asked_is_left_out_and_named(
    forecaster: ManualClock, lambda_context: Any, moment: datetime
) -> None:
    # GIVEN the inventory's cluster with two weeks of Container Insights history, whose
    # GetMetricData answers the CPU and node count of one hour a week ago as of `moment`:
    # outside the 14 days asked, or not on the hour
    redated = _history_answering(
        forecaster, ["cpu_utilization", "node_count"], "Timestamps", moment
    )
    # WHEN the cluster is forecast
    result = forecast_dev_apps(lambda_context, horizon_minutes=60)
    # THEN the forecast is made from the other hours, within the 14 days asked, and starts at
    # the coming hour (a year-9999 hour raised out of the handler, which stopped a fleet run at
    # this cluster; one of tomorrow moved the forecast past the coming hour)
    assert redated == ["cpu_utilization", "node_count"]
    assert result["status"] == "ok", result
    assert result["history"]["start"] == "2025-05-19T03:00:00Z"
    assert result["history"]["last_observation"] == "2025-06-02T02:00:00Z"
    assert result["forecast"][0]["timestamp"] == "2025-06-02T03:00:00Z"
    assert result["coming_hour"] is not None
    # AND the hour left out is named among the errors, for each metric
    why = (
        "off the hour"
        if moment.minute
        else "dated outside the window asked (2025-05-19T03:00:00Z to 2025-06-02T03:00:00Z)"
    )
    assert [error["error"] for error in result["errors"]] == [
        f"{metric}: 1 value left out, {why}; the first at {iso_z(moment)}"
        for metric in ("node_cpu_utilization", "cluster_node_count")
    ]


@pytest.mark.parametrize(
    ("field", "size", "named"),
    [
        ("VCpuInfo", 0, "VCpuInfo.DefaultVCpus 0"),
        ("MemoryInfo", 0, "MemoryInfo.SizeInMiB 0"),
        ("VCpuInfo", None, "DescribeInstanceTypes answered without VCpuInfo.DefaultVCpus"),
    ],
)
def test_an_instance_type_described_without_capacity_is_an_error_not_a_size(
    forecaster: ManualClock, lambda_context: Any, field: str, size: int | None, named: str
) -> None:
    # GIVEN the inventory's cluster with two weeks of history, and EC2 describing its node
    # group's instance type with 0 vCPUs (or 0 MiB of memory), or without its vCPUs at all
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-apps")
    put_history(member, "dev-apps", forecaster, demand(1))
    key = {"VCpuInfo": "DefaultVCpus", "MemoryInfo": "SizeInMiB"}[field]

    def describe_without_capacity(parsed: dict[str, Any], **_: Any) -> None:
        for item in parsed.get("InstanceTypes", []):
            if size is None:
                del item[field][key]
            else:
                item[field][key] = size

    ec2 = app.FUNCTION.services().member_client("ec2", MEMBER_ACCOUNT_ID, REGION)
    ec2.meta.events.register("after-call.ec2.DescribeInstanceTypes", describe_without_capacity)
    # WHEN the cluster is forecast
    result = forecast_dev_apps(lambda_context, horizon_minutes=60)
    # THEN the cluster is an error naming the instance type and what EC2 answered (not a bare
    # KeyError ending the invocation)
    assert result["status"] == "error", result
    assert "m7g.large" in result["error"]
    assert named in result["error"]
