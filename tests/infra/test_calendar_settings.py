"""Calendar settings: bad entries are refused naming the field; stack-wide and per-cluster
entries are merged into the inventory; a forced working day outside the schedule's days makes
the cluster's schedules fire daily."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from typing import Any

import pytest

from components.exceptions import StackSettingsError
from components.settings import load_settings
from fleetctl.mocked_program import REPO_ROOT, read_stack_file, run_program

STACK = "calendar"
CLUSTER_FIELD = "members[0].clusters[0]"
EXCLUDED_FIELD = f"{CLUSTER_FIELD}.schedule.exclude_node_groups[0]"


def _config() -> dict[str, Any]:
    return read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")


def _document(config: dict[str, Any]) -> dict[str, Any]:
    return {
        key.split(":", 1)[1]: value
        for key, value in config.items()
        if key.startswith("lambda-fleet:")
    }


WINDOW = {"start": "2025-12-24T22:00", "end": "2025-12-25T02:00", "reason": "upgrade"}


@pytest.mark.parametrize(
    ("stack_calendar", "cluster_calendar", "schedule_extra", "field"),
    [
        ({"holidays": ["2025-13-01"]}, None, {}, "calendar.holidays[0]"),
        ({"holidays": [20251225]}, None, {}, "calendar.holidays[0]"),
        (None, {"working_days": ["2025-02-30"]}, {}, f"{CLUSTER_FIELD}.calendar.working_days[0]"),
        (
            None,
            {"holidays": ["2025-12-25", "2025-12-25"]},
            {},
            f"{CLUSTER_FIELD}.calendar.holidays[1]",
        ),
        (
            {"maintenance_windows": [{**WINDOW, "end": "2025-12-24T21:00"}]},
            None,
            {},
            "calendar.maintenance_windows[0].end",
        ),
        (
            {"maintenance_windows": [{**WINDOW, "start": "2025-12-24 22:00"}]},
            None,
            {},
            "calendar.maintenance_windows[0].start",
        ),
        (
            None,
            {"maintenance_windows": [WINDOW, {**WINDOW, "start": "2025-12-25T01:00"}]},
            {},
            f"{CLUSTER_FIELD}.calendar.maintenance_windows[1]",
        ),
        (
            {"maintenance_windows": [WINDOW]},
            {"maintenance_windows": [{**WINDOW, "start": "2025-12-25T00:00"}]},
            {},
            f"{CLUSTER_FIELD}.calendar.maintenance_windows",
        ),
        (None, {"holiday": ["2025-12-25"]}, {}, f"{CLUSTER_FIELD}.calendar.holiday"),
        (
            None,
            None,
            {"exclude_node_groups": ["sytem"]},
            f"{CLUSTER_FIELD}.schedule.exclude_node_groups[0]",
        ),
        (
            None,
            None,
            {"exclude_node_groups": ["system"]},
            f"{CLUSTER_FIELD}.schedule.exclude_node_groups[0]",
        ),
    ],
)
def test_bad_calendar_entries_are_refused_naming_the_field(
    stack_calendar: dict[str, Any] | None,
    cluster_calendar: dict[str, Any] | None,
    schedule_extra: dict[str, Any],
    field: str,
) -> None:
    # GIVEN the dev stack with one bad calendar or exclusion entry
    config = _config()
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    if stack_calendar is not None:
        config["lambda-fleet:calendar"] = stack_calendar
    if cluster_calendar is not None:
        cluster["calendar"] = cluster_calendar
    cluster["schedule"].update(schedule_extra)
    # WHEN the settings load THEN one error names the field
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, _document(config))
    assert error.value.field == field
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("field", ["holidays", "working_days"])
def test_a_clusters_own_exception_dates_are_refused_without_a_schedule(field: str) -> None:
    # GIVEN the dev cluster without a schedule, with an exception date of its own, which only
    # its schedule (and predictive mode's working hours, the schedule's) would read
    config = copy.deepcopy(_config())
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    del cluster["schedule"]
    cluster["calendar"] = {field: ["2025-12-25"]}
    # WHEN the settings load
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, _document(config))
    # THEN one error names the cluster's calendar field and how to make it count
    assert error.value.field == f"{CLUSTER_FIELD}.calendar.{field}"
    assert error.value.problem == (
        f"only the cluster's schedule reads {field}, and the cluster has no schedule: add a "
        f"schedule, or leave {field} out (maintenance windows apply without one)"
    )


@pytest.mark.parametrize("field", ["holidays", "working_days"])
def test_stack_wide_exception_dates_are_refused_when_no_cluster_has_a_schedule(field: str) -> None:
    # GIVEN the dev stack, whose one cluster has no schedule, with a stack-wide exception date
    config = copy.deepcopy(_config())
    del config["lambda-fleet:members"][0]["clusters"][0]["schedule"]
    config["lambda-fleet:calendar"] = {field: ["2025-12-25"]}
    # WHEN the settings load
    with pytest.raises(StackSettingsError) as error:
        load_settings(STACK, _document(config))
    # THEN one error names the stack's calendar field and how to make it count
    assert error.value.field == f"calendar.{field}"
    assert error.value.problem == (
        f"only the clusters' schedules read {field}, and no cluster has a schedule: add one, or "
        f"leave {field} out (maintenance windows apply without one)"
    )


def test_a_clusters_maintenance_window_is_accepted_without_a_schedule() -> None:
    # GIVEN the dev cluster without a schedule and with a maintenance window, which blocks
    # requested changes and the spot fallback too
    config = copy.deepcopy(_config())
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    del cluster["schedule"]
    cluster["calendar"] = {"maintenance_windows": [WINDOW]}
    # WHEN the inventory is built THEN the window is in it
    inventory = load_settings(STACK, _document(config)).inventory(STACK)
    assert len(inventory.members[0].clusters[0].calendar.maintenance_windows) == 1


def test_stack_wide_and_cluster_calendars_merge_into_the_inventory() -> None:
    # GIVEN a stack-wide holiday and window, and a cluster that works on that holiday
    config = _config()
    config["lambda-fleet:calendar"] = {
        "holidays": ["2025-12-25", "2026-01-01"],
        "maintenance_windows": [WINDOW],
    }
    config["lambda-fleet:members"][0]["clusters"][0]["calendar"] = {
        "working_days": ["2026-01-01"],
        "holidays": ["2025-12-26"],
    }
    # WHEN the inventory is built
    inventory = load_settings(STACK, _document(config)).inventory(STACK)
    calendar = inventory.members[0].clusters[0].calendar
    # THEN it holds both, the cluster's word winning on its dates, in the schedule's zone
    assert calendar is not None
    assert calendar.time_zone == "Asia/Kolkata"
    assert calendar.holidays == (date(2025, 12, 25), date(2025, 12, 26))
    assert calendar.working_days == (date(2026, 1, 1),)
    assert [window.start for window in calendar.maintenance_windows] == [
        datetime(2025, 12, 24, 22, 0)
    ]


def test_a_working_day_outside_the_schedule_days_makes_the_schedules_fire_daily(
    project_with_stack: Any,
) -> None:
    # GIVEN the dev cluster (MON-FRI) with Saturday 2025-12-27 forced as a working day
    config = copy.deepcopy(_config())
    config["lambda-fleet:members"][0]["clusters"][0]["calendar"] = {"working_days": ["2025-12-27"]}
    # WHEN the program runs under mocks
    run = run_program(STACK, project_with_stack(STACK, config))
    # THEN both cluster schedules fire every day and say they are scheduled
    schedules = [
        schedule.inputs
        for schedule in run.of_type("aws:scheduler/schedule:Schedule")
        if json.loads(schedule.inputs["target"]["input"]).get("cluster") == "dev-apps"
    ]
    assert len(schedules) == 2
    for schedule in schedules:
        assert "MON,TUE,WED,THU,FRI,SAT,SUN" in schedule["scheduleExpression"]
        assert json.loads(schedule["target"]["input"])["scheduled"] is True


@pytest.mark.parametrize(
    ("has_schedule", "expected"),
    [(True, "America/New_York"), (False, "Europe/Berlin")],
    ids=["cluster-schedule", "no-cluster-schedule"],
)
def test_calendar_times_are_in_the_clusters_schedule_zone_else_the_stacks(
    has_schedule: bool, expected: str
) -> None:
    # GIVEN a stack-wide maintenance window, the stack's schedule_time_zone Europe/Berlin, and
    # the dev cluster's schedule in America/New_York, or the cluster without a schedule
    config = copy.deepcopy(_config())
    config["lambda-fleet:calendar"] = {"maintenance_windows": [WINDOW]}
    config["lambda-fleet:schedule_time_zone"] = "Europe/Berlin"
    cluster = config["lambda-fleet:members"][0]["clusters"][0]
    if has_schedule:
        cluster["schedule"]["time_zone"] = "America/New_York"
    else:
        del cluster["schedule"]
    # WHEN the inventory is built
    inventory = load_settings(STACK, _document(config)).inventory(STACK)
    # THEN the cluster's calendar is read in its schedule's zone, else in schedule_time_zone
    calendar = inventory.members[0].clusters[0].calendar
    assert calendar is not None
    assert calendar.time_zone == expected
