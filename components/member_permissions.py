"""What the member execution role may do: the catalog's `member_actions`, scoped per action.

The scoping is a declared table (action -> the kind of resource it acts on), in the manner of
Cloud Custodian's resource manifests, instead of rules spread over code: a reviewer reads one
table, and an action that the catalog adds without a row here stops the program rather than
being granted on `*` by accident.

Resource ARNs are limited to the member's own account wherever the ARN format carries an account
id. Two formats do not: EC2 snapshots (`arn:aws:ec2:<region>::snapshot/<id>`) and S3 buckets
(`arn:aws:s3:::<bucket>`). For those the pattern cannot name the account; identity policies
only reach another account's snapshot or bucket if that owner shares it, which the fleet never
asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from catalog.model import FunctionSpec
from components.exceptions import FleetProgramError


@dataclass(frozen=True)
class ResourceScope:
    """A kind of resource, as ARN patterns with `{partition}` and `{account}` placeholders."""

    sid: str
    arn_patterns: tuple[str, ...]

    def arns(self, partition: str, account_id: str) -> list[str]:
        return [
            pattern.format(partition=partition, account=account_id) for pattern in self.arn_patterns
        ]


# Actions that have no resource-level permissions: IAM only accepts "*" for them.
NO_RESOURCE_LEVEL = ResourceScope("NoResourceLevelPermissions", ("*",))

EKS_CLUSTERS = ResourceScope("EksClusters", ("arn:{partition}:eks:*:{account}:cluster/*",))
EKS_NODEGROUPS = ResourceScope(
    "EksNodegroups", ("arn:{partition}:eks:*:{account}:nodegroup/*/*/*",)
)
CLOUDWATCH_ALARMS = ResourceScope(
    "CloudWatchAlarms", ("arn:{partition}:cloudwatch:*:{account}:alarm:*",)
)
EC2_VOLUMES = ResourceScope("Ec2Volumes", ("arn:{partition}:ec2:*:{account}:volume/*",))
EC2_SNAPSHOTS = ResourceScope("Ec2Snapshots", ("arn:{partition}:ec2:*::snapshot/*",))
EC2_SNAPSHOTS_OF_VOLUMES = ResourceScope(
    "Ec2SnapshotsOfVolumes",
    ("arn:{partition}:ec2:*:{account}:volume/*", "arn:{partition}:ec2:*::snapshot/*"),
)
S3_BUCKETS = ResourceScope("S3Buckets", ("arn:{partition}:s3:::*",))
IAM_POLICIES = ResourceScope("IamPolicies", ("arn:{partition}:iam::{account}:policy/*",))
IAM_ROLES = ResourceScope("IamRoles", ("arn:{partition}:iam::{account}:role/*",))
IAM_USERS = ResourceScope("IamUsers", ("arn:{partition}:iam::{account}:user/*",))
LAMBDA_FUNCTIONS = ResourceScope(
    "LambdaFunctions", ("arn:{partition}:lambda:*:{account}:function:*",)
)
SQS_QUEUES = ResourceScope("SqsQueues", ("arn:{partition}:sqs:*:{account}:*",))
SNS_TOPICS = ResourceScope("SnsTopics", ("arn:{partition}:sns:*:{account}:*",))
DYNAMODB_TABLES = ResourceScope("DynamoDbTables", ("arn:{partition}:dynamodb:*:{account}:table/*",))
DYNAMODB_BACKUPS = ResourceScope(
    "DynamoDbBackups", ("arn:{partition}:dynamodb:*:{account}:table/*/backup/*",)
)

# Resource types per the AWS Service Authorization Reference.
ACTION_SCOPES: dict[str, ResourceScope] = {
    "autoscaling:DescribeAutoScalingGroups": NO_RESOURCE_LEVEL,
    "cloudwatch:DescribeAlarms": CLOUDWATCH_ALARMS,
    "cloudwatch:GetMetricData": NO_RESOURCE_LEVEL,
    "dynamodb:CreateBackup": DYNAMODB_TABLES,
    "dynamodb:DeleteBackup": DYNAMODB_BACKUPS,
    "dynamodb:DescribeTable": DYNAMODB_TABLES,
    "dynamodb:ListBackups": NO_RESOURCE_LEVEL,
    "dynamodb:ListTables": NO_RESOURCE_LEVEL,
    "dynamodb:ListTagsOfResource": DYNAMODB_TABLES,
    "ec2:CreateSnapshot": EC2_SNAPSHOTS_OF_VOLUMES,
    "ec2:CreateTags": EC2_SNAPSHOTS_OF_VOLUMES,
    "ec2:DeleteTags": EC2_SNAPSHOTS_OF_VOLUMES,
    "ec2:DeleteSnapshot": EC2_SNAPSHOTS,
    "ec2:DeleteVolume": EC2_VOLUMES,
    "ec2:DescribeImages": NO_RESOURCE_LEVEL,
    "ec2:DescribeInstanceTypes": NO_RESOURCE_LEVEL,
    "ec2:DescribeInstances": NO_RESOURCE_LEVEL,
    "ec2:DescribeSecurityGroups": NO_RESOURCE_LEVEL,
    "ec2:DescribeSnapshots": NO_RESOURCE_LEVEL,
    "ec2:DescribeSpotPriceHistory": NO_RESOURCE_LEVEL,
    "ec2:DescribeVolumes": NO_RESOURCE_LEVEL,
    "eks:DescribeCluster": EKS_CLUSTERS,
    "eks:DescribeNodegroup": EKS_NODEGROUPS,
    "eks:ListClusters": NO_RESOURCE_LEVEL,
    "eks:ListNodegroups": EKS_CLUSTERS,
    "eks:UpdateNodegroupConfig": EKS_NODEGROUPS,
    "iam:GetPolicyVersion": IAM_POLICIES,
    "iam:GetRolePolicy": IAM_ROLES,
    "iam:GetUserPolicy": IAM_USERS,
    "iam:ListPolicies": NO_RESOURCE_LEVEL,
    "iam:ListRolePolicies": IAM_ROLES,
    "iam:ListRoles": NO_RESOURCE_LEVEL,
    "iam:ListUserPolicies": IAM_USERS,
    "iam:ListUsers": NO_RESOURCE_LEVEL,
    "lambda:DeleteFunction": LAMBDA_FUNCTIONS,
    "lambda:GetPolicy": LAMBDA_FUNCTIONS,
    "lambda:ListAliases": LAMBDA_FUNCTIONS,
    "lambda:ListFunctions": NO_RESOURCE_LEVEL,
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
}

NO_RESOURCE_LEVEL_ACTIONS = frozenset(
    action for action, scope in ACTION_SCOPES.items() if scope is NO_RESOURCE_LEVEL
)


class UnscopedMemberActionError(FleetProgramError):
    """A catalog member action has no row in ACTION_SCOPES."""


def member_actions(functions: Iterable[FunctionSpec]) -> list[str]:
    """The union of every function's `member_actions`, sorted."""
    return sorted({action for spec in functions for action in spec.member_actions})


def member_policy_document(
    functions: Iterable[FunctionSpec], partition: str, account_id: str
) -> str:
    """The execution role's policy JSON: one statement per resource scope, sorted, stable."""
    grouped: dict[ResourceScope, list[str]] = {}
    for action in member_actions(functions):
        scope = ACTION_SCOPES.get(action)
        if scope is None:
            raise UnscopedMemberActionError(
                f"member action {action!r} is in the catalog but not in "
                "components/member_permissions.py ACTION_SCOPES; declare the resources it acts on"
            )
        grouped.setdefault(scope, []).append(action)
    statements = [
        {
            "Sid": scope.sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": scope.arns(partition, account_id),
        }
        for scope, actions in sorted(grouped.items(), key=lambda item: item[0].sid)
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)
