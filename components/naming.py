"""Names shared by the hub and the member accounts, so both halves agree on them.

Member execution roles trust exactly `arn:aws:iam::<hub>:role/lambda-fleet/<stack>/*`, so every
function role must live under `function_role_path(stack)`, and handlers assume the role named
`member_execution_role_name(stack)` in each member. Nothing else may be created under that path:
a role there can act in every member account.
"""

from __future__ import annotations

import hashlib

# Lambda function, IAM role, SQS queue, schedule and rule names are limited to 64 characters.
MAX_NAME_LENGTH = 64


def function_role_path(stack: str) -> str:
    """The IAM path of the hub's function roles; member roles trust only roles under it."""
    return f"/lambda-fleet/{stack}/"


def member_execution_role_name(stack: str) -> str:
    """The role each member account creates for the hub's functions to assume."""
    return f"lambda-fleet-{stack}-member-execution"


def bounded_name(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """`name` itself when it fits, else a stable prefix plus a hash of the whole name."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def resource_prefix(stack: str) -> str:
    """The prefix of every physical name in the hub account: short, stack-scoped."""
    return f"lf-{stack}"


def function_name(stack: str, function: str) -> str:
    """The Lambda function name of a catalog function: `lf-<stack>-<name with dashes>`."""
    return bounded_name(f"{resource_prefix(stack)}-{function.replace('_', '-')}")


def function_log_group_name(stack: str, function: str) -> str:
    """The log group Lambda writes to for a catalog function."""
    return f"/aws/lambda/{function_name(stack, function)}"
