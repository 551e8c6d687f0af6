"""The member execution role: the one identity through which the hub's functions act in a member.

Handlers assume it per call (by the name `member_execution_role_name(stack)`, their
`MEMBER_ROLE_NAME`). Its trust policy names the hub account's root as principal but only lets
through roles under the hub's function-role path, so neither another hub role nor another
stack's functions can assume it. Its permissions are generated from the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.model import FunctionSpec
from components.member_permissions import member_policy_document
from components.naming import function_role_path, member_execution_role_name


@dataclass(frozen=True)
class MemberAccessArgs:
    stack: str
    partition: str
    member_account_id: str
    hub_account_id: str
    functions: Sequence[FunctionSpec]
    # IAM is global: the account's first region's provider creates the role.
    provider: aws.Provider


def execution_role_trust_policy(partition: str, hub_account_id: str, stack: str) -> str:
    """Trust the hub account, but only for principals under the stack's function-role path."""
    function_roles = f"arn:{partition}:iam::{hub_account_id}:role{function_role_path(stack)}*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "HubFunctionRolesOnly",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{hub_account_id}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"ArnLike": {"aws:PrincipalArn": function_roles}},
                }
            ],
        },
        indent=2,
    )


class MemberAccess(pulumi.ComponentResource):
    """Exactly one execution role per member account, with the catalog's member actions."""

    role: aws.iam.Role

    def __init__(
        self, name: str, args: MemberAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:member:MemberAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.role = aws.iam.Role(
            f"{name}-execution",
            name=member_execution_role_name(args.stack),
            description="Assumed by the lambda-fleet hub functions to act in this account",
            assume_role_policy=execution_role_trust_policy(
                args.partition, args.hub_account_id, args.stack
            ),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-actions",
            name="member-actions",
            role=self.role.id,
            policy=member_policy_document(args.functions, args.partition, args.member_account_id),
            opts=child,
        )
        self.register_outputs({"role_name": self.role.name, "role_arn": self.role.arn})
