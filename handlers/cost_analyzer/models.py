"""The event the cost analyzer accepts, as a validated model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from fleet_shared.validation_errors import shown_value


def _check_utc_year(moment: datetime) -> datetime:
    """A run time whose UTC time is a date Python has (years 1-9999): an offset can carry
    9999-12-31T23:59:59-14:00 past it, and keying the summary by that time would overflow after
    the report was written."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{shown_value(moment.isoformat())} is outside the years 1-9999 in UTC"
        ) from None
    return moment


class AnalyzeRequest(BaseModel):
    """`{"action": "analyze"}`: the daily analysis. The schedule adds `run`, the time its run was
    scheduled for, which every attempt of the run carries: the day's summary alert is sent once
    per run, even when Scheduler retries after a lost answer and Lambda sees a new request."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    action: Literal["analyze"]
    run: Annotated[AwareDatetime, AfterValidator(_check_utc_year)] | None = None
