"""Types of the function catalog: plain, frozen data with no dependency on pulumi or boto3.

The infrastructure (`components/`) turns these into resources; the local tools (`fleetctl`) read
them to run handlers with the environment they get when deployed. Neither side may add a
function, a trigger or a permission that is not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ResourceRef(StrEnum):
    """Fleet resources that a permission statement or an environment variable can point at."""

    STATE_TABLE = "state_table"
    DATA_BUCKET = "data_bucket"
    DATA_BUCKET_OBJECTS = "data_bucket_objects"
    ALERT_TOPICS = "alert_topics"
    EMAIL_TOPIC = "email_topic"
    ALERT_SECRETS = "alert_secrets"
    # The function's own role in every member account; nothing for a function without
    # member actions.
    OWN_MEMBER_ROLES = "own_member_roles"
    FLEET_FUNCTIONS = "fleet_functions"
    FUNCTION_QUEUE = "function_queue"
    # The dead-letter queue of the function's own queue (the one its queue-dead-letters alarm
    # watches); nothing for a function without a queue.
    FUNCTION_QUEUE_DEAD_LETTERS = "function_queue_dead_letters"
    SECURITY_HUB = "security_hub"
    FLEET_KEY = "fleet_key"
    FLEET_LOG_GROUPS = "fleet_log_groups"
    ATHENA_WORKGROUP = "athena_workgroup"
    GLOBAL_INFRASTRUCTURE_PARAMETERS = "global_infrastructure_parameters"
    CUR_BUCKET = "cur_bucket"
    CUR_OBJECTS = "cur_objects"
    CUR_GLUE_TABLE = "cur_glue_table"
    # The one-time schedules of the function's own callback schedule group, and the role
    # EventBridge Scheduler assumes to invoke the function from them.
    CALLBACK_SCHEDULES = "callback_schedules"
    CALLBACK_SCHEDULER_ROLE = "callback_scheduler_role"
    ANY = "*"


class EnvSource(StrEnum):
    """Where the value of a function's environment variable comes from when deployed."""

    STATE_TABLE_NAME = "state_table.name"
    DATA_BUCKET_NAME = "data_bucket.name"
    FLEET_INVENTORY_KEY = "data_bucket.inventory_key"
    ALERT_TOPIC_CRITICAL_ARN = "alert_topic.critical.arn"
    ALERT_TOPIC_WARNING_ARN = "alert_topic.warning.arn"
    ALERT_TOPIC_INFO_ARN = "alert_topic.info.arn"
    EMAIL_TOPIC_ARN = "email_topic.arn"
    MEMBER_ROLE_NAME = "member_role.name"
    HUB_ACCOUNT_ID = "hub.account_id"
    DRY_RUN = "settings.dry_run"
    SLACK_WEBHOOK_SECRET = "alerts.slack_webhook_secret_name"
    PAGERDUTY_ROUTING_KEY_SECRET = "alerts.pagerduty_routing_key_secret_name"
    FUNCTION_QUEUE_URL = "function_queue.url"
    FUNCTION_QUEUE_DEAD_LETTERS_URL = "function_queue.dead_letters.url"
    FORECASTER_FUNCTION_NAME = "function.demand_forecaster.name"
    SCALER_FUNCTION_NAME = "function.eks_scaler.name"
    ATHENA_WORKGROUP = "athena_workgroup.name"
    COST_QUERY_ENGINE = "cost_report.query_engine"
    COST_CUR_BUCKET = "cost_report.cur_bucket"
    COST_CUR_PREFIX = "cost_report.cur_prefix"
    COST_ATHENA_DATABASE = "cost_report.athena_database"
    COST_ATHENA_TABLE = "cost_report.athena_table"
    CLEANUP_POLICY = "functions.cleanup_manager.policy"
    OWN_FUNCTION_ARN = "function.own.arn"
    OWN_DEAD_LETTER_QUEUE_ARN = "function.own.dead_letter_queue.arn"
    OWN_REDELIVERY_SECONDS = "function.own.redelivery_seconds"
    CALLBACK_SCHEDULE_GROUP = "callback_schedules.group"
    CALLBACK_SCHEDULER_ROLE_ARN = "callback_schedules.role.arn"
    SCALER_MEMBER_ROLE_NAME = "member_role.eks_scaler.name"
    VALIDATION_BAKE_MINUTES = "functions.change_validator.validation.bake_minutes"
    VALIDATION_RESTORE_SCALER_CHANGES = (
        "functions.change_validator.validation.restore_scaler_changes"
    )
    SCHEDULE_TIME_ZONE = "settings.schedule_time_zone"
    STACK_NAME = "stack.name"


STACK_PLACEHOLDER = "{stack}"
"""In a member condition's key or value, the stack's name, put in its place where a member role's
policy is built (`components.member_permissions`): a policy that kept it would match nothing."""

KEEP_TAG_PLACEHOLDER = "{keep_tag}"
"""In a member condition's key, the key of the keep tag of the stack's cleanup policy
(`keep_tag`), put in its place as STACK_PLACEHOLDER is."""


@dataclass(frozen=True)
class Condition:
    """One IAM condition (`{operator: {key: values}}`) that a statement is granted under."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class AnyOf:
    """Condition sets a member action is granted under, each in a statement of its own: IAM
    grants one statement only when all its conditions hold."""

    alternatives: tuple[tuple[Condition, ...], ...]

    def __post_init__(self) -> None:
        if len(self.alternatives) < 2 or not all(self.alternatives):
            raise ValueError("AnyOf takes at least two condition sets, none of them empty")


@dataclass(frozen=True)
class PermissionStatement:
    """One IAM statement of a function's role, with resources named symbolically.

    `ResourceRef.ANY` is allowed only for actions that have no resource-level permissions; the
    infrastructure tests reject `*` and `service:*` actions outright. `object_prefixes` narrows
    `DATA_BUCKET_OBJECTS`, the statement's only resource then, to the keys under those prefixes
    (IAM's `?` matches one character): a writer reaches its own folders, never the inventory.
    """

    actions: tuple[str, ...]
    resources: tuple[ResourceRef, ...]
    conditions: tuple[Condition, ...] = ()
    object_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.object_prefixes and self.resources != (ResourceRef.DATA_BUCKET_OBJECTS,):
            raise ValueError(
                "object_prefixes narrow DATA_BUCKET_OBJECTS only: make it the statement's one "
                "resource"
            )
        if any(not prefix.endswith("/") for prefix in self.object_prefixes):
            raise ValueError("an object prefix names a folder: end it with '/'")


SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
"""EventBridge Scheduler's context attribute for the time a run was scheduled for: the same for
every attempt of one run (its execution id is assigned per attempt)."""


@dataclass(frozen=True)
class FixedSchedule:
    """An EventBridge Scheduler schedule in the hub's schedule time zone."""

    name: str
    expression: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterSchedule:
    """One schedule per member cluster, at the time the cluster's scaling schedule names."""

    action: str
    time_field: str


@dataclass(frozen=True)
class ObjectCreated:
    """S3 object-created notifications of the data bucket under one prefix."""

    prefix: str
    suffix: str = ""


@dataclass(frozen=True)
class EventRule:
    """An EventBridge rule on the hub bus; member accounts forward matching events to it."""

    name: str
    pattern: dict[str, Any]
    forwarded_from_members: bool = True


@dataclass(frozen=True)
class CallbackSchedules:
    """One-time EventBridge Scheduler schedules the function creates to invoke itself later.

    The program provisions the function's own schedule group and a scheduler role that may invoke
    only this function; the function may create schedules in that group and pass that role.
    """


@dataclass(frozen=True)
class AlertTopics:
    """Subscription to the fleet's alert topics of the given severities."""

    severities: tuple[str, ...]


@dataclass(frozen=True)
class HttpRoute:
    """A route of the fleet's HTTP API (IAM authorisation)."""

    method: str
    path: str


@dataclass(frozen=True)
class QueueMessages:
    """An SQS queue owned by the function, consumed by the same function. With
    `failed_invocations`, the function's asynchronous invocations that failed past Lambda's
    retries go to that queue as Lambda's on-failure records (which the function must read),
    instead of to its dead-letter queue: from there its queue's dead-letter queue takes them,
    which people can redrive."""

    batch_size: int = 1
    report_batch_item_failures: bool = True
    failed_invocations: bool = False


Trigger = FixedSchedule | ClusterSchedule | ObjectCreated | EventRule | AlertTopics | HttpRoute
Trigger = Trigger | QueueMessages | CallbackSchedules


@dataclass(frozen=True)
class FunctionSpec:
    """Everything the program and the local tools need to know about one fleet function."""

    name: str
    description: str
    memory_mb: int
    timeout_seconds: int
    environment: dict[str, EnvSource]
    permissions: tuple[PermissionStatement, ...]
    # What the function does in member accounts, through its own member role; an action listed
    # in `member_conditions` is granted only under those conditions (or one set of an AnyOf's).
    member_actions: tuple[str, ...] = ()
    member_conditions: dict[str, tuple[Condition, ...] | AnyOf] = field(default_factory=dict)
    triggers: tuple[Trigger, ...] = ()
    uses_pandas_layer: bool = False
    reserved_concurrency: int | None = None
    # The least memory a stack may give the function, where a benchmark measured what it needs
    # at its input bounds: a stack's `memory_mb` below it is refused, and scaling_optimizer
    # recommends none (a rightsizing sees the usual invocations, not one at the bounds).
    minimum_memory_mb: int | None = None
    invokes: tuple[str, ...] = ()
    # Functions whose output is this function's only input: a stack may not switch one of them
    # off while this function stays on.
    reads_output_of: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """A function acts in members exactly when it may assume its member role, knows the
        role's name, and conditions only actions it has."""
        assumes = any(
            ResourceRef.OWN_MEMBER_ROLES in statement.resources for statement in self.permissions
        )
        knows_role = EnvSource.MEMBER_ROLE_NAME in self.environment.values()
        acts = bool(self.member_actions)
        if not acts == assumes == knows_role:
            raise ValueError(
                f"{self.name}: member_actions, an sts:AssumeRole statement on OWN_MEMBER_ROLES "
                "and the MEMBER_ROLE_NAME variable go together (all or none)"
            )
        unknown = sorted(set(self.member_conditions) - set(self.member_actions))
        if unknown:
            raise ValueError(f"{self.name}: conditions for actions it lacks: {', '.join(unknown)}")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 1:
            raise ValueError(f"{self.name}: reserved_concurrency must be at least 1")
        if self.minimum_memory_mb is not None and self.minimum_memory_mb > self.memory_mb:
            raise ValueError(f"{self.name}: memory_mb is below its own minimum_memory_mb")

    def member_condition_sets(self, action: str) -> tuple[tuple[Condition, ...], ...]:
        """The condition sets a member action is granted under, one statement each: a single
        empty one for an action granted without conditions."""
        conditions = self.member_conditions.get(action, ())
        return conditions.alternatives if isinstance(conditions, AnyOf) else (conditions,)

    @property
    def acts_in_members(self) -> bool:
        return bool(self.member_actions)

    @property
    def source_dir(self) -> str:
        """The folder, relative to the repository root, that the function's archive contains."""
        return f"handlers/{self.name}"

    @property
    def handler(self) -> str:
        """The Lambda handler string; the archive keeps the `handlers/<name>/` path."""
        return f"handlers.{self.name}.app.lambda_handler"
