"""The cleanup manager's environment model (variables are documented in app.py)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, PositiveInt


class CleanupEnvironment(FunctionEnvironment):
    """What the cleanup manager needs; thresholds have defaults."""

    state_table_name: str
    member_role_name: str
    data_bucket_name: str
    alert_topic_arn: Arn
    cleanup_snapshot_max_age_days: PositiveInt = 30
    cleanup_volume_min_age_days: PositiveInt = 7
    cleanup_keep_lambda_versions: PositiveInt = 3
    cleanup_notice_days: PositiveInt = 7
    cleanup_keep_tag: str = Field(default="keep", min_length=1)
    cleanup_max_workers: PositiveInt = 4
