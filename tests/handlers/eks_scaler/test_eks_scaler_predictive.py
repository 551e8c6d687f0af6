"""`predictive`: the forecaster's node count, kept within the working-hours floor, the floor,
max_size and max_step, with the usual cooldown and dry run, and the hand-back to the schedule's
size when the forecaster keeps the schedule (moto EKS in the member account); working hours
follow the cluster's calendar as the schedule does (holidays, forced working days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, event, sizes

from fleet_shared.clock import ManualClock
from fleet_shared.inventory import Cluster, ClusterCalendar, NodeGroup, ScalingSchedule
from fleet_shared.node_group_locks import (
    SPOT_FALLBACK_ACTION,
    TEMPORARY_CHANGE_FIELD,
    node_group_key,
    node_group_lock_name,
)
from fleet_shared.state_table import StateTable
from handlers.eks_scaler.predictive import in_working_hours, scheduled_size
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.faults import fail_every_attempt

KOLKATA = ZoneInfo("Asia/Kolkata")
NIGHT = datetime(2025, 6, 2, 17, 0, tzinfo=UTC)  # Monday 22:30 in Asia/Kolkata
MONDAY_MORNING = datetime(2025, 6, 2, 3, 30, tzinfo=UTC)  # Monday 09:00 in Asia/Kolkata
SATURDAY_MORNING = datetime(2025, 6, 7, 9, 0, tzinfo=KOLKATA)
PREDICTIVE = {"mode": "predictive", "max_step": 2, "working_hours_floor": True}
# Monday 2 June (the tests' START_TIME's day) a holiday, Saturday 7 June a forced working day.
CALENDAR = {
    "time_zone": "Asia/Kolkata",
    "holidays": ["2025-06-02"],
    "working_days": ["2025-06-07"],
    "maintenance_windows": [],
}
NEW_YORK = ZoneInfo("America/New_York")
# On Sunday 1 November 2026 the clocks in America/New_York go back from 02:00 EDT to 01:00 EST:
# 01:30 comes twice, at 05:30 and at 06:30 UTC (the stack check refuses only skipped times).
FIRST_0130 = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
NEW_YORK_CALENDAR = {
    "time_zone": "America/New_York",
    "holidays": [],
    "working_days": [],
    "maintenance_windows": [],
}
# A Saturday night shift whose scale-down falls in the hour the clocks repeat.
NIGHT_SHIFT_TO_0130 = {
    "time_zone": "America/New_York",
    "scale_up_time": "20:00",
    "scale_down_time": "01:30",
    "days": ["SAT"],
}


@pytest.fixture
def scaling() -> dict[str, Any]:
    """The cluster's scaling block; a test parametrizes it to change it."""
    return PREDICTIVE


@pytest.fixture
def daytime_size() -> int:
    """web's desired size in the stack file (EKS starts it at 3); a test parametrizes it."""
    return 3


@pytest.fixture
def calendar() -> dict[str, Any] | None:
    """The cluster's calendar in the inventory: none; a test parametrizes it."""
    return None


@pytest.fixture
def schedule() -> dict[str, Any]:
    """Changes to the cluster's schedule: none; a test parametrizes it."""
    return {}


@pytest.fixture
def inventory_document(
    inventory_document: dict[str, Any],
    scaling: dict[str, Any],
    daytime_size: int,
    calendar: dict[str, Any] | None,
    schedule: dict[str, Any],
) -> dict[str, Any]:
    """The scaler tests' inventory (web at 2/`daytime_size`/6, floor 2, 2 off hours) with
    `scaling`, `calendar` and the changes of `schedule` on the cluster."""
    cluster = inventory_document["members"][0]["clusters"][0]
    cluster["scaling"] = {**cluster["scaling"], **scaling}
    cluster["schedule"] = {**cluster["schedule"], **schedule}
    if calendar is not None:
        cluster["calendar"] = calendar
    cluster["schedule"]["off_hours_desired"]["web"] = 2
    web = next(group for group in cluster["node_groups"] if group["name"] == "web")
    web["desired_size"] = daytime_size
    return inventory_document


def _web(wanted: int, **extra: Any) -> dict[str, Any]:
    return event("predictive", {"name": "web", "desired_size": wanted}, **extra)


def _web_handed_back(**extra: Any) -> dict[str, Any]:
    return event("predictive", {"name": "web", "hand_back": True}, **extra)


def _only(result: dict[str, Any]) -> dict[str, Any]:
    (item,) = result["results"]
    return dict(item)


def test_in_working_hours_the_scheduled_daytime_size_is_a_floor(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN Monday 09:00 in the cluster's time zone, web at its stack-file desired size 3
    # WHEN the forecast needs a single node
    item = _only(scaler(_web(1)))
    # THEN web stays at its daytime size and says why
    assert item["status"] == "no_change_needed"
    assert "working hours: kept at the scheduled daytime size 3" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3


@pytest.mark.parametrize("calendar", [CALENDAR])
def test_on_a_holiday_the_forecast_is_not_held_at_the_daytime_size(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN Monday 09:00, within the schedule's hours, but a holiday in the cluster's calendar
    # (the schedule does not scale up today), web at 3
    # WHEN the forecast needs a single node
    item = _only(scaler(_web(1)))
    # THEN web goes down to its configured floor 2, and the reason does not claim working hours
    assert item["status"] == "scaling_initiated"
    assert "raised to the floor 2" in item["reason"]
    assert "working hours" not in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 2


@pytest.mark.parametrize("calendar", [CALENDAR])
def test_on_a_forced_working_day_outside_the_schedules_days_the_daytime_size_is_a_floor(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN Saturday 09:00, not one of the schedule's days but a forced working day, web at 3
    fake_clock.set(SATURDAY_MORNING)
    # WHEN the forecast needs a single node
    item = _only(scaler(_web(1)))
    # THEN web stays at its daytime size and says why
    assert item["status"] == "no_change_needed"
    assert "working hours: kept at the scheduled daytime size 3" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3


def test_a_hold_placed_while_a_forecast_change_is_being_prepared_stops_it(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    state_table: StateTable,
    alert_inbox: Any,
) -> None:
    # GIVEN the forecast's request to raise web from 3 to 5, and the on-call engineer placing a
    # hold on the cluster while the scaler reads web (the hold takes no node group lock)
    placed: list[dict[str, Any]] = []

    def hold_placed_during_the_read(parsed: dict[str, Any], **_: Any) -> None:
        if not placed:
            hold = event("hold", until="2025-06-02T20:00:00+05:30", reason="incident 42")
            placed.append(scaler(hold, "inv-hold"))

    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register("after-call.eks.DescribeNodegroup", hold_placed_during_the_read)
    # WHEN the scaler carries out the forecast's request
    item = _only(scaler(_web(5, request_id="predictive-2025-06-02T03")))
    # THEN the hold, placed before the change was made, stops it: web stays at 3, the result is
    # held with the hold's reason, and no change is recorded or announced
    assert placed[0]["results"][0]["status"] == "hold_placed"
    assert item["status"] == "held"
    assert "incident 42" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert state_table.latest_change(web_key) is None
    assert "info" not in [alert.alert["severity"] for alert in alert_inbox.receive()]


@pytest.mark.parametrize("scaling", [{**PREDICTIVE, "working_hours_floor": False}])
def test_without_the_working_hours_floor_the_node_group_floor_holds(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN working hours, but the owner turned the working-hours floor off
    # WHEN the forecast needs no node at all
    item = _only(scaler(_web(0)))
    # THEN web goes down to its configured floor of 2, not below
    assert item["status"] == "scaling_initiated"
    assert "raised to the floor 2" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 2


@pytest.mark.parametrize("scaling", [{**PREDICTIVE, "max_step": 10}])
def test_a_forecast_above_max_size_is_clamped_to_it(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN web at 3 of at most 6, and a max_step large enough not to bind
    # WHEN the forecast needs 20 nodes
    item = _only(scaler(_web(20)))
    # THEN web goes to max_size 6
    assert item["status"] == "scaling_initiated"
    assert "clamped to max_size 6" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 6


def test_a_change_is_at_most_max_step_nodes(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN web at 3 and max_step 2
    # WHEN the forecast needs 6 nodes
    item = _only(scaler(_web(6)))
    # THEN web grows by 2 now, and the reason says the rest comes later
    assert item["status"] == "scaling_initiated"
    assert "max_step 2: 5 now, 6 later" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 5


def test_a_decrease_waits_for_the_cooldown_but_an_increase_does_not(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN night (no working-hours floor) and web raised from 3 to 5 by the forecast
    fake_clock.set(NIGHT)
    assert _only(scaler(_web(5, request_id="h1")))["status"] == "scaling_initiated"
    # WHEN the next forecast, 100 s later, needs only 3
    fake_clock.advance(100)
    blocked = _only(scaler(_web(3, request_id="h2")))
    # THEN the decrease is blocked with the time left and nothing changes
    assert blocked["status"] == "scale_down_blocked"
    assert blocked["cooldown_remaining_seconds"] == 200
    assert sizes(member_eks, "web")["desired_size"] == 5
    # AND after the cooldown it goes through
    fake_clock.advance(200)
    assert _only(scaler(_web(3, request_id="h3")))["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 3


def test_a_dry_run_reports_the_bounded_size_and_changes_nothing(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN night and web at 3
    fake_clock.set(NIGHT)
    # WHEN the forecast needs 6 nodes in a dry run
    item = _only(scaler(_web(6, dry_run=True)))
    # THEN the answer is the step-bounded size, and EKS is untouched
    assert item["status"] == "dry_run"
    assert item["new"]["desired_size"] == 5
    assert sizes(member_eks, "web")["desired_size"] == 3


@pytest.mark.parametrize("scaling", [{"mode": "schedule"}])
def test_a_cluster_in_schedule_mode_refuses_a_forecast(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN a cluster the owner left in schedule mode
    # WHEN a predictive request arrives
    item = _only(scaler(_web(5)))
    # THEN it is refused naming the setting, and nothing changes
    assert item["status"] == "error"
    assert "scaling.mode: predictive" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3


def test_a_predictive_request_without_a_size_is_refused_naming_the_field(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN a predictive request that names web without a size
    result = scaler(event("predictive", {"name": "web"}))
    # THEN the error names the node group's field
    assert result["status"] == "error"
    assert "nodegroups[0]" in result["error"]
    assert "predictive needs desired_size" in result["error"]


@pytest.mark.parametrize("daytime_size", [6])
@pytest.mark.parametrize(
    ("scaling", "forecast_size"),
    [
        ({**PREDICTIVE, "working_hours_floor": False}, 2),
        ({**PREDICTIVE, "working_hours_floor": True}, 5),
    ],
    ids=["no_floor", "floor"],
)
def test_a_hand_back_after_a_forecast_driven_change_restores_the_daytime_size_in_one_step(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock, forecast_size: int
) -> None:
    # GIVEN working hours, web at 3 with a daytime size of 6 and max_step 2, resized by a
    # forecast that needed 1 node: down to its floor 2 without the working-hours floor, up by
    # max_step towards the daytime size with it
    changed = _only(scaler(_web(1, request_id="predictive-h1")))
    assert changed["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == forecast_size
    # WHEN, an hour later, the forecaster keeps the schedule and hands web back
    fake_clock.advance(3600)
    item = _only(scaler(_web_handed_back(request_id="predictive-h2")))
    # THEN web is back at its daytime size at once, beyond max_step, and says why
    assert item["status"] == "scaling_initiated"
    assert "schedule kept: back to the scheduled daytime size 6" in item["reason"]
    assert "max_step" not in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 6


@pytest.mark.parametrize("calendar", [CALENDAR])
def test_a_hand_back_on_a_holiday_restores_the_off_hours_size(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN Monday 09:00 on a holiday (no scheduled scale-up today), web raised from 3 to 5 by
    # the forecast
    assert _only(scaler(_web(5, request_id="predictive-h1")))["status"] == "scaling_initiated"
    # WHEN, an hour later, the forecaster keeps the schedule and hands web back
    fake_clock.advance(3600)
    item = _only(scaler(_web_handed_back(request_id="predictive-h2")))
    # THEN web goes to the schedule's off-hours size 2, not to its daytime size 3
    assert item["status"] == "scaling_initiated"
    assert "back to the schedule's off-hours size 2" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 2


def test_a_hand_back_after_the_schedules_own_change_changes_nothing(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN no change recorded for web yet
    # WHEN the forecaster hands web back
    untouched = _only(scaler(_web_handed_back(request_id="predictive-h0")))
    # THEN nothing changes: there is no forecast's size to undo
    assert untouched["status"] == "no_change_needed"
    assert "no change is recorded" in untouched["reason"]
    # GIVEN the schedule's own scale-down of web to 2 at night
    fake_clock.set(NIGHT)
    down = scaler(event("scale_down", {"name": "web", "desired_size": 2}, request_id="down"))
    assert _only(down)["status"] == "scaling_initiated"
    # WHEN, an hour later, the forecaster hands web back
    fake_clock.advance(3600)
    item = _only(scaler(_web_handed_back(request_id="predictive-h1")))
    # THEN the schedule's last size stands
    assert item["status"] == "no_change_needed"
    assert "the last change was a scale_down" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 2


def test_a_hand_back_in_a_dry_run_reports_the_schedules_size_and_changes_nothing(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN night and web raised from 3 to 5 by the forecast an hour ago
    fake_clock.set(NIGHT)
    assert _only(scaler(_web(5, request_id="predictive-h1")))["status"] == "scaling_initiated"
    fake_clock.advance(3600)
    # WHEN the forecaster hands web back in a dry run
    item = _only(scaler(_web_handed_back(dry_run=True)))
    # THEN the answer is the schedule's off-hours size, and EKS is untouched
    assert item["status"] == "dry_run"
    assert item["new"]["desired_size"] == 2
    assert "back to the schedule's off-hours size 2" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 5


def test_a_hand_back_decrease_waits_for_the_cooldown(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN night and web raised from 3 to 5 by the forecast
    fake_clock.set(NIGHT)
    assert _only(scaler(_web(5, request_id="predictive-h1")))["status"] == "scaling_initiated"
    # WHEN the forecaster hands web back 100 s later
    fake_clock.advance(100)
    blocked = _only(scaler(_web_handed_back(request_id="predictive-h2")))
    # THEN the decrease to the off-hours size 2 is blocked with the time left
    assert blocked["status"] == "scale_down_blocked"
    assert blocked["cooldown_remaining_seconds"] == 200
    assert sizes(member_eks, "web")["desired_size"] == 5
    # AND after the cooldown the hand-back goes through in one step
    fake_clock.advance(200)
    assert _only(scaler(_web_handed_back(request_id="predictive-h3")))["status"] == (
        "scaling_initiated"
    )
    assert sizes(member_eks, "web")["desired_size"] == 2


@pytest.mark.parametrize(
    ("group", "action", "field"),
    [
        ({"name": "web", "hand_back": True, "desired_size": 4}, "predictive", "desired_size"),
        ({"name": "web", "hand_back": True}, "scale_up", "hand_back"),
    ],
)
def test_a_hand_back_with_a_size_or_another_action_is_refused_naming_the_field(
    scaler: Scaler, member_eks: Any, group: dict[str, Any], action: str, field: str
) -> None:
    # GIVEN a hand-back that carries a size, or that is not predictive
    result = scaler(event(action, group))
    # THEN the error names the field and nothing changes
    assert result["status"] == "error"
    assert f"nodegroups[0].{field}" in result["error"]
    assert sizes(member_eks, "web")["desired_size"] == 3


@pytest.mark.parametrize(
    ("schedule_update", "moment", "expected"),
    [
        ({}, MONDAY_MORNING, (3, "the scheduled daytime size")),
        ({}, NIGHT, (2, "the schedule's off-hours size")),
        ({"off_hours_desired": {}}, NIGHT, (3, "the stack file's desired size")),
        ({"exclude_node_groups": ("web",)}, NIGHT, (3, "the stack file's desired size")),
    ],
    ids=["working_hours", "off_hours", "not_sized_by_the_schedule", "excluded"],
)
def test_the_schedules_size_is_the_daytime_size_in_working_hours_and_the_off_hours_size_outside(
    schedule_update: dict[str, Any], moment: datetime, expected: tuple[int, str]
) -> None:
    # GIVEN web at 3 by day and 2 off hours in its schedule, or a schedule that does not size it
    web = NodeGroup(
        name="web",
        capacity_type="ON_DEMAND",
        instance_types=("m7g.large",),
        min_size=2,
        desired_size=3,
        max_size=6,
        floor=2,
    )
    schedule = ScalingSchedule(
        time_zone="Asia/Kolkata",
        scale_up_time="08:00",
        scale_down_time="18:00",
        days=("MON", "TUE", "WED", "THU", "FRI"),
        off_hours_desired={"web": 2},
    )
    cluster = Cluster(
        name="dev-apps",
        region="ap-south-1",
        kubernetes_version="1.33",
        node_groups=(web,),
        schedule=schedule.model_copy(update=schedule_update),
    )
    # WHEN the size the schedule gives web at that moment is asked
    # THEN it is the expected size, named
    assert scheduled_size(cluster, web, moment) == expected


@pytest.mark.parametrize(
    ("local", "calendar", "expected"),
    [
        (datetime(2025, 6, 3, 23, 0), ClusterCalendar(**CALENDAR), True),
        (datetime(2025, 6, 2, 23, 0), ClusterCalendar(**CALENDAR), False),
        (datetime(2025, 6, 3, 3, 0), ClusterCalendar(**CALENDAR), False),
        (datetime(2025, 6, 7, 23, 0), ClusterCalendar(**CALENDAR), True),
        (datetime(2025, 6, 8, 3, 0), ClusterCalendar(**CALENDAR), True),
        (datetime(2025, 6, 14, 23, 0), ClusterCalendar(**CALENDAR), False),
        (datetime(2025, 6, 2, 23, 0), None, True),
    ],
    ids=[
        "a_schedule_day",
        "a_holiday",
        "past_midnight_after_a_holiday",
        "a_forced_working_day",
        "past_midnight_after_a_forced_working_day",
        "a_saturday",
        "no_calendar",
    ],
)
def test_working_hours_past_midnight_follow_the_calendar_of_the_day_they_start_on(
    local: datetime, calendar: ClusterCalendar | None, expected: bool
) -> None:
    # GIVEN a night schedule, 22:00 to 06:00 from Monday to Friday, and the cluster's calendar
    # (Monday 2 June a holiday, Saturday 7 June a forced working day) or none
    schedule = ScalingSchedule(
        time_zone="Asia/Kolkata",
        scale_up_time="22:00",
        scale_down_time="06:00",
        days=("MON", "TUE", "WED", "THU", "FRI"),
    )
    # WHEN it is asked whether that moment is in working hours
    # THEN it is exactly when the window started on a day the schedule scales up on
    moment = local.replace(tzinfo=KOLKATA)
    assert in_working_hours(schedule, moment, calendar=calendar) is expected


def test_a_hand_back_after_a_forecast_change_the_state_table_did_not_record_restores_the_size(
    scaler: Scaler, services: ScalerServices, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN working hours, web raised from its daytime size 3 to 5 by the forecast, a change EKS
    # took but whose record DynamoDB refused (every attempt of the transaction)
    fault = fail_every_attempt(services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems")
    changed = _only(scaler(_web(5, request_id="predictive-h1")))
    assert "the change was not recorded" in changed["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 5
    fault.healed = True
    # WHEN, an hour later, the forecaster keeps the schedule and hands web back
    fake_clock.advance(3600)
    item = _only(scaler(_web_handed_back(request_id="predictive-hand-back-h2")))
    # THEN web is back at its daytime size: its size is the forecast's, recorded or not
    assert item["status"] == "scaling_initiated"
    assert "schedule kept: back to the scheduled daytime size 3" in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 3


@pytest.mark.parametrize(("schedule", "calendar"), [(NIGHT_SHIFT_TO_0130, NEW_YORK_CALENDAR)])
def test_the_working_hours_floor_does_not_come_back_after_a_scale_down_in_the_repeated_hour(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a Saturday night shift to 01:30 in America/New_York, and the schedule's one
    # scale-down run at the first 01:30 (EDT) of the night the clocks go back, web down to 2
    fake_clock.set(FIRST_0130)
    down = scaler(
        event("scale_down", {"name": "web", "desired_size": 2}, scheduled=True), "sched-down"
    )
    assert _only(down)["status"] == "scaling_initiated"
    # WHEN the hourly forecast asks for 2 nodes at every quarter of an hour up to the second
    # 01:30 (EST), the wall clock reading 01:45, then 01:00 and 01:15 again
    statuses = {}
    for quarter in range(1, 5):
        moment = FIRST_0130 + timedelta(minutes=15 * quarter)
        fake_clock.set(moment)
        item = _only(scaler(_web(2, request_id=f"predictive-{quarter}")))
        statuses[moment.astimezone(NEW_YORK).isoformat()] = (item["status"], item["reason"])
    # THEN the working hours stay over: no floor brings the daytime size 3 back in the night
    assert {status for status, _ in statuses.values()} == {"no_change_needed"}, statuses
    assert not any("working hours" in reason for _, reason in statuses.values()), statuses
    assert sizes(member_eks, "web")["desired_size"] == 2


@pytest.mark.parametrize(
    ("scale_up_time", "scale_down_time", "in_hours_before_the_first_0130"),
    [("20:00", "01:30", True), ("01:30", "09:00", False)],
    ids=["a_scale_down_in_the_repeated_hour", "a_scale_up_in_the_repeated_hour"],
)
def test_working_hours_change_at_the_first_reading_of_a_time_the_clocks_repeat(
    scale_up_time: str, scale_down_time: str, in_hours_before_the_first_0130: bool
) -> None:
    # GIVEN a schedule on every day in America/New_York whose scale-down, or scale-up, is at
    # 01:30, which the clock reads twice on the night it goes back
    schedule = ScalingSchedule(
        time_zone="America/New_York",
        scale_up_time=scale_up_time,
        scale_down_time=scale_down_time,
        days=("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"),
    )
    # WHEN it is asked at every quarter of an hour from 00:45 EDT to 01:45 EST
    moments = [FIRST_0130 + timedelta(minutes=15 * step) for step in range(-3, 6)]
    judged = {
        moment.astimezone(NEW_YORK).isoformat(): in_working_hours(schedule, moment, calendar=None)
        for moment in moments
    }
    # THEN the working hours change once, at the first 01:30 (EDT), the time Scheduler's one
    # run may come first, and stay changed through the repeated readings up to 01:45 EST
    expected = {
        moment.astimezone(NEW_YORK).isoformat(): (moment < FIRST_0130)
        == in_hours_before_the_first_0130
        for moment in moments
    }
    assert judged == expected


TUESDAY_0800 = datetime(2025, 6, 3, 8, 0, tzinfo=KOLKATA)


@pytest.mark.parametrize(
    ("after_seconds", "action"),
    [(60, "scale_up"), (360, "scale_up"), (360, "restore")],
    ids=["morning-run-in-the-cooldown", "morning-run-after-the-cooldown", "restore-by-request"],
)
def test_a_restore_in_working_hours_keeps_the_capacity_the_forecast_raised(  # noqa: PLR0917
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
    after_seconds: int,
    action: str,
) -> None:
    # GIVEN web's daytime 3 saved by Monday night's scale-down (to 2), and Tuesday's 08:00
    # forecast raising web to 4 in working hours
    fake_clock.set(NIGHT)
    scaler(event("scale_down", {"name": "web", "desired_size": 2}, scheduled=True), "down")
    fake_clock.set(TUESDAY_0800)
    assert _only(scaler(_web(4, request_id="forecast-0800")))["status"] == "scaling_initiated"
    # WHEN a size-less restore of web (the morning's scale-up, or one asked by request) comes
    # `after_seconds` later
    fake_clock.advance(after_seconds)
    restored = _only(scaler(event(action, {"name": "web"}, scheduled=action == "scale_up")))
    # THEN the forecast's 4 stands, neither lowered now nor held only until the cooldown ends,
    # and the answer says why
    assert restored["status"] == "no_change_needed", restored
    assert "the forecast's capacity is kept" in restored["reason"]
    assert "cooldown" not in restored["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 4
    # AND the daytime 3 stays saved for the next morning's restore
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    saved = state_table.get_value(key, "previous_sizes")
    assert saved is not None
    assert saved["sizes"]["desired_size"] == 3
    assert saved["restored_at"] is None


MONDAY_1700 = datetime(2025, 6, 2, 17, 0, tzinfo=KOLKATA)
MONDAY_1800 = datetime(2025, 6, 2, 18, 0, tzinfo=KOLKATA)


@pytest.mark.parametrize(
    ("scaling", "daytime_size", "forecast_size"),
    [
        (PREDICTIVE, 3, 5),
        ({**PREDICTIVE, "working_hours_floor": False}, 6, 4),
    ],
    ids=["forecast-above-the-daytime-size", "forecast-below-it-without-the-floor"],
)
def test_the_morning_restores_the_daytime_size_not_the_forecasts_size_of_the_evening_before(  # noqa: PLR0917
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
    daytime_size: int,
    forecast_size: int,
) -> None:
    # GIVEN Monday 17:00, in working hours, the forecast sizing web (at 3) to `forecast_size`
    fake_clock.set(MONDAY_1700)
    assert _only(scaler(_web(forecast_size, request_id="forecast-1700")))["status"] == (
        "scaling_initiated"
    )
    assert sizes(member_eks, "web")["desired_size"] == forecast_size
    # AND the 18:00 schedule scaling web down to its night size 2
    fake_clock.set(MONDAY_1800)
    down = scaler(
        event("scale_down", {"name": "web", "desired_size": 2}, scheduled=True), "evening"
    )
    assert _only(down)["status"] == "scaling_initiated"
    # WHEN Tuesday's 08:00 schedule restores web, and an hour later the forecaster, not
    # confident, hands web back to the schedule
    fake_clock.set(TUESDAY_0800)
    morning = _only(scaler(event("scale_up", {"name": "web"}, scheduled=True), "morning"))
    fake_clock.advance(3600)
    handed_back = _only(scaler(_web_handed_back(request_id="predictive-h0900")))
    # THEN web is at its daytime size from the stack file all day, not at the size the forecast
    # gave Monday's last working hour, which the schedule's hand-back would have kept
    assert morning["status"] == "scaling_initiated", morning
    assert sizes(member_eks, "web")["desired_size"] == daytime_size
    assert handed_back["status"] == "no_change_needed"
    # AND the evening saved the daytime size, saying it did so instead of the forecast's
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    saved = state_table.get_value(key, "previous_sizes")
    assert saved is not None
    assert saved["sizes"]["desired_size"] == daytime_size
    assert f"instead of the forecast's {forecast_size}" in _only(down)["reason"]


def _spot_fallback_raises_web(member_eks: Any, state_table: StateTable, desired: int) -> None:
    """The spot optimizer's temporary +1 of web, at `desired`, as it makes and records it."""
    member_eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName="web", scalingConfig={"desiredSize": desired + 1}
    )
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    before = {"min_size": 2, "desired_size": desired, "max_size": 6}
    state_table.record_change(
        key,
        {
            "source": "spot_optimizer",
            "action": SPOT_FALLBACK_ACTION,
            "previous": before,
            "new": {**before, "desired_size": desired + 1},
            TEMPORARY_CHANGE_FIELD: True,
            "update_id": f"fallback-{desired}",
        },
        history_ttl_seconds=90 * 86400,
    )


@pytest.mark.parametrize(
    ("next_hour", "desired", "reason"),
    [
        pytest.param(
            _web_handed_back(request_id="predictive-h2"),
            3,
            "schedule kept: back to the scheduled daytime size 3",
            id="a-hand-back-restores-the-daytime-size",
        ),
        pytest.param(
            _web(5, request_id="predictive-h2"),
            5,
            "forecast needs 5 node(s)",
            id="the-next-forecast-sets-its-own-size",
        ),
    ],
)
def test_the_next_hours_decision_replaces_the_spot_fallbacks_raise_of_the_forecasts(
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
    *,
    next_hour: dict[str, Any],
    desired: int,
    reason: str,
) -> None:
    # GIVEN working hours, web raised by the forecast from its daytime 3 to 5, and 20 minutes
    # later the spot optimizer's temporary +1 on top of it (5 -> 6)
    assert _only(scaler(_web(5, request_id="predictive-h1")))["status"] == "scaling_initiated"
    fake_clock.advance(20 * 60)
    _spot_fallback_raises_web(member_eks, state_table, 5)
    # WHEN, an hour after the forecast, the forecaster hands web back to the schedule, or its
    # next forecast needs 5 nodes again
    fake_clock.advance(40 * 60)
    item = _only(scaler(next_hour))
    # THEN web is at the schedule's daytime 3 or the forecast's 5: the size under the +1 is the
    # forecast's (not one the spot optimizer's change set, which the schedule must leave all
    # day), and a forecast's size is the whole size, not one on top of the +1
    assert item["status"] == "scaling_initiated", item
    assert reason in item["reason"]
    assert sizes(member_eks, "web")["desired_size"] == desired


def test_the_morning_restores_the_daytime_size_under_the_spot_fallbacks_raise_of_the_forecasts(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock, state_table: StateTable
) -> None:
    # GIVEN Monday 17:00, the forecast raising web from 3 to 5, and at 17:20 the spot
    # optimizer's temporary +1 on top of it (5 -> 6)
    fake_clock.set(MONDAY_1700)
    assert _only(scaler(_web(5, request_id="forecast-1700")))["status"] == "scaling_initiated"
    fake_clock.advance(20 * 60)
    _spot_fallback_raises_web(member_eks, state_table, 5)
    # WHEN the 18:00 schedule scales web down to 2, and Tuesday's 08:00 schedule restores it
    fake_clock.set(MONDAY_1800)
    down = _only(
        scaler(event("scale_down", {"name": "web", "desired_size": 2}, scheduled=True), "evening")
    )
    fake_clock.set(TUESDAY_0800)
    morning = _only(scaler(event("scale_up", {"name": "web"}, scheduled=True), "morning"))
    # THEN the morning brings back the daytime 3: neither the +1 nor the forecast's 5 under it
    assert down["status"] == "scaling_initiated", down
    assert "instead of the forecast's 5" in down["reason"]
    assert morning["status"] == "scaling_initiated", morning
    assert sizes(member_eks, "web")["desired_size"] == 3


def test_a_retry_of_a_forecast_left_open_does_not_step_a_node_group_it_changed_again(
    scaler: Scaler,
    member_eks: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
    alert_inbox: Any,
) -> None:
    # GIVEN the hour's forecast needing 9 web nodes (at 3, max_step 2) and 3 system nodes, while
    # the spot optimizer holds system's lock: web goes to 5, system is `locked`, and the request
    # stays open for its retry
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    assert state_table.acquire_lock(lock, "spot_optimizer:other", 120)
    forecast = event(
        "predictive",
        {"name": "web", "desired_size": 9},
        {"name": "system", "desired_size": 3},
        request_id="predictive-2025-06-02T04",
    )
    first = {item["nodegroup"]: item for item in scaler(forecast, "forecaster-1")["results"]}
    assert first["web"]["status"] == "scaling_initiated"
    assert first["system"]["status"] == "locked"
    assert sizes(member_eks, "web")["desired_size"] == 5
    assert len(alert_inbox.receive()) == 1
    # WHEN the lock is free and the forecaster's run is retried a minute later with the same
    # request
    assert state_table.release_lock(lock, "spot_optimizer:other")
    fake_clock.advance(60)
    retried = {item["nodegroup"]: item for item in scaler(forecast, "forecaster-2")["results"]}
    # THEN system is sized, but web keeps the one step this forecast gave it: a second step
    # would be a change of 4 nodes for one hour's forecast, and its notice, keyed by the
    # request, would never go out
    assert retried["system"]["status"] == "scaling_initiated", retried["system"]
    assert sizes(member_eks, "system")["desired_size"] == 3
    assert retried["web"]["status"] == "no_change_needed", retried["web"]
    assert "this request already changed it" in retried["web"]["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 5
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert len(state_table.query_history(key, fake_clock.now().replace(year=2000))) == 1
    # AND each change went out once: system's now, web's not again
    titles = [item.alert["title"] for item in alert_inbox.receive()]
    assert titles == [f"{CLUSTER}/system scaled (predictive): desired 2 -> 3"]


def test_a_retry_of_a_forecast_left_open_records_a_change_it_made_unrecorded_without_a_step(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    fake_clock: ManualClock,
    state_table: StateTable,
) -> None:
    # GIVEN the hour's forecast stepping web from 3 to 5 while DynamoDB refused (every attempt)
    # the transaction recording the change, and system `locked` by the spot optimizer, so the
    # request stays open
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    assert state_table.acquire_lock(lock, "spot_optimizer:other", 120)
    fault = fail_every_attempt(services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems")
    forecast = event(
        "predictive",
        {"name": "web", "desired_size": 9},
        {"name": "system", "desired_size": 3},
        request_id="predictive-2025-06-02T04",
    )
    first = {item["nodegroup"]: item for item in scaler(forecast, "forecaster-1")["results"]}
    assert "the change was not recorded" in first["web"]["reason"]
    assert sizes(member_eks, "web")["desired_size"] == 5
    # WHEN DynamoDB is back, the lock free, and the run retried a minute later
    fault.healed = True
    assert state_table.release_lock(lock, "spot_optimizer:other")
    fake_clock.advance(60)
    retried = {item["nodegroup"]: item for item in scaler(forecast, "forecaster-2")["results"]}
    # THEN web keeps its one step, and the change is recorded now, from its intent
    assert retried["web"]["status"] == "no_change_needed", retried["web"]
    assert sizes(member_eks, "web")["desired_size"] == 5
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    [change] = state_table.query_history(key, fake_clock.now().replace(year=2000))
    assert change.record["new"]["desired_size"] == 5
    assert change.record["recorded_by_retry"] is True
