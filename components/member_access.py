"""The member roles: one per function that acts in members, in every member account.

A function assumes only its own role (`member_role_name(stack, function)`, its
`MEMBER_ROLE_NAME`), whose policy holds only that function's catalog member actions and whose
trust admits only that function's hub role. Functions without member actions get no role here.

The trust policy names the hub account's root as principal and requires the exact hub role ARN
in `aws:PrincipalArn`: naming the role itself as principal would fail while the hub role does not
exist yet, and would silently stop matching once it is replaced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.model import FunctionSpec
from components.aws_limits import (
    ROLE_INLINE_POLICY_CHARACTERS,
    characters_without_whitespace,
    refuse_oversize_member_policy,
)
from components.member_permissions import (
    DeclaredCluster,
    as_whole_clusters,
    member_policy_document,
)
from components.naming import function_role_arn, member_role_name
from fleet_shared.cleanup_policy import CleanupPolicy

MAX_SESSION_SECONDS = 3600


@dataclass(frozen=True)
class MemberAccessArgs:
    stack: str
    partition: str
    member_account_id: str
    hub_account_id: str
    functions: Sequence[FunctionSpec]
    # The clusters the stack file declares in the account, with their node groups: the only ones
    # the roles may change.
    clusters: Sequence[DeclaredCluster]
    # The stack's cleanup policy: the cleanup role deletes only as it may, never what it keeps.
    cleanup_policy: CleanupPolicy
    # IAM is global: the account's first region's provider creates the roles.
    provider: aws.Provider


def member_role_trust_policy(partition: str, hub_account_id: str, stack: str, function: str) -> str:
    """Trust the hub account, but only for the one hub role of `function` in this stack."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnlyThisFunctionsHubRole",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{hub_account_id}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "ArnEquals": {
                            "aws:PrincipalArn": function_role_arn(
                                partition, hub_account_id, stack, function
                            )
                        }
                    },
                }
            ],
        },
        indent=2,
    )


def member_role_policy(args: MemberAccessArgs, spec: FunctionSpec) -> str:
    """The member role policy of `spec` in the account: its node-group changes on each declared
    node group, or, when those would take it past IAM's limit, on each declared cluster as a
    whole (member_permissions' docstring), with a warning naming the account and the sizes."""

    def document(clusters: Sequence[DeclaredCluster]) -> str:
        return member_policy_document(
            spec,
            args.partition,
            args.member_account_id,
            clusters,
            args.stack,
            cleanup_policy=args.cleanup_policy,
        )

    by_node_group = document(args.clusters)
    size = characters_without_whitespace(by_node_group)
    if size <= ROLE_INLINE_POLICY_CHARACTERS:
        return by_node_group
    by_cluster = document(as_whole_clusters(args.clusters))
    if by_cluster == by_node_group:
        return by_node_group  # no node-group changes: refused as it is
    pulumi.log.warn(
        f"the member role policy of {spec.name} in account {args.member_account_id} would be "
        f"{size:,} characters with a node-group ARN per declared node group, over IAM's limit "
        f"of {ROLE_INLINE_POLICY_CHARACTERS:,}: its node-group changes reach the declared "
        f"clusters' node groups as a whole ({characters_without_whitespace(by_cluster):,} "
        "characters)"
    )
    return by_cluster


class MemberAccess(pulumi.ComponentResource):
    """`roles[function]`: the member role of each function with member actions."""

    roles: dict[str, aws.iam.Role]

    def __init__(
        self, name: str, args: MemberAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:member:MemberAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.roles = {}
        for spec in args.functions:
            if not spec.acts_in_members:
                continue
            resource_name = f"{name}-{spec.name.replace('_', '-')}"
            role = aws.iam.Role(
                resource_name,
                name=member_role_name(args.stack, spec.name),
                description=f"Assumed by the lambda-fleet {spec.name} function only",
                assume_role_policy=member_role_trust_policy(
                    args.partition, args.hub_account_id, args.stack, spec.name
                ),
                max_session_duration=MAX_SESSION_SECONDS,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{resource_name}-actions",
                name="member-actions",
                role=role.id,
                policy=refuse_oversize_member_policy(
                    args.stack, spec.name, args.member_account_id, member_role_policy(args, spec)
                ),
                opts=child,
            )
            self.roles[spec.name] = role
        self.register_outputs(
            {"role_names": {function: role.name for function, role in self.roles.items()}}
        )
