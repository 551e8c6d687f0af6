"""Property across the program and the scaler: the cluster schedules' crons
(`components.schedule_payloads.action_days`) fire on every day the scaler would act, so no
scheduled change is missed. The scaler judges a run by the day its window began
(`handlers/eks_scaler/calendar_checks.py`): a scale-up on the schedule's days and forced working
days but not on holidays, a scale-down on the schedule's days and forced working days; a window
past midnight ends, and scales down, the day after."""

from __future__ import annotations

from datetime import date, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from components.schedule_payloads import action_days
from components.settings import WEEKDAYS, CalendarSettings, ScheduleSettings
from fleet_shared.inventory import ClusterCalendar, ScalingSchedule
from handlers.eks_scaler.calendar_checks import schedule_day_refusal
from handlers.eks_scaler.models import Action

FIRST_DAY = date(2026, 6, 1)
SPAN_DAYS = 28
DAYS_IN_SPAN = st.integers(min_value=0, max_value=SPAN_DAYS - 1).map(
    lambda offset: FIRST_DAY + timedelta(days=offset)
)
CLOCK_TEXT = st.builds(
    lambda hour, minute: f"{hour:02d}:{minute:02d}",
    st.integers(min_value=0, max_value=23),
    st.sampled_from((0, 15, 30, 45)),
)


@st.composite
def schedules_with_calendars(draw: st.DrawFn) -> tuple[ScheduleSettings, CalendarSettings]:
    scale_up_time = draw(CLOCK_TEXT)
    schedule = ScheduleSettings(
        time_zone="Europe/Berlin",
        scale_up_time=scale_up_time,
        scale_down_time=draw(CLOCK_TEXT.filter(lambda clock: clock != scale_up_time)),
        days=draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)),
        off_hours_desired={"web": 1},
    )
    working_days = draw(st.lists(DAYS_IN_SPAN, max_size=3, unique=True))
    holidays = draw(
        st.lists(DAYS_IN_SPAN.filter(lambda day: day not in working_days), max_size=3, unique=True)
    )
    return schedule, CalendarSettings(holidays=holidays, working_days=working_days)


@given(drawn=schedules_with_calendars())
def test_the_crons_fire_on_every_day_the_scaler_acts(
    drawn: tuple[ScheduleSettings, CalendarSettings],
) -> None:
    # GIVEN a cluster schedule with forced working days and holidays
    settings, calendar_settings = drawn
    schedule = ScalingSchedule(
        time_zone=settings.time_zone,
        scale_up_time=time.fromisoformat(settings.scale_up_time),
        scale_down_time=time.fromisoformat(settings.scale_down_time),
        days=tuple(settings.days),
        off_hours_desired=settings.off_hours_desired,
    )
    calendar = ClusterCalendar(
        time_zone=settings.time_zone,
        holidays=tuple(calendar_settings.holidays),
        working_days=tuple(calendar_settings.working_days),
    )
    crosses = settings.scale_down_time < settings.scale_up_time
    for action in (Action.SCALE_UP, Action.SCALE_DOWN):
        fires_on = action_days(action.value, settings, calendar_settings)
        for offset in range(SPAN_DAYS):
            began = FIRST_DAY + timedelta(days=offset)
            # WHEN the scaler would act on the window that began that day
            if schedule_day_refusal(action, began, schedule, calendar) is not None:
                continue
            # THEN the action's cron fires on the day its run belongs on
            runs_on = (
                began + timedelta(days=1) if action is Action.SCALE_DOWN and crosses else began
            )
            assert WEEKDAYS[runs_on.weekday()] in fires_on, (action, began, runs_on, fires_on)
