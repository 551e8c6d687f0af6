"""Helpers of the scaler tests: the member cluster's layout, its setup in moto and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

REGION = "ap-south-1"
HUB_ACCOUNT_ID = "123456789012"
MEMBER_ACCOUNT_ID = "222222222222"

CLUSTER = "dev-apps"
ROLE_NAME = "lambda-fleet-member"

Scaler = Callable[..., dict[str, Any]]
"""`scaler(event, invocation_id="inv-1")`: the function's answer to `event`."""

# name -> (capacity type, min, desired, max)
NODE_GROUPS = {
    "system": ("ON_DEMAND", 1, 2, 4),
    "web": ("ON_DEMAND", 2, 3, 6),
    "batch-spot": ("SPOT", 0, 2, 6),
}


def member_session(account_id: str = MEMBER_ACCOUNT_ID) -> boto3.Session:
    """A session in the member account through the member role, as a test's own view."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE_NAME}", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def create_cluster(eks: Any, account_id: str, only: str | None = None) -> None:
    """The cluster and its node groups, or just the one named `only` (moto accepts any subnet
    ids)."""
    eks.create_cluster(
        name=CLUSTER,
        roleArn=f"arn:aws:iam::{account_id}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    for name, (capacity, low, desired, high) in NODE_GROUPS.items():
        if only is not None and name != only:
            continue
        eks.create_nodegroup(
            clusterName=CLUSTER,
            nodegroupName=name,
            nodeRole=f"arn:aws:iam::{account_id}:role/eks-node",
            subnets=["subnet-1"],
            capacityType=capacity,
            scalingConfig={"minSize": low, "desiredSize": desired, "maxSize": high},
        )


def declared_spot_node_group(name: str) -> dict[str, Any]:
    """The inventory entry of a SPOT node group at 0/2/6 (batch-spot's sizes in EKS), floor 0:
    the scaler changes only the node groups the inventory declares."""
    return {
        "name": name,
        "capacity_type": "SPOT",
        "instance_types": ["m7g.large"],
        "min_size": 0,
        "desired_size": 2,
        "max_size": 6,
        "floor": 0,
    }


def sizes(eks: Any, name: str) -> dict[str, int]:
    """The scaling config of a node group as {min_size, desired_size, max_size}."""
    config = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName=name)["nodegroup"][
        "scalingConfig"
    ]
    return {
        "min_size": config["minSize"],
        "desired_size": config["desiredSize"],
        "max_size": config["maxSize"],
    }


def event(action: str, *groups: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A scaler event for the member cluster."""
    return {
        "action": action,
        "account_id": MEMBER_ACCOUNT_ID,
        "region": REGION,
        "cluster": CLUSTER,
        "nodegroups": list(groups),
        **extra,
    }
