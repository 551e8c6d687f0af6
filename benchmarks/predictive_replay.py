"""Predictive replay: does scaling from the forecast pay against the schedule, and how far is it
from an oracle?

The first `SERIES_COUNT` load series of the forecast backtest's generator (same seed) are
replayed hour by hour over their last `REPLAY_WEEKS` weeks, one ON_DEMAND node group of
`INSTANCE_TYPE` per cluster carrying all of the demand. The owner sized the stack file from the
`REPLAY_WEEKS` weeks before: the daytime `desired_size` holds the highest weekday working-hours
load seen, the off-hours size the highest load seen outside them (both by `nodes_for_demand`,
the rule predictive mode sizes with), `max_size` is twice the daytime size, the floor 1 and
`scaling.max_step` a quarter of the daytime size. Schedule: MON-FRI 08:00-18:00 in the cluster's
time zone (the generator's UTC offset).

Three ways, each starting at the schedule's size for the first hour:
- schedule: at 08:00 `scale_up` to the daytime size, at 18:00 `scale_down` to the off-hours size;
- predictive: at the start of every hour a forecast (`forecast_demand`, from at most
  `HISTORY_DAYS` days of history before the hour, as the function reads) and, when its
  confidence reaches the threshold, a `predictive` request for the nodes its p90 needs
  (`nodes_for_demand`), bounded by the scaler (working-hours floor, floor, max_size, max_step,
  cooldown); below the threshold the schedule is in charge: the node group is brought to the
  schedule's size for the hour (a `scale_up` or `scale_down`), so a size the forecast chose is
  not kept once the forecast is no longer trusted;
- oracle: the nodes the actual demand of the hour needs (`nodes_for_demand`), within the floor
  and max_size (`plan_desired`), set at once.
Schedule and predictive go through the scaler's real `decide` with the node group facts built
here (sizes, last change, inventory entry); a change is applied when it decides CHANGE. No AWS
call, lock or state table is involved (they do not change the decision). Capacity is the node
count times the node's allocatable vCPU; an hour is unmet when the actual demand is above it
(hours without data are not scored). The forecasts do not depend on the decisions, so they are
computed first, in two processes.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

# In Lambda the shared layer is on the path as `fleet_shared`; here it lives under handlers/.
HANDLERS_DIR = str(Path(__file__).resolve().parent.parent / "handlers")
if HANDLERS_DIR not in sys.path:
    sys.path.append(HANDLERS_DIR)

from benchmarks.forecast_backtest import SEED, Series, generated_series  # noqa: E402
from fleet_shared.inventory import (  # noqa: E402
    Cluster,
    ClusterScaling,
    NodeGroup,
    ScalingSchedule,
)
from handlers.demand_forecaster.capacity import InstanceCapacity  # noqa: E402
from handlers.demand_forecaster.forecast import PREDICTIVE_QUANTILE  # noqa: E402
from handlers.demand_forecaster.predictive_request import nodes_for_demand  # noqa: E402
from handlers.demand_forecaster.seasonal_model import DAY, WEEK, forecast_demand  # noqa: E402
from handlers.eks_scaler.decision import DecisionKind, NodeGroupFacts, decide  # noqa: E402
from handlers.eks_scaler.models import Action, NodeGroupRequest  # noqa: E402
from handlers.eks_scaler.predictive import in_working_hours  # noqa: E402
from handlers.eks_scaler.sizing import Sizes, node_group_limits, plan_desired  # noqa: E402

SERIES_COUNT = 3
REPLAY_WEEKS = 4
HISTORY_DAYS = 42
INSTANCE = InstanceCapacity("m5.2xlarge", vcpus=8, memory_mib=32768)
INSTANCE_TYPE = INSTANCE.instance_type
NODE_GROUP_NAME = "workers"
COOLDOWN_SECONDS = 300
"""The scaler's default SCALER_COOLDOWN_SECONDS."""
SERIES_START = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday 00:00 UTC: hour 0 of every generated series."""
NODE_HOUR_SAVING_GOAL = 0.20
STRATEGIES = ("schedule", "predictive", "oracle")


@dataclass(frozen=True)
class HourForecast:
    """What predictive mode sees at the start of one hour."""

    p90_vcpu: float
    confidence: float


@dataclass(frozen=True)
class Outcome:
    """One way of sizing one series."""

    node_hours: int
    unmet_hours: int
    changes: int
    confident_hours: int = 0


def forecasts_for_week(series: Series, week: int) -> list[HourForecast]:
    """The forecast at the start of each hour of replay week `week` (0-based)."""
    values = series.values
    first = len(values) - (REPLAY_WEEKS - week) * WEEK
    forecasts = []
    for hour in range(first, first + WEEK):
        start = max(0, hour - HISTORY_DAYS * DAY)
        result = forecast_demand(values[start:hour], start % WEEK, 1)
        # The central interval whose upper bound is the p90, as forecast.py reports it.
        p90 = float(result.interval(2 * PREDICTIVE_QUANTILE - 1)[1][0])
        forecasts.append(HourForecast(p90, result.confidence))
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
        region="eu-west-1",
        kubernetes_version="1.31",
        node_groups=(node_group,),
        schedule=schedule.model_copy(update={"off_hours_desired": {NODE_GROUP_NAME: off_hours}}),
        scaling=scaling.model_copy(update={"max_step": max(1, -(-daytime // 4))}),
    )


def replay(series: Series, cluster: Cluster, forecasts: list[HourForecast]) -> dict[str, Outcome]:
    """Schedule, predictive and oracle over the replayed weeks of `series`."""
    demand = series.values[-REPLAY_WEEKS * WEEK :]
    first_hour = len(series.values) - REPLAY_WEEKS * WEEK
    node_group = cluster.node_groups[0]
    schedule = cluster.schedule
    assert schedule is not None
    off_hours = schedule.off_hours_desired[NODE_GROUP_NAME]
    sizes = {
        "schedule": _schedule_size(cluster, _moment(first_hour)),
        "predictive": _schedule_size(cluster, _moment(first_hour)),
        "oracle": _schedule_size(cluster, _moment(first_hour)),
    }
    last_change: dict[str, datetime | None] = dict.fromkeys(STRATEGIES)
    node_hours = dict.fromkeys(STRATEGIES, 0)
    unmet = dict.fromkeys(STRATEGIES, 0)
    changes = dict.fromkeys(STRATEGIES, 0)
    confident_hours = 0
    limits = node_group_limits(
        Sizes(node_group.min_size, node_group.desired_size, node_group.max_size),
        node_group.capacity_type,
        node_group,
    )
    for index, actual in enumerate(demand.tolist()):
        now = _moment(first_hour + index)
        event = _schedule_event(schedule, now, node_group.desired_size, off_hours)
        requests: dict[str, tuple[Action, int] | None] = {"schedule": event}
        forecast = forecasts[index]
        if forecast.confidence >= cluster.scaling.confidence_threshold:
            confident_hours += 1
            wanted = nodes_for_demand(
                forecast.p90_vcpu, 1.0, INSTANCE.allocatable_vcpu, cluster.scaling
            )
            requests["predictive"] = (Action.PREDICTIVE, wanted)
        else:
            requests["predictive"] = _schedule_request(cluster, now, sizes["predictive"])
        for strategy, request in requests.items():
            if request is None:
                continue
            facts = NodeGroupFacts(
                current=Sizes(node_group.min_size, sizes[strategy], node_group.max_size),
                status="ACTIVE",
                capacity_type=node_group.capacity_type,
                configured=node_group,
                saved=None,
                last_change_at=last_change[strategy],
                cooldown_seconds=COOLDOWN_SECONDS,
                cluster=cluster,
            )
            action, desired = request
            group = NodeGroupRequest(name=NODE_GROUP_NAME, desired_size=desired)
            decision = decide(action, group, facts, now)
            if decision.kind is DecisionKind.CHANGE and decision.target is not None:
                sizes[strategy] = decision.target.desired_size
                last_change[strategy] = now
                changes[strategy] += 1
        if not np.isnan(actual):
            needed = nodes_for_demand(actual, 1.0, INSTANCE.allocatable_vcpu, cluster.scaling)
            oracle_size = plan_desired(needed, limits).desired_size
            if oracle_size is not None and oracle_size != sizes["oracle"]:
                sizes["oracle"] = oracle_size
                changes["oracle"] += 1
        for strategy in STRATEGIES:
            node_hours[strategy] += sizes[strategy]
            if not np.isnan(actual) and actual > sizes[strategy] * INSTANCE.allocatable_vcpu:
                unmet[strategy] += 1
    return {
        strategy: Outcome(
            node_hours[strategy],
            unmet[strategy],
            changes[strategy],
            confident_hours if strategy == "predictive" else 0,
        )
        for strategy in STRATEGIES
    }


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
    clusters = [cluster_for(item) for item in series]
    outcomes = [
        replay(
            item,
            cluster,
            [f for week in weekly[i * REPLAY_WEEKS : (i + 1) * REPLAY_WEEKS] for f in week],
        )
        for i, (item, cluster) in enumerate(zip(series, clusters, strict=True))
    ]
    print(
        f"{SERIES_COUNT} series x {REPLAY_WEEKS} weeks replayed hourly "
        f"({REPLAY_WEEKS * WEEK} hours each), one {INSTANCE_TYPE} node group "
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
    saving = 1 - total["predictive"].node_hours / total["schedule"].node_hours
    met = saving >= NODE_HOUR_SAVING_GOAL and (
        total["predictive"].unmet_hours <= total["schedule"].unmet_hours
    )
    print(
        f"goal: predictive at least {NODE_HOUR_SAVING_GOAL:.0%} fewer node-hours than schedule "
        f"with no more unmet hours: {saving:.1%} fewer, unmet {total['predictive'].unmet_hours} "
        f"vs {total['schedule'].unmet_hours} ({'met' if met else 'NOT met'})"
    )
    print(
        "day/off/max/step: daytime size, off-hours size, max_size, max_step; conf h: hours whose "
        "forecast reached the confidence threshold"
    )
    print(f"{time.perf_counter() - started:.1f} s")


def _row(name: str, sizing: str, strategy: str, outcomes: dict[str, Outcome]) -> str:
    outcome = outcomes[strategy]
    schedule = outcomes["schedule"].node_hours
    oracle = outcomes["oracle"].node_hours
    confident = f"{outcome.confident_hours:>6}" if strategy == "predictive" else f"{'':>6}"
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


def _schedule_request(cluster: Cluster, now: datetime, current: int) -> tuple[Action, int] | None:
    """The schedule's size for the hour `now` as a scale_up or scale_down, if it is not `current`
    (a forecast-driven size is not left in place once the schedule is back in charge)."""
    wanted = _schedule_size(cluster, now)
    if wanted == current:
        return None
    return (Action.SCALE_UP if wanted > current else Action.SCALE_DOWN), wanted


def _schedule_event(
    schedule: ScalingSchedule, now: datetime, daytime: int, off_hours: int
) -> tuple[Action, int] | None:
    """The schedule's request at `now` (08:00 scale_up, 18:00 scale_down on its days), if any."""
    local = now.astimezone(schedule.zone)
    if local.strftime("%a").upper() not in schedule.days:
        return None
    moment = local.time().replace(tzinfo=None)
    if moment == schedule.scale_up_time:
        return Action.SCALE_UP, daytime
    if moment == schedule.scale_down_time:
        return Action.SCALE_DOWN, off_hours
    return None
