"""Resources of the cleanup tests in a member account (EBS volumes and snapshots, Lambda functions
with published versions), what the tests read back of them, and the cleanup's answers."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from handlers.cleanup_manager.candidates import mark_tag
from tests.handlers.cleanup_manager.conftest import on_every_session
from tests.handlers.conftest import FLEET_ENVIRONMENT, AlertInbox, ReceivedAlert
from tests.handlers.member_accounts import DENIED_MEMBER, MEMBER_A, create_volume, member_session

MARK_TAG = mark_tag(FLEET_ENVIRONMENT["STACK_NAME"])
"""The mark of the stack the tests' cleanup runs as."""


def create_snapshot(ec2: Any, **tags: str) -> str:
    """A snapshot with `tags`, of a throw-away volume (itself unattached)."""
    arguments: dict[str, Any] = {"VolumeId": create_volume(ec2)}
    if tags:
        arguments["TagSpecifications"] = [
            {"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return str(ec2.create_snapshot(**arguments)["SnapshotId"])


OTHER_ACCOUNT = "111122223333"
"""An account outside the fleet that a member shares a snapshot with."""


def share_snapshot(ec2: Any, snapshot_id: str, how: str) -> None:
    """Share the snapshot as its `createVolumePermission` says: with OTHER_ACCOUNT (`shared`),
    or with everyone (`public`)."""
    who = {"UserIds": [OTHER_ACCOUNT]} if how == "shared" else {"GroupNames": ["all"]}
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", **who
    )


def register_image_from(ec2: Any, root: str, data: str | None = None) -> str:
    """An AMI registered from snapshot `root` as its root device and, when given, snapshot
    `data` as a data volume; its id."""
    mappings = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}}]
    if data is not None:
        mappings.append({"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data}})
    return str(
        ec2.register_image(
            Name="restored-app", RootDeviceName="/dev/xvda", BlockDeviceMappings=mappings
        )["ImageId"]
    )


def tags_of(ec2: Any, resource_id: str) -> dict[str, str]:
    described = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])
    return {tag["Key"]: tag["Value"] for tag in described["Tags"]}


def snapshots_in(ec2: Any) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def volumes_in(ec2: Any) -> set[str]:
    return {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}


def _function_code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_lambda_function(session: boto3.Session, name: str, versions: int, **tags: str) -> Any:
    """Function `name` with `tags` and `versions` published versions (each of new code), its
    role `<name>-role`, in the member of `session`; that member's Lambda client."""
    role_arn = session.client("iam").create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}',
    )["Role"]["Arn"]
    client = session.client("lambda")
    create_function_with_versions(client, name, role_arn, versions, **tags)
    return client


def create_function_with_versions(
    client: Any, name: str, role_arn: str, versions: int, **tags: str
) -> None:
    """Function `name` with `tags`, role `role_arn` and `versions` published versions (each of
    new code), through the Lambda `client`: also a function created again under the name of one
    deleted, whose versions are numbered from 1 again."""
    code = _function_code()
    client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": code},
        Tags=tags,
    )
    for number in range(versions):
        client.update_function_code(FunctionName=name, ZipFile=code)
        client.publish_version(FunctionName=name, Description=f"v{number + 1}")


def published_versions(client: Any, name: str) -> set[str]:
    versions = client.list_versions_by_function(FunctionName=name)["Versions"]
    return {v["Version"] for v in versions if v["Version"] != "$LATEST"}


def actions_of(target: dict[str, Any]) -> dict[str, str]:
    """Resource id -> what the cleanup did to it, in a target's result."""
    return {entry["id"]: entry["action"] for entry in target["actions"]}


def notices_received(inbox: AlertInbox) -> list[ReceivedAlert]:
    """The alerts delivered since the last look but the access alert of the member whose role is
    denied, which every test's first run sends: the mark notices, in order."""
    return [
        received for received in inbox.receive() if received.alert["account_id"] != DENIED_MEMBER
    ]


def unlisted_kinds(target: dict[str, Any]) -> dict[str, str]:
    """Kind -> the error of each resource kind a target's result says was not listed (its
    entry names the target, `<account>/<region>`, not a resource)."""
    target_id = f"{target['account_id']}/{target['region']}"
    return {
        entry["kind"]: entry["error"]
        for entry in target.get("errors", [])
        if entry.get("id") == target_id
    }


LONG_FUNCTION_NAME = "orders-" + "x" * 57
"""A function name of the longest length Lambda takes, 64 characters."""


def function_with_thousands_of_versions(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Function LONG_FUNCTION_NAME in member A with 6000 published versions, as every
    ListVersionsByFunction of the handler answers: their marks take more than DynamoDB's 400 KB
    item. The listing, which a test may extend."""
    create_lambda_function(member_session(MEMBER_A), LONG_FUNCTION_NAME, versions=1)
    published = [{"Version": "$LATEST"}, *({"Version": str(n)} for n in range(1, 6001))]

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse(params["url"], 200, {}, None), {"Versions": published}

    on_every_session(monkeypatch, "before-call.lambda.ListVersionsByFunction", answer)
    return published
