"""When the cluster schedules fire: a window past midnight scales down the morning after each of
its days; daytime windows keep the crons the stack files have always planned."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

SCHEDULE = "aws:scheduler/schedule:Schedule"
STACK = "overnight"
WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI"]


def _crons(run: ProgramRun) -> dict[tuple[str, str], tuple[str, str]]:
    """(cluster, action) -> (expression, time zone) of every cluster schedule in the plan."""
    crons = {}
    for schedule in run.of_type(SCHEDULE):
        payload = json.loads(schedule.inputs["target"]["input"])
        if "cluster" in payload:
            crons[(payload["cluster"], payload["action"])] = (
                schedule.inputs["scheduleExpression"],
                schedule.inputs["scheduleExpressionTimezone"],
            )
    return crons


def test_daytime_windows_keep_the_crons_the_stack_files_plan(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the dev and prod stack files, whose cluster windows all end the day they begin
    # WHEN the program runs under mocks
    # THEN every cluster schedule fires exactly as before overnight windows were handled
    assert _crons(program_runs["dev"]) == {
        ("dev-apps", "scale_up"): ("cron(0 8 ? * MON,TUE,WED,THU,FRI *)", "Asia/Kolkata"),
        ("dev-apps", "scale_down"): ("cron(0 18 ? * MON,TUE,WED,THU,FRI *)", "Asia/Kolkata"),
    }
    assert _crons(program_runs["prod"]) == {
        ("payments-in", "scale_up"): ("cron(30 7 ? * MON,TUE,WED,THU,FRI,SAT *)", "Asia/Kolkata"),
        ("payments-in", "scale_down"): (
            "cron(0 22 ? * MON,TUE,WED,THU,FRI,SAT *)",
            "Asia/Kolkata",
        ),
        ("payments-eu", "scale_up"): ("cron(0 7 ? * MON,TUE,WED,THU,FRI *)", "Europe/Dublin"),
        ("payments-eu", "scale_down"): ("cron(0 20 ? * MON,TUE,WED,THU,FRI *)", "Europe/Dublin"),
        ("analytics", "scale_up"): ("cron(0 6 ? * MON,TUE,WED,THU,FRI,SAT,SUN *)", "Europe/Dublin"),
        ("analytics", "scale_down"): (
            "cron(0 21 ? * MON,TUE,WED,THU,FRI,SAT,SUN *)",
            "Europe/Dublin",
        ),
        ("analytics-legacy", "scale_up"): ("cron(0 7 ? * MON,TUE,WED,THU,FRI *)", "Europe/Dublin"),
        ("analytics-legacy", "scale_down"): (
            "cron(0 19 ? * MON,TUE,WED,THU,FRI *)",
            "Europe/Dublin",
        ),
        ("tooling", "scale_up"): ("cron(0 8 ? * MON,TUE,WED,THU,FRI *)", "Asia/Kolkata"),
        ("tooling", "scale_down"): ("cron(0 20 ? * MON,TUE,WED,THU,FRI *)", "Asia/Kolkata"),
    }


@pytest.mark.parametrize(
    ("days", "calendar", "scale_up_days", "scale_down_days"),
    [
        (WEEKDAYS, None, "MON,TUE,WED,THU,FRI", "TUE,WED,THU,FRI,SAT"),
        (["SAT", "SUN"], None, "SAT,SUN", "MON,SUN"),
        (
            WEEKDAYS,
            {"working_days": ["2025-12-27"]},
            "MON,TUE,WED,THU,FRI,SAT,SUN",
            "MON,TUE,WED,THU,FRI,SAT,SUN",
        ),
    ],
    ids=["weekdays", "weekend", "forced_working_day_fires_daily"],
)
def test_a_window_past_midnight_scales_down_the_morning_after_each_of_its_days(
    project_with_stack: Any,
    days: list[str],
    calendar: dict[str, Any] | None,
    scale_up_days: str,
    scale_down_days: str,
) -> None:
    # GIVEN the dev cluster working from 22:00 to 06:00 the next morning on `days`
    # (and, for the last case, Saturday 2025-12-27 forced as a working day)
    config = copy.deepcopy(read_stack_file(REPO_ROOT / "Pulumi.dev.yaml"))
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    cluster["schedule"].update(scale_up_time="22:00", scale_down_time="06:00", days=days)
    if calendar is not None:
        cluster["calendar"] = calendar
    # WHEN the program runs under mocks
    crons = _crons(run_program(STACK, project_with_stack(STACK, config)))
    # THEN the scale-up fires on the schedule's days and the scale-down the morning after each,
    # both in the schedule's time zone
    assert crons[("dev-apps", "scale_up")] == (f"cron(0 22 ? * {scale_up_days} *)", "Asia/Kolkata")
    assert crons[("dev-apps", "scale_down")] == (
        f"cron(0 6 ? * {scale_down_days} *)",
        "Asia/Kolkata",
    )
