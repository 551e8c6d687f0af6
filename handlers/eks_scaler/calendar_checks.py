"""The cluster calendar's say over one node group change: a pure function of the event, the
cluster's inventory entry and the time (the inventory merges the stack-wide and the cluster's
own calendar, in the cluster schedule's time zone).

- A maintenance window blocks every change, scheduled or requested.
- A scheduled change (`scheduled: true`, sent by the cluster schedules only) skips the node groups
  the schedule excludes; on a holiday the scale-up is skipped; on a day that is neither one of
  the schedule's `days` nor a forced working day both are skipped (the schedules fire daily when
  a forced working day falls outside `days`, see components/schedule_payloads.py). The day is
  the one the run's window began on (`window_day`), by the run's scheduled time (`run`; the
  clock without one): a window past midnight belongs to the day it starts on, so its morning
  scale-down is judged by the day before, and a run delivered after midnight by its own day.

`schedule_day_refusal` is that day rule alone; `is_working_day` (a day the schedule scales up
on) is what the predictive path (predictive.py) counts as a working day, so the working-hours
floor and the schedule's size of the hour follow the same calendar as the schedule.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fleet_shared.inventory import Cluster, ClusterCalendar, ScalingSchedule
from handlers.eks_scaler.models import Action, ScalerEvent

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def calendar_refusal(
    event: ScalerEvent, node_group: str, cluster: Cluster | None, now: datetime
) -> str | None:
    """Why the calendar forbids this change of `node_group` at `now`, or None when it allows it."""
    if cluster is None:
        return None
    calendar = cluster.calendar
    if calendar is not None:
        window = calendar.maintenance_window_at(now)
        if window is not None:
            return (
                f"maintenance window {window.start:%Y-%m-%dT%H:%M} to {window.end:%Y-%m-%dT%H:%M} "
                f"({calendar.time_zone}): {window.reason}; nothing changes until it ends"
            )
    schedule = cluster.schedule
    if not event.scheduled or schedule is None:
        return None
    if node_group in schedule.exclude_node_groups:
        return (
            "the node group is excluded from the cluster's schedule (schedule.exclude_node_groups)"
        )
    calendar = schedule_calendar(schedule, calendar)
    # The run's own time: an attempt Lambda delivers late (a throttled or retried event) past
    # midnight is still the run of the day it was scheduled on.
    run = event.run if event.run is not None else now
    day = window_day(schedule, calendar, run)
    refusal = schedule_day_refusal(event.action, day, schedule, calendar)
    if refusal is not None and day != calendar.local_time(run).date():
        refusal = f"this {event.action} belongs to the window that began on {day}: {refusal}"
    return refusal


def crosses_midnight(schedule: ScalingSchedule) -> bool:
    """Whether the schedule's window ends the day after it begins (scale-down before scale-up)."""
    return schedule.scale_down_time < schedule.scale_up_time


def window_day(schedule: ScalingSchedule, calendar: ClusterCalendar, moment: datetime) -> date:
    """The day whose window a schedule run (or any time) at `moment` (aware) belongs to, as a
    date of `calendar`: the day of `moment` in the schedule's time zone, except before the
    scale-up time of a window past midnight, which belongs to the window that began the day
    before (a 06:00 scale-down closes the previous evening's window)."""
    local = moment.astimezone(schedule.zone)
    if crosses_midnight(schedule) and local.time().replace(tzinfo=None) < schedule.scale_up_time:
        local -= timedelta(days=1)
    return calendar.local_time(local).date()


def schedule_calendar(
    schedule: ScalingSchedule, calendar: ClusterCalendar | None
) -> ClusterCalendar:
    """The calendar `schedule` follows: the cluster's, else one without exception dates in the
    schedule's time zone."""
    return calendar if calendar is not None else ClusterCalendar(time_zone=schedule.time_zone)


def schedule_day_refusal(
    action: Action, day: date, schedule: ScalingSchedule, calendar: ClusterCalendar
) -> str | None:
    """Why the schedule does not `action` on `day` (a date of `calendar`), or None when it does:
    no scale-up on a holiday, nothing on a day that is neither one of the schedule's `days` nor
    a forced working day."""
    if action is Action.SCALE_UP and day in calendar.holidays:
        return f"{day} is a holiday in the cluster's calendar: no scheduled scale-up"
    weekday = WEEKDAYS[day.weekday()]
    if weekday not in schedule.days and day not in calendar.working_days:
        return (
            f"{day} ({weekday}) is neither one of the schedule's days "
            f"({', '.join(schedule.days)}) nor a forced working day"
        )
    return None


def is_working_day(day: date, schedule: ScalingSchedule, calendar: ClusterCalendar) -> bool:
    """Whether the schedule scales up on `day` (a date of `calendar`): one of its `days` or a
    forced working day, and not a holiday."""
    return schedule_day_refusal(Action.SCALE_UP, day, schedule, calendar) is None
