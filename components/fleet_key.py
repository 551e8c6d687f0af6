"""The fleet's customer-managed KMS key: buckets, table, topics, queues and log groups use it.

The key policy names every action it allows (no `kms:*`, even for the account root), so that the
policy scan of the tests holds everywhere. Services get exactly what encrypting their data needs:
CloudWatch Logs for this account's log groups, SNS/SQS/S3/DynamoDB/Lambda through
`kms:ViaService` on behalf of this account, CloudWatch/EventBridge to publish to the
encrypted topics and dead-letter queues, and, when the CUR is delivered into the data bucket,
Data Exports to encrypt what it puts there for the export accounts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.policies import (
    DATA_EXPORTS_SERVICE,
    account_root,
    data_exports_source_condition,
    document,
)

# What the account (and, through IAM, its administrators and deployers) may do with the key.
KEY_ADMINISTRATION_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
VIA_SERVICES = ("dynamodb", "lambda", "s3", "sns", "sqs")
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")
# What S3 asks KMS for, as the writer, when an object is put into a bucket encrypted with the key:
# a data key, and Decrypt for each part of a multipart upload after the first.
SSE_KMS_WRITER_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True)
class FleetKeyArgs:
    account_id: str
    region: str
    alias: str
    provider: aws.Provider
    # Accounts whose Data Exports export delivers into the data bucket; none: no grant.
    cost_export_account_ids: tuple[str, ...] = ()


def key_policy(account_id: str, region: str, cost_export_account_ids: tuple[str, ...] = ()) -> str:
    """The key policy as JSON: account root, CloudWatch Logs, services via the account, and Data
    Exports for the export accounts when the data bucket receives the CUR."""
    statements = [
        {
            "Sid": "AccountAdministersAndUsesTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": account_root(account_id)},
            "Action": sorted({*KEY_ADMINISTRATION_ACTIONS, *KEY_USE_ACTIONS}),
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(KEY_USE_ACTIONS),
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:aws:logs:{region}:{account_id}:log-group:*"
                    )
                }
            },
        },
        {
            "Sid": "ServicesUseTheKeyOnBehalfOfThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": account_root(account_id)},
            "Action": [*KEY_USE_ACTIONS, "kms:CreateGrant"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account_id,
                    "kms:ViaService": [
                        f"{service}.{region}.amazonaws.com" for service in VIA_SERVICES
                    ],
                }
            },
        },
        {
            "Sid": "AlarmsAndEventsPublishToEncryptedTopicsAndQueues",
            "Effect": "Allow",
            "Principal": {"Service": list(PUBLISHING_SERVICES)},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    ]
    if cost_export_account_ids:
        # The data bucket's default encryption is this key: without it, S3 refuses each object
        # the exports deliver, whatever the bucket policy allows.
        statements.append(
            {
                "Sid": "DataExportsEncryptsTheCostReportItDelivers",
                "Effect": "Allow",
                "Principal": {"Service": DATA_EXPORTS_SERVICE},
                "Action": list(SSE_KMS_WRITER_ACTIONS),
                "Resource": "*",
                "Condition": data_exports_source_condition(cost_export_account_ids),
            }
        )
    return json.dumps(document(*statements), indent=2)


class FleetKey(pulumi.ComponentResource):
    """One rotating symmetric key per stack in the hub account."""

    key: aws.kms.Key
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: FleetKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:kms:FleetKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.key = aws.kms.Key(
            f"{name}-key",
            description="lambda-fleet: buckets, state table, topics, queues and log groups",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=key_policy(args.account_id, args.region, args.cost_export_account_ids),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-alias", name=f"alias/{args.alias}", target_key_id=self.key.key_id, opts=child
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn})
