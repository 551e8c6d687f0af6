"""Properties of the schedule's local times against UTC instants, across daylight saving
(`handlers/eks_scaler/predictive.py`'s working hours, `calendar_checks.window_day`, and
`working_hours.working_hours_change`, by which performance_analyzer leaves out an hour): the
README's "`HH:MM` in that time zone", a window that "may cross midnight", judged by the day it
began.

The oracle is independent of the code under test: it walks UTC quarter hours (every zone drawn
here changes its offset, and every schedule time drawn is, on a quarter hour) and takes the first
instant at which the zone's wall clock reads the schedule's time or later. Working hours are from
that first reading of the scale-up time to that of the scale-down time, on the schedule's days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_shared.inventory import ClusterCalendar, ScalingSchedule
from fleet_shared.working_hours import WEEKDAYS, window_day, working_hours_change
from handlers.eks_scaler.predictive import in_working_hours

TIME_ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "UTC",
)
YEAR = 2026
QUARTER_HOUR = timedelta(minutes=15)
CLOCK_TIMES = st.builds(
    time,
    # Half of them in the small hours, when the clocks change.
    st.integers(min_value=0, max_value=3) | st.integers(min_value=0, max_value=23),
    st.sampled_from((0, 15, 30, 45)),
)


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """The UTC instants of YEAR at which `zone_name` changes its offset (none without DST)."""
    zone = ZoneInfo(zone_name)
    found = []
    moment = datetime(YEAR, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == YEAR:
        moment += QUARTER_HOUR
        if moment.astimezone(zone).utcoffset() != offset:
            offset = moment.astimezone(zone).utcoffset()
            found.append(moment)
    return tuple(found)


def clock_times_around(zone: ZoneInfo, instant: datetime) -> list[time]:
    """The quarter hours of the two hours of wall-clock time around `instant` in `zone`: those
    the clocks skip or repeat there among them."""
    start = (instant - timedelta(hours=1)).astimezone(zone).replace(tzinfo=None)
    return sorted({(start + QUARTER_HOUR * steps).time() for steps in range(9)})


def first_reading(zone: ZoneInfo, day: date, clock: time) -> datetime:
    """The first UTC quarter hour at which the wall clock of `zone` reads `clock` on `day` or
    later: walked, not computed, so a skipped time is read at the jump and a repeated one once."""
    # No zone is more than 14 hours ahead of UTC: the clock reads less than `clock` then.
    moment = datetime.combine(day, clock, tzinfo=UTC) - timedelta(hours=15)
    while True:
        local = moment.astimezone(zone)
        if (local.date(), local.time()) >= (day, clock):
            return moment
        moment += QUARTER_HOUR


@dataclass(frozen=True)
class ScheduledDay:
    """A schedule, a day, and the instant the clocks change near it (if the day was drawn for
    one)."""

    schedule: ScalingSchedule
    day: date
    change: datetime | None


@st.composite
def scheduled_days(draw: st.DrawFn) -> ScheduledDay:
    """A schedule (its two times different) and a day; half the time the day the clocks change
    or the day after it, with one of the schedule's times near the change."""
    zone_name = draw(st.sampled_from(TIME_ZONES))
    zone = ZoneInfo(zone_name)
    change = None
    near_change = CLOCK_TIMES
    if transitions(zone_name) and draw(st.booleans()):
        change = draw(st.sampled_from(transitions(zone_name)))
        day = change.astimezone(zone).date() - timedelta(days=draw(st.integers(0, 1)))
        near_change = st.sampled_from(clock_times_around(zone, change))
    else:
        day = draw(st.dates(min_value=date(YEAR, 1, 2), max_value=date(YEAR, 12, 30)))
    first, second = draw(st.sampled_from(((near_change, CLOCK_TIMES), (CLOCK_TIMES, near_change))))
    scale_up_time = draw(first)
    scale_down_time = draw(second.filter(lambda clock: clock != scale_up_time))
    days = draw(
        st.just(WEEKDAYS) | st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
    )
    schedule = ScalingSchedule(
        time_zone=zone_name,
        scale_up_time=scale_up_time,
        scale_down_time=scale_down_time,
        days=tuple(days),
    )
    return ScheduledDay(schedule, day, change)


def windows(schedule: ScalingSchedule, around: date) -> list[tuple[date, datetime, datetime]]:
    """The working-hours windows (day begun, first instant, first instant after) of the days
    from two before `around` to `around`."""
    zone = schedule.zone
    crosses = schedule.scale_down_time < schedule.scale_up_time
    found = []
    for back in range(3):
        day = around - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in schedule.days:
            continue
        end_day = day + timedelta(days=1) if crosses else day
        found.append(
            (
                day,
                first_reading(zone, day, schedule.scale_up_time),
                first_reading(zone, end_day, schedule.scale_down_time),
            )
        )
    return found


@settings(max_examples=10 * settings().max_examples)
@given(drawn=scheduled_days(), data=st.data())
def test_working_hours_run_from_the_first_reading_of_scale_up_to_that_of_scale_down(
    drawn: ScheduledDay, data: st.DataObject
) -> None:
    # GIVEN a schedule in a zone that may change its clocks, and a moment: from an hour before
    # to two after a change of the clocks, within two hours of the start or end of one of its
    # windows, or any of a local day (ten times the examples of the other properties: the
    # night of a change is a small part of the moments there are)
    schedule = drawn.schedule
    edges = [edge for _, *ends in windows(schedule, drawn.day + timedelta(days=1)) for edge in ends]
    near = data.draw(st.sampled_from(("change", "change", "edge", "day")))
    if near == "change" and drawn.change is not None:
        # On a quarter hour, or a second either side: where the clocks change, and the times.
        moment = drawn.change + timedelta(
            seconds=data.draw(st.integers(-4, 8)) * 900 + data.draw(st.sampled_from((0, -1, 1)))
        )
    elif near == "edge" and edges:
        moment = data.draw(st.sampled_from(edges)) + timedelta(
            seconds=data.draw(st.integers(-7200, 7200))
        )
    else:
        midnight = datetime.combine(drawn.day, time(), tzinfo=schedule.zone).astimezone(UTC)
        moment = midnight + timedelta(seconds=data.draw(st.integers(0, 86_399)))
    # WHEN the scaler asks whether the moment is in working hours
    inside = in_working_hours(schedule, moment, calendar=None)
    # THEN it is exactly when the moment is in the window of one of the schedule's days
    expected = any(
        start <= moment < end for _, start, end in windows(schedule, moment_day(schedule, moment))
    )
    assert inside == expected


def moment_day(schedule: ScalingSchedule, moment: datetime) -> date:
    """The day after the local day of `moment`: its windows and the two days' before cover it."""
    return moment.astimezone(schedule.zone).date() + timedelta(days=1)


@given(drawn=scheduled_days())
def test_each_scheduled_run_is_judged_by_the_day_its_window_began(drawn: ScheduledDay) -> None:
    # GIVEN a schedule and a day whose scale-up and scale-down run (Scheduler runs a time the
    # clocks skip at no instant, and a repeated one at its first)
    schedule, day = drawn.schedule, drawn.day
    zone = schedule.zone
    calendar = ClusterCalendar(time_zone=schedule.time_zone)
    crosses = schedule.scale_down_time < schedule.scale_up_time
    scale_up_run = datetime.combine(day, schedule.scale_up_time, tzinfo=zone)
    scale_down_run = datetime.combine(day, schedule.scale_down_time, tzinfo=zone)
    # WHEN the scaler takes the day of each run
    # THEN a scale-up belongs to its own day; a scale-down to its own day, or to the day before
    # for a window past midnight
    if scale_up_run.astimezone(UTC).astimezone(zone).time() == schedule.scale_up_time:
        assert window_day(schedule, calendar, scale_up_run.astimezone(UTC)) == day
    if scale_down_run.astimezone(UTC).astimezone(zone).time() == schedule.scale_down_time:
        began = day - timedelta(days=1) if crosses else day
        assert window_day(schedule, calendar, scale_down_run.astimezone(UTC)) == began


@given(drawn=scheduled_days(), data=st.data())
def test_an_hour_is_split_where_working_hours_first_open_or_close_within_it(
    drawn: ScheduledDay, data: st.DataObject
) -> None:
    # GIVEN a schedule in a zone that may change its clocks, and an hour starting up to an hour
    # before the start or end of one of its windows or a change of the clocks (without either,
    # midnight), on a quarter hour or a second off one
    schedule = drawn.schedule
    edges = [edge for _, *ends in windows(schedule, drawn.day + timedelta(days=1)) for edge in ends]
    anchors = [*edges, *([drawn.change] if drawn.change is not None else [])] or [
        datetime.combine(drawn.day, time(), tzinfo=schedule.zone).astimezone(UTC)
    ]
    start = data.draw(st.sampled_from(anchors)) - timedelta(
        seconds=data.draw(st.integers(0, 4)) * 900 + data.draw(st.sampled_from((0, -1, 1)))
    )
    end = start + timedelta(hours=1)
    # WHEN the analyzer asks where the schedule's working hours open or close within the hour
    change = working_hours_change(schedule, start, end, calendar=None)
    # THEN it is the first start or end of a window strictly within the hour at which the
    # moment goes in or out of working hours (a window the clocks skip whole opens nothing)
    around = windows(schedule, moment_day(schedule, start))

    def inside(moment: datetime) -> bool:
        return any(first <= moment < after for _, first, after in around)

    before = timedelta(microseconds=1)
    flips = sorted(
        edge
        for _, *ends in around
        for edge in ends
        if start < edge < end and inside(edge) != inside(edge - before)
    )
    assert change == (flips[0] if flips else None)
