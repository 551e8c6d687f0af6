"""The cluster calendar's say over one node group change: a pure function of the event, the
cluster's inventory entry and the time (the inventory merges the stack-wide and the cluster's
own calendar, in the cluster schedule's time zone).

- A maintenance window blocks every change, scheduled or requested.
- A scheduled change (`scheduled: true`, sent by the cluster schedules only) skips the node groups
  the schedule excludes; on a holiday the scale-up is skipped; on a day that is neither one of
  the schedule's `days` nor a forced working day both are skipped (the schedules fire daily when
  a forced working day falls outside `days`, see components/schedule_payloads.py).
"""

from __future__ import annotations

from datetime import datetime

from fleet_shared.inventory import Cluster, ClusterCalendar
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
    if calendar is None:
        calendar = ClusterCalendar(time_zone=schedule.time_zone)
    today = calendar.local_time(now).date()
    if event.action is Action.SCALE_UP and today in calendar.holidays:
        return f"{today} is a holiday in the cluster's calendar: no scheduled scale-up"
    weekday = WEEKDAYS[today.weekday()]
    if weekday not in schedule.days and today not in calendar.working_days:
        return (
            f"{today} ({weekday}) is neither one of the schedule's days "
            f"({', '.join(schedule.days)}) nor a forced working day"
        )
    return None
