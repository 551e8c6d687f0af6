"""Hub storage and alerting: buckets, fleet inventory, state table, key and topics."""

from __future__ import annotations

import json
import re

import pytest
from hub_view import FUNCTION, HubView

from components.buckets import INVENTORY_KEY
from fleetctl.mocked_program import REPO_ROOT

BUCKET = "aws:s3/bucket:Bucket"
HUB = ("data", "access-logs")


@pytest.fixture
def hub(stack_run) -> HubView:
    return HubView(stack_run)


def _buckets(hub: HubView) -> dict[str, dict]:
    names = {bucket.inputs["bucket"] for bucket in hub.of_type(BUCKET)}
    return {suffix: next(n for n in names if n.endswith(f"-{suffix}")) for suffix in HUB}


def _for_bucket(hub: HubView, type_token: str, bucket: str):
    return hub.one(type_token, bucket=bucket)


def test_buckets_live_in_the_hub_account_and_region(hub: HubView):
    # GIVEN a stack WHEN the program runs THEN exactly the data and access-log buckets exist,
    # both in the hub account and region
    buckets = hub.of_type(BUCKET)
    assert len(buckets) == 2
    for bucket in buckets:
        assert bucket.placement.account_id == hub.settings.hub.account_id
        assert bucket.placement.region == hub.settings.hub.region


def test_every_bucket_blocks_public_access_and_disables_acls(hub: HubView):
    for bucket in _buckets(hub).values():
        block = _for_bucket(hub, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        for setting in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block.inputs[setting] is True, (bucket, setting)
        ownership = _for_bucket(
            hub, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket
        )
        assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_every_bucket_is_versioned(hub: HubView):
    for bucket in _buckets(hub).values():
        versioning = _for_bucket(hub, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"


def test_data_bucket_uses_the_fleet_key_and_log_bucket_uses_sse_s3(hub: HubView):
    # GIVEN the fleet key WHEN the buckets' default encryption is read
    key_arn = hub.arn(hub.one("aws:kms/key:Key"))
    buckets = _buckets(hub)
    encryption_type = (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    data = _for_bucket(hub, encryption_type, buckets["data"]).inputs["rules"][0]
    logs = _for_bucket(hub, encryption_type, buckets["access-logs"]).inputs["rules"][0]
    # THEN data is SSE-KMS with the fleet key; logs are SSE-S3 (access logging can't use KMS)
    assert data["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key_arn,
    }
    assert data["bucketKeyEnabled"] is True
    assert logs["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"


def test_every_bucket_refuses_plain_http(hub: HubView):
    for bucket in _buckets(hub).values():
        policy = json.loads(
            _for_bucket(hub, "aws:s3/bucketPolicy:BucketPolicy", bucket).inputs["policy"]
        )
        denials = [
            statement
            for statement in policy["Statement"]
            if statement["Effect"] == "Deny"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denials) == 1
        assert set(denials[0]["Resource"]) == {
            f"arn:aws:s3:::{bucket}",
            f"arn:aws:s3:::{bucket}/*",
        }


def test_data_bucket_logs_access_into_the_log_bucket_which_admits_only_s3_logging(hub: HubView):
    buckets = _buckets(hub)
    logging = _for_bucket(hub, "aws:s3/bucketLogging:BucketLogging", buckets["data"])
    assert logging.inputs["targetBucket"] == buckets["access-logs"]
    policy = json.loads(
        _for_bucket(hub, "aws:s3/bucketPolicy:BucketPolicy", buckets["access-logs"]).inputs[
            "policy"
        ]
    )
    allows = [statement for statement in policy["Statement"] if statement["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allows[0]["Action"] == "s3:PutObject"
    assert allows[0]["Condition"]["StringEquals"] == {
        "aws:SourceAccount": hub.settings.hub.account_id
    }
    assert allows[0]["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{buckets['data']}"}


def _expirations(hub: HubView, bucket: str) -> dict[str, tuple]:
    lifecycle = _for_bucket(
        hub, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    )
    found = {}
    for rule in lifecycle.inputs["rules"]:
        assert rule["status"] == "Enabled"
        found[rule["filter"]["prefix"]] = (
            (rule.get("expiration") or {}).get("days"),
            (rule.get("noncurrentVersionExpiration") or {}).get("noncurrentDays"),
        )
    return found


def test_lifecycle_expires_cache_raw_noncurrent_versions_and_old_logs(hub: HubView):
    buckets = _buckets(hub)
    data = _expirations(hub, buckets["data"])
    assert data["cache/"][0] == 1
    # (what a writer staged under tmp/ and never published is gone the next day, versions too)
    assert data["tmp/"] == (1, 1)
    assert data["raw/"][0] == 30
    assert data[""][1] == 30
    logs = _expirations(hub, buckets["access-logs"])
    assert logs[""] == (90, 30)


def test_fleet_inventory_is_the_settings_inventory_encrypted_in_the_data_bucket(hub: HubView):
    inventory = hub.one("aws:s3/bucketObjectv2:BucketObjectv2", key=INVENTORY_KEY)
    assert inventory.inputs["bucket"] == _buckets(hub)["data"]
    assert inventory.inputs["content"] == json.dumps(
        hub.settings.inventory(hub.stack).model_dump(mode="json"), sort_keys=True, indent=2
    )
    assert inventory.inputs["contentType"] == "application/json"
    assert inventory.inputs["serverSideEncryption"] == "aws:kms"
    assert inventory.inputs["kmsKeyId"] == hub.arn(hub.one("aws:kms/key:Key"))


def test_fleet_inventory_is_written_after_every_function_and_no_function_waits_for_it(
    hub: HubView,
):
    # GIVEN the hub's inventory object and each function component with its resources
    inventory = hub.one("aws:s3/bucketObjectv2:BucketObjectv2", key=INVENTORY_KEY)
    waits_for = hub.run.dependencies_of(inventory)
    components = hub.of_type("lambda-fleet:functions:FleetFunction")
    assert len(components) == len(hub.of_type(FUNCTION)) > 1
    for component in components:
        resources = [r for r in hub.run.descendants_of(component.urn) if r.custom]
        # THEN the inventory waits for every one of them, the function's code and configuration
        # among them: a function still running the release before refuses a field it does not
        # know, so the new inventory is written once every function runs the new release
        assert {r.urn for r in resources} <= waits_for, component.urn
        assert [r for r in resources if r.type == FUNCTION]
        # AND none of them waits for the inventory: no cycle, no function held by its write
        for resource in resources:
            assert inventory.urn not in hub.run.dependencies_of(resource), resource.urn


def test_state_table_keys_ttl_recovery_protection_and_encryption(hub: HubView):
    table = hub.one("aws:dynamodb/table:Table").inputs
    assert (table["hashKey"], table["rangeKey"]) == ("pk", "sk")
    assert sorted((a["name"], a["type"]) for a in table["attributes"]) == [("pk", "S"), ("sk", "S")]
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table["pointInTimeRecovery"]["enabled"] is True
    assert table["deletionProtectionEnabled"] is True
    assert table["serverSideEncryption"] == {
        "enabled": True,
        "kmsKeyArn": hub.arn(hub.one("aws:kms/key:Key")),
    }


def test_fleet_key_rotates_and_lets_each_service_use_it(hub: HubView):
    key = hub.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    policy = json.loads(key.inputs["policy"])
    region, account = hub.settings.hub.region, hub.settings.hub.account_id
    principals = [statement["Principal"] for statement in policy["Statement"]]
    assert {"AWS": f"arn:aws:iam::{account}:root"} in principals
    assert {"Service": f"logs.{region}.amazonaws.com"} in principals
    via = [
        statement["Condition"]["StringEquals"]["kms:ViaService"]
        for statement in policy["Statement"]
        if "kms:ViaService" in statement.get("Condition", {}).get("StringEquals", {})
    ]
    assert set(via[0]) >= {
        f"{service}.{region}.amazonaws.com" for service in ("sns", "sqs", "s3", "dynamodb")
    }


def test_alert_and_email_topics_are_encrypted_and_limited_to_the_account(hub: HubView):
    key_arn = hub.arn(hub.one("aws:kms/key:Key"))
    topics = hub.of_type("aws:sns/topic:Topic")
    names = sorted(topic.inputs["name"] for topic in topics)
    assert names == sorted(
        f"lf-{hub.stack}-alerts-{kind}" for kind in ("critical", "warning", "info", "email")
    )
    for topic in topics:
        assert topic.inputs["kmsMasterKeyId"] == key_arn
    account = hub.settings.hub.account_id
    for resource, statement in hub.statements("aws:sns/topicPolicy:TopicPolicy"):
        if statement["Effect"] != "Allow":
            continue
        principal = statement["Principal"]
        assert principal != "*" and principal.get("AWS") != "*", resource.name
        if "Service" in principal:
            assert principal["Service"] == ["cloudwatch.amazonaws.com"], resource.name
            assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
        else:
            assert principal == {"AWS": f"arn:aws:iam::{account}:root"}


def test_a_service_may_publish_only_to_the_topics_the_functions_alarms_notify(hub: HubView):
    # GIVEN the topics the functions' alarms notify (the warning topic; the e-mail topic too,
    # for the router's own alarms)
    notified = {
        arn
        for alarm in hub.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        for arn in alarm.inputs["alarmActions"]
    }
    assert len(notified) == 2
    # WHEN the topics' policies are read for what services may publish
    publishers = {
        policy.inputs["arn"]: principal
        for policy, statement in hub.statements("aws:sns/topicPolicy:TopicPolicy")
        if statement["Effect"] == "Allow" and "Service" in (principal := statement["Principal"])
    }
    # THEN CloudWatch may publish to those two only, and no service to the critical and info
    # topics: no EventBridge rule targets a topic, so none may page people with forged alerts
    assert publishers == {arn: {"Service": ["cloudwatch.amazonaws.com"]} for arn in notified}


def test_email_topic_has_one_subscription_per_configured_address(hub: HubView):
    email_topic = hub.one("aws:sns/topic:Topic", name=f"lf-{hub.stack}-alerts-email")
    subscriptions = [
        subscription
        for subscription in hub.of_type("aws:sns/topicSubscription:TopicSubscription")
        if subscription.inputs["protocol"] == "email"
    ]
    assert {s.inputs["topic"] for s in subscriptions} == {hub.arn(email_topic)}
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(hub.settings.alerts.emails)


def test_every_hub_resource_is_created_with_the_hub_provider(hub: HubView):
    # GIVEN the hub component WHEN its descendants are listed
    (component,) = hub.of_type("lambda-fleet:hub:FleetHub")
    resources = [r for r in hub.run.descendants_of(component.urn) if r.custom]
    assert resources
    # THEN every AWS resource is placed in the hub account and region
    for resource in resources:
        assert resource.placement.account_id == hub.settings.hub.account_id, resource.name
        assert resource.placement.region == hub.settings.hub.region, resource.name


def test_destroy_refuses_buckets_that_hold_objects(hub: HubView):
    # GIVEN the data and access-log buckets (README, Teardown: empty them before destroying)
    buckets = hub.of_type(BUCKET)
    assert len(buckets) == 2
    # WHEN their inputs are read THEN neither is created with force_destroy, so S3 refuses to
    # delete a bucket that still holds objects or versions
    for bucket in buckets:
        assert not bucket.inputs.get("forceDestroy"), bucket.inputs["bucket"]


def test_every_key_is_deleted_only_after_a_30_day_waiting_period(stack_run):
    # GIVEN every KMS key the program creates: the fleet key and each created cluster's
    # secrets key (README, Teardown)
    keys = stack_run.of_type("aws:kms/key:Key")
    created_clusters = [
        cluster
        for member in HubView(stack_run).settings.members
        for cluster in member.clusters
        if not cluster.existing
    ]
    assert len(keys) == 1 + len(created_clusters)
    # WHEN a destroy schedules them for deletion THEN each can be restored for 30 days
    for key in keys:
        assert key.inputs["deletionWindowInDays"] == 30, key.inputs["description"]


def test_the_readmes_teardown_names_the_protected_table_by_an_output_the_stack_exports(
    stack_run,
):
    # GIVEN the README's teardown command, which names the state table by a stack output
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    command = re.search(r"--table-name <(\w+) output> --no-deletion-protection-enabled", readme)
    assert command, "the README's teardown no longer turns the state table's protection off"
    # WHEN the stack's outputs are read
    exported = stack_run.stack_outputs.get(command[1])
    # THEN that output is the name of the table created with deletion protection
    table = HubView(stack_run).one("aws:dynamodb/table:Table").inputs
    assert table["deletionProtectionEnabled"] is True
    assert exported == table["name"]
