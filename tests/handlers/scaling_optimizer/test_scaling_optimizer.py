"""scaling_optimizer on a generated 14-day history: the sizes it recommends keep utilisation on
target with fewer changes when replayed through the scaler's own decision logic, and its patch
applies cleanly to the stack file and passes the program's settings validation."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import yaml

from components.settings import load_settings, settings_document
from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.inventory import Cluster, NodeGroup
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.performance_documents import (
    LATEST_RECOMMENDATIONS_KEY,
    HourlyUtilisation,
    PerformanceAnalysis,
    Recommendations,
    analyses_start_after,
    analysis_key,
    cluster_prefix,
)
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from fleetctl.recommendations import render
from handlers.eks_scaler.calendar_checks import calendar_refusal
from handlers.eks_scaler.decision import DecisionKind, NodeGroupFacts, decide
from handlers.eks_scaler.models import Action, NodeGroupRequest, ScalerEvent
from handlers.eks_scaler.sizing import Sizes
from handlers.scaling_optimizer import app, memory, optimization
from handlers.scaling_optimizer import history as analysis_reading
from handlers.scaling_optimizer.environment import OptimizerEnvironment
from handlers.scaling_optimizer.history import desired_size_timeline
from handlers.scaling_optimizer.memory import RECENT_DETAIL_DAYS
from handlers.scaling_optimizer.optimization import (
    MEMBERS_KEY,
    OptimizerServices,
    is_working_hour,
)
from handlers.scaling_optimizer.sizing import (
    DemandHour,
    recommend_sizes,
)
from tests.handlers.conftest import (
    DATA_BUCKET_NAME,
    HANDLER_STACK_FILE,
    INVENTORY_DOCUMENT,
    MEMBER_ACCOUNT_ID,
    REGION,
    STATE_TABLE_NAME,
)
from tests.handlers.deadlines import ContextRunningOutOfTime, LambdaTime
from tests.handlers.endless_listings import EndlessListing
from tests.handlers.faults import (
    InjectedFault,
    answer_malformed,
    fail_every_attempt,
)
from tests.handlers.trickling_objects import trickling_get_object

CLUSTER = "dev-apps"
GROUP = "system"
ZONE = ZoneInfo("Asia/Kolkata")
WORKING_BUSY_NODES = 3.0
OFF_HOURS_BUSY_NODES = 1.0
ON_TARGET_CEILING = 80.0
"""The cluster's 70 % target plus the optimizer's default 10-point tolerance."""


def is_working(moment: datetime) -> bool:
    local = moment.astimezone(ZONE)
    return local.weekday() < 5 and 8 <= local.hour < 18


def busy_nodes(moment: datetime) -> float:
    return WORKING_BUSY_NODES if is_working(moment) else OFF_HOURS_BUSY_NODES


def historical_desired(moment: datetime) -> int:
    """What the scaler did: flapped between 4 and 3 nodes every hour of the day, 1 at night."""
    if not is_working(moment):
        return 1
    return 4 if moment.hour % 2 == 0 else 3


@dataclass(frozen=True)
class GeneratedHistory:
    hours: list[datetime]
    scaler_changes: int


def generate_history(
    now: datetime, state_table: StateTable, clock: ManualClock, cluster: str = CLUSTER
) -> GeneratedHistory:
    """14 days of analyses (4 hours each) of `cluster` and the scaler's changes of its node
    group in the state table (`record_change`'s items; see `_record_scaler_changes`)."""
    s3 = boto3.client("s3", region_name=REGION)
    start = (now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    hours = [start + timedelta(hours=index) for index in range(14 * 24)]
    for offset in range(0, len(hours), 4):
        window = hours[offset : offset + 4]
        analysed_at = window[-1] + timedelta(hours=1)
        analysis = PerformanceAnalysis(
            schema_version=1,
            account_id=MEMBER_ACCOUNT_ID,
            region=REGION,
            cluster=cluster,
            analysed_at=analysed_at,
            window_start=window[0],
            window_end=analysed_at,
            scope="cluster",
            metrics=[],
            load_balancers=[],
            bottlenecks=[],
            regressions=[],
            hourly=[
                HourlyUtilisation(
                    hour=hour,
                    cpu_percent=busy_nodes(hour) / historical_desired(hour) * 100,
                    memory_percent=None,
                    node_count=None,
                )
                for hour in window
            ],
        )
        s3.put_object(
            Bucket=DATA_BUCKET_NAME,
            Key=analysis_key(MEMBER_ACCOUNT_ID, REGION, cluster, analysed_at),
            Body=analysis.model_dump_json().encode("utf-8"),
        )
    changes = _record_scaler_changes(now, hours, state_table, clock, cluster)
    clock.set(now)
    return GeneratedHistory(hours[1:], changes)


_RECORDED_CHANGES: dict[tuple[datetime, str], tuple[list[dict[str, Any]], int]] = {}
"""The state table items `record_change` wrote for a (now, cluster) history, in this process."""


def _record_scaler_changes(
    now: datetime, hours: list[datetime], state_table: StateTable, clock: ManualClock, cluster: str
) -> int:
    """Records the scaler's changes of `cluster`'s node group through `record_change`, the
    first time in the process; after that, writes the items it wrote then. The items depend on
    the hours and the clock alone, and moto's TransactWriteItems copies the whole table for
    each change (about 20 ms each at a history's size, 109 changes a history)."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    recorded = _RECORDED_CHANGES.get((now, cluster))
    if recorded is not None:
        items, changes = recorded
        for start in range(0, len(items), 25):
            dynamodb.batch_write_item(
                RequestItems={
                    STATE_TABLE_NAME: [
                        {"PutRequest": {"Item": item}} for item in items[start : start + 25]
                    ]
                }
            )
        return changes
    before = _table_items(dynamodb)
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, cluster, GROUP)
    changes = 0
    for previous_hour, hour in pairwise(hours):
        before_size, after_size = historical_desired(previous_hour), historical_desired(hour)
        if before_size == after_size:
            continue
        clock.set(hour)
        state_table.record_change(
            key,
            {
                "source": "eks_scaler",
                "previous": {"min_size": 1, "desired_size": before_size, "max_size": 4},
                "new": {"min_size": 1, "desired_size": after_size, "max_size": 4},
            },
            history_ttl_seconds=90 * 86400,
        )
        changes += 1
    written = [item for item in _table_items(dynamodb) if item not in before]
    _RECORDED_CHANGES[(now, cluster)] = (written, changes)
    return changes


def _table_items(dynamodb: Any) -> list[dict[str, Any]]:
    return [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=STATE_TABLE_NAME)
        for item in page["Items"]
    ]


def put_cost_detail(now: datetime) -> None:
    """The cost analyzer's detail with one function of this stack that uses far less memory than
    it has, and one of another stack."""
    detail = {
        "date": now.date().isoformat(),
        "lambda_memory": [
            {
                "function": "lf-handlers-health-monitor",
                "current_mb": 256,
                "max_used_mb": 120,
                "invocations": 4032,
                "recommended_mb": 192,
                "monthly_saving_usd": 0.42,
                "recommendation": "decrease",
            },
            {
                # Stack handlers-eu's function: its name starts with this stack's prefix.
                "function": "lf-handlers-eu-health-monitor",
                "current_mb": 512,
                "max_used_mb": 100,
                "invocations": 4032,
                "recommended_mb": 192,
                "monthly_saving_usd": 0.9,
                "recommendation": "decrease",
            },
            {
                "function": "lf-handlers-eks-scaler",
                "current_mb": 256,
                "max_used_mb": 190,
                "invocations": 300,
                "recommended_mb": 256,
                "monthly_saving_usd": 0.0,
                "recommendation": "keep",
            },
        ],
    }
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=f"reports/cost/{now.date().isoformat()}/detail.json",
        Body=json.dumps(detail).encode("utf-8"),
    )


@dataclass(frozen=True)
class Replay:
    changes: int
    on_target_share: float


def replay_through_the_scaler(
    hours: list[datetime], min_size: int, desired_size: int, max_size: int, off_hours: int
) -> Replay:
    """The cluster schedule with these sizes, decided hour by hour by the scaler's `decide`."""
    configured = NodeGroup(
        name=GROUP,
        capacity_type="ON_DEMAND",
        instance_types=("m7g.large",),
        min_size=min_size,
        desired_size=desired_size,
        max_size=max_size,
        floor=1,
    )
    current = Sizes(min_size, desired_size if is_working(hours[0]) else off_hours, max_size)
    last_change: datetime | None = None
    changes = on_target = 0
    for hour in hours:
        action, wanted = (
            (Action.SCALE_UP, desired_size) if is_working(hour) else (Action.SCALE_DOWN, off_hours)
        )
        facts = NodeGroupFacts(
            current=current,
            status="ACTIVE",
            capacity_type="ON_DEMAND",
            configured=configured,
            saved=None,
            last_change_at=last_change,
            cooldown_seconds=300,
        )
        decision = decide(action, NodeGroupRequest(name=GROUP, desired_size=wanted), facts, hour)
        if decision.kind is DecisionKind.CHANGE and decision.target is not None:
            current, last_change, changes = decision.target, hour, changes + 1
        on_target += busy_nodes(hour) / current.desired_size * 100 <= ON_TARGET_CEILING
    return Replay(changes, on_target / len(hours))


def historical_on_target_share(hours: list[datetime]) -> float:
    on_target = sum(
        busy_nodes(hour) / historical_desired(hour) * 100 <= ON_TARGET_CEILING for hour in hours
    )
    return on_target / len(hours)


@pytest.fixture
def optimizer_services(
    state_table: StateTable,
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    fleet_environment: dict[str, str],
) -> OptimizerServices:
    """The services the handler runs with, so a test can inject a fault into their clients."""
    return OptimizerServices.create(
        app.FUNCTION.name, load_environment(OptimizerEnvironment), clock=fake_clock
    )


@pytest.fixture
def optimize(
    optimizer_services: OptimizerServices, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    monkeypatch.setattr(app.FUNCTION, "services", lambda: optimizer_services)
    return lambda event: app.lambda_handler(event, lambda_context)


def latest_recommendations() -> Recommendations:
    body = (
        boto3.client("s3", region_name=REGION)
        .get_object(Bucket=DATA_BUCKET_NAME, Key=LATEST_RECOMMENDATIONS_KEY)["Body"]
        .read()
    )
    return Recommendations.model_validate(json.loads(body))


def recommended(recommendations: Recommendations, *path_tail: str) -> int:
    return next(
        change.recommended
        for change in recommendations.changes
        if tuple(str(part) for part in change.path[-len(path_tail) :]) == path_tail
    )


def test_recommended_sizes_keep_utilisation_on_target_with_fewer_scaler_changes(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN 14 days in which the scaler flapped between 3 and 4 nodes in working hours and the
    # cluster ran above its 70 % target, and kept 1 node at night at 100 % CPU
    now = fake_clock.now()
    history = generate_history(now, state_table, fake_clock)

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN it recommends new sizes for the node group and its off-hours size
    assert result["status"] == "ok", result
    recommendations = latest_recommendations()
    sizes = {
        "min": recommended(recommendations, "min_size"),
        "desired": recommended(recommendations, "desired_size"),
        "max": recommended(recommendations, "max_size"),
        "off": recommended(recommendations, "off_hours_desired", GROUP),
    }
    assert sizes == {"min": 2, "desired": 5, "max": 5, "off": 2}
    assert all(change.evidence for change in recommendations.changes)
    # AND replayed through the scaler's decision logic, those sizes keep utilisation on target
    # with fewer changes than the scaler made
    replay = replay_through_the_scaler(
        history.hours, sizes["min"], sizes["desired"], sizes["max"], sizes["off"]
    )
    assert replay.on_target_share >= 0.95
    assert historical_on_target_share(history.hours) < 0.5
    assert replay.changes < history.scaler_changes
    # AND beside the patch, the scaler's scale-down threshold that its one-node steps, replayed
    # over the same hours, would have needed to stay on target without a change
    assert result["scaler_settings"] == ["SCALER_SCALE_DOWN_UTILIZATION"]
    [advice] = recommendations.scaler_settings
    assert (advice.current, advice.recommended) == (30.0, 20.0)
    assert advice.evidence == (
        "replayed over 335 node-group hours at the 70 % target: 0 changes, 100% of hours on "
        "target (current settings: 19 changes, 97%)"
    )


def put_analyses(cpu_by_hour: dict[datetime, float], memory_percent: float | None = None) -> None:
    """One analysis of the cluster per 4 measured hours (in time order), made the hour after;
    every hour's memory utilisation `memory_percent`."""
    s3 = boto3.client("s3", region_name=REGION)
    hours = sorted(cpu_by_hour)
    for offset in range(0, len(hours), 4):
        window = hours[offset : offset + 4]
        analysed_at = window[-1] + timedelta(hours=1)
        analysis = PerformanceAnalysis(
            schema_version=1,
            account_id=MEMBER_ACCOUNT_ID,
            region=REGION,
            cluster=CLUSTER,
            analysed_at=analysed_at,
            window_start=window[0],
            window_end=analysed_at,
            scope="cluster",
            metrics=[],
            load_balancers=[],
            bottlenecks=[],
            regressions=[],
            hourly=[
                HourlyUtilisation(
                    hour=hour,
                    cpu_percent=cpu_by_hour[hour],
                    memory_percent=memory_percent,
                    node_count=None,
                )
                for hour in window
            ],
        )
        s3.put_object(
            Bucket=DATA_BUCKET_NAME,
            Key=analysis_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, analysed_at),
            Body=analysis.model_dump_json().encode("utf-8"),
        )


def test_a_memory_bound_cluster_is_sized_on_its_memory_as_the_scaler_scales_it(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
) -> None:
    # GIVEN a node group the scaler never changed (the stack file's 2 nodes, max_size 4) in a
    # cluster measured for two days at 20 % CPU and 90 % memory: 1.8 nodes' worth of memory
    # busy, which 3 nodes hold at the 70 % target (the scaler steps on the busier of the two)
    now = fake_clock.now().replace(minute=0, second=0, microsecond=0)
    put_analyses(
        dict.fromkeys([now - timedelta(hours=hour) for hour in range(1, 49)], 20.0),
        memory_percent=90.0,
    )

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN max_size is the 3 nodes the memory needs, not the 1 that CPU alone would have left
    # (under the memory the pods use), and the evidence names the memory
    assert result["status"] == "ok", result
    [max_size] = [c for c in latest_recommendations().changes if c.path[-1] == "max_size"]
    assert max_size.recommended == 3
    assert "at 20 % CPU, 90 % memory (1.80 busy nodes)" in max_size.evidence


def test_the_scaler_settings_replay_starts_again_after_days_without_analyses(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
) -> None:
    # GIVEN a node group the scaler never changed (the stack file's 2 nodes) that ran a day at
    # 100 % CPU (2 busy nodes: 3 hold them at the 70 % target), then two days no analysis
    # measured, then a day at 20 % (0.4 busy nodes: 1 holds them)
    now = fake_clock.now().replace(minute=0, second=0, microsecond=0)
    busy_day = [now - timedelta(days=4, hours=hour) for hour in range(24)]
    quiet_day = [now - timedelta(hours=hour) for hour in range(1, 25)]
    put_analyses(dict.fromkeys(busy_day, 100.0) | dict.fromkeys(quiet_day, 20.0))

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN the current settings' replay (a node more above 75 %, one less under 30 %, bounds
    # 1-3) steps up to 3 nodes on the busy day and, from the 2 nodes the node group had when
    # measuring resumed, down to 1 on the quiet day: 2 changes, not 3 as if the quiet day had
    # followed the busy one and started at the 3 nodes the replay had reached
    assert result["status"] == "ok", result
    recommendations = latest_recommendations()
    assert recommended(recommendations, "max_size") == 3
    [advice, *_] = recommendations.scaler_settings
    assert advice.evidence.startswith("replayed over 48 node-group hours ")
    assert advice.evidence.endswith("(current settings: 2 changes, 98%)")


def test_the_patch_applies_cleanly_to_the_stack_file_and_passes_settings_validation(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
    tmp_path: Path,
) -> None:
    # GIVEN the generated history and a cost report recommending less memory for one function
    generate_history(fake_clock.now(), state_table, fake_clock)
    put_cost_detail(fake_clock.now())

    # WHEN the optimizer runs and its recommendations are rendered as a patch
    optimize({"action": "optimize"})
    recommendations = latest_recommendations()
    stack_file = tmp_path / "Pulumi.handlers.yaml"
    stack_file.write_text(HANDLER_STACK_FILE.read_text())
    patch = render(recommendations, stack_file.read_text(), stack_file.name)
    (tmp_path / "recommendations.patch").write_text(patch)

    # THEN `git apply` applies it without complaint
    subprocess.run(
        ["git", "apply", "--unsafe-paths", "recommendations.patch"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    # AND the patched stack file passes the program's validation with the recommended values
    config = yaml.safe_load(stack_file.read_text())["config"]
    settings = load_settings("handlers", settings_document(config))
    group = settings.members[0].clusters[0].node_groups[0]
    assert (group.min_size, group.desired_size, group.max_size) == (2, 5, 5)
    assert settings.function_memory_mb("health_monitor") == 192
    assert settings.function_memory_mb("eks_scaler") is None
    # AND every changed line carries its evidence as a comment
    added = [line for line in patch.splitlines() if line.startswith("+") and "+++" not in line]
    values = [line for line in added if not line.rstrip().endswith(":")]
    assert len(values) == 5
    assert all("  # " in line for line in values)


def test_the_patch_keeps_max_size_at_or_above_the_node_groups_floor(  # noqa: PLR0917
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
    inventory_in_s3: dict[str, Any],
    fleet_environment: dict[str, str],
    tmp_path: Path,
) -> None:
    # GIVEN the generated history (at most 5 nodes needed) for a node group whose stack file
    # sets a floor of 6 under a max_size of 8
    group = inventory_in_s3["members"][0]["clusters"][0]["node_groups"][0]
    group.update(floor=6, max_size=8)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=fleet_environment["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory_in_s3).encode("utf-8"),
    )
    stack_file = tmp_path / "Pulumi.handlers.yaml"
    stack_file.write_text(
        HANDLER_STACK_FILE.read_text().replace(
            "              max_size: 4\n", "              max_size: 8\n              floor: 6\n"
        )
    )
    generate_history(fake_clock.now(), state_table, fake_clock)

    # WHEN the optimizer runs and its patch is applied to that stack file
    optimize({"action": "optimize"})
    patch = render(latest_recommendations(), stack_file.read_text(), stack_file.name)
    (tmp_path / "recommendations.patch").write_text(patch)
    subprocess.run(
        ["git", "apply", "--unsafe-paths", "recommendations.patch"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )

    # THEN the patched stack file passes the program's validation: max_size is not put under
    # the floor the scaler keeps
    config = yaml.safe_load(stack_file.read_text())["config"]
    settings = load_settings("handlers", settings_document(config))
    patched = settings.members[0].clusters[0].node_groups[0]
    assert patched.floor == 6
    assert patched.max_size >= 6


def test_without_a_measured_off_hours_hour_the_sizes_keep_the_schedules_off_hours_size(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
    tmp_path: Path,
) -> None:
    # GIVEN a cluster measured in its working hours only (its nodes report nothing at night),
    # its node group (2 nodes, off-hours size 1) at 100 % CPU: 3 nodes hold every hour at 70 %
    now = fake_clock.now().replace(minute=0, second=0, microsecond=0)
    window = [now - timedelta(hours=hour) for hour in range(1, 14 * 24)]
    put_analyses(dict.fromkeys(filter(is_working, window), 100.0))

    # WHEN the optimizer runs and its patch is applied to the stack file
    optimize({"action": "optimize"})
    recommendations = latest_recommendations()
    stack_file = tmp_path / "Pulumi.handlers.yaml"
    stack_file.write_text(HANDLER_STACK_FILE.read_text())
    (tmp_path / "recommendations.patch").write_text(
        render(recommendations, stack_file.read_text(), stack_file.name)
    )
    subprocess.run(
        ["git", "apply", "recommendations.patch"], cwd=tmp_path, check=True, capture_output=True
    )

    # THEN the patched file passes the program's validation: min_size stays at the off-hours
    # size no measured hour argues against (3 put the night's 1 node under min_size, which the
    # settings refuse, as EKS would refuse the scaler's night size)
    config = yaml.safe_load(stack_file.read_text())["config"]
    cluster = load_settings("handlers", settings_document(config)).members[0].clusters[0]
    group = cluster.node_groups[0]
    assert (group.min_size, group.desired_size, group.max_size) == (1, 3, 3)
    assert cluster.schedule is not None
    assert cluster.schedule.off_hours_desired == {"system": 1}


def test_a_cluster_whose_node_groups_cluster_autoscaler_sizes_gets_no_sizes_and_says_why(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
    inventory_in_s3: dict[str, Any],
    fleet_environment: dict[str, str],
) -> None:
    # GIVEN two days of analyses of a cluster the stack file declares Cluster Autoscaler runs on:
    # it sets the node groups' sizes, which the scaler leaves alone and does not record, so the
    # node counts the optimizer would read busy nodes from are not the ones that ran
    inventory_in_s3["members"][0]["clusters"][0]["autoscaler"] = "cluster-autoscaler"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=fleet_environment["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory_in_s3).encode("utf-8"),
    )
    now = fake_clock.now().replace(minute=0, second=0, microsecond=0)
    put_analyses(dict.fromkeys([now - timedelta(hours=hour) for hour in range(1, 49)], 50.0))

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN no size and no scaler setting is recommended for it (a max_size from those counts
    # would cap the autoscaler under what the cluster ran), and a note says why
    assert result["status"] == "ok", result
    assert (result["changes"], result["scaler_settings"]) == ([], [])
    assert (
        f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}: its node groups' sizes are set by "
        "cluster-autoscaler, which the scaler's history does not record; no sizes recommended"
    ) in result["notes"]


def test_no_recommended_size_exceeds_the_largest_node_group_the_settings_accept(
    fake_clock: ManualClock,
) -> None:
    # GIVEN a node group that ran at its largest allowed size, 450 nodes, at 100 % CPU, in a
    # cluster targeting 70 %
    hours = [DemandHour(fake_clock.now(), 450, 100.0, working=True)]
    # WHEN its sizes are recommended
    sizes = recommend_sizes(hours, 70.0, "ON_DEMAND", node_group_floor=1)
    # THEN none is above 450 (NodeGroupSettings' limit), so the patched file still validates,
    # and the evidence says the size was capped
    assert sizes.max_size.value == 450
    assert sizes.desired_size.value == 450
    assert "the largest size the settings accept" in sizes.max_size.evidence


def test_an_idle_on_demand_node_group_keeps_one_node_as_its_minimum(
    fake_clock: ManualClock,
) -> None:
    # GIVEN an ON_DEMAND node group whose quietest hour used no CPU at all (0 nodes needed) and
    # whose stack entry sets no floor of its own
    start = fake_clock.now()
    hours = [
        DemandHour(start, 3, 0.0, working=False),
        DemandHour(start + timedelta(hours=1), 3, 60.0, working=True),
    ]
    # WHEN its sizes are recommended
    sizes = recommend_sizes(hours, 70.0, "ON_DEMAND", node_group_floor=0)
    # THEN min_size is the capacity type's floor, 1 (a node for system pods), not the 0 the
    # hour needed, and its evidence names the rule that raised it
    assert sizes.min_size.value == 1
    assert sizes.min_size.evidence.endswith("(ON_DEMAND keeps at least 1)")
    assert sizes.off_hours is not None
    assert sizes.off_hours.value == 1


def test_an_idle_spot_node_group_may_go_down_to_zero(fake_clock: ManualClock) -> None:
    # GIVEN the same idle hour in a SPOT node group without a floor of its own
    start = fake_clock.now()
    hours = [
        DemandHour(start, 3, 0.0, working=False),
        DemandHour(start + timedelta(hours=1), 3, 60.0, working=True),
    ]
    # WHEN its sizes are recommended
    sizes = recommend_sizes(hours, 70.0, "SPOT", node_group_floor=0)
    # THEN min_size is 0: the SPOT floor is 0, as the scaler's rule
    assert sizes.min_size.value == 0
    assert sizes.off_hours is not None
    assert sizes.off_hours.value == 0


def test_without_a_measured_working_hour_the_desired_size_evidence_says_so(
    fake_clock: ManualClock,
) -> None:
    # GIVEN a young cluster whose only measured hours are off hours (its first weekend)
    start = fake_clock.now()
    hours = [
        DemandHour(start + timedelta(hours=i), 4, 30.0 + 40.0 * (i == 5), working=False)
        for i in range(24)
    ]
    # WHEN its sizes are recommended
    sizes = recommend_sizes(hours, 70.0, "ON_DEMAND", node_group_floor=1)
    # THEN the daytime size is the busiest hour's, and its evidence does not call that hour a
    # working hour (none was measured) and, as every size's, says how few hours it rests on
    assert sizes.desired_size.value == sizes.max_size.value == 4
    assert sizes.desired_size.evidence.startswith(
        "busiest of 24 measured hours (no working hour measured): "
    )
    assert sizes.min_size.evidence.startswith("quietest of 24 measured hours: ")
    assert sizes.off_hours is not None
    assert sizes.off_hours.evidence.startswith("busiest of 24 measured off-hours hours: ")


@pytest.mark.parametrize(
    ("local_time", "working"),
    [
        pytest.param(datetime(2025, 6, 3, 23, 0), True, id="Tuesday-evening"),
        pytest.param(datetime(2025, 6, 4, 2, 0), True, id="Wednesday-night-of-Tuesday-window"),
        pytest.param(datetime(2025, 6, 4, 12, 0), False, id="Wednesday-midday"),
        pytest.param(datetime(2025, 6, 7, 2, 0), True, id="Saturday-night-of-Friday-window"),
        pytest.param(datetime(2025, 6, 2, 2, 0), False, id="Monday-night-of-Sunday"),
    ],
)
def test_working_hours_of_a_schedule_past_midnight_belong_to_the_day_they_start(
    local_time: datetime, working: bool
) -> None:
    # GIVEN a night-shift schedule: scale-up at 20:00, scale-down at 06:00, Monday to Friday
    document = copy.deepcopy(INVENTORY_DOCUMENT["members"][0]["clusters"][0])
    document["schedule"].update(scale_up_time="20:00:00", scale_down_time="06:00:00")
    cluster = Cluster.model_validate(document)
    # WHEN an hour is classed as working or off-hours
    # THEN the hours between 20:00 and 06:00 of a window starting on a schedule day are working
    # hours, as the scaler keeps them, and the rest are off-hours
    assert is_working_hour(cluster, local_time.replace(tzinfo=ZONE)) is working


@pytest.mark.parametrize(
    ("utc_hour", "working"),
    [
        pytest.param(0, True, id="02:00-summer-time-before-the-scale-down"),
        pytest.param(1, False, id="02:00-winter-time-after-the-scale-down"),
        pytest.param(2, False, id="03:00-winter-time"),
    ],
)
def test_the_hour_the_clocks_repeat_after_the_scale_down_is_off_hours(
    utc_hour: int, working: bool
) -> None:
    # GIVEN a night shift in Europe/Berlin ending at 02:30, every day: on 2026-10-25 the clocks
    # go back from 03:00 summer time to 02:00, so 02:30 is read twice, and the scaler's one
    # scale-down runs at the first reading (00:30 UTC)
    document = copy.deepcopy(INVENTORY_DOCUMENT["members"][0]["clusters"][0])
    document["schedule"].update(
        time_zone="Europe/Berlin",
        scale_up_time="20:00:00",
        scale_down_time="02:30:00",
        days=["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"],
    )
    cluster = Cluster.model_validate(document)
    # WHEN the measured hours of that night are classed
    moment = datetime(2026, 10, 25, utc_hour, tzinfo=UTC)
    # THEN the hour of the second 02:00-03:00 is off-hours, as the scaler ran it: the window
    # closed at the first 02:30 and does not open again when the wall clock reads 02:00
    assert is_working_hour(cluster, moment) is working


FORCED_WORKING_SATURDAY = date(2025, 6, 7)
HOLIDAY_WEDNESDAY = date(2025, 6, 4)


def _scheduled_scale_up_refusal(cluster: Cluster, day: date) -> str | None:
    """The scaler's own decision on the scheduled scale-up run of `day` (at the schedule's
    scale-up time): None when its calendar lets the daytime size be restored."""
    assert cluster.schedule is not None
    run = datetime.combine(day, cluster.schedule.scale_up_time, tzinfo=ZONE)
    event = ScalerEvent(
        action=Action.SCALE_UP,
        account_id=MEMBER_ACCOUNT_ID,
        region=REGION,
        cluster=CLUSTER,
        scheduled=True,
        run=run.astimezone(UTC).isoformat(),
    )
    return calendar_refusal(event, GROUP, cluster, run)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        pytest.param(FORCED_WORKING_SATURDAY, True, id="forced-working-Saturday"),
        pytest.param(HOLIDAY_WEDNESDAY, False, id="holiday-Wednesday"),
        pytest.param(date(2025, 6, 5), True, id="ordinary-Thursday"),
        pytest.param(date(2025, 6, 8), False, id="ordinary-Sunday"),
    ],
)
def test_the_optimizer_classes_hours_by_the_cluster_calendar_as_the_scaler_acts_on_them(
    day: date, working: bool
) -> None:
    # GIVEN a Monday-to-Friday 08:00-18:00 schedule whose cluster calendar forces Saturday
    # 2025-06-07 to be a working day and makes Wednesday 2025-06-04 a holiday
    document = copy.deepcopy(INVENTORY_DOCUMENT["members"][0]["clusters"][0])
    document["calendar"].update(
        working_days=[FORCED_WORKING_SATURDAY.isoformat()],
        holidays=[HOLIDAY_WEDNESDAY.isoformat()],
    )
    cluster = Cluster.model_validate(document)
    # WHEN the optimizer classes the measured hours of that day's daytime
    hours = [datetime.combine(day, time(hour), tzinfo=ZONE) for hour in range(8, 18)]
    classes = {is_working_hour(cluster, hour) for hour in hours}
    # THEN every one is a working hour exactly when the scaler's scheduled scale-up of that day
    # runs (a forced working Saturday's load is working-hours load, a holiday's idle load is
    # off-hours load), so that the two cannot drift apart
    scaler_scales_up = _scheduled_scale_up_refusal(cluster, day) is None
    assert classes == {scaler_scales_up} == {working}


def test_a_size_the_scaler_set_before_the_window_is_the_size_until_its_next_change(
    state_table: StateTable, fake_clock: ManualClock
) -> None:
    # GIVEN system (the stack file's desired size 2) raised to 10 through the scaler 20 days
    # ago and not changed since: no change in the optimizer's 14 days
    now = fake_clock.now()
    sizes = {"min_size": 1, "max_size": 12}
    fake_clock.set(now - timedelta(days=20))
    state_table.record_change(
        node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, GROUP),
        {
            "source": "eks_scaler",
            "action": "scale_up",
            "previous": {**sizes, "desired_size": 2},
            "new": {**sizes, "desired_size": 10},
        },
        history_ttl_seconds=90 * 86400,
    )
    fake_clock.set(now)
    cluster = Cluster.model_validate(INVENTORY_DOCUMENT["members"][0]["clusters"][0])
    # WHEN the optimizer reads the node group's desired size over its window
    desired_at = desired_size_timeline(
        state_table,
        MEMBER_ACCOUNT_ID,
        cluster,
        node_group=GROUP,
        since=now - timedelta(days=14),
        configured_desired=2,
    )
    # THEN every hour ran the 10 nodes the scaler set, not the stack file's 2: its CPU share
    # read as the load of 2 nodes would size max_size at a fifth of what that hour needed
    assert desired_at(now - timedelta(days=13)) == 10
    assert desired_at(now - timedelta(hours=1)) == 10


def test_too_little_history_recommends_no_sizes_and_says_why(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # GIVEN no analyses at all
    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN nothing is recommended and the notes say why
    assert result["changes"] == []
    assert any("0 measured hours" in note for note in result["notes"])


def test_analyses_older_than_14_days_are_not_read(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN two weeks of analyses and scaler changes that ended 15 days ago, none since
    now = fake_clock.now()
    generate_history(now - timedelta(days=15), state_table, fake_clock)
    fake_clock.set(now)

    # WHEN the optimizer runs with its default history (docs/architecture.md: "reads 14 days")
    result = optimize({"action": "optimize"})

    # THEN none of them was read: no sizes are recommended, and the notes say why
    assert result["changes"] == []
    assert any("0 measured hours" in note for note in result["notes"])
    recommendations = latest_recommendations()
    assert (recommendations.history_days, recommendations.analyses_read) == (14, 0)


def put_old_analyses(now: datetime, days: int) -> int:
    """An analysis every 4 hours of the `days` days before the optimizer's 14-day window, each
    at 100 % CPU on every hour (sized on, they would change every size); how many."""
    s3 = boto3.client("s3", region_name=REGION)
    window_start = now - timedelta(days=14)
    written = 0
    for index in range(1, days * 6 + 1):
        analysed_at = window_start - timedelta(hours=4 * index)
        analysis = PerformanceAnalysis(
            schema_version=1,
            account_id=MEMBER_ACCOUNT_ID,
            region=REGION,
            cluster=CLUSTER,
            analysed_at=analysed_at,
            window_start=analysed_at - timedelta(hours=4),
            window_end=analysed_at,
            scope="cluster",
            metrics=[],
            load_balancers=[],
            bottlenecks=[],
            regressions=[],
            hourly=[
                HourlyUtilisation(
                    hour=analysed_at - timedelta(hours=hour),
                    cpu_percent=100.0,
                    memory_percent=None,
                    node_count=None,
                )
                for hour in range(4, 0, -1)
            ],
        )
        s3.put_object(
            Bucket=DATA_BUCKET_NAME,
            Key=analysis_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, analysed_at),
            Body=analysis.model_dump_json().encode("utf-8"),
        )
        written += 1
    return written


def test_only_the_windows_analyses_are_listed_however_long_the_history(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    optimizer_services: OptimizerServices,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN 14 days of analyses (84) and the recommendations the optimizer makes of them
    now = fake_clock.now()
    generate_history(now, state_table, fake_clock)
    before = optimize({"action": "optimize"})
    # AND 46 more days of analyses before the window, as a cluster analysed for 60 days has
    old = put_old_analyses(now, days=46)
    listed: list[str] = []

    def count_listed(parsed: dict[str, Any], **_: Any) -> None:
        listed.extend(item["Key"] for item in parsed.get("Contents", []))

    s3 = optimizer_services.hub_client("s3")
    s3.meta.events.register("after-call.s3.ListObjectsV2", count_listed)

    # WHEN the optimizer runs again
    after = optimize({"action": "optimize"})

    # THEN it lists only the window's 84 analyses, not the 276 before it
    analyses = [key for key in listed if key.startswith("analyses/")]
    assert old == 276
    assert len(analyses) == 84
    # AND its recommendations are the same as before
    assert after == before


def test_the_listing_starts_at_the_first_second_of_the_window() -> None:
    # GIVEN a window that starts at 09:00:00.25 UTC, given in India's time
    since = datetime(2026, 11, 14, 9, 0, 0, 250000, tzinfo=UTC)

    # WHEN its listing's StartAfter is made
    start_after = analyses_start_after(MEMBER_ACCOUNT_ID, REGION, CLUSTER, since.astimezone(ZONE))

    # THEN an analysis of that second (compared with `since` by its reader) sorts after it, one
    # of the second before sorts before it
    key = partial(analysis_key, MEMBER_ACCOUNT_ID, REGION, CLUSTER)
    assert key(since.replace(microsecond=0)) > start_after
    assert key(since.replace(microsecond=0) - timedelta(seconds=1)) < start_after


def test_an_unknown_action_is_refused_naming_the_field(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # GIVEN an event with another action
    # WHEN it is handled
    result = optimize({"action": "apply"})

    # THEN the error names the field and no recommendations were written
    assert result["status"] == "error"
    assert result["error"].startswith("invalid event: action")
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="recommendations/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_a_bad_setting_fails_the_invocation_naming_the_variable(
    inventory_in_s3: dict[str, Any], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the optimizer deployed with a history longer than it may read
    monkeypatch.setenv("OPTIMIZER_HISTORY_DAYS", "365")
    app.FUNCTION.use_services(None)

    # WHEN the schedule invokes it
    with pytest.raises(ConfigurationError) as raised:
        app.lambda_handler({"action": "optimize"}, lambda_context)
    app.FUNCTION.use_services(None)

    # THEN the invocation fails with the one short message naming the variable, and no
    # recommendations were written
    assert str(raised.value).startswith("environment variable OPTIMIZER_HISTORY_DAYS: ")
    assert len(str(raised.value)) < 200
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=DATA_BUCKET_NAME, Prefix="recommendations/"
    )
    assert listed.get("KeyCount", 0) == 0


SECOND_CLUSTER = "dev-batch"


@pytest.fixture
def two_clusters(
    inventory_in_s3: dict[str, Any], state_table: StateTable, fake_clock: ManualClock
) -> None:
    """The inventory's cluster and a copy of it named SECOND_CLUSTER, with the same 14 days of
    analyses and scaler history each."""
    member = inventory_in_s3["members"][0]
    second = copy.deepcopy(member["clusters"][0])
    second["name"] = SECOND_CLUSTER
    member["clusters"].append(second)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=os.environ["FLEET_INVENTORY_KEY"],
        Body=json.dumps(inventory_in_s3).encode("utf-8"),
    )
    for cluster in (CLUSTER, SECOND_CLUSTER):
        generate_history(fake_clock.now(), state_table, fake_clock, cluster)


def fail_calls_naming(client: Any, service: str, operation: str, name: str) -> InjectedFault:
    """Every attempt of `operation` whose request names `name` (in its URL or body) fails to
    connect; the others go through."""
    fault = fail_every_attempt(client, service, operation)

    def only_naming(request: Any, **kwargs: Any) -> None:
        if name in request.url or name.encode() in (request.body or b""):
            fault(request, **kwargs)

    client.meta.events.unregister(f"before-send.{service}.{operation}", fault)
    client.meta.events.register_first(f"before-send.{service}.{operation}", only_naming)
    return fault


@pytest.mark.parametrize(
    ("service", "operation", "named", "note", "clusters_sized"),
    [
        pytest.param(
            "dynamodb",
            "Query",
            CLUSTER,
            f"^{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/{GROUP}: scaler history not read",
            {SECOND_CLUSTER},
            id="scaler-history",
        ),
        pytest.param(
            "s3",
            "ListObjectsV2",
            CLUSTER,
            f"^{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}: analyses not read",
            {SECOND_CLUSTER},
            id="analyses-listing",
        ),
        pytest.param(
            "s3",
            "GetObject",
            CLUSTER,
            f"^analyses/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/.*: not read",
            {SECOND_CLUSTER},
            id="analysis",
        ),
        pytest.param(
            "s3",
            "GetObject",
            "reports/cost/",
            "^cost report not read",
            {CLUSTER, SECOND_CLUSTER},
            id="cost-report",
        ),
    ],
)
def test_a_read_that_fails_leaves_out_only_what_it_concerns(  # noqa: PLR0917
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    optimizer_services: OptimizerServices,
    two_clusters: None,
    fake_clock: ManualClock,
    service: str,
    operation: str,
    named: str,
    note: str,
    clusters_sized: set[str],
) -> None:
    # GIVEN two clusters with 14 days of history and a cost report, and every attempt of one
    # read failing (the first cluster's scaler history, analyses or one of them, the report)
    put_cost_detail(fake_clock.now())
    fault = fail_calls_naming(optimizer_services.hub_client(service), service, operation, named)

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN the run is partial and its notes say what was not read
    assert fault.attempts > 0
    assert result["status"] == "partial", result
    assert any(re.search(note, line) for line in result["notes"]), result["notes"]
    # AND the recommendations leave out only what that read concerns
    recommendations = latest_recommendations()
    sized = {change.path[3] for change in recommendations.changes if change.path[0] == MEMBERS_KEY}
    assert sized == clusters_sized
    memory = [change for change in recommendations.changes if change.path[-1] == "memory_mb"]
    assert bool(memory) == (named != "reports/cost/")


@pytest.mark.parametrize(
    ("listed", "note", "clusters_sized"),
    [
        pytest.param(
            CLUSTER,
            f"^{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}: analyses not read "
            r"\(Unable to parse response: ListObjectsV2 answered without <ListBucketResult>",
            set(),
            id="analyses",
        ),
        pytest.param(
            "cost",
            r"^cost report not read \(Unable to parse response: ListObjectsV2 answered without "
            r"<ListBucketResult>",
            {CLUSTER},
            id="cost-reports",
        ),
    ],
)
def test_a_listing_answered_with_a_proxys_page_is_a_read_that_failed_not_nothing_there(  # noqa: PLR0917
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    optimizer_services: OptimizerServices,
    state_table: StateTable,
    fake_clock: ManualClock,
    listed: str,
    note: str,
    clusters_sized: set[str],
) -> None:
    # GIVEN a cluster with 14 days of history and a cost report, and S3 answering the listing of
    # the cluster's analyses, or of the cost reports, with a proxy's well-formed page (HTTP 200),
    # which botocore would parse into an answer without IsTruncated or Contents
    generate_history(fake_clock.now(), state_table, fake_clock)
    put_cost_detail(fake_clock.now())
    page = answer_malformed(
        optimizer_services.hub_client("s3"),
        "s3",
        "ListObjectsV2",
        b"<html>gateway</html>",
        url_part=listed,
    )

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN the run is partial and its notes say what was not read and why, not that it has too
    # few hours or that no cost report was written
    assert page.answered == 1
    assert result["status"] == "partial", result
    assert any(re.search(note, line) for line in result["notes"]), result["notes"]
    # AND the recommendations leave out only what that listing concerns
    recommendations = latest_recommendations()
    sized = {change.path[3] for change in recommendations.changes if change.path[0] == MEMBERS_KEY}
    assert sized == clusters_sized
    memory = [change for change in recommendations.changes if change.path[-1] == "memory_mb"]
    assert bool(memory) == (listed != "cost")


@pytest.mark.parametrize(
    ("ages_in_days", "newest", "listings"),
    [
        pytest.param(list(range(30)), 0, ["reports/cost/2025-05-19"], id="daily"),
        pytest.param([100, 400], 100, ["reports/cost/2025-05-19", None], id="stopped-long-ago"),
    ],
)  # fmt: skip
def test_the_newest_cost_detail_is_found_listing_only_recent_days_unless_none_is_there(  # noqa: PLR0917
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    optimizer_services: OptimizerServices,
    fake_clock: ManualClock,
    ages_in_days: list[int],
    newest: int,
    listings: list[str | None],
) -> None:
    # GIVEN a cost detail (and summary) of each day of the last 30 days, as the daily cost
    # analyzer writes them, or only two of 100 and 400 days ago (a cost analyzer since stopped)
    now = fake_clock.now()
    assert now.date() - timedelta(days=RECENT_DETAIL_DAYS) == date(2025, 5, 19)
    s3 = boto3.client("s3", region_name=REGION)
    for age in ages_in_days:
        put_cost_detail(now - timedelta(days=age))
        day = (now - timedelta(days=age)).date().isoformat()
        s3.put_object(Bucket=DATA_BUCKET_NAME, Key=f"reports/cost/{day}/summary.json", Body=b"{}")
    started_after: list[str | None] = []

    def record_start(params: dict[str, Any], **_: Any) -> None:
        if params["Prefix"] == "reports/cost/":
            started_after.append(params.get("StartAfter"))

    client = optimizer_services.hub_client("s3")
    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", record_start)

    # WHEN the optimizer runs
    optimize({"action": "optimize"})

    # THEN the cost reports are listed from RECENT_DETAIL_DAYS days back, and the whole prefix
    # only when nothing was written since
    assert started_after == listings
    # AND the memory lines come from the newest detail
    newest_key = f"reports/cost/{(now - timedelta(days=newest)).date().isoformat()}/detail.json"
    memory = [c for c in latest_recommendations().changes if c.path[-1] == "memory_mb"]
    assert memory
    assert all(change.evidence.startswith(f"{newest_key}: ") for change in memory)


def _rightsizing(**fields: Any) -> dict[str, Any]:
    """A cost detail entry of this stack's health monitor that recommends less memory."""
    return {
        "function": "lf-handlers-health-monitor",
        "current_mb": 256,
        "max_used_mb": 120,
        "invocations": 4032,
        "recommended_mb": 192,
        "monthly_saving_usd": 0.42,
        "recommendation": "decrease",
        **fields,
    }


@pytest.mark.parametrize(
    ("body", "note", "memory_recommended"),
    [
        pytest.param(b"not json", ": not a cost detail (document: Invalid JSON", [], id="not-json"),
        pytest.param(b"[1, 2]", ": not a cost detail (document: Input should be", [], id="list"),
        pytest.param(
            json.dumps({"lambda_memory": {"function": "x"}}).encode(),
            ": not a cost detail (lambda_memory: Input should be a valid array",
            [],
            id="entries-not-a-list",
        ),
        pytest.param(
            json.dumps(
                {
                    "lambda_memory": [
                        _rightsizing(function="lf-handlers-eks-scaler", current_mb="lots"),
                        _rightsizing(),
                    ]
                }
            ).encode(),
            ": lambda_memory[0].current_mb: Input should be a valid integer",
            [192],
            id="entry-not-a-number",
        ),
        pytest.param(
            json.dumps({"lambda_memory": [_rightsizing(recommended_mb=99_999_999)]}).encode(),
            ": lambda_memory[0].recommended_mb: Input should be less than or equal to 10240",
            [],
            id="size-the-stack-file-refuses",
        ),
        pytest.param(
            json.dumps(
                {"lambda_memory": [_rightsizing(current_mb="lots") for _ in range(12)]}
            ).encode(),
            ": 2 more lambda_memory entries left out",
            [],
            id="entries-named-up-to-ten-the-others-counted",
        ),
    ],
)
def test_a_cost_detail_that_does_not_validate_is_left_out_and_named_in_the_notes(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
    body: bytes,
    note: str,
    memory_recommended: list[int],
) -> None:
    # GIVEN a cost detail that is not what the cost analyzer writes, or has such an entry
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=f"reports/cost/{fake_clock.now().date().isoformat()}/detail.json",
        Body=body,
    )

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN the recommendations are written, the notes name what was left out, and only the
    # entries that validate become memory lines
    assert result["status"] == "ok", result
    assert any(note in line for line in result["notes"]), result["notes"]
    memory = [c.recommended for c in latest_recommendations().changes if c.path[-1] == "memory_mb"]
    assert memory == memory_recommended


@pytest.mark.parametrize(
    ("current_mb", "recommended", "note"),
    [
        pytest.param(4096, [4032], None, id="the-minimum-recommended"),
        pytest.param(
            4032, [], "report_processor's 448 MB is below its minimum of 4032 MB", id="none"
        ),
    ],
)
def test_memory_is_never_recommended_below_a_functions_measured_minimum(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
    current_mb: int,
    recommended: list[int],
    note: str | None,
) -> None:
    # GIVEN a cost detail that would cut report_processor to 448 MB from its usual invocations
    # (none at its input bounds, which need the catalog's minimum, 4032 MB), from 4096 MB or
    # from that minimum
    entry = _rightsizing(
        function="lf-handlers-report-processor",
        current_mb=current_mb,
        max_used_mb=300,
        recommended_mb=448,
    )
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=f"reports/cost/{fake_clock.now().date().isoformat()}/detail.json",
        Body=json.dumps({"lambda_memory": [entry]}).encode(),
    )

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN it recommends the minimum, saying why, or nothing and a note when it has no more
    assert result["status"] == "ok", result
    memory = [c for c in latest_recommendations().changes if c.path[-1] == "memory_mb"]
    assert [(c.path[1], c.recommended) for c in memory] == [
        ("report_processor", size) for size in recommended
    ]
    assert all("report_processor's minimum" in change.evidence for change in memory)
    assert note is None or any(note in line for line in result["notes"]), result["notes"]


@pytest.mark.parametrize(
    ("limit", "note"),
    [
        pytest.param(
            "DETAIL_MAX_BYTES", "bytes or more, more than the 1,024 a document may have", id="bytes"
        ),
        pytest.param(
            "DETAIL_MAX_VALUES",
            "JSON values, more than the 1,024 a cost detail may have",
            id="values",
        ),
    ],
)
def test_a_cost_detail_too_large_to_read_is_refused_naming_its_key(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    note: str,
) -> None:
    # GIVEN a cost detail past the optimizer's limit of its bytes or of its JSON values (here
    # 1,024: a detail of 500 entries, one of them this stack's function's)
    monkeypatch.setattr(memory, limit, 1024)
    key = f"reports/cost/{fake_clock.now().date().isoformat()}/detail.json"
    entries = [_rightsizing(function=f"lf-other-{index}") for index in range(499)]
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key=key,
        Body=json.dumps({"lambda_memory": [*entries, _rightsizing()]}).encode(),
    )

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN the recommendations are written without memory lines, and the notes name the key
    # and the limit it passed
    assert result["status"] == "ok", result
    assert any(line.startswith(f"{key}: ") and note in line for line in result["notes"]), result
    assert not [c for c in latest_recommendations().changes if c.path[-1] == "memory_mb"]


def put_one_analysis(now: datetime) -> str:
    """One analysis of the cluster, of the 4 hours before `now`; its key."""
    hours = [
        now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=h) for h in (5, 4, 3, 2)
    ]
    put_analyses(dict.fromkeys(hours, 50.0))
    return analysis_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, hours[-1] + timedelta(hours=1))


def put_detail_keyed(now: datetime) -> str:
    """The cost detail of `put_cost_detail`; its key."""
    put_cost_detail(now)
    return f"reports/cost/{now.date().isoformat()}/detail.json"


@pytest.mark.parametrize(
    ("put_object", "key_part", "estimates", "note"),
    [
        pytest.param(
            put_detail_keyed,
            "reports/cost/",
            {"COST_REPORT_SECONDS": 0.0},
            "cost report not read ({key}: its bytes did not all come within the 0.3 s",
            id="cost-detail",
        ),
        pytest.param(
            put_one_analysis,
            "analyses/",
            {"CLUSTER_SECONDS": 0.0, "ANALYSIS_SECONDS": 0.2},
            "{key}: not read ({key}: its bytes did not all come within the 0.2 s",
            id="analysis",
        ),
    ],
)
def test_an_object_that_trickles_is_given_up_in_the_time_left_naming_its_key(  # noqa: PLR0917
    optimizer_services: OptimizerServices,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    put_object: Callable[[datetime], str],
    key_part: str,
    estimates: dict[str, float],
    note: str,
) -> None:
    # GIVEN a cost detail (or an analysis) whose body S3 sends a byte every 50 ms (each read
    # well within the client's read timeout; 40 s for its 800 bytes), and an invocation with the
    # time to write the recommendations and 0.3 s more (the estimates of the reads lowered, so
    # the read starts, an analysis's body given at most 0.2 s)
    key = put_object(fake_clock.now())
    for name, seconds in estimates.items():
        monkeypatch.setattr(optimization, name, seconds)
    monkeypatch.setattr(app.FUNCTION, "services", lambda: optimizer_services)
    left = round((optimization.WRITE_SECONDS + 0.3) * 1000)
    context = ContextRunningOutOfTime(millis_left=[left])
    with trickling_get_object(optimizer_services.hub_client("s3"), key_part, 800) as peer:
        # WHEN the optimizer runs
        result = app.lambda_handler({"action": "optimize"}, context)
    # THEN the object is given up once its time is up, long before its last byte, and the notes
    # name its key; the run is partial and its recommendations are written
    assert peer.asked.is_set()
    assert peer.sent < 800
    assert any(line.startswith(note.format(key=key)) for line in result["notes"]), result
    assert result["status"] == "partial", result
    assert latest_recommendations().generated_at == fake_clock.now()


@pytest.mark.parametrize(
    ("limit", "note"),
    [
        pytest.param(
            "ANALYSIS_MAX_BYTES", "bytes or more, more than the 16 a document may have", id="bytes"
        ),
        pytest.param(
            "ANALYSIS_MAX_VALUES", "JSON values, more than the 16 an analysis may have", id="values"
        ),
    ],
)
def test_an_analysis_too_large_to_read_is_refused_naming_its_key(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    note: str,
) -> None:
    # GIVEN two days of the cluster's analyses, each past the optimizer's limit of an analysis'
    # bytes or JSON values (here 16)
    monkeypatch.setattr(analysis_reading, limit, 16)
    now = fake_clock.now().replace(minute=0, second=0, microsecond=0)
    put_analyses(dict.fromkeys([now - timedelta(hours=hour) for hour in range(1, 49)], 50.0))

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN no analysis is read, each is named in the notes by its key, and no size rests on them
    assert result["status"] == "ok", result
    refused = [line for line in result["notes"] if note in line]
    assert len(refused) == 12, result["notes"]
    assert all(line.startswith(f"analyses/{MEMBER_ACCOUNT_ID}/") for line in refused)
    assert result["analyses_read"] == 0
    assert result["changes"] == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_an_analysis_with_a_utilisation_that_is_not_a_number_is_left_out_and_named(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
    constant: str,
) -> None:
    # GIVEN 14 days of analyses, the newest of them with one hour's CPU utilisation written as
    # `constant` (JSON has no such number; Python's json module and pydantic read it)
    generate_history(fake_clock.now(), state_table, fake_clock)
    newest = rewrite_newest_analysis(
        lambda document: document["hourly"][0].update(cpu_percent=float(constant))
    )

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN that analysis is left out and named in the notes, and the sizes come from the others
    assert result["status"] == "ok", result
    assert f"{newest}: not an analysis (hourly[0].cpu_percent: " in "\n".join(result["notes"])
    recommendations = latest_recommendations()
    assert recommendations.analyses_read == 14 * 24 // 4 - 1
    assert recommended(recommendations, "max_size") == 5


def rewrite_newest_analysis(rewrite: Callable[[dict[str, Any]], object]) -> str:
    """Apply `rewrite` to the JSON document of the cluster's newest analysis; its key."""
    s3 = boto3.client("s3", region_name=REGION)
    prefix = f"analyses/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/"
    listed = s3.list_objects_v2(Bucket=DATA_BUCKET_NAME, Prefix=prefix)["Contents"]
    newest = max(item["Key"] for item in listed)
    document = json.loads(s3.get_object(Bucket=DATA_BUCKET_NAME, Key=newest)["Body"].read())
    rewrite(document)
    s3.put_object(Bucket=DATA_BUCKET_NAME, Key=newest, Body=json.dumps(document).encode("utf-8"))
    return newest


@pytest.mark.parametrize(
    ("field", "written"),
    [("cluster", "prod-apps"), ("region", "eu-west-1")],
)
def test_an_analysis_of_another_cluster_under_this_clusters_prefix_is_left_out_and_named(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
    field: str,
    written: str,
) -> None:
    # GIVEN 14 days of analyses, the newest of them another cluster's (copied in by hand after
    # a rename or a move to another region), its hours at 100 % CPU
    generate_history(fake_clock.now(), state_table, fake_clock)

    def rewrite(document: dict[str, Any]) -> None:
        document[field] = written
        for hour in document["hourly"]:
            hour["cpu_percent"] = 100.0

    newest = rewrite_newest_analysis(rewrite)

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN that analysis is left out and named with the field, and the sizes come from this
    # cluster's own: another cluster's load does not size its node groups
    assert result["status"] == "ok", result
    assert f"{newest}: not this cluster's analysis ({field}: {written!r})" in result["notes"]
    recommendations = latest_recommendations()
    assert recommendations.analyses_read == 14 * 24 // 4 - 1
    assert recommended(recommendations, "max_size") == 5


def test_an_analysis_with_an_hour_without_its_offset_is_left_out_and_named(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN 14 days of analyses, the newest of them with one hour written without its offset
    # (`2026-01-01T10:00:00`, not `...Z`): no instant, where the optimizer's window is one
    generate_history(fake_clock.now(), state_table, fake_clock)

    def drop_offset(document: dict[str, Any]) -> None:
        document["hourly"][0]["hour"] = document["hourly"][0]["hour"].removesuffix("Z")

    newest = rewrite_newest_analysis(drop_offset)

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN that analysis is left out and named in the notes with the field, and the sizes come
    # from the others (the run did not end on comparing the hour with its window)
    assert result["status"] == "ok", result
    assert f"{newest}: not an analysis (hourly[0].hour: " in "\n".join(result["notes"])
    recommendations = latest_recommendations()
    assert recommendations.analyses_read == 14 * 24 // 4 - 1
    assert recommended(recommendations, "max_size") == 5


@pytest.mark.parametrize("dated_after", ["its-analysis", "the-run"])
def test_an_analysis_with_hours_after_it_was_made_is_left_out_and_named(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
    dated_after: str,
) -> None:
    # GIVEN 14 days of analyses and, at 100 % CPU, either the newest analysis's last hour dated
    # a day after the analysis was made, or a copy of that analysis with its hours dated a month
    # ahead under a key of that date (a clock gone wrong, a hand edit)
    generate_history(fake_clock.now(), state_table, fake_clock)
    s3 = boto3.client("s3", region_name=REGION)
    ahead = timedelta(days=1 if dated_after == "its-analysis" else 30)

    def move_ahead(document: dict[str, Any]) -> None:
        moved = document["hourly"] if dated_after == "the-run" else document["hourly"][-1:]
        for hour in moved:
            hour["hour"] = iso_z(datetime.fromisoformat(hour["hour"]) + ahead)
            hour["cpu_percent"] = 100.0

    if dated_after == "its-analysis":
        key = rewrite_newest_analysis(move_ahead)
        problem = "hourly[3].hour: "
    else:
        newest = rewrite_newest_analysis(lambda document: None)
        document = json.loads(s3.get_object(Bucket=DATA_BUCKET_NAME, Key=newest)["Body"].read())
        move_ahead(document)
        dated = datetime.fromisoformat(document["analysed_at"]) + ahead
        key = analysis_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, dated)
        s3.put_object(Bucket=DATA_BUCKET_NAME, Key=key, Body=json.dumps(document).encode("utf-8"))
        problem = f"dated {iso_z(dated)}, after this run"

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN that analysis is left out and named in the notes, and the sizes come from the hours
    # measured: none sized on an hour not measured yet
    assert result["status"] == "ok", result
    assert any(note.startswith(f"{key}: not an analysis ({problem}") for note in result["notes"])
    recommendations = latest_recommendations()
    assert recommendations.analyses_read == 14 * 24 // 4 - (dated_after == "its-analysis")
    assert recommended(recommendations, "max_size") == 5


@pytest.mark.parametrize("cpu_percent", [1e6, 1e308, -50.0, 105.5])
def test_an_analysis_with_a_utilisation_outside_0_to_100_percent_is_left_out_and_named(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
    cpu_percent: float,
) -> None:
    # GIVEN 14 days of analyses, the newest of them with every hour's CPU utilisation written
    # as `cpu_percent`: a number, but no percent of the nodes' capacity
    generate_history(fake_clock.now(), state_table, fake_clock)

    def rewrite(document: dict[str, Any]) -> None:
        for hour in document["hourly"]:
            hour["cpu_percent"] = cpu_percent

    newest = rewrite_newest_analysis(rewrite)

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN that analysis is left out and named in the notes with the field and its value, and
    # the sizes come from the others: not the largest node group the settings accept, nor an
    # overflow ending the run
    assert result["status"] == "ok", result
    assert (
        f"{newest}: not an analysis (hourly[0].cpu_percent: {cpu_percent:.6g} is not a "
        "utilisation (0-105 %))"
    ) in result["notes"]
    recommendations = latest_recommendations()
    assert recommendations.analyses_read == 14 * 24 // 4 - 1
    assert recommended(recommendations, "max_size") == 5
    assert recommended(recommendations, "off_hours_desired", GROUP) == 2


def test_hours_measured_just_above_100_percent_are_read_not_left_out(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN 14 days of analyses, the newest of them with every hour's CPU utilisation measured
    # at 104.9 %: a saturated node group, measured a little over its capacity
    generate_history(fake_clock.now(), state_table, fake_clock)

    def rewrite(document: dict[str, Any]) -> None:
        for hour in document["hourly"]:
            hour["cpu_percent"] = 104.9

    rewrite_newest_analysis(rewrite)
    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})
    # THEN that analysis is read: leaving it out would leave out the busiest hours of the
    # window, which decide max_size
    assert result["status"] == "ok", result
    assert not [note for note in result["notes"] if "is not a utilisation" in note]
    recommendations = latest_recommendations()
    assert recommendations.analyses_read == 14 * 24 // 4
    assert recommended(recommendations, "max_size") == 5


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        pytest.param(
            {"new": {"desired_size": "four"}},
            "(the change at {when}: new.desired_size 'four' is not a node count",
            id="size-not-a-number",
        ),
        pytest.param(
            {"new": {}},
            "(the change at {when}: new.desired_size None is not a node count",
            id="no-size",
        ),
        pytest.param(
            ["resize"],
            "at {when_exact}: its data is a JSON list, not an object",
            id="not-a-record",
        ),
    ],
)
def test_a_scaler_change_without_a_node_count_leaves_out_its_node_group_alone(  # noqa: PLR0917
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    two_clusters: None,
    state_table: StateTable,
    fake_clock: ManualClock,
    record: object,
    problem: str,
) -> None:
    # GIVEN two clusters with 14 days of history, and a change in the first one's node group
    # history three days ago recorded without a desired size that is a node count (the state
    # table is written by other functions, and by hand)
    now = fake_clock.now()
    fake_clock.set(now - timedelta(days=3))
    state_table.record_change(
        node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, GROUP),
        record,  # type: ignore[arg-type]
        history_ttl_seconds=90 * 86400,
    )
    fake_clock.set(now)

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN the run is partial, its notes name the node group, the change and its problem
    assert result["status"] == "partial", result
    [note] = [line for line in result["notes"] if "scaler history not read" in line]
    assert note.startswith(f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/{GROUP}: scaler history ")
    changed_at = now - timedelta(days=3)
    assert (
        problem.format(when=iso_z(changed_at), when_exact=iso_z(changed_at, "microseconds")) in note
    )
    # AND the other cluster is recommended all the same
    recommendations = latest_recommendations()
    sized = {change.path[3] for change in recommendations.changes if change.path[0] == MEMBERS_KEY}
    assert sized == {SECOND_CLUSTER}


def analysis_reads_spending(
    services: OptimizerServices, time: LambdaTime, seconds: float
) -> LambdaTime:
    """`time`, of which each analysis S3 serves the optimizer's `services` spends `seconds`."""

    def slow_analysis_read(request: Any, **_: Any) -> None:
        if "/analyses/" in request.url:
            time.spend(seconds)

    services.hub_client("s3").meta.events.register("before-send.s3.GetObject", slow_analysis_read)
    return time


def test_a_run_short_of_time_writes_the_recommendations_of_the_clusters_it_read(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    optimizer_services: OptimizerServices,
    two_clusters: None,
    fake_clock: ManualClock,
) -> None:
    # GIVEN two clusters with 14 days of analyses each (84) and a cost report, an S3 that takes
    # half a second to answer each analysis read, and an invocation with 90 s left: the time
    # to read one cluster (42 s) and write (30 s), not to read both
    put_cost_detail(fake_clock.now())
    time = analysis_reads_spending(optimizer_services, LambdaTime(90.0), 0.5)

    # WHEN the optimizer runs
    result = app.lambda_handler({"action": "optimize"}, time.context())

    # THEN it returns before Lambda ends it, partial, its notes naming what it left to the next
    # run: the second cluster and the cost report
    assert time.spent < time.seconds_left
    assert result["status"] == "partial", result
    out_of_time = "not read, the invocation's time ran out (the next run reads it)"
    assert (
        f"{MEMBER_ACCOUNT_ID}/{REGION}/{SECOND_CLUSTER}: {out_of_time}; no sizes recommended"
        in (result["notes"])
    )
    assert f"cost report: {out_of_time}; no memory recommended" in result["notes"]
    # AND the recommendations of the cluster it read are written
    recommendations = latest_recommendations()
    sized = {change.path[3] for change in recommendations.changes if change.path[0] == MEMBERS_KEY}
    assert sized == {CLUSTER}


def test_a_cluster_whose_analyses_outlast_the_invocation_is_left_to_the_next_run(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    optimizer_services: OptimizerServices,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a cluster with 14 days of analyses (84) and a cost report, an S3 that takes 2 s to
    # answer each analysis read, and an invocation with 120 s left: enough to start the cluster,
    # not to read its analyses (168 s)
    generate_history(fake_clock.now(), state_table, fake_clock)
    put_cost_detail(fake_clock.now())
    time = analysis_reads_spending(optimizer_services, LambdaTime(120.0), 2.0)

    # WHEN the optimizer runs
    result = app.lambda_handler({"action": "optimize"}, time.context())

    # THEN it stops reading the cluster while the writes have their time and returns before
    # Lambda ends it, partial, its notes naming the cluster read in part and recommending it no
    # sizes, and the cost report left to the next run
    assert time.seconds_left - time.spent >= 30
    assert result["status"] == "partial", result
    assert (
        f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}: analyses read in part, the invocation's time "
        "ran out (the next run reads them); no sizes recommended"
    ) in result["notes"]
    assert any(note.startswith("cost report: not read") for note in result["notes"])
    # AND the recommendations are written, with no sizes
    assert latest_recommendations().changes == []


def test_an_hour_written_with_another_offset_is_named_in_utc_in_the_evidence(
    optimize: Callable[[dict[str, Any]], dict[str, Any]],
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN 14 days of analyses, one of them written with India's offset (+05:30, the same
    # instants) and one of its hours, a working hour at 4 nodes, the busiest of all (100 % CPU)
    generate_history(fake_clock.now(), state_table, fake_clock)
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=DATA_BUCKET_NAME, Prefix="analyses/")["Contents"]
    key, index, busiest = next(
        (item["Key"], index, hour.hour)
        for item in listed
        for index, hour in enumerate(analysis_of(s3, item["Key"]).hourly)
        if is_working(hour.hour) and historical_desired(hour.hour) == 4
    )
    document = json.loads(s3.get_object(Bucket=DATA_BUCKET_NAME, Key=key)["Body"].read())
    for hour in document["hourly"]:
        hour["hour"] = datetime.fromisoformat(hour["hour"]).astimezone(ZONE).isoformat()
    document["hourly"][index]["cpu_percent"] = 100.0
    s3.put_object(Bucket=DATA_BUCKET_NAME, Key=key, Body=json.dumps(document).encode("utf-8"))

    # WHEN the optimizer runs
    result = optimize({"action": "optimize"})

    # THEN max_size's evidence names that hour in UTC, as it says (`...Z`), not its time in India
    assert result["status"] == "ok", result
    [max_size] = [c for c in latest_recommendations().changes if c.path[-1] == "max_size"]
    assert max_size.evidence.startswith(
        f"busiest of 335 measured hours: {busiest:%Y-%m-%d %H:%M}Z ran 4 nodes "
    )


def analysis_of(s3: Any, key: str) -> PerformanceAnalysis:
    body = s3.get_object(Bucket=DATA_BUCKET_NAME, Key=key)["Body"].read()
    return PerformanceAnalysis.model_validate_json(body)


@pytest.mark.parametrize(
    ("prefix", "note"),
    [
        pytest.param(
            "reports/cost/",
            "cost report not read (ListObjectsV2 read cut short before its next page, for lack "
            "of time); no memory recommended",
            id="cost-reports",
        ),
        pytest.param(
            cluster_prefix(MEMBER_ACCOUNT_ID, REGION, CLUSTER),
            f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}: analyses read in part, the invocation's "
            "time ran out (the next run reads them); no sizes recommended",
            id="analyses",
        ),
    ],
)
def test_a_listing_of_endless_empty_pages_is_cut_short_in_time_and_the_rest_written(
    optimizer_services: OptimizerServices,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
    note: str,
) -> None:
    # GIVEN a cost report, an invocation with 60 s left, and S3 answering every page of the
    # listing of the cost reports (or of the cluster's analyses) with no object and a next
    # page under a new token, a second a page
    put_cost_detail(fake_clock.now())
    time = LambdaTime(60.0)
    listing = EndlessListing(time, prefix)
    optimizer_services.hub_client("s3").meta.events.register_first(
        "before-send.s3.ListObjectsV2", listing
    )
    monkeypatch.setattr(app.FUNCTION, "services", lambda: optimizer_services)
    # WHEN the optimizer runs
    result = app.lambda_handler({"action": "optimize"}, time.context())
    # THEN the listing stops while the writes still have their time, before Lambda would end
    # the run, the notes say what was not read, and the recommendations are written
    assert listing.pages > 1
    assert time.seconds_left - time.spent >= optimization.WRITE_SECONDS
    assert note in result["notes"], result
    assert result["status"] == "partial", result
    assert latest_recommendations().generated_at == fake_clock.now()
