"""The spot optimizer's environment, read once per container (docs/functions/spot_optimizer.md
is generated from these descriptions)."""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, BoolFlag, DynamoDbTableName, IamRoleName, S3BucketName


class SpotEnvironment(FunctionEnvironment):
    """Variables the optimizer needs; the state table, member role and alert topic are required."""

    state_table_name: DynamoDbTableName = Field(
        description="Interruptions, dedup claims, saved analyses, node group locks and changes."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    alert_topic_arn: Arn = Field(
        description="The topic of interruption warnings (an applied fallback goes to info)."
    )
    data_bucket_name: S3BucketName | None = Field(
        default=None,
        description=(
            "The data bucket holding the fleet inventory: required by analyze_fleet and by the "
            "access episode of a member refusing the role; the on-demand fallback reads the "
            "clusters' maintenance windows from it."
        ),
    )
    spot_recommend_score: float = Field(
        default=60.0,
        ge=0,
        le=100,
        description="Score (0-100) at or above which a type is recommended.",
    )
    spot_interruption_threshold: int = Field(
        default=3,
        ge=0,
        description=(
            "More interruptions of a node group than this in one hour trigger the on-demand "
            "fallback proposal."
        ),
    )
    spot_auto_apply: BoolFlag = Field(
        default=False,
        description=(
            "Apply the fallback (+1 on the on-demand group, when the cluster's schedule sizes "
            "it) instead of only proposing it."
        ),
    )
    spot_history_days: int = Field(
        default=7, ge=1, le=90, description="The spot price history window (days)."
    )
    spot_history_ttl_days: int = Field(
        default=8,
        # Shorter, the interruption risk's 7 days would count only the interruptions still kept.
        ge=7,
        description=(
            "How long interruption records are kept (days; at least the 7 the interruption "
            "risk counts)."
        ),
    )
    spot_change_history_ttl_days: int = Field(
        default=90,
        gt=0,
        description="How long an applied fallback stays in the node group's change history (days).",
    )
    spot_analysis_ttl_days: int = Field(
        default=2, gt=0, description="How long a saved fleet analysis is kept (days)."
    )
