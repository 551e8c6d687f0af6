"""One cluster's forecast: history from Container Insights, the model, nodes per node group.

Load is forecast as CPU demand in vCPU, not as utilisation: utilisation falls when the scaler adds
nodes, demand does not. Container Insights gives, per cluster (dimension ClusterName), the average
`node_cpu_utilization` (usage / node CPU capacity, in percent) and `cluster_node_count`; demand
for an hour is utilisation/100 x node count x average vCPUs per node, the average being that of
the cluster's node groups now (their desired sizes and instance types). The running pods
(`node_number_of_running_pods`, an average per node, x node count) are reported for context.

History: `ForecasterEnvironment.forecast_history_days` of hourly averages up to the last whole
hour. Leading hours without data are dropped, hours missing inside stay missing (the model skips
them rather than fit invented values), and the forecast starts after the last hour with data, so
CloudWatch's lag of a few minutes does not turn into a fake zero. The cluster's member reads
(EKS, EC2, CloudWatch) go through clients whose attempts and timeouts are bounded
(`services.MEMBER_READ_CONFIG`), and an endpoint that does not answer fails the cluster at its
first call (`capacity.py`), so a hung endpoint costs the fleet run one `READ_CALL_SECONDS`.

Days of the week: the model gives each day of the week its own shape, and a cluster's load
follows its people's days, so the hours are counted in the cluster's time zone (its schedule's,
else the stack's schedule time zone from its calendar, else UTC), each hour at the zone's UTC
offset then. In UTC, a cluster at UTC+9 would have its Monday morning ramp at the end of the
UTC Sunday, and its weekend starting in the middle of a UTC Friday; at one offset for the whole
history, the weeks before a daylight-saving change would put the morning ramp an hour early or
late for a week after it (on generated New York load, the day after the change was 13% off
on average and 80% in its worst hour; with each hour's own offset, 2.4% and 8%).

Model (`seasonal_model.py`): the forecast, its prediction interval (`forecast_interval`, from the
model's own recent out-of-sample errors), its 0.9 quantile (`p90_vcpu`, the upper bound of the
central 80% interval), the confidence with its reason and each step's own confidence (its
horizon's out-of-sample hit rate).

Memory: when Container Insights reports `node_memory_utilization`, memory demand (utilisation/100
x node count x average memory per node, in MiB) is forecast by the same model and each step gives
its p90 (`p90_memory_mib`), so predictive scaling sizes on CPU and memory; without that history
(or too little of it) it sizes on CPU alone and `errors` says so when there was some.

Nodes needed: for each forecast step, the upper bound of the prediction interval divided by the
target utilisation is the allocatable vCPU the cluster should have; each node group takes its
current share of the cluster's vCPUs (desired size x vCPUs per node), divided by the allocatable
vCPU of one of its nodes (the smallest of its instance types, to be safe) and rounded up. The
recommended desired size is the peak over the horizon, kept within [max(floor, min_size),
max_size] (the stack file's max_size, or EKS's maxSize when lower: the scaler's bounds). Sizing
on the upper bound, not the mean, is what makes a wide interval cost nodes.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import pandas as pd

from fleet_shared.exceptions import FleetError
from fleet_shared.inventory import Cluster
from fleet_shared.metric_data import MetricQuery, get_metric_series, within_range
from fleet_shared.performance_documents import MAX_MEASURED_UTILISATION
from fleet_shared.timestamps import iso_z
from handlers.demand_forecaster.capacity import (
    InstanceCapacity,
    LiveNodeGroup,
    instance_capacities,
    live_node_groups,
)
from handlers.demand_forecaster.environment import ForecasterEnvironment
from handlers.demand_forecaster.exceptions import InsufficientHistoryError
from handlers.demand_forecaster.seasonal_model import (
    HALF_LIFE_DAYS,
    DemandForecast,
    forecast_demand,
)
from handlers.demand_forecaster.services import ForecasterServices

NAMESPACE = "ContainerInsights"
PERIOD_SECONDS = 3600
STEP = timedelta(seconds=PERIOD_SECONDS)
MODEL_NAME = "robust_seasonal_regression"
PREDICTIVE_QUANTILE = 0.9
"""The upper quantile of each step's demand reported as `p90_vcpu` (predictive scaling's)."""
NODE_COUNT_FACTOR = 2
UPDATE_SURGE_NODES = 12
"""A cluster's node count is measured at most NODE_COUNT_FACTOR times its node groups' max sizes
(nodes of groups the stack file does not declare) plus this many per node group: a managed node
group's update adds up to twice its Availability Zones (at most six) for a while. A count above
that, or a CPU or memory utilisation outside 0-MAX_MEASURED_UTILISATION, no cluster measured:
Container Insights' namespace takes anyone's PutMetricData, and one last hour of 1000 times the
load gave a confident p90 30 times the usual that drove a predictive cluster to its max_size.
Such an hour is left out of the history (a missing hour, as CloudWatch's gaps are) and named."""


class ForecastError(FleetError):
    """The cluster cannot be forecast (no node group, no capacity, no history)."""


class NoHistoryError(ForecastError):
    """Container Insights has no hour of the cluster's history: there is nothing to forecast
    from (predictive mode hands the cluster back to its schedule)."""


@dataclass(frozen=True)
class Sized:
    """A node group with the capacity of its smallest instance type."""

    group: LiveNodeGroup
    capacity: InstanceCapacity


def forecast_cluster(
    services: ForecasterServices,
    *,
    account_id: str,
    cluster: Cluster,
    horizon_minutes: int,
    now: datetime,
    next_call_allowed: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The self-contained forecast result of one cluster (see the module docstring); with
    `next_call_allowed`, its node groups are described only while it answers True."""
    environment = services.environment
    region = cluster.region
    eks = services.member_client("eks", account_id, region)
    groups, errors = live_node_groups(eks, cluster, next_call_allowed)
    types = {instance_type for group in groups for instance_type in group.instance_types}
    ec2 = services.member_client("ec2", account_id, region)
    capacities, type_errors = instance_capacities(ec2, types)
    sized: list[Sized] = []
    for group in groups:
        known = [capacities[t] for t in group.instance_types if t in capacities]
        if not known:
            missing = ", ".join(f"{t}: {type_errors.get(t)}" for t in group.instance_types)
            errors[group.name] = f"no capacity for its instance types ({missing})"
            continue
        sized.append(Sized(group, min(known, key=lambda c: c.allocatable_vcpu)))
    if not sized:
        raise ForecastError(f"cluster {cluster.name}: no node group could be sized: {errors}")

    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=environment.forecast_history_days)
    cloudwatch = services.member_client("cloudwatch", account_id, region)
    frame, left_out = _history(
        cloudwatch, cluster.name, start, end, most_nodes_measured(cluster, groups)
    )
    node_count = frame["node_count"]
    demand = (frame["cpu_utilization"] / 100.0 * node_count * _vcpus_per_node(sized)).dropna()
    if demand.empty:
        raise NoHistoryError(
            f"cluster {cluster.name}: no Container Insights history (node_cpu_utilization and "
            f"cluster_node_count) in the last {environment.forecast_history_days} days"
        )
    memory = frame["memory_utilization"] / 100.0 * node_count * _memory_mib_per_node(sized)
    pods = (frame["pods_per_node"] * node_count).dropna()
    return forecast_from_history(
        DemandHistory(demand, memory.dropna(), pods, tuple(left_out)),
        sized,
        environment,
        account_id=account_id,
        cluster=cluster,
        horizon_minutes=horizon_minutes,
        now=now,
        errors=errors,
    )


@dataclass(frozen=True)
class DemandHistory:
    """A cluster's hourly history (indexed by the start of each hour, UTC): CPU demand in vCPU,
    memory demand in MiB (empty without Container Insights memory) and running pods."""

    cpu_vcpu: pd.Series
    memory_mib: pd.Series
    running_pods: pd.Series
    left_out: tuple[str, ...] = ()
    """Per metric whose answer held values no metric can have (`MetricSeries.left_out`), what
    was left out: those hours are missing, as hours without data are."""


def forecast_from_history(
    history: DemandHistory,
    sized: list[Sized],
    environment: ForecasterEnvironment,
    *,
    account_id: str,
    cluster: Cluster,
    horizon_minutes: int,
    now: datetime,
    errors: dict[str, str],
) -> dict[str, Any]:
    """The forecast result of `cluster` from its history (`errors`: per node group, why it was
    left out; `forecast_cluster` reads the history, the replay benchmark generates it)."""
    demand = history.cpu_vcpu
    first, last = demand.index[0], demand.index[-1]
    hours = pd.date_range(first, last, freq=STEP)
    horizon_end = now + timedelta(minutes=horizon_minutes)
    # Steps are labelled, as CloudWatch labels periods, by the start of their hour.
    steps = max(1, math.floor((horizon_end - last.to_pydatetime()) / STEP))
    times = [last.to_pydatetime() + STEP * (i + 1) for i in range(steps)]
    zone = _local_zone(cluster)
    hours_of_week = np.array(
        [local_hour_of_week(moment, zone) for moment in [*hours.to_pydatetime(), *times]]
    )
    forecast = forecast_demand(demand.reindex(hours).to_numpy(), hours_of_week, steps)
    mean = forecast.mean
    lower, upper = forecast.interval(environment.forecast_interval)
    # The central interval whose upper bound is the p90 that predictive scaling sizes on.
    p90 = forecast.interval(2 * PREDICTIVE_QUANTILE - 1)[1]
    memory_forecast, memory_problem = _memory_forecast(
        history.memory_mib.reindex(hours), hours_of_week, steps
    )
    memory_p90 = (
        None
        if memory_forecast is None
        else memory_forecast.interval(2 * PREDICTIVE_QUANTILE - 1)[1]
    )
    coming_hour = _coming_hour(forecast, memory_forecast, times, now)
    needed_vcpu = upper / environment.forecast_target_utilisation
    node_groups, recommendation = _size_node_groups(
        sized, needed_vcpu, environment, horizon_minutes
    )
    pods = history.running_pods
    steps_out = []
    for index, (moment, m, lo, hi, q90) in enumerate(
        zip(times, mean, lower, upper, p90, strict=True)
    ):
        step = {
            "timestamp": iso_z(moment),
            "demand_vcpu": round(float(m), 4),
            "lower_vcpu": round(float(lo), 4),
            "upper_vcpu": round(float(hi), 4),
            "p90_vcpu": round(float(q90), 4),
            "confidence": round(float(forecast.step_confidence[index]), 4),
        }
        if memory_p90 is not None:
            step["p90_memory_mib"] = round(float(memory_p90[index]), 1)
        steps_out.append(step)
    return {
        "status": "ok",
        "account_id": account_id,
        "region": cluster.region,
        "cluster": cluster.name,
        "generated_at": iso_z(now),
        "horizon_minutes": horizon_minutes,
        "step_minutes": PERIOD_SECONDS // 60,
        "unit": "vCPU",
        "interval": environment.forecast_interval,
        "confidence": round(forecast.confidence, 4),
        "confidence_reason": forecast.confidence_reason,
        "model": {**_model_summary(forecast), "days_of_week_time_zone": str(zone)},
        "history": {
            "start": iso_z(first.to_pydatetime()),
            "last_observation": iso_z(last.to_pydatetime()),
            "latest_demand_vcpu": round(float(demand.iloc[-1]), 4),
            "peak_demand_vcpu": round(float(demand.max()), 4),
            "latest_running_pods": None if pods.empty else round(float(pods.iloc[-1]), 1),
            "vcpus_per_node": round(_vcpus_per_node(sized), 4),
            "memory_history": memory_p90 is not None,
        },
        "forecast": steps_out,
        "coming_hour": coming_hour,
        "node_groups": node_groups,
        "recommendation": recommendation,
        "errors": [
            *({"node_group": name, "error": message} for name, message in errors.items()),
            *([{"node_group": None, "error": memory_problem}] if memory_problem else []),
            *({"node_group": None, "error": text} for text in history.left_out),
        ],
    }


def most_nodes_measured(cluster: Cluster, groups: list[LiveNodeGroup]) -> int:
    """The most nodes the cluster's `cluster_node_count` can measure: NODE_COUNT_FACTOR times
    the sum of its node groups' max sizes (EKS's maxSize; the stack file's for a group EKS did
    not describe), plus UPDATE_SURGE_NODES per node group."""
    described = {group.name: group for group in groups}
    largest = 0
    for declared in cluster.node_groups:
        group = described.get(declared.name)
        if group is None:
            largest += declared.max_size
        else:
            largest += group.max_size if group.eks_max_size is None else group.eks_max_size
    return NODE_COUNT_FACTOR * largest + UPDATE_SURGE_NODES * len(cluster.node_groups)


def local_hour_of_week(hour: datetime, zone: tzinfo) -> int:
    """The hour of the week (0: Monday 00:00) in `zone` of the UTC `hour`, at the zone's UTC
    offset then. Each UTC hour counts as the local hour that holds most of it: an offset of
    +5:45 counts as +6 (and +5:30 as +6, -3:30 as -4: half-way rounds to even)."""
    offset = hour.astimezone(zone).utcoffset() or timedelta(0)
    local = hour + STEP * round(offset / STEP)
    return local.weekday() * 24 + local.hour


def share_of_the_hour(step_start: datetime, now: datetime) -> float:
    """How much of the hour after `now` the hourly step starting at `step_start` covers, from 0
    to 1: at 10:05 the 10:00 step covers 55 minutes of it and the 11:00 step 5."""
    return max(min(step_start, now) + STEP - max(step_start, now), timedelta(0)) / STEP


def _local_zone(cluster: Cluster) -> tzinfo:
    """The time zone whose days the cluster's load follows (see the module docstring)."""
    if cluster.schedule is not None:
        return cluster.schedule.zone
    if cluster.calendar is not None:
        return zoneinfo.ZoneInfo(cluster.calendar.time_zone)
    return UTC


def _memory_forecast(
    memory_mib: pd.Series, hours_of_week: np.ndarray, steps: int
) -> tuple[DemandForecast | None, str | None]:
    """The forecast of the memory demand, or None and, when there was some memory history but
    too little, why (the node groups are then sized on CPU alone)."""
    if memory_mib.isna().all():
        return None, None
    try:
        return forecast_demand(memory_mib.to_numpy(), hours_of_week, steps), None
    except InsufficientHistoryError as error:
        return None, f"memory: sized on CPU only: {error}"


def _coming_hour(
    forecast: DemandForecast,
    memory_forecast: DemandForecast | None,
    times: list[datetime],
    now: datetime,
) -> dict[str, Any] | None:
    """The p90 of the demand in the hour after `now` (None when no step reaches it).

    The hour spans the steps it overlaps (a run at 10:05: 55 minutes of the 10:00 step and 5 of
    the 11:00 step), so its p90 is that of the steps' mixture, each weighted by its minutes: the
    demand that a minute of the hour exceeds with probability 0.1. The larger of the steps' own
    p90s would be exceeded less often than that, and would size every rising hour for the next.
    """
    end = now + STEP
    weights = np.array([share_of_the_hour(moment, now) for moment in times])
    if weights.sum() == 0:
        return None
    hour: dict[str, Any] = {
        "start": iso_z(now),
        "end": iso_z(end),
        "p90_vcpu": round(forecast.mixture_quantile(weights, PREDICTIVE_QUANTILE), 4),
    }
    if memory_forecast is not None:
        hour["p90_memory_mib"] = round(
            memory_forecast.mixture_quantile(weights, PREDICTIVE_QUANTILE), 1
        )
    return hour


def _history(
    cloudwatch: Any, cluster_name: str, start: datetime, end: datetime, most_nodes: int
) -> tuple[pd.DataFrame, list[str]]:
    """The hourly history of the cluster, a column per query; and per metric with values left
    out (`MetricSeries.left_out_summary`: an infinity made the model's regression singular; a
    value dated outside the window asked; off the hour; or one no cluster of at most
    `most_nodes` nodes measures, `NODE_COUNT_FACTOR`), what."""
    dimensions = {"ClusterName": cluster_name}
    queries = [
        MetricQuery("cpu_utilization", NAMESPACE, "node_cpu_utilization", dimensions, "Average",
                    PERIOD_SECONDS, "Percent"),
        MetricQuery("node_count", NAMESPACE, "cluster_node_count", dimensions, "Average",
                    PERIOD_SECONDS, "Count"),
        MetricQuery("memory_utilization", NAMESPACE, "node_memory_utilization", dimensions,
                    "Average", PERIOD_SECONDS, "Percent"),
        MetricQuery("pods_per_node", NAMESPACE, "node_number_of_running_pods", dimensions,
                    "Average", PERIOD_SECONDS, "Count"),
    ]  # fmt: skip
    highest = {
        "cpu_utilization": MAX_MEASURED_UTILISATION,
        "node_count": most_nodes,
        "memory_utilization": MAX_MEASURED_UTILISATION,
        "pods_per_node": None,
    }
    series = get_metric_series(cloudwatch, queries, start, end)
    columns: dict[str, pd.Series] = {}
    left_out: list[str] = []
    for query in queries:
        result = series[query.id]
        if (summary := result.left_out_summary()) is not None:
            left_out.append(f"{query.metric_name}: {summary}")
        result, outside = within_range(result, highest[query.id], query.unit or "")
        if outside is not None:
            left_out.append(f"{query.metric_name}: {outside}")
        # CloudWatch answers the hours from the (aligned) start: one off the hour, which the
        # shared read keeps since it is within the window, would start the forecast off the
        # hour or give two values to one hour.
        on_the_hour = [(moment - start) % STEP == timedelta(0) for moment in result.timestamps]
        off = [moment for moment, ok in zip(result.timestamps, on_the_hour, strict=True) if not ok]
        if off:
            left_out.append(
                f"{query.metric_name}: {len(off)} value{'' if len(off) == 1 else 's'} left out, "
                f"off the hour; the first at {iso_z(off[0])}"
            )
        inside = [
            (moment, value)
            for moment, value, ok in zip(result.timestamps, result.values, on_the_hour, strict=True)
            if ok
        ]
        columns[query.id] = pd.Series(
            [value for _, value in inside],
            index=pd.DatetimeIndex(pd.to_datetime([moment for moment, _ in inside], utc=True)),
        )
    frame = pd.DataFrame(columns).sort_index()
    # A query without any datapoint has no column; memory is optional.
    return frame.reindex(columns=[query.id for query in queries]), left_out


def _vcpus_per_node(sized: list[Sized]) -> float:
    """Average vCPUs per node now (`_per_node`)."""
    return _per_node(sized, lambda capacity: capacity.vcpus)


def _memory_mib_per_node(sized: list[Sized]) -> float:
    """Average memory (MiB) per node now (`_per_node`)."""
    return _per_node(sized, lambda capacity: capacity.memory_mib)


def _per_node(sized: list[Sized], amount: Callable[[InstanceCapacity], int]) -> float:
    """Average `amount` of a node's capacity per node now, weighted by desired size (by max size
    when all are 0): CPU and memory demand are measured on the same nodes."""
    weights = [s.group.desired_size for s in sized]
    if sum(weights) == 0:
        weights = [s.group.max_size for s in sized]
    total = sum(weights)
    return sum(w * amount(s.capacity) for w, s in zip(weights, sized, strict=True)) / total


def _size_node_groups(
    sized: list[Sized],
    needed_vcpu: np.ndarray,
    environment: ForecasterEnvironment,
    horizon_minutes: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shares = np.array([s.group.desired_size * s.capacity.vcpus for s in sized], dtype=float)
    if shares.sum() == 0:
        shares = np.array([s.group.max_size * s.capacity.vcpus for s in sized], dtype=float)
    shares = shares / shares.sum()
    details: list[dict[str, Any]] = []
    recommendation: list[dict[str, Any]] = []
    for share, item in zip(shares, sized, strict=True):
        group, capacity = item.group, item.capacity
        # Python's ceil, not numpy's int cast: a count past 2**63 (a history anyone may publish
        # says 1e25 vCPU) wrapped to a negative one, and the recommendation fell to the floor.
        per_step = [math.ceil(nodes) for nodes in share * needed_vcpu / capacity.allocatable_vcpu]
        peak = max(per_step)
        lowest = max(group.floor, group.min_size)
        desired = min(max(peak, lowest), group.max_size)
        details.append(
            {
                "name": group.name,
                "capacity_type": group.capacity_type,
                "instance_type": capacity.instance_type,
                "vcpus_per_node": capacity.vcpus,
                "allocatable_vcpu_per_node": round(capacity.allocatable_vcpu, 4),
                "allocatable_fraction": round(capacity.allocatable_fraction, 4),
                "memory_mib_per_node": capacity.memory_mib,
                "allocatable_memory_mib_per_node": round(capacity.allocatable_memory_mib, 1),
                "share_of_demand": round(float(share), 4),
                "current_desired_size": group.desired_size,
                "nodes_needed": per_step,
                "peak_nodes_needed": peak,
            }
        )
        reason = (
            f"peak upper {environment.forecast_interval:.0%} demand share "
            f"{share * float(needed_vcpu.max()) * environment.forecast_target_utilisation:.2f} "
            f"vCPU in the next {horizon_minutes} min at "
            f"{environment.forecast_target_utilisation:.0%} target utilisation needs {peak} "
            f"x {capacity.instance_type} ({capacity.allocatable_vcpu:.3f} allocatable vCPU each)"
        )
        if desired != peak:
            bound = "max_size" if desired == group.max_size else "floor/min_size"
            reason += f"; kept at {bound} {desired}"
        recommendation.append({"name": group.name, "desired_size": desired, "reason": reason})
    return details, recommendation


def _model_summary(forecast: DemandForecast) -> dict[str, Any]:
    """What the model used and what it measured of itself on the history's last days."""
    return {
        "name": MODEL_NAME,
        "parameters": {
            "level_alpha": forecast.level_alpha,
            "persistence": forecast.persistence,
            "half_life_days": HALF_LIFE_DAYS,
        },
        "weekly_season": forecast.weekly_season,
        "history_hours": forecast.history_hours,
        "observed_hours": forecast.observed_hours,
        "out_of_sample_days": forecast.calibration_days,
        "out_of_sample_forecasts": forecast.calibration_forecasts,
        "out_of_sample_mape_percent": round(forecast.backtest_mape, 3),
        "seasonal_naive_mape_percent": round(forecast.seasonal_naive_mape, 3),
        "seasonal_naive_lag_hours": forecast.seasonal_naive_lag,
    }
