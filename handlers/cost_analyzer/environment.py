"""The cost analyzer's environment, read once per container (docs/functions/cost_analyzer.md is
generated from these descriptions)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, IamRoleName, S3BucketName

S3Location = Annotated[
    str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?$")
]
"""An `s3://<bucket>/<prefix>` location: Athena refuses any other in its own words, naming no
variable, at the first query."""
GlueName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,255}$")]
"""A Glue database or table name: written into the Athena SQL (a parameter cannot name a table),
so only letters, digits and `_`."""


class CostEnvironment(FunctionEnvironment):
    """The data bucket is required (reports, inventory, and the CUR by default); the rest has
    defaults or turns its part off when unset."""

    data_bucket_name: S3BucketName = Field(
        description="Where the reports go; it holds the fleet inventory and, by default, the CUR."
    )
    member_role_name: IamRoleName | None = Field(
        default=None,
        description="The role assumed in each member account to read its node utilisation "
        "(required when the inventory has clusters).",
    )
    state_table_name: DynamoDbTableName | None = Field(
        default=None,
        description="Delivery records of the alerts, so each goes out once (required with "
        "`ALERT_TOPIC_ARN`).",
    )
    alert_topic_arn: Arn | None = Field(
        default=None,
        description="Where anomaly warnings go, and the info summary unless "
        "`ALERT_TOPIC_INFO_ARN` is set (no alerts when unset).",
    )
    cost_query_engine: Literal["pandas", "athena"] = Field(
        default="pandas",
        description="How the CUR is read: `pandas` in the function, or `athena`.",
    )
    cost_cur_bucket: S3BucketName | None = Field(
        default=None, description="The bucket holding the CUR files (default: the data bucket)."
    )
    cost_cur_prefix: str = Field(default="cur/", description="The key prefix of the CUR files.")
    athena_workgroup: str | None = Field(
        default=None, description="The Athena workgroup of the queries (required for `athena`)."
    )
    cost_athena_database: GlueName | None = Field(
        default=None,
        description="The Glue database of the CUR table (required for `athena`; letters, "
        "digits and `_`).",
    )
    cost_athena_table: GlueName | None = Field(
        default=None,
        description="The CUR table, partitioned by `billing_period` (`YYYY-MM`) as the export's "
        "Glue crawler defines it (required for `athena`; letters, digits and `_`).",
    )
    cost_athena_output: S3Location | None = Field(
        default=None,
        description="The location of Athena's results (`s3://<bucket>/<prefix>`), when the "
        "workgroup sets none.",
    )
    cost_lookback_days: int = Field(
        default=30, ge=7, le=90, description="Days of cost, CUR and utilisation analysed (7-90)."
    )
    cost_top_resources: int = Field(
        default=20, ge=1, le=1000, description="Resources listed by cost in the detail (1-1000)."
    )
    cost_function_prefix: str = Field(
        default="lf-", description="Name prefix of the fleet's functions checked for memory."
    )
    cost_lambda_log_days: int = Field(
        default=7,
        ge=1,
        le=30,
        description="Days of REPORT log lines read per function for its memory (1-30).",
    )
    cost_node_utilisation_threshold: float = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="Average node CPU utilisation (0-1) under which a cluster is reported as "
        "under-used.",
    )
    cost_anomaly_recent_days: int = Field(
        default=3,
        ge=1,
        le=14,
        description="Anomalies on the last this many days are reported and alerted (1-14).",
    )
    cost_target_seconds: int = Field(
        default=30,
        ge=1,
        le=900,
        description="A generous estimate of one cluster's utilisation or one function's memory "
        "query (seconds, 1-900): none is started with less time left in the invocation.",
    )
    cost_anomaly_min_daily_usd: float = Field(
        default=1.0,
        ge=0.0,
        description="Groups whose daily cost averages less (in the report's `currency`, USD "
        "unless the bill is in another) are not checked for anomalies.",
    )

    @property
    def cur_bucket(self) -> str:
        """COST_CUR_BUCKET, or the data bucket."""
        return self.cost_cur_bucket or self.data_bucket_name
