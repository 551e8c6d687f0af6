"""The event the cost analyzer accepts, as a validated model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from fleet_shared.utc_times import UtcTime


class AnalyzeRequest(BaseModel):
    """`{"action": "analyze"}`: the daily analysis. The schedule adds `run`, the time its run was
    scheduled for, which every attempt of the run carries: the day's summary alert is sent once
    per run, even when Scheduler retries after a lost answer and Lambda sees a new request."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["analyze"]
    run: UtcTime | None = None
