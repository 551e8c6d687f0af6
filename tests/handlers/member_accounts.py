"""Helpers for handler tests that act in several member accounts through moto.

moto honours the account of assumed-role credentials, so a session built from an AssumeRole of
`arn:aws:iam::<member>:role/<role>` creates and sees resources in that member account only.
A denied account is simulated at the one point where the real failure happens: the hub's STS
AssumeRole call answers AccessDenied for that account's role (a botocore before-call hook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders

from tests.handlers.conftest import read_stack_config, stack_inventory

REGION = "ap-south-1"
MEMBER_ROLE_NAME = "lambda-fleet-member"
MEMBER_A = "222222222222"
MEMBER_B = "333333333333"
DENIED_MEMBER = "444444444444"
MEMBERS_STACK_FILE = Path(__file__).with_name("Pulumi.members.yaml")


def member_session(account_id: str, region: str = REGION) -> boto3.Session:
    """A session acting in `account_id`, as the member role (set up resources with it)."""
    sts = boto3.client("sts", region_name=region)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{MEMBER_ROLE_NAME}",
        RoleSessionName="test-setup",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def load_balancer_network(ec2: Any) -> tuple[str, list[str]]:
    """A VPC and a subnet in each of two zones of the client's region (an application load
    balancer needs two): the VPC's id and the subnets'."""
    region = ec2.meta.region_name
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for index, zone in enumerate((f"{region}a", f"{region}b"))
    ]
    return vpc, subnets


def create_volume(ec2: Any, **tags: str) -> str:
    """An unattached 1 GiB EBS volume with `tags`, in the account and region of `ec2`."""
    arguments: dict[str, Any] = {"AvailabilityZone": f"{REGION}a", "Size": 1}
    if tags:
        arguments["TagSpecifications"] = [
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return str(ec2.create_volume(**arguments)["VolumeId"])


def create_cluster_with_node_group(
    session: boto3.Session, cluster: str, node_group: str, *, desired: int, max_size: int
) -> str:
    """An EKS cluster with one managed node group and the node group's Auto Scaling group with
    `desired` instances, in the session's account; returns the Auto Scaling group's name."""
    account_id = session.client("sts").get_caller_identity()["Account"]
    eks = session.client("eks")
    eks.create_cluster(
        name=cluster,
        roleArn=f"arn:aws:iam::{account_id}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]},
    )
    group = eks.create_nodegroup(
        clusterName=cluster,
        nodegroupName=node_group,
        nodeRole=f"arn:aws:iam::{account_id}:role/eks-node",
        subnets=["subnet-0a", "subnet-0b"],
        scalingConfig={"minSize": 1, "desiredSize": desired, "maxSize": max_size},
    )["nodegroup"]
    asg_name: str = group["resources"]["autoScalingGroups"][0]["name"]
    # A launch configuration rather than a template: it needs no EC2 client, whose multi-MB
    # service model would dominate the test's run time.
    autoscaling = session.client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{cluster}-{node_group}",
        ImageId="ami-0abcdef1234567890",
        InstanceType="m7g.large",
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchConfigurationName=f"{cluster}-{node_group}",
        MinSize=0,
        MaxSize=6,
        DesiredCapacity=desired,
        AvailabilityZones=[f"{session.region_name}a"],
    )
    return asg_name


@dataclass
class _DeniedResponse:
    status_code: int = 403
    headers: dict[str, str] | None = None


def deny_assume_role(sts_client: Any, *account_ids: str) -> Callable[[], None]:
    """Make `sts_client` answer AccessDenied to AssumeRole of the given accounts' roles; the
    result grants them again."""

    def refuse(params: dict[str, Any], **_: Any) -> tuple[_DeniedResponse, dict] | None:
        role_arn = params.get("body", {}).get("RoleArn", "")
        if any(f":{account}:" in role_arn for account in account_ids):
            return _DeniedResponse(headers={}), {
                "Error": {"Code": "AccessDenied", "Message": f"not authorized for {role_arn}"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
        return None

    sts_client.meta.events.register("before-call.sts.AssumeRole", refuse)
    return lambda: sts_client.meta.events.unregister("before-call.sts.AssumeRole", refuse)


MEMBERS_STACK_FILE = Path(__file__).with_name("Pulumi.members.yaml")


def fleet_inventory(*account_ids: str) -> dict[str, Any]:
    """The inventory of `Pulumi.members.yaml` keeping only the given members, in that order."""
    config = read_stack_config(MEMBERS_STACK_FILE)
    members = {member["account_id"]: member for member in config["lambda-fleet:members"]}
    config["lambda-fleet:members"] = [members[account] for account in account_ids]
    return stack_inventory("members", config)


_PARSED_MODELS: dict[str, Any] = {}


def share_botocore_models(monkeypatch: Any) -> None:
    """Parse each botocore data file once per test process instead of once per boto3 session.

    Every assumed-role session (one per member account, per runtime) has its own botocore
    loader, and the JSON parsing of service models dominated these tests' run time. The parsed
    documents are only read by botocore, so sharing them changes no behaviour.
    """
    original = botocore.loaders.JSONFileLoader.load_file

    def load_file(self: Any, file_path: str) -> Any:
        if file_path not in _PARSED_MODELS:
            _PARSED_MODELS[file_path] = original(self, file_path)
        return _PARSED_MODELS[file_path]

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", load_file)
