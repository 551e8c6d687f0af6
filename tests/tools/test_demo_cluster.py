"""The demo's clusters are created as the plan creates them, so the security scanner's EKS
findings on them are the ones a deployed stack would get."""

from __future__ import annotations

import boto3
from moto import mock_aws

from components.eks_cluster import CONTROL_PLANE_LOG_TYPES
from fleetctl.demo_world import planned_cluster_settings
from fleetctl.local_world import stack_settings
from handlers.security_scanner.checks.containers import (
    CLUSTER,
    audit_logging,
    public_endpoint,
    secrets_encryption,
)
from handlers.security_scanner.registry import Resource

REGION = "ap-south-1"


@mock_aws
def test_a_demo_cluster_has_the_planned_endpoint_encryption_and_logs_and_no_eks_finding():
    # GIVEN the dev stack's first cluster and a KMS key for its secrets
    cluster = stack_settings("dev").members[0].clusters[0]
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24")["Subnet"]["SubnetId"]
    eks = boto3.client("eks", region_name=REGION)
    # WHEN the demo creates it with the plan's settings
    eks.create_cluster(
        name=cluster.name,
        version=cluster.kubernetes_version,
        roleArn="arn:aws:iam::123456789012:role/demo-cluster-role",
        **planned_cluster_settings(cluster, [subnet], key),
    )
    described = eks.describe_cluster(name=cluster.name)["cluster"]
    # THEN its endpoint, secrets key and log types are the plan's
    assert described["resourcesVpcConfig"]["publicAccessCidrs"] == list(
        cluster.endpoint_public_access_cidrs
    )
    assert described["encryptionConfig"][0]["provider"]["keyArn"] == key
    assert described["logging"]["clusterLogging"][0]["types"] == list(CONTROL_PLANE_LOG_TYPES)
    # AND the scanner's EKS.1, EKS.3 and EKS.8 checks pass on it
    resource = Resource(
        arn=described["arn"],
        resource_type=CLUSTER,
        attributes={
            "vpc": described["resourcesVpcConfig"],
            "encryption": described["encryptionConfig"],
            "logging": described["logging"]["clusterLogging"],
        },
    )
    assert [check(resource) for check in (public_endpoint, secrets_encryption, audit_logging)] == [
        None,
        None,
        None,
    ]


def test_a_cluster_without_public_cidrs_gets_a_private_endpoint_only():
    # GIVEN a cluster whose stack entry lists no public CIDRs
    cluster = (
        stack_settings("dev")
        .members[0]
        .clusters[0]
        .model_copy(update={"endpoint_public_access_cidrs": []})
    )
    # WHEN the demo's settings are built THEN the public endpoint is off
    vpc = planned_cluster_settings(cluster, ["subnet-1"], "arn:aws:kms:key")["resourcesVpcConfig"]
    assert vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc
