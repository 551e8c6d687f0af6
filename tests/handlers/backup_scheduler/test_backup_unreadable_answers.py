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
REPEATED_BACKUP_ARN = (
    f"arn:aws:dynamodb:{REGION}:{MEMBER_A}:table/orders/backup/01700000000000-abcdef12"
)
"""A LastEvaluatedBackupArn botocore lets through as the next ExclusiveStartBackupArn (the field
takes 37 to 1,024 characters)."""


@pytest.fixture
def members(mocked_aws: None) -> dict[str, Any]:
    """Member A with a daily volume and a daily table `orders`, member B with a daily volume."""
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


def test_a_table_described_with_a_proxy_page_fails_alone_and_the_rest_is_copied(
    backup: Invoke, members: dict[str, Any], built_services: list[BackupServices]
) -> None:
    # GIVEN member A's DynamoDB answering DescribeTable of `orders` with a proxy's page
    dynamodb = member_a_client(backup, built_services, "dynamodb")
    page = answer_malformed(dynamodb, "dynamodb", "DescribeTable", PROXY_PAGE)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN `orders` is an error naming the call and what its answer lacked; member A's volume
    # and member B's are copied
    assert page.answered >= 1
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "partial"
    [error] = target_a["errors"]
    assert error["resource"] == "orders"
    assert "DescribeTable of orders answered without Table" in error["error"]
    assert list(copied_sources(target_a)) == [members["volume_a"]]
    assert list(copied_sources(target_of(result, MEMBER_B))) == [members["volume_b"]]


def test_volumes_listed_with_an_unparsable_page_fail_that_step_alone(
    backup: Invoke, members: dict[str, Any], built_services: list[BackupServices]
) -> None:
    # GIVEN member A's EC2 answering DescribeVolumes with a page that is not XML
    ec2 = member_a_client(backup, built_services, "ec2")
    page = answer_malformed(ec2, "ec2", "DescribeVolumes", BROKEN_PROXY_PAGE)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN member A's volume step is an error in a short line, its table is still backed up,
    # and member B's volume is copied
    assert page.answered >= 1
    target_a = target_of(result, MEMBER_A)
    [error] = target_a["errors"]
    assert error["resource"] == "ec2:DescribeVolumes"
    assert "Unable to parse response" in error["error"]
    assert len(error["error"]) <= 200
    assert list(copied_sources(target_a)) == ["orders"]
    assert list(copied_sources(target_of(result, MEMBER_B))) == [members["volume_b"]]


def test_a_snapshot_ec2_made_but_answered_with_a_proxy_page_is_the_volumes_copy(
    backup: Invoke, members: dict[str, Any], built_services: list[BackupServices]
) -> None:
    # GIVEN member A's EC2 making the CreateSnapshot but answering it with a proxy's page
    ec2 = member_a_client(backup, built_services, "ec2")
    page = answer_malformed(ec2, "ec2", "CreateSnapshot", PROXY_PAGE)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the snapshot EC2 made is reported as the volume's copy, and nothing failed
    assert page.answered == 1
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "ok"
    made = snapshot_ids(members["ec2_a"], members["volume_a"])
    assert len(made) == 1
    assert copied_sources(target_a)[members["volume_a"]] == made[0]


def test_a_backup_dynamodb_made_but_answered_with_a_proxy_page_is_the_tables_copy(
    backup: Invoke, members: dict[str, Any], built_services: list[BackupServices]
) -> None:
    # GIVEN member A's DynamoDB making the CreateBackup of `orders` but answering it with a
    # proxy's page
    dynamodb = member_a_client(backup, built_services, "dynamodb")
    page = answer_malformed(dynamodb, "dynamodb", "CreateBackup", PROXY_PAGE)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the backup DynamoDB made is reported as the table's copy, and nothing failed
    assert page.answered == 1
    target_a = target_of(result, MEMBER_A)
    assert target_a["status"] == "ok"
    [made] = members["dynamodb_a"].list_backups(TableName="orders")["BackupSummaries"]
    assert copied_sources(target_a)["orders"] == made["BackupArn"]


def test_volumes_listed_with_a_proxy_page_do_not_pass_for_none_and_keep_their_last_copy(
    backup: Invoke,
    members: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN the first day's copy of member A's daily volume
    backup({"action": "backup"})
    [first_copy] = snapshot_ids(members["ec2_a"], members["volume_a"])
    # AND, past its 7-day retention, member A's EC2 answering DescribeVolumes with a proxy's
    # page, which botocore parses into an answer without any volume
    fake_clock.advance(8 * 86400)
    ec2 = built_services[0].member_client("ec2", MEMBER_A, REGION)
    page = answer_malformed(ec2, "ec2", "DescribeVolumes", PROXY_PAGE)
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN the listing is an error naming what its answer lacked, and the volume's expired copy,
    # its last one, is kept: the page is not taken for a member without tagged volumes
    assert page.answered >= 1
    target_a = target_of(result, MEMBER_A)
    [error] = target_a["errors"]
    assert error["resource"] == "ec2:DescribeVolumes"
    assert "answered without Volumes" in error["error"]
    assert snapshot_ids(members["ec2_a"], members["volume_a"]) == [first_copy]
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


def test_a_tables_tags_answered_without_tags_are_its_error_and_keep_its_last_backup(
    backup: Invoke,
    members: dict[str, Any],
    built_services: list[BackupServices],
    fake_clock: ManualClock,
) -> None:
    # GIVEN the first day's backup of member A's daily table `orders`
    backup({"action": "backup"})
    [first_copy] = members["dynamodb_a"].list_backups(TableName="orders")["BackupSummaries"]
    # AND, past its 7-day retention, member A's DynamoDB answering ListTagsOfResource with a
    # proxy's JSON `{}`, an answer without Tags (DynamoDB sends `"Tags": []` for a table with none)
    fake_clock.advance(8 * 86400)
    dynamodb = built_services[0].member_client("dynamodb", MEMBER_A, REGION)
    page = answer_malformed(dynamodb, "dynamodb", "ListTagsOfResource", b"{}")
    # WHEN the schedule runs
    result = backup({"action": "backup"})
    # THEN `orders` is an error naming the call and what its answer lacked, and its expired
    # backup, its last one, is kept: the answer is not taken for a table no longer tagged
    assert page.answered >= 1
    backups = members["dynamodb_a"].list_backups(TableName="orders")["BackupSummaries"]
    assert [item["BackupArn"] for item in backups] == [first_copy["BackupArn"]]
    target_a = target_of(result, MEMBER_A)
    assert first_copy["BackupArn"] in {entry["id"] for entry in target_a["kept"]}
    [error] = target_a["errors"]
    assert error["resource"] == "orders"
    assert "ListTagsOfResource answered without Tags" in error["error"]
