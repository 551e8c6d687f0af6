"""Names and ARNs that the hub side and the member side must agree on, defined once.

Each function's member role trusts exactly that function's hub role ARN, and the function finds
its member role by name in every member; if either side spelled these differently, every
cross-account call would fail with AccessDenied. Both sides import them from here.
Nothing else may be created under the function-role path, where the fleet's function roles live.
"""

from __future__ import annotations

import hashlib

from catalog.functions import FUNCTIONS
from components.settings import PROJECT
from fleet_shared.field_types import STACK_NAME

# Lambda function, IAM role, SQS queue, schedule and rule names are limited to 64 characters.
MAX_NAME_LENGTH = 64
BUCKET_NAME_MAX_LENGTH = 63
ACCESS_LOG_BUCKET = "access-logs"
DATA_BUCKET = "data"
HUB_BUCKET_PURPOSES = (ACCESS_LOG_BUCKET, DATA_BUCKET)
# Pulumi also allows capitals, underscores and dots in a stack name; S3 bucket names do not.


def function_role_path(stack: str) -> str:
    """IAM path of the hub's function roles."""
    return f"/{PROJECT}/{stack}/"


def function_role_arn(partition: str, hub_account_id: str, stack: str, function: str) -> str:
    """ARN of a catalog function's role in the hub, known from its name before it exists."""
    return (
        f"arn:{partition}:iam::{hub_account_id}:role{function_role_path(stack)}"
        f"{function_name(stack, function)}"
    )


def member_role_name(stack: str, function: str) -> str:
    """Name of a function's own role in each member account (its `MEMBER_ROLE_NAME`)."""
    return bounded_name(f"{PROJECT}-{stack}-member-{function.replace('_', '-')}")


def forwarding_role_name(stack: str) -> str:
    """The role EventBridge assumes in a member account to put its events on the hub bus."""
    return bounded_name(f"{PROJECT}-{stack}-forward-events")


def forwarding_rule_name(stack: str) -> str:
    """The one rule in each member region that forwards events to the hub bus."""
    return bounded_name(f"{PROJECT}-{stack}-forward-events")


def forwarding_role_arn(partition: str, member_account_id: str, stack: str) -> str:
    """The ARN of a member account's forwarding role: the only principal the hub bus admits."""
    return f"arn:{partition}:iam::{member_account_id}:role/{forwarding_role_name(stack)}"


def partition_of(arn: str) -> str:
    """The partition (`aws`, `aws-cn`, `aws-us-gov`) of an ARN, such as an account's deploy role."""
    return arn.split(":", 2)[1]


def member_events_bus_name(stack: str) -> str:
    """The hub bus that receives the members' forwarded events: one per stack, so that the stack
    owns its whole policy (a bus has one, and another stack in the hub would replace it)."""
    return bounded_name(f"{PROJECT}-{stack}-member-events")


def member_events_bus_arn(partition: str, region: str, account_id: str, stack: str) -> str:
    """ARN of the stack's member-events bus in the hub, known before it exists."""
    return f"arn:{partition}:events:{region}:{account_id}:event-bus/{member_events_bus_name(stack)}"


DEFAULT_EVENT_BUS = "default"
"""Where the hub account's own AWS events arrive."""


def event_rule_name(stack: str, function: str, trigger: str) -> str:
    """The name of a catalog function's EventBridge rule for its `EventRule` trigger `trigger`."""
    return bounded_name(f"{function_name(stack, function)}-{trigger}")


def event_rule_arn(region: str, account_id: str, bus_name: str, rule_name: str) -> str:
    """A rule's ARN as EventBridge gives it: a rule on a custom bus carries the bus's name
    (`rule/<bus>/<rule>`), a rule on the default bus does not (`rule/<rule>`)."""
    where = rule_name if bus_name == DEFAULT_EVENT_BUS else f"{bus_name}/{rule_name}"
    return f"arn:aws:events:{region}:{account_id}:rule/{where}"


def bounded_name(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """`name` itself when it fits, else a stable prefix plus a hash of the whole name."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def resource_prefix(stack: str) -> str:
    """The prefix of every physical name in the hub account: short, stack-scoped."""
    return f"lf-{stack}"


def hub_bucket_name(prefix: str, account_id: str, region: str, purpose: str) -> str:
    """A hub bucket's name (one of `HUB_BUCKET_PURPOSES`): S3 names are global, hence the
    account and region."""
    return f"{prefix}-{account_id}-{region}-{purpose}"


def stack_name_problem(stack: str, hub_account_id: str, hub_region: str) -> str | None:
    """Why `stack` cannot name the fleet's resources, or None: it goes into every hub bucket's
    name, which bounded_name cannot shorten (the data bucket's name is in every function's
    environment and policy)."""
    if not STACK_NAME.fullmatch(stack):
        return (
            "the stack's name goes into S3 bucket names: use lower-case letters, digits and "
            "dashes, starting with a letter"
        )
    for purpose in HUB_BUCKET_PURPOSES:
        bucket = hub_bucket_name(resource_prefix(stack), hub_account_id, hub_region, purpose)
        if len(bucket) > BUCKET_NAME_MAX_LENGTH:
            return (
                f"the stack's name is too long: the bucket {bucket} would have {len(bucket)} "
                f"characters, S3 allows {BUCKET_NAME_MAX_LENGTH}"
            )
    return None


# The AWS provider names a resource created without a name after its logical name, a dash and 7
# random characters, and refuses a logical name that leaves no room for them. It does so at preview,
# in the provider, which the offline plan's mocks never run.
AUTO_NAME_SUFFIX_LENGTH = 8
# The Fleet component's name; each created cluster's component is `<fleet>-<account>-<cluster>`.
FLEET_COMPONENT = "fleet"
NODE_ROLE_SUFFIX = "-nodes"
EKS_CLUSTER_SUFFIX = "-cluster"
# pulumi-eks names the cluster's service role after its cluster resource: `<cluster>-eksRole-role`.
EKS_SERVICE_ROLE_SUFFIX = "-eksRole-role"


def created_cluster_component_name(account_name: str, cluster_name: str) -> str:
    """The logical name of a created cluster's component, which its resources' names extend."""
    return f"{FLEET_COMPONENT}-{account_name}-{cluster_name}"


def created_cluster_name_problem(account_name: str, cluster_name: str) -> str | None:
    """Why an account and a created cluster's names are too long together, or None: the IAM roles
    of the cluster (its node role and pulumi-eks's service role) are named by the AWS provider
    after their logical names, which those two names are part of."""
    component = created_cluster_component_name(account_name, cluster_name)
    longest = max(
        (
            f"{component}{NODE_ROLE_SUFFIX}",
            f"{component}{EKS_CLUSTER_SUFFIX}{EKS_SERVICE_ROLE_SUFFIX}",
        ),
        key=len,
    )
    length = len(longest) + AUTO_NAME_SUFFIX_LENGTH
    if length <= MAX_NAME_LENGTH:
        return None
    return (
        f"account {account_name!r} and cluster {cluster_name!r} are too long together: the "
        f"cluster's IAM role {longest} would have {length} characters with the AWS provider's "
        f"random suffix, IAM allows {MAX_NAME_LENGTH}; shorten the two names by "
        f"{length - MAX_NAME_LENGTH} characters together"
    )


def function_name(stack: str, function: str) -> str:
    """The Lambda function name of a catalog function: `lf-<stack>-<name with dashes>`."""
    return bounded_name(f"{resource_prefix(stack)}-{function.replace('_', '-')}")


def function_log_group_name(stack: str, function: str) -> str:
    """The log group Lambda writes to for a catalog function."""
    return f"/aws/lambda/{function_name(stack, function)}"


def callback_schedule_group_name(stack: str, function: str) -> str:
    """The schedule group of a function's one-time callback schedules."""
    return bounded_name(f"{resource_prefix(stack)}-{function.replace('_', '-')}-callbacks")


def schedule_group_arn(partition: str, region: str, account_id: str, group: str) -> str:
    """A schedule group's ARN, known before it exists: what EventBridge Scheduler names as
    `aws:SourceArn` when it assumes a schedule's role (never the schedule's own ARN)."""
    return f"arn:{partition}:scheduler:{region}:{account_id}:schedule-group/{group}"


def callback_scheduler_role_name(stack: str, function: str) -> str:
    """The role EventBridge Scheduler assumes to invoke a function from its callback schedules
    (path `/`, not the function-role path that member accounts trust)."""
    return bounded_name(f"{resource_prefix(stack)}-{function.replace('_', '-')}-callbacks")


SCHEDULER_ROLE_TAIL = "scheduler"
# No other name the fleet gives ends in it, so no two stacks can want it (the dash before `role`
# keeps it from ending in a function's name, as `-scheduler` does in `-backup-scheduler`).
OWN_SCHEDULER_ROLE_TAIL = "scheduler-role"


def scheduler_role_name(stack: str) -> str:
    """The role EventBridge Scheduler assumes for the stack's schedules: `lf-<stack>-scheduler`,
    unless that can be another stack's function role (stack `x-backup`'s would be stack `x`'s
    backup_scheduler role: IAM role names are unique in an account, and one stack file cannot see
    the other), then `lf-<stack>-scheduler-role`; a stack that cannot meet another keeps its name,
    since renaming a role replaces it."""
    tail = SCHEDULER_ROLE_TAIL
    if _another_stacks_function_name(stack, tail):
        tail = OWN_SCHEDULER_ROLE_TAIL
    return bounded_name(f"{resource_prefix(stack)}-{tail}")


def _another_stacks_function_name(stack: str, tail: str) -> bool:
    """Whether `lf-<stack>-<tail>` is `lf-<other>-<function>` for a catalog function and a stack
    name `other` that is not `stack`."""
    whole = f"{stack}-{tail}"
    for spec in FUNCTIONS:
        other = whole.removesuffix(f"-{spec.name.replace('_', '-')}")
        if other not in (whole, stack) and STACK_NAME.fullmatch(other):
            return True
    return False
