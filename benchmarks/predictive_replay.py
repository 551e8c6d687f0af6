"""Predictive replay: does scaling from the forecast pay against the schedule, and how far is it
from an oracle?

The first `SERIES_COUNT` load series of the forecast backtest's generator (same seed) are
replayed hour by hour over their last `REPLAY_WEEKS` weeks, one ON_DEMAND node group of
`INSTANCE_TYPE` per cluster carrying all of the demand (CPU only: the generator has no memory
series). The owner sized the stack file from the `REPLAY_WEEKS` weeks before: the daytime
`desired_size` holds the highest weekday working-hours load seen, the off-hours size the highest
load seen outside them (both by `nodes_for_demand`, the rule predictive mode sizes with),
`max_size` is twice the daytime size, the floor 1 and `scaling.max_step` a quarter of the daytime
size. Schedule: MON-FRI 08:00-18:00 in the cluster's time zone (the generator's UTC offset).

Four ways, each starting at the schedule's size for the first hour:
- schedule: the cluster in `schedule` mode; its schedule's 08:00 `scale_up` (restoring the size
  saved at the last scale-down) and 18:00 `scale_down` (to the off-hours size) go to the scaler;
- predictive: the same cluster in `predictive` mode: the same schedule events, and at
  `RUN_MINUTE` past every hour the forecaster's predictive request
  (`predictive_request.scale_predictively`) with the forecast the function makes at that moment
  (`forecast.forecast_from_history` on the history up to the last whole hour, at most
  `HISTORY_DAYS` days, FORECAST_HISTORY_DAYS=42, the hourly run's `horizon_minutes` 180): when
  the confidence of the hour's steps reaches the threshold, it asks the scaler for the nodes
  their p90 needs, which the scaler bounds (working-hours floor, floor, max_size, max_step,
  cooldown); below it nothing is asked and the size stays as it is until the schedule's next
  event or a confident hour;
- no_floor: predictive with `scaling.working_hours_floor: false` (the owner lets the forecast
  size working hours too);
- oracle: the nodes the actual demand of the hour needs (`nodes_for_demand`), within the floor
  and max_size (`plan_desired`), set at once.
Schedule and predictive run through the real handlers on moto with a manual clock: the scaler's
`lambda_handler` (inventory from S3, lock, cooldown, idempotency, saved sizes, history and
notices in the state table and SNS, the node group's size in EKS) answers the schedule's payloads
and the forecaster's Lambda invoke (run in process); the forecaster's decisions are recorded in
the state table. Only the reading of Container Insights and EKS before the forecast is left out:
the series is the history. Capacity of an hour is the node group's size after that hour's
requests times the node's allocatable vCPU; an hour is unmet when the actual demand is above it
(hours without data are not scored). The forecasts do not depend on the sizes, so they are made
first; forecasts and replays run in two processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
from moto import mock_aws

# In Lambda the shared layer is on the path as `fleet_shared`; here it lives under handlers/.
HANDLERS_DIR = str(Path(__file__).resolve().parent.parent / "handlers")
if HANDLERS_DIR not in sys.path:
    sys.path.append(HANDLERS_DIR)

from benchmarks.forecast_backtest import SEED, Series, generated_series  # noqa: E402
from fleet_shared.clock import ManualClock  # noqa: E402
from fleet_shared.environment import load_environment  # noqa: E402
from fleet_shared.inventory import (  # noqa: E402
    Cluster,
    ClusterScaling,
    FleetInventory,
    HubAccount,
    MemberAccount,
    NodeGroup,
    ScalingSchedule,
)
from handlers.demand_forecaster import app as forecaster_app  # noqa: E402
from handlers.demand_forecaster.capacity import InstanceCapacity, LiveNodeGroup  # noqa: E402
from handlers.demand_forecaster.environment import ForecasterEnvironment  # noqa: E402
from handlers.demand_forecaster.forecast import (  # noqa: E402
    DemandHistory,
    Sized,
    forecast_from_history,
)
from handlers.demand_forecaster.predictive_request import (  # noqa: E402
    nodes_for_demand,
    scale_predictively,
)
from handlers.demand_forecaster.seasonal_model import DAY, WEEK  # noqa: E402
from handlers.demand_forecaster.services import ForecasterServices  # noqa: E402
from handlers.eks_scaler import app as scaler_app  # noqa: E402
from handlers.eks_scaler.environment import ScalerEnvironment  # noqa: E402
from handlers.eks_scaler.predictive import in_working_hours  # noqa: E402
from handlers.eks_scaler.services import ScalerServices  # noqa: E402
from handlers.eks_scaler.sizing import Sizes, node_group_limits, plan_desired  # noqa: E402

SERIES_COUNT = 3
REPLAY_WEEKS = 4
HISTORY_DAYS = 42
HORIZON_MINUTES = 180
"""The hourly `forecast_fleet` run's horizon (catalog/functions.py)."""
RUN_MINUTE = 5
"""Minutes past the hour at which the hourly forecast runs (a `rate(1 hour)` schedule)."""
INSTANCE = InstanceCapacity("m5.2xlarge", vcpus=8, memory_mib=32768, max_pods=58)
INSTANCE_TYPE = INSTANCE.instance_type
NODE_GROUP_NAME = "workers"
SERIES_START = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday 00:00 UTC: hour 0 of every generated series."""
ACCOUNT_ID = "123456789012"
"""moto's default account, the hub; the clusters are in it too, so no role is assumed."""
REGION = "eu-west-1"
STATE_TABLE_NAME = "lambda-fleet-state"
DATA_BUCKET_NAME = "lambda-fleet-data"
INVENTORY_KEY = "config/fleet-inventory.json"
SCALER_FUNCTION_NAME = "lambda-fleet-eks_scaler"
SCHEDULE_SUFFIX = "-schedule"
"""The schedule-only twin of each cluster is named `<series>-schedule`."""
NO_FLOOR_SUFFIX = "-no-floor"
"""The predictive twin with `scaling.working_hours_floor: false` is `<series>-no-floor`."""
NODE_HOUR_SAVING_GOAL = 0.20
PREDICTIVE_STRATEGIES = ("predictive", "no_floor")
STRATEGIES = ("schedule", *PREDICTIVE_STRATEGIES, "oracle")


@dataclass(frozen=True)
class Outcome:
    """One way of sizing one series."""

    node_hours: int
    unmet_hours: int
    changes: int
    confident_hours: int = 0


def forecasts_for_week(series: Series, week: int) -> list[dict[str, Any]]:
    """The forecaster's result at `RUN_MINUTE` past each hour of replay week `week` (0-based)."""
    values = series.values
    cluster = cluster_for(series)
    configured = cluster.node_groups[0]
    live = LiveNodeGroup(
        name=configured.name,
        capacity_type=configured.capacity_type,
        instance_types=configured.instance_types,
        min_size=configured.min_size,
        max_size=configured.max_size,
        desired_size=configured.desired_size,
        floor=configured.floor,
    )
    environment = ForecasterEnvironment(
        data_bucket_name=DATA_BUCKET_NAME, forecast_history_days=HISTORY_DAYS
    )
    first = len(values) - (REPLAY_WEEKS - week) * WEEK
    forecasts = []
    for hour in range(first, first + WEEK):
        start = max(0, hour - HISTORY_DAYS * DAY)
        index = pd.date_range(_moment(start), periods=hour - start, freq="h")
        # As forecast.py reads it: hours without data dropped, then reindexed inside the model.
        demand = pd.Series(values[start:hour], index=index).dropna()
        forecasts.append(
            forecast_from_history(
                DemandHistory(demand, pd.Series(dtype=float), pd.Series(dtype=float)),
                [Sized(live, INSTANCE)],
                environment,
                account_id=ACCOUNT_ID,
                cluster=cluster,
                horizon_minutes=HORIZON_MINUTES,
                now=_moment(hour) + timedelta(minutes=RUN_MINUTE),
                errors={},
            )
        )
    return forecasts


def cluster_for(series: Series) -> Cluster:
    """The stack file's cluster as its owner sized it from the weeks before the replay."""
    utc_offset = int(re.match(r"UTC([+-]\d+)", series.description).group(1))  # type: ignore[union-attr]
    # Etc/GMT zones count the other way: UTC+8 is Etc/GMT-8.
    schedule = ScalingSchedule(
        time_zone=f"Etc/GMT{-utc_offset:+d}",
        scale_up_time="08:00",
        scale_down_time="18:00",
        days=("MON", "TUE", "WED", "THU", "FRI"),
    )
    replay_start = len(series.values) - REPLAY_WEEKS * WEEK
    before = series.values[replay_start - REPLAY_WEEKS * WEEK : replay_start]
    working = np.array(
        [
            in_working_hours(schedule, _moment(replay_start - REPLAY_WEEKS * WEEK + hour))
            for hour in range(len(before))
        ]
    )
    scaling = ClusterScaling(mode="predictive")
    daytime = _nodes(float(np.nanmax(before[working])), scaling)
    off_hours = _nodes(float(np.nanmax(before[~working])), scaling)
    node_group = NodeGroup(
        name=NODE_GROUP_NAME,
        capacity_type="ON_DEMAND",
        instance_types=(INSTANCE_TYPE,),
        min_size=1,
        desired_size=daytime,
        max_size=2 * daytime,
        floor=1,
    )
    return Cluster(
        name=series.name,
        region=REGION,
        kubernetes_version="1.31",
        node_groups=(node_group,),
        schedule=schedule.model_copy(update={"off_hours_desired": {NODE_GROUP_NAME: off_hours}}),
        scaling=scaling.model_copy(update={"max_step": max(1, -(-daytime // 4))}),
    )


def twin(cluster: Cluster, suffix: str, **scaling: Any) -> Cluster:
    """The same cluster under another name, with other `scaling` settings."""
    return cluster.model_copy(
        update={
            "name": cluster.name + suffix,
            "scaling": cluster.scaling.model_copy(update=scaling),
        }
    )


def replay(series: Series, forecasts: list[dict[str, Any]]) -> dict[str, Outcome]:
    """Schedule and predictive through the handlers on moto, and the oracle, over the replayed
    weeks of `series`."""
    # The handlers print their metrics (EMF) to stdout, as in Lambda; the table is the output.
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        world = _ReplayWorld(cluster_for(series))
        sizes = world.run(series, forecasts)
    oracle = _oracle_sizes(series, world.cluster)
    sizes["oracle"] = oracle
    demand = series.values[-REPLAY_WEEKS * WEEK :]
    scored = np.isfinite(demand)
    outcomes = {}
    for strategy in STRATEGIES:
        hourly = np.array(sizes[strategy])
        capacity = hourly * INSTANCE.allocatable_vcpu
        outcomes[strategy] = Outcome(
            node_hours=int(hourly.sum()),
            unmet_hours=int(np.sum(scored & (np.nan_to_num(demand) > capacity))),
            changes=int(np.sum(hourly[1:] != hourly[:-1])) + int(hourly[0] != world.first_size),
            confident_hours=world.confident_hours if strategy in PREDICTIVE_STRATEGIES else 0,
        )
    return outcomes


class _ScalerThroughItsHandler:
    """The forecaster's Lambda client for the scaler: an invoke runs the scaler's own
    `lambda_handler` in process, as Lambda would run it."""

    def __init__(self, lambda_handler: Any, context: Any) -> None:
        self.lambda_handler = lambda_handler
        self.context = context

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        answer = self.lambda_handler(json.loads(Payload), self.context)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode("utf-8"))}


class _LambdaContext:
    function_name = SCALER_FUNCTION_NAME
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{SCALER_FUNCTION_NAME}"
    aws_request_id = "predictive-replay"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


class _ReplayWorld:
    """moto with what the stack would have: the state table, the inventory of both clusters in
    the data bucket, the alert topic, and both EKS clusters; the handlers on one manual clock."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.clusters = {
            "schedule": twin(cluster, SCHEDULE_SUFFIX, mode="schedule"),
            "predictive": cluster,
            "no_floor": twin(cluster, NO_FLOOR_SUFFIX, working_hours_floor=False),
        }
        self.confident_hours = 0
        self.first_size = 0
        self.clock = ManualClock(SERIES_START)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=STATE_TABLE_NAME,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="fleet-alerts")[
            "TopicArn"
        ]
        inventory = FleetInventory(
            stack="replay",
            hub=HubAccount(account_id=ACCOUNT_ID, region=REGION),
            dry_run=False,
            members=(
                MemberAccount(
                    account_id=ACCOUNT_ID,
                    name="replay",
                    regions=(REGION,),
                    clusters=tuple(self.clusters.values()),
                ),
            ),
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(
            Bucket=DATA_BUCKET_NAME, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3.put_object(
            Bucket=DATA_BUCKET_NAME,
            Key=INVENTORY_KEY,
            Body=inventory.model_dump_json().encode("utf-8"),
        )
        os.environ.update(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "STATE_TABLE_NAME": STATE_TABLE_NAME,
                "MEMBER_ROLE_NAME": "lambda-fleet-member",
                "HUB_ACCOUNT_ID": ACCOUNT_ID,
                "ALERT_TOPIC_ARN": topic_arn,
                "FLEET_DRY_RUN": "false",
                "DATA_BUCKET_NAME": DATA_BUCKET_NAME,
                "FLEET_INVENTORY_KEY": INVENTORY_KEY,
                "SCALER_FUNCTION_NAME": SCALER_FUNCTION_NAME,
                "FORECAST_HISTORY_DAYS": str(HISTORY_DAYS),
            }
        )
        self.eks = boto3.client("eks", region_name=REGION)
        start_size = _schedule_size(cluster, SERIES_START)
        for each in self.clusters.values():
            self._create_cluster(each.name, each.node_groups[0], start_size)
        scaler_services = ScalerServices.create(
            scaler_app.FUNCTION.name, load_environment(ScalerEnvironment), clock=self.clock
        )
        scaler_app.FUNCTION.services = lambda: scaler_services  # type: ignore[method-assign]
        client = _ScalerThroughItsHandler(scaler_app.lambda_handler, _LambdaContext())

        class ReplayForecasterServices(ForecasterServices):
            @cached_property
            def scaler_client(self) -> Any:
                return client

        self.forecaster_services = ReplayForecasterServices.create(
            forecaster_app.FUNCTION.name,
            load_environment(ForecasterEnvironment),
            clock=self.clock,
        )
        self.scaler_handler = scaler_app.lambda_handler
        self.context = _LambdaContext()

    def _create_cluster(self, name: str, node_group: NodeGroup, desired: int) -> None:
        self.eks.create_cluster(
            name=name,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        self.eks.create_nodegroup(
            clusterName=name,
            nodegroupName=node_group.name,
            scalingConfig={
                "minSize": node_group.min_size,
                "maxSize": node_group.max_size,
                "desiredSize": desired,
            },
            instanceTypes=list(node_group.instance_types),
            capacityType=node_group.capacity_type,
            nodeRole=f"arn:aws:iam::{ACCOUNT_ID}:role/node",
            subnets=["subnet-1"],
        )

    def run(self, series: Series, forecasts: list[dict[str, Any]]) -> dict[str, list[int]]:
        """The node group's size of each cluster (by strategy) in each replayed hour."""
        first_hour = len(series.values) - REPLAY_WEEKS * WEEK
        self.first_size = _schedule_size(self.cluster, _moment(first_hour))
        for each in self.clusters.values():
            self.eks.update_nodegroup_config(
                clusterName=each.name,
                nodegroupName=NODE_GROUP_NAME,
                scalingConfig={"desiredSize": self.first_size},
            )
        sizes: dict[str, list[int]] = {strategy: [] for strategy in self.clusters}
        threshold = self.cluster.scaling.confidence_threshold
        for index, forecast in enumerate(forecasts):
            now = _moment(first_hour + index)
            self.clock.set(now)
            event = _schedule_event(self.cluster, now)
            if event is not None:
                for each in self.clusters.values():
                    self.scaler_handler(_schedule_payload(event, each, now), self.context)
            self.clock.set(now + timedelta(minutes=RUN_MINUTE))
            for strategy in PREDICTIVE_STRATEGIES:
                decision = scale_predictively(
                    self.forecaster_services,
                    ACCOUNT_ID,
                    self.clusters[strategy],
                    forecast=forecast,
                    problem=None,
                    dry_run=False,
                )
            if decision.get("hour_confidence", 0.0) >= threshold:
                self.confident_hours += 1
            for strategy, each in self.clusters.items():
                sizes[strategy].append(self._desired_size(each.name))
        return sizes

    def _desired_size(self, cluster_name: str) -> int:
        group = self.eks.describe_nodegroup(clusterName=cluster_name, nodegroupName=NODE_GROUP_NAME)
        return int(group["nodegroup"]["scalingConfig"]["desiredSize"])


def _schedule_payload(action: str, cluster: Cluster, now: datetime) -> dict[str, Any]:
    """What the cluster's schedule sends (components/schedule_payloads.py), with the execution
    id EventBridge Scheduler fills in."""
    assert cluster.schedule is not None
    if action == "scale_up":
        groups: list[dict[str, Any]] = [
            {"name": name} for name in cluster.schedule.off_hours_desired
        ]
    else:
        groups = [
            {"name": name, "desired_size": size}
            for name, size in cluster.schedule.off_hours_desired.items()
        ]
    return {
        "action": action,
        "account_id": ACCOUNT_ID,
        "region": cluster.region,
        "cluster": cluster.name,
        "nodegroups": groups,
        "scheduled": True,
        "request_id": f"{cluster.name}-{action}-{now:%Y%m%dT%H%M}",
    }


def _oracle_sizes(series: Series, cluster: Cluster) -> list[int]:
    """The nodes each hour's actual demand needs within the floor and max_size (the previous
    hour's size for an hour without data)."""
    node_group = cluster.node_groups[0]
    limits = node_group_limits(
        Sizes(node_group.min_size, node_group.desired_size, node_group.max_size),
        node_group.capacity_type,
        node_group,
    )
    first_hour = len(series.values) - REPLAY_WEEKS * WEEK
    size = _schedule_size(cluster, _moment(first_hour))
    sizes = []
    for actual in series.values[first_hour:].tolist():
        if not np.isnan(actual):
            needed = nodes_for_demand(actual, 1.0, INSTANCE.allocatable_vcpu, cluster.scaling)
            planned = plan_desired(needed, limits).desired_size
            size = size if planned is None else planned
        sizes.append(size)
    return sizes


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    series = [generated_series(index, rng) for index in range(SERIES_COUNT)]
    # One BLAS thread per worker process, as in forecast_backtest: two workers for two cores.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    context = multiprocessing.get_context("spawn")
    chunks = [(item, week) for item in series for week in range(REPLAY_WEEKS)]
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        weekly = list(pool.map(forecasts_for_week, *zip(*chunks, strict=True)))
        forecasted = time.perf_counter()
        per_series = [
            [f for week in weekly[i * REPLAY_WEEKS : (i + 1) * REPLAY_WEEKS] for f in week]
            for i in range(SERIES_COUNT)
        ]
        outcomes = list(pool.map(replay, series, per_series))
    clusters = [cluster_for(item) for item in series]
    print(
        f"{SERIES_COUNT} series x {REPLAY_WEEKS} weeks replayed hourly "
        f"({REPLAY_WEEKS * WEEK} hours each) through eks_scaler and the forecaster's predictive "
        f"request on moto, one {INSTANCE_TYPE} node group "
        f"({INSTANCE.allocatable_vcpu:.2f} allocatable vCPU per node), seed {SEED}"
    )
    print(
        f"{'series':<11} {'day':>4} {'off':>4} {'max':>4} {'step':>4}  {'strategy':<10} "
        f"{'node-h':>7} {'unmet':>6} {'changes':>7} {'vs sched':>8} {'vs oracle':>9} {'conf h':>6}"
    )
    for item, cluster, outcome in zip(series, clusters, outcomes, strict=True):
        node_group = cluster.node_groups[0]
        assert cluster.schedule is not None
        off_hours = cluster.schedule.off_hours_desired[NODE_GROUP_NAME]
        sizing = (
            f"{node_group.desired_size:>4} {off_hours:>4} "
            f"{node_group.max_size:>4} {cluster.scaling.max_step:>4}"
        )
        for strategy in STRATEGIES:
            print(_row(item.name, sizing, strategy, outcome))
            sizing = " " * len(sizing)
    total = {
        strategy: Outcome(
            sum(o[strategy].node_hours for o in outcomes),
            sum(o[strategy].unmet_hours for o in outcomes),
            sum(o[strategy].changes for o in outcomes),
            sum(o[strategy].confident_hours for o in outcomes),
        )
        for strategy in STRATEGIES
    }
    for strategy in STRATEGIES:
        print(_row("total", " " * 19, strategy, total))
    for strategy in PREDICTIVE_STRATEGIES:
        saving = 1 - total[strategy].node_hours / total["schedule"].node_hours
        gap = total[strategy].node_hours / total["oracle"].node_hours - 1
        met = saving >= NODE_HOUR_SAVING_GOAL and (
            total[strategy].unmet_hours <= total["schedule"].unmet_hours
        )
        print(
            f"goal: {strategy} at least {NODE_HOUR_SAVING_GOAL:.0%} fewer node-hours than "
            f"schedule with no more unmet hours: {saving:.1%} fewer, unmet "
            f"{total[strategy].unmet_hours} vs {total['schedule'].unmet_hours} "
            f"({'met' if met else 'NOT met'}); gap to the oracle {gap:+.1%}"
        )
    print(
        "day/off/max/step: daytime size, off-hours size, max_size, max_step; no_floor: "
        "predictive with scaling.working_hours_floor false; conf h: hours whose forecast reached "
        "the confidence threshold"
    )
    print(
        f"{time.perf_counter() - started:.1f} s ({forecasted - started:.1f} s forecasting, "
        f"{time.perf_counter() - forecasted:.1f} s replaying on moto)"
    )


def _row(name: str, sizing: str, strategy: str, outcomes: dict[str, Outcome]) -> str:
    outcome = outcomes[strategy]
    schedule = outcomes["schedule"].node_hours
    oracle = outcomes["oracle"].node_hours
    confident = f"{outcome.confident_hours:>6}" if strategy in PREDICTIVE_STRATEGIES else f"{'':>6}"
    return (
        f"{name:<11} {sizing}  {strategy:<10} {outcome.node_hours:>7} {outcome.unmet_hours:>6} "
        f"{outcome.changes:>7} {outcome.node_hours / schedule - 1:>+8.1%} "
        f"{outcome.node_hours / oracle - 1:>+9.1%} {confident}"
    )


def _moment(hour: int) -> datetime:
    return SERIES_START + timedelta(hours=hour)


def _nodes(demand_vcpu: float, scaling: ClusterScaling) -> int:
    return max(1, nodes_for_demand(demand_vcpu, 1.0, INSTANCE.allocatable_vcpu, scaling))


def _schedule_size(cluster: Cluster, now: datetime) -> int:
    assert cluster.schedule is not None
    if in_working_hours(cluster.schedule, now):
        return cluster.node_groups[0].desired_size
    return cluster.schedule.off_hours_desired[NODE_GROUP_NAME]


def _schedule_event(cluster: Cluster, now: datetime) -> str | None:
    """The schedule's action at `now` (08:00 scale_up, 18:00 scale_down on its days), if any."""
    schedule = cluster.schedule
    assert schedule is not None
    local = now.astimezone(schedule.zone)
    if local.strftime("%a").upper() not in schedule.days:
        return None
    moment = local.time().replace(tzinfo=None)
    if moment == schedule.scale_up_time:
        return "scale_up"
    if moment == schedule.scale_down_time:
        return "scale_down"
    return None
