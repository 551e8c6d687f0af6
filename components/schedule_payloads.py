"""What each cluster schedule sends to the scaler, and when (no pulumi: the local demo reuses it).

The scale-down names each node group of `off_hours_desired` with its off-hours desired size and
nothing else: the stack file owns min_size and max_size, the scaler changes desiredSize only.
The scale-up names the same groups without sizes, because the scaler restores the desired size
it saved before the scale-down (or, with none waiting, sets the stack file's desired size).
`request_id` names the run: `schedule-<action>-` and the run's scheduled time, which EventBridge
Scheduler fills in and keeps for every attempt of the run, so the scaler answers a retry of a run
as its repeat. Not the execution id: Scheduler assigns that "for each attempted invocation of a
target" (User Guide, "Adding context attributes"), so with it a retry after a lost Invoke answer
is a new request and scales again.
`scheduled: true` tells the scaler to apply the calendar: holidays, working days and excluded
node groups (a maintenance window blocks every change, scheduled or not); `run`, the run's
scheduled time, is the day it judges by, so an attempt Lambda delivers after midnight (a
throttled or retried event) is still the run of its own day.

Schedules fire on the schedule's `days`; when the cluster's calendar forces a working day on a
weekday outside them, they fire every day instead and the scaler skips the days that are neither
schedule days nor forced working days (EventBridge Scheduler cron has no exception dates).
A window that crosses midnight (`scale_down_time` before `scale_up_time`) ends the morning after
each of those days, so its scale-down fires on the day after each (MON-FRI: TUE-SAT); the scaler
judges that run by the day its window began (handlers/eks_scaler/calendar_checks.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from catalog.model import SCHEDULED_TIME
from components.settings import WEEKDAYS, CalendarSettings, ClusterSettings, ScheduleSettings

Payload = dict[str, Any]
PayloadBuilder = Callable[[str, str, ClusterSettings, ScheduleSettings], Payload]


def run_request_id(action: str) -> str:
    """The `request_id` of every attempt of one run of the `action` schedule (the scaler's key
    adds the account, region and cluster; a cluster's two times differ, and so do its runs)."""
    return f"schedule-{action}-{SCHEDULED_TIME}"


def cluster_cron(clock_time: str, days: Sequence[str]) -> str:
    """`cron(MM HH ? * MON,TUE *)`: the schedule's time on its days, in its own time zone."""
    hours, minutes = clock_time.split(":")
    return f"cron({int(minutes)} {int(hours)} ? * {','.join(days)} *)"


def schedule_days(schedule: ScheduleSettings, calendar: CalendarSettings) -> Sequence[str]:
    """The days the cron fires: the schedule's, or every day when a forced working day falls on
    a weekday outside them."""
    outside = {WEEKDAYS[day.weekday()] for day in calendar.working_days} - set(schedule.days)
    return WEEKDAYS if outside else schedule.days


def crosses_midnight(schedule: ScheduleSettings) -> bool:
    """Whether the window ends the day after it begins: the scale-down comes before the scale-up
    on the clock (`HH:MM` strings compare as times; settings refuse equal times)."""
    return schedule.scale_down_time < schedule.scale_up_time


def action_days(
    action: str, schedule: ScheduleSettings, calendar: CalendarSettings
) -> Sequence[str]:
    """The days the cron of `action` fires: `schedule_days`, except that the scale-down of a
    window crossing midnight fires on the day after each of them (every day stays every day)."""
    days = schedule_days(schedule, calendar)
    if action != "scale_down" or not crosses_midnight(schedule):
        return days
    following = {WEEKDAYS[(WEEKDAYS.index(day) + 1) % len(WEEKDAYS)] for day in days}
    return [day for day in WEEKDAYS if day in following]


# Where clocks go forward at all, they do so at least once a year.
SKIPPED_TIME_LOOKAHEAD_DAYS = 366


def skipped_run_day(
    clock_time: str, time_zone: str, days: Sequence[str], start: date
) -> date | None:
    """The first day of the year from `start` on which a cron at `clock_time` on `days` fires at
    a time that does not exist in `time_zone` (the clocks go forward over it), or None.
    EventBridge Scheduler skips such a run: a cluster would stay scaled down, or up, that day."""
    zone = ZoneInfo(time_zone)
    at = time.fromisoformat(clock_time)
    for offset in range(SKIPPED_TIME_LOOKAHEAD_DAYS):
        day = start + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        local = datetime.combine(day, at, tzinfo=zone)
        # A time that does not exist comes back from UTC as another one.
        if local.astimezone(UTC).astimezone(zone).time() != at:
            return day
    return None


def scale_up_payload(
    account_id: str, region: str, cluster: ClusterSettings, schedule: ScheduleSettings
) -> Payload:
    return {
        "action": "scale_up",
        "account_id": account_id,
        "region": region,
        "cluster": cluster.name,
        "nodegroups": [{"name": group} for group in schedule.off_hours_desired],
        "scheduled": True,
        "request_id": run_request_id("scale_up"),
        "run": SCHEDULED_TIME,
    }


def scale_down_payload(
    account_id: str, region: str, cluster: ClusterSettings, schedule: ScheduleSettings
) -> Payload:
    return {
        "action": "scale_down",
        "account_id": account_id,
        "region": region,
        "cluster": cluster.name,
        "nodegroups": [
            {"name": group, "desired_size": size}
            for group, size in schedule.off_hours_desired.items()
        ],
        "scheduled": True,
        "request_id": run_request_id("scale_down"),
        "run": SCHEDULED_TIME,
    }


PAYLOAD_BUILDERS: dict[str, PayloadBuilder] = {
    "scale_up": scale_up_payload,
    "scale_down": scale_down_payload,
}


def cluster_schedule_payload(
    action: str, account_id: str, region: str, cluster: ClusterSettings
) -> Payload:
    """The payload of `action` for a scheduled cluster; a clear error for unknown actions."""
    if cluster.schedule is None:
        raise ValueError(f"cluster {cluster.name!r} has no schedule")
    try:
        builder = PAYLOAD_BUILDERS[action]
    except KeyError:
        known = ", ".join(sorted(PAYLOAD_BUILDERS))
        raise ValueError(f"unknown cluster schedule action {action!r} (known: {known})") from None
    return builder(account_id, region, cluster, cluster.schedule)
