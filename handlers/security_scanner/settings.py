"""The scanner's environment model (variables are documented in app.py)."""

from __future__ import annotations

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, PositiveInt


class ScannerEnvironment(FunctionEnvironment):
    """What the security scanner needs; SCAN_QUEUE_URL only when it has to fan out."""

    state_table_name: str
    member_role_name: str
    data_bucket_name: str
    alert_topic_arn: Arn
    scan_queue_url: str | None = None
    scan_max_workers: PositiveInt = 4
    scan_max_targets_per_invocation: PositiveInt = 10
    risk_country_window_days: PositiveInt = 30
