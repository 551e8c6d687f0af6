"""A schedule's `run` as a function accepts it: no later than now, no more than a day old.

EventBridge Scheduler puts the time a run was scheduled for (`<aws.scheduler.scheduled-time>`)
in every attempt of that run, so a function that names what one run does by it (backup_scheduler's
day, report_fetcher's claim, demand_forecaster's requests to the scaler) does it once whatever the
attempt. The attempts of one run come
within hours (Scheduler's retries within an hour, Lambda's within minutes), so a `run` more than
RUN_MAX_AGE old is not one of them, and one later than now was not sent by Scheduler: both are
refused naming the field, before any work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fleet_shared.exceptions import EventValidationError
from fleet_shared.timestamps import iso_z

RUN_MAX_AGE = timedelta(days=1)
"""The oldest `run` accepted: a run's attempts come within hours; a function's record of what a
run did needs to outlive only this much."""
RUN_CLOCK_SKEW = timedelta(minutes=5)
"""How far `run` may be ahead of the clock: Scheduler fires at or after the scheduled time."""


def accepted_run(run: datetime, now: datetime) -> datetime:
    """`run` when it is no later than `now` (give or take RUN_CLOCK_SKEW) and no more than
    RUN_MAX_AGE before it; EventValidationError naming `run` otherwise."""
    if run > now + RUN_CLOCK_SKEW:
        raise EventValidationError("run", f"{iso_z(run)} is later than now ({iso_z(now)})")
    if run < now - RUN_MAX_AGE:
        raise EventValidationError(
            "run", f"{iso_z(run)} is more than a day before now ({iso_z(now)})"
        )
    return run
