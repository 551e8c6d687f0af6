"""Helpers for handler tests that act in several member accounts through moto.

moto honours the account of assumed-role credentials, so a session built from an AssumeRole of
`arn:aws:iam::<member>:role/<role>` creates and sees resources in that member account only.
A denied account is simulated at the one point where the real failure happens: the hub's STS
AssumeRole call answers AccessDenied for that account's role (a botocore before-call hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders

from tests.handlers.conftest import read_stack_config, stack_inventory

REGION = "ap-south-1"
MEMBER_ROLE_NAME = "lambda-fleet-member"
MEMBER_A = "222222222222"
MEMBER_B = "333333333333"
DENIED_MEMBER = "444444444444"
MEMBERS_STACK_FILE = Path(__file__).with_name("Pulumi.members.yaml")


def member_session(account_id: str, region: str = REGION) -> boto3.Session:
    """A session acting in `account_id`, as the member role (set up resources with it)."""
    sts = boto3.client("sts", region_name=region)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{MEMBER_ROLE_NAME}",
        RoleSessionName="test-setup",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


@dataclass
class _DeniedResponse:
    status_code: int = 403
    headers: dict[str, str] | None = None


def deny_assume_role(sts_client: Any, *account_ids: str) -> None:
    """Make `sts_client` answer AccessDenied to AssumeRole of the given accounts' roles."""

    def refuse(params: dict[str, Any], **_: Any) -> tuple[_DeniedResponse, dict] | None:
        role_arn = params.get("body", {}).get("RoleArn", "")
        if any(f":{account}:" in role_arn for account in account_ids):
            return _DeniedResponse(headers={}), {
                "Error": {"Code": "AccessDenied", "Message": f"not authorized for {role_arn}"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
        return None

    sts_client.meta.events.register("before-call.sts.AssumeRole", refuse)


MEMBERS_STACK_FILE = Path(__file__).with_name("Pulumi.members.yaml")


def fleet_inventory(*account_ids: str) -> dict[str, Any]:
    """The inventory of `Pulumi.members.yaml` keeping only the given members, in that order."""
    config = read_stack_config(MEMBERS_STACK_FILE)
    members = {member["account_id"]: member for member in config["lambda-fleet:members"]}
    config["lambda-fleet:members"] = [members[account] for account in account_ids]
    return stack_inventory("members", config)


_PARSED_MODELS: dict[str, Any] = {}


def share_botocore_models(monkeypatch: Any) -> None:
    """Parse each botocore data file once per test process instead of once per boto3 session.

    Every assumed-role session (one per member account, per runtime) has its own botocore
    loader, and the JSON parsing of service models dominated these tests' run time. The parsed
    documents are only read by botocore, so sharing them changes no behaviour.
    """
    original = botocore.loaders.JSONFileLoader.load_file

    def load_file(self: Any, file_path: str) -> Any:
        if file_path not in _PARSED_MODELS:
            _PARSED_MODELS[file_path] = original(self, file_path)
        return _PARSED_MODELS[file_path]

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", load_file)
