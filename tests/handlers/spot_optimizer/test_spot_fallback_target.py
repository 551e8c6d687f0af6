"""Which on-demand node group the spot fallback's +1 goes to: the first, by name, that a cluster
schedule resets and that no autoscaler manages (Cluster Autoscaler where the stack file declares
it, Karpenter by its tags), as eks_scaler leaves autoscaler-managed groups alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet_shared.node_group_locks import node_group_key
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.member_accounts import MEMBER_A, REGION, member_session
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    change_the_inventory,
    change_the_inventory_document,
    desired_size,
    next_batch_spot_warning,
)

MakeServices = Callable[..., SpotServices]
Invoke = Callable[..., dict[str, Any]]

DISCOVERY_TAGS = {
    "k8s.io/cluster-autoscaler/enabled": "true",
    f"k8s.io/cluster-autoscaler/{CLUSTER}": "owned",
}
"""What EKS puts on every managed node group's Auto Scaling group, Cluster Autoscaler or not."""


def add_on_demand_group(member_eks: Any, name: str, *, scheduled: bool) -> None:
    """An ON_DEMAND node group `name` of dev-apps at desired 2 of 1..4, listed in the inventory
    and, when `scheduled`, sized by the cluster schedule (its `off_hours_desired`)."""
    member_eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName=name,
        nodeRole=f"arn:aws:iam::{MEMBER_A}:role/eks-node",
        subnets=["subnet-1"],
        capacityType="ON_DEMAND",
        instanceTypes=["m7g.large"],
        scalingConfig={"minSize": 1, "desiredSize": 2, "maxSize": 4},
    )

    def list_it(cluster: dict[str, Any]) -> None:
        cluster["node_groups"].append(
            {
                "name": name,
                "capacity_type": "ON_DEMAND",
                "instance_types": ["m7g.large"],
                "min_size": 1,
                "desired_size": 2,
                "max_size": 4,
                "floor": 1,
            }
        )
        if scheduled:
            cluster["schedule"]["off_hours_desired"][name] = 1

    change_the_inventory(list_it)


def declare_cluster_autoscaler_on(member_eks: Any, *node_groups: str) -> None:
    """The stack file declares Cluster Autoscaler for dev-apps, and the Auto Scaling groups of
    `node_groups` carry its discovery tags (moto names them but does not create them)."""

    def declare(cluster: dict[str, Any]) -> None:
        cluster["autoscaler"] = "cluster-autoscaler"

    change_the_inventory(declare)
    autoscaling = member_session(MEMBER_A).client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="lc-nodes", ImageId="ami-12345678", InstanceType="t3.micro"
    )
    for node_group in node_groups:
        described = member_eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName=node_group)
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=described["nodegroup"]["resources"]["autoScalingGroups"][0][
                "name"
            ],
            LaunchConfigurationName="lc-nodes",
            MinSize=0,
            MaxSize=0,
            AvailabilityZones=[f"{REGION}a"],
            Tags=[
                {"Key": key, "Value": value, "PropagateAtLaunch": False}
                for key, value in DISCOVERY_TAGS.items()
            ],
        )


def past_the_threshold(make_services: MakeServices, *, auto_apply: bool = True) -> SpotServices:
    """Services whose threshold is 0 interruptions an hour, so the first warning of batch-spot
    starts the fallback (the threshold's own counting is tested in test_spot_optimizer.py)."""
    return make_services(
        SPOT_AUTO_APPLY="true" if auto_apply else "false", SPOT_INTERRUPTION_THRESHOLD="0"
    )


def no_change_recorded(services: SpotServices, node_group: str) -> bool:
    key = node_group_key(MEMBER_A, REGION, CLUSTER, node_group)
    return services.state.latest_change(key) is None


def test_the_fallback_passes_over_an_on_demand_group_cluster_autoscaler_manages(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, Cluster Autoscaler declared for dev-apps and managing `apps` (first
    # by name, scheduled), and the scheduled on-demand group system it does not manage
    add_on_demand_group(member_eks, "apps", scheduled=True)
    declare_cluster_autoscaler_on(member_eks, "apps")
    services = past_the_threshold(make_services)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN system gets the +1, and apps, whose size the autoscaler sets, is left alone, saying why
    fallback = result["fallback"]
    assert fallback["status"] == "scaling_initiated"
    assert fallback["nodegroup"] == "system"
    assert desired_size(member_eks, "system") == 3
    assert desired_size(member_eks, "apps") == 2
    assert no_change_recorded(services, "apps")
    [passed_over] = fallback["passed_over"]
    assert passed_over["nodegroup"] == "apps"
    assert "managed by cluster-autoscaler" in passed_over["reason"]


def test_no_fallback_when_an_autoscaler_manages_every_on_demand_group(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, and Cluster Autoscaler declared for dev-apps and managing system, its
    # only on-demand group
    declare_cluster_autoscaler_on(member_eks, "system")
    services = past_the_threshold(make_services)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN nothing is proposed or changed: the autoscaler answers the lost capacity itself
    fallback = result["fallback"]
    assert fallback["status"] == "autoscaler_managed"
    assert "managed by cluster-autoscaler" in fallback["reason"]
    assert fallback["passed_over"][0]["nodegroup"] == "system"
    assert desired_size(member_eks, "system") == 2
    assert no_change_recorded(services, "system")
    # AND the interruption itself is still recorded
    assert result["status"] == "recorded"


def test_discovery_tags_without_a_declared_autoscaler_do_not_stop_the_fallback(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, system's Auto Scaling group with the tags EKS puts on every managed
    # node group, and the stack file declaring no autoscaler for dev-apps
    declare_cluster_autoscaler_on(member_eks, "system")

    def declare_none(cluster: dict[str, Any]) -> None:
        cluster["autoscaler"] = "none"

    change_the_inventory(declare_none)
    services = past_the_threshold(make_services)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN system gets its +1
    assert result["fallback"]["status"] == "scaling_initiated"
    assert desired_size(member_eks, "system") == 3


def test_the_fallback_looks_past_an_unscheduled_on_demand_group_to_a_scheduled_one(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, an on-demand group `apps` (first by name) that no cluster schedule
    # sizes, and system, which the schedule resets every evening
    add_on_demand_group(member_eks, "apps", scheduled=False)
    services = past_the_threshold(make_services)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN system gets the +1 (the evening scale-down takes it back), and apps is left alone
    fallback = result["fallback"]
    assert fallback["status"] == "scaling_initiated"
    assert fallback["nodegroup"] == "system"
    assert desired_size(member_eks, "system") == 3
    assert desired_size(member_eks, "apps") == 2
    [passed_over] = fallback["passed_over"]
    assert passed_over["nodegroup"] == "apps"
    assert "no cluster schedule resets apps" in passed_over["reason"]


def test_a_proposal_names_the_on_demand_group_the_fallback_would_apply_to(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply off, an unscheduled on-demand group `apps` first by name, and system
    # scheduled
    add_on_demand_group(member_eks, "apps", scheduled=False)
    services = past_the_threshold(make_services, auto_apply=False)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN the +1 proposed is system's, the one auto-apply would make
    fallback = result["fallback"]
    assert fallback["status"] == "proposed"
    assert fallback["nodegroup"] == "system"
    assert fallback["new"]["desired_size"] == 3
    assert desired_size(member_eks, "system") == 2


def test_with_the_scaler_switched_off_the_fallback_only_proposes_the_plus_one_no_schedule_resets(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, and a stack that switched eks_scaler off: the inventory still gives
    # dev-apps its schedule (sizing system), but no scheduled scale-down or restore runs
    change_the_inventory_document(lambda document: document["functions"].pop("eks_scaler"))
    services = past_the_threshold(make_services)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN the +1 of system is proposed, not made: nothing would ever take it back
    fallback = result["fallback"]
    assert fallback["status"] == "proposed"
    assert fallback["nodegroup"] == "system"
    assert "eks_scaler, which runs the cluster schedules, is switched off" in fallback["note"]
    assert desired_size(member_eks, "system") == 2
    assert no_change_recorded(services, "system")


def test_an_on_demand_group_the_stack_file_does_not_declare_is_never_proposed(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, system (dev-apps' only declared on-demand group) managed by Cluster
    # Autoscaler, and an on-demand group adhoc in EKS that the stack file does not declare
    declare_cluster_autoscaler_on(member_eks, "system")
    member_eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName="adhoc",
        nodeRole=f"arn:aws:iam::{MEMBER_A}:role/eks-node",
        subnets=["subnet-1"],
        capacityType="ON_DEMAND",
        instanceTypes=["m7g.large"],
        scalingConfig={"minSize": 1, "desiredSize": 2, "maxSize": 4},
    )
    services = past_the_threshold(make_services)
    # WHEN an interruption of batch-spot exceeds the threshold
    result = invoke(next_batch_spot_warning(services), services, "inv-1")
    # THEN no group is proposed or changed: adhoc is passed over as undeclared, system as managed
    fallback = result["fallback"]
    assert fallback["status"] == "no_on_demand_group"
    assert "nodegroup" not in fallback
    reasons = {entry["nodegroup"]: entry["reason"] for entry in fallback["passed_over"]}
    assert "not declared in the stack file" in reasons["adhoc"]
    assert "managed by cluster-autoscaler" in reasons["system"]
    assert desired_size(member_eks, "adhoc") == 2
    assert no_change_recorded(services, "adhoc")
