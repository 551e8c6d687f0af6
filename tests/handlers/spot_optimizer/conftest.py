"""Fixtures of the spot optimizer tests: a member account with a moto EKS cluster (an on-demand
and a spot node group) reached through the assumed role, a same-named cluster in the hub, the
inventory, services on the fake clock and the handler invoked with them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.handler import Invocation
from handlers.spot_optimizer import app
from handlers.spot_optimizer.environment import SpotEnvironment
from handlers.spot_optimizer.on_demand_prices import table_price
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.member_accounts import (
    DENIED_MEMBER,
    MEMBER_A,
    REGION,
    deny_assume_role,
    member_session,
    share_botocore_models,
)

CLUSTER = "dev-apps"
SPOT_TYPES = ["m7g.large", "m6g.large", "c7g.large"]
# name -> (capacity type, instance types, min, desired, max)
NODE_GROUPS = {
    "system": ("ON_DEMAND", ["m7g.large"], 1, 2, 4),
    "batch-spot": ("SPOT", SPOT_TYPES, 0, 2, 6),
}


@pytest.fixture(autouse=True)
def _fast_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No default AMI catalogue (never read here); botocore models parsed once per process."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    share_botocore_models(monkeypatch)


MOTO_SPOT_SHARE = 0.3
"""Each pool's spot price here, as a share of its type's on-demand price in the bundled table (a
70 % saving, as spot pools commonly give)."""


@pytest.fixture(autouse=True)
def _plausible_spot_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers one price for every spot pool, 0.00001 USD an hour: below any spot discount,
    so the optimizer leaves it out (`prices.LOWEST_SPOT_SHARE`). Here each pool's one price
    (moto's entry, dated 2006) is MOTO_SPOT_SHARE of its type's on-demand price instead; a type
    the table does not price keeps moto's."""
    from moto.ec2.responses import EC2Response  # noqa: PLC0415 - moto's EC2 only when mocked

    moto_answer = EC2Response.describe_spot_price_history

    def describe_spot_price_history(response: Any) -> Any:
        answer = moto_answer(response)
        for entry in answer.result["SpotPriceHistory"]:
            on_demand = table_price(response.region, entry["InstanceType"])
            if on_demand is not None:
                entry["SpotPrice"] = f"{on_demand * MOTO_SPOT_SHARE:.6f}"
        return answer

    monkeypatch.setattr(EC2Response, "describe_spot_price_history", describe_spot_price_history)


def create_cluster(eks: Any, account_id: str) -> None:
    """The cluster and its node groups (moto accepts any subnet ids)."""
    eks.create_cluster(
        name=CLUSTER,
        roleArn=f"arn:aws:iam::{account_id}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    for name, (capacity, types, low, desired, high) in NODE_GROUPS.items():
        create_node_group(eks, account_id, name, capacity, types, sizes=(low, desired, high))


def create_node_group(
    eks: Any,
    account_id: str,
    name: str,
    capacity_type: str,
    instance_types: list[str],
    *,
    sizes: tuple[int, int, int] = (1, 2, 4),
) -> None:
    """A node group of the cluster, of `sizes` (min, desired, max)."""
    low, desired, high = sizes
    eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName=name,
        nodeRole=f"arn:aws:iam::{account_id}:role/eks-node",
        subnets=["subnet-1"],
        capacityType=capacity_type,
        instanceTypes=instance_types,
        scalingConfig={"minSize": low, "desiredSize": desired, "maxSize": high},
    )


def desired_size(eks: Any, name: str) -> int:
    """The desired size of a node group."""
    group = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName=name)["nodegroup"]
    return int(group["scalingConfig"]["desiredSize"])


def inventory_with_spot_groups(base: dict[str, Any]) -> dict[str, Any]:
    """Member A with the dev-apps cluster, and a denied member with its own spot group."""
    document = json.loads(json.dumps(base))
    cluster = document["members"][0]["clusters"][0]
    cluster["node_groups"] = [
        {
            "name": name,
            "capacity_type": capacity,
            "instance_types": types,
            "min_size": low,
            "desired_size": desired,
            "max_size": high,
            "floor": 1 if capacity == "ON_DEMAND" else 0,
        }
        for name, (capacity, types, low, desired, high) in NODE_GROUPS.items()
    ]
    denied_cluster = {**json.loads(json.dumps(cluster)), "name": "denied-apps"}
    denied_cluster.pop("schedule")
    document["members"].append(
        {
            "account_id": DENIED_MEMBER,
            "name": "denied",
            "regions": [REGION],
            "clusters": [denied_cluster],
        }
    )
    return document


@pytest.fixture
def member_eks(state_table: Any, alert_inbox: Any, inventory_in_s3: dict[str, Any]) -> Any:
    """EKS in member A (cluster created through the member role); the inventory lists it and a
    member whose AssumeRole is denied."""
    assert inventory_in_s3["members"][0]["account_id"] == MEMBER_A
    boto3.client("s3", region_name=REGION).put_object(
        Bucket="lambda-fleet-data",
        Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_with_spot_groups(inventory_in_s3)).encode("utf-8"),
    )
    eks = member_session(MEMBER_A).client("eks")
    create_cluster(eks, MEMBER_A)
    return eks


@pytest.fixture
def hub_eks(member_eks: Any) -> Any:
    """The same cluster in the hub account: it must never change."""
    eks = boto3.client("eks", region_name=REGION)
    create_cluster(eks, "123456789012")
    return eks


@pytest.fixture
def role_grants() -> list[Callable[[], None]]:
    """One call per services `make_services` made: it grants the denied member's role again."""
    return []


@pytest.fixture
def make_services(
    member_eks: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    role_grants: list[Callable[[], None]],
) -> Callable[..., SpotServices]:
    """Services on the fake clock with extra environment variables; AssumeRole of the denied
    member fails as in real AWS (until `role_grants`)."""

    def make(**variables: str) -> SpotServices:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        services = SpotServices.create(
            app.FUNCTION.name, load_environment(SpotEnvironment), clock=fake_clock
        )
        role_grants.append(deny_assume_role(services.sessions.hub_client("sts"), DENIED_MEMBER))
        return services

    return make


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """`invoke(event, services, request_id)`: the handler's result for `event`, parsed and
    handled by the skeleton with `services` as the container's."""

    def call(event: Any, services: SpotServices, request_id: str) -> dict[str, Any]:
        monkeypatch.setattr(app.FUNCTION, "services", lambda: services)
        return dict(app.FUNCTION.invoke(event, Invocation.local(request_id)))

    return call


def launch_spot_instance(
    instance_type: str = "m7g.large",
    zone: str = f"{REGION}a",
    node_group: str | None = "batch-spot",
) -> str:
    """A running instance in member A, tagged like an EKS managed node group's instance."""
    tags = [{"Key": "eks:cluster-name", "Value": CLUSTER}]
    if node_group:
        tags.append({"Key": "eks:nodegroup-name", "Value": node_group})
    ec2 = member_session(MEMBER_A).client("ec2")
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        Placement={"AvailabilityZone": zone},
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return str(response["Instances"][0]["InstanceId"])


def interruption_event(instance_id: str, account: str = MEMBER_A) -> dict[str, Any]:
    """The native EventBridge event as forwarded to the hub bus."""
    return {
        "version": "0",
        "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": account,
        "time": "2025-06-02T03:30:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{account}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    }


def next_batch_spot_warning(services: Any) -> dict[str, Any]:
    """A minute on, the interruption warning of a new batch-spot instance."""
    services.clock.advance(60)
    return interruption_event(launch_spot_instance())


def interrupt_batch_spot(
    invoke: Callable[..., dict[str, Any]], services: Any, times: int = 3
) -> None:
    """`times` interruption warnings of new batch-spot instances, a minute apart (three reach the
    fallback's threshold, so the next one triggers the on-demand +1)."""
    for _ in range(times):
        invoke(next_batch_spot_warning(services), services, "inv")


def at_the_fallback_threshold(
    make_services: Callable[..., SpotServices], invoke: Callable[..., dict[str, Any]]
) -> SpotServices:
    """Services with auto-apply on, after three interruptions of batch-spot in the last hour:
    the fallback's threshold, so the next warning triggers the on-demand +1."""
    services = make_services(SPOT_AUTO_APPLY="true")
    interrupt_batch_spot(invoke, services)
    return services


def change_the_inventory(change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the dev-apps cluster of the inventory in the data bucket."""
    change_the_inventory_document(lambda document: change(document["members"][0]["clusters"][0]))


def change_the_inventory_document(change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the whole inventory document in the data bucket."""
    inventory_key = "config/fleet-inventory.json"
    s3 = boto3.client("s3", region_name=REGION)
    document = json.loads(
        s3.get_object(Bucket="lambda-fleet-data", Key=inventory_key)["Body"].read()
    )
    change(document)
    s3.put_object(
        Bucket="lambda-fleet-data", Key=inventory_key, Body=json.dumps(document).encode("utf-8")
    )
