"""The spot optimizer's environment variables (documented in app.py), read once per container."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, BoolFlag


class SpotEnvironment(FunctionEnvironment):
    """Variables the optimizer needs; the state table, member role and alert topic are required."""

    state_table_name: str
    member_role_name: str
    alert_topic_arn: Arn
    spot_recommend_score: float = Field(default=60.0, ge=0, le=100)
    spot_interruption_threshold: int = Field(default=3, ge=0)
    spot_auto_apply: BoolFlag = False
    spot_history_days: int = Field(default=7, ge=1, le=90)
    spot_history_ttl_days: int = Field(default=8, ge=1)
    spot_change_history_ttl_days: int = Field(default=90, gt=0)
    spot_analysis_ttl_days: int = Field(default=2, gt=0)
