"""One fleet function, built from its catalog entry: code, role, logs, dead letters and alarms.

Each function gets its own role under the function-role path (its member roles trust exactly
that role), a least-privilege inline policy generated from the catalog, an encrypted log group, an
encrypted dead-letter queue for failed asynchronous invocations, and alarms on errors, throttles
and dead letters that notify the warning topic. A function that consumes a queue
(`QueueMessages`) owns that queue too, because its environment and policy name it. Every queue
refuses plain HTTP. The catalog's `reserved_concurrency` both reserves and caps how many copies
of a function run at once.

An asynchronous invocation that failed past Lambda's retries goes, as Lambda's on-failure record,
to the function's dead-letter queue, where people read it. A function whose queue takes its
failed invocations (`QueueMessages.failed_invocations`: the notification router) sends them to
that queue instead, and reads them there: the dead-letter queue is no SQS queue's, so SQS's
redrive (StartMessageMoveTask) cannot move its messages anywhere, and an alert from a topic whose
channel was down past Lambda's retries had no way back to the router. From the queue the record
is retried as the queue retries any message, then kept in the queue's dead-letter queue, which
people redrive once the channel works again. Lambda sends the record with the function's
execution role: `sqs:SendMessage` on that queue (the queue's policy denies only plain HTTP) and
the fleet key's data keys through SQS, which every function has for its dead-letter queue. The
function's own dead-letter queue stays: it keeps what reached it before (movable by hand to the
queue), and its alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.model import AlertTopics, CallbackSchedules, EventRule, FunctionSpec, QueueMessages
from components.archives import build_function_archive, has_entry_point
from components.aws_limits import (
    ROLE_INLINE_POLICY_CHARACTERS,
    characters_without_whitespace,
    refuse_oversize,
    refuse_oversize_environment,
)
from components.bytecode import RUNTIME, RuntimePython
from components.function_wiring import (
    FleetReferences,
    OwnResources,
    catalog_statements,
    function_arn,
    lambda_tracing_mode,
    resolve_environment,
)
from components.naming import (
    DEFAULT_EVENT_BUS,
    bounded_name,
    callback_schedule_group_name,
    callback_scheduler_role_name,
    event_rule_arn,
    event_rule_name,
    function_log_group_name,
    function_name,
    function_role_path,
    member_events_bus_name,
    member_role_name,
)
from components.policies import deny_insecure_transport, document, service_trust

ARCHITECTURE = "arm64"
LOG_RETENTION_DAYS = 30
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
ASYNC_MAXIMUM_RETRY_ATTEMPTS = 2
ASYNC_MAXIMUM_EVENT_AGE_SECONDS = 3600
QUEUE_MAX_RECEIVE_COUNT = 5
# AWS recommends a visibility timeout of six times the consuming function's timeout.
QUEUE_VISIBILITY_FACTOR = 6
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600
ALARM_PERIOD_SECONDS = 300


def queue_visibility_timeout(timeout_seconds: int) -> int:
    """The visibility timeout of the queue a function with `timeout_seconds` consumes."""
    return min(QUEUE_VISIBILITY_FACTOR * timeout_seconds, MAX_VISIBILITY_TIMEOUT_SECONDS)


def redelivery_seconds(timeout_seconds: int) -> int:
    """How long after a function handled an event the platform may hand it that event again:
    Lambda starts an asynchronous event's last retry within its maximum event age, SQS hands a
    message out QUEUE_MAX_RECEIVE_COUNT times, each about a visibility timeout after the one
    before, and a message its receives took to the queue's dead-letter queue comes back when
    people redrive it, as late as the queue and then the dead-letter queue keep it
    (QUEUE_RETENTION_SECONDS each: `_owned_queue`), after it reached the queue: an asynchronous
    event that failed past Lambda's retries reaches it as its failure record up to its maximum
    event age after it came (`QueueMessages.failed_invocations`); plus the invocation that
    handles it. A function that recognises a redelivery (the notification router) must remember
    the events it handled that long."""
    queue_seconds = (QUEUE_MAX_RECEIVE_COUNT - 1) * queue_visibility_timeout(timeout_seconds)
    redrive_seconds = ASYNC_MAXIMUM_EVENT_AGE_SECONDS + QUEUE_RETENTION_SECONDS * 2
    return max(ASYNC_MAXIMUM_EVENT_AGE_SECONDS, queue_seconds, redrive_seconds) + timeout_seconds


@dataclass(frozen=True)
class FleetFunctionArgs:
    spec: FunctionSpec
    references: FleetReferences
    provider: aws.Provider
    # The stack file's `functions.<name>.memory_mb`, when it sets one: the catalog's is a default.
    memory_mb: int | None = None
    # The interpreter that compiles the archive's bytecode; without one it carries sources only.
    runtime_python: RuntimePython | None = None


class FleetFunction(pulumi.ComponentResource):
    """A catalog function deployed in the hub account (arm64, Python 3.12, traced as the stack's
    `tracing` setting says)."""

    spec: FunctionSpec
    short_name: str
    function_name: str
    function: aws.lambda_.Function
    role: aws.iam.Role
    dead_letter_queue: aws.sqs.Queue
    queue: aws.sqs.Queue | None
    # Where the consumed queue's messages go after their receives failed.
    queue_dead_letter_queue: aws.sqs.Queue | None
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self, name: str, args: FleetFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:functions:FleetFunction", name, None, opts)
        spec, references = args.spec, args.references
        self.spec = spec
        # The catalog name with dashes, for the names of resources that belong to the function.
        self.short_name = spec.name.replace("_", "-")
        self._references = references
        self._child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.function_name = function_name(references.stack, spec.name)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=function_log_group_name(references.stack, spec.name),
            retention_in_days=LOG_RETENTION_DAYS,
            kms_key_id=references.key_arn,
            opts=self._child,
        )
        self.dead_letter_queue = self._dead_letter_queue(name)
        self.queue, self.queue_dead_letter_queue = (
            self._owned_queue(name) if self._consumes_queue else (None, None)
        )
        schedules_callbacks = any(
            isinstance(trigger, CallbackSchedules) for trigger in spec.triggers
        )
        own = OwnResources(
            queue_url=self.queue.url if self.queue else None,
            queue_arn=self.queue.arn if self.queue else None,
            queue_dead_letters_url=(
                self.queue_dead_letter_queue.url if self.queue_dead_letter_queue else None
            ),
            queue_dead_letters_arn=(
                self.queue_dead_letter_queue.arn if self.queue_dead_letter_queue else None
            ),
            member_role_name=(
                member_role_name(references.stack, spec.name) if spec.acts_in_members else None
            ),
            function_arn=function_arn(references, spec.name),
            redelivery_seconds=redelivery_seconds(spec.timeout_seconds),
            dead_letter_queue_arn=self.dead_letter_queue.arn,
            callback_group_name=(
                callback_schedule_group_name(references.stack, spec.name)
                if schedules_callbacks
                else None
            ),
            callback_role_arn=(
                f"arn:aws:iam::{references.account_id}:role/"
                f"{callback_scheduler_role_name(references.stack, spec.name)}"
                if schedules_callbacks
                else None
            ),
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=self.function_name,
            path=function_role_path(references.stack),
            description=f"lambda-fleet {spec.name}: generated from the function catalog",
            assume_role_policy=service_trust("lambda.amazonaws.com"),
            opts=self._child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            name="least-privilege",
            policy=pulumi.Output.json_dumps(
                document(*catalog_statements(spec, references, own), *self._own_statements())
            ).apply(
                lambda policy: refuse_oversize(
                    references.stack,
                    f"the policy of {spec.name}'s role",
                    policy,
                    ROLE_INLINE_POLICY_CHARACTERS,
                    characters_without_whitespace,
                )
            ),
            opts=self._child,
        )
        archive = build_function_archive(spec.name, runtime_python=args.runtime_python)
        if not has_entry_point(spec.name):
            pulumi.log.warn(
                f"{spec.source_dir}/app.py does not exist yet: the archive of {spec.name} "
                "contains only handlers/__init__.py and the function fails until it is written",
                resource=self,
            )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=self.function_name,
            description=spec.description,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=spec.handler,
            code=pulumi.FileArchive(str(archive.path)),
            source_code_hash=archive.sha256_base64,
            memory_size=args.memory_mb if args.memory_mb is not None else spec.memory_mb,
            timeout=spec.timeout_seconds,
            reserved_concurrent_executions=spec.reserved_concurrency,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(
                mode=lambda_tracing_mode(references)
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables=pulumi.Output.all(**resolve_environment(spec, references, own)).apply(
                    lambda variables: refuse_oversize_environment(
                        references.stack, spec.name, variables
                    )
                )
            ),
            kms_key_arn=references.key_arn,
            layers=self._layers(),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=self.log_group.name
            ),
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(depends_on=[role_policy, self.log_group])
            ),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=ASYNC_MAXIMUM_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=ASYNC_MAXIMUM_EVENT_AGE_SECONDS,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self._failed_invocations_queue().arn
                )
            ),
            opts=self._child,
        )
        self._alarms(name)
        self.register_outputs(
            {
                "name": self.function.name,
                "arn": self.function.arn,
                "role_arn": self.role.arn,
                "dead_letter_queue_arn": self.dead_letter_queue.arn,
            }
        )

    @property
    def _consumes_queue(self) -> bool:
        return any(isinstance(trigger, QueueMessages) for trigger in self.spec.triggers)

    def _failed_invocations_queue(self) -> aws.sqs.Queue:
        """Where Lambda sends the record of an asynchronous invocation that failed past its
        retries: the function's own queue when that queue takes them, else its dead-letter
        queue (the module docstring says why)."""
        takes_them = any(
            isinstance(trigger, QueueMessages) and trigger.failed_invocations
            for trigger in self.spec.triggers
        )
        if takes_them and self.queue is not None:
            return self.queue
        return self.dead_letter_queue

    def _event_rule_arns(self) -> list[str]:
        """The ARNs of this function's EventBridge rules (`components/triggers.py` creates them):
        a forwarded kind on the stack's member-events bus, whose rules' ARNs carry the bus name,
        any other on the hub's default bus."""
        references = self._references
        arns = []
        for trigger in self.spec.triggers:
            if not isinstance(trigger, EventRule):
                continue
            bus = (
                member_events_bus_name(references.stack)
                if trigger.forwarded_from_members
                else DEFAULT_EVENT_BUS
            )
            rule = event_rule_name(references.stack, self.spec.name, trigger.name)
            arns.append(event_rule_arn(references.region, references.account_id, bus, rule))
        return arns

    def _encrypted_queue(
        self, name: str, queue_name: str, **settings: pulumi.Input[object]
    ) -> aws.sqs.Queue:
        return aws.sqs.Queue(
            name,
            name=bounded_name(queue_name, 80),
            kms_master_key_id=self._references.key_arn,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            opts=self._child,
            **settings,
        )

    def _queue_policy(
        self, name: str, queue: aws.sqs.Queue, *statements: dict[str, object]
    ) -> aws.sqs.QueuePolicy:
        """The queue's policy: no plain HTTP for anyone, then what the queue admits."""
        return aws.sqs.QueuePolicy(
            name,
            queue_url=queue.url,
            policy=pulumi.Output.json_dumps(
                document(
                    deny_insecure_transport("DenyInsecureTransport", "sqs:*", [queue.arn]),
                    *statements,
                )
            ),
            opts=self._child,
        )

    def _dead_letter_queue(self, name: str) -> aws.sqs.Queue:
        """Failed asynchronous invocations, schedules and event deliveries end up here."""
        queue = self._encrypted_queue(f"{name}-dlq", f"{self.function_name}-dlq")
        statements = []
        rule_arns = self._event_rule_arns()
        if rule_arns:
            statements.append(
                {
                    "Sid": "FailedEventDeliveriesOfThisFunctionsRules",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue.arn,
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": rule_arns},
                        "StringEquals": {"aws:SourceAccount": self._references.account_id},
                    },
                }
            )
        self._queue_policy(f"{name}-dlq-policy", queue, *statements)
        return queue

    def _owned_queue(self, name: str) -> tuple[aws.sqs.Queue, aws.sqs.Queue]:
        """The queue the function consumes, and its own dead-letter queue for poison messages."""
        dead_letters = self._encrypted_queue(f"{name}-queue-dlq", f"{self.function_name}-queue-dlq")
        self._queue_policy(f"{name}-queue-dlq-policy", dead_letters)
        queue = self._encrypted_queue(
            f"{name}-queue",
            f"{self.function_name}-queue",
            visibility_timeout_seconds=queue_visibility_timeout(self.spec.timeout_seconds),
            redrive_policy=pulumi.Output.json_dumps(
                {
                    "deadLetterTargetArn": dead_letters.arn,
                    "maxReceiveCount": QUEUE_MAX_RECEIVE_COUNT,
                }
            ),
        )
        self._queue_policy(f"{name}-queue-policy", queue)
        return queue, dead_letters

    def _own_statements(self) -> list[dict[str, object]]:
        return [
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [pulumi.Output.concat(self.log_group.arn, ":*")],
            },
            {
                "Sid": "OwnDeadLetterQueue",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": [self.dead_letter_queue.arn],
            },
            *self._failed_invocations_statements(),
        ]

    def _failed_invocations_statements(self) -> list[dict[str, object]]:
        """Lambda sends a failed invocation's record with the function's role: to a queue other
        than its dead-letter queue only by this grant."""
        queue = self._failed_invocations_queue()
        if queue is self.dead_letter_queue:
            return []
        return [
            {
                "Sid": "FailedInvocationsToOwnQueue",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": [queue.arn],
            }
        ]

    def _layers(self) -> list[pulumi.Input[str]]:
        settings = self._references.settings
        region = self._references.region
        layers: list[pulumi.Input[str]] = [
            self._references.layer_arn,
            settings.managed_layers.powertools[region],
        ]
        if self.spec.uses_pandas_layer:
            layers.append(settings.managed_layers.aws_sdk_pandas[region])
        return layers

    def _alarm_actions(self) -> list[pulumi.Input[str]]:
        """The warning topic; for a function that routes the warning topic's alerts to people
        (the notification router), the e-mail topic too: its own failure would otherwise be
        announced only through itself."""
        actions = [self._references.warning_topic_arn]
        routes_warnings = any(
            isinstance(trigger, AlertTopics) and "warning" in trigger.severities
            for trigger in self.spec.triggers
        )
        if routes_warnings:
            actions.append(self._references.email_topic_arn)
        return actions

    def _alarms(self, name: str) -> None:
        """Any error, throttle or dead letter notifies the warning topic (`_alarm_actions`): dead
        letters of the function's own queue too, whose failed messages (reported one by one in a
        partial batch response) are no Lambda error."""
        alarms = [
            ("errors", "AWS/Lambda", "Errors", "Sum", {"FunctionName": self.function.name}),
            ("throttles", "AWS/Lambda", "Throttles", "Sum", {"FunctionName": self.function.name}),
            (
                "dead-letters",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                {"QueueName": self.dead_letter_queue.name},
            ),
        ]
        if self.queue_dead_letter_queue is not None:
            alarms.append(
                (
                    "queue-dead-letters",
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "Maximum",
                    {"QueueName": self.queue_dead_letter_queue.name},
                )
            )
        for suffix, namespace, metric, statistic, dimensions in alarms:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                name=f"{self.function_name}-{suffix}",
                alarm_description=f"{self.spec.name}: {metric} >= 1 in {ALARM_PERIOD_SECONDS} s",
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                period=ALARM_PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=self._alarm_actions(),
                opts=self._child,
            )
