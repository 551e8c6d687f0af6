"""The demo replays a day's schedules at the times EventBridge Scheduler would fire them."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleetctl.exceptions import PlanError
from fleetctl.schedule_replay import PlannedSchedule, cron_times, firings_on, rate_minutes

MONDAY = date(2026, 11, 23)
SATURDAY = date(2026, 11, 28)
IST = ZoneInfo("Asia/Kolkata")


def _schedule(name: str, expression: str, zone: str = "Asia/Kolkata") -> PlannedSchedule:
    return PlannedSchedule(name, expression, zone, "eks_scaler", {"action": name})


def test_weekday_cron_fires_on_working_days_only():
    expression = "cron(30 18 ? * MON,TUE,WED,THU,FRI *)"
    assert cron_times(expression, MONDAY) == [time(18, 30)]
    assert cron_times(expression, SATURDAY) == []


def test_day_ranges_lists_and_steps_are_understood():
    assert cron_times("cron(0 2 * * ? *)", SATURDAY) == [time(2, 0)]
    assert cron_times("cron(0/20 9 ? * MON-FRI *)", MONDAY) == [
        time(9, 0),
        time(9, 20),
        time(9, 40),
    ]
    assert cron_times("cron(0 9,17 ? * SUN *)", MONDAY) == []


def test_rate_expressions_convert_to_minutes():
    assert rate_minutes("rate(5 minutes)") == 5
    assert rate_minutes("rate(1 hour)") == 60
    assert rate_minutes("rate(6 hours)") == 360
    with pytest.raises(PlanError):
        rate_minutes("every 5 minutes")


def test_firings_are_ordered_and_rates_are_thinned():
    firings = firings_on(
        [_schedule("health", "rate(5 minutes)"), _schedule("up", "cron(0 8 ? * MON-FRI *)")],
        MONDAY,
        IST,
        min_rate_minutes=60,
    )
    assert [f.at for f in firings] == sorted(f.at for f in firings)
    assert sum(f.schedule.name == "health" for f in firings) == 24
    assert [f.at.time() for f in firings if f.schedule.name == "up"] == [time(8, 0)]


def test_a_schedule_in_another_time_zone_is_placed_in_the_replay_zone():
    # 07:00 in Dublin (GMT in November) is 12:30 in India
    firings = firings_on(
        [_schedule("eu-up", "cron(0 7 ? * MON-FRI *)", "Europe/Dublin")], MONDAY, IST
    )
    assert [f.at.time() for f in firings] == [time(12, 30)]


def test_scheduler_context_attributes_are_filled_in_per_firing():
    schedule = PlannedSchedule(
        "up",
        "cron(0 8 ? * MON-FRI *)",
        "Asia/Kolkata",
        "eks_scaler",
        {"action": "scale_up", "request_id": "<aws.scheduler.execution-id>"},
    )
    (firing,) = firings_on([schedule], MONDAY, IST)
    (next_day,) = firings_on([schedule], date(2026, 11, 24), IST)
    assert firing.payload()["request_id"] == "up-20261123T0800+0530"
    assert firing.payload()["request_id"] != next_day.payload()["request_id"]


def test_within_a_cadence_window_a_function_fires_at_its_own_rate():
    # GIVEN a 5-minute health schedule thinned to hourly, with a window of 13:45-16:15 for it
    window = (
        datetime.combine(MONDAY, time(13, 45), IST),
        datetime.combine(MONDAY, time(16, 15), IST),
    )
    schedules = [_schedule("health", "rate(5 minutes)"), _schedule("spot", "rate(15 minutes)")]
    schedules[0] = PlannedSchedule("health", "rate(5 minutes)", "UTC", "health_monitor", {})
    # WHEN the day's firings are computed
    firings = firings_on(
        schedules, MONDAY, IST, min_rate_minutes=60, cadence_windows={"health_monitor": window}
    )
    # THEN the health checks are hourly outside the window and every 5 minutes inside it
    health = [firing.at.time() for firing in firings if firing.schedule.name == "health"]
    assert time(13, 0) in health and time(13, 40) not in health
    assert [moment for moment in health if time(13, 45) <= moment < time(16, 15)] == [
        (datetime.combine(MONDAY, time(13, 45)) + timedelta(minutes=5 * step)).time()
        for step in range(30)
    ]
    assert time(16, 15) not in health and time(17, 0) in health
    assert len(health) == 24 - 3 + 30
    # AND other functions stay thinned
    assert sum(firing.schedule.name == "spot" for firing in firings) == 24
