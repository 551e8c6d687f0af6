"""The fleet's state table: locks, cooldowns, saved sizes, dedupe keys (single-table design)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True)
class StateTableArgs:
    table_name: str
    key_arn: pulumi.Input[str]
    provider: aws.Provider


class StateTable(pulumi.ComponentResource):
    """On-demand, point-in-time recoverable, protected from deletion, encrypted with the fleet key.

    Items expire through `expires_at` (epoch seconds), so locks and dedupe keys clean themselves.
    """

    table: aws.dynamodb.Table

    def __init__(
        self, name: str, args: StateTableArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:state:StateTable", name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=args.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=PARTITION_KEY,
            range_key=SORT_KEY,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=PARTITION_KEY, type="S"),
                aws.dynamodb.TableAttributeArgs(name=SORT_KEY, type="S"),
            ],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=TTL_ATTRIBUTE, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=True,
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=args.key_arn
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.register_outputs({"name": self.table.name, "arn": self.table.arn})
