"""health_monitor's calls in a member account whose EKS or CloudWatch endpoint never answers, or
throttles each call to its bound, against the 120 s timeout, with clusters of another member
after it.

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's connect and
read timeouts of the invocation's time, botocore's waits between attempts spend theirs, and once
the time is up the invocation ends as Lambda ends it, from wherever it is. Clusters are checked
one at a time (`HEALTH_MAX_WORKERS=1`), so that their simulated times add up as they would on one
worker."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.alerts import alert_id
from fleet_shared.sessions import MEMBER_ATTEMPTS, MEMBER_CALL_CONFIG, MEMBER_CALL_SECONDS
from fleet_shared.state_table import StateTable
from handlers.health_monitor.incidents import INCIDENT_VALUE, incident_key
from handlers.health_monitor.services import HealthServices
from tests.handlers.deadlines import ContextRunningOutOfTime, LambdaTime
from tests.handlers.faults import throttle_just_before_timeout
from tests.handlers.member_accounts import load_balancer_network

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["health_monitor"].timeout_seconds
FLEET_RUN = {"action": "check_fleet"}
REGION = "ap-south-1"
FAULTY_MEMBER = "222222222222"
CLUSTER_RUN = {
    "action": "check_cluster",
    "account_id": FAULTY_MEMBER,
    "region": REGION,
    "cluster": "dev-apps",
}
Invoke = Callable[..., dict[str, Any]]
HEALTHY_MEMBER = "333333333333"
FAULTY_CLUSTERS = [
    f"apps-{number:02d}" for number in range(math.ceil(TIMEOUT_SECONDS / MEMBER_CALL_SECONDS))
]
"""Enough clusters (8) in the faulty member that one hung call each outlasts the monitor's
timeout."""
CHECKS_OF_SERVICE = {
    "eks": ("cluster_status", "node_group", "capacity"),
    "cloudwatch": ("alarm",),
}
"""The checks that cannot run when the member's endpoint of that service does not answer."""


@dataclass
class EndpointThatNeverAnswers:
    """Every attempt connects at the last moment of its connect timeout, then waits out its read
    timeout without a byte, spending both of the invocation's time."""

    time: LambdaTime
    attempt_seconds: float
    attempts: int = 0

    def __call__(self, request: Any, **_: Any) -> None:
        self.attempts += 1
        self.time.spend(self.attempt_seconds)
        raise ReadTimeoutError(endpoint_url=request.url)


def member_client(services: HealthServices, service: str) -> Any:
    """The faulty member's client of `service`, as the monitor's checks get it."""
    return services.sessions.client(service, FAULTY_MEMBER, REGION, MEMBER_CALL_CONFIG)


@pytest.fixture
def two_members(
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    make_member_cluster: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The faulty member with `FAULTY_CLUSTERS` first, then the healthy member with its cluster
    `dev-apps` (2 of 2 instances ready); no health endpoints, clusters checked one at a time."""
    [template] = inventory["members"]
    [cluster] = template["clusters"]
    cluster["health_endpoints"] = []
    faulty = {
        **template,
        "account_id": FAULTY_MEMBER,
        "name": "faulty",
        "clusters": [{**cluster, "name": name} for name in FAULTY_CLUSTERS],
    }
    healthy = {**template, "account_id": HEALTHY_MEMBER, "name": "healthy"}
    write_inventory({**inventory, "members": [faulty, healthy]})
    make_member_cluster(HEALTHY_MEMBER)
    monkeypatch.setenv("HEALTH_MAX_WORKERS", "1")


def assert_faulty_checks_say_why_and_the_healthy_cluster_is_checked(
    result: dict[str, Any], service: str, cause: str
) -> None:
    """Every cluster of the faulty member reports the checks of `service` as not run, naming
    `cause`; the healthy member's cluster was checked and passed."""
    reports = {(report["account_id"], report["cluster"]): report for report in result["clusters"]}
    for name in FAULTY_CLUSTERS:
        checks = {check["name"]: check for check in reports[FAULTY_MEMBER, name]["checks"]}
        for check_name in CHECKS_OF_SERVICE[service]:
            check = checks[check_name]
            assert (check["status"], check["severity"]) == ("failed", "warning"), (name, check)
            assert check["detail"].startswith("check could not run: "), (name, check)
            assert cause in check["detail"], (name, check)
    healthy = reports[HEALTHY_MEMBER, "dev-apps"]
    assert healthy["status"] == "healthy"
    assert {check["status"] for check in healthy["checks"]} == {"passed"}
    assert "not_started" not in result


@pytest.mark.parametrize("service", CHECKS_OF_SERVICE)
def test_a_member_endpoint_that_never_answers_is_given_up_and_the_other_member_is_checked(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    two_members: None,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
) -> None:
    # GIVEN the faulty member's endpoint of `service` never answers, its 8 clusters first in the
    # inventory, and a fleet run with the function's whole timeout
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    client = member_client(health_services(), service)
    config = client.meta.config
    endpoint = EndpointThatNeverAnswers(time, config.connect_timeout + config.read_timeout)
    client.meta.events.register_first(f"before-send.{service}", endpoint)

    # WHEN the scheduled fleet run checks every cluster
    result = invoke(FLEET_RUN, time.context())

    # THEN the endpoint was asked one call's attempts, in one hung call's time, and then given up
    assert endpoint.attempts == MEMBER_ATTEMPTS
    assert time.spent <= MEMBER_CALL_SECONDS
    # AND every cluster of the faulty member says why its checks of that service did not run,
    # and the other member's cluster, which fits the run, was checked
    assert_faulty_checks_say_why_and_the_healthy_cluster_is_checked(result, service, "Read timeout")
    given_up = [
        report
        for report in result["clusters"]
        if any("did not answer earlier" in check["detail"] for check in report["checks"])
    ]
    assert len(given_up) == len(FAULTY_CLUSTERS) - 1


def test_a_member_eks_that_throttles_each_call_to_its_bound_is_given_up_after_one(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    two_members: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the faulty member's EKS answers each attempt of DescribeCluster with throttling as
    # its timeouts run out, and a fleet run with the function's whole timeout
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    client = member_client(health_services(), "eks")
    throttling = throttle_just_before_timeout(client, "eks", "DescribeCluster", time.spend)

    # WHEN the scheduled fleet run checks every cluster
    result = invoke(FLEET_RUN, time.context())

    # THEN the one call that ran to its bound gave the endpoint up, within that call's bound
    assert throttling.attempts == MEMBER_ATTEMPTS
    assert time.spent <= MEMBER_CALL_SECONDS
    # AND every cluster of the faulty member says its EKS checks did not run, throttled, and the
    # other member's cluster was checked
    assert_faulty_checks_say_why_and_the_healthy_cluster_is_checked(
        result, "eks", "ThrottlingException"
    )


def create_tagged_load_balancer(session: Any, cluster: str) -> None:
    """An application load balancer tagged for `cluster` (no targets: its figures do not matter
    here, only that the load-balancer check asks CloudWatch for its traffic)."""
    ec2, elbv2 = session.client("ec2"), session.client("elbv2")
    _, subnets = load_balancer_network(ec2)
    elbv2.create_load_balancer(
        Name=f"{cluster}-ingress",
        Subnets=subnets,
        Type="application",
        Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": cluster}],
    )


def test_a_cluster_that_asks_a_hung_cloudwatch_twice_ends_within_the_time_it_started_with(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the member's cluster has an application load balancer (whose traffic the
    # load-balancer check reads from CloudWatch, after the alarm check's DescribeAlarms), the
    # member's CloudWatch never answers, and the run comes to the cluster with 40 s left: after
    # one hung call (17 s) still more than the 20 s a member call is started with, less than the
    # 54 s of two hung calls and those 20 s
    use_endpoints([])
    create_tagged_load_balancer(member_cluster.session, "dev-apps")
    time = LambdaTime(40).spend_botocore_waits(monkeypatch)
    client = member_client(health_services(), "cloudwatch")
    config = client.meta.config
    endpoint = EndpointThatNeverAnswers(time, config.connect_timeout + config.read_timeout)
    client.meta.events.register_first("before-send.cloudwatch", endpoint)

    # WHEN the run checks the cluster
    result = invoke(
        {
            "action": "check_cluster",
            "account_id": FAULTY_MEMBER,
            "region": REGION,
            "cluster": "dev-apps",
        },
        time.context(),
    )

    # THEN CloudWatch cost one hung call, and the run ended with its report instead of Lambda
    # ending it: both checks that need CloudWatch say why they did not run, the others passed
    assert endpoint.attempts == MEMBER_ATTEMPTS
    assert time.spent <= MEMBER_CALL_SECONDS
    checks = {check["name"]: check for check in result["clusters"][0]["checks"]}
    for name in ("alarm", "load_balancer"):
        assert (checks[name]["status"], checks[name]["severity"]) == ("failed", "warning")
        assert checks[name]["detail"].startswith("check could not run: ")
        assert "Read timeout" in checks[name]["detail"]
    assert "did not answer earlier" in checks["load_balancer"]["detail"]
    assert {name for name, check in checks.items() if check["status"] == "passed"} == {
        "cluster_status",
        "node_group",
        "capacity",
    }


REGIONAL_OUTAGE_SERVICES = ("eks", "cloudwatch", "resourcegroupstaggingapi", "elbv2", "autoscaling")
"""The member services of one region that a regional outage leaves unanswered."""


def hang_member_region(
    services: HealthServices, time: LambdaTime
) -> dict[str, EndpointThatNeverAnswers]:
    """Every member endpoint of `REGIONAL_OUTAGE_SERVICES` in the faulty member's region never
    answers; the hung endpoints by service."""
    hung: dict[str, EndpointThatNeverAnswers] = {}
    for service in REGIONAL_OUTAGE_SERVICES:
        client = member_client(services, service)
        config = client.meta.config
        hung[service] = EndpointThatNeverAnswers(time, config.connect_timeout + config.read_timeout)
        event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"
        client.meta.events.register_first(event, hung[service])
    return hung


def test_a_regional_outage_leaves_the_checks_it_has_no_time_for_not_checked_and_the_run_reports(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the member region's EKS, CloudWatch, Tagging API, Elastic Load Balancing and Auto
    # Scaling never answer, and the run comes to the cluster with 40 s left: more than the 20 s
    # a cluster is started with, less than three hung calls' 51 s
    use_endpoints([])
    time = LambdaTime(40).spend_botocore_waits(monkeypatch)
    hung = hang_member_region(health_services(), time)

    # WHEN the run checks the cluster
    result = invoke(CLUSTER_RUN, time.context())

    # THEN EKS and CloudWatch each cost one hung call, the load balancers' Tagging API and
    # Elastic Load Balancing were not asked with less time left than a hung call and the report
    # after it, and the run ended with its report
    assert {service: endpoint.attempts for service, endpoint in hung.items()} == {
        "eks": MEMBER_ATTEMPTS,
        "cloudwatch": MEMBER_ATTEMPTS,
        "resourcegroupstaggingapi": 0,
        "elbv2": 0,
        "autoscaling": 0,
    }
    assert time.spent <= 2 * MEMBER_CALL_SECONDS
    # AND the checks whose endpoint did not answer say why they did not run, the load-balancer
    # check says it was not checked, neither passed nor failed, and the run is partial naming it
    [report] = result["clusters"]
    checks = {check["name"]: check for check in report["checks"]}
    for name in ("cluster_status", "node_group", "capacity", "alarm"):
        assert (checks[name]["status"], checks[name]["severity"]) == ("failed", "warning"), name
        assert "Read timeout" in checks[name]["detail"], name
    assert checks["load_balancer"] == {
        "name": "load_balancer",
        "target": "dev-apps",
        "status": "not_checked",
        "detail": "not checked: too little time left",
    }
    assert report["not_checked"] == ["load_balancer"]
    assert result["status"] == "partial"
    assert result["not_checked"] == [f"{FAULTY_MEMBER}/{REGION}/dev-apps/load_balancer"]
    # AND only the four checks that could not run raised alerts: nothing about the load balancers
    assert report["alerts"] == {"sent": 4, "resolved": 0, "suppressed": 0}


def test_a_check_not_checked_for_lack_of_time_leaves_its_open_incident_as_it_is(
    invoke: Invoke,
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    state_table: StateTable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the load-balancer check's "could not run" incident, opened by a run with the
    # function's whole timeout in which the member's Tagging API (its load balancers' finding)
    # did not answer
    use_endpoints([])
    services = health_services()
    first_time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    tagging = member_client(services, "resourcegroupstaggingapi")
    config = tagging.meta.config
    hung = EndpointThatNeverAnswers(first_time, config.connect_timeout + config.read_timeout)
    event = f"before-send.{tagging.meta.service_model.service_id.hyphenize()}"
    tagging.meta.events.register_first(event, hung)
    first = invoke(CLUSTER_RUN, first_time.context())
    checks = {check["name"]: check for check in first["clusters"][0]["checks"]}
    assert checks["load_balancer"]["detail"].startswith("check could not run: ")
    tagging.meta.events.unregister(event, hung)
    incident = incident_key(
        alert_id(
            "health_monitor",
            f"{FAULTY_MEMBER}/{REGION}/dev-apps/load_balancer/dev-apps",
            "dev-apps: load_balancer check failed for dev-apps",
        )
    )
    before = state_table.get_value(incident, INCIDENT_VALUE)
    assert before is not None

    # WHEN a later run comes to the cluster with 40 s left during a regional outage
    time = LambdaTime(40).spend_botocore_waits(monkeypatch)
    hang_member_region(services, time)
    result = invoke(CLUSTER_RUN, time.context())

    # THEN the load-balancer check was not checked, and its incident is open as it was: not
    # resolved for a check that did not run, nor escalated
    [report] = result["clusters"]
    assert report["not_checked"] == ["load_balancer"]
    assert report["alerts"]["resolved"] == 0
    assert state_table.get_value(incident, INCIDENT_VALUE) == before


def test_a_cluster_whose_checks_passed_but_one_was_not_checked_is_not_reported_healthy(
    invoke: Invoke,
    *,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
) -> None:
    # GIVEN every member endpoint answers, and the run has 21 s left when it starts the cluster
    # and asks its first 5 member calls, then 19 s when the load-balancer check would call
    use_endpoints([])
    context = ContextRunningOutOfTime(millis_left=[21_000] * 6 + [19_000])

    # WHEN the run checks the cluster
    result = invoke(CLUSTER_RUN, context)

    # THEN every check that ran passed, the load-balancer check was not checked, and neither the
    # cluster nor the run says healthy
    [report] = result["clusters"]
    assert {check["name"]: check["status"] for check in report["checks"]} == {
        "cluster_status": "passed",
        "node_group": "passed",
        "capacity": "passed",
        "alarm": "passed",
        "load_balancer": "not_checked",
    }
    assert report["status"] == "not_checked"
    assert result["status"] == "partial"
