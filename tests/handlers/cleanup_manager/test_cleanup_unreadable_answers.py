"""A member answer that is not its call's (HTTP 200 with a proxy's page, which EC2's XML parser
cannot read) fails its kind of resource, or its resource, alone: the run goes on with the
others."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from handlers.cleanup_manager.cleanup import CleanupServices, state_key
from handlers.cleanup_manager.lambda_marks import read_marks
from tests.handlers.cleanup_manager.support import (
    MARK_TAG,
    actions_of,
    create_lambda_function,
    create_snapshot,
    published_versions,
    tags_of,
    unlisted_kinds,
)
from tests.handlers.faults import answer_malformed
from tests.handlers.member_accounts import (
    MEMBER_A,
    MEMBER_B,
    REGION,
    create_volume,
    member_session,
)
from tests.handlers.member_targets import target_of

Invoke = Callable[..., dict[str, Any]]

PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000
"""A proxy's page that is not well-formed XML, longer than any result may repeat."""

SNAPSHOTS_WITH_A_BAD_DATE = (
    b'<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><snapshotSet>'
    b"<item><snapshotId>snap-1</snapshotId><startTime>last week</startTime></item>"
    b"</snapshotSet></DescribeSnapshotsResponse>"
)
"""EC2's DescribeSnapshots answer whose one snapshot's startTime is no timestamp: botocore's
parser raises a bare ValueError on it."""

SNAPSHOTS_WITHOUT_A_START_TIME = (
    b'<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><snapshotSet>'
    b"<item><snapshotId>snap-1</snapshotId><status>completed</status></item>"
    b"</snapshotSet></DescribeSnapshotsResponse>"
)
"""EC2's DescribeSnapshots answer whose one snapshot has no startTime (EC2 sends it with every
snapshot): its age cannot be told."""

SNAPSHOTS_WITH_A_TIME_WITHOUT_ZONE = (
    b'<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><snapshotSet>'
    b"<item><snapshotId>snap-1</snapshotId><startTime>2020-01-01T00:00:00</startTime>"
    b"<status>completed</status></item></snapshotSet></DescribeSnapshotsResponse>"
)
"""EC2's DescribeSnapshots answer whose one snapshot's startTime has no zone (EC2 writes UTC
with its `Z`): botocore parses it into a naive datetime, which no age can be taken from."""

VOLUMES_WITHOUT_A_STATE = (
    b'<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><volumeSet>'
    b"<item><volumeId>vol-1</volumeId><createTime>2020-01-01T00:00:00.000Z</createTime></item>"
    b"</volumeSet></DescribeVolumesResponse>"
)
"""EC2's DescribeVolumes answer whose one volume has no status (EC2 sends it with every
volume): whether it is attached cannot be told."""


def an_amis_snapshot(ec2: Any) -> str:
    """The snapshot of a new AMI of the member, old enough to be a candidate were it not used by
    the AMI."""
    instance_id = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    image_id = ec2.create_image(InstanceId=instance_id, Name="golden")["ImageId"]
    [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
    return str(image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


@pytest.mark.parametrize(
    ("member_a_snapshot", "listing", "page_body", "error_says"),
    [
        pytest.param(
            create_snapshot,
            "DescribeSnapshots",
            PROXY_PAGE,
            "Unable to parse response",
            id="snapshots-unparsable",
        ),
        pytest.param(
            an_amis_snapshot,
            "DescribeImages",
            b"<html>gateway</html>",
            "DescribeImages answered without Images",
            id="images-without-images",
        ),
        pytest.param(
            create_snapshot,
            "DescribeSnapshots",
            SNAPSHOTS_WITH_A_BAD_DATE,
            "DescribeSnapshots answered a value botocore cannot read: ValueError: Invalid",
            id="snapshots-with-a-timestamp-botocore-cannot-parse",
        ),
        pytest.param(
            create_snapshot,
            "DescribeSnapshots",
            SNAPSHOTS_WITHOUT_A_START_TIME,
            "DescribeSnapshots answered without StartTime",
            id="a-snapshot-without-its-start-time",
        ),
        pytest.param(
            create_snapshot,
            "DescribeSnapshots",
            SNAPSHOTS_WITH_A_TIME_WITHOUT_ZONE,
            "DescribeSnapshots answered without a StartTime with its zone",
            id="a-snapshot-start-time-without-zone",
        ),
        pytest.param(
            create_volume,
            "DescribeVolumes",
            VOLUMES_WITHOUT_A_STATE,
            "DescribeVolumes answered without State",
            id="a-volume-without-its-state",
        ),
    ],
)
def test_a_member_whose_listing_is_a_proxy_page_fails_alone_and_the_others_are_cleaned(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    *,
    member_a_snapshot: Callable[[Any], str],
    listing: str,
    page_body: bytes,
    error_says: str,
) -> None:
    # GIVEN member A with a snapshot (a stale one, or one an AMI uses, a candidate were it not),
    # member B with a stale snapshot, and member A's EC2 answering `listing` with a proxy's page
    # (HTTP 200): one it cannot parse, or one botocore parses into an answer without any item;
    # or with the listing's own answer holding a timestamp botocore cannot parse, an item
    # without its time or state, or a time without its zone
    ec2_a = member_session(MEMBER_A).client("ec2")
    ec2_b = member_session(MEMBER_B).client("ec2")
    snapshot_a, stale_b = member_a_snapshot(ec2_a), create_snapshot(ec2_b)
    cleaner({"action": "cleanup", "dry_run": True})
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    page = answer_malformed(member_ec2, "ec2", listing, page_body)
    # WHEN the schedule runs
    result = cleaner({"action": "cleanup"})
    # THEN member A's kind of that listing failed alone, saying what was wrong with its answer
    # in a short line, its snapshot unmarked; member B's stale snapshot is marked
    assert page.answered >= 1
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    [(kind, error)] = unlisted_kinds(target_a).items()
    assert kind == ("volumes" if listing == "DescribeVolumes" else "snapshots")
    assert error_says in error
    assert len(error) <= 200
    assert MARK_TAG not in tags_of(ec2_a, snapshot_a)
    assert actions_of(target_of(result, MEMBER_B))[stale_b] == "mark"
    assert MARK_TAG in tags_of(ec2_b, stale_b)
    assert result["status"] == "partial"


def test_a_mark_answered_with_a_proxy_page_fails_that_resource_alone(
    cleaner: Invoke, built_services: list[CleanupServices]
) -> None:
    # GIVEN member A with two stale snapshots, its EC2 answering the CreateTags of the first
    # with a proxy's page (HTTP 200)
    ec2_a = member_session(MEMBER_A).client("ec2")
    first, second = create_snapshot(ec2_a), create_snapshot(ec2_a)
    cleaner({"action": "cleanup", "dry_run": True})
    member_ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    page = answer_malformed(member_ec2, "ec2", "CreateTags", PROXY_PAGE, body_with=first.encode())
    # WHEN the schedule runs
    target_a = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN the first snapshot is an error in a short line, and the second is marked
    assert page.answered >= 1
    assert target_a["status"] == "partial"
    [error] = [entry for entry in target_a["errors"] if entry["id"] == first]
    assert "Unable to parse response" in error["error"]
    assert len(error["error"]) <= 200
    assert first not in actions_of(target_a)
    assert actions_of(target_a)[second] == "mark"
    assert MARK_TAG in tags_of(ec2_a, second)


@pytest.mark.parametrize(
    ("aliases", "shown"),
    [
        pytest.param([None], "None", id="a-null-alias"),
        pytest.param([{"Name": "stable", "FunctionVersion": 2}], "2", id="a-version-number"),
    ],
)
def test_a_function_whose_aliases_lambda_would_not_send_fails_alone_unmarked(
    cleaner: Invoke, built_services: list[CleanupServices], aliases: list[object], shown: str
) -> None:
    # GIVEN member A's functions orders and billing, 6 published versions each, a stale snapshot,
    # and Lambda answering ListAliases of orders with JSON botocore hands on unchecked: a null
    # alias, or an alias of version 2 given as a number, not as Lambda's text "2"
    session = member_session(MEMBER_A)
    client = create_lambda_function(session, "orders", versions=6)
    create_lambda_function(session, "billing", versions=6)
    stale = create_snapshot(session.client("ec2"))
    cleaner({"action": "cleanup", "dry_run": True})
    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    answer = answer_malformed(
        member_lambda,
        "lambda",
        "ListAliases",
        json.dumps({"Aliases": aliases}).encode(),
        url_part="/functions/orders/",
        content_type="application/json",
    )
    # WHEN the schedule runs
    target_a = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN orders is the target's error naming the call and showing the value, none of its
    # versions marked (the one a version number hid from the alias check among them), instead
    # of a bare TypeError ending the run or version 2 marked; billing and the snapshot are marked
    assert answer.answered >= 1
    assert target_a["status"] == "partial"
    assert target_a["errors"] == [
        {
            "kind": "lambda_function",
            "id": "orders",
            "error": "ListAliases of orders answered without a text FunctionVersion in each "
            f"item, not its answer: {shown}",
        }
    ]
    actions = actions_of(target_a)
    assert not [identifier for identifier in actions if identifier.startswith("orders:")]
    assert {
        identifier: action for identifier, action in actions.items() if "billing" in identifier
    } == {
        "billing:1": "mark",
        "billing:2": "mark",
        "billing:3": "mark",
    }
    assert actions[stale] == "mark"
    assert published_versions(client, "orders") == {"1", "2", "3", "4", "5", "6"}


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        pytest.param(b"{}", "Tags, not its answer: {}", id="no-tags"),
        pytest.param(
            b'{"Tags": {"cleanup": 1}}',
            "Tags, a map of texts, not its answer: {'cleanup': 1}",
            id="a-number-for-a-tag",
        ),
    ],
)
def test_a_function_whose_tags_are_answered_without_them_fails_alone_its_marks_kept(
    cleaner: Invoke,
    built_services: list[CleanupServices],
    cleanup_policy: Callable[[dict[str, Any]], None],
    body: bytes,
    missing: str,
) -> None:
    # GIVEN a policy requiring cleanup=allowed, member A's function orders tagged so, with 6
    # published versions whose 3 oldest a run marked, and Lambda then answering its ListTags
    # with JSON holding no Tags (an empty answer of a proxy or a gateway), or a tag's value as a
    # number, which botocore hands on unchecked
    cleanup_policy({"require_tags": {"cleanup": "allowed"}})
    create_lambda_function(member_session(MEMBER_A), "orders", versions=6, cleanup="allowed")
    first = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    assert actions_of(first)["orders:1"] == "mark"
    state, key = built_services[0].state, state_key(MEMBER_A, REGION)
    marked = read_marks(state, key).marks
    member_lambda = built_services[0].member_client("lambda", MEMBER_A, REGION)
    answer = answer_malformed(
        member_lambda, "lambda", "ListTags", body, content_type="application/json"
    )
    # WHEN the schedule runs again
    second = target_of(cleaner({"action": "cleanup"}), MEMBER_A)
    # THEN orders is the target's error naming the call, its versions neither spared nor marked
    # afresh: their marks stand as they were
    assert answer.answered >= 1
    assert second["errors"] == [
        {
            "kind": "lambda_function",
            "id": "orders",
            "error": f"ListTags of orders answered without {missing}",
        }
    ]
    assert not [identifier for identifier in actions_of(second) if identifier.startswith("orders")]
    assert read_marks(state, key).marks == marked
