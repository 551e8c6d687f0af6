"""Least privilege everywhere: no wildcard actions, `*` resources only where AWS needs them."""

from __future__ import annotations

import fnmatch
import json

import pytest
from hub_view import IAM_POLICY, ROLE, ROLE_POLICY, HubView, as_list

from catalog.functions import (
    FUNCTIONS_BY_NAME,
    STATE_TABLE_READS,
    STATE_TABLE_WRITES,
    function_spec,
)
from catalog.model import ResourceRef
from components.buckets import ATHENA_RESULTS_PREFIX, INVENTORY_KEY
from components.function_wiring import (
    NO_RESOURCE_LEVEL_ACTIONS,
    UndeclaredStatePartitionsError,
    state_table_conditions,
)
from components.naming import function_name, function_role_path, member_role_name
from components.state_table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from fleet_shared.alert_delivery import SCOPE, claim_scope
from fleet_shared.change_intents import NOTICE_DELIVERERS
from fleet_shared.state_keys import (
    NODE_GROUP_LOCKS,
    NODE_GROUP_STATE,
    READ_ONLY,
    READ_WRITE,
    readable_partitions,
    writable_partitions,
)


@pytest.fixture
def hub(stack_run) -> HubView:
    return HubView(stack_run)


def test_no_iam_policy_statement_allows_a_wildcard_action(hub: HubView):
    # GIVEN every IAM policy the plan creates WHEN each statement's actions are read
    statements = hub.statements(ROLE_POLICY, IAM_POLICY)
    assert statements
    for resource, statement in statements:
        actions = as_list(statement.get("Action", [])) + as_list(statement.get("NotAction", []))
        # THEN none is `*` or `service:*`
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (resource.name, action)


def test_no_resource_policy_allows_a_wildcard_action_or_an_anonymous_principal(hub: HubView):
    for resource, statement in hub.statements():
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (resource.name, action)
        principal = statement.get("Principal")
        if principal is not None:
            assert principal != "*" and "*" not in as_list(principal.get("AWS", [])), resource.name


def test_star_resources_only_for_actions_without_resource_level_permissions(hub: HubView):
    for resource, statement in hub.statements(ROLE_POLICY, IAM_POLICY):
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Resource"]) == ["*"], resource.name
            assert set(as_list(statement["Action"])) <= NO_RESOURCE_LEVEL_ACTIONS, resource.name


def test_every_function_role_is_under_the_fleets_function_role_path(hub: HubView):
    roles = {role.inputs["name"]: role for role in hub.of_type(ROLE)}
    for spec in hub.enabled_functions:
        role = roles[function_name(hub.stack, spec.name)]
        assert role.inputs["path"] == f"/lambda-fleet/{hub.stack}/" == function_role_path(hub.stack)
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    # Only function roles sit under that path.
    under_path = [
        r for r in hub.of_type(ROLE) if r.inputs.get("path") == function_role_path(hub.stack)
    ]
    assert len(under_path) == len(hub.enabled_functions)


def _function_policy(hub: HubView, spec) -> dict:
    role = function_name(hub.stack, spec.name)
    return json.loads(hub.one(ROLE_POLICY, role=role).inputs["policy"])


def test_function_policies_grant_the_catalog_actions_on_resolved_arns(hub: HubView):
    region, account = hub.settings.hub.region, hub.settings.hub.account_id
    table_arn = hub.arn(hub.one("aws:dynamodb/table:Table"))
    for spec in hub.enabled_functions:
        statements = _function_policy(hub, spec)["Statement"]
        granted = {action for s in statements for action in as_list(s["Action"])}
        declared = {action for p in spec.permissions for action in p.actions}
        if not (
            hub.settings.alerts.slack_webhook_secret_name
            or hub.settings.alerts.pagerduty_routing_key_secret_name
        ):
            declared.discard("secretsmanager:GetSecretValue")
        if hub.settings.cost_report.query_engine != "athena":
            declared -= {"glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"}
        if not writable_partitions(spec.name):
            declared -= set(STATE_TABLE_WRITES.actions)
        assert declared <= granted, spec.name
        # Every statement's resources of an action: the router's role sends to three queues,
        # in statements of their own.
        by_action: dict[str, list[object]] = {}
        for statement in statements:
            for action in as_list(statement["Action"]):
                by_action.setdefault(action, []).extend(as_list(statement["Resource"]))
        assert by_action["dynamodb:GetItem"] == [table_arn]
        if spec.acts_in_members:
            assert by_action["sts:AssumeRole"] == [
                f"arn:aws:iam::*:role/{member_role_name(hub.stack, spec.name)}"
            ]
        log_group = (
            f"arn:aws:logs:{region}:{account}:log-group:"
            f"/aws/lambda/{function_name(hub.stack, spec.name)}:*"
        )
        assert by_action["logs:PutLogEvents"] == [log_group]
        assert by_action["logs:CreateLogStream"] == [log_group]
        assert hub.dead_letter_queue_arn(spec) in by_action["sqs:SendMessage"]


def test_invoking_functions_may_invoke_only_the_functions_they_declare(hub: HubView):
    for spec in hub.enabled_functions:
        statements = _function_policy(hub, spec)["Statement"]
        invocable = [
            r
            for s in statements
            if "lambda:InvokeFunction" in as_list(s["Action"])
            for r in as_list(s["Resource"])
        ]
        assert sorted(invocable) == sorted(
            hub.arn(hub.one("aws:lambda/function:Function", name=function_name(hub.stack, name)))
            for name in spec.invokes
        ), spec.name


def test_the_router_publishes_only_to_the_email_topic_and_every_other_function_alerts(
    hub: HubView,
):
    topics = {topic.inputs["name"]: hub.arn(topic) for topic in hub.of_type("aws:sns/topic:Topic")}
    email_topic = topics[f"lf-{hub.stack}-alerts-email"]
    alert_topics = sorted(arn for arn in topics.values() if arn != email_topic)
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN the topics it may publish to are read
        statements = _function_policy(hub, spec)["Statement"]
        published = sorted(
            r for s in statements if "sns:Publish" in as_list(s["Action"]) for r in s["Resource"]
        )
        # THEN the router, which consumes the alert topics, may publish only to the e-mail
        # topic (a publish to an alert topic would come back to it); the others to the alert
        # topics only
        if spec.name == "notification_router":
            assert published == [email_topic]
        else:
            assert published == alert_topics, spec.name


def test_only_the_router_reads_alert_secrets_and_only_the_configured_ones(hub: HubView):
    region, account = hub.settings.hub.region, hub.settings.hub.account_id
    configured = [
        name
        for name in (
            hub.settings.alerts.slack_webhook_secret_name,
            hub.settings.alerts.pagerduty_routing_key_secret_name,
        )
        if name
    ]
    for spec in hub.enabled_functions:
        statements = _function_policy(hub, spec)["Statement"]
        secrets = [
            r
            for s in statements
            if "secretsmanager:GetSecretValue" in as_list(s["Action"])
            for r in as_list(s["Resource"])
        ]
        if any(ResourceRef.ALERT_SECRETS in p.resources for p in spec.permissions):
            assert secrets == [
                f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????"
                for name in configured
            ]
        else:
            assert secrets == []


def test_functions_without_member_actions_may_assume_no_role(hub: HubView):
    for spec in hub.enabled_functions:
        if spec.acts_in_members:
            continue
        # GIVEN a function that acts only in the hub WHEN its policy is read
        statements = _function_policy(hub, spec)["Statement"]
        # THEN it grants no sts action at all
        actions = {action for s in statements for action in as_list(s["Action"])}
        assert not {action for action in actions if action.startswith("sts:")}, spec.name


def test_functions_may_assume_only_their_own_member_role(hub: HubView):
    for spec in hub.enabled_functions:
        if not spec.acts_in_members:
            continue
        # GIVEN a function that acts in members WHEN its policy's sts statements are read
        statements = _function_policy(hub, spec)["Statement"]
        (assume,) = [s for s in statements if any(a.startswith("sts:") for a in s["Action"])]
        # THEN it may assume only this function's member role, in the member accounts only (the
        # role named in any account, narrowed by account id: an ARN per member took the policy
        # past IAM's 10,240 characters at about 80 members)
        assert assume["Action"] == ["sts:AssumeRole"]
        assert assume["Resource"] == [
            f"arn:aws:iam::*:role/{member_role_name(hub.stack, spec.name)}"
        ]
        assert assume["Condition"] == {
            "StringEquals": {
                "aws:ResourceAccount": sorted(member.account_id for member in hub.settings.members)
            }
        }, spec.name


def test_only_report_processor_may_delete_an_object_version_and_only_under_raw(
    hub: HubView,
):
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN the resources it may delete one version of are read
        statements = _function_policy(hub, spec)["Statement"]
        by_action = {
            action: as_list(s["Resource"]) for s in statements for action in as_list(s["Action"])
        }
        # THEN report_processor may, under the data bucket's raw/ only (a rejected raw document
        # leaves raw/ by its version, so a newer one that landed meanwhile stays current); no
        # other function may remove a version, which is gone for good
        if spec.name == "report_processor":
            data_bucket = by_action["s3:ListBucket"]
            assert by_action.get("s3:DeleteObjectVersion") == [
                f"{arn}/raw/*" for arn in data_bucket
            ]
        else:
            assert "s3:DeleteObjectVersion" not in by_action, spec.name


# What each function may write or delete in the data bucket: its own folders (`?` is IAM's one
# character: a report's date).
DATA_BUCKET_WRITES = {
    "cost_analyzer": {"s3:PutObject": ["reports/cost/", ATHENA_RESULTS_PREFIX]},
    "security_scanner": {"s3:PutObject": ["reports/security/"]},
    "report_fetcher": {"s3:PutObject": ["raw/", "cache/"]},
    "report_processor": {
        "s3:PutObject": ["processed/", "raw/rejected/"],
        "s3:DeleteObject": ["raw/"],
        "s3:DeleteObjectVersion": ["raw/"],
    },
    "report_generator": {
        action: ["reports/????-??-??/", "reports/latest/", "tmp/reports/"]
        for action in ("s3:PutObject", "s3:DeleteObject")
    },
    "performance_analyzer": {"s3:PutObject": ["analyses/"]},
    "scaling_optimizer": {"s3:PutObject": ["recommendations/"]},
}


def test_functions_write_only_their_own_folders_of_the_data_bucket_and_never_the_inventory(
    hub: HubView,
):
    data_bucket = hub.arn(
        next(b for b in hub.of_type("aws:s3/bucket:Bucket") if b.inputs["bucket"].endswith("-data"))
    )
    inventory = f"{data_bucket}/{INVENTORY_KEY}"
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN the objects it may put or delete are read
        statements = _function_policy(hub, spec)["Statement"]
        writes = {
            action: [r for s in statements if action in as_list(s["Action"]) for r in s["Resource"]]
            for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion")
        }
        # THEN they are the folders of its own documents, none of which holds the inventory
        # (its floors, sizes and dry run bind every function; only `pulumi up` writes it)
        expected = DATA_BUCKET_WRITES.get(spec.name, {})
        assert {action: arns for action, arns in writes.items() if arns} == {
            action: [f"{data_bucket}/{prefix}*" for prefix in prefixes]
            for action, prefixes in expected.items()
        }, spec.name
        for arns in writes.values():
            assert not any(fnmatch.fnmatchcase(inventory, arn) for arn in arns), spec.name


def test_the_fleet_key_is_used_only_through_the_services_that_encrypt_for_each_function(
    hub: HubView,
):
    key = hub.arn(hub.one("aws:kms/key:Key"))
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN its KMS statements are read
        statements = _function_policy(hub, spec)["Statement"]
        kms = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
        via: dict[str, set[str]] = {}
        for statement in kms:
            assert as_list(statement["Resource"]) == [key], spec.name
            services = as_list(statement["Condition"]["StringLike"]["kms:ViaService"])
            for action in as_list(statement["Action"]):
                via.setdefault(action, set()).update(s.split(".")[0] for s in services)
        # THEN it never encrypts directly (nothing it uses asks for kms:Encrypt), decrypts only
        # through the services holding its data, and gets data keys for its alerts and dead
        # letters, and for objects only when it puts objects into the data bucket
        puts_objects = any("s3:PutObject" in as_list(s["Action"]) for s in statements)
        assert via == {
            "kms:Decrypt": {"dynamodb", "lambda", "s3", "sns", "sqs"},
            "kms:GenerateDataKey": {"sns", "sqs", *(["s3"] if puts_objects else [])},
        }, spec.name


def test_a_state_table_scan_may_name_only_its_keys_and_expiry_and_must_say_so(hub: HubView):
    table_arn = hub.arn(hub.one("aws:dynamodb/table:Table"))
    scanners = []
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN its Scan statements are read
        scans = [
            s
            for s in _function_policy(hub, spec)["Statement"]
            if "dynamodb:Scan" in as_list(s["Action"])
        ]
        if not scans:
            continue
        scanners.append(spec.name)
        # THEN there is one, alone, on the state table, granted only for a Scan that says
        # Select SPECIFIC_ATTRIBUTES and names the table's key and expiry, never a value's data
        (scan,) = scans
        assert as_list(scan["Action"]) == ["dynamodb:Scan"], spec.name
        assert as_list(scan["Resource"]) == [table_arn], spec.name
        assert scan["Condition"] == {
            "ForAllValues:StringEquals": {
                "dynamodb:Attributes": sorted([PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE])
            },
            "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
        }, spec.name
    # AND only the functions that search the table once as they upgrade may Scan it
    assert sorted(scanners) == ["backup_scheduler", "change_validator", "security_scanner"]


def test_each_function_reads_and_writes_only_its_own_state_table_partitions(hub: HubView):
    table_arn = hub.arn(hub.one("aws:dynamodb/table:Table"))
    item_actions = {*STATE_TABLE_READS.actions, *STATE_TABLE_WRITES.actions}
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN its statements on the state table's items are read
        statements = [
            s
            for s in _function_policy(hub, spec)["Statement"]
            if item_actions & set(as_list(s["Action"]))
        ]
        by_kind = {tuple(sorted(as_list(s["Action"]))): s for s in statements}
        reads = tuple(sorted(STATE_TABLE_READS.actions))
        writes = tuple(sorted(STATE_TABLE_WRITES.actions))
        # THEN the reads reach the partitions it reads, the writes those it writes, each
        # under dynamodb:LeadingKeys (every item of a request), on the table alone
        expected = {reads: readable_partitions(spec.name)}
        if writable_partitions(spec.name):
            expected[writes] = writable_partitions(spec.name)
        assert set(by_kind) == set(expected), spec.name
        for actions, partitions in expected.items():
            statement = by_kind[actions]
            assert as_list(statement["Resource"]) == [table_arn], spec.name
            leading = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert as_list(leading) == list(partitions), spec.name
    # AND the one function that writes nothing there may write nothing
    scaling_optimizer = _function_policy(hub, function_spec("scaling_optimizer"))
    granted = {a for s in scaling_optimizer["Statement"] for a in as_list(s["Action"])}
    assert not granted & set(STATE_TABLE_WRITES.actions)


def test_no_two_functions_write_one_partition_but_the_node_groups() -> None:
    # GIVEN the declared partitions WHEN those written by more than one function are collected
    writers: dict[str, list[str]] = {}
    for function, partitions in READ_WRITE.items():
        for partition in partitions:
            writers.setdefault(partition, []).append(function)
    shared = {partition for partition, functions in writers.items() if len(functions) > 1}
    # THEN only the node groups' locks and state (the scaler and the spot optimizer's one
    # lock) are shared
    assert shared == {NODE_GROUP_LOCKS, NODE_GROUP_STATE}
    # AND every catalog function has its partitions declared, and only those
    assert set(READ_WRITE) == set(FUNCTIONS_BY_NAME)
    assert set(READ_ONLY) <= set(FUNCTIONS_BY_NAME)


def test_a_functions_role_may_write_its_own_alert_delivery_claims_and_no_other_functions(
    hub: HubView,
):
    # GIVEN the partition key of a delivery claim of each function of the catalog, as
    # `deliver_once` builds it, and that of a claim made before they were per function
    claims = {name: f"IDEMPOTENCY#{claim_scope(name)}" for name in FUNCTIONS_BY_NAME}
    shared = f"IDEMPOTENCY#{SCOPE}"

    def matched(partition_key: str, patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(partition_key, pattern) for pattern in patterns)

    alerting = []
    for spec in hub.enabled_functions:
        # WHEN the dynamodb:LeadingKeys of its role's reads and writes of items are read
        leading = {
            tuple(sorted(as_list(s["Action"]))): as_list(
                s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            )
            for s in _function_policy(hub, spec)["Statement"]
            if set(as_list(s["Action"])) & set(STATE_TABLE_WRITES.actions)
            or set(as_list(s["Action"])) & set(STATE_TABLE_READS.actions)
        }
        writes = leading.get(tuple(sorted(STATE_TABLE_WRITES.actions)), [])
        reads = leading[tuple(sorted(STATE_TABLE_READS.actions))]
        # THEN none may write the claims made before the upgrade
        assert not matched(shared, writes), spec.name
        writable = {name for name, key in claims.items() if matched(key, writes)}
        if not writable:
            continue
        alerting.append(spec.name)
        # AND of every function's claims, one that claims alerts may write its own only, and
        # read another's only where either delivers a scaler change's notice
        assert writable == {spec.name}
        readable = {name for name, key in claims.items() if matched(key, reads)}
        peers = set(NOTICE_DELIVERERS) if spec.name in NOTICE_DELIVERERS else {spec.name}
        assert readable == peers, spec.name
        # AND it may read those made before the upgrade
        assert matched(shared, reads), spec.name
    assert {"eks_scaler", "health_monitor", "cost_analyzer"} <= set(alerting)


def test_a_function_without_declared_partitions_is_refused_naming_where_to_declare_them():
    # GIVEN a function the state table's partitions do not name
    # WHEN its statement on the table's items is turned into the role's
    with pytest.raises(UndeclaredStatePartitionsError) as refused:
        state_table_conditions("new_function", STATE_TABLE_READS)
    # THEN the program stops, naming the function and the declaration
    assert "new_function" in str(refused.value)
    assert "handlers/fleet_shared/state_keys.py" in str(refused.value)


def test_metrics_may_be_put_only_in_the_fleets_namespace(hub: HubView):
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN the PutMetricData statement is read
        (statement,) = [
            s
            for s in _function_policy(hub, spec)["Statement"]
            if "cloudwatch:PutMetricData" in as_list(s["Action"])
        ]
        # THEN it is alone and conditioned on the LambdaFleet namespace
        assert as_list(statement["Action"]) == ["cloudwatch:PutMetricData"]
        assert statement["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": "LambdaFleet"}
        }, spec.name


def test_logs_insights_results_may_be_read_only_from_the_log_groups_a_function_may_query(
    hub: HubView,
):
    readers = 0
    for spec in hub.enabled_functions:
        # GIVEN each function's policy WHEN the resources of its Logs Insights grants are read
        statements = _function_policy(hub, spec)["Statement"]
        by_action = {
            action: as_list(s["Resource"]) for s in statements for action in as_list(s["Action"])
        }
        if "logs:GetQueryResults" not in by_action:
            continue
        readers += 1
        # THEN GetQueryResults, which IAM authorizes against the queried log groups, names the
        # log groups the function may start a query on, not `*`
        assert by_action["logs:GetQueryResults"] == by_action["logs:StartQuery"], spec.name
        assert "*" not in by_action["logs:GetQueryResults"], spec.name
    assert readers


def test_the_router_may_send_only_to_its_queues_and_is_told_its_queues_dead_letter_queue(
    hub: HubView,
):
    # GIVEN the router, its queue's dead-letter queue and the alarm watching that queue
    (spec,) = [spec for spec in hub.enabled_functions if spec.name == "notification_router"]
    name = function_name(hub.stack, spec.name)
    queue_dead_letters = hub.one("aws:sqs/queue:Queue", name=f"{name}-queue-dlq")
    alarm = hub.one("aws:cloudwatch/metricAlarm:MetricAlarm", name=f"{name}-queue-dead-letters")
    assert alarm.inputs["dimensions"] == {"QueueName": queue_dead_letters.inputs["name"]}
    # WHEN its role's policy and its environment are read
    statements = _function_policy(hub, spec)["Statement"]
    variables = hub.function(spec).inputs["environment"]["variables"]
    # THEN it may send messages only to that queue, where it keeps the SNS messages it cannot
    # read, to its own queue (Lambda sends the record of a failed asynchronous invocation there
    # with the function's role) and to its own dead-letter queue
    queue = hub.one("aws:sqs/queue:Queue", name=f"{name}-queue")
    senders = [s for s in statements if "sqs:SendMessage" in as_list(s["Action"])]
    assert sorted(r for s in senders for r in as_list(s["Resource"])) == sorted(
        [hub.arn(queue_dead_letters), hub.arn(queue), hub.dead_letter_queue_arn(spec)]
    )
    for sent_to in (queue_dead_letters, queue):
        (grant,) = [s for s in senders if hub.arn(sent_to) in as_list(s["Resource"])]
        assert as_list(grant["Action"]) == ["sqs:SendMessage"]
    # AND its environment names that queue
    assert variables["ROUTER_DEAD_LETTER_QUEUE_URL"] == queue_dead_letters.outputs["url"]
    # AND no other function may send to it
    for other in hub.enabled_functions:
        if other.name != spec.name:
            granted = [
                r for s in _function_policy(hub, other)["Statement"] for r in as_list(s["Resource"])
            ]
            assert hub.arn(queue_dead_letters) not in granted, other.name
