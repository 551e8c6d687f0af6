"""What a function's member role may do: its catalog `member_actions`, scoped per action.

The scoping is a declared table (action -> the kind of resource it acts on), in the manner of
Cloud Custodian's resource manifests, instead of rules spread over code: a reviewer reads one
table, and an action that the catalog adds without a row here stops the program rather than
being granted on `*` by accident. Destructive actions must also come with the catalog's
conditions (the fleet's marker tags); without them the program stops too. Lambda deletions are
scoped to qualified version ARNs (`function:<name>:<version>`), never a whole function. The
cleanup's deletions are left out of its role where its stack's cleanup policy never makes them
(`withheld_member_actions`: in `notify` mode, or of a kind the policy does not name).

Resource ARNs are limited to the member's own account wherever the ARN format carries an account
id. Two formats do not: EC2 snapshots (`arn:aws:ec2:<region>::snapshot/<id>`) and S3 buckets
(`arn:aws:s3:::<bucket>`). There a condition on the resource's owner holds the statement to the
member's own: `s3:ResourceAccount` for the bucket actions and `ec2:Owner` for DeleteSnapshot
and DescribeSnapshotAttribute, keys the Service Authorization Reference lists for those
actions. CreateSnapshot, CreateTags and DeleteTags keep the accountless snapshot pattern: the
reference lists no owner key for the snapshot CreateSnapshot creates, and their conditions are
the catalog's tags.

Snapshots (`ec2:CreateSnapshot`) and DynamoDB backups (`dynamodb:CreateBackup`) are taken only
of volumes and tables carrying the backup tag: the volume or table ARN gets a statement of its own
under an `aws:ResourceTag` condition (`ResourceScope.tag_required_on`), the snapshot being
created another without it. DeleteBackup cannot be held so (`DYNAMODB_BACKUPS`).

Node-group changes (`eks:UpdateNodegroupConfig`, the only mutating EKS action granted) reach only
the node groups the stack file declares in that account, of its clusters created or existing:
one `nodegroup/<cluster>/<node group>/*` ARN per node group, in its cluster's region, so a bug or
a crafted `/scale` request cannot change another team's cluster in the same account, nor a node
group another tool added to one of the fleet's clusters (eks_scaler and spot_optimizer change
declared node groups only). The names are the stack file's (the program creates them under
their declared names), known before anything is registered; an account without a declared
cluster gets no such statement (IAM refuses an empty Resource list). A node group's ARN takes
about 90 characters (20-character cluster and group names) to 220 (an existing cluster's name
of 100, a group's of 63), and a role's policies 10,240 together (IAM, white space not
counted), of which the rest of eks_scaler's takes about 480: an account of 100 node groups of
short names fits, one of 45 of the longest may not. In an account whose node groups would take a
member role's policy past the limit, its clusters are reached as a whole instead (one
`nodegroup/<cluster>/*/*` ARN each, `as_whole_clusters`: about 90 characters a cluster), with a
warning naming the account; past the limit even so, the program stops. The read-only EKS actions
stay account-wide on purpose: health and security checks describe every cluster and node group
of the account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from catalog.model import KEEP_TAG_PLACEHOLDER, STACK_PLACEHOLDER, Condition, FunctionSpec
from components.exceptions import FleetProgramError
from components.policies import condition_block
from components.settings import CLEANUP_FUNCTION
from fleet_shared.backup_tags import BACKUP_TAG
from fleet_shared.cleanup_policy import (
    DELETE,
    LAMBDA_VERSIONS,
    SNAPSHOTS,
    VOLUMES,
    CleanupPolicy,
    ResourceKind,
)


@dataclass(frozen=True)
class DeclaredCluster:
    """A cluster the stack file declares in a member account, created or existing, with its
    declared node groups: the only ones the node-group changes reach. None for a cluster reached
    as a whole (`as_whole_clusters`)."""

    region: str
    name: str
    node_groups: tuple[str, ...] = ()


def as_whole_clusters(clusters: Sequence[DeclaredCluster]) -> list[DeclaredCluster]:
    """`clusters` reached as a whole: each cluster's node groups by one pattern, for an account
    whose node groups one by one would take a member role's policy past IAM's limit."""
    return [replace(cluster, node_groups=()) for cluster in clusters]


@dataclass(frozen=True)
class ResourceScope:
    """A kind of resource, as ARN patterns with `{partition}` and `{account}` placeholders, and
    for a scope `per_declared_cluster` also `{region}`, `{cluster}` and `{node_group}`: one ARN per
    pattern and declared node group of the account (`*`, every one, for a cluster reached as a
    whole), none when it declares none."""

    sid: str
    arn_patterns: tuple[str, ...]
    # For an ARN format without an account id: the condition key naming the resource's owner,
    # set to the member's account so that the statement reaches none of another account's.
    owner_account_key: str | None = None
    per_declared_cluster: bool = False
    # (pattern, tag key): that pattern's resources only while they carry the tag, in a statement
    # of their own (an action that also creates a resource, untagged yet, needs the other).
    tag_required_on: tuple[str, str] | None = None

    def arns(
        self, partition: str, account_id: str, clusters: Sequence[DeclaredCluster]
    ) -> list[str]:
        if not self.per_declared_cluster:
            return [
                pattern.format(partition=partition, account=account_id)
                for pattern in self.arn_patterns
            ]
        # Sorted: the same stack file gives the same policy, whatever the order of its clusters.
        return sorted(
            {
                pattern.format(
                    partition=partition,
                    account=account_id,
                    region=cluster.region,
                    cluster=cluster.name,
                    node_group=node_group,
                )
                for pattern in self.arn_patterns
                for cluster in clusters
                for node_group in cluster.node_groups or ("*",)
            }
        )

    def parts(
        self, partition: str, account_id: str, clusters: Sequence[DeclaredCluster]
    ) -> list[tuple[str, list[str], dict[str, dict[str, str]]]]:
        """The scope's statements as (sid, resources, condition): one, or with
        `tag_required_on` the tagged pattern's apart, under its tag's condition; none for a
        scope that reaches no resource of the account."""
        resources = self.arns(partition, account_id, clusters)
        owner = self.owner_condition(account_id)
        if self.tag_required_on is None:
            return [(self.sid, resources, owner)] if resources else []
        pattern, tag_key = self.tag_required_on
        tagged = pattern.format(partition=partition, account=account_id)
        tag_condition = {"Null": {f"aws:ResourceTag/{tag_key}": "false"}}
        untagged = [arn for arn in resources if arn != tagged]
        parts = [(f"{self.sid}Tagged", [tagged], {**owner, **tag_condition})]
        return parts + ([(self.sid, untagged, owner)] if untagged else [])

    def owner_condition(self, account_id: str) -> dict[str, dict[str, str]]:
        """`StringEquals` on the owner key, or nothing for an ARN format that names the account."""
        if self.owner_account_key is None:
            return {}
        return {"StringEquals": {self.owner_account_key: account_id}}


# Actions the Service Authorization Reference lists without a resource type: IAM only accepts
# "*" for them. Nor does it list a condition key that names what they read: the EC2 Describe
# calls take only ec2:Region, ListAllMyBuckets only S3's request keys (it lists the caller's own
# buckets), the others none. Its rows, and those of the owner-conditioned actions below, are in
# tests/infra/service_authorization_reference.json, which a test of that folder holds them to.
NO_RESOURCE_LEVEL = ResourceScope("NoResourceLevelPermissions", ("*",))

EKS_CLUSTERS = ResourceScope("EksClusters", ("arn:{partition}:eks:*:{account}:cluster/*",))
EKS_NODEGROUPS = ResourceScope(
    "EksNodegroups", ("arn:{partition}:eks:*:{account}:nodegroup/*/*/*",)
)
# What changes a node group reaches only the stack's own node groups (module docstring). The
# ARN ends in an id EKS gives the node group; a name holds no `*` or `?` (the stack file's names
# are EKS names: letters, digits, `-` and `_`).
EKS_DECLARED_CLUSTERS_NODEGROUPS = ResourceScope(
    "EksDeclaredClustersNodegroups",
    ("arn:{partition}:eks:{region}:{account}:nodegroup/{cluster}/{node_group}/*",),
    per_declared_cluster=True,
)
# DescribeUpdate acts on the cluster, or the node group, whose update it describes.
EKS_CLUSTERS_AND_NODEGROUPS = ResourceScope(
    "EksClustersAndNodegroups",
    (
        "arn:{partition}:eks:*:{account}:cluster/*",
        "arn:{partition}:eks:*:{account}:nodegroup/*/*/*",
    ),
)
CLOUDWATCH_ALARMS = ResourceScope(
    "CloudWatchAlarms", ("arn:{partition}:cloudwatch:*:{account}:alarm:*",)
)
EC2_VOLUMES = ResourceScope("Ec2Volumes", ("arn:{partition}:ec2:*:{account}:volume/*",))
# Both functions delete, and cleanup_manager reads the sharing of, only snapshots they listed
# with `OwnerIds=["self"]`.
EC2_SNAPSHOTS = ResourceScope(
    "Ec2Snapshots", ("arn:{partition}:ec2:*::snapshot/*",), owner_account_key="ec2:Owner"
)
EC2_SNAPSHOTS_OF_VOLUMES = ResourceScope(
    "Ec2SnapshotsOfVolumes",
    ("arn:{partition}:ec2:*:{account}:volume/*", "arn:{partition}:ec2:*::snapshot/*"),
)
# backup_scheduler copies only volumes whose tag key is `backup` exactly (one written otherwise
# is reported, not copied). Whether IAM matches the tag key of `aws:ResourceTag/backup` with or
# without its case, every volume the handler copies carries that exact key; the new snapshot,
# untagged until it exists, is the other statement's.
EC2_SNAPSHOTS_OF_BACKUP_TAGGED_VOLUMES = ResourceScope(
    "Ec2SnapshotsOfBackupTaggedVolumes",
    EC2_SNAPSHOTS_OF_VOLUMES.arn_patterns,
    tag_required_on=("arn:{partition}:ec2:*:{account}:volume/*", BACKUP_TAG),
)
# The security scanner reads the buckets ListBuckets names, which are only the caller's own.
S3_BUCKETS = ResourceScope(
    "S3Buckets", ("arn:{partition}:s3:::*",), owner_account_key="s3:ResourceAccount"
)
IAM_POLICIES = ResourceScope("IamPolicies", ("arn:{partition}:iam::{account}:policy/*",))
IAM_ROLES = ResourceScope("IamRoles", ("arn:{partition}:iam::{account}:role/*",))
IAM_USERS = ResourceScope("IamUsers", ("arn:{partition}:iam::{account}:user/*",))
IAM_GROUPS = ResourceScope("IamGroups", ("arn:{partition}:iam::{account}:group/*",))
LAMBDA_FUNCTIONS = ResourceScope(
    "LambdaFunctions", ("arn:{partition}:lambda:*:{account}:function:*",)
)
LAMBDA_FUNCTION_VERSIONS = ResourceScope(
    "LambdaFunctionVersions", ("arn:{partition}:lambda:*:{account}:function:*:*",)
)
SQS_QUEUES = ResourceScope("SqsQueues", ("arn:{partition}:sqs:*:{account}:*",))
SNS_TOPICS = ResourceScope("SnsTopics", ("arn:{partition}:sns:*:{account}:*",))
DYNAMODB_TABLES = ResourceScope("DynamoDbTables", ("arn:{partition}:dynamodb:*:{account}:table/*",))
# backup_scheduler backs up only tables carrying the backup tag, as it snapshots only volumes
# carrying it: CreateBackup acts on the table, whose tags `aws:ResourceTag` reads (DynamoDB's
# ABAC, on by default; in an account where it is off a tag condition reads no tag, and the
# backup is refused rather than made of any table).
DYNAMODB_BACKUP_TAGGED_TABLES = ResourceScope(
    "DynamoDbBackupTaggedTables",
    DYNAMODB_TABLES.arn_patterns,
    tag_required_on=(DYNAMODB_TABLES.arn_patterns[0], BACKUP_TAG),
)
# DeleteBackup acts on the backup alone, a resource type the reference lists with no condition
# key (no tag, no owner: a DynamoDB backup carries no tags), named
# `table/<table>/backup/<id>`: the table's name, which only the run's listing of tagged tables
# knows. The account's backups are as far as IAM can hold it; the handler deletes only backups
# its stack's state table records as its own.
DYNAMODB_BACKUPS = ResourceScope(
    "DynamoDbBackups", ("arn:{partition}:dynamodb:*:{account}:table/*/backup/*",)
)

# Resource types per the AWS Service Authorization Reference.
ACTION_SCOPES: dict[str, ResourceScope] = {
    "autoscaling:DescribeAutoScalingGroups": NO_RESOURCE_LEVEL,
    "autoscaling:DescribeLaunchConfigurations": NO_RESOURCE_LEVEL,
    "autoscaling:DescribeTags": NO_RESOURCE_LEVEL,
    "cloudwatch:DescribeAlarms": CLOUDWATCH_ALARMS,
    "cloudwatch:GetMetricData": NO_RESOURCE_LEVEL,
    "dynamodb:CreateBackup": DYNAMODB_BACKUP_TAGGED_TABLES,
    "dynamodb:DeleteBackup": DYNAMODB_BACKUPS,
    "dynamodb:DescribeTable": DYNAMODB_TABLES,
    "dynamodb:ListBackups": NO_RESOURCE_LEVEL,
    "dynamodb:ListTables": NO_RESOURCE_LEVEL,
    "dynamodb:ListTagsOfResource": DYNAMODB_TABLES,
    "ec2:CreateSnapshot": EC2_SNAPSHOTS_OF_BACKUP_TAGGED_VOLUMES,
    "ec2:CreateTags": EC2_SNAPSHOTS_OF_VOLUMES,
    "ec2:DeleteTags": EC2_SNAPSHOTS_OF_VOLUMES,
    "ec2:DeleteSnapshot": EC2_SNAPSHOTS,
    "ec2:DeleteVolume": EC2_VOLUMES,
    "ec2:DescribeImages": NO_RESOURCE_LEVEL,
    "ec2:DescribeInstanceTypes": NO_RESOURCE_LEVEL,
    "ec2:DescribeInstances": NO_RESOURCE_LEVEL,
    "ec2:DescribeLaunchTemplateVersions": NO_RESOURCE_LEVEL,
    "ec2:DescribeLaunchTemplates": NO_RESOURCE_LEVEL,
    "ec2:DescribeSecurityGroupRules": NO_RESOURCE_LEVEL,
    "ec2:DescribeSecurityGroups": NO_RESOURCE_LEVEL,
    "ec2:DescribeSnapshotAttribute": EC2_SNAPSHOTS,
    "ec2:DescribeSnapshots": NO_RESOURCE_LEVEL,
    "ec2:DescribeSpotPriceHistory": NO_RESOURCE_LEVEL,
    "ec2:DescribeVolumes": NO_RESOURCE_LEVEL,
    "eks:DescribeCluster": EKS_CLUSTERS,
    "eks:DescribeNodegroup": EKS_NODEGROUPS,
    "eks:DescribeUpdate": EKS_CLUSTERS_AND_NODEGROUPS,
    "eks:ListClusters": NO_RESOURCE_LEVEL,
    "eks:ListNodegroups": EKS_CLUSTERS,
    "eks:UpdateNodegroupConfig": EKS_DECLARED_CLUSTERS_NODEGROUPS,
    "elasticloadbalancing:DescribeLoadBalancers": NO_RESOURCE_LEVEL,
    "elasticloadbalancing:DescribeTags": NO_RESOURCE_LEVEL,
    "elasticloadbalancing:DescribeTargetGroups": NO_RESOURCE_LEVEL,
    "elasticloadbalancing:DescribeTargetHealth": NO_RESOURCE_LEVEL,
    "iam:GetGroupPolicy": IAM_GROUPS,
    "iam:GetPolicyVersion": IAM_POLICIES,
    "iam:GetRolePolicy": IAM_ROLES,
    "iam:GetUserPolicy": IAM_USERS,
    "iam:ListGroupPolicies": IAM_GROUPS,
    "iam:ListGroups": NO_RESOURCE_LEVEL,
    "iam:ListPolicies": NO_RESOURCE_LEVEL,
    "iam:ListRolePolicies": IAM_ROLES,
    "iam:ListRoles": NO_RESOURCE_LEVEL,
    "iam:ListUserPolicies": IAM_USERS,
    "iam:ListUsers": NO_RESOURCE_LEVEL,
    "lambda:DeleteFunction": LAMBDA_FUNCTION_VERSIONS,
    "lambda:GetPolicy": LAMBDA_FUNCTIONS,
    "lambda:ListAliases": LAMBDA_FUNCTIONS,
    "lambda:ListEventSourceMappings": NO_RESOURCE_LEVEL,
    "lambda:ListFunctions": NO_RESOURCE_LEVEL,
    "lambda:ListProvisionedConcurrencyConfigs": LAMBDA_FUNCTIONS,
    "lambda:ListTags": LAMBDA_FUNCTIONS,
    "lambda:ListVersionsByFunction": LAMBDA_FUNCTIONS,
    "s3:GetBucketPolicy": S3_BUCKETS,
    "s3:GetBucketPublicAccessBlock": S3_BUCKETS,
    "s3:GetBucketVersioning": S3_BUCKETS,
    "s3:GetEncryptionConfiguration": S3_BUCKETS,
    "s3:ListAllMyBuckets": NO_RESOURCE_LEVEL,
    "sns:GetTopicAttributes": SNS_TOPICS,
    "sns:ListTopics": NO_RESOURCE_LEVEL,
    "sqs:GetQueueAttributes": SQS_QUEUES,
    "sqs:ListQueues": NO_RESOURCE_LEVEL,
    "tag:GetResources": NO_RESOURCE_LEVEL,
}

NO_RESOURCE_LEVEL_ACTIONS = frozenset(
    action for action, scope in ACTION_SCOPES.items() if scope is NO_RESOURCE_LEVEL
)


# Actions that destroy data: granted only under conditions the catalog declares for them.
CONDITIONED_ACTIONS = frozenset({"ec2:DeleteSnapshot", "ec2:DeleteVolume"})


# The member action by which cleanup_manager deletes each kind of resource its policy may name.
CLEANUP_DELETIONS: dict[ResourceKind, str] = {
    SNAPSHOTS: "ec2:DeleteSnapshot",
    VOLUMES: "ec2:DeleteVolume",
    LAMBDA_VERSIONS: "lambda:DeleteFunction",
}


def withheld_member_actions(spec: FunctionSpec, cleanup_policy: CleanupPolicy) -> frozenset[str]:
    """The catalog member actions of `spec` its stack never uses, left out of its member role:
    the cleanup's deletions, every one in `notify` mode (which never deletes), else those of the
    kinds its policy does not name (never listed)."""
    if spec.name != CLEANUP_FUNCTION:
        return frozenset()
    if cleanup_policy.mode != DELETE:
        return frozenset(CLEANUP_DELETIONS.values())
    return frozenset(
        action for kind, action in CLEANUP_DELETIONS.items() if kind not in cleanup_policy.resources
    )


class UnscopedMemberActionError(FleetProgramError):
    """A catalog member action has no row in ACTION_SCOPES."""


class UnconditionedMemberActionError(FleetProgramError):
    """A destructive member action comes without the conditions that limit it."""


def member_actions(functions: Iterable[FunctionSpec]) -> list[str]:
    """The union of the given functions' `member_actions`, sorted."""
    return sorted({action for spec in functions for action in spec.member_actions})


def _scope(spec: FunctionSpec, action: str) -> ResourceScope:
    scope = ACTION_SCOPES.get(action)
    if scope is None:
        raise UnscopedMemberActionError(
            f"{spec.name}: member action {action!r} is in the catalog but not in "
            "components/member_permissions.py ACTION_SCOPES; declare the resources it acts on"
        )
    if action in CONDITIONED_ACTIONS and not spec.member_conditions.get(action):
        raise UnconditionedMemberActionError(
            f"{spec.name}: member action {action!r} destroys data; declare the conditions "
            "(marker tags) it is limited to in the catalog's member_conditions"
        )
    return scope


def _of_stack(
    conditions: tuple[Condition, ...], stack: str, keep_tag: str
) -> tuple[Condition, ...]:
    """`conditions` with STACK_PLACEHOLDER replaced by `stack`, KEEP_TAG_PLACEHOLDER by
    `keep_tag`."""

    def filled(text: str) -> str:
        return text.replace(STACK_PLACEHOLDER, stack).replace(KEEP_TAG_PLACEHOLDER, keep_tag)

    return tuple(
        Condition(
            condition.operator,
            filled(condition.key),
            tuple(filled(value) for value in condition.values),
        )
        for condition in conditions
    )


def member_policy_document(
    spec: FunctionSpec,
    partition: str,
    account_id: str,
    clusters: Sequence[DeclaredCluster],
    stack: str,
    *,
    cleanup_policy: CleanupPolicy,
) -> str:
    """One function's member role policy JSON for `stack` (whose cleanup policy is
    `cleanup_policy`) in the account whose declared clusters are `clusters`: a statement per
    resource scope and conditions, sorted, stable, without the actions the stack never uses
    (withheld_member_actions); none for a scope that reaches no resource of the account (a
    per-cluster scope without clusters)."""
    keep_tag = cleanup_policy.keep_tag
    grouped: dict[tuple[ResourceScope, tuple[Condition, ...]], list[str]] = {}
    used = set(spec.member_actions) - withheld_member_actions(spec, cleanup_policy)
    for action in sorted(used):
        for conditions in spec.member_condition_sets(action):
            grouped.setdefault(
                (_scope(spec, action), _of_stack(conditions, stack, keep_tag)), []
            ).append(action)
    statements = []
    for (scope, conditions), actions in sorted(
        grouped.items(), key=lambda item: (item[0][0].sid, item[1])
    ):
        for sid, resources, scope_condition in scope.parts(partition, account_id, clusters):
            statement = {
                "Sid": sid + ("Conditioned" if conditions else ""),
                "Effect": "Allow",
                "Action": actions,
                "Resource": resources,
            }
            condition = condition_block(conditions)
            for operator, keys in scope_condition.items():
                condition.setdefault(operator, {}).update(keys)
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
    _number_repeated_sids(statements)
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)


def _number_repeated_sids(statements: list[dict[str, object]]) -> None:
    """IAM requires unique statement ids: a scope with two condition sets gets numbered ones."""
    seen: dict[object, int] = {}
    for statement in statements:
        sid = statement["Sid"]
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] > 1:
            statement["Sid"] = f"{sid}{seen[sid]}"
