"""What a member's engineers change while a cleanup run is under way: a run lists every resource
of a target before it acts on any, so a keep tag or a mark changed after the listing, an AMI
registered from a snapshot, a snapshot shared, or an alias moved onto a Lambda version, must
still be honoured by the deletion that follows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.cleanup_manager.cleanup import CleanupServices, state_key
from handlers.cleanup_manager.lambda_marks import read_marks
from tests.handlers.cleanup_manager.conftest import DELETING_POLICY, on_every_session
from tests.handlers.cleanup_manager.support import (
    MARK_TAG,
    actions_of,
    create_lambda_function,
    create_snapshot,
    published_versions,
    register_image_from,
    share_snapshot,
    snapshots_in,
    tags_of,
    volumes_in,
)
from tests.handlers.faults import fail_every_attempt
from tests.handlers.member_accounts import MEMBER_A, REGION, create_volume, member_session
from tests.handlers.member_targets import target_of

Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def marked_and_announced(
    cleaner: Invoke, future_clock: ManualClock, alert_inbox: Any, mocked_aws: None
) -> dict[str, Any]:
    """Member A's stale snapshot and unattached volume, marked and announced by a run a notice
    ago; member A's EC2 client as the engineers use it."""
    ec2 = member_session(MEMBER_A).client("ec2")
    resources = {"ec2": ec2, "snapshot": create_snapshot(ec2), "volume": create_volume(ec2)}
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert actions_of(first)[resources["snapshot"]] == "mark"
    assert actions_of(first)[resources["volume"]] == "mark"
    future_clock.advance(timedelta(days=7).total_seconds())
    return resources


def _once_on(services: CleanupServices, event_name: str, change: Callable[[], None]) -> None:
    """Make `change` the first time member A's Lambda client emits botocore's `event_name`."""
    done: list[bool] = []

    def once(**_: Any) -> None:
        if not done:
            done.append(True)
            change()

    lambda_client = services.member_client("lambda", MEMBER_A, REGION)
    lambda_client.meta.events.register(event_name, once)


def once_the_target_is_listed(services: CleanupServices, change: Callable[[], None]) -> None:
    """Make `change` once member A's target is listed (its Lambda functions are listed last),
    before the run acts on any of its resources."""
    _once_on(services, "after-call.lambda.ListFunctions", change)


def test_a_resource_tagged_keep_after_the_listing_is_spared_not_deleted(
    cleaner: Invoke,
    marked_and_announced: dict[str, Any],
    built_services: list[CleanupServices],
) -> None:
    # GIVEN member A's snapshot and volume whose deletion was announced a notice ago
    ec2 = marked_and_announced["ec2"]
    snapshot, volume = marked_and_announced["snapshot"], marked_and_announced["volume"]

    # AND an engineer tagging both keep=true while the run that deletes them is under way,
    # after it listed them
    def keep_both() -> None:
        ec2.create_tags(Resources=[snapshot, volume], Tags=[{"Key": "keep", "Value": "true"}])

    once_the_target_is_listed(built_services[0], keep_both)
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN neither is deleted: both are spared, their marks lifted, and neither is counted as a
    # candidate (the snapshot's throw-away source volume alone is)
    assert snapshot in snapshots_in(ec2)
    assert volume in volumes_in(ec2)
    assert actions_of(target)[snapshot] == "spare"
    assert actions_of(target)[volume] == "spare"
    assert MARK_TAG not in tags_of(ec2, snapshot)
    assert MARK_TAG not in tags_of(ec2, volume)
    assert (target["candidates"], target["deleted"]) == (1, 1)


def test_a_resource_whose_mark_was_lifted_after_the_listing_is_marked_afresh_not_deleted(
    cleaner: Invoke,
    marked_and_announced: dict[str, Any],
    built_services: list[CleanupServices],
    future_clock: ManualClock,
) -> None:
    # GIVEN member A's snapshot whose deletion was announced a notice ago
    ec2, snapshot = marked_and_announced["ec2"], marked_and_announced["snapshot"]

    # AND an engineer removing its mark while the run that deletes it is under way, after it
    # listed it
    def lift_the_mark() -> None:
        ec2.delete_tags(Resources=[snapshot], Tags=[{"Key": MARK_TAG}])

    once_the_target_is_listed(built_services[0], lift_the_mark)
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN it is not deleted but marked afresh, a whole notice from today
    assert snapshot in snapshots_in(ec2)
    assert actions_of(target)[snapshot] == "mark"
    delete_after = (future_clock.now().date() + timedelta(days=7)).isoformat()
    assert tags_of(ec2, snapshot)[MARK_TAG] == delete_after


def test_a_resource_deleted_by_someone_after_the_listing_is_neither_deleted_nor_failed(
    cleaner: Invoke,
    marked_and_announced: dict[str, Any],
    built_services: list[CleanupServices],
) -> None:
    # GIVEN member A's snapshot whose deletion was announced a notice ago
    ec2, snapshot = marked_and_announced["ec2"], marked_and_announced["snapshot"]
    # AND an engineer deleting it while the run is under way, after it listed it
    once_the_target_is_listed(built_services[0], lambda: ec2.delete_snapshot(SnapshotId=snapshot))
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the run neither claims its deletion nor reports a failure for it, nor counts it
    assert snapshot not in actions_of(target)
    assert target["candidates"] == target["deleted"]
    assert target["failed"] == 0, target.get("errors")


@pytest.mark.usefixtures("no_retry_waits")
def test_a_resource_that_cannot_be_described_again_before_its_deletion_is_not_deleted(
    cleaner: Invoke,
    marked_and_announced: dict[str, Any],
    built_services: list[CleanupServices],
) -> None:
    # GIVEN member A's snapshot whose deletion was announced a notice ago
    ec2, snapshot = marked_and_announced["ec2"], marked_and_announced["snapshot"]
    # AND member A's EC2 failing every DescribeSnapshots naming it once the listing is done
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    fail_every_attempt(member_ec2, "ec2", "DescribeSnapshots", body_with=(snapshot.encode(),))
    # WHEN the run after the notice acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the snapshot is not deleted, and is reported as failed
    assert snapshot in snapshots_in(ec2)
    assert snapshot not in actions_of(target)
    assert snapshot in {entry["id"] for entry in target["errors"]}


@pytest.mark.parametrize("how", ["shared", "public"])
def test_a_snapshot_shared_after_the_listing_is_spared_not_deleted(
    cleaner: Invoke,
    marked_and_announced: dict[str, Any],
    built_services: list[CleanupServices],
    how: str,
) -> None:
    # GIVEN member A's snapshot whose deletion was announced a notice ago
    ec2, snapshot = marked_and_announced["ec2"], marked_and_announced["snapshot"]
    # AND an engineer sharing it with another account, or making it public, while the run that
    # deletes it is under way, after it listed it
    once_the_target_is_listed(built_services[0], lambda: share_snapshot(ec2, snapshot, how))
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN it is not deleted: it is spared, its mark lifted, and counted as kept for its sharing
    assert snapshot in snapshots_in(ec2)
    assert actions_of(target)[snapshot] == "spare"
    assert MARK_TAG not in tags_of(ec2, snapshot)
    assert target["kept"] == {how: 1}


@pytest.mark.parametrize("device", ["root", "data"])
def test_a_snapshot_an_ami_was_registered_from_after_the_listing_is_spared_not_deleted(
    cleaner: Invoke,
    marked_and_announced: dict[str, Any],
    built_services: list[CleanupServices],
    device: str,
) -> None:
    # GIVEN member A's snapshot whose deletion was announced a notice ago
    ec2, snapshot = marked_and_announced["ec2"], marked_and_announced["snapshot"]

    # AND an engineer registering an AMI from it, as its root device or as a data volume (whose
    # snapshot EC2 itself would let be deleted), while the run that deletes it is under way,
    # after it listed it
    def register() -> None:
        if device == "root":
            register_image_from(ec2, snapshot)
        else:
            register_image_from(ec2, create_snapshot(ec2), snapshot)

    once_the_target_is_listed(built_services[0], register)
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN it is neither deleted nor failed: it is spared, its mark lifted
    assert snapshot in snapshots_in(ec2)
    assert actions_of(target)[snapshot] == "spare"
    assert MARK_TAG not in tags_of(ec2, snapshot)
    assert target["failed"] == 0, target.get("errors")


def once_the_aliases_are_listed(services: CleanupServices, change: Callable[[], None]) -> None:
    """Make `change` once the run has listed the aliases of member A's first function, before
    it acts on any of its versions."""
    _once_on(services, "after-call.lambda.ListAliases", change)


@pytest.fixture
def aliases_listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The function of every ListAliases the cleanup sends, in order."""
    listed: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        listed.append(params["FunctionName"])

    on_every_session(monkeypatch, "before-parameter-build.lambda.ListAliases", record)
    return listed


@pytest.mark.parametrize(
    "routing",
    [
        pytest.param({"FunctionVersion": "1"}, id="alias-moved-onto-it"),
        pytest.param(
            {"RoutingConfig": {"AdditionalVersionWeights": {"1": 0.1}}},
            id="alias-weighting-it",
        ),
    ],
)
def test_a_version_an_alias_came_to_use_after_the_listing_is_spared_not_deleted(
    cleaner: Invoke,
    future_clock: ManualClock,
    built_services: list[CleanupServices],
    aliases_listed: list[str],
    routing: dict[str, Any],
) -> None:
    # GIVEN function `orders` in member A with 6 published versions, alias `live` on the newest,
    # whose versions 1 to 3 were marked and announced by a run a notice ago
    client = create_lambda_function(member_session(MEMBER_A), "orders", versions=6)
    client.create_alias(FunctionName="orders", Name="live", FunctionVersion="6")
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert [actions_of(first)[f"orders:{n}"] for n in (1, 2, 3)] == ["mark"] * 3
    future_clock.advance(timedelta(days=7).total_seconds())
    # AND an engineer pointing the alias at version 1, or weighting version 1 into its traffic,
    # once the run that deletes them has listed the aliases
    once_the_aliases_are_listed(
        built_services[0],
        lambda: client.update_alias(FunctionName="orders", Name="live", **routing),
    )
    del aliases_listed[:]
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN version 1 is spared (its mark dropped), and versions 2 and 3 are deleted
    assert [actions_of(target)[f"orders:{n}"] for n in (1, 2, 3)] == ["spare", "delete", "delete"]
    assert published_versions(client, "orders") == {"1", "4", "5", "6"}
    assert "orders:1" not in read_marks(built_services[0].state, state_key(MEMBER_A, REGION)).marks
    # AND the aliases were listed again once, just before the deletions, not per version
    assert aliases_listed == ["orders", "orders"]


@pytest.mark.usefixtures("no_retry_waits")
def test_a_version_whose_aliases_cannot_be_listed_again_is_not_deleted_and_keeps_its_mark(
    cleaner: Invoke,
    future_clock: ManualClock,
    built_services: list[CleanupServices],
) -> None:
    # GIVEN functions `orders` and `billing` in member A with 4 published versions each, whose
    # version 1 was marked and announced by a run a notice ago
    session = member_session(MEMBER_A)
    orders = create_lambda_function(session, "orders", versions=4)
    billing = create_lambda_function(session, "billing", versions=4)
    cleaner({"action": "cleanup"})
    future_clock.advance(timedelta(days=7).total_seconds())
    mark = read_marks(built_services[0].state, state_key(MEMBER_A, REGION)).marks["orders:1"]
    # AND member A's Lambda failing every ListAliases of `orders` after the listing's
    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    fault = fail_every_attempt(
        member_lambda, "lambda", "ListAliases", after=1, url_with="/functions/orders/"
    )
    # WHEN the run after the notice acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN that version is not deleted, keeps its mark, and is reported
    assert fault.attempts > 0
    assert "1" in published_versions(orders, "orders")
    assert "orders:1" not in actions_of(target)
    assert "orders:1" in {entry["id"] for entry in target["errors"]}
    marks = read_marks(built_services[0].state, state_key(MEMBER_A, REGION)).marks
    assert marks["orders:1"] == mark
    # AND the other function's old version is deleted all the same
    assert actions_of(target)["billing:1"] == "delete"
    assert "1" not in published_versions(billing, "billing")


def before_the_aliases_are_sent(services: CleanupServices, change: Callable[[], None]) -> None:
    """Make `change` as the run's first ListAliases of member A is about to be sent (botocore's
    `before-send`): the listing of the function has read its tags, and acts on none of its
    versions before it reads them again."""
    _once_on(services, "before-send.lambda.ListAliases", change)


@pytest.mark.parametrize(
    ("require_tags", "change", "reason"),
    [
        pytest.param(
            {},
            lambda client, arn: client.tag_resource(Resource=arn, Tags={"Keep": "true"}),
            "tagged keep=true",
            id="tagged-keep",
        ),
        pytest.param(
            {"cleanup": "allowed"},
            lambda client, arn: client.untag_resource(Resource=arn, TagKeys=["cleanup"]),
            "not tagged cleanup=allowed",
            id="filter-tag-taken-off",
        ),
    ],
)
def test_a_function_whose_tags_changed_after_the_listing_keeps_its_due_versions(  # noqa: PLR0917
    cleaner: Invoke,
    future_clock: ManualClock,
    built_services: list[CleanupServices],
    cleanup_policy: Callable[[dict[str, Any]], None],
    require_tags: dict[str, str],
    change: Callable[[Any, str], None],
    reason: str,
) -> None:
    # GIVEN function `orders` in member A with 5 published versions, carrying the policy's
    # filter tags, whose versions 1 and 2 were marked and announced by a run a notice ago
    cleanup_policy({**DELETING_POLICY, "require_tags": require_tags})
    client = create_lambda_function(member_session(MEMBER_A), "orders", 5, cleanup="allowed")
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert [actions_of(first)[f"orders:{n}"] for n in (1, 2)] == ["mark"] * 2
    future_clock.advance(timedelta(days=7).total_seconds())
    # AND its owner tagging it keep, or taking the filter's tag off, once the run that deletes
    # the versions has read its tags
    arn = client.get_function(FunctionName="orders")["Configuration"]["FunctionArn"]
    before_the_aliases_are_sent(built_services[0], lambda: change(client, arn))
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN neither version is deleted: both are spared for the reason the tags give now, and
    # their marks dropped
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5"}
    assert [actions_of(target)[f"orders:{n}"] for n in (1, 2)] == ["spare"] * 2
    reasons = {entry["id"]: entry["reason"] for entry in target["actions"]}
    assert reasons["orders:1"] == reasons["orders:2"] == reason
    marks = read_marks(built_services[0].state, state_key(MEMBER_A, REGION)).marks
    assert not {"orders:1", "orders:2"} & set(marks)
    assert target["failed"] == 0, target.get("errors")


def _calls_sent(services: CleanupServices, service: str, operation: str) -> list[str]:
    """The `operation` calls member A's `service` client sends from now on (one entry each)."""
    sent: list[str] = []
    client = services.member_client(service, MEMBER_A, REGION)
    client.meta.events.register(
        f"before-call.{service}.{operation}", lambda **_: sent.append(operation)
    )
    return sent


def test_a_snapshot_a_launch_came_to_name_after_the_listing_is_spared_not_deleted(
    cleaner: Invoke, future_clock: ManualClock, built_services: list[CleanupServices]
) -> None:
    # GIVEN member A's two stale snapshots, marked and announced by a run a notice ago
    session = member_session(MEMBER_A)
    ec2 = session.client("ec2")
    in_template, in_configuration = create_snapshot(ec2), create_snapshot(ec2)
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert (actions_of(first)[in_template], actions_of(first)[in_configuration]) == ("mark",) * 2
    future_clock.advance(timedelta(days=7).total_seconds())
    templates_read = _calls_sent(built_services[0], "ec2", "DescribeLaunchTemplates")
    configurations_read = _calls_sent(
        built_services[0], "autoscaling", "DescribeLaunchConfigurations"
    )

    # AND an engineer naming the first in a new launch template and the second in a new launch
    # configuration while the run that deletes them is under way, after it listed them
    def name_both() -> None:
        ec2.create_launch_template(
            LaunchTemplateName="workers",
            LaunchTemplateData={
                "BlockDeviceMappings": [
                    {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": in_template}}
                ]
            },
        )
        session.client("autoscaling").create_launch_configuration(
            LaunchConfigurationName="legacy-workers",
            ImageId="ami-12c6146b",
            InstanceType="m5.large",
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": in_configuration}}
            ],
        )

    once_the_target_is_listed(built_services[0], name_both)
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN neither is deleted: both are spared for the launch naming them, their marks lifted
    assert {in_template, in_configuration} <= snapshots_in(ec2)
    reasons = {entry["id"]: (entry["action"], entry["reason"]) for entry in target["actions"]}
    assert reasons[in_configuration] == ("spare", "used by launch configuration 'legacy-workers'")
    assert reasons[in_template][0] == "spare"
    assert reasons[in_template][1].startswith("used by launch template lt-")
    assert MARK_TAG not in tags_of(ec2, in_template)
    assert MARK_TAG not in tags_of(ec2, in_configuration)
    # AND the launches were read again once, just before the deletions, not per snapshot
    assert (len(templates_read), len(configurations_read)) == (2, 2)


def test_a_version_provisioned_or_mapped_after_the_listing_is_spared_not_deleted(
    cleaner: Invoke,
    future_clock: ManualClock,
    built_services: list[CleanupServices],
    provisioned_concurrency: dict[str, list[str]],
) -> None:
    # GIVEN function `orders` in member A with 6 published versions, whose versions 1 to 3 were
    # marked and announced by a run a notice ago
    session = member_session(MEMBER_A)
    client = create_lambda_function(session, "orders", versions=6)
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert [actions_of(first)[f"orders:{n}"] for n in (1, 2, 3)] == ["mark"] * 3
    future_clock.advance(timedelta(days=7).total_seconds())
    sqs = session.client("sqs")
    queue = sqs.create_queue(QueueName="orders-in")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    mappings_read = _calls_sent(built_services[0], "lambda", "ListEventSourceMappings")

    # AND an engineer configuring provisioned concurrency on version 1 and an SQS event source
    # mapping on version 2 once the run that deletes them has listed the function (moto maps
    # only unqualified functions: its answer is qualified with version 2 on the way back)
    def on_version_2(parsed: dict[str, Any], **_: Any) -> None:
        for mapping in parsed.get("EventSourceMappings", []):
            mapping["FunctionArn"] = f"{mapping['FunctionArn']}:2"

    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    member_lambda.meta.events.register("after-call.lambda.ListEventSourceMappings", on_version_2)

    def provision_and_map() -> None:
        provisioned_concurrency["orders"] = ["1"]
        client.create_event_source_mapping(
            EventSourceArn=queue_arn["Attributes"]["QueueArn"], FunctionName="orders"
        )

    _once_on(
        built_services[0], "after-call.lambda.ListProvisionedConcurrencyConfigs", provision_and_map
    )
    # WHEN that run acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN versions 1 and 2 are spared, saying why, their marks dropped; version 3 is deleted
    reasons = {entry["id"]: (entry["action"], entry["reason"]) for entry in target["actions"]}
    assert reasons["orders:1"] == ("spare", "holds provisioned concurrency")
    assert reasons["orders:2"] == ("spare", "invoked by an event source mapping")
    assert reasons["orders:3"][0] == "delete"
    assert published_versions(client, "orders") == {"1", "2", "4", "5", "6"}
    marks = read_marks(built_services[0].state, state_key(MEMBER_A, REGION)).marks
    assert not {"orders:1", "orders:2"} & set(marks)
    # AND the mappings were listed again once, just before the deletions, not per version
    assert len(mappings_read) == 2


@pytest.mark.usefixtures("no_retry_waits")
def test_snapshots_whose_launches_cannot_be_read_again_are_not_deleted_and_keep_their_marks(
    cleaner: Invoke, future_clock: ManualClock, built_services: list[CleanupServices]
) -> None:
    # GIVEN member A's two stale snapshots, marked and announced by a run a notice ago
    ec2 = member_session(MEMBER_A).client("ec2")
    snapshots = {create_snapshot(ec2), create_snapshot(ec2)}
    cleaner({"action": "cleanup"})
    future_clock.advance(timedelta(days=7).total_seconds())
    # AND member A's Auto Scaling failing every DescribeLaunchConfigurations after the listing's
    member_autoscaling = built_services[0].member_client("autoscaling", MEMBER_A, REGION)
    fault = fail_every_attempt(
        member_autoscaling, "autoscaling", "DescribeLaunchConfigurations", after=1
    )
    # WHEN the run after the notice acts
    target = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN neither is deleted: both keep their marks and are listed under errors
    assert snapshots <= snapshots_in(ec2)
    assert all(MARK_TAG in tags_of(ec2, snapshot) for snapshot in snapshots)
    assert snapshots <= {entry["id"] for entry in target["errors"]}
    assert not snapshots & set(actions_of(target))
    # AND the failing read was one call's attempts, made once for both, not per snapshot
    assert fault.attempts == 6, fault.attempts
