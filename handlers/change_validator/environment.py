"""The change validator's environment, read once per container (docs/functions/change_validator.md
is generated from these descriptions).

The thresholds say how far a figure may move between the baseline and the bake before the change
counts as a regression; they are plain settings with defaults, like the health monitor's. The bake
and the automatic restore of the scaler's own changes come from the stack file
(`functions.change_validator.validation`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import (
    Arn,
    BoolFlag,
    DynamoDbTableName,
    IamRoleName,
    PositiveInt,
    S3BucketName,
)
from fleet_shared.validation_errors import shown_value

RegressionStep = Annotated[float, Field(gt=0, le=1)]
"""A share's or rate's move (absolute) that is a regression. Not 0: a figure that moved by 0
would then be one, and every change degraded (every scaler change restored)."""


LATENCY_INCREASE_RATIO_HIGHEST = 10.0
"""A p95 grown elevenfold: a larger ratio is no threshold but the check switched off."""
LATENCY_MIN_INCREASE_MS_HIGHEST = 60_000
"""A minute: longer than any health probe waits (30 s at most) or a load balancer's target
commonly answers."""


LONGEST_FOLLOW_MINUTES = 7 * 24 * 60
"""The longest VALIDATION_MAX_FOLLOW_CHECKS checks VALIDATION_FOLLOW_MINUTES apart may take (a
week): the following of an update and the retries of a bake each end within it, so a
validation is judged well within the 30 days its record is kept. Without a bound, an update
stuck in progress, or a bake that cannot be measured, would be followed for ever, never judged."""


class ValidatorEnvironment(FunctionEnvironment):
    """What the change validator needs: the fleet's variables, its callback schedules and its
    thresholds."""

    state_table_name: DynamoDbTableName = Field(
        description="Validation records, verdict alert claims and the validation lock."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    alert_topic_arn: Arn = Field(
        description="The topic of warnings (the verdict alert goes to the critical topic when set)."
    )
    data_bucket_name: S3BucketName = Field(
        description="The data bucket holding the fleet inventory (clusters, health endpoints)."
    )
    validation_function_arn: Arn = Field(
        description="This function's own ARN: the target of its one-time callback schedules."
    )
    validation_schedule_group: str = Field(
        description="The EventBridge Scheduler group the callback schedules are created in."
    )
    validation_scheduler_role_arn: Arn = Field(
        description="The role EventBridge Scheduler assumes to invoke this function (and only it)."
    )
    validation_dead_letter_arn: Arn = Field(
        description="This function's dead-letter queue: callbacks that could not be delivered."
    )
    scaler_member_role_name: IamRoleName | None = Field(
        default=None,
        description=(
            "The scaler's member role: a change made through it is the fleet's own scaling "
            "change (unset when the stack switches eks_scaler off)."
        ),
    )
    scaler_function_name: str | None = Field(
        default=None,
        description="The scaler, asked to restore previous sizes when the stack allows it.",
    )
    validation_bake_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="Minutes watched after EKS reports the update finished, before comparing.",
    )
    validation_restore_scaler_changes: BoolFlag = Field(
        default=False,
        description=(
            "When true, a regression after the scaler's own change asks the scaler to restore "
            "the previous sizes (its normal path: lock, cooldown, idempotency, dry run)."
        ),
    )
    validation_follow_minutes: int = Field(
        default=5,
        ge=1,
        le=60,
        description="Minutes between two DescribeUpdate checks while the update is in progress.",
    )
    validation_max_follow_checks: PositiveInt = Field(
        default=48,
        description=(
            "DescribeUpdate checks before an update still in progress is judged `failed` (and "
            "failed bake checks before it is `inconclusive`); with VALIDATION_FOLLOW_MINUTES "
            "between them, at most a week."
        ),
    )
    # Both latency thresholds are bounded: past the bound (`inf` included) no latency would
    # ever be a regression, and every slowed change would pass without a word.
    validation_latency_increase_ratio: float = Field(
        default=0.5,
        gt=0,
        le=LATENCY_INCREASE_RATIO_HIGHEST,
        description=(
            "Relative growth of a p95 latency or response time that is a regression (above 0, "
            f"at most {LATENCY_INCREASE_RATIO_HIGHEST:g})."
        ),
    )
    validation_latency_min_increase_ms: PositiveInt = Field(
        default=100,
        le=LATENCY_MIN_INCREASE_MS_HIGHEST,
        description=(
            "A latency growth smaller than this (ms) is never a regression (noise; at most "
            f"{LATENCY_MIN_INCREASE_MS_HIGHEST})."
        ),
    )
    validation_error_rate_increase: RegressionStep = Field(
        default=0.05,
        description=(
            "Growth of an error or 5xx rate (absolute, above 0, at most 1) that is a regression."
        ),
    )
    validation_healthy_ratio_drop: RegressionStep = Field(
        default=0.1,
        description=(
            "Drop of the healthy-target or ready-node share (absolute, above 0, at most 1) that is "
            "a regression."
        ),
    )

    @field_validator("validation_max_follow_checks")
    @classmethod
    def _following_ends(cls, checks: int, info: ValidationInfo) -> int:
        apart = info.data.get("validation_follow_minutes")
        if isinstance(apart, int) and checks * apart > LONGEST_FOLLOW_MINUTES:
            raise ValueError(
                f"checks VALIDATION_FOLLOW_MINUTES ({apart}) apart must take at most "
                f"{LONGEST_FOLLOW_MINUTES} minutes (a week), got {shown_value(str(checks))} checks"
            )
        return checks
