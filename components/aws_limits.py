"""AWS's size limits on inputs that grow with the stack file, checked before they are registered.

Pulumi's preview takes any input; AWS refuses one past its limit only at `pulumi up`, once other
resources have already changed. The program stops with one line naming the setting that made the
input too large instead: `members` for the inputs that grow with the member accounts, the
function's settings for its environment. The figures are AWS's documented defaults (an adjustable
quota raised for an account is not known to the program).
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from components.exceptions import StackSettingsError

# EventBridge quotas, "Event bus policy size": maximum policy size, in characters.
EVENT_BUS_POLICY_CHARACTERS = 10_240
# EventBridge quotas, "Event pattern size": maximum size of an event pattern, in characters. A
# rule on forwarded events lists every member account (16 characters each).
EVENT_PATTERN_CHARACTERS = 2_048
# Lambda quotas, "Function environment variables": 4 KB for all of a function's variables, in
# aggregate (names and values).
LAMBDA_ENVIRONMENT_BYTES = 4_096
# The most the cleanup function's variables other than its policy take: names and ARNs built
# from the stack name, hub account and region, and the schedule's time zone, under 1 KB at their
# longest (a test measures them with the longest stack name the buckets allow). The rest of the
# 4 KB is the policy's, whose `require_tags` a stack file can grow without bound: it is checked
# before anything is registered.
FIXED_VARIABLES_MOST_BYTES = 1_024
# IAM quotas, "Role policy size": a role's inline policies together, white space not counted.
ROLE_INLINE_POLICY_CHARACTERS = 10_240


def characters(text: str) -> int:
    return len(text)


def characters_without_whitespace(text: str) -> int:
    """The size IAM counts a policy at: it does not count white space."""
    return sum(1 for character in text if not character.isspace())


def refuse_oversize(
    stack: str,
    what: str,
    text: str,
    limit: int,
    size_of: Callable[[str], int] = characters,
) -> str:
    """`text` unchanged, or the run ended naming `members` when `what` would pass AWS's limit."""
    size = size_of(text)
    if size > limit:
        _stop(
            stack,
            "members",
            f"{what} would be {size:,} characters with these member accounts, over AWS's "
            f"limit of {limit:,}; split the members into more stacks",
        )
    return text


def refuse_oversize_member_policy(stack: str, function: str, account_id: str, policy: str) -> str:
    """`policy` unchanged, or the run ended naming `members` when the member role policy of
    `function` in `account_id` would pass IAM's limit: it holds a node-group ARN per cluster the
    stack file declares in the account, so it grows with them."""
    size = characters_without_whitespace(policy)
    if size > ROLE_INLINE_POLICY_CHARACTERS:
        _stop(
            stack,
            "members",
            f"the member role policy of {function} in account {account_id} would be {size:,} "
            f"characters with the clusters declared there, over AWS's limit of "
            f"{ROLE_INLINE_POLICY_CHARACTERS:,}; declare the account's clusters in more stacks",
        )
    return policy


def refuse_oversize_environment(
    stack: str, function: str, variables: dict[str, str]
) -> dict[str, str]:
    """`variables` unchanged, or the run ended naming the function's settings when together
    they would pass Lambda's limit on a function's environment."""
    sizes = {name: _utf8_bytes(name) + _utf8_bytes(value) for name, value in variables.items()}
    size = sum(sizes.values())
    if size > LAMBDA_ENVIRONMENT_BYTES:
        largest = max(sizes, key=lambda name: sizes[name])
        _stop(
            stack,
            f"functions.{function}",
            f"the environment of {function} would be {size:,} bytes, over AWS's limit of "
            f"{LAMBDA_ENVIRONMENT_BYTES:,}; its largest variable, {largest}, takes "
            f"{sizes[largest]:,}",
        )
    return variables


def oversize_cleanup_policy(variable: str, value: str) -> str | None:
    """Why the cleanup policy, as the environment `variable` holding `value`, leaves too little
    of Lambda's 4 KB for the function's other variables, or None."""
    size = _utf8_bytes(variable) + _utf8_bytes(value)
    room = LAMBDA_ENVIRONMENT_BYTES - FIXED_VARIABLES_MOST_BYTES
    if size <= room:
        return None
    return (
        f"the policy would take {size:,} bytes of the function's environment as {variable}, "
        f"over the {room:,} that AWS's limit of {LAMBDA_ENVIRONMENT_BYTES:,} leaves beside its "
        "other variables; require fewer or shorter tags"
    )


def _utf8_bytes(text: str) -> int:
    return len(text.encode())


def _stop(stack: str, field: str, problem: str) -> None:
    # RunError ends the run with this one line, as a settings error does.
    raise pulumi.RunError(str(StackSettingsError(stack, field, problem)))
