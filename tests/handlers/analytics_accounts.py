"""Member-account helpers for the demand_forecaster, anomaly_detector and cost_analyzer tests."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.handlers.conftest import DATA_BUCKET_NAME, FLEET_ENVIRONMENT, REGION

ROLE_NAME = FLEET_ENVIRONMENT["MEMBER_ROLE_NAME"]


def member_session(account_id: str) -> boto3.Session:
    """A session acting in `account_id` through the member role, as the handlers get one."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE_NAME}", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def deny_assume_role(monkeypatch: pytest.MonkeyPatch, account_id: str) -> None:
    """Make STS refuse AssumeRole into `account_id`, as a member without the trust would (moto
    accepts every AssumeRole)."""
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "AssumeRole" and f"::{account_id}:" in api_params["RoleArn"]:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole"
            )
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)


def add_member_copy(inventory_document: dict[str, Any], account_id: str) -> None:
    """A member `account_id` with a copy of the first member's clusters, after the others, in
    the inventory in S3."""
    member = copy.deepcopy(inventory_document["members"][0])
    member["account_id"] = account_id
    inventory_document["members"].append(member)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode(),
    )
