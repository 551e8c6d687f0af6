"""The environment report_generator reads, validated once per container."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, S3BucketName


class GeneratorEnvironment(FunctionEnvironment):
    """What the generator needs; the idempotency window has a default.

    FLEET_DRY_RUN does not apply: the function only writes its own reports.
    """

    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the processed runs and the reports."
    )
    state_table_name: DynamoDbTableName = Field(description="The records of the reports generated.")
    alert_topic_arn: Arn = Field(
        description=(
            "The default alert topic; the report-ready alert goes to `ALERT_TOPIC_INFO_ARN` "
            "when that is set."
        )
    )
    report_idempotency_ttl_seconds: int = Field(
        default=604800,
        gt=0,
        description="How long a generated (key, ETag) is remembered (seconds).",
    )
