"""Every trigger of every function, read from the catalog through one registry.

`TRIGGER_BUILDERS` maps a trigger type to the builder that creates its resources. A builder gets
all (function, trigger) pairs of its types at once, because some resources are shared: one
bucket notification per bucket, one HTTP API and one event bus policy per stack, one scheduler
role for all schedules. A catalog trigger without a builder stops the program.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.model import (
    AlertTopics,
    CallbackSchedules,
    ClusterSchedule,
    EventRule,
    FixedSchedule,
    HttpRoute,
    ObjectCreated,
    QueueMessages,
)
from components.aws_limits import (
    EVENT_BUS_POLICY_CHARACTERS,
    EVENT_PATTERN_CHARACTERS,
    refuse_oversize,
)
from components.callback_schedules import build_callback_schedules
from components.fleet_function import FleetFunction
from components.function_wiring import FleetReferences
from components.http_api import build_http_api
from components.naming import (
    DEFAULT_EVENT_BUS,
    event_rule_name,
    forwarding_role_arn,
    member_events_bus_arn,
    member_events_bus_name,
    partition_of,
)
from components.policies import account_root, document
from components.schedules import build_schedules
from components.trigger_context import Binding, BuiltTriggers, TriggerBuilder, TriggerContext

EVENT_TARGET_MAXIMUM_RETRY_ATTEMPTS = 3
EVENT_TARGET_MAXIMUM_EVENT_AGE_SECONDS = 3600


def _function_permission(
    context: TriggerContext,
    *,
    name: str,
    function: FleetFunction,
    principal: str,
    source_arn: pulumi.Input[str],
    source_account: str | None = None,
) -> aws.lambda_.Permission:
    return aws.lambda_.Permission(
        name,
        action="lambda:InvokeFunction",
        function=function.function.name,
        principal=principal,
        source_arn=source_arn,
        source_account=source_account,
        opts=context.child,
    )


def build_object_created(context: TriggerContext, bindings: Sequence[Binding]) -> BuiltTriggers:
    """One notification on the data bucket, one entry per (function, prefix, suffix)."""
    permissions: dict[str, aws.lambda_.Permission] = {}
    entries: list[aws.s3.BucketNotificationLambdaFunctionArgs] = []
    for function, trigger in bindings:
        spec_name = function.spec.name
        if spec_name not in permissions:
            permissions[spec_name] = _function_permission(
                context,
                name=f"{context.name}-{function.short_name}-s3-invoke",
                function=function,
                principal="s3.amazonaws.com",
                source_arn=context.data_bucket.arn,
                source_account=context.account_id,
            )
        entries.append(
            aws.s3.BucketNotificationLambdaFunctionArgs(
                id=f"{spec_name}-{trigger.prefix.strip('/')}",
                lambda_function_arn=function.function.arn,
                events=["s3:ObjectCreated:*"],
                filter_prefix=trigger.prefix,
                filter_suffix=trigger.suffix or None,
            )
        )
    aws.s3.BucketNotification(
        f"{context.name}-data-bucket-notifications",
        bucket=context.data_bucket.id,
        lambda_functions=entries,
        opts=context.child_after(*permissions.values()),
    )
    return {}


def _event_source_accounts(references: FleetReferences, trigger: EventRule) -> list[str]:
    """Events forwarded from members match only member accounts; others only the hub."""
    if trigger.forwarded_from_members:
        return sorted(member.account_id for member in references.settings.members)
    return [references.account_id]


def build_event_rules(context: TriggerContext, bindings: Sequence[Binding]) -> BuiltTriggers:
    """A rule per EventRule: on the stack's member-events bus for events the members forward
    (created here, with the one policy letting their forwarding roles put events), else on the
    hub's default bus."""
    settings = context.references.settings
    stack = context.references.stack
    forwarded = any(trigger.forwarded_from_members for _, trigger in bindings)
    member_events_bus = (
        aws.cloudwatch.EventBus(
            f"{context.name}-member-events",
            name=member_events_bus_name(stack),
            opts=context.child,
        )
        if forwarded
        else None
    )
    for function, trigger in bindings:
        resource_name = f"{context.name}-{function.short_name}-{trigger.name}"
        bus_name: pulumi.Input[str] = (
            member_events_bus.name
            if member_events_bus is not None and trigger.forwarded_from_members
            else DEFAULT_EVENT_BUS
        )
        rule = aws.cloudwatch.EventRule(
            resource_name,
            name=event_rule_name(context.references.stack, function.spec.name, trigger.name),
            description=f"lambda-fleet: {trigger.name} -> {function.spec.name}",
            event_bus_name=bus_name,
            event_pattern=refuse_oversize(
                stack,
                f"the event pattern of {function.spec.name}'s {trigger.name} rule",
                json.dumps(
                    {
                        **trigger.pattern,
                        "account": _event_source_accounts(context.references, trigger),
                    },
                    sort_keys=True,
                ),
                EVENT_PATTERN_CHARACTERS,
            ),
            opts=context.child,
        )
        aws.cloudwatch.EventTarget(
            f"{resource_name}-target",
            rule=rule.name,
            event_bus_name=bus_name,
            target_id="fleet-function",
            arn=function.function.arn,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
                arn=function.dead_letter_queue.arn
            ),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=EVENT_TARGET_MAXIMUM_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=EVENT_TARGET_MAXIMUM_EVENT_AGE_SECONDS,
            ),
            opts=context.child,
        )
        _function_permission(
            context,
            name=f"{resource_name}-invoke",
            function=function,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
        )
    if member_events_bus is not None:
        members = sorted(member.account_id for member in settings.members)
        partition = partition_of(settings.hub.deploy_role_arn)
        # Only each member's forwarding role may put events on the bus, not any principal of
        # the account: the account root is the principal (a role principal must exist before
        # the policy), narrowed by the forwarding role's name in any account. The principals
        # already limit the accounts to the members, so this admits exactly those roles while
        # the policy grows by one ARN per member, not two (EventBridge's limit on it is 10,240
        # characters).
        policy = json.dumps(
            document(
                {
                    "Sid": "MemberForwardingRolesPutEvents",
                    "Effect": "Allow",
                    "Principal": {"AWS": [account_root(account) for account in members]},
                    "Action": "events:PutEvents",
                    "Resource": member_events_bus_arn(
                        partition, context.region, context.account_id, stack
                    ),
                    "Condition": {
                        "ArnLike": {"aws:PrincipalArn": forwarding_role_arn(partition, "*", stack)}
                    },
                }
            ),
            separators=(",", ":"),
        )
        aws.cloudwatch.EventBusPolicy(
            f"{context.name}-hub-bus-policy",
            event_bus_name=member_events_bus.name,
            policy=refuse_oversize(
                stack, "the member-events bus policy", policy, EVENT_BUS_POLICY_CHARACTERS
            ),
            opts=context.child,
        )
    return {}


def build_alert_subscriptions(
    context: TriggerContext, bindings: Sequence[Binding]
) -> BuiltTriggers:
    """A Lambda subscription per severity topic, invocable only from that topic."""
    for function, trigger in bindings:
        for severity in trigger.severities:
            topic = context.topics[severity]
            resource_name = f"{context.name}-{function.short_name}-alerts-{severity}"
            permission = _function_permission(
                context,
                name=f"{resource_name}-invoke",
                function=function,
                principal="sns.amazonaws.com",
                source_arn=topic.arn,
            )
            aws.sns.TopicSubscription(
                resource_name,
                topic=topic.arn,
                protocol="lambda",
                endpoint=function.function.arn,
                opts=context.child_after(permission),
            )
    return {}


def build_queue_consumers(context: TriggerContext, bindings: Sequence[Binding]) -> BuiltTriggers:
    """The function consumes its own queue, reporting failed items one by one."""
    for function, trigger in bindings:
        if function.queue is None:
            raise ValueError(f"{function.spec.name} consumes a queue but owns none")
        aws.lambda_.EventSourceMapping(
            f"{context.name}-{function.short_name}-queue",
            function_name=function.function.arn,
            event_source_arn=function.queue.arn,
            batch_size=trigger.batch_size,
            function_response_types=(
                ["ReportBatchItemFailures"] if trigger.report_batch_item_failures else None
            ),
            opts=context.child,
        )
    return {}


TRIGGER_BUILDERS: dict[type, TriggerBuilder] = {
    FixedSchedule: build_schedules,
    ClusterSchedule: build_schedules,
    ObjectCreated: build_object_created,
    EventRule: build_event_rules,
    AlertTopics: build_alert_subscriptions,
    HttpRoute: build_http_api,
    QueueMessages: build_queue_consumers,
    CallbackSchedules: build_callback_schedules,
}


@dataclass(frozen=True)
class FleetTriggersArgs:
    functions: Sequence[FleetFunction]
    references: FleetReferences
    data_bucket: aws.s3.Bucket
    topics: dict[str, aws.sns.Topic]
    provider: aws.Provider


class FleetTriggers(pulumi.ComponentResource):
    """Schedules, bucket notifications, event rules, subscriptions, the API and queue mappings."""

    http_api: aws.apigatewayv2.Api | None

    def __init__(
        self, name: str, args: FleetTriggersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:triggers:FleetTriggers", name, None, opts)
        context = TriggerContext(
            parent=self,
            name=name,
            provider=args.provider,
            references=args.references,
            data_bucket=args.data_bucket,
            topics=args.topics,
        )
        by_builder: dict[TriggerBuilder, list[Binding]] = {}
        for function in args.functions:
            for trigger in function.spec.triggers:
                builder = TRIGGER_BUILDERS.get(type(trigger))
                if builder is None:
                    raise ValueError(
                        f"{function.spec.name}: no builder for trigger {type(trigger).__name__}"
                    )
                by_builder.setdefault(builder, []).append((function, trigger))
        built: BuiltTriggers = {}
        for builder, bindings in by_builder.items():
            built.update(builder(context, bindings))
        http_api = built.get("http_api")
        self.http_api = http_api if isinstance(http_api, aws.apigatewayv2.Api) else None
        self.register_outputs(
            {"http_api_endpoint": self.http_api.api_endpoint if self.http_api else None}
        )
