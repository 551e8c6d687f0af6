"""The environment report_processor reads, validated once per container."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, S3BucketName


class ProcessorEnvironment(FunctionEnvironment):
    """What the processor needs; the tolerance and the idempotency window have defaults.

    FLEET_DRY_RUN does not apply: the function only writes its own data under `processed/` and
    `raw/rejected/`.
    """

    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the raw documents; other buckets' records are ignored."
    )
    state_table_name: DynamoDbTableName = Field(
        description="The records of the raw documents processed."
    )
    alert_topic_arn: Arn = Field(
        description="The topic of the warnings about a rejected document or an object not handled."
    )
    report_count_tolerance_percent: float = Field(
        default=10.0,
        ge=0,
        description=(
            "How much the region, service and pair counts may change against the previous run "
            "(percent) before the `counts_vs_previous` rule fails."
        ),
    )
    report_idempotency_ttl_seconds: int = Field(
        default=604800,
        gt=0,
        description="How long a processed (key, ETag) is remembered (seconds).",
    )
