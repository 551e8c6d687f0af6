"""Member accounts: clusters, node groups, per-function member roles and event forwarding."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pytest

from catalog.functions import (
    BACKUP_TAG,
    CLEANUP_MARK_TAG,
    FUNCTIONS,
    FUNCTIONS_BY_NAME,
    SNAPSHOT_ID_TAG,
    SNAPSHOT_TAGS_NEVER_DELETED,
    STACK_TAG,
    VOLUME_TAGS_NEVER_DELETED,
)
from catalog.model import (
    STACK_PLACEHOLDER,
    AnyOf,
    Condition,
    EnvSource,
    EventRule,
    FunctionSpec,
    PermissionStatement,
    ResourceRef,
)
from components.event_forwarding import forwarding_pattern, or_alternatives, pattern_covers
from components.member_permissions import (
    CLEANUP_DELETIONS,
    CONDITIONED_ACTIONS,
    NO_RESOURCE_LEVEL_ACTIONS,
    UnconditionedMemberActionError,
    UnscopedMemberActionError,
    member_policy_document,
    withheld_member_actions,
)
from components.naming import function_name, member_role_name
from components.settings import ClusterSettings, FleetSettings, MemberSettings, load_settings
from fleet_shared.backup_tags import BACKUP_TAG as COPIED_VOLUME_TAG
from fleet_shared.backup_tags import SNAPSHOT_ID_TAG as OWN_ID_TAG
from fleet_shared.backup_tags import STACK_TAG as COPY_STACK_TAG
from fleet_shared.cleanup_policy import ALL_RESOURCE_KINDS, DELETE, CleanupPolicy
from fleetctl.mocked_program import ProgramRun, RegisteredResource
from handlers.backup_scheduler.backup import COPY_TAG
from handlers.cleanup_manager.candidates import (
    KUBERNETES_SNAPSHOT_TAGS,
    KUBERNETES_VOLUME_TAGS,
    LIFECYCLE_MANAGED_SNAPSHOT_TAGS,
    mark_tag,
)

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


@pytest.fixture
def stack_settings(stack_settings_document) -> Callable[[str], FleetSettings]:
    return lambda stack: load_settings(stack, stack_settings_document(stack))


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


def _created_clusters(member: MemberSettings) -> list[ClusterSettings]:
    """The clusters the program creates (it creates nothing for an existing one)."""
    return [cluster for cluster in member.clusters if not cluster.existing]


def _member_role(run: ProgramRun, account_id: str, function: str) -> RegisteredResource:
    found = [
        role
        for role in run.of_type(ROLE)
        if role.inputs.get("name") == member_role_name(run.stack, function)
        and _placed(role)[0] == account_id
    ]
    assert len(found) == 1, (account_id, function, len(found))
    return found[0]


def _member_roles(run: ProgramRun, account_id: str) -> list[RegisteredResource]:
    prefix = f"lambda-fleet-{run.stack}-member-"
    return [
        role
        for role in run.of_type(ROLE)
        if role.inputs.get("name", "").startswith(prefix) and _placed(role)[0] == account_id
    ]


def _policies_of(run: ProgramRun, role: RegisteredResource) -> list[dict[str, Any]]:
    return [
        json.loads(policy.inputs["policy"])
        for policy in run.of_type(ROLE_POLICY)
        if policy.inputs["role"] == role.outputs["name"] and _placed(policy) == _placed(role)
    ]


def test_every_configured_cluster_exists_once_in_its_account_and_region(
    stack_run: ProgramRun, settings: FleetSettings
):
    # GIVEN the stack's members and the clusters the program creates WHEN the program runs
    expected = {
        (member.account_id, member.cluster_region(cluster), cluster.name)
        for member in settings.members
        for cluster in member.clusters
        if not cluster.existing
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
        for configured in _created_clusters(member):
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
        for configured in _created_clusters(member):
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


def test_each_function_that_acts_in_members_has_its_own_role_in_every_member(
    stack_run: ProgramRun, settings: FleetSettings
):
    enabled = settings.enabled_functions(FUNCTIONS)
    acting = sorted(spec.name for spec in enabled if spec.acts_in_members)
    for member in settings.members:
        # GIVEN a member account WHEN its member roles are read
        roles = _member_roles(stack_run, member.account_id)
        # THEN there is one per function with member actions, named after it, and no other
        assert sorted(role.inputs["name"] for role in roles) == sorted(
            member_role_name(stack_run.stack, function) for function in acting
        )
        assert all(len(role.inputs["name"]) <= 64 for role in roles)
        # AND each is created once, through the account's first region's provider (IAM is
        # global: a role per region would collide on its name)
        assert {_placed(role) for role in roles} == {(member.account_id, member.regions[0])}
    # AND the stack tells which role each function uses
    assert stack_run.stack_outputs["member_role_names"] == {
        function: member_role_name(stack_run.stack, function) for function in acting
    }


def test_functions_without_member_actions_have_no_member_role(
    stack_run: ProgramRun, settings: FleetSettings
):
    names = {role.inputs.get("name") for role in stack_run.of_type(ROLE)}
    for spec in settings.enabled_functions(FUNCTIONS):
        if not spec.acts_in_members:
            # GIVEN a function that acts only in the hub THEN no account has a role for it
            assert member_role_name(stack_run.stack, spec.name) not in names, spec.name


def test_each_member_role_trusts_only_its_functions_exact_hub_role(
    stack_run: ProgramRun, settings: FleetSettings
):
    hub = settings.hub.account_id
    for member in settings.members:
        for spec in settings.enabled_functions(FUNCTIONS):
            if not spec.acts_in_members:
                continue
            # GIVEN a function's member role
            role = _member_role(stack_run, member.account_id, spec.name)
            hub_role = (
                f"arn:aws:iam::{hub}:role/lambda-fleet/{stack_run.stack}/"
                f"{function_name(stack_run.stack, spec.name)}"
            )
            # THEN it trusts the hub account only when the caller is exactly that hub role
            assert json.loads(role.inputs["assumeRolePolicy"]) == {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "OnlyThisFunctionsHubRole",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{hub}:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"ArnEquals": {"aws:PrincipalArn": hub_role}},
                    }
                ],
            }
            # AND that hub role is the function's role in the plan
            (function_role,) = [
                r
                for r in stack_run.of_type(ROLE)
                if r.inputs.get("name") == function_name(stack_run.stack, spec.name)
            ]
            assert function_role.outputs["arn"] == hub_role


def _reads_only(action: str) -> bool:
    return action.split(":", 1)[1].startswith(("Describe", "List", "Get"))


def test_each_member_role_grants_only_its_functions_actions_scoped_to_the_account(
    stack_run: ProgramRun, settings: FleetSettings
):
    for member in settings.members:
        for spec in settings.enabled_functions(FUNCTIONS):
            if not spec.acts_in_members:
                continue
            # GIVEN a function's member role and its policy
            role = _member_role(stack_run, member.account_id, spec.name)
            (policy,) = _policies_of(stack_run, role)
            granted: set[str] = set()
            for statement in policy["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement["Action"]
                resources = statement["Resource"]
                granted.update(actions)
                # THEN no action is a wildcard
                assert all(action != "*" and not action.endswith(":*") for action in actions)
                # AND "*" resources are only for read-only actions without resource-level
                # permissions (nothing may change anything on "*")
                if "*" in resources:
                    assert resources == ["*"]
                    assert set(actions) <= NO_RESOURCE_LEVEL_ACTIONS
                    assert all(_reads_only(action) for action in actions), actions
                else:
                    for arn in resources:
                        assert f":{member.account_id}:" in arn or arn in ACCOUNTLESS_ARNS, arn
            # AND exactly that function's catalog member actions are granted, but those the
            # stack never uses
            used = set(spec.member_actions) - withheld_member_actions(
                spec, settings.cleanup_policy()
            )
            assert sorted(granted) == sorted(used), spec.name
            # AND every condition on the stack names this stack, none the catalog's stand-in
            assert STACK_PLACEHOLDER not in json.dumps(policy), spec.name
            if spec.name == "backup_scheduler":
                (deletion,) = _statements_granting(
                    stack_run, member.account_id, spec.name, "ec2:DeleteSnapshot"
                )
                stack_condition = deletion["Condition"]["StringEquals"]
                assert stack_condition["aws:ResourceTag/lambda-fleet:stack"] == stack_run.stack


def _statements_granting(
    run: ProgramRun, account_id: str, function: str, action: str
) -> list[dict[str, Any]]:
    (policy,) = _policies_of(run, _member_role(run, account_id, function))
    return [s for s in policy["Statement"] if action in s["Action"]]


def _deleting_cleanup_statements(account_id: str, action: str) -> list[dict[str, Any]]:
    """The dev stack's cleanup member role statements granting `action`, had its policy (which
    only notifies) deleted every kind."""
    deleting = CleanupPolicy(mode=DELETE, resources=list(ALL_RESOURCE_KINDS))
    spec = FUNCTIONS_BY_NAME["cleanup_manager"]
    document = member_policy_document(spec, "aws", account_id, (), "dev", cleanup_policy=deleting)
    return [s for s in json.loads(document)["Statement"] if action in s["Action"]]


def test_a_cleanup_that_only_notifies_may_delete_nothing(
    program_runs: dict[str, ProgramRun], stack_settings: Callable[[str], FleetSettings]
):
    # GIVEN the dev stack, whose cleanup policy only notifies
    stack_run, settings = program_runs["dev"], stack_settings("dev")
    assert settings.cleanup_policy().mode != DELETE
    for member in settings.members:
        # WHEN its cleanup member role is read
        (policy,) = _policies_of(
            stack_run, _member_role(stack_run, member.account_id, "cleanup_manager")
        )
        granted = {action for statement in policy["Statement"] for action in statement["Action"]}
        # THEN it may mark, but delete no snapshot, volume nor Lambda version
        assert "ec2:CreateTags" in granted
        assert granted.isdisjoint(CLEANUP_DELETIONS.values())


@pytest.mark.parametrize(
    ("resources", "deletions"),
    [
        (["volumes"], {"ec2:DeleteVolume"}),
        (["snapshots", "lambda_versions"], {"ec2:DeleteSnapshot", "lambda:DeleteFunction"}),
    ],
)
def test_a_deleting_cleanup_may_delete_only_the_kinds_its_policy_names(
    resources: list[str], deletions: set[str]
):
    # GIVEN a cleanup policy that deletes some kinds WHEN the cleanup's member role is built
    policy = CleanupPolicy(mode=DELETE, resources=resources)
    spec = FUNCTIONS_BY_NAME["cleanup_manager"]
    document = member_policy_document(spec, "aws", "222222222222", (), "dev", cleanup_policy=policy)
    granted = {a for s in json.loads(document)["Statement"] for a in s["Action"]}
    # THEN it may delete those kinds and no other
    assert granted & set(CLEANUP_DELETIONS.values()) == deletions


def test_snapshot_and_volume_deletions_require_the_fleets_marker_tags(
    program_runs: dict[str, ProgramRun], stack_settings: Callable[[str], FleetSettings]
):
    # The dev stack deploys cleanup_manager (prod switches it off).
    stack_run, settings = program_runs["dev"], stack_settings("dev")
    account = settings.members[0].account_id
    # GIVEN the cleanup role, had its policy deleted, WHEN it deletes a snapshot or a volume
    (snapshot,) = _deleting_cleanup_statements(account, "ec2:DeleteSnapshot")
    (volume,) = _deleting_cleanup_statements(account, "ec2:DeleteVolume")
    # THEN only what carries its own stack's delete-after mark, never another stack's, and never
    # a snapshot the backups made, nor what the cleanup never deletes: a volume the backups copy,
    # a Kubernetes volume or snapshot, a snapshot of Data Lifecycle Manager or AWS Backup; nor
    # what the policy's keep tag (`keep` in the dev stack) keeps
    not_kept = {"StringEqualsIgnoreCaseIfExists": {"aws:ResourceTag/keep": "false"}}
    assert snapshot["Condition"] == {
        "Null": {
            "aws:ResourceTag/lambda-fleet:delete-after:dev": "false",
            "aws:ResourceTag/lambda-fleet:backup": "true",
            "aws:ResourceTag/CSIVolumeSnapshotName": "true",
            "aws:ResourceTag/ebs.csi.aws.com/cluster": "true",
            "aws:ResourceTag/aws:dlm:lifecycle-policy-id": "true",
            "aws:ResourceTag/aws:backup:source-resource": "true",
        },
        "StringEquals": {"ec2:Owner": account},
        **not_kept,
    }
    assert volume["Condition"] == {
        "Null": {
            "aws:ResourceTag/lambda-fleet:delete-after:dev": "false",
            "aws:ResourceTag/backup": "true",
            "aws:ResourceTag/CSIVolumeName": "true",
            "aws:ResourceTag/ebs.csi.aws.com/cluster": "true",
            "aws:ResourceTag/kubernetes.io/created-for/pv/name": "true",
        },
        **not_kept,
    }
    # AND it only ever adds or removes its stack's mark
    (tagging,) = _statements_granting(stack_run, account, "cleanup_manager", "ec2:CreateTags")
    assert "ec2:DeleteTags" in tagging["Action"]
    assert tagging["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": "lambda-fleet:delete-after:dev"},
        "Null": {"aws:TagKeys": "false"},
    }
    # GIVEN the backup role THEN it deletes only its own stack's snapshots and tags only new
    # ones with its stack, and then its own stack's snapshots, or those without the stack tag,
    # with nothing but their id and its stack
    (backup,) = _statements_granting(stack_run, account, "backup_scheduler", "ec2:DeleteSnapshot")
    assert backup["Condition"] == {
        "Null": {"aws:ResourceTag/lambda-fleet:backup": "false"},
        "StringEquals": {"aws:ResourceTag/lambda-fleet:stack": "dev", "ec2:Owner": account},
    }
    tagging_new, tagging_own_id = _statements_granting(
        stack_run, account, "backup_scheduler", "ec2:CreateTags"
    )
    assert tagging_new["Condition"] == {
        "StringEquals": {
            "ec2:CreateAction": "CreateSnapshot",
            "aws:RequestTag/lambda-fleet:stack": "dev",
        }
    }
    assert tagging_own_id["Condition"] == {
        "Null": {"aws:ResourceTag/lambda-fleet:backup": "false", "aws:TagKeys": "false"},
        "StringEqualsIfExists": {"aws:ResourceTag/lambda-fleet:stack": "dev"},
        "StringEquals": {"aws:RequestTag/lambda-fleet:stack": "dev"},
        "ForAllValues:StringEquals": {
            "aws:TagKeys": ["lambda-fleet:snapshot-id", "lambda-fleet:stack"]
        },
    }
    assert tagging_new["Action"] == tagging_own_id["Action"] == ["ec2:CreateTags"]
    assert tagging_new["Sid"] != tagging_own_id["Sid"]
    # AND it snapshots only a volume carrying the backup tag, the new snapshot apart
    volumes, snapshots = _statements_granting(
        stack_run, account, "backup_scheduler", "ec2:CreateSnapshot"
    )
    assert volumes["Resource"] == [f"arn:aws:ec2:*:{account}:volume/*"]
    assert volumes["Condition"] == {"Null": {"aws:ResourceTag/backup": "false"}}
    assert snapshots["Resource"] == ["arn:aws:ec2:*::snapshot/*"]
    assert "Condition" not in snapshots
    # AND it backs up only a DynamoDB table carrying the backup tag, and deletes only the
    # account's backups (the reference lists no condition key for a backup)
    (tables,) = _statements_granting(
        stack_run, account, "backup_scheduler", "dynamodb:CreateBackup"
    )
    assert tables["Action"] == ["dynamodb:CreateBackup"]
    assert tables["Resource"] == [f"arn:aws:dynamodb:*:{account}:table/*"]
    assert tables["Condition"] == {"Null": {"aws:ResourceTag/backup": "false"}}
    (backups,) = _statements_granting(
        stack_run, account, "backup_scheduler", "dynamodb:DeleteBackup"
    )
    assert backups["Resource"] == [f"arn:aws:dynamodb:*:{account}:table/*/backup/*"]
    assert "Condition" not in backups


def test_bucket_reads_and_snapshot_deletions_and_sharing_reads_reach_only_the_members_own(
    program_runs: dict[str, ProgramRun], stack_settings: Callable[[str], FleetSettings]
):
    # The dev stack deploys the scanner, the cleanup and the backups.
    stack_run, settings = program_runs["dev"], stack_settings("dev")
    owner_keys = {"arn:aws:s3:::*": "s3:ResourceAccount", "arn:aws:ec2:*::snapshot/*": "ec2:Owner"}
    for member in settings.members:
        held = set()
        for role in _member_roles(stack_run, member.account_id):
            (policy,) = _policies_of(stack_run, role)
            for statement in policy["Statement"]:
                # GIVEN a member role statement on an ARN format that names no account (but the
                # snapshot CreateSnapshot creates, which has no owner key before it exists)
                if statement["Resource"] in ([arn] for arn in owner_keys) and statement[
                    "Action"
                ] != ["ec2:CreateSnapshot"]:
                    (arn,) = statement["Resource"]
                    # THEN its condition names the member as the resource's owner (the keys
                    # the Service Authorization Reference lists for these actions)
                    key = owner_keys[arn]
                    assert statement["Condition"]["StringEquals"][key] == member.account_id, (
                        role.inputs["name"],
                        statement["Sid"],
                    )
                    held.add((role.inputs["name"], key, tuple(statement["Action"])))
        # AND a cleanup that deletes has its snapshot deletions held too
        (deletion,) = _deleting_cleanup_statements(member.account_id, "ec2:DeleteSnapshot")
        assert deletion["Condition"]["StringEquals"]["ec2:Owner"] == member.account_id
        # AND the scanner's bucket reads, the backups' snapshot deletions and the cleanup's reads
        # of a snapshot's sharing are held (the dev cleanup only notifies: it deletes nothing)
        cleanup_role = member_role_name(stack_run.stack, "cleanup_manager")
        assert {(role, key, actions) for role, key, actions in held if key == "ec2:Owner"} == {
            (cleanup_role, "ec2:Owner", ("ec2:DescribeSnapshotAttribute",)),
            (
                member_role_name(stack_run.stack, "backup_scheduler"),
                "ec2:Owner",
                ("ec2:DeleteSnapshot",),
            ),
        }
        assert {role for role, key, _ in held if key == "s3:ResourceAccount"} == {
            member_role_name(stack_run.stack, "security_scanner")
        }


def test_the_conditions_name_the_tags_the_handlers_write():
    # GIVEN the marker tags the member role conditions name
    # THEN they are the tags cleanup marks with and backup puts on its own snapshots
    assert CLEANUP_MARK_TAG.replace(STACK_PLACEHOLDER, "prod") == mark_tag("prod")
    assert BACKUP_TAG == COPY_TAG
    assert SNAPSHOT_ID_TAG == OWN_ID_TAG
    assert STACK_TAG == COPY_STACK_TAG
    # AND the tags of what the cleanup's deletions are refused are those it never deletes by
    assert set(VOLUME_TAGS_NEVER_DELETED) == {COPIED_VOLUME_TAG, *KUBERNETES_VOLUME_TAGS}
    assert set(SNAPSHOT_TAGS_NEVER_DELETED) == {
        *KUBERNETES_SNAPSHOT_TAGS,
        *LIFECYCLE_MANAGED_SNAPSHOT_TAGS,
    }


def test_every_destructive_member_action_in_the_plan_is_conditioned(
    stack_run: ProgramRun, settings: FleetSettings
):
    for member in settings.members:
        for role in _member_roles(stack_run, member.account_id):
            (policy,) = _policies_of(stack_run, role)
            for statement in policy["Statement"]:
                # GIVEN any member role statement that deletes snapshots or volumes
                if set(statement["Action"]) & CONDITIONED_ACTIONS:
                    # THEN it carries a condition
                    assert statement.get("Condition"), role.inputs["name"]


def test_lambda_deletions_are_limited_to_qualified_versions(
    stack_settings: Callable[[str], FleetSettings],
):
    # The dev stack deploys cleanup_manager (prod switches it off).
    settings = stack_settings("dev")
    for member in settings.members:
        # GIVEN the cleanup role, had its policy deleted, WHEN it deletes Lambda code
        (statement,) = _deleting_cleanup_statements(member.account_id, "lambda:DeleteFunction")
        # THEN only qualified version ARNs (function:<name>:<version>), never whole functions,
        # and none of a function the policy's keep tag keeps
        assert statement["Action"] == ["lambda:DeleteFunction"]
        assert statement["Resource"] == [f"arn:aws:lambda:*:{member.account_id}:function:*:*"]
        assert statement["Condition"] == {
            "StringEqualsIgnoreCaseIfExists": {"aws:ResourceTag/keep": "false"}
        }


def test_the_anomaly_detector_reads_the_alarms_of_its_member_account_only(
    stack_run: ProgramRun, settings: FleetSettings
):
    for member in settings.members:
        # GIVEN the anomaly detector's member role WHEN it reads an alarm (the unit its event
        # leaves out)
        (statement,) = _statements_granting(
            stack_run, member.account_id, "anomaly_detector", "cloudwatch:DescribeAlarms"
        )
        # THEN only that account's alarms, read and nothing else
        assert statement["Action"] == ["cloudwatch:DescribeAlarms"]
        assert statement["Resource"] == [f"arn:aws:cloudwatch:*:{member.account_id}:alarm:*"]


@pytest.mark.parametrize("function", ["health_monitor", "change_validator", "performance_analyzer"])
def test_the_load_balancer_readers_may_find_load_balancers_by_their_tag_in_every_member(
    stack_run: ProgramRun, settings: FleetSettings, function: str
):
    for member in settings.members:
        # GIVEN the function's member role WHEN it finds a cluster's load balancers by their
        # cluster tag (the Resource Groups Tagging API)
        (statement,) = _statements_granting(
            stack_run, member.account_id, function, "tag:GetResources"
        )
        # THEN it may, on "*" (GetResources has no resource-level permissions), and may still
        # read the load balancers' tags from ELB, for a member whose SCP refuses it
        assert statement["Resource"] == ["*"]
        assert "elasticloadbalancing:DescribeTags" in statement["Action"]


def test_a_created_cluster_admits_its_nodes_and_no_member_role_into_kubernetes(
    stack_run: ProgramRun, settings: FleetSettings
):
    for member in settings.members:
        for configured in _created_clusters(member):
            # GIVEN a created cluster WHEN its access entries are read
            entries = _cluster(stack_run, member.account_id, configured.name).inputs[
                "accessEntries"
            ]
            # THEN the only one is its nodes': every function acts on clusters through the EKS
            # API, none through Kubernetes, so no member role may read the cluster's objects
            assert list(entries) == ["nodes"]
            assert entries["nodes"]["type"] == "EC2_LINUX"


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
    hub_bus = (
        f"arn:aws:events:{settings.hub.region}:{settings.hub.account_id}:"
        f"event-bus/lambda-fleet-{stack_run.stack}-member-events"
    )
    catalog_patterns = _forwarded_catalog_patterns()
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
            # THEN there is one, whose pattern is an `$or` of catalog patterns
            (rule,) = rules
            pattern = json.loads(rule.inputs["eventPattern"])
            alternatives = or_alternatives(pattern)
            assert alternatives is not None
            # AND every forwarded catalog pattern is matched by it
            for catalog_pattern in catalog_patterns:
                assert pattern_covers(pattern, catalog_pattern)
            # AND it forwards nothing broader: each of its patterns is a catalog pattern
            assert all(alternative in catalog_patterns for alternative in alternatives)
            # AND no event matches two of its patterns, so the hub never gets it twice
            for index, alternative in enumerate(alternatives):
                for other in alternatives[index + 1 :]:
                    assert not pattern_covers(alternative, other)
                    assert not pattern_covers(other, alternative)
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
                # AND EventBridge may assume the role for the forwarding rule alone, in any
                # region of the account: another rule there cannot put events on the hub bus
                (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
                assert trust["Principal"] == {"Service": "events.amazonaws.com"}
                assert trust["Condition"]["StringEquals"] == {
                    "aws:SourceAccount": member.account_id
                }
                (source_arns,) = trust["Condition"]["ArnLike"].values()
                assert list(trust["Condition"]["ArnLike"]) == ["aws:SourceArn"]
                assert fnmatch.fnmatchcase(rule.outputs["arn"], source_arns)
                other_rule = f"arn:aws:events:{region}:{member.account_id}:rule/another-rule"
                assert not fnmatch.fnmatchcase(other_rule, source_arns)


SPOT = EventRule(
    name="spot", pattern={"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption"]}
)
FINDING = EventRule(
    name="finding", pattern={"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}
)


def test_forwarding_pattern_of_one_rule_is_that_rules_pattern():
    # GIVEN one forwarded rule WHEN its forwarding pattern is built
    pattern = forwarding_pattern([SPOT])
    # THEN it is the rule's own pattern: EventBridge reads a one-pattern `$or` as a field name
    assert pattern == SPOT.pattern


def test_forwarding_pattern_of_several_rules_matches_what_each_matches_and_nothing_more():
    # GIVEN two forwarded rules WHEN their forwarding pattern is built
    pattern = forwarding_pattern([SPOT, FINDING])
    # THEN it is their `$or`, which covers each of them
    assert pattern == {"$or": [SPOT.pattern, FINDING.pattern]}
    assert pattern_covers(pattern, SPOT.pattern)
    assert pattern_covers(pattern, FINDING.pattern)
    # AND it covers no event that neither matches, and is covered only by a cover of both
    assert not pattern_covers(pattern, {"source": ["aws.ec2"]})
    assert not pattern_covers(SPOT.pattern, pattern)
    assert pattern_covers({"source": ["aws.ec2", "aws.guardduty"]}, pattern)


def test_pattern_with_or_beside_other_fields_covers_only_an_identical_one():
    # GIVEN a pattern that mixes `$or` with another field
    mixed = {"source": ["aws.ec2"], "$or": [{"detail-type": ["a"]}, {"detail-type": ["b"]}]}
    # THEN it is compared conservatively: it covers itself, not a narrower exact pattern
    assert pattern_covers(mixed, mixed)
    assert not pattern_covers(mixed, {"source": ["aws.ec2"], "detail-type": ["a"]})


def test_prefix_matcher_covers_the_exact_values_it_starts_and_nothing_else():
    # GIVEN CloudTrail's forwarded pattern, which names its sources by the `aws.` prefix
    cloudtrail = {
        "source": [{"prefix": "aws."}],
        "detail-type": ["AWS API Call via CloudTrail"],
    }
    # THEN it covers a narrower pattern on one `aws.` service's calls, so that one is not
    # forwarded a second time beside it
    eks_changes = {
        "source": ["aws.eks"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventName": ["UpdateNodegroupConfig"]},
    }
    assert pattern_covers(cloudtrail, eks_changes)
    # AND not a source outside the prefix, nor another prefix, nor a wider pattern
    assert not pattern_covers(cloudtrail, {**eks_changes, "source": ["custom.eks"]})
    assert not pattern_covers(cloudtrail, {**eks_changes, "source": [{"prefix": "aws.e"}]})
    assert not pattern_covers(eks_changes, cloudtrail)


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
                "existing": cluster.existing,
                "node_groups": [group.name for group in cluster.node_groups],
            }
            for cluster in member.clusters
        }
        for member in settings.members
    }


def _acting(member_actions: tuple[str, ...], **more: Any) -> FunctionSpec:
    return FunctionSpec(
        name="unknown",
        description="",
        memory_mb=128,
        timeout_seconds=3,
        environment={"MEMBER_ROLE_NAME": EnvSource.MEMBER_ROLE_NAME},
        permissions=(
            PermissionStatement(
                actions=("sts:AssumeRole",), resources=(ResourceRef.OWN_MEMBER_ROLES,)
            ),
        ),
        member_actions=member_actions,
        **more,
    )


def test_a_member_action_without_a_declared_scope_stops_the_program():
    # GIVEN a catalog function with a member action the scope table does not know
    spec = _acting(("ec2:TerminateInstances",))
    # WHEN its member role's policy is built THEN it fails naming the action
    with pytest.raises(UnscopedMemberActionError, match="ec2:TerminateInstances"):
        member_policy_document(
            spec, "aws", "222222222222", (), "dev", cleanup_policy=CleanupPolicy()
        )


def test_a_destructive_member_action_without_conditions_stops_the_program():
    # GIVEN a catalog function that deletes volumes without naming the tags it is limited to
    spec = _acting(("ec2:DeleteVolume",))
    # WHEN its member role's policy is built THEN it fails naming the function and the action
    with pytest.raises(UnconditionedMemberActionError, match=r"unknown.*ec2:DeleteVolume"):
        member_policy_document(
            spec, "aws", "222222222222", (), "dev", cleanup_policy=CleanupPolicy()
        )


def test_member_actions_without_a_role_to_assume_are_refused_by_the_catalog():
    # GIVEN a function with member actions but no sts:AssumeRole on its own member role
    # WHEN it is declared THEN the catalog refuses it
    with pytest.raises(ValueError, match="all or none"):
        FunctionSpec(
            name="half",
            description="",
            memory_mb=128,
            timeout_seconds=3,
            environment={},
            permissions=(),
            member_actions=("ec2:DescribeVolumes",),
        )


def test_alternative_conditions_of_one_set_or_an_empty_one_are_refused_by_the_catalog():
    # GIVEN a condition set
    marked = (Condition("Null", "k", ("false",)),)
    # WHEN alternatives are declared with only it, or beside an empty set
    # THEN the catalog refuses them: an empty set would grant the action unconditionally
    for alternatives in ((marked,), (marked, ())):
        with pytest.raises(ValueError, match="at least two condition sets"):
            AnyOf(alternatives)


def test_conditions_for_an_action_the_function_lacks_are_refused_by_the_catalog():
    with pytest.raises(ValueError, match="ec2:DeleteSnapshot"):
        _acting(
            ("ec2:DescribeVolumes",),
            member_conditions={"ec2:DeleteSnapshot": (Condition("Null", "k", ("false",)),)},
        )


def test_member_forwarding_waits_for_the_inventory_that_lists_the_member(
    stack_run: ProgramRun, settings: FleetSettings
):
    # GIVEN the hub's inventory object and every member's forwarding rules and targets
    (inventory,) = [
        bucket_object
        for bucket_object in stack_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if bucket_object.inputs["key"] == "config/fleet-inventory.json"
    ]
    members = {member.account_id for member in settings.members}
    forwarding = [
        resource
        for resource in [*stack_run.of_type(EVENT_RULE), *stack_run.of_type(EVENT_TARGET)]
        if _placed(resource)[0] in members
    ]
    assert len(forwarding) == 2 * sum(len(member.regions) for member in settings.members)
    # THEN each is created after the inventory object, so the first event a new member forwards
    # finds it listed and the detector never takes it for a member that left
    for resource in forwarding:
        assert inventory.urn in stack_run.dependencies_of(resource), resource.urn
    # AND the inventory waits for nothing of a member account: no cycle, no member first
    by_urn = stack_run.by_urn()
    assert not [
        urn
        for urn in stack_run.dependencies_of(inventory)
        if by_urn[urn].placement is not None and by_urn[urn].placement.account_id in members
    ]
