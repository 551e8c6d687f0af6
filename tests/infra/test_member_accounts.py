"""Member accounts: clusters, node groups, the execution role and event forwarding, per stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalog.functions import FUNCTIONS
from catalog.model import EventRule, FunctionSpec, PermissionStatement
from components.event_forwarding import pattern_covers
from components.member_permissions import (
    NO_RESOURCE_LEVEL_ACTIONS,
    UnscopedMemberActionError,
    member_actions,
    member_policy_document,
)
from components.naming import member_execution_role_name
from components.settings import FleetSettings, load_settings
from fleetctl.mocked_program import ProgramRun, RegisteredResource

CLUSTER = "eks:index:Cluster"
NODE_GROUP = "eks:index:ManagedNodeGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
NODE_POLICIES = {
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
}
OPTIONAL_NODE_POLICIES = {"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}
# ARN formats that carry no account id (EC2 snapshots, S3 buckets).
ACCOUNTLESS_ARNS = {"arn:aws:ec2:*::snapshot/*", "arn:aws:s3:::*"}


@pytest.fixture
def settings(stack_run: ProgramRun, stack_settings_document) -> FleetSettings:
    return load_settings(stack_run.stack, stack_settings_document(stack_run.stack))


def _placed(resource: RegisteredResource) -> tuple[str, str]:
    assert resource.placement is not None, resource.name
    return resource.placement.account_id, resource.placement.region


def _cluster(run: ProgramRun, account_id: str, name: str) -> RegisteredResource:
    found = [
        cluster
        for cluster in run.of_type(CLUSTER)
        if cluster.inputs["name"] == name and _placed(cluster)[0] == account_id
    ]
    assert len(found) == 1, (account_id, name, len(found))
    return found[0]


def _execution_role(run: ProgramRun, account_id: str) -> RegisteredResource:
    found = [
        role
        for role in run.of_type(ROLE)
        if role.inputs.get("name") == member_execution_role_name(run.stack)
        and _placed(role)[0] == account_id
    ]
    assert len(found) == 1, (account_id, len(found))
    return found[0]


def _policies_of(run: ProgramRun, role: RegisteredResource) -> list[dict[str, Any]]:
    return [
        json.loads(policy.inputs["policy"])
        for policy in run.of_type(ROLE_POLICY)
        if policy.inputs["role"] == role.outputs["name"] and _placed(policy) == _placed(role)
    ]


def test_every_configured_cluster_exists_once_in_its_account_and_region(
    stack_run: ProgramRun, settings: FleetSettings
):
    # GIVEN the stack's members and their clusters WHEN the program runs
    expected = {
        (member.account_id, member.cluster_region(cluster), cluster.name)
        for member in settings.members
        for cluster in member.clusters
    }
    # THEN each cluster is registered once, placed by its account's provider for its region
    clusters = stack_run.of_type(CLUSTER)
    placed = [(*_placed(cluster), cluster.inputs["name"]) for cluster in clusters]
    assert sorted(placed) == sorted(expected)
    for cluster in clusters:
        assert cluster.remote
        aws_provider = stack_run.by_urn()[cluster.providers["aws"].rsplit("::", 1)[0]]
        assert aws_provider.type == "pulumi:providers:aws"
        assert _placed(aws_provider) == _placed(cluster)
        assert stack_run.provider_of(cluster).type == "pulumi:providers:eks"


def test_clusters_are_hardened_as_configured(stack_run: ProgramRun, settings: FleetSettings):
    networks = stack_run.stack_outputs["networks"]
    keys = {key.outputs["arn"]: key for key in stack_run.of_type("aws:kms/key:Key")}
    for member in settings.members:
        for configured in member.clusters:
            # GIVEN a configured cluster WHEN it is registered
            cluster = _cluster(stack_run, member.account_id, configured.name)
            inputs = cluster.inputs
            region = member.cluster_region(configured)
            network = networks[f"{member.account_id}/{region}"]
            # THEN it runs the configured version with access entries only
            assert inputs["version"] == configured.kubernetes_version
            assert inputs["authenticationMode"] == "API"
            assert set(inputs["enabledClusterLogTypes"]) == LOG_TYPES
            # AND secrets are encrypted with a rotating key of the same account and region
            key = keys[inputs["encryptionConfigKeyArn"]]
            assert key.inputs["enableKeyRotation"] is True
            assert _placed(key) == (member.account_id, region)
            # AND the API endpoint is private, public only for the configured CIDRs
            assert inputs["endpointPrivateAccess"] is True
            if configured.endpoint_public_access_cidrs:
                assert inputs["endpointPublicAccess"] is True
                assert inputs["publicAccessCidrs"] == configured.endpoint_public_access_cidrs
            else:
                assert inputs["endpointPublicAccess"] is False
                assert "publicAccessCidrs" not in inputs
            # AND it lives in the account's network, with no default node group
            assert inputs["vpcId"] == network["vpc_id"]
            assert inputs["privateSubnetIds"] == network["private_subnet_ids"]
            assert inputs["skipDefaultNodeGroup"] is True


def test_every_configured_node_group_exists_once_under_its_cluster(
    stack_run: ProgramRun, settings: FleetSettings
):
    networks = stack_run.stack_outputs["networks"]
    for member in settings.members:
        for configured in member.clusters:
            # GIVEN a configured cluster and its node groups
            cluster = _cluster(stack_run, member.account_id, configured.name)
            groups = {
                group.inputs["nodeGroupName"]: group
                for group in stack_run.of_type(NODE_GROUP)
                if group.inputs["cluster"] == cluster.urn
            }
            # THEN exactly the configured groups exist, children of the same component
            assert sorted(groups) == sorted(group.name for group in configured.node_groups)
            subnets = networks[f"{member.account_id}/{member.cluster_region(configured)}"]
            for expected in configured.node_groups:
                group = groups[expected.name]
                assert group.parent == cluster.parent
                assert _placed(group) == _placed(cluster)
                inputs = group.inputs
                assert inputs["capacityType"] == expected.capacity_type
                assert inputs["instanceTypes"] == expected.instance_types
                assert inputs.get("labels", {}) == expected.labels
                assert inputs.get("taints", []) == [
                    {
                        "key": taint.key,
                        "effect": taint.effect,
                        **({"value": taint.value} if taint.value else {}),
                    }
                    for taint in expected.taints
                ]
                assert inputs["scalingConfig"] == {
                    "minSize": expected.min_size,
                    "desiredSize": expected.desired_size,
                    "maxSize": expected.max_size,
                }
                assert inputs["diskSize"] == expected.disk_size_gb
                assert inputs["subnetIds"] == subnets["private_subnet_ids"]
                # AND pulumi up never reverts what the scaler changed
                assert inputs["ignoreScalingChanges"] is True


def test_taints_use_the_eks_api_effects(stack_run: ProgramRun):
    # GIVEN the registered node groups THEN every taint effect is one the EKS API accepts
    effects = {
        taint["effect"]
        for group in stack_run.of_type(NODE_GROUP)
        for taint in group.inputs.get("taints", [])
    }
    assert effects <= {"NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"}


def test_node_roles_trust_ec2_and_have_only_the_node_managed_policies(
    stack_run: ProgramRun, settings: FleetSettings
):
    roles = {role.urn: role for role in stack_run.of_type(ROLE)}
    for cluster in stack_run.of_type(CLUSTER):
        # GIVEN the node role that a cluster's node groups use
        node_role_urns = {
            group.inputs["nodeRole"]
            for group in stack_run.of_type(NODE_GROUP)
            if group.inputs["cluster"] == cluster.urn
        }
        assert len(node_role_urns) == 1
        role = roles[node_role_urns.pop()]
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert [statement["Principal"] for statement in trust["Statement"]] == [
            {"Service": "ec2.amazonaws.com"}
        ]
        # THEN it carries the three node policies, at most SSM besides, and no inline policy
        attached = {
            attachment.inputs["policyArn"]
            for attachment in stack_run.of_type(ATTACHMENT)
            if attachment.inputs["role"] == role.outputs["name"]
        }
        assert NODE_POLICIES <= attached <= NODE_POLICIES | OPTIONAL_NODE_POLICIES
        assert _policies_of(stack_run, role) == []
        # AND the cluster admits it as EC2 Linux nodes
        nodes_entry = cluster.inputs["accessEntries"]["nodes"]
        assert nodes_entry == {"principalArn": role.outputs["arn"], "type": "EC2_LINUX"}


def test_each_member_has_one_execution_role_trusting_only_the_hub_function_roles(
    stack_run: ProgramRun, settings: FleetSettings
):
    hub = settings.hub.account_id
    named = [
        role
        for role in stack_run.of_type(ROLE)
        if role.inputs.get("name") == member_execution_role_name(stack_run.stack)
    ]
    # GIVEN the stack's members WHEN the program runs THEN each has exactly one execution role
    assert sorted(_placed(role)[0] for role in named) == sorted(
        member.account_id for member in settings.members
    )
    for member in settings.members:
        role = _execution_role(stack_run, member.account_id)
        # AND it trusts the hub account only for roles under this stack's function-role path
        assert json.loads(role.inputs["assumeRolePolicy"]) == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "HubFunctionRolesOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{hub}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "ArnLike": {
                            "aws:PrincipalArn": (
                                f"arn:aws:iam::{hub}:role/lambda-fleet/{stack_run.stack}/*"
                            )
                        }
                    },
                }
            ],
        }
    # AND the handlers are told that name
    assert stack_run.stack_outputs["member_execution_role_name"] == member_execution_role_name(
        stack_run.stack
    )


def _reads_only(action: str) -> bool:
    return action.split(":", 1)[1].startswith(("Describe", "List", "Get"))


def test_execution_role_policy_grants_the_catalog_member_actions_scoped_to_the_account(
    stack_run: ProgramRun, settings: FleetSettings
):
    for member in settings.members:
        # GIVEN a member's execution role and its policy
        role = _execution_role(stack_run, member.account_id)
        (policy,) = _policies_of(stack_run, role)
        granted: set[str] = set()
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            resources = statement["Resource"]
            granted.update(actions)
            # THEN no action is a wildcard
            assert all(action != "*" and not action.endswith(":*") for action in actions)
            # AND "*" resources are only for actions without resource-level permissions
            if "*" in resources:
                assert resources == ["*"]
                assert set(actions) <= NO_RESOURCE_LEVEL_ACTIONS
                # (and every one of them only reads: nothing may change anything on "*")
                assert all(_reads_only(action) for action in actions), actions
            else:
                for arn in resources:
                    assert f":{member.account_id}:" in arn or arn in ACCOUNTLESS_ARNS, arn
        # AND exactly the union of the catalog's member actions is granted
        assert sorted(granted) == member_actions(settings.enabled_functions(FUNCTIONS))


def test_the_fleet_reaches_each_cluster_through_the_member_execution_role(
    stack_run: ProgramRun, settings: FleetSettings
):
    for member in settings.members:
        role = _execution_role(stack_run, member.account_id)
        for configured in member.clusters:
            # GIVEN a cluster THEN its fleet access entry names the account's execution role
            entry = _cluster(stack_run, member.account_id, configured.name).inputs["accessEntries"][
                "fleet"
            ]
            assert entry["principalArn"] == role.outputs["arn"]
            assert entry["type"] == "STANDARD"
            assert entry["accessPolicies"] == {
                "view": {
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                    "accessScope": {"type": "cluster"},
                }
            }


def _forwarded_catalog_patterns() -> list[dict[str, Any]]:
    return [
        trigger.pattern
        for spec in FUNCTIONS
        for trigger in spec.triggers
        if isinstance(trigger, EventRule) and trigger.forwarded_from_members
    ]


def test_each_member_region_forwards_every_catalog_pattern_once_to_the_hub_bus(
    stack_run: ProgramRun, settings: FleetSettings
):
    hub_bus = f"arn:aws:events:{settings.hub.region}:{settings.hub.account_id}:event-bus/default"
    for member in settings.members:
        for region in member.regions:
            # GIVEN the forwarding rules of one member account and region
            rules = [
                rule
                for rule in stack_run.of_type(EVENT_RULE)
                if _placed(rule)
                == (
                    member.account_id,
                    region,
                )
            ]
            patterns = [json.loads(rule.inputs["eventPattern"]) for rule in rules]
            # THEN every forwarded catalog pattern is matched by one of them
            for catalog_pattern in _forwarded_catalog_patterns():
                assert any(pattern_covers(pattern, catalog_pattern) for pattern in patterns)
            # AND no event matches two of them, so the hub never gets it twice
            for index, pattern in enumerate(patterns):
                for other in patterns[index + 1 :]:
                    assert not pattern_covers(pattern, other)
                    assert not pattern_covers(other, pattern)
            # AND each rule sends to the hub's default bus through the account's forwarding role
            for rule in rules:
                (target,) = [
                    target
                    for target in stack_run.of_type(EVENT_TARGET)
                    if target.inputs["rule"] == rule.outputs["name"]
                    and _placed(target) == _placed(rule)
                ]
                assert target.inputs["arn"] == hub_bus
                (role,) = [
                    role
                    for role in stack_run.of_type(ROLE)
                    if role.outputs["arn"] == target.inputs["roleArn"]
                ]
                assert _placed(role)[0] == member.account_id
                assert _policies_of(stack_run, role) == [
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "PutEventsOnHubBusOnly",
                                "Effect": "Allow",
                                "Action": "events:PutEvents",
                                "Resource": hub_bus,
                            }
                        ],
                    }
                ]
                trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
                assert [statement["Principal"] for statement in trust] == [
                    {"Service": "events.amazonaws.com"}
                ]


def test_each_member_account_has_one_forwarding_role(
    stack_run: ProgramRun, settings: FleetSettings
):
    # GIVEN every rule target WHEN grouped by role THEN there is one role per member account
    roles_by_account: dict[str, set[str]] = {}
    member_ids = {member.account_id for member in settings.members}
    for target in stack_run.of_type(EVENT_TARGET):
        if _placed(target)[0] not in member_ids:
            continue
        roles_by_account.setdefault(_placed(target)[0], set()).add(target.inputs["roleArn"])
    assert sorted(roles_by_account) == sorted(member.account_id for member in settings.members)
    assert all(len(roles) == 1 for roles in roles_by_account.values())


def test_stack_exports_clusters_and_node_groups_per_account(
    stack_run: ProgramRun, settings: FleetSettings
):
    # GIVEN the stack's settings THEN the export lists each account's clusters and node groups
    assert stack_run.stack_outputs["clusters"] == {
        member.account_id: {
            cluster.name: {
                "region": member.cluster_region(cluster),
                "node_groups": [group.name for group in cluster.node_groups],
            }
            for cluster in member.clusters
        }
        for member in settings.members
    }


def test_a_member_action_without_a_declared_scope_stops_the_program():
    # GIVEN a catalog function with a member action the scope table does not know
    spec = FunctionSpec(
        name="unknown",
        description="",
        memory_mb=128,
        timeout_seconds=3,
        environment={},
        permissions=(PermissionStatement(actions=(), resources=()),),
        member_actions=("ec2:TerminateInstances",),
    )
    # WHEN the execution role's policy is built THEN it fails naming the action
    with pytest.raises(UnscopedMemberActionError, match="ec2:TerminateInstances"):
        member_policy_document([spec], "aws", "222222222222")
