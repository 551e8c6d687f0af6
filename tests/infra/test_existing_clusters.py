"""Existing clusters: the program creates neither them nor their node groups, and still installs
everything the fleet adds around a cluster (schedules, member permissions, inventory entry)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.buckets import INVENTORY_KEY
from components.exceptions import StackSettingsError
from components.settings import load_settings
from fleet_shared.inventory import parse_inventory
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

STACK = "adopted"
CLUSTER = "dev-apps"
MEMBER_ACCOUNT = "222222222222"


def _existing_cluster_config() -> dict[str, Any]:
    """The dev stack with its cluster marked existing (and its creation-only settings removed)."""
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    cluster["existing"] = True
    cluster.pop("endpoint_public_access_cidrs")
    cluster.pop("kubernetes_version")
    for group in cluster["node_groups"]:
        for field in ("labels", "taints", "disk_size_gb"):
            group.pop(field, None)
    return config


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    project = tmp_path_factory.mktemp("existing")
    (project / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (project / f"Pulumi.{STACK}.yaml").write_text(
        yaml.safe_dump({"config": _existing_cluster_config()})
    )
    return run_program(STACK, project)


def test_an_existing_cluster_gets_no_eks_resources(existing_run: ProgramRun) -> None:
    # GIVEN the dev stack whose only cluster is marked existing WHEN the program runs
    # THEN nothing of EKS is registered: no cluster, node group, node role, secrets key or eks
    # provider, and no access entry (the member roles act through the EKS API, not Kubernetes)
    eks_resources = [
        resource.urn
        for resource in existing_run.resources
        if resource.type.startswith(("eks:", "pulumi:providers:eks", "aws:eks/"))
    ]
    assert eks_resources == []
    assert not [r.urn for r in existing_run.of_type("aws:iam/role:Role") if "-nodes" in r.name]
    aliases = [alias.inputs["name"] for alias in existing_run.of_type("aws:kms/alias:Alias")]
    assert not [alias for alias in aliases if alias.endswith("-eks-secrets")]


def test_an_existing_cluster_keeps_its_schedules_permissions_and_inventory_entry(
    existing_run: ProgramRun,
) -> None:
    # GIVEN the existing cluster's schedule in the stack file WHEN the program runs
    schedules = [
        json.loads(schedule.inputs["target"]["input"])
        for schedule in existing_run.of_type("aws:scheduler/schedule:Schedule")
    ]
    # THEN the scaler's morning and evening schedules for it are there
    actions = sorted(p["action"] for p in schedules if p.get("cluster") == CLUSTER)
    assert actions == ["scale_down", "scale_up"]
    # AND the member role of the scaler may still change node groups in the member account
    member_actions = {
        action
        for policy in existing_run.of_type("aws:iam/rolePolicy:RolePolicy")
        if policy.inputs.get("name") == "member-actions"
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        for action in statement["Action"]
    }
    assert "eks:UpdateNodegroupConfig" in member_actions
    # AND the inventory lists the cluster, its node groups and bounds, marked existing
    inventory_object = next(
        obj
        for obj in existing_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if obj.inputs["key"] == INVENTORY_KEY
    )
    inventory = parse_inventory(inventory_object.inputs["content"], INVENTORY_KEY)
    cluster = inventory.find_cluster(MEMBER_ACCOUNT, "ap-south-1", CLUSTER)
    assert cluster is not None
    assert cluster.existing is True
    assert [group.name for group in cluster.node_groups] == ["system", "batch-spot"]
    assert cluster.node_groups[0].max_size == 4


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("labels", {"team": "a"}, "node_groups[0].labels"),
        ("taints", [{"key": "a", "effect": "NO_SCHEDULE"}], "node_groups[0].taints"),
        ("disk_size_gb", 100, "node_groups[0].disk_size_gb"),
    ],
)
def test_creation_only_node_group_settings_on_an_existing_cluster_are_refused(
    field: str, value: Any, named: str
) -> None:
    # GIVEN an existing cluster whose node group sets what only a created node group uses
    document = _settings_document()
    document["members"][0]["clusters"][0]["node_groups"][0][field] = value
    # WHEN the settings load THEN one error names the field
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, document)
    assert error.value.field == f"members[0].clusters[0].{named}"


def test_endpoint_cidrs_on_an_existing_cluster_are_refused() -> None:
    # GIVEN an existing cluster with public endpoint CIDRs
    document = _settings_document()
    document["members"][0]["clusters"][0]["endpoint_public_access_cidrs"] = ["203.0.113.0/24"]
    # WHEN the settings load THEN the error names the field
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, document)
    assert error.value.field == "members[0].clusters[0].endpoint_public_access_cidrs"


@pytest.mark.parametrize("protection", [True, False])
def test_deletion_protection_on_an_existing_cluster_is_refused(protection: bool) -> None:
    # GIVEN an existing cluster whose stack entry sets deletion protection, which its owner
    # manages and the program never applies to it
    document = _settings_document()
    document["members"][0]["clusters"][0]["deletion_protection"] = protection
    # WHEN the settings load THEN one error names the field and where the setting belongs
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, document)
    assert error.value.field == "members[0].clusters[0].deletion_protection"
    assert "set where the cluster was created" in error.value.problem


def test_an_existing_cluster_needs_no_kubernetes_version_and_lists_none_in_the_inventory(
    existing_run: ProgramRun,
) -> None:
    # GIVEN the existing cluster without `kubernetes_version` (it is upgraded where it was
    # created) WHEN the program runs THEN it loads, and the inventory names no version for it
    inventory_object = next(
        obj
        for obj in existing_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if obj.inputs["key"] == INVENTORY_KEY
    )
    inventory = parse_inventory(inventory_object.inputs["content"], INVENTORY_KEY)
    cluster = inventory.find_cluster(MEMBER_ACCOUNT, "ap-south-1", CLUSTER)
    assert cluster is not None
    assert cluster.kubernetes_version is None


@pytest.mark.parametrize("version", ["1.33", "1.29"], ids=["supported", "past-support"])
def test_a_kubernetes_version_on_an_existing_cluster_is_refused(version: str) -> None:
    # GIVEN an existing cluster whose stack file still names a Kubernetes version, which nothing
    # reads and which goes stale when its owner upgrades it (one EKS no longer creates included:
    # the message must not ask for a newer version)
    document = _settings_document()
    document["members"][0]["clusters"][0]["kubernetes_version"] = version
    # WHEN the settings load THEN one error names the field and why nothing reads it
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, document)
    assert error.value.field == "members[0].clusters[0].kubernetes_version"
    assert "upgraded where it was created" in error.value.problem


def test_a_created_cluster_without_a_kubernetes_version_is_refused() -> None:
    # GIVEN the dev stack's cluster, created by the program, without `kubernetes_version`
    document = _settings_document()
    document["members"][0]["clusters"][0]["existing"] = False
    # WHEN the settings load THEN one error names the field as required
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, document)
    assert error.value.field == "members[0].clusters[0].kubernetes_version"
    assert "required" in error.value.problem


def test_an_account_of_existing_clusters_only_reads_and_creates_no_network(
    existing_run: ProgramRun,
) -> None:
    # GIVEN the dev stack, whose one account's only cluster is existing (its network is a stack
    # reference) WHEN the program runs THEN no network stack is read and no VPC is made: an
    # existing cluster keeps its own VPC, and the network stack may not even exist
    assert existing_run.of_type("lambda-fleet:network:AccountNetwork") == []
    assert existing_run.of_type("pulumi:pulumi:StackReference") == []
    assert existing_run.of_type("aws:ec2/vpc:Vpc") == []


def test_an_account_of_existing_clusters_only_needs_no_network_setting() -> None:
    # GIVEN the account of existing clusters only, without `network`
    document = _settings_document()
    del document["members"][0]["network"]
    # WHEN the settings load THEN they do, without a network
    assert load_settings(STACK, document).members[0].network is None


def test_an_account_that_creates_a_cluster_needs_its_network_setting() -> None:
    # GIVEN the dev stack (its cluster created) without `network`
    document = _settings_document()
    document["members"][0]["clusters"][0].update(existing=False, kubernetes_version="1.33")
    del document["members"][0]["network"]
    # WHEN the settings load THEN one error names the account's network
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, document)
    assert error.value.field == "members[0].network"
    assert "creates clusters" in error.value.problem


def _settings_document() -> dict[str, Any]:
    return {
        key.split(":", 1)[1]: value
        for key, value in _existing_cluster_config().items()
        if key.startswith("lambda-fleet:")
    }
