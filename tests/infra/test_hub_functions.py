"""Every catalog function, deployed as the catalog says: runtime, layers, DLQ, alarms (tracing:
`test_tracing_setting`)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hub_view import FUNCTION, HubView

from catalog.model import (
    AlertTopics,
    CallbackSchedules,
    ClusterSchedule,
    EnvSource,
    EventRule,
    FixedSchedule,
    ObjectCreated,
    QueueMessages,
)
from components.naming import function_name, member_role_name


@pytest.fixture
def hub(stack_run) -> HubView:
    return HubView(stack_run)


def test_one_function_per_catalog_entry_in_the_hub(hub: HubView):
    # GIVEN the catalog WHEN the program runs THEN each entry is one function in the hub
    functions = hub.of_type(FUNCTION)
    assert len(functions) == len(hub.enabled_functions)
    for function in functions:
        assert function.placement.account_id == hub.settings.hub.account_id
        assert function.placement.region == hub.settings.hub.region
        assert function.type == FUNCTION
    assert all(len(function_name(hub.stack, spec.name)) <= 64 for spec in hub.enabled_functions)


def test_every_function_is_arm64_python312_with_catalog_sizes(hub: HubView):
    for spec, function in hub.functions():
        inputs = function.inputs
        assert inputs["architectures"] == ["arm64"]
        assert inputs["runtime"] == "python3.12"
        assert inputs["handler"] == spec.handler
        assert inputs["memorySize"] == spec.memory_mb
        assert inputs["timeout"] == spec.timeout_seconds
        assert inputs.get("reservedConcurrentExecutions") == spec.reserved_concurrency


MUTATING_FUNCTIONS = frozenset(
    {"eks_scaler", "spot_optimizer", "cleanup_manager", "backup_scheduler"}
)


def test_mutating_functions_have_a_small_reserved_concurrency(hub: HubView):
    specs = {spec.name: (spec, function) for spec, function in hub.functions()}
    for name in sorted(MUTATING_FUNCTIONS & specs.keys()):
        # GIVEN a function of the stack that changes or deletes things in members
        spec, function = specs[name]
        # THEN the catalog bounds how many copies run at once, and the function gets that bound
        assert spec.reserved_concurrency is not None and 1 <= spec.reserved_concurrency <= 5
        assert function.inputs["reservedConcurrentExecutions"] == spec.reserved_concurrency


def test_every_function_is_a_child_of_its_fleet_function_component(hub: HubView):
    components = {
        resource.urn: resource for resource in hub.of_type("lambda-fleet:functions:FleetFunction")
    }
    for _spec, function in hub.functions():
        assert function.parent in components


def test_every_function_has_its_layers(hub: HubView):
    region = hub.settings.hub.region
    layer = hub.one("aws:lambda/layerVersion:LayerVersion")
    assert layer.inputs["compatibleRuntimes"] == ["python3.12"]
    assert layer.inputs["compatibleArchitectures"] == ["arm64"]
    powertools = hub.settings.managed_layers.powertools[region]
    pandas = hub.settings.managed_layers.aws_sdk_pandas[region]
    for spec, function in hub.functions():
        expected = [layer.outputs["arn"], powertools] + ([pandas] if spec.uses_pandas_layer else [])
        assert function.inputs["layers"] == expected, spec.name


def test_every_function_sends_failed_async_invocations_to_its_dlq_the_router_to_its_queue(
    hub: HubView,
):
    # GIVEN every function of the stack, the router among them (its queue takes them back)
    key_arn = hub.arn(hub.one("aws:kms/key:Key"))
    queues = {queue.outputs["arn"]: queue for queue in hub.of_type("aws:sqs/queue:Queue")}
    for spec, function in hub.functions():
        # WHEN its asynchronous invocation fails past Lambda's retries
        config = hub.one(
            "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
            functionName=function.inputs["name"],
        )
        destination = config.inputs["destinationConfig"]["onFailure"]["destination"]
        # THEN Lambda sends its record to the function's dead-letter queue, the router's to
        # its own queue, which reads it and whose dead-letter queue people can redrive
        if spec.name == "notification_router":
            queue = hub.one("aws:sqs/queue:Queue", name=f"{function.inputs['name']}-queue")
            assert destination == hub.arn(queue)
            assert "deadLetterTargetArn" in json.loads(queue.inputs["redrivePolicy"])
        else:
            assert destination == hub.dead_letter_queue_arn(spec), spec.name
        # AND the queue is encrypted with the fleet key
        # an hour at most, not Lambda's default 6 (docs/functions/eks_scaler.md: an event kept
        # past midnight is still judged by its run's day)
        assert config.inputs["maximumEventAgeInSeconds"] == 3600
        assert queues[destination].inputs["kmsMasterKeyId"] == key_arn


# Triggers that invoke a function asynchronously (EventBridge Scheduler, event rules, S3, SNS):
# Lambda itself retries an invocation that failed, as the function's event invoke config allows.
# A queue consumer's failed item is retried by its queue, which delivers it again. The synchronous
# calls (the HTTP route, one function invoking another with RequestResponse) retry nothing: they
# hand the error to their caller, so a function reached only that way could not keep the README's
# promise. Today every catalog function has an asynchronous trigger, so none is exempt.
ASYNCHRONOUS_TRIGGERS = (
    FixedSchedule,
    ClusterSchedule,
    CallbackSchedules,
    EventRule,
    ObjectCreated,
    AlertTopics,
)


def test_every_function_retries_a_failed_invocation_so_an_undelivered_alert_is_sent_again(
    hub: HubView,
):
    # GIVEN each function the stack deploys, and the triggers the catalog gives it
    for spec, function in hub.functions():
        kinds = {type(trigger) for trigger in spec.triggers}
        asynchronous = bool(kinds & set(ASYNCHRONOUS_TRIGGERS))
        assert asynchronous or QueueMessages in kinds, f"{spec.name}: only synchronous triggers"
        # WHEN an invocation fails (an alert SNS did not take fails it on purpose)
        # THEN Lambda invokes it again before the event goes to the dead-letter queue
        if asynchronous:
            config = hub.one(
                "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
                functionName=function.inputs["name"],
            )
            assert config.inputs["maximumRetryAttempts"] >= 1, spec.name
        # AND a queue consumer's failed item is received again before the queue's dead letters
        if QueueMessages in kinds:
            queue = hub.one("aws:sqs/queue:Queue", name=f"{function.inputs['name']}-queue")
            assert json.loads(queue.inputs["redrivePolicy"])["maxReceiveCount"] >= 2, spec.name


def test_every_function_alarms_on_errors_throttles_and_dead_letters_to_the_warning_topic(
    hub: HubView,
):
    warning = hub.arn(hub.one("aws:sns/topic:Topic", name=f"lf-{hub.stack}-alerts-warning"))
    alarms = hub.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    for spec, function in hub.functions():
        name = function.inputs["name"]
        watched = {
            alarm.inputs["metricName"]
            for alarm in alarms
            if alarm.inputs["dimensions"] in ({"FunctionName": name}, {"QueueName": f"{name}-dlq"})
            and alarm.inputs["alarmActions"][0] == warning
        }
        assert watched == {"Errors", "Throttles", "ApproximateNumberOfMessagesVisible"}, spec.name


def test_the_routers_own_alarms_reach_people_without_the_router(hub: HubView):
    # GIVEN the notification router, the only way from the warning topic to people, and the
    # e-mail topic people subscribe to
    warning = hub.arn(hub.one("aws:sns/topic:Topic", name=f"lf-{hub.stack}-alerts-warning"))
    email = hub.one("aws:sns/topic:Topic", name=f"lf-{hub.stack}-alerts-email")
    router = f"lf-{hub.stack}-notification-router"
    # WHEN its alarms (errors, throttles, dead letters of its invocations and of its queue) fire
    # THEN they go to the e-mail topic as well as to the warning topic; every other function's
    # alarms go to the warning topic alone
    actions = {
        alarm.inputs["name"]: alarm.inputs["alarmActions"]
        for alarm in hub.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    routers = {name: value for name, value in actions.items() if name.startswith(f"{router}-")}
    assert len(routers) == 4
    assert all(value == [warning, hub.arn(email)] for value in routers.values()), routers
    assert all(value == [warning] for name, value in actions.items() if name not in routers)
    # AND CloudWatch may publish to the e-mail topic, from this account only
    policy = json.loads(
        hub.one("aws:sns/topicPolicy:TopicPolicy", arn=hub.arn(email)).inputs["policy"]
    )
    [alarms] = [
        statement
        for statement in policy["Statement"]
        if isinstance(statement["Principal"], dict) and "Service" in statement["Principal"]
    ]
    assert alarms["Principal"]["Service"] == ["cloudwatch.amazonaws.com"]
    account_id = hub.settings.hub.account_id
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": account_id}}


def test_every_dead_letter_queue_alarms_to_the_warning_topic_the_consumed_queues_too(
    hub: HubView,
):
    # GIVEN every dead-letter queue of the hub: each function's, and the one behind each queue a
    # function consumes, where a message lands after its receives failed (with partial batch
    # responses that counts as no Lambda error, so the errors alarm never sees it)
    warning = hub.arn(hub.one("aws:sns/topic:Topic", name=f"lf-{hub.stack}-alerts-warning"))
    dead_letter_queues = [
        queue.inputs["name"]
        for queue in hub.of_type("aws:sqs/queue:Queue")
        if queue.inputs["name"].endswith("-dlq")
    ]
    assert any(name.endswith("-queue-dlq") for name in dead_letter_queues)
    alarms = hub.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    for queue_name in dead_letter_queues:
        # WHEN a message lands in it THEN an alarm on its visible messages tells the warning topic
        assert any(
            alarm.inputs["dimensions"] == {"QueueName": queue_name}
            and alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
            and alarm.inputs["alarmActions"][0] == warning
            for alarm in alarms
        ), queue_name


def test_every_function_logs_to_an_encrypted_log_group_with_retention(hub: HubView):
    key_arn = hub.arn(hub.one("aws:kms/key:Key"))
    for _spec, function in hub.functions():
        group = hub.one(
            "aws:cloudwatch/logGroup:LogGroup", name=f"/aws/lambda/{function.inputs['name']}"
        )
        assert group.inputs["retentionInDays"] == 30
        assert group.inputs["kmsKeyId"] == key_arn
        assert function.inputs["loggingConfig"] == {
            "logFormat": "JSON",
            "logGroup": group.inputs["name"],
        }


def test_environment_is_resolved_from_the_catalog_without_secret_values(hub: HubView):
    settings = hub.settings
    secret_names = {
        settings.alerts.slack_webhook_secret_name,
        settings.alerts.pagerduty_routing_key_secret_name,
    } - {None}
    for spec, function in hub.functions():
        variables = function.inputs["environment"]["variables"]
        assert variables["FLEET_DRY_RUN"] == ("true" if settings.dry_run else "false")
        # (each function that acts in members is told its own member role, the others none)
        if spec.acts_in_members:
            assert variables["MEMBER_ROLE_NAME"] == member_role_name(hub.stack, spec.name)
        else:
            assert "MEMBER_ROLE_NAME" not in variables, spec.name
        assert variables["HUB_ACCOUNT_ID"] == settings.hub.account_id
        assert variables["POWERTOOLS_SERVICE_NAME"] == function.inputs["name"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "LambdaFleet"
        assert variables["FLEET_INVENTORY_KEY"] == "config/fleet-inventory.json"
        expected = set(spec.environment) | {
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
            "POWERTOOLS_TRACE_DISABLED",
        }
        # (the functions with numpy run OpenBLAS on one thread, the others do not load it)
        if spec.uses_pandas_layer:
            assert variables["OPENBLAS_NUM_THREADS"] == "1", spec.name
            expected.add("OPENBLAS_NUM_THREADS")
        unset = {
            variable
            for variable, source in spec.environment.items()
            if (
                source is EnvSource.SLACK_WEBHOOK_SECRET
                and not settings.alerts.slack_webhook_secret_name
            )
            or (
                source is EnvSource.PAGERDUTY_ROUTING_KEY_SECRET
                and not settings.alerts.pagerduty_routing_key_secret_name
            )
            or (
                source is EnvSource.COST_ATHENA_DATABASE
                and not settings.cost_report.athena_database
            )
            or (source is EnvSource.COST_ATHENA_TABLE and not settings.cost_report.athena_table)
        }
        assert set(variables) == expected - unset, spec.name
        for variable, value in variables.items():
            # Only names of secrets, never a webhook URL or a routing key.
            assert not value.startswith("https://hooks."), variable
            if "SECRET" in variable:
                assert value in secret_names, variable


def test_function_code_is_the_deterministic_archive_with_a_matching_hash(hub: HubView):
    for spec, function in hub.functions():
        path = Path(function.inputs["code"].path)
        assert path.name.startswith(f"{spec.name}-") and path.suffix == ".zip"
        digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
        assert function.inputs["sourceCodeHash"] == digest
