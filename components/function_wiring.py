"""Resolve a catalog entry's symbolic environment and permissions into real names and ARNs.

The catalog names fleet resources symbolically (`EnvSource`, `ResourceRef`); the registries below
say, once, what each symbol is in a deployed stack. A symbol without a resolver is a programming
error that stops the program; so is `ResourceRef.ANY` for an action that has resource-level
permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi

from catalog.functions import METRICS_NAMESPACE
from catalog.model import Condition, EnvSource, FunctionSpec, PermissionStatement, ResourceRef
from components.naming import function_log_group_name, function_name, member_role_name
from components.policies import condition_block
from components.settings import FleetSettings
from fleet_shared.state_keys import readable_partitions, writable_partitions

# The only actions allowed on `"Resource": "*"`: the Service Authorization Reference lists no
# resource type for them (the Cost Explorer calls: only an optional billingview, which the
# functions never name). Its rows are in tests/infra/service_authorization_reference.json,
# which tests/infra/test_service_authorization_reference.py holds this set to; the catalog's
# comments say what each statement's condition keys allow.
NO_RESOURCE_LEVEL_ACTIONS = frozenset(
    {
        "ce:GetCostAndUsage",
        "ce:GetCostForecast",
        "cloudwatch:GetMetricData",
        "cloudwatch:PutMetricData",
        "lambda:ListFunctions",
        "logs:DescribeQueries",
        "logs:StopQuery",
        "pricing:GetProducts",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }
)


@dataclass(frozen=True)
class FleetReferences:
    """The hub resources a function can point at, as names and ARNs (outputs or plain text)."""

    stack: str
    settings: FleetSettings
    key_arn: pulumi.Input[str]
    data_bucket_name: pulumi.Input[str]
    data_bucket_arn: pulumi.Input[str]
    inventory_key: str
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    topic_arns: dict[str, pulumi.Input[str]]
    email_topic_arn: pulumi.Input[str]
    warning_topic_arn: pulumi.Input[str]
    layer_arn: pulumi.Input[str]
    athena_workgroup_name: pulumi.Input[str] | None
    athena_workgroup_arn: pulumi.Input[str] | None
    # The catalog names of the functions this stack deploys.
    function_names: tuple[str, ...]

    @property
    def account_id(self) -> str:
        return self.settings.hub.account_id

    @property
    def region(self) -> str:
        return self.settings.hub.region


@dataclass(frozen=True)
class OwnResources:
    """What belongs to the function itself: its ARN and dead-letter queue, its queue when it
    consumes one, its member role's name when it acts in members, and its callback schedule
    group and scheduler role when it schedules its own callbacks."""

    queue_url: pulumi.Input[str] | None = None
    queue_arn: pulumi.Input[str] | None = None
    # The dead-letter queue of its queue, when it consumes one.
    queue_dead_letters_url: pulumi.Input[str] | None = None
    queue_dead_letters_arn: pulumi.Input[str] | None = None
    member_role_name: str | None = None
    function_arn: str | None = None
    # How long after the function handled an event the platform may hand it again.
    redelivery_seconds: int | None = None
    dead_letter_queue_arn: pulumi.Input[str] | None = None
    # Only for a function with `CallbackSchedules`.
    callback_group_name: str | None = None
    callback_role_arn: str | None = None


EnvResolver = Callable[[FleetReferences, OwnResources], pulumi.Input[str] | None]
ArnResolver = Callable[[FleetReferences, FunctionSpec, OwnResources], list[pulumi.Input[str]]]


def _required(value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"{what} is referenced by the catalog but does not exist in this stack")
    return value


def function_arn(references: FleetReferences, function: str) -> str:
    """A fleet function's ARN, known from its name before the function exists."""
    return (
        f"arn:aws:lambda:{references.region}:{references.account_id}:function:"
        f"{function_name(references.stack, function)}"
    )


def _secret_arn(references: FleetReferences, secret_name: str) -> str:
    # Secrets Manager appends a dash and six random characters to every secret's ARN.
    return (
        f"arn:aws:secretsmanager:{references.region}:{references.account_id}:secret:"
        f"{secret_name}-??????"
    )


def _alert_secret_names(settings: FleetSettings) -> list[str]:
    names = (
        settings.alerts.slack_webhook_secret_name,
        settings.alerts.pagerduty_routing_key_secret_name,
    )
    return [name for name in names if name]


def _cur_bucket_arn(references: FleetReferences) -> pulumi.Input[str]:
    """The bucket holding the CUR: the configured one, or the fleet's data bucket."""
    bucket = references.settings.cost_report.cur_bucket
    return f"arn:aws:s3:::{bucket}" if bucket else references.data_bucket_arn


def _cur_glue_arns(references: FleetReferences) -> list[str]:
    """Catalog, database and table of the CUR in the hub's Glue catalog, for the athena engine.

    The pandas engine never queries Glue: no names, no ARNs, and `catalog_statements` leaves the
    statement out (never a `*`: the Glue actions have resource-level permissions).
    """
    report = references.settings.cost_report
    database, table = report.athena_database, report.athena_table
    if report.query_engine != "athena" or not (database and table):
        return []
    prefix = f"arn:aws:glue:{references.region}:{references.account_id}"
    return [
        f"{prefix}:catalog",
        f"{prefix}:database/{database}",
        f"{prefix}:table/{database}/{table}",
    ]


def _function_name_of(source: EnvSource) -> EnvResolver:
    """The name of the function a `function.<name>.name` source names, or None (variable unset)
    when the stack switches that function off."""
    named = source.split(".")[1]

    def resolve(references: FleetReferences, _own: OwnResources) -> str | None:
        if named not in references.function_names:
            return None
        return function_name(references.stack, named)

    return resolve


ENVIRONMENT_RESOLVERS: dict[EnvSource, EnvResolver] = {
    EnvSource.STATE_TABLE_NAME: lambda refs, _: refs.table_name,
    EnvSource.DATA_BUCKET_NAME: lambda refs, _: refs.data_bucket_name,
    EnvSource.FLEET_INVENTORY_KEY: lambda refs, _: refs.inventory_key,
    EnvSource.ALERT_TOPIC_CRITICAL_ARN: lambda refs, _: refs.topic_arns["critical"],
    EnvSource.ALERT_TOPIC_WARNING_ARN: lambda refs, _: refs.topic_arns["warning"],
    EnvSource.ALERT_TOPIC_INFO_ARN: lambda refs, _: refs.topic_arns["info"],
    EnvSource.EMAIL_TOPIC_ARN: lambda refs, _: refs.email_topic_arn,
    EnvSource.MEMBER_ROLE_NAME: lambda _, own: _required(own.member_role_name, "a member role"),
    EnvSource.HUB_ACCOUNT_ID: lambda refs, _: refs.account_id,
    EnvSource.DRY_RUN: lambda refs, _: "true" if refs.settings.dry_run else "false",
    # Secret NAMES only; an unset name leaves the variable out and the channel off.
    EnvSource.SLACK_WEBHOOK_SECRET: lambda refs, _: refs.settings.alerts.slack_webhook_secret_name,
    EnvSource.PAGERDUTY_ROUTING_KEY_SECRET: lambda refs, _: (
        refs.settings.alerts.pagerduty_routing_key_secret_name
    ),
    EnvSource.FUNCTION_QUEUE_URL: lambda _, own: _required(own.queue_url, "the function's queue"),
    EnvSource.FUNCTION_QUEUE_DEAD_LETTERS_URL: lambda _, own: _required(
        own.queue_dead_letters_url, "the dead-letter queue of the function's queue"
    ),
    EnvSource.FORECASTER_FUNCTION_NAME: _function_name_of(EnvSource.FORECASTER_FUNCTION_NAME),
    EnvSource.SCALER_FUNCTION_NAME: _function_name_of(EnvSource.SCALER_FUNCTION_NAME),
    EnvSource.ATHENA_WORKGROUP: lambda refs, _: _required(
        refs.athena_workgroup_name, "the Athena workgroup"
    ),
    EnvSource.COST_QUERY_ENGINE: lambda refs, _: refs.settings.cost_report.query_engine,
    EnvSource.COST_CUR_BUCKET: lambda refs, _: (
        refs.settings.cost_report.cur_bucket or refs.data_bucket_name
    ),
    EnvSource.COST_CUR_PREFIX: lambda refs, _: refs.settings.cost_report.cur_prefix,
    # Unset names leave the variable out, as for the alert secrets.
    EnvSource.COST_ATHENA_DATABASE: lambda refs, _: refs.settings.cost_report.athena_database,
    EnvSource.COST_ATHENA_TABLE: lambda refs, _: refs.settings.cost_report.athena_table,
    EnvSource.CLEANUP_POLICY: lambda refs, _: refs.settings.cleanup_policy_variable(),
    EnvSource.OWN_FUNCTION_ARN: lambda _, own: _required(own.function_arn, "the function's ARN"),
    EnvSource.OWN_REDELIVERY_SECONDS: lambda _, own: str(
        _required(own.redelivery_seconds, "the function's redelivery time")
    ),
    EnvSource.OWN_DEAD_LETTER_QUEUE_ARN: lambda _, own: _required(
        own.dead_letter_queue_arn, "the function's dead-letter queue"
    ),
    EnvSource.CALLBACK_SCHEDULE_GROUP: lambda _, own: _required(
        own.callback_group_name, "a callback schedule group (CallbackSchedules trigger)"
    ),
    EnvSource.CALLBACK_SCHEDULER_ROLE_ARN: lambda _, own: _required(
        own.callback_role_arn, "a callback scheduler role (CallbackSchedules trigger)"
    ),
    # Unset when the stack switches the scaler off: then no change is the fleet's own.
    EnvSource.SCALER_MEMBER_ROLE_NAME: lambda refs, _: (
        member_role_name(refs.stack, "eks_scaler") if "eks_scaler" in refs.function_names else None
    ),
    EnvSource.VALIDATION_BAKE_MINUTES: lambda refs, _: str(
        refs.settings.change_validation().bake_minutes
    ),
    EnvSource.VALIDATION_RESTORE_SCALER_CHANGES: lambda refs, _: (
        "true" if refs.settings.change_validation().restore_scaler_changes else "false"
    ),
    EnvSource.SCHEDULE_TIME_ZONE: lambda refs, _: refs.settings.schedule_time_zone,
    EnvSource.STACK_NAME: lambda refs, _: refs.stack,
}

RESOURCE_RESOLVERS: dict[ResourceRef, ArnResolver] = {
    ResourceRef.STATE_TABLE: lambda refs, _spec, _own: [refs.table_arn],
    ResourceRef.DATA_BUCKET: lambda refs, _spec, _own: [refs.data_bucket_arn],
    ResourceRef.DATA_BUCKET_OBJECTS: lambda refs, _spec, _own: [
        pulumi.Output.concat(refs.data_bucket_arn, "/*")
    ],
    ResourceRef.ALERT_TOPICS: lambda refs, _spec, _own: [
        refs.topic_arns[severity] for severity in sorted(refs.topic_arns)
    ],
    ResourceRef.EMAIL_TOPIC: lambda refs, _spec, _own: [refs.email_topic_arn],
    ResourceRef.ALERT_SECRETS: lambda refs, _spec, _own: [
        _secret_arn(refs, name) for name in _alert_secret_names(refs.settings)
    ],
    # The role's name in any account, narrowed to the member accounts by RESOURCE_CONDITIONS.
    ResourceRef.OWN_MEMBER_ROLES: lambda _refs, _spec, own: [
        f"arn:aws:iam::*:role/{_required(own.member_role_name, 'a member role')}"
    ],
    # Only functions the stack deploys: a switched-off one leaves no permission to invoke it.
    ResourceRef.FLEET_FUNCTIONS: lambda refs, spec, _own: [
        function_arn(refs, invoked) for invoked in spec.invokes if invoked in refs.function_names
    ],
    ResourceRef.FUNCTION_QUEUE: lambda _refs, _spec, own: [
        _required(own.queue_arn, "the function's queue")
    ],
    ResourceRef.FUNCTION_QUEUE_DEAD_LETTERS: lambda _refs, _spec, own: [
        _required(own.queue_dead_letters_arn, "the dead-letter queue of the function's queue")
    ],
    ResourceRef.SECURITY_HUB: lambda refs, _spec, _own: [
        f"arn:aws:securityhub:{refs.region}:{refs.account_id}:hub/default",
        f"arn:aws:securityhub:{refs.region}:{refs.account_id}:product/{refs.account_id}/default",
    ],
    ResourceRef.FLEET_KEY: lambda refs, _spec, _own: [refs.key_arn],
    ResourceRef.FLEET_LOG_GROUPS: lambda refs, _spec, _own: [
        f"arn:aws:logs:{refs.region}:{refs.account_id}:log-group:"
        f"{function_log_group_name(refs.stack, name)}:*"
        for name in refs.function_names
    ],
    ResourceRef.ATHENA_WORKGROUP: lambda refs, _spec, _own: [
        _required(refs.athena_workgroup_arn, "the Athena workgroup")
    ],
    ResourceRef.GLOBAL_INFRASTRUCTURE_PARAMETERS: lambda refs, _spec, _own: [
        f"arn:aws:ssm:{refs.region}::parameter/aws/service/global-infrastructure/*"
    ],
    ResourceRef.CUR_BUCKET: lambda refs, _spec, _own: [_cur_bucket_arn(refs)],
    ResourceRef.CUR_OBJECTS: lambda refs, _spec, _own: [
        pulumi.Output.concat(_cur_bucket_arn(refs), "/", refs.settings.cost_report.cur_prefix, "*")
    ],
    ResourceRef.CUR_GLUE_TABLE: lambda refs, _spec, _own: _cur_glue_arns(refs),
    ResourceRef.CALLBACK_SCHEDULES: lambda refs, _spec, own: [
        f"arn:aws:scheduler:{refs.region}:{refs.account_id}:schedule/"
        f"{_required(own.callback_group_name, 'a callback schedule group')}/*"
    ],
    ResourceRef.CALLBACK_SCHEDULER_ROLE: lambda _refs, _spec, own: [
        _required(own.callback_role_arn, "a callback scheduler role")
    ],
    ResourceRef.ANY: lambda _refs, _spec, _own: ["*"],
}


# Conditions a reference's ARNs need to mean what the reference says; such a reference is
# alone in its statement, so the condition narrows nothing else. The member roles are named in
# any account and narrowed to the members by account id: a role's policy may hold 10,240
# characters, and an ARN per member (about 70 characters) took a function's past it from about
# 80 members, where an account id takes 15.
RESOURCE_CONDITIONS: dict[ResourceRef, Callable[[FleetReferences], dict[str, dict[str, Any]]]] = {
    ResourceRef.OWN_MEMBER_ROLES: lambda refs: {
        "StringEquals": {
            "aws:ResourceAccount": sorted(member.account_id for member in refs.settings.members)
        }
    },
}


# The state table's item actions, each held to the partitions `fleet_shared.state_keys` gives the
# function (`dynamodb:LeadingKeys`, the partition key of every item a request reads or writes).
# A statement on the table holds either reads or writes of them, never both, nor another action:
# the condition is the partitions of its kind.
STATE_TABLE_ITEM_ACTIONS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "dynamodb:GetItem": readable_partitions,
    "dynamodb:Query": readable_partitions,
    "dynamodb:PutItem": writable_partitions,
    "dynamodb:UpdateItem": writable_partitions,
    "dynamodb:DeleteItem": writable_partitions,
}
LEADING_KEYS_OPERATOR = "ForAllValues:StringLike"


class UndeclaredStatePartitionsError(ValueError):
    """A function's statement on the state table items has no partitions declared for it."""


def state_table_conditions(function: str, statement: PermissionStatement) -> tuple[Condition, ...]:
    """The `dynamodb:LeadingKeys` condition of a statement on the state table's items: none for
    another statement (a Scan carries no partition key: `fleet_shared.state_keys`)."""
    kinds = {STATE_TABLE_ITEM_ACTIONS.get(action) for action in statement.actions}
    if ResourceRef.STATE_TABLE not in statement.resources or kinds == {None}:
        return ()
    if len(kinds) > 1 or len(statement.resources) > 1:
        raise UndeclaredStatePartitionsError(
            f"{function}: a statement on the state table holds item reads, or item writes, and "
            "nothing else (its dynamodb:LeadingKeys are those of its kind)"
        )
    (partitions_of,) = kinds
    try:
        partitions = partitions_of(function)  # type: ignore[misc]
    except KeyError:
        raise UndeclaredStatePartitionsError(
            f"{function}: no state table partitions are declared for it in "
            "handlers/fleet_shared/state_keys.py"
        ) from None
    return (Condition(LEADING_KEYS_OPERATOR, "dynamodb:LeadingKeys", partitions),)


BLAS_THREADS_VARIABLE = "OPENBLAS_NUM_THREADS"


def resolve_environment(
    spec: FunctionSpec, references: FleetReferences, own: OwnResources
) -> dict[str, pulumi.Input[str]]:
    """The function's environment: catalog variables plus the Powertools service, metrics and
    tracing settings, and one BLAS thread for the functions with numpy."""
    variables: dict[str, pulumi.Input[str]] = {}
    for variable, source in sorted(spec.environment.items()):
        value = ENVIRONMENT_RESOLVERS[source](references, own)
        if value is not None:
            variables[variable] = value
    variables["POWERTOOLS_SERVICE_NAME"] = function_name(references.stack, spec.name)
    variables["POWERTOOLS_METRICS_NAMESPACE"] = METRICS_NAMESPACE
    # Only detailed tracing builds the Powertools Tracer (and imports the X-Ray SDK).
    detailed = references.settings.tracing == "detailed"
    variables["POWERTOOLS_TRACE_DISABLED"] = "false" if detailed else "true"
    if spec.uses_pandas_layer:
        # numpy's OpenBLAS runs a spinning thread per visible core; on a Lambda share of a core
        # they took the CPU from the one that works (benchmarks/blas_threads.py).
        variables[BLAS_THREADS_VARIABLE] = "1"
    return variables


def lambda_tracing_mode(references: FleetReferences) -> str:
    """Lambda's `tracing_config` mode for the stack's tracing setting: both `active` and
    `detailed` have Lambda trace the invocations it samples; `off` only passes an incoming
    trace on (Lambda records an invocation only when its caller's header is sampled)."""
    return "PassThrough" if references.settings.tracing == "off" else "Active"


def _checked_actions(statement: PermissionStatement, function: str) -> list[str]:
    for action in statement.actions:
        if action == "*" or action.endswith(":*"):
            raise ValueError(f"{function}: action {action!r} is too broad; name each action")
    if ResourceRef.ANY in statement.resources:
        broad = sorted(set(statement.actions) - NO_RESOURCE_LEVEL_ACTIONS)
        if broad:
            raise ValueError(
                f"{function}: {', '.join(broad)} support resource-level permissions; "
                "name the resources instead of '*'"
            )
    return list(statement.actions)


def _statement_resources(
    statement: PermissionStatement,
    spec: FunctionSpec,
    references: FleetReferences,
    own: OwnResources,
) -> list[pulumi.Input[str]]:
    """The statement's ARNs; data bucket objects under its `object_prefixes` only, when it has
    some (the catalog model allows them beside no other resource)."""
    if statement.object_prefixes:
        return [
            pulumi.Output.concat(references.data_bucket_arn, "/", prefix, "*")
            for prefix in statement.object_prefixes
        ]
    return [
        arn
        for reference in statement.resources
        for arn in RESOURCE_RESOLVERS[reference](references, spec, own)
    ]


def catalog_statements(
    spec: FunctionSpec, references: FleetReferences, own: OwnResources
) -> list[dict[str, Any]]:
    """The catalog's statements with real ARNs; a statement that resolves to nothing is left out
    (for example the alert secrets when no channel is configured)."""
    statements: list[dict[str, Any]] = []
    for index, statement in enumerate(spec.permissions):
        actions = _checked_actions(statement, spec.name)
        resources = _statement_resources(statement, spec, references, own)
        partitions = state_table_conditions(spec.name, statement)
        if partitions and not partitions[0].values:
            # No partition of that kind: IAM refuses an empty condition list, and the role
            # needs no such action (scaling_optimizer writes nothing to the table).
            continue
        if resources:
            entry: dict[str, Any] = {
                "Sid": f"Catalog{index}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": resources,
            }
            conditions = condition_block((*statement.conditions, *partitions))
            for reference in statement.resources:
                if reference not in RESOURCE_CONDITIONS:
                    continue
                if len(statement.resources) > 1:
                    raise ValueError(
                        f"{spec.name}: {reference} needs a statement of its own (its condition "
                        "would narrow the other resources too)"
                    )
                for operator, keys in RESOURCE_CONDITIONS[reference](references).items():
                    conditions.setdefault(operator, {}).update(keys)
            if conditions:
                entry["Condition"] = conditions
            statements.append(entry)
    return statements
