"""The scanner's environment, read once per container (docs/functions/security_scanner.md is
generated from these descriptions).

FLEET_DRY_RUN is not read: the scanner changes nothing in the member accounts. A request's
`dry_run: true` evaluates without writing (no Security Hub import, report, state or alert).
"""

from __future__ import annotations

from pydantic import Field

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import (
    Arn,
    DynamoDbTableName,
    IamRoleName,
    PositiveInt,
    S3BucketName,
    TimeZoneName,
)


class ScannerEnvironment(FunctionEnvironment):
    """What the security scanner needs; SCAN_QUEUE_URL only when it has to fan out."""

    state_table_name: DynamoDbTableName = Field(
        description="Open findings per target, countries per principal, and event claims."
    )
    member_role_name: IamRoleName = Field(description="The role assumed in each member account.")
    data_bucket_name: S3BucketName = Field(
        description="Holds the fleet inventory and receives the reports `reports/security/<date>/`."
    )
    schedule_time_zone: TimeZoneName = Field(
        default="UTC",
        description="The stack's schedule time zone: reports are dated by the day in it.",
    )
    alert_topic_arn: Arn = Field(
        description=(
            "The default alert topic: critical new findings and risky security events alert."
        )
    )
    scan_queue_url: str | None = Field(
        default=None,
        description="The fan-out queue; required only when the schedule has to fan out.",
    )
    scan_max_workers: PositiveInt = Field(
        default=4, description="Targets scanned at once in one invocation."
    )
    scan_target_seconds: int = Field(
        default=120,
        ge=1,
        le=900,
        description="A generous estimate of one target's scan (seconds, 1-900): in a direct scan "
        "a target is started only with this much time left in the invocation beyond the 232 s its "
        "endpoints take when they never answer (one call each: 25 s for each of its seven member "
        "services, 29 s for Security Hub, 15 s for SNS, 13 s for the state table) and the 15 s "
        "of the run's report (its S3 PutObject when S3 never answers), and otherwise the next run "
        "starts with it.",
    )
    scan_max_targets_per_invocation: PositiveInt = Field(
        default=10,
        description="Above this many targets the schedule sends one queue message per target.",
    )
    risk_country_window_days: PositiveInt = Field(
        default=30,
        le=36_500,
        description="How long the countries a principal acted from are remembered (days, 1-36500).",
    )
