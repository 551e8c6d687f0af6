"""When a day's EventBridge Scheduler schedules fire, computed from the offline plan.

Understands the expressions the program writes: `cron(minutes hours day-of-month month
day-of-week year)` with numbers, `*`, `?`, lists, ranges and day names, and `rate(N unit)`.
Rate schedules can be thinned to a minimum spacing so that a day can be replayed in a minute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fleet_shared.timestamps import iso_z
from fleetctl.exceptions import PlanError
from fleetctl.mocked_program import ProgramRun

SCHEDULE = "aws:scheduler/schedule:Schedule"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


@dataclass(frozen=True)
class PlannedSchedule:
    """One schedule of the plan: its expression, time zone, target function and payload."""

    name: str
    expression: str
    time_zone: str
    function: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Firing:
    at: datetime
    schedule: PlannedSchedule

    def payload(self) -> dict[str, Any]:
        """The input as Scheduler delivers it, with its context attributes filled in."""
        return scheduler_input(
            self.schedule.payload,
            scheduled_at=self.at,
            execution_id=f"{self.schedule.name}-{self.at:%Y%m%dT%H%M%z}",
            attempt=1,
        )


def scheduler_input(
    payload: dict[str, Any], *, scheduled_at: datetime, execution_id: str, attempt: int
) -> dict[str, Any]:
    """`payload` as EventBridge Scheduler delivers one attempt of a run: its context attributes
    filled in (the scheduled time is the run's, the execution id the attempt's)."""
    values = {
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.scheduled-time>": iso_z(scheduled_at),
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    text = json.dumps(payload)
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    result: dict[str, Any] = json.loads(text)
    return result


def _expand(field: str, low: int, high: int, names: tuple[str, ...] = ()) -> set[int]:
    """Values of one cron field; day names count from 1 (SUN) as in EventBridge."""
    if field in ("*", "?"):
        return set(range(low, high + 1))
    values: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        else:
            bounds = [_value(bound, names) for bound in span.split("-")]
            first, last = bounds[0], bounds[-1]
            if step_text and len(bounds) == 1:
                last = high
        values.update(range(first, last + 1, step))
    return values


def _value(text: str, names: tuple[str, ...]) -> int:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + 1
    raise PlanError(f"cron field value {text!r} is not understood")


# EventBridge numbers days SUN=1 .. SAT=7.
_EVENTBRIDGE_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def cron_times(expression: str, day: date) -> list[time]:
    """The local times at which `cron(...)` fires on `day` (empty if it does not run that day)."""
    match = _CRON.match(expression)
    if not match:
        raise PlanError(f"not a cron expression: {expression}")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise PlanError(f"cron needs six fields: {expression}")
    minutes, hours, day_of_month, month, day_of_week, _year = fields
    if day.month not in _expand(month, 1, 12):
        return []
    if day_of_month != "?" and day.day not in _expand(day_of_month, 1, 31):
        return []
    if day_of_week != "?":
        weekday = _EVENTBRIDGE_DAYS.index(DAY_NAMES[day.weekday()]) + 1
        if weekday not in _expand(day_of_week, 1, 7, _EVENTBRIDGE_DAYS):
            return []
    return sorted(
        time(hour, minute) for hour in _expand(hours, 0, 23) for minute in _expand(minutes, 0, 59)
    )


def rate_minutes(expression: str) -> int:
    match = _RATE.match(expression)
    if not match:
        raise PlanError(f"not a rate expression: {expression}")
    return int(match.group(1)) * _UNIT_MINUTES[match.group(2).rstrip("s")]


def firings_on(
    schedules: list[PlannedSchedule],
    day: date,
    zone: ZoneInfo,
    min_rate_minutes: int = 0,
    cadence_windows: Mapping[str, tuple[datetime, datetime]] | None = None,
) -> list[Firing]:
    """Every firing during `day` (midnight to midnight in `zone`), in time order.

    Rate schedules start at the day's first minute and are thinned to `min_rate_minutes`, except
    within a function's window of `cadence_windows` (start inclusive, end exclusive), where
    that function's rate schedules fire at their own cadence.
    """
    start = datetime.combine(day, time(0, 0), zone)
    end = start + timedelta(days=1)
    windows = cadence_windows or {}
    firings: list[Firing] = []
    for schedule in schedules:
        if schedule.expression.startswith("rate("):
            own_step = timedelta(minutes=rate_minutes(schedule.expression))
            thinned_step = max(own_step, timedelta(minutes=min_rate_minutes))
            window_start, window_end = windows.get(schedule.function, (end, end))
            moment = start
            while moment < end:
                on_thinned_grid = (moment - start) % thinned_step == timedelta(0)
                if on_thinned_grid or window_start <= moment < window_end:
                    firings.append(Firing(moment, schedule))
                moment += own_step
            continue
        local_zone = ZoneInfo(schedule.time_zone)
        # A schedule in another zone can fire on its local yesterday or tomorrow within our day.
        for offset in (-1, 0, 1):
            local_day = day + timedelta(days=offset)
            for moment in cron_times(schedule.expression, local_day):
                fired = datetime.combine(local_day, moment, local_zone).astimezone(zone)
                if start <= fired < end:
                    firings.append(Firing(fired, schedule))
    return sorted(firings, key=lambda firing: (firing.at, firing.schedule.name))


def planned_schedules(run: ProgramRun) -> list[PlannedSchedule]:
    """The plan's schedules with their target function resolved through the function's ARN."""
    functions = {
        resource.outputs.get("arn"): resource.inputs.get("handler", "")
        for resource in run.of_type(LAMBDA_FUNCTION)
    }
    schedules = []
    for resource in run.of_type(SCHEDULE):
        target = resource.inputs.get("target") or {}
        handler = functions.get(target.get("arn"))
        if not handler:
            raise PlanError(f"schedule {resource.name} targets no fleet function")
        schedules.append(
            PlannedSchedule(
                name=resource.name,
                expression=resource.inputs["scheduleExpression"],
                time_zone=resource.inputs.get("scheduleExpressionTimezone", "UTC"),
                function=handler.split(".")[1],
                payload=json.loads(target.get("input") or "{}"),
            )
        )
    return sorted(schedules, key=lambda schedule: schedule.name)
