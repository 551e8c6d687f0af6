"""The cluster calendar in the scaler (moto EKS, manual clock): holidays skip the scheduled
scale-up, forced working days let the schedule act outside its days, a window past midnight is
judged by the day it began on, maintenance windows block every change, and excluded node groups
are untouched by schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
def window() -> dict[str, str]:
    """The schedule's times: the shared 08:00 to 18:00 (tests of another window parametrize
    this fixture)."""
    return {}


@pytest.fixture
def inventory_document(
    inventory_document: dict[str, Any], calendar: dict[str, Any], window: dict[str, str]
) -> dict[str, Any]:
    """The scaler's inventory with `calendar` and `window`, and `web` excluded from the
    schedule."""
    cluster = inventory_document["members"][0]["clusters"][0]
    cluster["calendar"] = calendar
    cluster["schedule"].update(window)
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


NIGHT = {"scale_up_time": "22:00", "scale_down_time": "06:00"}


@pytest.mark.parametrize(
    ("window", "local", "status", "reason"),
    [
        (NIGHT, datetime(2025, 6, 14, 6, 0), "scaling_initiated", None),
        (
            NIGHT,
            datetime(2025, 6, 16, 6, 0),
            "skipped",
            "this scale_down belongs to the window that began on 2025-06-15: "
            "2025-06-15 (SUN) is neither one of the schedule's days",
        ),
        (NIGHT, datetime(2025, 6, 3, 6, 0), "scaling_initiated", None),
        ({}, datetime(2025, 6, 14, 18, 0), "skipped", "2025-06-14 (SAT) is neither"),
        ({}, datetime(2025, 6, 16, 18, 0), "scaling_initiated", None),
    ],
    ids=[
        "night_saturday_morning_closes_fridays_window",
        "night_monday_morning_closes_sundays_window",
        "night_after_a_holiday_still_scales_down",
        "daytime_saturday_evening",
        "daytime_monday_evening",
    ],
)
def test_a_scale_down_past_midnight_is_judged_by_the_day_its_window_began(
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    *,
    local: datetime,
    status: str,
    reason: str | None,
) -> None:
    # GIVEN a MON-FRI schedule from 22:00 to 06:00 the next morning, or the daytime 08:00 to
    # 18:00 (Monday 2 June a holiday), and system at its daytime size 2
    fake_clock.set(local.replace(tzinfo=KOLKATA))
    # WHEN the scheduled scale-down arrives at that local time
    result = scaler(
        event("scale_down", {"name": "system", "desired_size": 1}, scheduled=True), "inv-1"
    )
    # THEN it runs when the day its window began is a schedule day (a holiday included), and is
    # skipped naming that day otherwise
    item = result_of(result, "system")
    assert item["status"] == status
    if reason is None:
        assert sizes(member_eks, "system")["desired_size"] == 1
    else:
        assert reason in item["reason"]
        assert sizes(member_eks, "system")["desired_size"] == 2


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
    # THEN each node group asked is skipped naming the window and its reason, and no node group
    # changed
    items = [item for result in results for item in result["results"]]
    assert len(items) == len(attempts)
    for item in items:
        assert item["status"] == "skipped"
        assert "maintenance window" in item["reason"]
        assert "control plane upgrade" in item["reason"]
    assert {name: sizes(member_eks, name) for name in before} == before
    # AND once the window has ended the same request goes through
    fake_clock.set(datetime(2025, 6, 2, 10, 0, tzinfo=KOLKATA))
    after = scaler(event("scale_down", {"name": "web", "desired_size": 2}), "inv-after")
    assert result_of(after, "web")["status"] == "scaling_initiated"


BERLIN_CALENDAR = {
    "time_zone": "Europe/Berlin",
    "holidays": [],
    "working_days": [],
    # The clocks go back from 03:00 to 02:00 that night: 02:30 comes twice.
    "maintenance_windows": [
        {"start": "2026-10-25T01:00", "end": "2026-10-25T02:30", "reason": "node image rollout"}
    ],
}


@pytest.mark.parametrize("calendar", [BERLIN_CALENDAR])
def test_a_maintenance_window_ending_in_the_repeated_hour_blocks_until_its_end(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a window from 01:00 to 02:30 in Europe/Berlin on the night the clocks go back
    before = sizes(member_eks, "web")
    # WHEN a change is asked at every quarter of an hour from 01:00 CEST to the second 02:30
    # (CET), the wall clock reading 01:00-02:59 and then 02:00-02:29 again
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    moments = [start + timedelta(minutes=15 * step) for step in range(10)]
    statuses = {}
    for index, moment in enumerate(moments):
        fake_clock.set(moment)
        result = scaler(event("scale_down", {"name": "web", "desired_size": 2}), f"inv-{index}")
        statuses[moment.astimezone(ZoneInfo("Europe/Berlin")).isoformat()] = result_of(
            result, "web"
        )["status"]
    # THEN every one is skipped (from 02:30 to 03:00 CEST, between the two 02:30s, the wall
    # clock read past the window's end and the change was made inside it), and nothing changed
    assert set(statuses.values()) == {"skipped"}, statuses
    assert sizes(member_eks, "web") == before
    # AND at the window's end, the second 02:30, the change goes through
    fake_clock.set(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
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
