"""health_monitor's load-balancer check against moto: the cluster's load balancers (by the AWS Load
Balancer Controller's cluster tag), healthy against registered targets, response time and 5xx rate
from CloudWatch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.clock import ManualClock
from fleet_shared.sessions import MEMBER_CALL_CONFIG
from handlers.health_monitor import cluster_time
from handlers.health_monitor.cluster_time import LISTING_SECONDS
from handlers.health_monitor.services import HealthServices
from tests.handlers.deadlines import LambdaTime
from tests.handlers.endless_listings import EndlessSlowPages
from tests.handlers.faults import InjectedRefusal, MalformedAnswer
from tests.handlers.member_accounts import load_balancer_network, member_session

REGION = "ap-south-1"
MEMBER = "222222222222"
CLUSTER_EVENT = {
    "action": "check_cluster",
    "account_id": MEMBER,
    "region": REGION,
    "cluster": "dev-apps",
}

Invoke = Callable[..., dict[str, Any]]
TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["health_monitor"].timeout_seconds


def load_balancer_checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    [report] = result["clusters"]
    return [check for check in report["checks"] if check["name"] == "load_balancer"]


def create_load_balancer(
    session: Any, name: str, cluster: str, targets: int
) -> tuple[str, list[str]]:
    """An application load balancer tagged for `cluster`, forwarding to `targets` instances;
    its ARN and the instance ids."""
    ec2, elbv2 = session.client("ec2"), session.client("elbv2")
    vpc, subnets = load_balancer_network(ec2)
    balancer = elbv2.create_load_balancer(
        Name=name,
        Subnets=subnets,
        Type="application",
        Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": cluster}],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    group = elbv2.create_target_group(
        Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=balancer,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    instances = [
        instance["InstanceId"]
        for instance in ec2.run_instances(
            ImageId="ami-0abcdef1234567890", MinCount=targets, MaxCount=targets, SubnetId=subnets[0]
        )["Instances"]
    ]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": iid} for iid in instances])
    return balancer, instances


def put_traffic(
    session: Any,
    balancer_arn: str,
    clock: ManualClock,
    *,
    seconds: float,
    requests: int,
    errors: int,
) -> None:
    """One minute of the load balancer's CloudWatch metrics, two minutes ago."""
    dimension = [{"Name": "LoadBalancer", "Value": balancer_arn.split(":loadbalancer/", 1)[1]}]
    at = clock.now() - timedelta(minutes=2)
    values = {
        "TargetResponseTime": seconds,
        "RequestCount": requests,
        "HTTPCode_Target_5XX_Count": errors,
    }
    session.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": name, "Dimensions": dimension, "Timestamp": at, "Value": value}
            for name, value in values.items()
        ],
    )


def put_target_counts(
    session: Any, balancer_arn: str, clock: ManualClock, *, healthy: int, unhealthy: int
) -> None:
    """ELB's count of the healthy and unhealthy targets of the load balancer's target group, two
    minutes ago."""
    elbv2 = session.client("elbv2")
    [group] = elbv2.describe_target_groups(LoadBalancerArn=balancer_arn)["TargetGroups"]
    dimensions = [
        {"Name": "LoadBalancer", "Value": balancer_arn.split(":loadbalancer/", 1)[1]},
        {"Name": "TargetGroup", "Value": group["TargetGroupArn"].rsplit(":", 1)[1]},
    ]
    at = clock.now() - timedelta(minutes=2)
    session.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Value": value}
            for name, value in (("HealthyHostCount", healthy), ("UnHealthyHostCount", unhealthy))
        ],
    )


@pytest.fixture
def member(member_cluster: Any) -> Any:
    """A session in the member account, which holds the cluster."""
    return member_session(MEMBER)


@pytest.mark.parametrize("tagging_granted", [True, False])
def test_load_balancer_with_targets_partly_unhealthy_is_a_finding_with_its_figures(
    invoke: Invoke,
    member: Any,
    inventory: dict[str, Any],
    fake_clock: ManualClock,
    health_services: Callable[[], HealthServices],
    *,
    tagging_granted: bool,
) -> None:
    # GIVEN the cluster's load balancer with 4 registered targets, 2 of them stopped, answering
    # in 250 ms with 2 target 5xx per 100 requests; and another cluster's load balancer; the
    # member role granted tag:GetResources, or not (a member stack not updated since)
    balancer, instances = create_load_balancer(member, "k8s-web", "dev-apps", targets=4)
    member.client("ec2").stop_instances(InstanceIds=instances[:2])
    put_traffic(member, balancer, fake_clock, seconds=0.25, requests=100, errors=2)
    create_load_balancer(member, "k8s-other", "another-cluster", targets=1)
    refusal = InjectedRefusal("AccessDeniedException")
    if not tagging_granted:
        session = health_services().sessions.session(MEMBER, REGION)
        session.events.register_first(f"before-send.{TAGGING_SERVICE}.GetResources", refusal)
    # WHEN the cluster is checked
    [check] = load_balancer_checks(invoke(CLUSTER_EVENT))
    # THEN its load balancer, and only its, fails as a warning (2 of 4 healthy is below 0.9 and
    # not below 0.5) with the figures, found without the grant from ELB's tags
    assert refusal.refused == (0 if tagging_granted else 1)
    assert check["target"] == "k8s-web"
    assert (check["status"], check["severity"]) == ("failed", "warning")
    assert check["detail"] == "2 of 4 targets healthy"
    assert check["data"] == {
        "registered": 4,
        "healthy": 2,
        "healthy_ratio": 0.5,
        "response_time_ms": 250.0,
        "requests": 100.0,
        "error_rate_5xx": 0.02,
    }


def test_load_balancer_with_healthy_targets_but_slow_and_failing_responses_is_critical(
    invoke: Invoke,
    member: Any,
    inventory: dict[str, Any],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the default latency thresholds (1 s a warning, 3 s critical), and the cluster's load
    # balancer with every target healthy, answering in 3.5 s with 60 target 5xx per 100 requests
    monkeypatch.setenv("HEALTH_LATENCY_WARNING_MS", "1000")
    monkeypatch.setenv("HEALTH_LATENCY_CRITICAL_MS", "3000")
    balancer, _ = create_load_balancer(member, "k8s-web", "dev-apps", targets=2)
    put_traffic(member, balancer, fake_clock, seconds=3.5, requests=100, errors=60)
    # WHEN the cluster is checked
    [check] = load_balancer_checks(invoke(CLUSTER_EVENT))
    # THEN the response time and the 5xx rate are both past their critical thresholds
    assert (check["status"], check["severity"]) == ("failed", "critical")
    assert check["detail"] == "target response time 3500 ms; target 5xx rate 60.0%"


def test_load_balancer_with_every_target_healthy_and_quick_passes(
    invoke: Invoke, member: Any, inventory: dict[str, Any], fake_clock: ManualClock
) -> None:
    # GIVEN the cluster's load balancer with 3 healthy targets answering in 50 ms, no 5xx
    balancer, _ = create_load_balancer(member, "k8s-web", "dev-apps", targets=3)
    put_traffic(member, balancer, fake_clock, seconds=0.05, requests=100, errors=0)
    # WHEN the cluster is checked
    [check] = load_balancer_checks(invoke(CLUSTER_EVENT))
    # THEN it passes
    assert (check["status"], check["severity"]) == ("passed", "info")
    assert check["detail"] == "3 of 3 targets healthy"


TAGGING_SERVICE = "resource-groups-tagging-api"
ELBV2_SERVICE = "elastic-load-balancing-v2"


def answer_without_its_list(service: str, operation: str) -> MalformedAnswer:
    """An answer of `operation`'s own shape holding none of its fields, not even the empty list
    ELBv2 (its XML), the Tagging API (its JSON) and moto always send: botocore parses it into an
    answer without the list."""
    if service == TAGGING_SERVICE:
        return MalformedAnswer(b"{}", url_part="", content_type="application/x-amz-json-1.1")
    body = (
        f"<{operation}Response><{operation}Result/>"
        f"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{operation}Response>"
    ).encode()
    return MalformedAnswer(body, url_part="")


@pytest.mark.parametrize(
    ("service", "operation", "missing"),
    [
        (TAGGING_SERVICE, "GetResources", "ResourceTagMappingList"),
        (ELBV2_SERVICE, "DescribeLoadBalancers", "LoadBalancers"),
        (ELBV2_SERVICE, "DescribeTargetGroups", "TargetGroups"),
        (ELBV2_SERVICE, "DescribeTargetHealth", "TargetHealthDescriptions"),
    ],
)
def test_a_load_balancer_listing_answered_without_its_list_fails_the_check_naming_the_call(
    invoke: Invoke,
    member: Any,
    inventory: dict[str, Any],
    fake_clock: ManualClock,
    health_services: Callable[[], Any],
    *,
    service: str,
    operation: str,
    missing: str,
) -> None:
    # GIVEN the cluster's load balancer with 4 registered targets, 2 of them stopped, and the
    # member's ELBv2 answering one of the check's listings without its list (HTTP 200)
    balancer, instances = create_load_balancer(member, "k8s-web", "dev-apps", targets=4)
    member.client("ec2").stop_instances(InstanceIds=instances[:2])
    put_traffic(member, balancer, fake_clock, seconds=0.25, requests=100, errors=2)
    session = health_services().sessions.session(MEMBER, REGION)
    page = answer_without_its_list(service, operation)
    session.events.register_first(f"before-send.{service}.{operation}", page)
    # WHEN the cluster is checked
    [check] = load_balancer_checks(invoke(CLUSTER_EVENT))
    # THEN the check could not run, naming the call and the list its answer lacked, rather than
    # passing for a cluster without load balancers or reporting no registered target
    assert page.answered >= 1
    assert (check["status"], check["severity"]) == ("failed", "warning")
    assert "check could not run" in check["detail"]
    assert f"{operation} answered without {missing}" in check["detail"]


def answer_response_times_as(services: HealthServices, value: float) -> list[str]:
    """Make the member's GetMetricData answer every TargetResponseTime value as `value` (what
    CloudWatch's CBOR answer can carry, and moto's store cannot); the ids it answered so."""
    replaced: list[str] = []

    def replace(parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Id"].endswith("_time") and result["Values"]:
                result["Values"] = [value] * len(result["Values"])
                replaced.append(result["Id"])

    cloudwatch = services.sessions.client("cloudwatch", MEMBER, REGION, MEMBER_CALL_CONFIG)
    cloudwatch.meta.events.register("after-call.cloudwatch.GetMetricData", replace)
    return replaced


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_response_time_that_is_not_a_number_is_left_out_and_named_not_judged(  # noqa: PLR0917 - pytest passes fixtures positionally
    invoke: Invoke,
    member: Any,
    inventory: dict[str, Any],
    fake_clock: ManualClock,
    health_services: Callable[[], HealthServices],
    value: float,
) -> None:
    # GIVEN the cluster's load balancer with 3 healthy targets and no 5xx, whose response time
    # CloudWatch answers as `value`
    balancer, _ = create_load_balancer(member, "k8s-web", "dev-apps", targets=3)
    put_traffic(member, balancer, fake_clock, seconds=0.05, requests=100, errors=0)
    replaced = answer_response_times_as(health_services(), value)
    # WHEN the cluster is checked
    [check] = load_balancer_checks(invoke(CLUSTER_EVENT))
    # THEN the check passes on what was measured, with no response time, naming what it left out
    assert replaced == ["lb0_time"]
    assert (check["status"], check["severity"]) == ("passed", "info")
    assert check["data"]["response_time_ms"] is None
    assert check["detail"].startswith(
        "3 of 3 targets healthy; left out: TargetResponseTime: 1 value left out, not a number "
        f"within +-2**360 (CloudWatch's limit); the first {value!r} at "
    )


ENDLESS_PAGE_SECONDS = 10.0
"""What each page of the member's endless listing spends of the invocation's time."""
OTHER_MEMBER = "333333333333"
ENDLESS_LISTINGS = {
    "GetResources": (
        "resourcegroupstaggingapi",
        "resource-groups-tagging-api.GetResources",
        ("PaginationToken", "PaginationToken"),
        ("load_balancer",),
    ),
    "ListNodegroups": (
        "eks",
        "eks.ListNodegroups",
        ("nextToken", "nextToken"),
        ("node_group", "capacity"),
    ),
    "DescribeAutoScalingGroups": (
        "autoscaling",
        "auto-scaling.DescribeAutoScalingGroups",
        ("NextToken", "NextToken"),
        ("capacity",),
    ),
}
"""Each member listing a check pages through: its client, its event name, its answer's and its
request's token, and the checks that read it."""


@pytest.mark.parametrize("listing", ENDLESS_LISTINGS)
def test_a_member_listing_that_pages_on_fails_its_checks_alone_and_the_next_cluster_runs(
    invoke: Invoke,
    listing: str,
    *,
    member_cluster: Any,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    make_member_cluster: Callable[..., Any],
    health_services: Callable[[], HealthServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the member answering the listing page after page under new tokens, each page
    # spending 10 s, and another member's cluster after it, checked one at a time in a fleet run
    # with the monitor's whole timeout
    service, operation, (answer_token, request_token), reading_checks = ENDLESS_LISTINGS[listing]
    [template] = inventory["members"]
    template["clusters"][0]["health_endpoints"] = []
    other = {**template, "account_id": OTHER_MEMBER, "name": "other"}
    write_inventory({**inventory, "members": [template, other]})
    make_member_cluster(OTHER_MEMBER)
    monkeypatch.setenv("HEALTH_MAX_WORKERS", "1")
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    endless = EndlessSlowPages(time, ENDLESS_PAGE_SECONDS, answer_token)
    client = health_services().sessions.client(service, MEMBER, REGION, MEMBER_CALL_CONFIG)
    endless.register(client.meta.events, operation, request_token)
    # WHEN the scheduled fleet run checks both clusters
    result = invoke({"action": "check_fleet"}, time.context())
    # THEN the listing stopped within a cluster's turn (not when the run's member calls ran out
    # of time), once for all the checks reading it, and those checks alone failed, naming the
    # listing cut short
    assert endless.pages > 1
    assert time.spent <= LISTING_SECONDS + ENDLESS_PAGE_SECONDS
    first, second = result["clusters"]
    checks = {check["name"]: check for check in first["checks"]}
    for name in reading_checks:
        check = checks.pop(name)
        assert (check["status"], check["severity"]) == ("failed", "warning"), check
        assert f"{listing}" in check["detail"], check
        assert "read cut short before its next page" in check["detail"], check
    assert {check["status"] for check in checks.values()} == {"passed"}
    assert "not_checked" not in first
    # AND the other member's cluster was started and checked
    assert second["account_id"] == OTHER_MEMBER and second["status"] == "healthy", second


ELB_REQUEST_SECONDS = 0.1
"""What each ELB request spends of the invocation: past its burst of 40, ELB answers an account
10 Describe requests a second."""


def test_load_balancers_whose_target_health_requests_outlast_the_reads_time_are_counted_whole(
    invoke: Invoke,
    member: Any,
    inventory: dict[str, Any],
    fake_clock: ManualClock,
    *,
    health_services: Callable[[], HealthServices],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the cluster's 4 load balancers, whose targets ELB counted two minutes ago (one with
    # 1 of 2 healthy), each ELB request spending 0.1 s, and the reads allowed 0.3 s after their
    # first follow-up: the load balancers described and the target groups fit, 4
    # DescribeTargetHealth after them do not (the 20 s that about 225 load balancers outlast,
    # scaled down to 4)
    monkeypatch.setattr(cluster_time, "LISTING_SECONDS", 3 * ELB_REQUEST_SECONDS)
    for index in range(4):
        balancer, _ = create_load_balancer(member, f"k8s-web-{index}", "dev-apps", targets=1)
        put_target_counts(member, balancer, fake_clock, healthy=1, unhealthy=1 if index else 0)
    time = LambdaTime(TIMEOUT_SECONDS)
    sent: list[str] = []

    def elb_answers(event_name: str, **_: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])
        time.spend(ELB_REQUEST_SECONDS)

    elbv2 = health_services().sessions.client("elbv2", MEMBER, REGION, MEMBER_CALL_CONFIG)
    elbv2.meta.events.register("before-send.elastic-load-balancing-v2", elb_answers)
    # WHEN the cluster is checked
    checks = load_balancer_checks(invoke(CLUSTER_EVENT, time.context()))
    # THEN every load balancer is judged by ELB's counts, none asked DescribeTargetHealth
    assert sent == ["DescribeLoadBalancers", "DescribeTargetGroups"]
    by_target = {check["target"]: check for check in checks}
    assert sorted(by_target) == [f"k8s-web-{index}" for index in range(4)]
    assert by_target["k8s-web-0"]["status"] == "passed"
    assert by_target["k8s-web-0"]["detail"] == "1 of 1 targets healthy"
    for index in range(1, 4):
        check = by_target[f"k8s-web-{index}"]
        assert (check["status"], check["severity"]) == ("failed", "warning"), check
        assert check["detail"] == "1 of 2 targets healthy"
