"""The events the backup scheduler accepts, as validated models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool

from fleet_shared.utc_times import UtcTime


class BackupRequest(BaseModel):
    """The schedule's payload; `dry_run` reports what would be created and deleted. The schedule
    adds `run`, the time its run was scheduled for, which every attempt of the run carries: the
    run is one backup day even when Scheduler retries it after UTC midnight."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    action: Literal["backup"]
    dry_run: StrictBool = False
    run: UtcTime | None = None
