"""The demo's validated changes: a scaler change in the demo world goes to change_validator as
its CloudTrail record, the health monitor probes around it, the validator's callback runs when
the replayed clock reaches it, and the timeline shows the verdict."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import boto3

from fleetctl.demo import DEMO_ZONE, SIZING_FUNCTIONS, DayReplay, Timeline
from fleetctl.demo_validation import (
    HEALTH_MONITOR,
    VALIDATOR,
    DaySteps,
    scaler_changes,
    verdict_line,
)
from fleetctl.function_workers import WorkerPool
from fleetctl.local_world import local_world, stack_settings
from fleetctl.mocked_program import run_program
from fleetctl.schedule_replay import Firing, PlannedSchedule, planned_schedules

MONDAY = date(2026, 11, 30)
WORKERS = ("eks_scaler", HEALTH_MONITOR, VALIDATOR, "notification_router")


def _schedule(function: str, expression: str, action: str) -> PlannedSchedule:
    return PlannedSchedule(f"{function}-{action}", expression, "Asia/Kolkata", function, {})


def test_probes_run_before_a_scaling_firing_and_after_a_change_until_the_bake_ends():
    # GIVEN a 5-minute health monitor thinned to the hour and a scale-up at 08:00
    monitor = _schedule(HEALTH_MONITOR, "rate(5 minutes)", "check")
    scaler = _schedule("eks_scaler", "cron(0 8 * * ? *)", "scale_up")
    at = datetime.combine(MONDAY, time(8, 0), DEMO_ZONE)
    firings = [Firing(at, scaler), Firing(at, monitor), Firing(at + timedelta(hours=1), monitor)]
    steps = DaySteps([monitor, scaler], firings, timedelta(minutes=15), SIZING_FUNCTIONS)
    # WHEN the steps are taken and the scale-up changes a node group
    taken = []
    while (step := steps.next_step()) is not None:
        taken.append(step if isinstance(step, datetime) else step[1].at)
        if not isinstance(step, datetime) and step[1].schedule is scaler:
            steps.after_change(at)
    # THEN the monitor runs every 5 minutes over the bake before and past it after, in order
    minutes = [int((moment - at).total_seconds() // 60) for moment in taken]
    assert minutes == [-15, -10, -5, 0, 0, 5, 10, 15, 20, 60]


def test_probes_before_a_scaling_firing_run_even_when_firings_of_its_minute_come_first():
    # GIVEN the validator's sweep firing at 08:00 just before the scale-up of the same minute
    monitor = _schedule(HEALTH_MONITOR, "rate(5 minutes)", "check")
    sweep = _schedule("change_validator", "rate(1 hour)", "sweep")
    scaler = _schedule("eks_scaler", "cron(0 8 * * ? *)", "scale_up")
    at = datetime.combine(MONDAY, time(8, 0), DEMO_ZONE)
    firings = [Firing(at, sweep), Firing(at, scaler)]
    steps = DaySteps([monitor, sweep, scaler], firings, timedelta(minutes=15), SIZING_FUNCTIONS)
    # WHEN the steps are taken
    taken = []
    while (step := steps.next_step()) is not None:
        taken.append(step if isinstance(step, datetime) else step[1].at)
    # THEN the monitor still runs over the bake before the scale-up (the validator's baseline),
    # ahead of both firings
    minutes = [int((moment - at).total_seconds() // 60) for moment in taken]
    assert minutes == [-15, -10, -5, 0, 0]


def test_a_scaler_answer_gives_the_changes_that_have_an_update_id():
    # GIVEN a scaler answer that changed one node group and left the other
    at = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    answer = {
        "account_id": "222222222222",
        "region": "ap-south-1",
        "cluster": "dev-apps",
        "results": [
            {
                "nodegroup": "system",
                "status": "scaling_initiated",
                "update_id": "u-1",
                "new": {"min_size": 1, "desired_size": 3, "max_size": 4},
            },
            {"nodegroup": "batch", "status": "no_change_needed"},
        ],
    }
    # WHEN its changes are read and the first is turned into its CloudTrail record
    [change] = scaler_changes(answer, at)
    event = change.cloudtrail_event("lambda-fleet-dev-member-eks-scaler")
    # THEN only the changed node group is a change, recorded as the scaler asked EKS for it
    assert (change.node_group, change.desired_size, change.update_id) == ("system", 3, "u-1")
    assert event["detail"]["requestParameters"] == {
        "name": "dev-apps",
        "nodegroupName": "system",
        "scalingConfig": {"desiredSize": 3},
    }
    # AND an answer without results (an HTTP answer) has no change
    assert scaler_changes({"statusCode": 200}, at) == []


def test_a_degraded_verdict_line_gives_the_figures_and_the_rollback():
    # GIVEN the validator's degraded verdict on a node group
    result = {
        "verdict": "degraded",
        "cluster": "dev-apps",
        "node_group": "system",
        "reason": "endpoint/api error_rate 0.0 -> 1.0 (+1.0)",
        "rollback": {"action": "restore system to 1/2/4", "automatic": False},
    }
    # WHEN it becomes a timeline line THEN the line names the figure that moved and the rollback
    assert verdict_line(result) == (
        "dev-apps/system degraded: endpoint/api error_rate 0.0 -> 1.0 (+1.0); "
        "rollback: restore system to 1/2/4"
    )
    # AND a validation still baking has no verdict line yet
    assert verdict_line({"status": "baking", "phase": "baking"}) is None


def test_a_scaler_change_in_the_demo_world_leads_to_a_verdict_line(tmp_path: Path):
    # GIVEN the dev stack's world on a Monday, with the scaler, health monitor and validator
    run = run_program("dev")
    schedules = planned_schedules(run)
    scale_down = next(
        schedule
        for schedule in schedules
        if schedule.function == "eks_scaler" and schedule.payload.get("action") == "scale_down"
    )
    at = datetime.combine(MONDAY, time(18, 0), DEMO_ZONE)
    day_end = datetime.combine(MONDAY, time(23, 59), DEMO_ZONE)
    with local_world("dev", run, day_end, dry_run=False) as local:
        environments = {
            name: {**local.environments[name], "FLEET_DRY_RUN": "false"} for name in WORKERS
        }
        with WorkerPool(environments, tmp_path) as pool:
            replay = DayReplay(
                local.world, pool, stack_settings("dev"), "dev", environments[VALIDATOR]
            )
            local.receiver.function_invoker = replay.invoke_function
            timeline = Timeline(total=1)
            steps = DaySteps(schedules, [Firing(at, scale_down)], replay.bake, SIZING_FUNCTIONS)
            # WHEN the evening scale-down fires and the replay steps on past its bake
            while (step := steps.next_step()) is not None:
                if isinstance(step, datetime):
                    replay.play_probe(timeline, steps.probe(step), 0)
                else:
                    replay.play_firing(timeline, step[1], step[0], steps)
            table = boto3.resource(
                "dynamodb",
                endpoint_url=local.world.endpoint_url,
                region_name=local.world.region,
                **local.world.hub_credentials,
            ).Table(environments[VALIDATOR]["STATE_TABLE_NAME"])
            records = [
                json.loads(item["data"])
                for item in table.scan()["Items"]
                if item["pk"].startswith("STATE#change_validator/")
                and item["sk"] == "VALUE#validation"
            ]
    # THEN each changed node group has a `validate` line at the first step after its bake
    # (Scheduler's delivery allowed for), passed
    verdicts = [line for line in timeline.lines if "[validate" in line.replace(" ", "")]
    assert verdicts, timeline.lines
    assert all(" 18:20 " in line and " passed: " in line for line in verdicts), verdicts
    # AND the baseline and the bake were measured on the health monitor's probes
    assert records
    for record in records:
        for measured in (record["baseline"], record["after"]):
            endpoints = [
                figures for subject, figures in measured.items() if subject.startswith("endpoint/")
            ]
            assert endpoints and all(figures["samples"] >= 3 for figures in endpoints), record
