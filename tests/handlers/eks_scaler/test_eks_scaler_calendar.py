"""The cluster calendar in the scaler (moto EKS, manual clock): holidays skip the scheduled
scale-up, forced working days let the schedule act outside its days, maintenance windows block
every change, and excluded node groups are untouched by schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scaler_helpers import Scaler, event, sizes

from fleet_shared.clock import ManualClock

KOLKATA = ZoneInfo("Asia/Kolkata")
# The shared START_TIME: Monday 2 June 2025, 09:00 in Asia/Kolkata.
MONDAY = "2025-06-02"
SATURDAY = datetime(2025, 6, 7, 8, 0, tzinfo=KOLKATA)
SUNDAY = datetime(2025, 6, 8, 8, 0, tzinfo=KOLKATA)


def calendar_of(holidays: list[str], windows: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A cluster calendar as the inventory holds it, with Saturday 7 June a working day."""
    return {
        "time_zone": "Asia/Kolkata",
        "holidays": holidays,
        "working_days": ["2025-06-07"],
        "maintenance_windows": windows or [],
    }


UPGRADE_WINDOW = {
    "start": f"{MONDAY}T08:00",
    "end": f"{MONDAY}T10:00",
    "reason": "control plane upgrade",
}


@pytest.fixture
def calendar() -> dict[str, Any]:
    """The cluster's calendar in the inventory: Monday 2 June is a holiday (tests that need
    another calendar parametrize this fixture)."""
    return calendar_of([MONDAY])


@pytest.fixture
def inventory_document(
    inventory_document: dict[str, Any], calendar: dict[str, Any]
) -> dict[str, Any]:
    """The scaler's inventory with `calendar`, and `web` excluded from the schedule."""
    cluster = inventory_document["members"][0]["clusters"][0]
    cluster["calendar"] = calendar
    cluster["schedule"]["exclude_node_groups"] = ["web"]
    return inventory_document


def result_of(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in result["results"] if item["nodegroup"] == name)


def test_a_holiday_skips_the_scheduled_scale_up_and_says_why(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN system scaled down to 1 (its daytime size saved) on a Monday that is a holiday
    scaler(event("scale_down", {"name": "system", "desired_size": 1}), "inv-1")
    # WHEN the morning schedule fires
    result = scaler(event("scale_up", {"name": "system"}, scheduled=True, request_id="sched-1"))
    # THEN the scale-up is skipped, the result says it is a holiday, and nothing changed
    item = result_of(result, "system")
    assert item["status"] == "skipped"
    assert f"{MONDAY} is a holiday" in item["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    # AND a requested scale-up still works: holidays only concern the schedule
    asked = scaler(event("scale_up", {"name": "system", "desired_size": 2}), "inv-3")
    assert result_of(asked, "system")["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 2


def test_a_forced_working_day_lets_the_schedule_act_outside_its_days(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a schedule on MON-FRI and Saturday 7 June forced as a working day
    fake_clock.set(SATURDAY)
    # WHEN the evening schedule fires on that Saturday
    result = scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, scheduled=True), "inv-1"
    )
    # THEN it acts
    assert result_of(result, "system")["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1
    # AND on the Sunday after, which is neither a schedule day nor a working day, it is skipped
    fake_clock.set(SUNDAY)
    result = scaler(event("scale_up", {"name": "system"}, scheduled=True), "inv-2")
    item = result_of(result, "system")
    assert item["status"] == "skipped"
    assert "nor a forced working day" in item["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1


@pytest.mark.parametrize("calendar", [calendar_of([], [UPGRADE_WINDOW])])
def test_a_maintenance_window_blocks_every_change(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a maintenance window from 08:00 to 10:00 on the day (it is 09:00)
    before = {name: sizes(member_eks, name) for name in ("system", "web", "batch-spot")}
    # WHEN schedules and callers ask for every kind of change
    attempts = [
        event("scale_down", {"name": "system", "desired_size": 1}, scheduled=True),
        event("scale_down", {"name": "web", "desired_size": 2}),
        event("scale_up", {"name": "batch-spot", "desired_size": 4}),
        event("restore", {"name": "system"}),
        event("scale_up", {"name": "system"}, scheduled=True),
    ]
    results = [scaler(attempt, f"inv-{index}") for index, attempt in enumerate(attempts)]
    # THEN each is skipped naming the window and its reason, and no node group changed
    for result in results:
        for item in result["results"]:
            assert item["status"] == "skipped"
            assert "maintenance window" in item["reason"]
            assert "control plane upgrade" in item["reason"]
    assert {name: sizes(member_eks, name) for name in before} == before
    # AND once the window has ended the same request goes through
    fake_clock.set(datetime(2025, 6, 2, 10, 0, tzinfo=KOLKATA))
    after = scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-after")
    assert result_of(after, "web")["status"] == "scaling_initiated"


@pytest.mark.parametrize("calendar", [calendar_of([])])
def test_an_excluded_node_group_is_untouched_by_schedules(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN web excluded from the schedule (and no holiday today)
    # WHEN a scheduled scale-down names system and web
    result = scaler(
        event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "web", "desired_size": 2},
            scheduled=True,
        ),
        "inv-1",
    )
    # THEN system changed and web was left alone, with the reason
    assert result_of(result, "system")["status"] == "scaling_initiated"
    web = result_of(result, "web")
    assert web["status"] == "skipped"
    assert "exclude_node_groups" in web["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3
    # AND a requested change of web is not a schedule's: it goes through
    asked = scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-2")
    assert result_of(asked, "web")["status"] == "scaling_initiated"
