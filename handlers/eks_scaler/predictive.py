"""The bounds of a `predictive` request: the node count the forecaster asks for, made safe.

The forecaster (handlers/demand_forecaster/predictive_request.py) asks for the node count its
forecast needs; the scaler, under the node group's lock and with its current size, keeps it:
- at or above the stack file's `desired_size` (the daytime size the schedule restores) during
  the schedule's working hours, unless the cluster's `scaling.working_hours_floor` is false;
- within the floor, min_size and max_size (`sizing.Limits`);
- within `scaling.max_step` nodes of the current desired size.
`decision.decide` then applies the usual rules (cooldown before a decrease). A cluster that the
inventory does not list, or that is not in `predictive` mode, is refused: a forecast must never
override a schedule the owner did not hand over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet_shared.inventory import Cluster, ScalingSchedule
from handlers.eks_scaler.sizing import Limits, Sizes

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


@dataclass(frozen=True)
class PredictiveTarget:
    """The desired size to ask the usual sizing rules for, with why, or why there is none."""

    desired_size: int | None
    notes: tuple[str, ...] = ()
    refused: str | None = None


def in_working_hours(schedule: ScalingSchedule, now: datetime) -> bool:
    """Whether `now` is between the schedule's scale-up and scale-down on one of its days (a
    window past midnight belongs to the day it starts on)."""
    local = now.astimezone(schedule.zone)
    moment = local.time().replace(tzinfo=None)
    up, down = schedule.scale_up_time, schedule.scale_down_time
    day = _WEEKDAYS[local.weekday()]
    if up < down:
        return day in schedule.days and up <= moment < down
    previous = _WEEKDAYS[(local.weekday() - 1) % 7]
    return (day in schedule.days and moment >= up) or (previous in schedule.days and moment < down)


def predictive_target(
    wanted: int,
    name: str,
    current: Sizes,
    limits: Limits,
    *,
    cluster: Cluster | None,
    now: datetime,
) -> PredictiveTarget:
    """The desired size for a forecast that needs `wanted` nodes of node group `name`."""
    if cluster is None or cluster.node_group(name) is None:
        return PredictiveTarget(
            None,
            refused=(
                f"predictive scaling needs node group {name!r} of the cluster in the fleet "
                "inventory (its scaling settings and bounds)"
            ),
        )
    scaling = cluster.scaling
    if scaling.mode != "predictive":
        return PredictiveTarget(
            None,
            refused=(
                f"cluster {cluster.name} is in {scaling.mode} mode; set scaling.mode: "
                "predictive in the stack file to let the forecast size it"
            ),
        )
    notes = [f"forecast needs {wanted} node(s)"]
    target = wanted
    configured = cluster.node_group(name)
    schedule = cluster.schedule
    if (
        configured is not None
        and scaling.working_hours_floor
        and schedule is not None
        and in_working_hours(schedule, now)
        and target < configured.desired_size
    ):
        target = configured.desired_size
        notes.append(f"working hours: kept at the scheduled daytime size {target}")
    if target > limits.highest:
        target = limits.highest
        notes.append(f"clamped to {limits.upper_bound}")
    if target < limits.lowest:
        target = limits.lowest
        notes.append(f"raised to {limits.lower_bound}")
    step = scaling.max_step
    stepped = min(max(target, current.desired_size - step), current.desired_size + step)
    if stepped != target:
        notes.append(f"max_step {step}: {stepped} now, {target} later")
    return PredictiveTarget(stepped, tuple(notes))
