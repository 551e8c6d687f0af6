"""Fixtures of the health_monitor tests: a member account with an EKS cluster, its node group's
Auto Scaling group, CloudWatch alarms, HTTP endpoints on 127.0.0.1 and the handler wired to them.

moto's EKS reports an Auto Scaling group name for each node group but does not create that group
in its Auto Scaling backend, so `MemberCluster` creates it (with that exact name) in the member
account, as EKS would. moto has no API to put a node group or cluster into a failed state or to
add health issues; `MemberCluster.set_*` sets them on moto's backend objects, which is test set-up
of the data DescribeCluster/DescribeNodegroup return, not a change of what the handler does.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.eks.models import eks_backends

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.state_table import StateTable
from handlers.health_monitor import app
from handlers.health_monitor.environment import HealthEnvironment
from handlers.health_monitor.services import HealthServices
from tests.handlers.local_peers import LocalPeer, PeerReply, PeerRequest, http_answer
from tests.handlers.member_accounts import create_cluster_with_node_group
from tests.handlers.member_accounts import member_session as member_role_session

REGION = "ap-south-1"
HUB = "123456789012"
MEMBER = "222222222222"
CLUSTER = "dev-apps"
NODE_GROUP = "system"
DATA_BUCKET = "lambda-fleet-data"
INVENTORY_KEY = "config/fleet-inventory.json"


def member_session(account_id: str = MEMBER) -> boto3.Session:
    """A session acting in `account_id` through the member role, as the handler gets one."""
    return member_role_session(account_id, REGION)


@dataclass
class MemberCluster:
    """The EKS cluster `dev-apps` with node group `system` in a member account."""

    session: boto3.Session
    account_id: str
    asg_name: str

    def instance_ids(self) -> list[str]:
        group = self.session.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.asg_name]
        )["AutoScalingGroups"][0]
        return [instance["InstanceId"] for instance in group["Instances"]]

    def mark_unhealthy(self, count: int) -> None:
        autoscaling = self.session.client("autoscaling")
        for instance_id in self.instance_ids()[:count]:
            autoscaling.set_instance_health(InstanceId=instance_id, HealthStatus="Unhealthy")

    def set_cluster_status(self, status: str) -> None:
        eks_backends[self.account_id][REGION].clusters[CLUSTER].status = status

    def set_node_group_health(self, status: str, issues: list[dict[str, Any]]) -> None:
        group = eks_backends[self.account_id][REGION].clusters[CLUSTER].nodegroups[NODE_GROUP]
        group.status = status
        group.health = {"issues": issues}

    def put_alarm(self, name: str, state: str, reason: str = "threshold crossed") -> str:
        cloudwatch = self.session.client("cloudwatch")
        return put_alarm(cloudwatch, name, state, reason)


def put_alarm(cloudwatch: Any, name: str, state: str, reason: str) -> str:
    """Create a metric alarm on the cluster's node CPU and set its state; returns its ARN."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="ContainerInsights",
        MetricName="node_cpu_utilization",
        Dimensions=[{"Name": "ClusterName", "Value": CLUSTER}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=80,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    return str(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"])


def create_member_cluster(account_id: str, desired: int = 2) -> MemberCluster:
    """Cluster, node group, and the node group's Auto Scaling group with `desired` instances."""
    session = member_session(account_id)
    asg_name = create_cluster_with_node_group(
        session, CLUSTER, NODE_GROUP, desired=desired, max_size=6
    )
    return MemberCluster(session, account_id, asg_name)


@pytest.fixture(autouse=True)
def _no_default_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto loads ~1,300 AMIs per account and region unless told not to; none is needed here."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(autouse=True)
def _latency_thresholds_no_loaded_machine_reaches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Endpoint latency is wall time: on a machine loaded by other work a local peer's answer
    took over the default warning of 1,000 ms, and a healthy cluster read as a warning. Tests
    of the thresholds set their own."""
    monkeypatch.setenv("HEALTH_LATENCY_WARNING_MS", "30000")
    monkeypatch.setenv("HEALTH_LATENCY_CRITICAL_MS", "60000")


@pytest.fixture(autouse=True)
def _no_garbage_collection_within_a_test() -> Iterator[None]:
    """The cyclic garbage collector runs between the tests, not during one. A probe's timeout is
    wall time, and a collection stops every thread of the process: a full one of a test process
    holding its earlier tests' moto backends took 2-4 s on a loaded machine, and a healthy
    endpoint probed meanwhile (2 s timeout) read as timed out: its check failed, with one more
    alert. Garbage without cycles still goes at once; a test's cycles go after it."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


@pytest.fixture
def make_member_cluster(mocked_aws: None) -> Callable[..., MemberCluster]:
    """`create_member_cluster`, for tests that need another size or account."""
    return create_member_cluster


@pytest.fixture
def member_eks(mocked_aws: None) -> Any:
    """An EKS client of the member account, for tests that build an unusual cluster."""
    return member_session().client("eks")


@pytest.fixture
def member_cluster(mocked_aws: None) -> MemberCluster:
    """The member's cluster with 2 of 2 desired instances ready."""
    return create_member_cluster(MEMBER)


@dataclass
class EndpointServer:
    """HTTP endpoints on 127.0.0.1: each path answers with a settable status after a delay."""

    base_url: str
    routes: dict[str, tuple[int, float]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def reply(self, request: PeerRequest) -> PeerReply:
        """The answer of the request's route (404 for a path without one), sent after its
        delay; a 3xx redirects to `/healthy`."""
        status, delay = self.routes.get(request.path, (404, 0.0))
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        headers = {"content-type": "application/json"}
        if 300 <= status < 400:
            headers["location"] = "/healthy"
        answer = http_answer(status, headers, json.dumps({"status": status}).encode())
        return PeerReply(pieces=[answer], pause_seconds=delay)


@pytest.fixture
def endpoint_server() -> Iterator[EndpointServer]:
    """`/healthy` 200 at once, `/slow` 200 after 150 ms, `/error` 500, `/moved` 302 to
    `/healthy`, others 404; a route given another 3xx status redirects to `/healthy` too."""
    server_state = EndpointServer(base_url="")
    server_state.routes.update(
        {"/healthy": (200, 0.0), "/slow": (200, 0.15), "/error": (500, 0.0), "/moved": (302, 0.0)}
    )
    with LocalPeer.responding(server_state.reply) as peer:
        server_state.base_url = peer.url("")
        yield server_state


@pytest.fixture
def write_inventory(
    inventory_in_s3: dict[str, Any],
) -> Callable[[dict[str, Any]], None]:
    """Replace the inventory in the data bucket."""

    def write(document: dict[str, Any]) -> None:
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=DATA_BUCKET, Key=INVENTORY_KEY, Body=json.dumps(document).encode()
        )

    return write


@pytest.fixture
def inventory(
    inventory_document: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    endpoint_server: EndpointServer,
) -> dict[str, Any]:
    """The sample inventory, its cluster's endpoint `api` pointing at the local `/healthy`."""
    inventory_document["members"][0]["clusters"][0]["health_endpoints"] = [
        {"name": "api", "url": endpoint_server.url("/healthy"), "timeout_seconds": 2.0}
    ]
    write_inventory(inventory_document)
    return inventory_document


@pytest.fixture
def use_endpoints(
    inventory: dict[str, Any], write_inventory: Callable[[dict[str, Any]], None]
) -> Callable[[list[dict[str, Any]]], None]:
    """Give the sample cluster other health endpoints and store the inventory."""

    def use(endpoints: list[dict[str, Any]]) -> None:
        inventory["members"][0]["clusters"][0]["health_endpoints"] = endpoints
        write_inventory(inventory)

    return use


@pytest.fixture
def health_services(
    state_table: StateTable,
    fake_clock: ManualClock,
    fleet_environment: dict[str, str],
    alert_inbox: Any,
) -> Callable[[], HealthServices]:
    """The services the handler gets: the state table, the fake clock and the environment as it
    is when called. Sessions and clients are built once per test, as once per container in
    Lambda (the member role's credentials use real time, as moto stamps them), so a fault
    injected in a hub client reaches the handler."""
    built_services: list[HealthServices] = []

    def services() -> HealthServices:
        if not built_services:
            built_services.append(
                HealthServices.create(
                    app.FUNCTION.name, load_environment(HealthEnvironment), clock=fake_clock
                )
            )
        # The environment is read per call, so a test can change a variable between runs.
        return dataclasses.replace(
            built_services[0], environment=load_environment(HealthEnvironment)
        )

    return services


@pytest.fixture
def invoke(
    health_services: Callable[[], HealthServices],
    *,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., dict[str, Any]]:
    """Call `lambda_handler(event, context)` with `health_services` (and the test's Lambda
    context unless one is given)."""

    def call(event: Any, context: Any = None) -> dict[str, Any]:
        monkeypatch.setattr(app.FUNCTION, "services", health_services)
        return app.lambda_handler(event, context or lambda_context)

    return call
