"""The event report_fetcher accepts, as a validated model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from fleet_shared.utc_times import UtcTime


class FetchRequest(BaseModel):
    """`{"action": "fetch", "refresh"?, "run"?}`; `refresh` ignores the source cache for this run.
    The schedule adds `run`, the time its run was scheduled for, which every attempt of the run
    carries: the run is fetched once, however many times Scheduler delivers it. A request without
    `run` (one started by hand) fetches every time."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["fetch"]
    refresh: bool = False
    run: UtcTime | None = None
