"""Names and ARNs that the hub side and the member side must agree on, defined once.

The member execution role trusts the hub's function roles by their IAM path, and the handlers
find that role by name in every member; if either side spelled these differently, every
cross-account call would fail with AccessDenied. Both sides import them from here.
"""

from __future__ import annotations

from components.settings import PROJECT


def function_role_path(stack: str) -> str:
    """IAM path of the hub's function roles: the member execution roles trust exactly this."""
    return f"/{PROJECT}/{stack}/"


def member_execution_role_name(stack: str) -> str:
    """Name of the role in each member account that handlers assume (`MEMBER_ROLE_NAME`)."""
    return f"{PROJECT}-{stack}-member-execution"


def partition_of(arn: str) -> str:
    """The partition (`aws`, `aws-cn`, `aws-us-gov`) of an ARN, such as an account's deploy role."""
    return arn.split(":", 2)[1]


def default_event_bus_arn(partition: str, region: str, account_id: str) -> str:
    """ARN of an account's default EventBridge bus in a region."""
    return f"arn:{partition}:events:{region}:{account_id}:event-bus/default"
