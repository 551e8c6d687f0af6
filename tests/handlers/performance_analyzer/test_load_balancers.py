"""Load balancers of a cluster: found by the controller's tag, judged on their p99."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fleet_shared.aws_answers import UnreadableAnswerError
from fleet_shared.load_balancers import CLUSTER_TAG
from fleet_shared.metric_data import get_metric_series
from fleet_shared.performance_documents import LoadBalancerLatency
from handlers.performance_analyzer.bottlenecks import (
    cleared_rules,
    find_bottlenecks,
    measured_rules,
)
from handlers.performance_analyzer.measurements import (
    WindowMeasurements,
    cluster_application_load_balancers,
    load_balancer_latency,
    load_balancer_queries,
    measure_window,
)
from tests.handlers.conftest import REGION
from tests.handlers.faults import answer_malformed
from tests.handlers.member_accounts import load_balancer_network


def test_only_the_load_balancers_tagged_for_the_cluster_are_found(
    monkeypatch: pytest.MonkeyPatch, mocked_aws: None
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # GIVEN two ALBs of the cluster (by the controller's tag), one of another cluster, one untagged
    ec2 = boto3.client("ec2", region_name=REGION)
    _, subnets = load_balancer_network(ec2)
    elbv2 = boto3.client("elbv2", region_name=REGION)

    def create(name: str, cluster: str | None) -> str:
        tags = (
            [{"Key": CLUSTER_TAG, "Value": cluster}] if cluster else [{"Key": "team", "Value": "x"}]
        )
        return elbv2.create_load_balancer(Name=name, Subnets=subnets, Tags=tags)["LoadBalancers"][
            0
        ]["LoadBalancerArn"]

    ours = sorted([create("k8s-apps-web", "dev-apps"), create("k8s-apps-api", "dev-apps")])
    create("k8s-other-web", "other")
    create("plain", None)

    # WHEN the cluster's load balancers are looked up
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    found = cluster_application_load_balancers(elbv2, "dev-apps", tagging=tagging)

    # THEN exactly the two tagged for it are found
    assert found == ours


@pytest.mark.parametrize(
    ("operation", "missing"),
    [("DescribeLoadBalancers", "LoadBalancers"), ("GetResources", "ResourceTagMappingList")],
)
def test_a_listing_answered_without_its_list_is_unreadable_not_a_cluster_without_load_balancers(
    monkeypatch: pytest.MonkeyPatch, mocked_aws: None, operation: str, missing: str
) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # GIVEN an ALB of the cluster, and ELBv2 or the Tagging API answering one of the lookup's
    # calls with an answer of the call's own shape holding none of its fields (HTTP 200), not
    # even the empty list they (and moto) always send
    ec2 = boto3.client("ec2", region_name=REGION)
    _, subnets = load_balancer_network(ec2)
    elbv2 = boto3.client("elbv2", region_name=REGION)
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    tags = [{"Key": CLUSTER_TAG, "Value": "dev-apps"}]
    elbv2.create_load_balancer(Name="k8s-apps-web", Subnets=subnets, Tags=tags)
    if operation == "GetResources":
        page = answer_malformed(
            tagging,
            "resource-groups-tagging-api",
            operation,
            b"{}",
            content_type="application/x-amz-json-1.1",
        )
    else:
        body = (
            f"<{operation}Response><{operation}Result/>"
            f"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{operation}Response>"
        ).encode()
        page = answer_malformed(elbv2, "elastic-load-balancing-v2", operation, body)
    # WHEN the cluster's load balancers are looked up
    # THEN the answer is unreadable, naming the call and the list it lacked
    with pytest.raises(UnreadableAnswerError, match=f"{operation} answered without {missing}"):
        cluster_application_load_balancers(elbv2, "dev-apps", tagging=tagging)
    assert page.answered == 1


def test_a_slow_load_balancer_is_named_with_its_p99() -> None:
    # GIVEN one fast and one slow load balancer over a 4-hour window
    measurements = WindowMeasurements(
        figures={},
        load_balancers=[
            LoadBalancerLatency(name="web", p50_seconds=0.05, p90_seconds=0.1, p99_seconds=0.2),
            LoadBalancerLatency(name="api", p50_seconds=0.3, p90_seconds=0.9, p99_seconds=2.5),
        ],
        hourly=[],
    )
    # WHEN the rules are evaluated
    [bottleneck] = find_bottlenecks(measurements, 4)
    # THEN the slow one is named, with its p99 and the threshold, in seconds
    assert bottleneck.rule == "slow_load_balancer"
    assert bottleneck.value == pytest.approx(2.5)
    assert bottleneck.unit == "Seconds"
    assert "of api was 2.5 Seconds" in bottleneck.evidence


def test_a_p99_cloudwatch_answered_incomplete_is_no_latency() -> None:
    # GIVEN a load balancer whose responses took 3 s at p50 over the last hour, and CloudWatch
    # answering its p99 with StatusCode InternalError (moto computes no percentiles, and always
    # answers Complete)
    cloudwatch = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    end = datetime(2026, 11, 28, 10, tzinfo=UTC)
    start = end - timedelta(hours=1)

    def result(percentile: str, status: str) -> dict[str, Any]:
        return {
            "Id": f"lb0_{percentile}",
            "Label": "TargetResponseTime",
            "Timestamps": [start],
            "Values": [3.0],
            "StatusCode": status,
        }

    stubber = Stubber(cloudwatch)
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                result("p50", "Complete"),
                result("p90", "Complete"),
                result("p99", "InternalError"),
            ]
        },
    )
    arn = f"arn:aws:elasticloadbalancing:{REGION}:222222222222:loadbalancer/app/api/0123456789"
    # WHEN its latency over the hour is measured
    with stubber:
        series = get_metric_series(cloudwatch, load_balancer_queries([arn], start, end), start, end)
    latency, left_out = load_balancer_latency(series, 0, arn)
    # THEN the p99 is unmeasured, not read from what CloudWatch answered, and the percentiles
    # answered whole are measured
    assert latency.p99_seconds is None
    assert latency.p50_seconds == pytest.approx(3.0)
    assert left_out == []


def test_a_negative_p99_is_left_out_named_and_no_latency() -> None:
    # GIVEN a load balancer whose p99 CloudWatch answers as -3 s (no response takes less than
    # no time), its p50 and p90 as 0.2 s
    cloudwatch = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    end = datetime(2026, 11, 28, 10, tzinfo=UTC)
    start = end - timedelta(hours=1)
    stubber = Stubber(cloudwatch)
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": f"lb0_{percentile}", "Timestamps": [start], "Values": [value],
                 "StatusCode": "Complete"}
                for percentile, value in (("p50", 0.2), ("p90", 0.2), ("p99", -3.0))
            ]
        },
    )  # fmt: skip
    arn = f"arn:aws:elasticloadbalancing:{REGION}:222222222222:loadbalancer/app/api/0123456789"
    # WHEN its latency over the hour is measured
    with stubber:
        series = get_metric_series(cloudwatch, load_balancer_queries([arn], start, end), start, end)
    latency, left_out = load_balancer_latency(series, 0, arn)
    # THEN its p99 is unmeasured, so it clears no open regression of the rule, and the value
    # left out is named
    assert latency.p99_seconds is None
    assert latency.p50_seconds == pytest.approx(0.2)
    assert left_out == [
        "load balancer api p99: 1 value left out, outside 0 or more Seconds; the first -3.0 at "
        "2026-11-28T09:00:00Z"
    ]


def test_a_p99_of_no_time_at_all_is_measured_and_clears_the_rule() -> None:
    # GIVEN a window whose only load balancer answered at p99 in 0 s
    measurements = WindowMeasurements(
        figures={},
        load_balancers=[
            LoadBalancerLatency(name="web", p50_seconds=0.0, p90_seconds=0.0, p99_seconds=0.0)
        ],
        hourly=[],
    )
    # WHEN the rules are read on it
    # THEN the load balancer rule is measured and at its clear level, not unmeasured
    assert measurements.worst_p99() == ("web", 0.0)
    assert "slow_load_balancer" in measured_rules(measurements)
    assert "slow_load_balancer" in cleared_rules(measurements, 4)


def test_a_p99_answered_incomplete_leaves_the_load_balancer_rule_unmeasured() -> None:
    # GIVEN a cluster's two load balancers over the last hour: web answered at 0.1 s at p99,
    # and api's p99 answered with StatusCode InternalError (the slow one, for all we know)
    cloudwatch = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    end = datetime(2026, 11, 28, 10, tzinfo=UTC)
    start = end - timedelta(hours=1)
    arns = [
        f"arn:aws:elasticloadbalancing:{REGION}:222222222222:loadbalancer/app/{name}/0123456789"
        for name in ("api", "web")
    ]
    stubber = Stubber(cloudwatch)
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": f"lb{index}_{percentile}", "Timestamps": [start], "Values": [0.1],
                 "StatusCode": "InternalError" if (index, percentile) == (0, "p99") else "Complete"}
                for index in (0, 1)
                for percentile in ("p50", "p90", "p99")
            ]
        },
    )  # fmt: skip
    # WHEN the window is measured
    with stubber:
        measurements = measure_window(cloudwatch, "dev-apps", arns, end, 1)
    # THEN the load balancer rule has no figure: the fast one's p99 neither clears an open
    # regression nor stands for the cluster's worst
    assert measurements.worst_p99() is None
    assert "slow_load_balancer" not in measured_rules(measurements)
    assert "slow_load_balancer" not in cleared_rules(measurements, 1)
