"""AWS's size limits on the inputs that grow with the fleet, checked before they are registered.

Pulumi's preview takes any input; AWS refuses one past its limit only at `pulumi up`, once other
resources have already changed. Each input here grows with `members`, so the program stops with
one line naming that setting instead. The figures are AWS's documented defaults (an adjustable
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
        error = StackSettingsError(
            stack,
            "members",
            f"{what} would be {size:,} characters with these member accounts, over AWS's "
            f"limit of {limit:,}; split the members into more stacks",
        )
        # RunError ends the run with this one line, as a settings error does.
        raise pulumi.RunError(str(error))
    return text
