"""Which days and hours a cluster schedule has at its daytime size, by the cluster calendar: the
one rule by which the scaler judges its scheduled runs and its working-hours floor
(handlers/eks_scaler/calendar_checks.py, predictive.py) and by which the scaling optimizer
classes its measured hours, so that the two cannot drift apart.

A day is a working day when it is one of the schedule's `days` or a forced working day of the
calendar, and not a holiday. A window past midnight belongs to the day it starts on
(`window_day`); its hours run from the first reading of the scale-up time to the first reading
of the scale-down time (`fleet_shared.wall_clocks`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fleet_shared.inventory import ClusterCalendar, ScalingSchedule
from fleet_shared.wall_clocks import clock_has_read, first_reading, read_from

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


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


def off_day_refusal(day: date, schedule: ScalingSchedule, calendar: ClusterCalendar) -> str | None:
    """Why the schedule does nothing on `day` (a date of `calendar`), or None when `day` is one
    of its `days` or a forced working day."""
    weekday = WEEKDAYS[day.weekday()]
    if weekday not in schedule.days and day not in calendar.working_days:
        return (
            f"{day} ({weekday}) is neither one of the schedule's days "
            f"({', '.join(schedule.days)}) nor a forced working day"
        )
    return None


def scale_up_day_refusal(
    day: date, schedule: ScalingSchedule, calendar: ClusterCalendar
) -> str | None:
    """Why the schedule does not scale up on `day` (a date of `calendar`), or None when it does:
    not on a holiday, nor on a day that is neither one of its `days` nor a forced working day."""
    if day in calendar.holidays:
        return f"{day} is a holiday in the cluster's calendar: no scheduled scale-up"
    return off_day_refusal(day, schedule, calendar)


def is_working_day(day: date, schedule: ScalingSchedule, calendar: ClusterCalendar) -> bool:
    """Whether the schedule scales up on `day` (a date of `calendar`): one of its `days` or a
    forced working day, and not a holiday."""
    return scale_up_day_refusal(day, schedule, calendar) is None


def in_working_hours(
    schedule: ScalingSchedule, now: datetime, *, calendar: ClusterCalendar | None
) -> bool:
    """Whether `now` is between the schedule's scale-up and scale-down on a day it scales up on
    (one of its days or a forced working day of `calendar`, not a holiday; without a calendar,
    its days). A window past midnight belongs to the day it starts on.

    The window lasts from the first time the clock reads its scale-up time to the first time it
    reads its scale-down time (`fleet_shared.wall_clocks`): on the night the clocks go back, the
    wall clock alone would open it again between the two readings of a scale-down time in the
    repeated hour, after the schedule's one run may have scaled down (and close it between two
    readings of a scale-up)."""
    calendar = schedule_calendar(schedule, calendar)
    today = now.astimezone(schedule.zone).date()
    if crosses_midnight(schedule):
        windows = ((today - timedelta(days=1), today), (today, today + timedelta(days=1)))
    else:
        windows = ((today, today),)
    return any(
        clock_has_read(schedule.zone, start_day, schedule.scale_up_time, now)
        and not clock_has_read(schedule.zone, end_day, schedule.scale_down_time, now)
        # The day of the window, as the scaler judges that window's scheduled runs.
        and is_working_day(
            window_day(
                schedule, calendar, first_reading(schedule.zone, start_day, schedule.scale_up_time)
            ),
            schedule,
            calendar,
        )
        for start_day, end_day in windows
    )


def working_hours_change(
    schedule: ScalingSchedule,
    start: datetime,
    end: datetime,
    *,
    calendar: ClusterCalendar | None,
) -> datetime | None:
    """The first instant after `start` and before `end` (aware) at which the schedule's working
    hours open or close (`in_working_hours`), or None when they do neither in between: a stretch
    that one class describes whole, as the scaling optimizer classes a measured hour by its
    start. They open and close only where the clock has read a scale-up or scale-down time from
    (`fleet_shared.wall_clocks.read_from`), and then only on a day the schedule acts on."""
    zone = schedule.zone
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    days = (end.astimezone(zone).date() - first_day).days + 1
    readings = sorted(
        reading
        for offset in range(days)
        for clock in (schedule.scale_up_time, schedule.scale_down_time)
        if start < (reading := read_from(zone, first_day + timedelta(days=offset), clock)) < end
    )
    before = timedelta(microseconds=1)
    for reading in readings:
        if in_working_hours(schedule, reading, calendar=calendar) != in_working_hours(
            schedule, reading - before, calendar=calendar
        ):
            return reading
    return None
