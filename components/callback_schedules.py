"""What a function with `CallbackSchedules` needs to schedule its own callbacks.

Per such function: its own schedule group, in which the function creates one-time schedules
(`at(...)`, deleted after completion), and a scheduler role that EventBridge Scheduler assumes to
invoke that function and no other, dead-letter into the function's queue and encrypt with the
fleet key. The function's own policy (catalog) may create schedules only in that group and pass
only that role, only to EventBridge Scheduler. The role is deliberately not under the
function-role path: member accounts trust every role there.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.naming import (
    callback_schedule_group_name,
    callback_scheduler_role_name,
    partition_of,
    schedule_group_arn,
)
from components.policies import dead_letter_encryption, document, service_trust
from components.trigger_context import Binding, BuiltTriggers, TriggerContext


def build_callback_schedules(context: TriggerContext, bindings: Sequence[Binding]) -> BuiltTriggers:
    """A schedule group and a scheduler role per function that schedules its own callbacks."""
    stack = context.references.stack
    partition = partition_of(context.references.settings.hub.deploy_role_arn)
    for function, _trigger in bindings:
        resource_name = f"{context.name}-{function.short_name}-callbacks"
        group_name = callback_schedule_group_name(stack, function.spec.name)
        aws.scheduler.ScheduleGroup(resource_name, name=group_name, opts=context.child)
        role = aws.iam.Role(
            f"{resource_name}-role",
            name=callback_scheduler_role_name(stack, function.spec.name),
            path="/",
            description=(
                f"lambda-fleet: EventBridge Scheduler invokes {function.spec.name} from its "
                "callback schedules"
            ),
            # Only for the schedules of the function's own group.
            assume_role_policy=service_trust(
                "scheduler.amazonaws.com",
                context.account_id,
                schedule_group_arn(partition, context.region, context.account_id, group_name),
            ),
            opts=context.child,
        )
        aws.iam.RolePolicy(
            f"{resource_name}-policy",
            role=role.id,
            name="invoke-this-function-only",
            policy=pulumi.Output.json_dumps(
                document(
                    {
                        "Sid": "InvokeThisFunction",
                        "Effect": "Allow",
                        "Action": ["lambda:InvokeFunction"],
                        "Resource": [function.function.arn],
                    },
                    {
                        "Sid": "DeadLetterIntoItsQueue",
                        "Effect": "Allow",
                        "Action": ["sqs:SendMessage"],
                        "Resource": [function.dead_letter_queue.arn],
                    },
                    dead_letter_encryption(context.references.key_arn, context.region),
                )
            ),
            opts=context.child,
        )
    return {}
