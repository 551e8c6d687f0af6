"""EventBridge Scheduler schedules of the fleet: fixed ones and one per scheduled cluster.

Fixed schedules run in the stack's `schedule_time_zone`; cluster schedules run at the cluster's
own times, on its days (every day when its calendar forces a working day outside them; the
scale-down of a window past midnight on the day after each), in its own time zone (daylight
saving included), and carry the payload of
`components.schedule_payloads`. Every schedule retries, then dead-letters into the target
function's queue, through one scheduler role per stack that may invoke only the targeted
functions. That role is deliberately NOT under the function-role path: member accounts trust
every role there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from catalog.model import ClusterSchedule, FixedSchedule
from components.fleet_function import FleetFunction
from components.naming import (
    bounded_name,
    partition_of,
    schedule_group_arn,
    scheduler_role_name,
)
from components.policies import dead_letter_encryption, document, service_trust
from components.schedule_payloads import action_days, cluster_cron, cluster_schedule_payload
from components.trigger_context import Binding, BuiltTriggers, TriggerContext

SCHEDULE_MAXIMUM_RETRY_ATTEMPTS = 3
SCHEDULE_MAXIMUM_EVENT_AGE_SECONDS = 3600


@dataclass(frozen=True)
class PlannedSchedule:
    """One schedule to create: names, when (expression and time zone) and what it sends."""

    suffix: str
    schedule_name: str
    expression: str
    time_zone: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Scheduler:
    group: aws.scheduler.ScheduleGroup
    role: aws.iam.Role
    role_policy: aws.iam.RolePolicy


def _schedule(
    context: TriggerContext,
    function: FleetFunction,
    planned: PlannedSchedule,
    scheduler: _Scheduler,
) -> aws.scheduler.Schedule:
    return aws.scheduler.Schedule(
        f"{context.name}-{planned.suffix}",
        name=bounded_name(planned.schedule_name),
        group_name=scheduler.group.name,
        schedule_expression=planned.expression,
        schedule_expression_timezone=planned.time_zone,
        flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
        state="ENABLED",
        target=aws.scheduler.ScheduleTargetArgs(
            arn=function.function.arn,
            role_arn=scheduler.role.arn,
            input=json.dumps(planned.payload),
            retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                maximum_retry_attempts=SCHEDULE_MAXIMUM_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=SCHEDULE_MAXIMUM_EVENT_AGE_SECONDS,
            ),
            dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(
                arn=function.dead_letter_queue.arn
            ),
        ),
        opts=context.child_after(scheduler.role_policy),
    )


def _fixed(
    context: TriggerContext, function: FleetFunction, trigger: FixedSchedule
) -> list[PlannedSchedule]:
    """A fixed schedule, in the stack's schedule time zone."""
    return [
        PlannedSchedule(
            f"{function.short_name}-{trigger.name}",
            f"{function.function_name}-{trigger.name}",
            trigger.expression,
            context.references.settings.schedule_time_zone,
            dict(trigger.payload),
        )
    ]


def _per_cluster(
    context: TriggerContext, function: FleetFunction, trigger: ClusterSchedule
) -> list[PlannedSchedule]:
    """One schedule per member cluster that has a schedule, in the cluster's time zone."""
    action = trigger.action.replace("_", "-")
    found: list[PlannedSchedule] = []
    settings = context.references.settings
    for member in settings.members:
        for cluster in member.clusters:
            if cluster.schedule is None:
                continue
            region = member.cluster_region(cluster)
            days = action_days(trigger.action, cluster.schedule, settings.cluster_calendar(cluster))
            found.append(
                PlannedSchedule(
                    f"{function.short_name}-{action}-{member.name}-{cluster.name}",
                    f"{function.function_name}-{action}-{member.name}-{cluster.name}",
                    cluster_cron(getattr(cluster.schedule, trigger.time_field), days),
                    cluster.schedule.time_zone,
                    cluster_schedule_payload(trigger.action, member.account_id, region, cluster),
                )
            )
    return found


SchedulePlanner = Callable[[TriggerContext, FleetFunction, Any], list[PlannedSchedule]]
SCHEDULE_KINDS: dict[type, SchedulePlanner] = {
    FixedSchedule: _fixed,
    ClusterSchedule: _per_cluster,
}


def build_schedules(context: TriggerContext, bindings: Sequence[Binding]) -> BuiltTriggers:
    """A schedule group and scheduler role per stack, then every fixed and cluster schedule."""
    group = aws.scheduler.ScheduleGroup(
        f"{context.name}-schedules", name=context.prefix, opts=context.child
    )
    role = aws.iam.Role(
        f"{context.name}-scheduler-role",
        name=scheduler_role_name(context.references.stack),
        path="/",
        description="lambda-fleet: EventBridge Scheduler invokes the fleet's scheduled functions",
        # Only for the schedules of the stack's group: a schedule elsewhere in the account,
        # made by anyone allowed to pass roles to Scheduler, cannot invoke the fleet with it.
        assume_role_policy=service_trust(
            "scheduler.amazonaws.com",
            context.account_id,
            schedule_group_arn(
                partition_of(context.references.settings.hub.deploy_role_arn),
                context.region,
                context.account_id,
                context.prefix,
            ),
        ),
        opts=context.child,
    )
    targets: dict[str, FleetFunction] = {}
    for function, _trigger in bindings:
        targets.setdefault(function.spec.name, function)
    role_policy = aws.iam.RolePolicy(
        f"{context.name}-scheduler-policy",
        role=role.id,
        name="invoke-scheduled-functions",
        policy=pulumi.Output.json_dumps(
            document(
                {
                    "Sid": "InvokeScheduledFunctions",
                    "Effect": "Allow",
                    "Action": ["lambda:InvokeFunction"],
                    "Resource": [function.function.arn for function in targets.values()],
                },
                {
                    "Sid": "DeadLetterIntoTheTargetsQueues",
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage"],
                    "Resource": [function.dead_letter_queue.arn for function in targets.values()],
                },
                dead_letter_encryption(context.references.key_arn, context.region),
            )
        ),
        opts=context.child,
    )
    scheduler = _Scheduler(group=group, role=role, role_policy=role_policy)
    for function, trigger in bindings:
        for planned in SCHEDULE_KINDS[type(trigger)](context, function, trigger):
            _schedule(context, function, planned, scheduler)
    return {}
