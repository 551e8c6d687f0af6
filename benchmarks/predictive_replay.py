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

Seven ways, each starting at the schedule's size for the first hour:
- schedule: the cluster in `schedule` mode; its schedule's 08:00 `scale_up` (restoring the size
  saved at the last scale-down, else the stack file's daytime size) and 18:00 `scale_down` (to the
  off-hours size) go to the scaler;
- predictive: the same cluster in `predictive` mode: the same schedule events, and at
  `RUN_MINUTE` past every hour the forecaster's predictive decision
  (`predictive_request.scale_predictively`) with the forecast the function makes at that moment
  (`forecast.forecast_from_history` on the history up to the last whole hour, at most
  `HISTORY_DAYS` days, FORECAST_HISTORY_DAYS=42, the hourly run's `horizon_minutes` 180): when
  the confidence of the hour's steps reaches the threshold, it asks the scaler for the nodes
  their p90 needs, which the scaler bounds (working-hours floor, floor, max_size, max_step,
  cooldown); below it the schedule is kept and the node group handed back to it (the scaler
  returns it to the schedule's size for the hour when the forecast set its current size);
- no_floor: predictive with `scaling.working_hours_floor: false` (the owner lets the forecast
  size working hours too);
- headroom_20, headroom_30: predictive with `scaling.headroom_percent` 20 and 30 instead of 10
  (the owner's sizing unchanged): the margin an owner would buy to cover spikes the p90 misses,
  and its price in node-hours;
- oracle: the nodes the actual demand of the hour needs (`nodes_for_demand`), within the floor
  and max_size (`plan_desired`), set at once;
- oracle_floor: the oracle, never below the daytime size in working hours: the most that
  predictive with its working-hours floor could save.
Schedule and the four predictive ways run through the real handlers on moto with a manual clock,
each in its own world (process, mock and state table): the scaler's `lambda_handler` (inventory
from S3, lock, cooldown, idempotency, saved sizes, history and notices in the state table and
SNS, the node group's size in EKS) answers the schedule's payloads and the forecaster's Lambda
invoke (run in process); the forecaster's decisions are recorded in the state table. Only the
reading of Container Insights and EKS before the forecast is left out: the series is the
history. Once a replayed day, items whose `expires_at` has passed are deleted, as DynamoDB's TTL
does (moto keeps them; the state table already ignores them): moto copies the whole table in
every transaction, so without this the replay slows down as the weeks go by. Capacity of an hour
is the node group's size after that hour's requests times the node's allocatable vCPU; an hour
is unmet when the actual demand is above it, hot when above the target utilisation of it (hours
without data are not scored). The forecasts do not depend on the sizes, so they are made first
(the schedule's worlds run meanwhile), in two processes.

`python -m benchmarks.predictive_replay --series 1 --weeks 1` replays the first week of the first
series only, for iteration (the owner's sizing stays that of the full run); `make bench` runs the
full replay.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import boto3
import numpy as np
import pandas as pd
from moto import mock_aws

# In Lambda the shared layer is on the path as `fleet_shared`; here it lives under handlers/.
HANDLERS_DIR = str(Path(__file__).resolve().parent.parent / "handlers")
if HANDLERS_DIR not in sys.path:
    sys.path.append(HANDLERS_DIR)

from benchmarks.forecast_backtest import (  # noqa: E402
    SEED,
    Series,
    busy_hours_of_day,
    generated_series,
)
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
from fleetctl.local_state_table import create_state_table  # noqa: E402
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
NODE_HOUR_SAVING_GOAL = 0.20
Result = TypeVar("Result")
HEADROOM_SWEEP = (20, 30)
"""`headroom_percent` values replayed beside the default: what covering unforecast spikes costs."""
PREDICTIVE_STRATEGIES = (
    "predictive",
    "no_floor",
    *(f"headroom_{percent}" for percent in HEADROOM_SWEEP),
)
REPLAYED_STRATEGIES = ("schedule", *PREDICTIVE_STRATEGIES)
"""The strategies replayed through the handlers; the oracles are computed."""
STRATEGIES = (*REPLAYED_STRATEGIES, "oracle", "oracle_floor")


@dataclass(frozen=True)
class Outcome:
    """One way of sizing one series."""

    node_hours: int
    working_node_hours: int
    """The node-hours of the schedule's working hours."""
    unmet_hours: int
    hot_hours: int
    """Hours whose demand was above the target utilisation of the capacity (unmet ones too)."""
    changes: int
    confident_hours: int = 0


@dataclass(frozen=True)
class Replayed:
    """What one strategy's world did over the replayed hours."""

    sizes: list[int]
    confident_hours: int


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
    first = _first_hour(series) + week * WEEK
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
    utc_offset = series.utc_offset
    # Etc/GMT zones count the other way: UTC+8 is Etc/GMT-8.
    schedule = ScalingSchedule(
        time_zone=f"Etc/GMT{-utc_offset:+d}",
        scale_up_time="08:00",
        scale_down_time="18:00",
        days=("MON", "TUE", "WED", "THU", "FRI"),
    )
    replay_start = _first_hour(series)
    before = series.values[replay_start - REPLAY_WEEKS * WEEK : replay_start]
    working = np.array(
        [
            in_working_hours(
                schedule, _moment(replay_start - REPLAY_WEEKS * WEEK + hour), calendar=None
            )
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


def strategy_cluster(cluster: Cluster, strategy: str) -> Cluster:
    """The cluster with the scaling settings of a replayed `strategy`."""
    settings: dict[str, Any] = {
        "schedule": {"mode": "schedule"},
        "predictive": {},
        "no_floor": {"working_hours_floor": False},
        **{f"headroom_{percent}": {"headroom_percent": percent} for percent in HEADROOM_SWEEP},
    }[strategy]
    return cluster.model_copy(update={"scaling": cluster.scaling.model_copy(update=settings)})


def replay(
    series: Series, strategy: str, forecasts: list[dict[str, Any]] | None, hours: int
) -> Replayed:
    """The node group's size in each of the first `hours` replayed hours of `series` under a
    replayed `strategy` (the predictive ones with `forecasts`), through the handlers on moto."""
    # The handlers print their metrics (EMF) to stdout, as in Lambda; the table is the output.
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        world = _ReplayWorld(strategy_cluster(cluster_for(series), strategy))
        sizes, confident_hours = world.run(_first_hour(series), hours, forecasts)
    return Replayed(sizes, confident_hours)


def scored(series: Series, sizes: list[int], first_size: int, confident_hours: int = 0) -> Outcome:
    """Node-hours (all, and in working hours), unmet and hot hours and changes of hourly `sizes`
    against the series' demand."""
    cluster = cluster_for(series)
    assert cluster.schedule is not None
    first_hour = _first_hour(series)
    demand = series.values[first_hour : first_hour + len(sizes)]
    known = np.isfinite(demand)
    hourly = np.array(sizes)
    capacity = hourly * INSTANCE.allocatable_vcpu
    target = capacity * cluster.scaling.target_utilization / 100
    working = np.array(
        [
            in_working_hours(
                cluster.schedule, _moment(first_hour + hour), calendar=cluster.calendar
            )
            for hour in range(len(sizes))
        ]
    )
    return Outcome(
        node_hours=int(hourly.sum()),
        working_node_hours=int(hourly[working].sum()),
        unmet_hours=int(np.sum(known & (np.nan_to_num(demand) > capacity))),
        hot_hours=int(np.sum(known & (np.nan_to_num(demand) > target))),
        changes=int(np.sum(hourly[1:] != hourly[:-1])) + int(hourly[0] != first_size),
        confident_hours=confident_hours,
    )


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
    """moto with what the stack would have: the state table, the inventory of the cluster in
    the data bucket, the alert topic, and the EKS cluster; the handlers on one manual clock."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.clock = ManualClock(SERIES_START)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_state_table(self.dynamodb, STATE_TABLE_NAME)
        topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="fleet-alerts")[
            "TopicArn"
        ]
        inventory = FleetInventory(
            stack="replay",
            hub=HubAccount(account_id=ACCOUNT_ID, region=REGION),
            dry_run=False,
            members=(
                MemberAccount(
                    account_id=ACCOUNT_ID, name="replay", regions=(REGION,), clusters=(cluster,)
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
                # moto's EKS node groups touch EC2, which would load thousands of AMIs first.
                "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
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
        node_group = cluster.node_groups[0]
        self.eks.create_cluster(
            name=cluster.name,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        self.eks.create_nodegroup(
            clusterName=cluster.name,
            nodegroupName=node_group.name,
            scalingConfig={
                "minSize": node_group.min_size,
                "maxSize": node_group.max_size,
                "desiredSize": node_group.desired_size,
            },
            instanceTypes=list(node_group.instance_types),
            capacityType=node_group.capacity_type,
            nodeRole=f"arn:aws:iam::{ACCOUNT_ID}:role/node",
            subnets=["subnet-1"],
        )
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

    def run(
        self, first_hour: int, hours: int, forecasts: list[dict[str, Any]] | None
    ) -> tuple[list[int], int]:
        """The node group's size in each of `hours` hours from `first_hour`, and the hours
        whose forecast reached the confidence threshold (predictive, with `forecasts`)."""
        self.eks.update_nodegroup_config(
            clusterName=self.cluster.name,
            nodegroupName=NODE_GROUP_NAME,
            scalingConfig={"desiredSize": _schedule_size(self.cluster, _moment(first_hour))},
        )
        sizes: list[int] = []
        confident_hours = 0
        threshold = self.cluster.scaling.confidence_threshold
        for index in range(hours):
            now = _moment(first_hour + index)
            self.clock.set(now)
            event = _schedule_event(self.cluster, now)
            if event is not None:
                self.scaler_handler(_schedule_payload(event, self.cluster, now), self.context)
            if forecasts is not None:
                self.clock.set(now + timedelta(minutes=RUN_MINUTE))
                decision = scale_predictively(
                    self.forecaster_services,
                    ACCOUNT_ID,
                    self.cluster,
                    forecast=forecasts[index],
                    problem=None,
                    dry_run=False,
                )
                confident_hours += decision.get("hour_confidence", 0.0) >= threshold
            if index % DAY == DAY - 1:
                self._delete_expired_items(now)
            sizes.append(self._desired_size())
        return sizes, confident_hours

    def _desired_size(self) -> int:
        group = self.eks.describe_nodegroup(
            clusterName=self.cluster.name, nodegroupName=NODE_GROUP_NAME
        )
        return int(group["nodegroup"]["scalingConfig"]["desiredSize"])

    def _delete_expired_items(self, now: datetime) -> None:
        """What DynamoDB's TTL would have deleted by `now` (moto never deletes)."""
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=STATE_TABLE_NAME,
            FilterExpression="expires_at < :now",
            ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            ProjectionExpression="pk, sk",
        )
        for page in pages:
            for item in page["Items"]:
                self.dynamodb.delete_item(TableName=STATE_TABLE_NAME, Key=item)


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


def oracle_sizes(
    series: Series, cluster: Cluster, hours: int, *, working_hours_floor: bool
) -> list[int]:
    """The nodes each hour's actual demand needs within the floor and max_size (the previous
    hour's size for an hour without data), with `working_hours_floor` never below the daytime
    size in working hours."""
    node_group = cluster.node_groups[0]
    assert cluster.schedule is not None
    limits = node_group_limits(
        Sizes(node_group.min_size, node_group.desired_size, node_group.max_size),
        node_group.capacity_type,
        node_group,
    )
    first_hour = _first_hour(series)
    size = _schedule_size(cluster, _moment(first_hour))
    sizes = []
    for index, actual in enumerate(series.values[first_hour : first_hour + hours].tolist()):
        if not np.isnan(actual):
            needed = nodes_for_demand(actual, 1.0, INSTANCE.allocatable_vcpu, cluster.scaling)
            planned = plan_desired(needed, limits).desired_size
            size = size if planned is None else planned
        if working_hours_floor and in_working_hours(
            cluster.schedule, _moment(first_hour + index), calendar=cluster.calendar
        ):
            sizes.append(max(size, node_group.desired_size))
        else:
            sizes.append(size)
    return sizes


def p90_exceeded(series: Series, forecasts: list[dict[str, Any]]) -> tuple[float, float, float]:
    """The share of the replayed hours with data whose load was above the p90 of the coming
    hour that the forecast made in that hour gave (what predictive mode sizes on): of them all,
    of those in the quiet half of the hours of the day and of those in the busy half (the 12
    local hours with the lowest mean load before the replay, and the others)."""
    first_hour = _first_hour(series)
    hours = np.arange(first_hour, first_hour + len(forecasts))
    actual = series.values[hours]
    p90 = np.array([forecast["coming_hour"]["p90_vcpu"] for forecast in forecasts])
    known = np.isfinite(actual)
    busy = busy_hours_of_day(series, first_hour)[(hours + series.utc_offset) % DAY]
    above = actual > p90
    return (
        float(np.mean(above[known])),
        float(np.mean(above[known & ~busy])),
        float(np.mean(above[known & busy])),
    )


def unmet_hour_lines(
    series: Series, strategy: str, sizes: list[int], forecasts: list[dict[str, Any]] | None
) -> list[str]:
    """One line per hour whose load was above the capacity of `sizes`: when, by how much, what
    the forecast's p90 of that hour was (with `forecasts`), and the load an hour and a week
    before, so that a spike no forecast could see reads as one."""
    cluster = cluster_for(series)
    assert cluster.schedule is not None
    first_hour = _first_hour(series)
    values = series.values
    lines = []
    for index, size in enumerate(sizes):
        hour = first_hour + index
        capacity = size * INSTANCE.allocatable_vcpu
        if not np.isfinite(values[hour]) or values[hour] <= capacity:
            continue
        local = _moment(hour).astimezone(cluster.schedule.zone)
        p90 = (
            f", the hour's p90 {forecasts[index]['coming_hour']['p90_vcpu']:.1f}"
            if forecasts is not None
            else ""
        )
        lines.append(
            f"{series.name} {strategy}: {local:%a %d %b %H}:00, load {values[hour]:.1f} over "
            f"{capacity:.1f} ({size} nodes){p90}; an hour before {values[hour - 1]:.1f}, a week "
            f"before {values[hour - WEEK]:.1f}"
        )
    return lines


def main(series_count: int = SERIES_COUNT, weeks: int = REPLAY_WEEKS) -> None:
    """Replay the first `weeks` weeks of the replay window of the first `series_count` series."""
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    series = [generated_series(index, rng) for index in range(series_count)]
    hours = weeks * WEEK
    # One BLAS thread per worker process, as in forecast_backtest: two workers for two cores.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        weekly = [
            [pool.submit(_timed, forecasts_for_week, item, week) for week in range(weeks)]
            for item in series
        ]
        # The schedule needs no forecast: its worlds run while the forecasts are made.
        replays: dict[tuple[str, str], Future[tuple[Replayed, float]]] = {
            (item.name, "schedule"): pool.submit(_timed, replay, item, "schedule", None, hours)
            for item in series
        }
        forecast_seconds = 0.0
        exceeded: dict[str, tuple[float, float, float]] = {}
        forecasts_by_series: dict[str, list[dict[str, Any]]] = {}
        for item, futures in zip(series, weekly, strict=True):
            forecasts = forecasts_by_series[item.name] = []
            for future in futures:
                week_forecasts, seconds = future.result()
                forecasts.extend(week_forecasts)
                forecast_seconds += seconds
            exceeded[item.name] = p90_exceeded(item, forecasts)
            for strategy in PREDICTIVE_STRATEGIES:
                replays[(item.name, strategy)] = pool.submit(
                    _timed, replay, item, strategy, forecasts, hours
                )
        replayed = {key: future.result() for key, future in replays.items()}
    outcomes = []
    for item in series:
        cluster = cluster_for(item)
        first_size = _schedule_size(cluster, _moment(_first_hour(item)))
        outcome = {
            strategy: scored(
                item,
                replayed[(item.name, strategy)][0].sizes,
                first_size,
                replayed[(item.name, strategy)][0].confident_hours,
            )
            for strategy in REPLAYED_STRATEGIES
        }
        for strategy, floor in (("oracle", False), ("oracle_floor", True)):
            sizes = oracle_sizes(item, cluster, hours, working_hours_floor=floor)
            outcome[strategy] = scored(item, sizes, first_size)
        outcomes.append(outcome)
    replay_seconds = sum(seconds for _, seconds in replayed.values())
    _print_table(series, outcomes, weeks)
    unmet = [
        line
        for item in series
        for strategy in REPLAYED_STRATEGIES
        for line in unmet_hour_lines(
            item,
            strategy,
            replayed[(item.name, strategy)][0].sizes,
            forecasts_by_series[item.name] if strategy in PREDICTIVE_STRATEGIES else None,
        )
    ]
    print("unmet hours (the hour's local time; the load and the capacity in vCPU):")
    print("\n".join(f"  {line}" for line in unmet) if unmet else "  none")
    print(
        "the coming hour's p90 exceeded by the hour's load in "
        + ", ".join(
            f"{name} {share:.1%} (quiet half {quiet:.1%}, busy half {busy:.1%})"
            for name, (share, quiet, busy) in exceeded.items()
        )
        + " of the hours with data (a calibrated p90: 10%)"
    )
    print(
        f"{time.perf_counter() - started:.1f} s of wall time in 2 worker processes "
        f"({forecast_seconds:.1f} s forecasting, {replay_seconds:.1f} s replaying on moto, "
        "summed over the workers)"
    )


def _print_table(series: list[Series], outcomes: list[dict[str, Outcome]], weeks: int) -> None:
    print(
        f"{len(series)} series x {weeks} weeks replayed hourly "
        f"({weeks * WEEK} hours each) through eks_scaler and the forecaster's predictive "
        f"decision on moto, one {INSTANCE_TYPE} node group "
        f"({INSTANCE.allocatable_vcpu:.2f} allocatable vCPU per node), seed {SEED}"
    )
    print(
        f"{'series':<11} {'day':>4} {'off':>4} {'max':>4} {'step':>4}  {'strategy':<12} "
        f"{'node-h':>7} {'work':>6} {'unmet':>6} {'hot':>5} {'changes':>7} {'vs sched':>8} "
        f"{'vs oracle':>9} {'conf h':>6}"
    )
    for item, outcome in zip(series, outcomes, strict=True):
        cluster = cluster_for(item)
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
            sum(o[strategy].working_node_hours for o in outcomes),
            sum(o[strategy].unmet_hours for o in outcomes),
            sum(o[strategy].hot_hours for o in outcomes),
            sum(o[strategy].changes for o in outcomes),
            sum(o[strategy].confident_hours for o in outcomes),
        )
        for strategy in STRATEGIES
    }
    for strategy in STRATEGIES:
        print(_row("total", " " * 19, strategy, total))
    for strategy in (*PREDICTIVE_STRATEGIES, "oracle_floor"):
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
        "predictive with scaling.working_hours_floor false; headroom_N: predictive with "
        "scaling.headroom_percent N (10 by default); oracle_floor: the oracle, never "
        "below the daytime size in working hours (the ceiling of predictive with its floor); "
        "conf h: hours whose forecast reached the confidence threshold; work: node-hours in "
        "the schedule's working hours; hot: hours whose demand was above the target "
        "utilisation of the capacity"
    )


def _row(name: str, sizing: str, strategy: str, outcomes: dict[str, Outcome]) -> str:
    outcome = outcomes[strategy]
    schedule = outcomes["schedule"].node_hours
    oracle = outcomes["oracle"].node_hours
    confident = f"{outcome.confident_hours:>6}" if strategy in PREDICTIVE_STRATEGIES else f"{'':>6}"
    return (
        f"{name:<11} {sizing}  {strategy:<12} {outcome.node_hours:>7} "
        f"{outcome.working_node_hours:>6} {outcome.unmet_hours:>6} {outcome.hot_hours:>5} "
        f"{outcome.changes:>7} {outcome.node_hours / schedule - 1:>+8.1%} "
        f"{outcome.node_hours / oracle - 1:>+9.1%} {confident}"
    )


def _timed(function: Callable[..., Result], *args: Any) -> tuple[Result, float]:
    """`function`'s result and the seconds it took (in a worker process)."""
    started = time.perf_counter()
    return function(*args), time.perf_counter() - started


def _first_hour(series: Series) -> int:
    """The series' first replayed hour: `REPLAY_WEEKS` weeks before its end."""
    return len(series.values) - REPLAY_WEEKS * WEEK


def _moment(hour: int) -> datetime:
    return SERIES_START + timedelta(hours=hour)


def _nodes(demand_vcpu: float, scaling: ClusterScaling) -> int:
    return max(1, nodes_for_demand(demand_vcpu, 1.0, INSTANCE.allocatable_vcpu, scaling))


def _schedule_size(cluster: Cluster, now: datetime) -> int:
    assert cluster.schedule is not None
    if in_working_hours(cluster.schedule, now, calendar=cluster.calendar):
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


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Replay generated weeks through the scaler.")
    parser.add_argument(
        "--series",
        type=int,
        choices=range(1, SERIES_COUNT + 1),
        default=SERIES_COUNT,
        help="how many of the series to replay, from the first",
    )
    parser.add_argument(
        "--weeks",
        type=int,
        choices=range(1, REPLAY_WEEKS + 1),
        default=REPLAY_WEEKS,
        help="how many weeks of the replay window to replay, from its first",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    main(arguments.series, arguments.weeks)
