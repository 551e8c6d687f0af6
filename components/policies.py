"""Small builders of IAM policy documents (plain dicts, rendered with `Output.json_dumps`).

Resource policies here never allow a bare `*` principal: services are named and limited to the
hub account (Data Exports to the accounts whose CUR it delivers), and the only statements with
`"Principal": "*"` are denials of plain HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pulumi

from catalog.model import Condition

POLICY_VERSION = "2012-10-17"
# The service principal of AWS Data Exports (CUR 2.0), and the one region its exports live in.
DATA_EXPORTS_SERVICE = "bcm-data-exports.amazonaws.com"
DATA_EXPORTS_REGION = "us-east-1"

Statement = dict[str, Any]


def document(*statements: Statement) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def account_root(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def service_trust(
    service: str, source_account: str | None = None, source_arn: str | None = None
) -> str:
    """An assume-role policy for one AWS service, optionally only on behalf of one account and
    of one resource of it (the confused deputy conditions AWS documents)."""
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, dict[str, str]] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        condition["ArnEquals"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return pulumi.Output.json_dumps(document(statement))


def dead_letter_encryption(key_arn: pulumi.Input[str], region: str) -> Statement:
    """A scheduler role's use of the fleet key: only as SQS asks for it while the role sends a
    dead letter to an encrypted queue. Never a direct KMS call, which a schedule's universal
    target (`arn:aws:scheduler:::aws-sdk:kms:...`) could otherwise make with the role."""
    return {
        "Sid": "EncryptDeadLetters",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": [key_arn],
        "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
    }


def data_exports_source_condition(account_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """Data Exports acting for an export of one of these accounts, and no other (the confused
    deputy conditions AWS documents for a bucket that receives exports)."""
    return {
        "StringEquals": {"aws:SourceAccount": list(account_ids)},
        "ArnLike": {
            "aws:SourceArn": [
                f"arn:aws:bcm-data-exports:{DATA_EXPORTS_REGION}:{account_id}:export/*"
                for account_id in account_ids
            ]
        },
    }


def deny_insecure_transport(
    sid: str, actions: str | Sequence[str], resources: Sequence[pulumi.Input[str]]
) -> Statement:
    """Deny every request that does not use TLS."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def condition_block(conditions: Iterable[Condition]) -> dict[str, dict[str, str | list[str]]]:
    """A statement's `Condition`: operators, then keys, each with one value or a list."""
    block: dict[str, dict[str, str | list[str]]] = {}
    for condition in conditions:
        values = list(condition.values)
        block.setdefault(condition.operator, {})[condition.key] = (
            values[0] if len(values) == 1 else values
        )
    return block
