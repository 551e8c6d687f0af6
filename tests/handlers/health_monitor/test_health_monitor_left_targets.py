"""The check incident of a target that left a cluster still in the fleet (a node group deleted, an
endpoint removed from the inventory) is resolved once by the next run that completes the
cluster's checks, not forgotten open a week later; a run that did not complete them resolves
nothing of the cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.eks.models import eks_backends

from fleet_shared.alerts import Severity
from fleet_shared.handler import Invocation
from fleet_shared.sessions import MEMBER_CALL_CONFIG
from handlers.health_monitor.incidents import (
    CHECK_INCIDENTS,
    Scope,
    check_incidents_key,
    settle_incidents,
)
from handlers.health_monitor.report import CheckResult
from tests.handlers.deadlines import ContextRunningOutOfTime
from tests.handlers.faults import InjectedRefusal
from tests.handlers.health_monitor.bad_incident_entries import put_bad_incident_entries
from tests.handlers.health_monitor.conftest import CLUSTER, MEMBER, REGION, MemberCluster
from tests.handlers.health_monitor.fleet_runs import (
    CADENCE_SECONDS,
    FLEET_EVENT,
    Invoke,
    run_refused_by_sns_then_retried,
    scheduled_runs,
)
from tests.handlers.unreadable_state_entries import SECRET

DELETED_GROUP = "batch"
GROUP_LEFT = f"{DELETED_GROUP} left cluster {CLUSTER}: the node_group check no longer finds it"
CAPACITY_LEFT = f"{DELETED_GROUP} left cluster {CLUSTER}: the capacity check no longer finds it"
NODE_GROUP_RESOURCE = f"{MEMBER}/{REGION}/{CLUSTER}/node_group/{DELETED_GROUP}"
CAPACITY_RESOURCE = f"{MEMBER}/{REGION}/{CLUSTER}/capacity/{DELETED_GROUP}"
STILL_THERE_RESOURCE = f"{MEMBER}/{REGION}/{CLUSTER}/node_group/system"
MILLIS_ENOUGH = 30_000
MILLIS_SHORT_OF_A_MEMBER_CALL = 10_000
"""Less than one hung member call and the report after it (`MEMBER_CALL_SECONDS_LEFT`, 20 s)."""


def notices(alert_inbox: Any) -> list[tuple[str, bool, str]]:
    """(resource, resolved, detail) of the alerts received since the last call, in order."""
    return [
        (received.alert["resource"], received.alert["resolved"], received.alert["detail"])
        for received in alert_inbox.receive()
    ]


def resolutions(alert_inbox: Any) -> list[tuple[str, str]]:
    """(resource, detail) of the resolutions received since the last call, sorted."""
    return sorted(
        (resource, detail) for resource, resolved, detail in notices(alert_inbox) if resolved
    )


def member_eks_client(health_services: Callable[[], Any]) -> Any:
    """The member's EKS client, as the monitor's checks get it."""
    return health_services().sessions.client("eks", MEMBER, REGION, MEMBER_CALL_CONFIG)


@pytest.fixture
def degraded_group_alerted(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    member_cluster: MemberCluster,
    member_eks: Any,
    inventory: dict[str, Any],
) -> None:
    """A second node group, `batch` (not in the inventory: no Auto Scaling group either),
    DEGRADED, and `system` DEGRADED too: a fleet run opened the node_group and capacity
    incidents of `batch` and the node_group incident of `system`."""
    member_eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName=DELETED_GROUP,
        nodeRole=f"arn:aws:iam::{MEMBER}:role/eks-node",
        subnets=["subnet-0a", "subnet-0b"],
        scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": 2},
    )
    eks_backends[MEMBER][REGION].clusters[CLUSTER].nodegroups[DELETED_GROUP].status = "DEGRADED"
    member_cluster.set_node_group_health("DEGRADED", [])
    scheduled_runs(invoke, fake_clock, 1)
    opened = sorted(resource for resource, resolved, _ in notices(alert_inbox) if not resolved)
    assert opened == [CAPACITY_RESOURCE, NODE_GROUP_RESOURCE, STILL_THERE_RESOURCE]


@pytest.fixture
def group_deleted(degraded_group_alerted: None, member_eks: Any) -> None:
    """The node group `batch`, its incidents open, deleted from the cluster."""
    member_eks.delete_nodegroup(clusterName=CLUSTER, nodegroupName=DELETED_GROUP)


def test_the_incidents_of_a_deleted_node_group_are_resolved_once_by_the_next_complete_run(
    invoke: Invoke, fake_clock: Any, alert_inbox: Any, group_deleted: None
) -> None:
    # GIVEN open node_group and capacity incidents of a node group deleted from its cluster,
    # and an open incident of a node group still there
    # WHEN the next fleet runs complete the cluster's checks
    results = scheduled_runs(invoke, fake_clock, 3)
    # THEN the first resolves each incident of the deleted group once, saying it left
    assert resolutions(alert_inbox) == [
        (CAPACITY_RESOURCE, CAPACITY_LEFT),
        (NODE_GROUP_RESOURCE, GROUP_LEFT),
    ]
    [first] = results[0]["clusters"]
    assert first["alerts"] == {"sent": 0, "resolved": 2, "suppressed": 1}
    # AND the runs after it send nothing more, and the group still there stays open
    assert [run["clusters"][0]["alerts"]["resolved"] for run in results[1:]] == [0, 0]


def test_the_incidents_of_a_deleted_node_group_are_resolved_past_list_entries_it_cannot_read(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    group_deleted: None,
    dynamodb_client: Any,
) -> None:
    # GIVEN open incidents of a node group deleted from its cluster, and beside their entries in
    # the cluster's list of check incidents one entry of each bad shape (hand edits: no JSON,
    # no object, no check, a check that is no text)
    errors = put_bad_incident_entries(
        dynamodb_client, check_incidents_key(f"{MEMBER}/{REGION}/{CLUSTER}"), ("check", "target")
    )
    # WHEN the next fleet run completes the cluster's checks
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN each incident of the deleted group is resolved once, and each bad entry is one of the
    # cluster's errors naming it, never its data
    assert resolutions(alert_inbox) == [
        (CAPACITY_RESOURCE, CAPACITY_LEFT),
        (NODE_GROUP_RESOURCE, GROUP_LEFT),
    ]
    [cluster] = result["clusters"]
    assert cluster["errors"] == [f"check incident could not be read: {error}" for error in errors]
    assert SECRET not in str(result)


def test_the_settled_incidents_of_a_deleted_node_group_are_forgotten_from_the_cluster_list(
    invoke: Invoke, fake_clock: Any, group_deleted: None, state_table: Any
) -> None:
    # GIVEN open incidents of a node group deleted from its cluster
    listed_key = f"health_monitor/{CHECK_INCIDENTS}/{MEMBER}/{REGION}/{CLUSTER}"
    assert len(state_table.values_named(listed_key, "")) == 3
    # WHEN two complete runs resolve and then settle them
    scheduled_runs(invoke, fake_clock, 2)
    # THEN the cluster's list keeps only the incident of the group still there
    assert [entry["target"] for entry in state_table.values_named(listed_key, "").values()] == [
        "system"
    ]


@pytest.fixture
def node_groups_unlisted(health_services: Callable[[], Any]) -> Iterator[Callable[[], None]]:
    """EKS refusing ListNodegroups (AccessDenied) until healed: the node_group and capacity
    checks cannot run."""
    events = member_eks_client(health_services).meta.events
    refusal = InjectedRefusal("AccessDeniedException")
    events.register_first("before-send.eks.ListNodegroups", refusal)

    def heal() -> None:
        events.unregister("before-send.eks.ListNodegroups", refusal)

    yield heal
    heal()


def test_a_run_whose_node_group_check_could_not_run_resolves_nothing_of_the_cluster(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    group_deleted: None,
    node_groups_unlisted: Callable[[], None],
) -> None:
    # GIVEN open incidents of a node group deleted from its cluster
    # AND EKS refusing to list the cluster's node groups
    # WHEN the next fleet run checks the cluster
    [result] = scheduled_runs(invoke, fake_clock, 1)
    # THEN the node_group check could not run, and no incident is resolved
    checks = {check["name"]: check for check in result["clusters"][0]["checks"]}
    assert checks["node_group"]["detail"].startswith("check could not run: ")
    assert resolutions(alert_inbox) == []
    # WHEN EKS lists the node groups again and the next runs complete the cluster's checks
    node_groups_unlisted()
    scheduled_runs(invoke, fake_clock, 2)
    # THEN the incidents of the deleted group are resolved, once (and those of the checks that
    # could not run, which ran)
    assert resolutions(alert_inbox) == [
        (CAPACITY_RESOURCE, CAPACITY_LEFT),
        (f"{MEMBER}/{REGION}/{CLUSTER}/capacity/{CLUSTER}", "passed again: check ran"),
        (NODE_GROUP_RESOURCE, GROUP_LEFT),
        (f"{MEMBER}/{REGION}/{CLUSTER}/node_group/{CLUSTER}", "passed again: check ran"),
    ]


def test_a_run_whose_node_group_check_ran_out_of_time_resolves_nothing_of_the_cluster(
    invoke: Invoke, fake_clock: Any, alert_inbox: Any, group_deleted: None
) -> None:
    # GIVEN open incidents of a node group deleted from its cluster
    # WHEN the next fleet run has time for the cluster's start and DescribeCluster only
    fake_clock.advance(CADENCE_SECONDS)
    short = invoke(
        FLEET_EVENT,
        ContextRunningOutOfTime(
            millis_left=[MILLIS_ENOUGH, MILLIS_ENOUGH, MILLIS_SHORT_OF_A_MEMBER_CALL]
        ),
    )
    # THEN the node_group check is not checked, and no incident is resolved
    assert "node_group" in short["clusters"][0]["not_checked"]
    assert resolutions(alert_inbox) == []
    # WHEN the next run completes the cluster's checks
    scheduled_runs(invoke, fake_clock, 1)
    # THEN the incidents of the deleted group are resolved, once
    assert resolutions(alert_inbox) == [
        (CAPACITY_RESOURCE, CAPACITY_LEFT),
        (NODE_GROUP_RESOURCE, GROUP_LEFT),
    ]


def test_a_node_group_that_could_not_be_described_keeps_its_capacity_incident_open(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    degraded_group_alerted: None,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN open incidents of a node group still in its cluster
    # AND EKS refusing to describe it: the capacity check skips it, the node_group check names it
    member_eks_client(health_services).meta.events.register_first(
        "before-send.eks.DescribeNodegroup", InjectedRefusal("AccessDeniedException")
    )
    # WHEN the next fleet runs check the cluster
    scheduled_runs(invoke, fake_clock, 2)
    # THEN no incident is resolved as left: the group is there, only not described
    assert resolutions(alert_inbox) == []


def test_the_incident_of_an_endpoint_removed_from_the_inventory_is_resolved_once(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    member_cluster: MemberCluster,
    endpoint_server: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
) -> None:
    # GIVEN an endpoint answering 500, its incident opened by a fleet run
    healthy = {"name": "api", "url": endpoint_server.url("/healthy"), "timeout_seconds": 2.0}
    broken = {"name": "legacy", "url": endpoint_server.url("/error"), "timeout_seconds": 2.0}
    use_endpoints([healthy, broken])
    scheduled_runs(invoke, fake_clock, 1)
    resource = f"{MEMBER}/{REGION}/{CLUSTER}/endpoint/legacy"
    assert [(where, resolved) for where, resolved, _ in notices(alert_inbox)] == [(resource, False)]
    # WHEN the endpoint is removed from the inventory and the fleet runs go on
    use_endpoints([healthy])
    scheduled_runs(invoke, fake_clock, 3)
    # THEN its incident is resolved once, saying it left the cluster
    assert resolutions(alert_inbox) == [
        (resource, f"legacy left cluster {CLUSTER}: the endpoint check no longer finds it")
    ]


def test_the_incident_of_a_removed_endpoint_named_like_a_node_group_is_resolved_once(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    member_cluster: MemberCluster,
    endpoint_server: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
) -> None:
    # GIVEN an endpoint answering 500 named like the cluster's node group `system`, its incident
    # opened by a fleet run
    name = "system"
    healthy = {"name": "api", "url": endpoint_server.url("/healthy"), "timeout_seconds": 2.0}
    broken = {"name": name, "url": endpoint_server.url("/error"), "timeout_seconds": 2.0}
    use_endpoints([healthy, broken])
    scheduled_runs(invoke, fake_clock, 1)
    resource = f"{MEMBER}/{REGION}/{CLUSTER}/endpoint/{name}"
    assert [(where, resolved) for where, resolved, _ in notices(alert_inbox)] == [(resource, False)]
    # WHEN the endpoint is removed from the inventory and the fleet runs go on: the node_group
    # check still names `system`
    use_endpoints([healthy])
    scheduled_runs(invoke, fake_clock, 3)
    # THEN the endpoint's incident is resolved once all the same, saying it left the cluster
    assert resolutions(alert_inbox) == [
        (resource, f"{name} left cluster {CLUSTER}: the endpoint check no longer finds it")
    ]


def test_a_resolution_of_a_left_target_sns_did_not_take_is_sent_once_by_the_retry(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    group_deleted: None,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN open incidents of a node group deleted from its cluster, and SNS failing every
    # attempt of Publish
    # WHEN the scheduled run happens
    # THEN it fails, so the platform retries it, and nothing went out
    # WHEN SNS answers again, the platform retries the run twice and the next runs happen
    run_refused_by_sns_then_retried(
        invoke,
        fake_clock,
        health_services().hub_client("sns"),
        lambda: resolutions(alert_inbox),
        retries=2,
    )
    # THEN each resolution went out once
    assert resolutions(alert_inbox) == [
        (CAPACITY_RESOURCE, CAPACITY_LEFT),
        (NODE_GROUP_RESOURCE, GROUP_LEFT),
    ]


@dataclass
class ClusterListUnreadable:
    """Refuses (AccessDeniedException) every read of the sample cluster's list of check
    incidents until healed."""

    refusal: InjectedRefusal = field(
        default_factory=lambda: InjectedRefusal("AccessDeniedException")
    )
    healed: bool = False

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        listed = f"{CHECK_INCIDENTS}/{MEMBER}/{REGION}/{CLUSTER}".encode()
        if self.healed or listed not in request.body:
            return None
        return self.refusal(request, **kwargs)


def test_a_run_that_cannot_read_the_cluster_list_fails_and_the_retry_resolves_once(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    group_deleted: None,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN open incidents of a node group deleted from its cluster
    # AND DynamoDB refusing every read of the cluster's list of check incidents
    fault = ClusterListUnreadable()
    health_services().hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.Query", fault
    )
    # WHEN the scheduled run happens
    fake_clock.advance(CADENCE_SECONDS)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        invoke(FLEET_EVENT)
    # THEN it fails, so the platform retries it, and resolves nothing
    assert resolutions(alert_inbox) == []
    # WHEN DynamoDB answers again and the platform retries the run, twice
    fault.healed = True
    fake_clock.advance(60)
    invoke(FLEET_EVENT)
    invoke(FLEET_EVENT)
    # THEN the incidents of the deleted group are resolved, once
    assert resolutions(alert_inbox) == [
        (CAPACITY_RESOURCE, CAPACITY_LEFT),
        (NODE_GROUP_RESOURCE, GROUP_LEFT),
    ]


def test_an_open_incident_of_a_thing_other_clusters_see_is_not_resolved_as_left(
    invoke: Invoke,
    fake_clock: Any,
    alert_inbox: Any,
    *,
    member_cluster: MemberCluster,
    inventory: dict[str, Any],
    health_services: Callable[[], Any],
) -> None:
    # GIVEN an open incident of an alarm seen while checking the cluster, with a resource of its
    # own (its ARN) and no state time, so listed under the cluster
    arn = f"arn:aws:cloudwatch:{REGION}:{MEMBER}:alarm:cpu-high"
    alarm = CheckResult.failed(
        "alarm", "cpu-high", Severity.WARNING, "ALARM", resource=arn, title="alarm cpu-high"
    )
    scope = Scope(MEMBER, REGION, CLUSTER)
    settle_incidents([alarm], health_services(), scope, Invocation.local())
    assert [resource for resource, _, _ in notices(alert_inbox)] == [arn]
    # WHEN fleet runs complete the cluster's checks, which no longer list the alarm in ALARM
    scheduled_runs(invoke, fake_clock, 2)
    # THEN its incident is not resolved as a target that left the cluster
    assert resolutions(alert_inbox) == []
