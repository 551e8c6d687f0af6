"""The target of a `predictive` request: the node count the forecaster asks for, made safe, or
the schedule's size when the forecaster hands the node group back.

The forecaster (handlers/demand_forecaster/predictive_request.py) asks for the node count its
forecast needs; the scaler, under the node group's lock and with its current size, keeps it:
- at or above the stack file's `desired_size` (the daytime size the schedule restores) during
  the schedule's working hours, unless the cluster's `scaling.working_hours_floor` is false
  (working hours of the days the schedule scales up on, `fleet_shared.working_hours`, which
  the scaling optimizer's working hours follow too: not on a holiday, and on a forced working
  day outside its `days` too);
- within the floor, min_size and max_size (`sizing.Limits`);
- within `scaling.max_step` nodes of the current desired size.
When the forecaster keeps the schedule for the hour (low confidence, too little
history) it sends the node group with `hand_back: true` instead. If the node group's last
change (recorded, or made but not recorded: change_intents.py) was the forecast's (`action:
predictive`), its target is the schedule's size for the hour
(`scheduled_size`), without `max_step`: going back up to the owner's size must not be slowed.
Otherwise the schedule's last size (or a person's) stands and nothing changes.
`decision.decide` then applies the usual rules (cooldown before a decrease). A cluster that the
inventory does not list, or that is not in `predictive` mode, is refused: a forecast must never
override a schedule the owner did not hand over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet_shared.inventory import Cluster, NodeGroup
from fleet_shared.working_hours import in_working_hours
from handlers.eks_scaler.models import Action
from handlers.eks_scaler.sizing import Limits, Sizes


@dataclass(frozen=True)
class PredictiveTarget:
    """The desired size to ask the usual sizing rules for, with why; without one, either why the
    request is `refused` or (a hand-back) why the current size stands, in `notes`."""

    desired_size: int | None
    notes: tuple[str, ...] = ()
    refused: str | None = None


def scheduled_size(cluster: Cluster, node_group: NodeGroup, now: datetime) -> tuple[int, str]:
    """The size the schedule gives `node_group` at `now`, and what it is: the stack file's
    `desired_size` in working hours (or when the schedule does not size the node group), its
    `off_hours_desired` size outside them."""
    schedule = cluster.schedule
    if (
        schedule is None
        or node_group.name not in schedule.off_hours_desired
        or node_group.name in schedule.exclude_node_groups
    ):
        return node_group.desired_size, "the stack file's desired size"
    if in_working_hours(schedule, now, calendar=cluster.calendar):
        return node_group.desired_size, "the scheduled daytime size"
    return schedule.off_hours_desired[node_group.name], "the schedule's off-hours size"


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
    handed_over = _handed_over(name, cluster)
    if isinstance(handed_over, str):
        return PredictiveTarget(None, refused=handed_over)
    cluster, configured = handed_over
    scaling = cluster.scaling
    notes = [f"forecast needs {wanted} node(s)"]
    target = wanted
    schedule = cluster.schedule
    if (
        scaling.working_hours_floor
        and schedule is not None
        and in_working_hours(schedule, now, calendar=cluster.calendar)
        and target < configured.desired_size
    ):
        target = configured.desired_size
        notes.append(f"working hours: kept at the scheduled daytime size {target}")
    target = _within_limits(target, limits, notes)
    step = scaling.max_step
    stepped = min(max(target, current.desired_size - step), current.desired_size + step)
    if stepped != target:
        notes.append(f"max_step {step}: {stepped} now, {target} later")
    return PredictiveTarget(stepped, tuple(notes))


def hand_back_target(
    name: str,
    limits: Limits,
    *,
    cluster: Cluster | None,
    last_change_action: str | None,
    now: datetime,
) -> PredictiveTarget:
    """The schedule's size for node group `name` when its current size is the forecast's (its
    last change was `predictive`); otherwise no size: the current one stands."""
    handed_over = _handed_over(name, cluster)
    if isinstance(handed_over, str):
        return PredictiveTarget(None, refused=handed_over)
    cluster, configured = handed_over
    if last_change_action != Action.PREDICTIVE.value:
        last = (
            f"the last change was a {last_change_action}"
            if last_change_action is not None
            else "no change is recorded"
        )
        return PredictiveTarget(
            None, (f"schedule kept: {last}, not the forecast's, so the current size stands",)
        )
    size, what = scheduled_size(cluster, configured, now)
    notes = [f"schedule kept: back to {what} {size} after the forecast's change"]
    return PredictiveTarget(_within_limits(size, limits, notes), tuple(notes))


def _handed_over(name: str, cluster: Cluster | None) -> tuple[Cluster, NodeGroup] | str:
    """The cluster and node group the owner handed to the forecast, or why they are not."""
    configured = cluster.node_group(name) if cluster is not None else None
    if cluster is None or configured is None:
        return (
            f"predictive scaling needs node group {name!r} of the cluster in the fleet "
            "inventory (its scaling settings and bounds)"
        )
    if cluster.scaling.mode != "predictive":
        return (
            f"cluster {cluster.name} is in {cluster.scaling.mode} mode; set scaling.mode: "
            "predictive in the stack file to let the forecast size it"
        )
    return cluster, configured


def _within_limits(target: int, limits: Limits, notes: list[str]) -> int:
    """`target` within the limits, with a note when it moved."""
    if target > limits.highest:
        notes.append(f"clamped to {limits.upper_bound}")
        return limits.highest
    if target < limits.lowest:
        notes.append(f"raised to {limits.lower_bound}")
        return limits.lowest
    return target
