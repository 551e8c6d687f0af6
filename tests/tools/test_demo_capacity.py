"""The demo's node groups have the nodes EKS asks for: their Auto Scaling groups follow each
UpdateNodegroupConfig, so the health monitor's capacity check counts what EKS reports."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from fleetctl.demo_world import create_node_group_instances, follow_node_group_scaling

REGION = "ap-south-1"
CLUSTER = "dev-apps"
GROUP = "batch-spot"


def _ready(autoscaling: Any) -> tuple[int, int]:
    """(desired, ready) over the Auto Scaling groups, counted as the capacity check counts."""
    groups = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    desired = sum(group["DesiredCapacity"] for group in groups)
    ready = sum(
        1
        for group in groups
        for instance in group["Instances"]
        if instance["LifecycleState"] == "InService" and instance["HealthStatus"] == "Healthy"
    )
    return desired, ready


@mock_aws
def test_a_node_group_scaled_in_eks_gets_that_many_ready_nodes_in_its_auto_scaling_group():
    # GIVEN a demo node group of 2 nodes (max 6) with its Auto Scaling group running them
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24")["Subnet"]["SubnetId"]
    eks = boto3.client("eks", region_name=REGION)
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    eks.create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/demo-cluster-role",
        resourcesVpcConfig={"subnetIds": [subnet]},
    )
    eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName=GROUP,
        nodeRole="arn:aws:iam::123456789012:role/demo-node-role",
        subnets=[subnet],
        scalingConfig={"minSize": 0, "maxSize": 6, "desiredSize": 2},
    )
    create_node_group_instances(
        eks,
        autoscaling,
        ec2=ec2,
        cluster=CLUSTER,
        node_group=GROUP,
        desired=2,
        maximum=6,
        subnets=[subnet],
    )
    assert _ready(autoscaling) == (2, 2)
    for wanted in (6, 0):
        # WHEN the scaler sets the node group's desired size in EKS and EKS acts on it
        eks.update_nodegroup_config(
            clusterName=CLUSTER,
            nodegroupName=GROUP,
            scalingConfig={"minSize": 0, "maxSize": 6, "desiredSize": wanted},
        )
        follow_node_group_scaling(eks, autoscaling, CLUSTER, GROUP)
        # THEN the Auto Scaling group wants and runs that many healthy nodes
        assert _ready(autoscaling) == (wanted, wanted)
