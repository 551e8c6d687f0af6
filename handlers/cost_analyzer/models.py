"""Event and environment of the cost analyzer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet_shared.environment import FunctionEnvironment


class CostEnvironment(FunctionEnvironment):
    """DATA_BUCKET_NAME is required (reports, inventory, and the CUR by default)."""

    data_bucket_name: str
    athena_workgroup: str | None = None
    cost_query_engine: Literal["pandas", "athena"] = "pandas"
    cost_cur_bucket: str | None = None
    cost_cur_prefix: str = "cur/"
    cost_athena_database: str | None = None
    cost_athena_table: str | None = None
    cost_athena_output: str | None = None
    cost_lookback_days: int = Field(default=30, ge=7, le=90)
    cost_top_resources: int = Field(default=20, ge=1, le=1000)
    cost_function_prefix: str = "lf-"
    cost_lambda_log_days: int = Field(default=7, ge=1, le=30)
    cost_node_utilisation_threshold: float = Field(default=0.3, gt=0.0, lt=1.0)
    cost_anomaly_recent_days: int = Field(default=3, ge=1, le=14)
    cost_anomaly_min_daily_usd: float = Field(default=1.0, ge=0.0)

    @property
    def cur_bucket(self) -> str:
        """COST_CUR_BUCKET, or the data bucket."""
        return self.cost_cur_bucket or self.data_bucket_name


class AnalyzeRequest(BaseModel):
    """`{"action": "analyze"}`: the daily analysis."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["analyze"]
