"""A member answer that is not its call's (HTTP 200 with a proxy's page, a page token answered
again) fails its resource or step alone, and a create the member took but answered so still
counts its copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.backup_scheduler.backup import BackupServices
from tests.handlers.faults import answer_malformed, answer_the_same_page_token
from tests.handlers.member_accounts import (
    MEMBER_A,
    MEMBER_B,
    REGION,
    create_volume,
    member_session,
)
from tests.handlers.member_targets import target_of

Invoke = Callable[..., dict[str, Any]]

PROXY_PAGE = b"<html>gateway</html>"
"""A page botocore parses without complaint into an answer without any of the call's fields."""
BROKEN_PROXY_PAGE = b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000
"""A page that is not well-formed XML (EC2's parser raises ResponseParserError), longer than
any result may repeat."""
VOLUMES_WITH_A_BAD_DATE = (
    b'<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><volumeSet>'
    b"<item><volumeId>vol-1</volumeId><createTime>yesterday</createTime></item></volumeSet>"
    b"</DescribeVolumesResponse>"
)
"""EC2's DescribeVolumes answer whose one volume's createTime is no timestamp: botocore's
parser raises a bare ValueError on it."""
REPEATED_BACKUP_ARN = (
    f"arn:aws:dynamodb:{REGION}:{MEMBER_A}:table/orders/backup/01700000000000-abcdef12"
)
"""A LastEvaluatedBackupArn botocore lets through as the next ExclusiveStartBackupArn (the field
takes 37 to 1,024 characters)."""


@pytest.fixture
def members(mocked_aws: None) -> dict[str, Any]:
    """Member A with a daily volume and a daily table `orders` (`table_a`), member B with a daily
    volume."""
    session_a = member_session(MEMBER_A)
    dynamodb_a = session_a.client("dynamodb")
    dynamodb_a.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "backup", "Value": "daily"}],
    )
    ec2_a, ec2_b = session_a.client("ec2"), member_session(MEMBER_B).client("ec2")
    return {
        "ec2_a": ec2_a,
        "dynamodb_a": dynamodb_a,
        "ec2_b": ec2_b,
        "table_a": "orders",
        "volume_a": create_volume(ec2_a, backup="daily"),
        "volume_b": create_volume(ec2_b, backup="daily"),
    }


def member_a_client(backup: Invoke, built_services: list[BackupServices], service: str) -> Any:
    """Member A's `service` client of the handler, built by a dry run."""
    backup({"action": "backup", "dry_run": True})
    return built_services[0].member_client(service, MEMBER_A, REGION)


def copied_sources(target: dict[str, Any]) -> dict[str, str | None]:
    """Source -> the id of its copy, in a target's result."""
    return {copy["source"]: copy.get("id") for copy in target["copies"]}


def snapshot_ids(ec2: Any, volume_id: str) -> list[str]:
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    return [item["SnapshotId"] for item in snapshots if item["VolumeId"] == volume_id]


@pytest.mark.parametrize(
    ("service", "operation", "page_body", "failed", "error_says", "copied_in_a"),
    [
        pytest.param(
            "dynamodb",
            "DescribeTable",
            PROXY_PAGE,
            "orders",
            "DescribeTable of orders answered without Table",
            "volume_a",
            id="a-table-described-with-a-proxy-page",
        ),
        pytest.param(
            "ec2",
            "DescribeVolumes",
            BROKEN_PROXY_PAGE,
            "ec2:DescribeVolumes",
            "Unable to parse response",
            "table_a",
            id="volumes-listed-with-an-unparsable-page",
        ),
        pytest.param(
            "dynamodb",
            "DescribeTable",
            b'{"Table": {"TableName": "orders", "CreationDateTime": "not-a-date"}}',
            "orders",
            "DescribeTable answered a value botocore cannot read: ValueError: Invalid timestamp",
            "volume_a",
            id="a-table-described-with-a-timestamp-botocore-cannot-parse",
        ),
        pytest.param(
            "dynamodb",
            "ListTagsOfResource",
            b'{"Tags": [{"Key": "backup", "Value": 7}]}',
            "orders",
            "ListTagsOfResource of orders answered without a text Key and Value in each of Tags",
            "volume_a",
            id="a-tables-tag-value-that-is-no-text",
        ),
        pytest.param(
            "dynamodb",
            "ListTagsOfResource",
            b'{"Tags": [null]}',
            "orders",
            "ListTagsOfResource of orders answered without a text Key and Value in each of Tags",
            "volume_a",
            id="a-null-among-a-tables-tags",
        ),
        pytest.param(
            "ec2",
            "DescribeVolumes",
            VOLUMES_WITH_A_BAD_DATE,
            "ec2:DescribeVolumes",
            "DescribeVolumes answered a value botocore cannot read: ValueError: Invalid timestamp",
            "table_a",
            id="volumes-listed-with-a-timestamp-botocore-cannot-parse",
        ),
    ],
)
def test_a_resource_or_step_answered_with_a_proxy_page_fails_alone_and_the_rest_is_copied(
    backup: Invoke,
    members: dict[str, Any],
    built_services: list[BackupServices],
    *,
    service: str,
    operation: str,
    page_body: bytes,
    failed: str,
    error_says: str,
    copied_in_a: str,
) -> None:
    # GIVEN member A answering `operation` with a proxy's page: one botocore parses into an
    # answer without the call's fields, or one that is not XML; or with the call's own answer
    # holding a timestamp botocore cannot parse, or JSON values it hands on unchecked (a tag
    # value that is a number, a null tag)
    member_client = member_a_client(backup, built_services, service)
    page = answer_malformed(member_client, service, operation, page_body)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN that table, or member A's volume step, is an error in a short line saying what was
    # wrong with the answer; member A's other resource and member B's volume are copied
    assert page.answered >= 1
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    [error] = target_a["errors"]
    assert error["resource"] == failed
    assert error_says in error["error"]
    assert len(error["error"]) <= 200
    assert list(copied_sources(target_a)) == [members[copied_in_a]]
    assert list(copied_sources(target_of(result, MEMBER_B))) == [members["volume_b"]]


def volume_a_snapshots(members: dict[str, Any]) -> list[str]:
    """The ids of member A's volume's snapshots."""
    return snapshot_ids(members["ec2_a"], members["volume_a"])


def orders_backups(members: dict[str, Any]) -> list[str]:
    """The ARNs of member A's table `orders`' backups."""
    listed = members["dynamodb_a"].list_backups(TableName="orders")["BackupSummaries"]
    return [backup["BackupArn"] for backup in listed]


@pytest.mark.parametrize(
    ("service", "create", "source", "copies_made"),
    [
        pytest.param("ec2", "CreateSnapshot", "volume_a", volume_a_snapshots, id="snapshot"),
        pytest.param("dynamodb", "CreateBackup", "table_a", orders_backups, id="dynamodb-backup"),
    ],
)
def test_a_copy_the_member_made_but_answered_with_a_proxy_page_is_the_sources_copy(
    backup: Invoke,
    members: dict[str, Any],
    built_services: list[BackupServices],
    *,
    service: str,
    create: str,
    source: str,
    copies_made: Callable[[dict[str, Any]], list[str]],
) -> None:
    # GIVEN member A making the copy `create` asks for (a snapshot of its volume, a backup of
    # `orders`) but answering it with a proxy's page
    member_client = member_a_client(backup, built_services, service)
    page = answer_malformed(member_client, service, create, PROXY_PAGE)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the copy the member made is reported as the source's copy, and nothing failed
    assert page.answered == 1
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "ok"
    made = copies_made(members)
    assert len(made) == 1
    assert copied_sources(target_a)[members[source]] == made[0]


@pytest.mark.parametrize(
    ("service", "operation", "page_body", "failed", "error_says", "copies_made"),
    [
        pytest.param(
            "ec2",
            "DescribeVolumes",
            PROXY_PAGE,
            "ec2:DescribeVolumes",
            "answered without Volumes",
            volume_a_snapshots,
            id="volumes-listed-without-volumes",
        ),
        pytest.param(
            "dynamodb",
            "ListTagsOfResource",
            b"{}",
            "orders",
            "ListTagsOfResource answered without Tags",
            orders_backups,
            id="table-tags-answered-without-tags",
        ),
    ],
)
def test_sources_read_from_a_proxy_page_do_not_pass_for_untagged_and_keep_their_last_copy(
    backup: Invoke,
    members: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
    *,
    service: str,
    operation: str,
    page_body: bytes,
    failed: str,
    error_says: str,
    copies_made: Callable[[dict[str, Any]], list[str]],
) -> None:
    # GIVEN the first day's copy of member A's daily volume, or daily table `orders`
    backup({"action": "backup"})
    [first_copy] = copies_made(members)
    # AND, past its 7-day retention, member A answering `operation` with a proxy's page without
    # the call's items: a page botocore parses into an answer without any volume, or JSON `{}`
    # without Tags (DynamoDB sends `"Tags": []` for a table with none)
    fake_clock.advance(8 * 86400)
    member_client = built_services[0].member_client(service, MEMBER_A, REGION)
    page = answer_malformed(member_client, service, operation, page_body)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the listing, or the table, is an error naming the call's missing field, and the
    # source's expired copy, its last one, is kept: the answer is not taken for a source no
    # longer tagged
    assert page.answered >= 1
    target_a = target_of(result, MEMBER_A)
    [error] = target_a["errors"]
    assert error["resource"] == failed
    assert error_says in error["error"]
    assert copies_made(members) == [first_copy]
    assert first_copy in {entry["id"] for entry in target_a["kept"]}


def test_backups_listed_with_a_token_answered_again_fail_that_step_naming_list_backups(
    backup: Invoke, members: dict[str, Any], built_services: list[BackupServices]
) -> None:
    # GIVEN member A's DynamoDB (or a proxy replaying one answer) answering every ListBackups
    # with the same LastEvaluatedBackupArn
    dynamodb = member_a_client(backup, built_services, "dynamodb")
    repeated = answer_the_same_page_token(
        dynamodb, "ListBackups", "LastEvaluatedBackupArn", REPEATED_BACKUP_ARN
    )
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN member A's pruning of backups stops at the first repeat (two pages) with an error
    # naming ListBackups and the token, member A's volume and table are copied, and member B's
    # volume is copied
    assert repeated.pages == 2
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    [error] = target_a["errors"]
    assert error["resource"] == "dynamodb:ListBackups"
    assert "ListBackups answered the LastEvaluatedBackupArn" in error["error"]
    assert f"'{REPEATED_BACKUP_ARN[:30]}" in error["error"]
    assert sorted(copied_sources(target_a)) == sorted([members["volume_a"], "orders"])
    target_b = target_of(result, MEMBER_B)
    assert target_b["status"] == "ok"
    assert list(copied_sources(target_b)) == [members["volume_b"]]
