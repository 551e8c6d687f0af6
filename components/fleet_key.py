"""The fleet's customer-managed KMS key: buckets, table, topics, queues and log groups use it.

The key policy names every action it allows (no `kms:*`, even for the account root), so that the
policy scan of the tests holds everywhere. Services get exactly what encrypting their data needs:
CloudWatch Logs for this account's log groups, SNS/SQS/S3/DynamoDB/Lambda through
`kms:ViaService` on behalf of this account, and CloudWatch/EventBridge to publish to the
encrypted topics and dead-letter queues.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.policies import account_root, document

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
DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True)
class FleetKeyArgs:
    account_id: str
    region: str
    alias: str
    provider: aws.Provider


def key_policy(account_id: str, region: str) -> str:
    """The key policy as JSON: account root, CloudWatch Logs, services via the account."""
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
            policy=key_policy(args.account_id, args.region),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-alias", name=f"alias/{args.alias}", target_key_id=self.key.key_id, opts=child
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn})
