"""The backup scheduler's environment model (variables are documented in app.py)."""

from __future__ import annotations

from typing import Literal

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import PositiveInt

Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WEEKDAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class BackupEnvironment(FunctionEnvironment):
    """What the backup scheduler needs; retention and the weekly day have defaults."""

    state_table_name: str
    member_role_name: str
    data_bucket_name: str
    backup_daily_retention_days: PositiveInt = 7
    backup_weekly_retention_days: PositiveInt = 35
    backup_weekly_day: Weekday = "SUN"
    backup_max_workers: PositiveInt = 4
