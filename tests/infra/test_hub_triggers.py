"""Triggers from the catalog: schedules, S3 notifications, event rules, alerts, API and queues."""

from __future__ import annotations

import fnmatch
import json
import uuid
from datetime import UTC, datetime

import pytest
from hub_view import PERMISSION, SCHEDULE, HubView, as_list

from catalog import function_spec
from catalog.model import (
    AlertTopics,
    ClusterSchedule,
    EnvSource,
    EventRule,
    FixedSchedule,
    HttpRoute,
    ObjectCreated,
    QueueMessages,
)
from components.naming import function_name
from components.schedule_payloads import schedule_days
from components.settings import WEEKDAYS
from fleet_shared.http_api_alias import HTTP_API_ALIAS
from handlers.notification_router.environment import MIN_DEDUP_WINDOW_SECONDS, RouterEnvironment
from handlers.report_fetcher.models import FetchRequest

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@pytest.fixture
def hub(stack_run) -> HubView:
    return HubView(stack_run)


def _triggers(hub: HubView, kind: type):
    return [
        (spec, trigger)
        for spec in hub.enabled_functions
        for trigger in spec.triggers
        if isinstance(trigger, kind)
    ]


def _schedules_of(hub: HubView, spec) -> list:
    arn = hub.arn(hub.function(spec))
    return [s for s in hub.of_type(SCHEDULE) if s.inputs["target"]["arn"] == arn]


def _expected_cluster_schedules(hub: HubView, trigger: ClusterSchedule) -> list[dict]:
    """What the issue specifies, written out independently of the program's payload module."""
    expected = []
    for member in hub.settings.members:
        for cluster in member.clusters:
            schedule = cluster.schedule
            if schedule is None:
                continue
            hours, minutes = getattr(schedule, trigger.time_field).split(":")
            days = list(schedule_days(schedule, hub.settings.cluster_calendar(cluster)))
            if trigger.action == "scale_down" and schedule.scale_down_time < schedule.scale_up_time:
                # a window past midnight closes the morning after each of its days
                days = [day for day in WEEKDAYS if WEEKDAYS[WEEKDAYS.index(day) - 1] in days]
            common = {
                "account_id": member.account_id,
                "region": cluster.region or member.regions[0],
                "cluster": cluster.name,
            }
            if trigger.action == "scale_up":
                payload = {
                    "action": "scale_up",
                    **common,
                    "nodegroups": [{"name": group} for group in schedule.off_hours_desired],
                    "scheduled": True,
                    "request_id": f"schedule-scale_up-{SCHEDULED_TIME}",
                    "run": SCHEDULED_TIME,
                }
            else:
                payload = {
                    "action": "scale_down",
                    **common,
                    "nodegroups": [
                        {"name": group, "desired_size": off}
                        for group, off in schedule.off_hours_desired.items()
                    ],
                    "scheduled": True,
                    "request_id": f"schedule-scale_down-{SCHEDULED_TIME}",
                    "run": SCHEDULED_TIME,
                }
            expected.append(
                {
                    "expression": f"cron({int(minutes)} {int(hours)} ? * {','.join(days)} *)",
                    "time_zone": schedule.time_zone,
                    "payload": payload,
                }
            )
    return expected


def test_each_cluster_schedule_gives_one_schedule_per_scheduled_cluster(hub: HubView):
    # GIVEN the catalog's cluster schedules and the stack's scheduled clusters
    for spec, trigger in _triggers(hub, ClusterSchedule):
        # WHEN the program runs
        found = [
            {
                "expression": s.inputs["scheduleExpression"],
                "time_zone": s.inputs["scheduleExpressionTimezone"],
                "payload": json.loads(s.inputs["target"]["input"]),
            }
            for s in _schedules_of(hub, spec)
            if json.loads(s.inputs["target"]["input"]).get("action") == trigger.action
        ]
        # THEN one schedule per cluster, at its time and days, in its zone, with the exact payload
        expected = _expected_cluster_schedules(hub, trigger)
        assert expected
        assert sorted(found, key=json.dumps) == sorted(expected, key=json.dumps)


def _as_scheduler_delivers(schedule_input: str, scheduled_time: str, attempt: int) -> dict:
    """The input of one attempt of one run, as EventBridge Scheduler fills in its context
    attributes. The execution id is "the unique ID that EventBridge Scheduler assigns for each
    attempted invocation of a target" (Scheduler User Guide, "Adding context attributes"): every
    attempt gets its own, while the scheduled time is the run's."""
    values = {
        "<aws.scheduler.schedule-arn>": "arn:aws:scheduler:ap-south-1:123456789012:schedule/x/y",
        "<aws.scheduler.scheduled-time>": scheduled_time,
        "<aws.scheduler.execution-id>": uuid.uuid4().hex[:16],
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for keyword, value in values.items():
        schedule_input = schedule_input.replace(keyword, value)
    return json.loads(schedule_input)


def test_every_attempt_of_one_cluster_schedule_run_carries_the_same_request_id(hub: HubView):
    # GIVEN every cluster schedule the program writes
    schedules = [
        s for s in hub.of_type(SCHEDULE) if "request_id" in json.loads(s.inputs["target"]["input"])
    ]
    assert schedules
    for schedule in schedules:
        schedule_input = schedule.inputs["target"]["input"]
        # WHEN Scheduler retries one run (a new execution id per attempt), and runs the next day
        first = _as_scheduler_delivers(schedule_input, "2025-06-02T12:30:00Z", attempt=1)
        retry = _as_scheduler_delivers(schedule_input, "2025-06-02T12:30:00Z", attempt=2)
        next_run = _as_scheduler_delivers(schedule_input, "2025-06-03T12:30:00Z", attempt=1)
        # THEN the scaler sees the retry as a repeat of the run, and the next run as a new one
        assert first["request_id"] == retry["request_id"], schedule.inputs["name"]
        assert first["request_id"] != next_run["request_id"], schedule.inputs["name"]
        assert first["action"] in first["request_id"]


def test_every_delivery_of_one_report_fetch_run_carries_that_run(hub: HubView):
    # GIVEN the report-fetch schedule the program writes
    (schedule,) = [
        s
        for s in _schedules_of(hub, function_spec("report_fetcher"))
        if s.inputs["name"] == f"{function_name(hub.stack, 'report_fetcher')}-report-fetch"
    ]
    schedule_input = schedule.inputs["target"]["input"]
    assert json.loads(schedule_input) == {"action": "fetch", "run": SCHEDULED_TIME}
    # WHEN Scheduler delivers one run twice, and the next day's run, as the fetcher reads them
    first, again, next_run = (
        FetchRequest.model_validate(_as_scheduler_delivers(schedule_input, time, attempt))
        for time, attempt in (
            ("2025-06-02T05:00:00Z", 1),
            ("2025-06-02T05:00:00Z", 2),
            ("2025-06-03T05:00:00Z", 1),
        )
    )
    # THEN both deliveries of the run name it (its claim's key), and the next run another
    assert first.run == again.run == datetime(2025, 6, 2, 5, tzinfo=UTC)
    assert next_run.run != first.run


def test_prod_cluster_schedules_follow_each_clusters_time_zone(program_runs):
    hub = HubView(program_runs["prod"])
    zones = {
        json.loads(s.inputs["target"]["input"]).get("cluster"): s.inputs[
            "scheduleExpressionTimezone"
        ]
        for s in hub.of_type(SCHEDULE)
    }
    assert zones["payments-in"] == "Asia/Kolkata"
    assert zones["payments-eu"] == "Europe/Dublin"
    assert zones["tooling"] == "Asia/Kolkata"


def test_fixed_schedules_run_in_the_stack_schedule_time_zone(hub: HubView):
    for spec, trigger in _triggers(hub, FixedSchedule):
        matching = [
            s
            for s in _schedules_of(hub, spec)
            if s.inputs["name"] == f"{function_name(hub.stack, spec.name)}-{trigger.name}"
        ]
        assert len(matching) == 1, (spec.name, trigger.name)
        schedule = matching[0].inputs
        assert schedule["scheduleExpression"] == trigger.expression
        assert schedule["scheduleExpressionTimezone"] == hub.settings.schedule_time_zone
        assert json.loads(schedule["target"]["input"]) == trigger.payload


def test_every_schedule_retries_then_dead_letters_into_its_targets_queue(hub: HubView):
    functions = {hub.arn(hub.function(spec)): spec for spec in hub.enabled_functions}
    scheduler_roles = set()
    for schedule in hub.of_type(SCHEDULE):
        target = schedule.inputs["target"]
        spec = functions[target["arn"]]
        assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
        assert schedule.inputs["groupName"] == f"lf-{hub.stack}"
        assert target["deadLetterConfig"]["arn"] == hub.dead_letter_queue_arn(spec)
        # (docs/architecture.md: up to 3 retries within an hour, then the dead-letter queue)
        assert target["retryPolicy"] == {
            "maximumRetryAttempts": 3,
            "maximumEventAgeInSeconds": 3600,
        }
        scheduler_roles.add(target["roleArn"])
    assert len(scheduler_roles) == 1
    expected = sum(1 for _ in _triggers(hub, FixedSchedule)) + sum(
        len(_expected_cluster_schedules(hub, t)) for _, t in _triggers(hub, ClusterSchedule)
    )
    assert len(hub.of_type(SCHEDULE)) == expected


def test_scheduler_role_may_invoke_only_scheduled_functions(hub: HubView):
    role_arn = {s.inputs["target"]["roleArn"] for s in hub.of_type(SCHEDULE)}.pop()
    role = next(r for r in hub.of_type("aws:iam/role:Role") if r.outputs["arn"] == role_arn)
    assert not role.inputs["path"].startswith("/lambda-fleet/")
    policy = json.loads(
        hub.one("aws:iam/rolePolicy:RolePolicy", role=role.inputs["name"]).inputs["policy"]
    )
    invoke = next(s for s in policy["Statement"] if s["Action"] == ["lambda:InvokeFunction"])
    assert sorted(invoke["Resource"]) == sorted(
        {s.inputs["target"]["arn"] for s in hub.of_type(SCHEDULE)}
    )


def test_the_scheduler_role_is_trusted_only_for_the_schedules_of_the_stacks_group(hub: HubView):
    # GIVEN the role the stack's schedules name, and the group they are in
    (role_arn,) = {s.inputs["target"]["roleArn"] for s in hub.of_type(SCHEDULE)}
    (group,) = {s.inputs["groupName"] for s in hub.of_type(SCHEDULE)}
    role = next(r for r in hub.of_type("aws:iam/role:Role") if r.outputs["arn"] == role_arn)
    # WHEN its trust policy is read
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    # THEN EventBridge Scheduler may assume it for the schedules of that group only (the
    # group's ARN is the `aws:SourceArn` Scheduler names): a schedule someone makes in another
    # group of the account cannot invoke the fleet's functions through it
    region, account = hub.settings.hub.region, hub.settings.hub.account_id
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnEquals": {
            "aws:SourceArn": f"arn:aws:scheduler:{region}:{account}:schedule-group/{group}"
        },
    }


def test_every_scheduler_role_uses_the_fleet_key_only_through_sqs(hub: HubView):
    key = hub.arn(hub.one("aws:kms/key:Key"))
    roles = [
        role
        for role in hub.of_type("aws:iam/role:Role")
        if json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]
        == {"Service": "scheduler.amazonaws.com"}
    ]
    # (the stack's scheduler role, and the change validator's callback one where it is on)
    assert roles
    for role in roles:
        # GIVEN a role EventBridge Scheduler assumes WHEN its KMS statements are read
        policy = json.loads(
            hub.one("aws:iam/rolePolicy:RolePolicy", role=role.inputs["name"]).inputs["policy"]
        )
        kms = [s for s in policy["Statement"] if any(a.startswith("kms:") for a in s["Action"])]
        # THEN the fleet key serves only SQS encrypting its dead letters: a schedule's universal
        # target (aws-sdk:kms:...) cannot call KMS directly with the role
        assert kms == [
            {
                "Sid": "EncryptDeadLetters",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [key],
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"sqs.{hub.settings.hub.region}.amazonaws.com"
                    }
                },
            }
        ], role.inputs["name"]


def test_object_created_notifications_for_raw_and_processed_with_scoped_permissions(hub: HubView):
    notification = hub.one("aws:s3/bucketNotification:BucketNotification")
    bucket = notification.inputs["bucket"]
    entries = {
        (entry["lambdaFunctionArn"], entry["filterPrefix"], entry.get("filterSuffix", ""))
        for entry in notification.inputs["lambdaFunctions"]
    }
    expected = {
        (hub.arn(hub.function(spec)), trigger.prefix, trigger.suffix)
        for spec, trigger in _triggers(hub, ObjectCreated)
    }
    assert entries == expected
    assert {prefix for _, prefix, _ in entries} == {"raw/", "processed/"}
    for entry in notification.inputs["lambdaFunctions"]:
        assert entry["events"] == ["s3:ObjectCreated:*"]
    permissions = [
        p for p in hub.of_type(PERMISSION) if p.inputs["principal"] == "s3.amazonaws.com"
    ]
    assert len(permissions) == len({spec.name for spec, _ in _triggers(hub, ObjectCreated)})
    for permission in permissions:
        assert permission.inputs["sourceArn"] == f"arn:aws:s3:::{bucket}"
        assert permission.inputs["sourceAccount"] == hub.settings.hub.account_id
        assert permission.urn in notification.depends_on


def test_event_rules_match_only_member_accounts_and_deliver_with_dlq(hub: HubView):
    members = sorted(member.account_id for member in hub.settings.members)
    rules = hub.of_type("aws:cloudwatch/eventRule:EventRule")
    assert len(rules) == len(_triggers(hub, EventRule))
    for spec, trigger in _triggers(hub, EventRule):
        rule = hub.one(
            "aws:cloudwatch/eventRule:EventRule",
            name=f"{function_name(hub.stack, spec.name)}-{trigger.name}",
        )
        pattern = json.loads(rule.inputs["eventPattern"])
        assert pattern == {**trigger.pattern, "account": members}
        assert rule.inputs["eventBusName"] == f"lambda-fleet-{hub.stack}-member-events"
        target = hub.one("aws:cloudwatch/eventTarget:EventTarget", rule=rule.inputs["name"])
        assert target.inputs["arn"] == hub.arn(hub.function(spec))
        assert target.inputs["deadLetterConfig"]["arn"] == hub.dead_letter_queue_arn(spec)
        assert target.inputs["retryPolicy"]["maximumRetryAttempts"] >= 1
        hub.one(PERMISSION, principal="events.amazonaws.com", sourceArn=rule.outputs["arn"])


def test_hub_bus_accepts_events_only_from_each_members_forwarding_role(hub: HubView, program_runs):
    # GIVEN the hub bus policy
    policy = json.loads(hub.one("aws:cloudwatch/eventBusPolicy:EventBusPolicy").inputs["policy"])
    accounts = sorted(member.account_id for member in hub.settings.members)
    (statement,) = policy["Statement"]
    # THEN only PutEvents, on the stack's member-events bus (the policy's only bus), by the
    # member accounts' forwarding roles
    bus = f"lambda-fleet-{hub.stack}-member-events"
    assert hub.one("aws:cloudwatch/eventBus:EventBus").inputs["name"] == bus
    assert hub.one("aws:cloudwatch/eventBusPolicy:EventBusPolicy").inputs["eventBusName"] == bus
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]}
    assert statement["Resource"] == (
        f"arn:aws:events:{hub.settings.hub.region}:{hub.settings.hub.account_id}:event-bus/{bus}"
    )
    # (the principals are the member accounts, so the role's name in any account is the role of
    # a member account, and the policy grows by one ARN per member, not two)
    role = f"arn:aws:iam::*:role/lambda-fleet-{hub.stack}-forward-events"
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": role}}
    # AND those are the roles the member accounts' forwarding rules deliver with
    forwarding_roles = {
        role.inputs["name"]
        for role in program_runs[hub.stack].of_type("aws:iam/role:Role")
        if role.name.endswith("-events-role")
    }
    assert forwarding_roles == {f"lambda-fleet-{hub.stack}-forward-events"}


def test_stacks_sharing_a_hub_account_and_region_keep_their_own_bus_policies(program_runs):
    # GIVEN the dev and prod stacks, as if both ran in one hub account and region
    policies = {
        stack: run.of_type("aws:cloudwatch/eventBusPolicy:EventBusPolicy")
        for stack, run in program_runs.items()
    }
    # WHEN the buses their policies replace are listed
    buses = {
        stack: [policy.inputs["eventBusName"] for policy in found]
        for stack, found in policies.items()
    }
    # THEN each stack's one policy is on a bus of its own, never the account's default bus, so
    # one stack's `pulumi up` does not replace the policy that admits the other's members
    assert buses == {stack: [f"lambda-fleet-{stack}-member-events"] for stack in program_runs}


def test_every_hub_event_rule_matches_only_aws_sources(hub: HubView):
    # GIVEN every event rule on the hub bus
    for rule in hub.of_type("aws:cloudwatch/eventRule:EventRule"):
        pattern = json.loads(rule.inputs["eventPattern"])
        # THEN it names the AWS sources it expects: exact `aws.` values or the `aws.` prefix,
        # which EventBridge refuses to custom PutEvents callers
        sources = pattern["source"]
        assert sources, rule.name
        for source in sources:
            assert (isinstance(source, str) and source.startswith("aws.")) or source == {
                "prefix": "aws."
            }, (rule.name, source)


def _arn_like(pattern: str, arn: str) -> bool:
    """IAM's ArnLike: each of the six colon-separated parts matched with `*` and `?` wildcards."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    return len(pattern_parts) == len(arn_parts) == 6 and all(
        fnmatch.fnmatchcase(part, wanted)
        for part, wanted in zip(arn_parts, pattern_parts, strict=True)
    )


def _rule_arn_as_eventbridge_names_it(hub: HubView, rule) -> str:
    """A rule's ARN as EventBridge gives it: `rule/<bus>/<name>` on a custom bus, `rule/<name>`
    on the default bus (the mocks' ARNs leave the bus out)."""
    prefix = f"arn:aws:events:{hub.settings.hub.region}:{hub.settings.hub.account_id}:rule/"
    bus = rule.inputs.get("eventBusName", "default")
    return (
        f"{prefix}{rule.inputs['name']}"
        if bus == "default"
        else f"{prefix}{bus}/{rule.inputs['name']}"
    )


def test_the_plan_gives_each_rule_and_its_invoke_permission_the_arn_eventbridge_gives_it(
    hub: HubView,
):
    # GIVEN the offline plan's event rules, most of them on the stack's member-events bus
    rules = hub.of_type("aws:cloudwatch/eventRule:EventRule")
    permissions = {permission.inputs["sourceArn"] for permission in hub.of_type(PERMISSION)}
    for rule in rules:
        # WHEN a reviewer reads a rule's ARN, or the permission that lets it invoke its function
        # THEN it is the ARN the rule has in AWS, with its bus's name when on a custom bus
        expected = _rule_arn_as_eventbridge_names_it(hub, rule)
        assert rule.outputs["arn"] == expected
        assert expected in permissions, expected


def test_event_dead_letter_queues_admit_exactly_the_rules_that_dead_letter_into_them(
    hub: HubView,
):
    # GIVEN every event rule of the hub, with the ARN EventBridge gives it on its bus, and the
    # dead-letter queue its target names
    rules = hub.of_type("aws:cloudwatch/eventRule:EventRule")
    assert rules
    queue_of_rule = {
        target.inputs["rule"]: target.inputs["deadLetterConfig"]["arn"]
        for target in hub.of_type("aws:cloudwatch/eventTarget:EventTarget")
    }
    policies = {
        queue.outputs["arn"]: json.loads(
            hub.one("aws:sqs/queuePolicy:QueuePolicy", queueUrl=queue.outputs["url"]).inputs[
                "policy"
            ]
        )
        for queue in hub.of_type("aws:sqs/queue:Queue")
    }

    def admits(queue_arn: str, rule_arn: str) -> bool:
        return any(
            statement["Effect"] == "Allow"
            and statement["Principal"] == {"Service": "events.amazonaws.com"}
            and statement["Condition"]["StringEquals"]
            == {"aws:SourceAccount": hub.settings.hub.account_id}
            and any(
                _arn_like(pattern, rule_arn)
                for pattern in as_list(statement["Condition"]["ArnLike"]["aws:SourceArn"])
            )
            for statement in policies[queue_arn]["Statement"]
        )

    for rule in rules:
        rule_arn = _rule_arn_as_eventbridge_names_it(hub, rule)
        own_queue = queue_of_rule[rule.inputs["name"]]
        # WHEN EventBridge dead-letters an event it could not deliver
        # THEN the rule's own dead-letter queue admits it, and no other function's queue does
        assert admits(own_queue, rule_arn), (rule.inputs["name"], rule_arn)
        for other_queue in {*queue_of_rule.values()} - {own_queue}:
            assert not admits(other_queue, rule_arn), (rule.inputs["name"], other_queue)


def test_every_queue_refuses_plain_http(hub: HubView):
    policies = {
        policy.inputs["queueUrl"]: json.loads(policy.inputs["policy"])
        for policy in hub.of_type("aws:sqs/queuePolicy:QueuePolicy")
    }
    queues = hub.of_type("aws:sqs/queue:Queue")
    # GIVEN every queue of the hub: dead-letter queues, the router's and the scan fan-out queue
    assert {
        f"{function_name(hub.stack, name)}-queue"
        for name in ("notification_router", "security_scanner")
    } <= {queue.inputs["name"] for queue in queues}
    for queue in queues:
        # THEN its policy denies every SQS action to anyone not using TLS
        denials = [
            statement
            for statement in policies[queue.outputs["url"]]["Statement"]
            if statement["Effect"] == "Deny"
        ]
        assert denials == [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": [queue.outputs["arn"]],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ], queue.inputs["name"]


def test_alert_topic_subscriptions_are_invocable_only_from_their_topics(hub: HubView):
    for spec, trigger in _triggers(hub, AlertTopics):
        function_arn = hub.arn(hub.function(spec))
        for severity in trigger.severities:
            topic = hub.one("aws:sns/topic:Topic", name=f"lf-{hub.stack}-alerts-{severity}")
            hub.one(
                "aws:sns/topicSubscription:TopicSubscription",
                topic=hub.arn(topic),
                protocol="lambda",
                endpoint=function_arn,
            )
            hub.one(PERMISSION, principal="sns.amazonaws.com", sourceArn=hub.arn(topic))


def test_http_api_routes_use_iam_authorisation_and_proxy_payload_2(hub: HubView):
    api = hub.one("aws:apigatewayv2/api:Api")
    assert api.inputs["protocolType"] == "HTTP"
    routes = hub.of_type("aws:apigatewayv2/route:Route")
    assert sorted(r.inputs["routeKey"] for r in routes) == sorted(
        f"{t.method} {t.path}" for _, t in _triggers(hub, HttpRoute)
    )
    for route in routes:
        assert route.inputs["authorizationType"] == "AWS_IAM"
    # AND each integration invokes its function through the http-api alias (of $LATEST), which
    # API Gateway alone is granted: a direct invoke of the function cannot pass for a request
    aliases = {alias.outputs["arn"]: alias for alias in hub.of_type("aws:lambda/alias:Alias")}
    for integration in hub.of_type("aws:apigatewayv2/integration:Integration"):
        assert integration.inputs["integrationType"] == "AWS_PROXY"
        assert integration.inputs["payloadFormatVersion"] == "2.0"
        alias = aliases[integration.inputs["integrationUri"]]
        assert alias.inputs["name"] == HTTP_API_ALIAS
        assert alias.inputs["functionVersion"] == "$LATEST"
    stage = hub.one("aws:apigatewayv2/stage:Stage")
    assert stage.inputs["name"] == "$default"
    assert stage.inputs["autoDeploy"] is True
    assert stage.inputs["accessLogSettings"]["destinationArn"].startswith("arn:aws:logs:")
    execution_arn = api.outputs["executionArn"]
    for _spec, trigger in _triggers(hub, HttpRoute):
        hub.one(
            PERMISSION,
            principal="apigateway.amazonaws.com",
            sourceArn=f"{execution_arn}/*/{trigger.method}{trigger.path}",
            qualifier=HTTP_API_ALIAS,
        )
    # AND API Gateway is granted only the alias, and the alias only to API Gateway
    assert not [
        grant
        for grant in hub.of_type(PERMISSION)
        if (grant.inputs["principal"] == "apigateway.amazonaws.com")
        != (grant.inputs.get("qualifier") == HTTP_API_ALIAS)
    ]
    # AND no policy of the hub lets another principal invoke an alias: the fleet's grants name
    # the functions' own ARNs, which do not reach their aliases
    for alias_arn in aliases:
        assert not [
            resource.name
            for resource, statement in hub.statements()
            if any(
                fnmatch.fnmatchcase("lambda:InvokeFunction", action)
                for action in as_list(statement.get("Action", []))
            )
            and any(
                fnmatch.fnmatchcase(alias_arn, pattern)
                for pattern in as_list(statement.get("Resource", []))
            )
        ], alias_arn
    assert hub.run.stack_outputs["http_api_endpoint"] == api.outputs["apiEndpoint"]


def test_queue_consumers_read_their_own_encrypted_queue_with_batch_item_failures(hub: HubView):
    key_arn = hub.arn(hub.one("aws:kms/key:Key"))
    for spec, trigger in _triggers(hub, QueueMessages):
        name = function_name(hub.stack, spec.name)
        queue = hub.one("aws:sqs/queue:Queue", name=f"{name}-queue")
        assert queue.inputs["kmsMasterKeyId"] == key_arn
        redrive = json.loads(queue.inputs["redrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(f":{name}-queue-dlq")
        mapping = hub.one(
            "aws:lambda/eventSourceMapping:EventSourceMapping", eventSourceArn=queue.outputs["arn"]
        )
        assert mapping.inputs["functionName"] == hub.arn(hub.function(spec))
        assert mapping.inputs["batchSize"] == trigger.batch_size
        assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
        variables = hub.function(spec).inputs["environment"]["variables"]
        for variable, source in spec.environment.items():
            if source is EnvSource.FUNCTION_QUEUE_URL:
                assert variables[variable] == queue.outputs["url"]


def test_athena_workgroup_writes_encrypted_results_to_the_data_bucket(hub: HubView):
    workgroup = hub.one("aws:athena/workgroup:Workgroup")
    configuration = workgroup.inputs["configuration"]
    data_bucket = hub.run.stack_outputs["data_bucket"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    results = configuration["resultConfiguration"]
    assert results["outputLocation"] == f"s3://{data_bucket}/athena-results/"
    assert results["encryptionConfiguration"] == {
        "encryptionOption": "SSE_KMS",
        "kmsKeyArn": hub.arn(hub.one("aws:kms/key:Key")),
    }
    users = [spec for spec in hub.enabled_functions if "ATHENA_WORKGROUP" in spec.environment]
    for spec in users:
        variables = hub.function(spec).inputs["environment"]["variables"]
        assert variables["ATHENA_WORKGROUP"] == workgroup.inputs["name"]


def test_dashboard_shows_the_four_metrics_for_every_function(hub: HubView):
    dashboard = hub.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    names = sorted(function_name(hub.stack, spec.name) for spec in hub.enabled_functions)
    seen = {}
    for widget in body["widgets"]:
        properties = widget["properties"]
        metric = properties["metrics"][0][1]
        seen[metric] = properties["stat"]
        assert [line[3] for line in properties["metrics"]] == names
    assert seen == {"Invocations": "Sum", "Errors": "Sum", "Duration": "p95", "Throttles": "Sum"}
    assert hub.run.stack_outputs["dashboard_name"] == dashboard.inputs["dashboardName"]


def test_the_routers_shortest_dedup_window_outlasts_its_queues_redelivery(hub: HubView):
    # GIVEN the router's queue as the program creates it: SQS redelivers a message a channel did
    # not take after its visibility timeout, and it may then wait one invocation in its batch
    spec = function_spec("notification_router")
    name = function_name(hub.stack, spec.name)
    queue = hub.one("aws:sqs/queue:Queue", name=f"{name}-queue")
    redelivery_seconds = (
        queue.inputs["visibilityTimeoutSeconds"] + hub.function(spec).inputs["timeout"]
    )
    # WHEN compared with the shortest dedup window the router's environment accepts, and the one
    # it runs with
    variables = hub.function(spec).inputs["environment"]["variables"]
    window = RouterEnvironment.model_fields["router_dedup_window_seconds"].default
    deployed_window = int(variables.get("ROUTER_DEDUP_WINDOW_SECONDS", window))
    # THEN the record of the channels that took an alert (kept for the window) outlasts a
    # redelivery, whatever the variable is set to
    assert redelivery_seconds <= MIN_DEDUP_WINDOW_SECONDS
    assert deployed_window >= MIN_DEDUP_WINDOW_SECONDS


def test_the_router_remembers_a_message_as_long_as_the_platform_can_hand_it_out_again(
    hub: HubView,
):
    # GIVEN the router as the program creates it: Lambda retries an alert topic's event until its
    # maximum event age, then sends its failure record to the router's queue, SQS hands a message
    # out again a visibility timeout after each receive, up to the queue's receive count, and
    # people may redrive a message from the queue's dead-letter queue as long as the queue and
    # then the dead-letter queue keep it
    spec = function_spec("notification_router")
    function = hub.function(spec)
    name = function.inputs["name"]
    config = hub.one(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", functionName=name
    )
    queue = hub.one("aws:sqs/queue:Queue", name=f"{name}-queue")
    dead_letters = hub.one("aws:sqs/queue:Queue", name=f"{name}-queue-dlq")
    receives = json.loads(queue.inputs["redrivePolicy"])["maxReceiveCount"]
    timeout = function.inputs["timeout"]
    latest_retry = config.inputs["maximumEventAgeInSeconds"] + timeout
    latest_redelivery = (receives - 1) * queue.inputs["visibilityTimeoutSeconds"] + timeout
    latest_redrive = (
        config.inputs["maximumEventAgeInSeconds"]
        + queue.inputs["messageRetentionSeconds"]
        + dead_letters.inputs["messageRetentionSeconds"]
        + timeout
    )
    assert config.inputs["destinationConfig"]["onFailure"]["destination"] == hub.arn(queue)
    # WHEN compared with how long the router recognises a message it handled
    remembered = int(function.inputs["environment"]["variables"]["ROUTER_REDELIVERY_SECONDS"])
    # THEN a retry, redelivery or redrive as late as any can come is still recognised
    assert remembered >= max(latest_retry, latest_redelivery, latest_redrive)
