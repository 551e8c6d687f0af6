"""The events performance_analyzer accepts: the 4-hourly `analyze_fleet` schedule, or one
cluster of the inventory."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from fleet_shared.field_types import AccountId, AwsRegion, EksClusterName


class AnalyzeFleetEvent(BaseModel):
    """Analyse every cluster of the fleet inventory."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["analyze_fleet"]


class AnalyzeClusterEvent(BaseModel):
    """Analyse one cluster of the fleet inventory."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["analyze_cluster"]
    account_id: AccountId
    region: AwsRegion
    cluster: EksClusterName
