"""The fleet's data bucket and the bucket that receives its server access logs.

Both buckets block public access (all four settings), disable ACLs (bucket owner enforced), keep
versions, encrypt at rest, refuse plain HTTP and expire what is not needed. The data bucket is
encrypted with the fleet key; the log bucket uses SSE-S3 (AES256) because S3 server access
logging cannot deliver to a bucket whose default encryption is SSE-KMS.

The data bucket also holds the fleet inventory (`config/fleet-inventory.json`) that handlers read,
and, when the stack leaves `cost_report.cur_bucket` to it, the CUR that AWS Data Exports delivers:
its policy then lets the Data Exports service put objects under `cur_prefix` (and its delivery
check object at the root) for the export accounts' exports only.

The inventory object is written last, after every function (`FleetBuckets.write_inventory`): the
functions need the bucket's name, and the inventory must wait for their code, since a function
still running the code of the release before refuses an inventory with a field it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.naming import ACCESS_LOG_BUCKET, DATA_BUCKET, hub_bucket_name
from components.policies import (
    DATA_EXPORTS_SERVICE,
    Statement,
    data_exports_source_condition,
    deny_insecure_transport,
    document,
)

# Prefixes of the data bucket (see handlers): raw/ -> processed/ -> reports/, cache/ is scratch,
# tmp/ holds what a writer stages before publishing it (report_generator's tmp/reports/).
RAW_PREFIX = "raw/"
PROCESSED_PREFIX = "processed/"
REPORTS_PREFIX = "reports/"
CACHE_PREFIX = "cache/"
TEMPORARY_PREFIX = "tmp/"
CONFIG_PREFIX = "config/"
ATHENA_RESULTS_PREFIX = "athena-results/"
INVENTORY_KEY = f"{CONFIG_PREFIX}fleet-inventory.json"
ACCESS_LOG_PREFIX = "s3-access/"
# What Data Exports writes at the bucket's root to check it may deliver there, before it creates
# an export (the name AWS's Cost and Usage Report labs show in the bucket).
DATA_EXPORTS_CHECK_OBJECT = "aws-programmatic-access-test-object"

CACHE_EXPIRATION_DAYS = 1
# What a failed run left staged; a successful run removes its own at once.
TEMPORARY_EXPIRATION_DAYS = 1
RAW_EXPIRATION_DAYS = 30
NONCURRENT_EXPIRATION_DAYS = 30
ACCESS_LOG_EXPIRATION_DAYS = 90
ABORT_MULTIPART_DAYS = 7


@dataclass(frozen=True)
class FleetBucketsArgs:
    prefix: str
    account_id: str
    region: str
    key_arn: pulumi.Input[str]
    provider: aws.Provider
    # Accounts whose Data Exports export delivers the CUR under `cur_prefix`; none: no grant.
    cost_export_account_ids: tuple[str, ...] = ()
    cur_prefix: str = ""


@dataclass(frozen=True)
class ExpirationRule:
    """Expire objects under `prefix` after `days`, noncurrent versions after `noncurrent_days`."""

    rule_id: str
    prefix: str
    days: int | None
    noncurrent_days: int | None = None


DATA_LIFECYCLE = (
    ExpirationRule("expire-cache", CACHE_PREFIX, CACHE_EXPIRATION_DAYS),
    ExpirationRule(
        "expire-temporary", TEMPORARY_PREFIX, TEMPORARY_EXPIRATION_DAYS, TEMPORARY_EXPIRATION_DAYS
    ),
    ExpirationRule("expire-raw", RAW_PREFIX, RAW_EXPIRATION_DAYS),
    ExpirationRule("expire-noncurrent-versions", "", None, NONCURRENT_EXPIRATION_DAYS),
)
ACCESS_LOG_LIFECYCLE = (
    ExpirationRule(
        "expire-access-logs", "", ACCESS_LOG_EXPIRATION_DAYS, NONCURRENT_EXPIRATION_DAYS
    ),
)


def inventory_content(inventory: dict[str, Any]) -> str:
    """The inventory object's bytes: sorted and indented, so it only changes when the fleet does."""
    return json.dumps(inventory, sort_keys=True, indent=2)


class FleetBuckets(pulumi.ComponentResource):
    """Data bucket (KMS) and access-log bucket (SSE-S3), both private, versioned and TLS-only."""

    data_bucket: aws.s3.Bucket
    log_bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: FleetBucketsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:storage:FleetBuckets", name, None, opts)
        self._name = name
        self._key_arn = args.key_arn
        self._child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.log_bucket = self._private_bucket(
            f"{name}-access-logs",
            hub_bucket_name(args.prefix, args.account_id, args.region, ACCESS_LOG_BUCKET),
            ACCESS_LOG_LIFECYCLE,
            kms_key_arn=None,
        )
        self.data_bucket = self._private_bucket(
            f"{name}-data",
            hub_bucket_name(args.prefix, args.account_id, args.region, DATA_BUCKET),
            DATA_LIFECYCLE,
            kms_key_arn=args.key_arn,
        )
        log_policy = aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=self.log_bucket.id,
            policy=pulumi.Output.json_dumps(
                document(
                    {
                        "Sid": "ServerAccessLogsFromTheDataBucket",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(
                            self.log_bucket.arn, "/", ACCESS_LOG_PREFIX, "*"
                        ),
                        "Condition": {
                            "ArnLike": {"aws:SourceArn": self.data_bucket.arn},
                            "StringEquals": {"aws:SourceAccount": args.account_id},
                        },
                    },
                    deny_insecure_transport(
                        "DenyInsecureTransport",
                        "s3:*",
                        [self.log_bucket.arn, pulumi.Output.concat(self.log_bucket.arn, "/*")],
                    ),
                )
            ),
            opts=self._child,
        )
        data_statements = [
            deny_insecure_transport(
                "DenyInsecureTransport",
                "s3:*",
                [self.data_bucket.arn, pulumi.Output.concat(self.data_bucket.arn, "/*")],
            )
        ]
        if args.cost_export_account_ids:
            data_statements.append(
                _cost_report_delivery(
                    self.data_bucket.arn, args.cur_prefix, args.cost_export_account_ids
                )
            )
        aws.s3.BucketPolicy(
            f"{name}-data-policy",
            bucket=self.data_bucket.id,
            policy=pulumi.Output.json_dumps(document(*data_statements)),
            opts=self._child,
        )
        aws.s3.BucketLogging(
            f"{name}-data-logging",
            bucket=self.data_bucket.id,
            target_bucket=self.log_bucket.id,
            target_prefix=pulumi.Output.concat(ACCESS_LOG_PREFIX, self.data_bucket.bucket, "/"),
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(depends_on=[log_policy])
            ),
        )
        self.register_outputs(
            {
                "data_bucket": self.data_bucket.bucket,
                "log_bucket": self.log_bucket.bucket,
                "inventory_key": INVENTORY_KEY,
            }
        )

    def write_inventory(
        self, inventory: dict[str, Any], after: pulumi.Input[Sequence[pulumi.Resource]]
    ) -> aws.s3.BucketObjectv2:
        """The inventory object, written once every resource of `after` (the FleetFunction
        components: each function's code, layer version and configuration, and the rest of its
        resources) is created or updated.

        The models reject unknown fields, so a function still running the release before refuses
        an inventory that adds one: written with the buckets, before the functions, it failed
        their runs until each function's own update landed. Written after them, the new code
        reads the inventory of the release before for a while, which it takes as long as every
        field added to the models has a default.

        The order of the steps, as `pulumi up` takes them and `pulumi preview` plans them (its
        tree still shows this object under the buckets): the buckets; the layer and every
        function; this object; the members' forwarding rules, which wait for it
        (`components/event_forwarding.py`); last, the deletion of what the program no longer
        declares. Two windows remain. A function removed from the catalog or switched off is
        deleted in that last step, after this write: until then its old code reads the new
        inventory, and refuses a field it does not know (switch a function off in a `pulumi up`
        of its own, not with an upgrade that adds a field). On the first `pulumi up` the
        functions exist before any inventory: a run in between fails with
        `InventoryUnreadableError` naming the key and S3's NoSuchKey, never reading an empty
        fleet, and Lambda retries a scheduled (asynchronous) run, twice.

        A child of the buckets, as when they wrote it themselves: its URN is unchanged, so the
        object is updated in place, never deleted and written again.
        """
        return aws.s3.BucketObjectv2(
            f"{self._name}-fleet-inventory",
            bucket=self.data_bucket.id,
            key=INVENTORY_KEY,
            content=inventory_content(inventory),
            content_type="application/json",
            server_side_encryption="aws:kms",
            kms_key_id=self._key_arn,
            opts=pulumi.ResourceOptions(
                parent=self, provider=self._child.provider, depends_on=after
            ),
        )

    def _private_bucket(
        self,
        name: str,
        bucket_name: str,
        lifecycle: tuple[ExpirationRule, ...],
        kms_key_arn: pulumi.Input[str] | None,
    ) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(name, bucket=bucket_name, opts=self._child)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self._child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=self._child,
        )
        # Same fields as ...RuleApplyServerSideEncryptionByDefaultArgs, whose name is too long.
        encryption = {
            "sse_algorithm": "aws:kms" if kms_key_arn is not None else "AES256",
            "kms_master_key_id": kms_key_arn,
        }
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=encryption,
                    bucket_key_enabled=kms_key_arn is not None,
                )
            ],
            opts=self._child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[_lifecycle_rule(rule) for rule in lifecycle],
            opts=self._child,
        )
        return bucket


def _cost_report_delivery(
    bucket_arn: pulumi.Output[str], cur_prefix: str, account_ids: tuple[str, ...]
) -> Statement:
    """Data Exports may check the bucket's policy and put the CUR under `cur_prefix`, and its
    delivery check at the root, for exports of these accounts only (AWS Data Exports, "Setting
    up an Amazon S3 bucket for data exports"); it can overwrite nothing else of the fleet's."""
    return {
        "Sid": "DataExportsDeliversTheCostReport",
        "Effect": "Allow",
        "Principal": {"Service": DATA_EXPORTS_SERVICE},
        "Action": ["s3:GetBucketPolicy", "s3:PutObject"],
        "Resource": [
            bucket_arn,
            pulumi.Output.concat(bucket_arn, "/", cur_prefix, "*"),
            pulumi.Output.concat(bucket_arn, "/", DATA_EXPORTS_CHECK_OBJECT),
        ],
        "Condition": data_exports_source_condition(account_ids),
    }


def _lifecycle_rule(rule: ExpirationRule) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule.rule_id,
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=rule.prefix),
        expiration=(
            aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=rule.days)
            if rule.days is not None
            else None
        ),
        noncurrent_version_expiration=(
            aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=rule.noncurrent_days
            )
            if rule.noncurrent_days is not None
            else None
        ),
        abort_incomplete_multipart_upload=(
            aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_MULTIPART_DAYS
            )
            if rule.prefix == ""
            else None
        ),
    )
