"""Node groups managed by Cluster Autoscaler or Karpenter (moto EKS and Auto Scaling): reported
by `analyze`, left alone by the schedule, changed only on an explicit, recorded override."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, event, member_session, sizes

from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateTable

EVENING_SCALE_DOWN = ({"name": "system", "desired_size": 1}, {"name": "web", "desired_size": 2})


def by_group(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["nodegroup"]: item for item in result["results"]}


def tag_auto_scaling_group(member_eks: Any, node_group: str, tags: dict[str, str]) -> str:
    """Create the Auto Scaling group EKS names for `node_group`, with `tags` (moto names it but
    does not create it); its name."""
    described = member_eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName=node_group)
    name: str = described["nodegroup"]["resources"]["autoScalingGroups"][0]["name"]
    autoscaling = member_session().client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"lc-{node_group}", ImageId="ami-12345678", InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"lc-{node_group}",
        MinSize=0,
        MaxSize=0,
        AvailabilityZones=[f"{REGION}a"],
        Tags=[
            {"Key": key, "Value": value, "PropagateAtLaunch": False} for key, value in tags.items()
        ],
    )
    return name


DISCOVERY_TAGS = {
    "k8s.io/cluster-autoscaler/enabled": "true",
    f"k8s.io/cluster-autoscaler/{CLUSTER}": "owned",
}
"""What EKS puts on every managed node group's Auto Scaling group, Cluster Autoscaler or not."""


def declare_cluster_autoscaler(inventory: dict[str, Any], environment: dict[str, str]) -> None:
    """The inventory as the program writes it for `autoscaler: cluster-autoscaler`."""
    inventory["members"][0]["clusters"][0]["autoscaler"] = "cluster-autoscaler"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=environment["DATA_BUCKET_NAME"],
        Key=environment["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory).encode("utf-8"),
    )


@pytest.fixture
def web_under_cluster_autoscaler(
    member_eks: Any, inventory_in_s3: dict[str, Any], fleet_environment: dict[str, str]
) -> str:
    """The stack declares Cluster Autoscaler, and web's Auto Scaling group carries its discovery
    tags; the group's name."""
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    return tag_auto_scaling_group(member_eks, "web", DISCOVERY_TAGS)


def test_discovery_tags_alone_do_not_make_a_group_cluster_autoscalers(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN web's group with the tags EKS adds to every managed node group, and no autoscaler
    # declared for the cluster in the stack file
    tag_auto_scaling_group(member_eks, "web", DISCOVERY_TAGS)
    # WHEN the evening scale-down runs
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN the schedule scales web
    assert result["web"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 2


def test_analyze_reports_the_node_group_cluster_autoscaler_manages(
    scaler: Scaler, web_under_cluster_autoscaler: str
) -> None:
    # WHEN the cluster is analysed
    result = by_group(scaler(event("analyze")))
    # THEN web is reported as managed by Cluster Autoscaler, naming the tags; system is not
    assert result["web"]["autoscaler"]["kinds"] == ["cluster-autoscaler"]
    evidence = " ".join(result["web"]["autoscaler"]["evidence"])
    assert f"Auto Scaling group {web_under_cluster_autoscaler}" in evidence
    assert "k8s.io/cluster-autoscaler/enabled=true" in evidence
    assert "managed by cluster-autoscaler" in result["web"]["reason"]
    assert result["system"]["autoscaler"] is None


def test_the_schedule_leaves_an_autoscaler_managed_group_alone(
    scaler: Scaler, member_eks: Any, web_under_cluster_autoscaler: str
) -> None:
    # WHEN the evening scale-down names system and web
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN, request_id="down-1")))
    # THEN web is left to Cluster Autoscaler, saying why, and system scales
    assert result["web"]["status"] == "autoscaler_managed"
    assert "managed by cluster-autoscaler" in result["web"]["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3
    assert result["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_karpenter_discovery_on_the_cluster_marks_every_node_group(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN the cluster tagged for Karpenter's discovery
    arn = member_eks.describe_cluster(name=CLUSTER)["cluster"]["arn"]
    member_eks.tag_resource(resourceArn=arn, tags={"karpenter.sh/discovery": CLUSTER})
    # WHEN the evening scale-down runs
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN no node group changes and each names Karpenter's tag on the cluster
    for name in ("system", "web"):
        assert result[name]["status"] == "autoscaler_managed"
        assert result[name]["autoscaler"]["kinds"] == ["karpenter"]
        assert f"cluster {CLUSTER}: tag karpenter.sh/discovery" in result[name]["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 2


def test_karpenter_nodepool_on_a_node_group_marks_that_group_only(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN web carrying Karpenter's nodepool tag (moto tags a node group only when creating it,
    # so web is created again with the same settings and the tag)
    web = member_eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName="web")["nodegroup"]
    member_eks.delete_nodegroup(clusterName=CLUSTER, nodegroupName="web")
    member_eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName="web",
        nodeRole=web["nodeRole"],
        subnets=web["subnets"],
        capacityType=web["capacityType"],
        scalingConfig=web["scalingConfig"],
        tags={"karpenter.sh/nodepool": "default"},
    )
    # WHEN the evening scale-down names system and web
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web is left to Karpenter, naming the tag on the node group, and system scales
    assert result["web"]["status"] == "autoscaler_managed"
    assert result["web"]["autoscaler"]["kinds"] == ["karpenter"]
    assert "node group web: tag karpenter.sh/nodepool=default" in result["web"]["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3
    assert result["system"]["status"] == "scaling_initiated"
    # AND analyze reports web as Karpenter's, and system as no autoscaler's
    analyzed = by_group(scaler(event("analyze")))
    assert analyzed["web"]["autoscaler"]["kinds"] == ["karpenter"]
    assert analyzed["system"]["autoscaler"] is None


def test_an_explicit_override_changes_the_group_and_is_recorded(
    scaler: Scaler,
    member_eks: Any,
    web_under_cluster_autoscaler: str,
    state_table: StateTable,
) -> None:
    # WHEN a request scales web down with override_autoscaler
    request = event("scale_down", {"name": "web", "desired_size": 2, "override_autoscaler": True})
    result = by_group(scaler(request))["web"]
    # THEN web changes, and the result and the change record name the overridden autoscaler
    assert result["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 2
    assert result["override_autoscaler"]["kinds"] == ["cluster-autoscaler"]
    change = state_table.latest_change(node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web"))
    assert change is not None
    assert change.record["override_autoscaler"]["kinds"] == ["cluster-autoscaler"]


@pytest.mark.parametrize("action", ["analyze", "hold", "release"])
def test_override_autoscaler_is_refused_where_nothing_is_changed(
    scaler: Scaler, member_eks: Any, action: str
) -> None:
    # WHEN an action that changes no sizes carries override_autoscaler
    extra = {"until": "2025-06-02T20:00:00+05:30", "reason": "freeze"} if action == "hold" else {}
    result = scaler(event(action, {"name": "web", "override_autoscaler": True}, **extra))
    # THEN it is refused naming the field
    assert result["status"] == "error"
    assert "nodegroups[0].override_autoscaler" in result["error"]


def test_a_group_without_the_enabled_tag_is_not_cluster_autoscalers(
    scaler: Scaler,
    member_eks: Any,
    inventory_in_s3: dict[str, Any],
    fleet_environment: dict[str, str],
) -> None:
    # GIVEN Cluster Autoscaler declared, and web's Auto Scaling group keeping only the cluster tag
    # EKS added (enabled was removed, which takes a group out of its discovery)
    declare_cluster_autoscaler(inventory_in_s3, fleet_environment)
    tag_auto_scaling_group(member_eks, "web", {f"k8s.io/cluster-autoscaler/{CLUSTER}": "owned"})
    # WHEN the evening scale-down runs
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN the schedule scales web
    assert result["web"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 2
