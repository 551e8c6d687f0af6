"""The events the backup scheduler accepts, as validated models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StrictBool


def _in_utc(moment: datetime) -> datetime:
    """`moment` in UTC, as the run's day is read; a time whose UTC falls outside the calendar
    (year 1 at +14:00, year 9999 at -14:00) is refused naming the field, not left to crash the
    invocation with an OverflowError."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is outside the calendar once in UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class BackupRequest(BaseModel):
    """The schedule's payload; `dry_run` reports what would be created and deleted. The schedule
    adds `run`, the time its run was scheduled for, which every attempt of the run carries: the
    run is one backup day even when Scheduler retries it after UTC midnight."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    action: Literal["backup"]
    dry_run: StrictBool = False
    run: UtcDatetime | None = None
