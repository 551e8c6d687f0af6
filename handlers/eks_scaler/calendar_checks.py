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

`schedule_day_refusal` is that day rule alone, from `fleet_shared.working_hours`, whose
`is_working_day` and `in_working_hours` the predictive path (predictive.py) and the scaling
optimizer use, so the working-hours floor, the schedule's size of the hour and the optimizer's
working hours follow the same calendar as the schedule.
"""

from __future__ import annotations

from datetime import date, datetime

from fleet_shared.inventory import Cluster, ClusterCalendar, ScalingSchedule
from fleet_shared.working_hours import (
    off_day_refusal,
    scale_up_day_refusal,
    schedule_calendar,
    window_day,
)
from handlers.eks_scaler.models import Action, ScalerEvent


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


def schedule_day_refusal(
    action: Action, day: date, schedule: ScalingSchedule, calendar: ClusterCalendar
) -> str | None:
    """Why the schedule does not `action` on `day` (a date of `calendar`), or None when it does:
    no scale-up on a holiday, nothing on a day that is neither one of the schedule's `days` nor
    a forced working day (`fleet_shared.working_hours`, the optimizer's rule too)."""
    if action is Action.SCALE_UP:
        return scale_up_day_refusal(day, schedule, calendar)
    return off_day_refusal(day, schedule, calendar)
