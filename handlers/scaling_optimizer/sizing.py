"""Pure sizing rules of the optimizer: no AWS call, unit tested directly.

Demand: in each measured hour, a node group had `nodes` nodes (its desired size then, from the
scaler's history) and the cluster ran at `cpu_percent` and, when measured, `memory_percent`
(Container Insights has no node-group dimension, so the cluster's utilisation stands for each of
its node groups). Its busy nodes are `nodes x the busier of the two / 100`, as the scaler steps;
the nodes that would have held it at the cluster's target utilisation are `ceil(busy / target)`.

Sizes: `max_size` is the most nodes any hour needed (never under the node group's floor, which
the settings require), `min_size` the fewest (never under the capacity type's floor: 1
on-demand, 0 spot), `desired_size` (the working-hours size the morning restore returns to) the
most any working hour needed (any hour when no working hour was measured), the off-hours size
the most any off-hours hour needed, both at least `min_size` and the node group's floor; none
above `MAX_NODE_GROUP_SIZE`, the largest size the settings accept. Without a measured off-hours
hour, the schedule's off-hours size stays, and `min_size` and `max_size` keep it within them.

Scaler settings: the thresholds and cooldown of the scaler's one-node steps are replayed over
the same busy nodes for every candidate in a small grid, each unbroken run of measured hours on
its own (from the node group's size then); the one that keeps each node group's utilisation at
most its own cluster's `target + tolerance` in at least `ON_TARGET_SHARE` of the hours with the
fewest changes wins (ties: mean utilisation closest to the targets, then the current settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

ON_TARGET_SHARE = 0.95
SCALE_UP_CANDIDATES = (70.0, 75.0, 80.0, 85.0, 90.0)
SCALE_DOWN_CANDIDATES = (20.0, 30.0, 40.0, 50.0)
COOLDOWN_CANDIDATES = (300, 900, 1800, 3600, 7200, 14400)
HOUR_SECONDS = 3600
ONE_HOUR = timedelta(hours=1)
MAX_NODE_GROUP_SIZE = 450
"""The largest min, desired or max size the program's settings accept for a node group."""


@dataclass(frozen=True)
class DemandHour:
    """One measured hour of a node group; `memory_percent` None when it was not measured."""

    hour: datetime
    nodes: int
    cpu_percent: float
    working: bool
    memory_percent: float | None = None

    @property
    def busy_nodes(self) -> float:
        """Nodes' worth of CPU or memory, the busier of the two, the node group used that hour:
        the scaler steps on the busier, and pods that do not fit in memory are not scheduled
        however idle the CPU."""
        return self.nodes * max(self.cpu_percent, self.memory_percent or 0.0) / 100

    def utilisation_described(self) -> str:
        """`20 % CPU`, or `20 % CPU, 90 % memory` when memory was measured."""
        described = f"{self.cpu_percent:.0f} % CPU"
        if self.memory_percent is not None:
            described += f", {self.memory_percent:.0f} % memory"
        return described


def default_floor(capacity_type: str) -> int:
    """1 for ON_DEMAND (a cluster keeps a node for system pods), 0 for SPOT (the scaler's rule)."""
    return 1 if capacity_type == "ON_DEMAND" else 0


def nodes_at_target(busy_nodes: float, target_percent: float) -> int:
    """The fewest nodes that hold `busy_nodes` at `target_percent` utilisation or below."""
    return math.ceil(round(busy_nodes / (target_percent / 100), 9))


@dataclass(frozen=True)
class SizeRecommendation:
    """One size with the hour that decides it, as evidence."""

    value: int
    evidence: str


@dataclass(frozen=True)
class NodeGroupSizes:
    """Recommended sizes of one node group; `off_hours` is None without off-hours hours."""

    min_size: SizeRecommendation
    desired_size: SizeRecommendation
    max_size: SizeRecommendation
    off_hours: SizeRecommendation | None


def _hours(count: int, kind: str = "") -> str:
    """`24 measured hours`: the evidence says how many hours a size rests on, so that one
    from a day of a 14-day window reads as such."""
    return f"{count} measured {kind}hour{'s' if count != 1 else ''}"


def _evidence(what: str, hour: DemandHour, needed: int, target: float) -> str:
    return (
        f"{what}: {hour.hour:%Y-%m-%d %H:%M}Z ran {hour.nodes} nodes at "
        f"{hour.utilisation_described()} ({hour.busy_nodes:.2f} busy nodes), which {needed} "
        f"nodes hold at the {target:g} % target"
    )


def recommend_sizes(
    hours: list[DemandHour],
    target_percent: float,
    capacity_type: str,
    node_group_floor: int,
    off_hours_size: int | None = None,
) -> NodeGroupSizes:
    """The sizes that would have kept every measured hour at the target, within what the
    settings accept (`node_group_floor` <= max_size <= MAX_NODE_GROUP_SIZE); `hours` not
    empty. `off_hours_size` is the schedule's off-hours size of the node group, if it has one:
    without a measured off-hours hour, it stays and the sizes keep it within [min, max]."""
    floor = default_floor(capacity_type)

    def needed(hour: DemandHour) -> int:
        return min(MAX_NODE_GROUP_SIZE, nodes_at_target(hour.busy_nodes, target_percent))

    def recommendation(
        what: str, chosen: DemandHour, lowest: int, lowest_is: str
    ) -> SizeRecommendation:
        value = max(lowest, needed(chosen))
        evidence = _evidence(what, chosen, value, target_percent)
        if value == MAX_NODE_GROUP_SIZE:
            evidence += f" (at most {MAX_NODE_GROUP_SIZE}, the largest size the settings accept)"
        elif value > nodes_at_target(chosen.busy_nodes, target_percent):
            evidence += f" ({lowest_is} {lowest})"
        return SizeRecommendation(value, evidence)

    peak = max(hours, key=needed)
    trough = min(hours, key=needed)
    max_size = recommendation(
        f"busiest of {_hours(len(hours))}",
        peak,
        max(1, node_group_floor),
        "at least the node group's floor,",
    )
    min_size = recommendation(
        f"quietest of {_hours(len(hours))}", trough, floor, f"{capacity_type} keeps at least"
    )
    off = [hour for hour in hours if not hour.working]
    if not off and off_hours_size is not None:
        # No measured hour sizes the nights, so the schedule's night size stays: the settings
        # (and EKS, for the scaler's night size) refuse it outside [min_size, max_size].
        unmeasured = f"the schedule's off-hours size {off_hours_size}: no off-hours hour measured"
        if min_size.value > off_hours_size:
            min_size = SizeRecommendation(
                off_hours_size, f"{min_size.evidence} (at most {unmeasured})"
            )
        if max_size.value < off_hours_size:
            max_size = SizeRecommendation(
                off_hours_size, f"{max_size.evidence} (at least {unmeasured})"
            )
    # The scaler never sets a size under the floor, so the settings refuse one there.
    if node_group_floor > min_size.value:
        lowest_size, lowest_size_is = node_group_floor, "the node group's floor is"
    else:
        lowest_size, lowest_size_is = min_size.value, "min_size is"
    working = [hour for hour in hours if hour.working]
    desired = recommendation(
        f"busiest of {_hours(len(working), 'working ')}"
        if working
        else f"busiest of {_hours(len(hours))} (no working hour measured)",
        max(working or hours, key=needed),
        lowest_size,
        lowest_size_is,
    )
    off_hours = (
        recommendation(
            f"busiest of {_hours(len(off), 'off-hours ')}",
            max(off, key=needed),
            lowest_size,
            lowest_size_is,
        )
        if off
        else None
    )
    return NodeGroupSizes(min_size, desired, max_size, off_hours)


@dataclass(frozen=True)
class ScalerSettings:
    """The scaler's one-node-step thresholds (percent) and its cooldown (seconds)."""

    scale_up_utilization: float
    scale_down_utilization: float
    cooldown_seconds: int


SCALER_DEFAULTS = ScalerSettings(75.0, 30.0, 300)
"""What the deployed scaler runs with: the program sets none of its thresholds, so its
environment's defaults (handlers/eks_scaler/environment.py) apply."""


@dataclass(frozen=True)
class ReplayOutcome:
    """How a replay of the one-node steps went: changes made, hours on target, and the mean
    utilisation's points above the target (below it when negative)."""

    changes: int
    on_target_share: float
    mean_above_target: float


@dataclass(frozen=True)
class NodeGroupDemand:
    """What a replay needs of one node group: busy nodes per hour, its nodes at the start, its
    (min, max) bounds and its cluster's target utilisation (percent)."""

    busy: list[float]
    start_nodes: int
    bounds: tuple[int, int]
    target_percent: float


def replay_steps(
    group: NodeGroupDemand, settings: ScalerSettings, tolerance_percent: float
) -> ReplayOutcome:
    """Replay the scaler's steps over `group`'s hours: one node more above the scale-up
    threshold, one less under the scale-down threshold once the cooldown has passed since the
    last change. An hour is on target at most `tolerance_percent` points above the group's
    cluster's target."""
    busy, target_percent = group.busy, group.target_percent
    ceiling_percent = target_percent + tolerance_percent
    lowest, highest = group.bounds
    nodes = min(max(group.start_nodes, lowest), highest)
    cooldown_hours = math.ceil(settings.cooldown_seconds / HOUR_SECONDS)
    since_change = cooldown_hours
    changes = on_target = 0
    utilisations: list[float] = []
    for busy_nodes in busy:
        utilisation = busy_nodes / nodes * 100 if nodes else (100.0 if busy_nodes else 0.0)
        utilisations.append(utilisation)
        on_target += utilisation <= ceiling_percent
        since_change += 1
        if utilisation > settings.scale_up_utilization and nodes < highest:
            nodes, changes, since_change = nodes + 1, changes + 1, 0
        elif (
            utilisation < settings.scale_down_utilization
            and nodes > lowest
            and since_change >= cooldown_hours
        ):
            nodes, changes, since_change = nodes - 1, changes + 1, 0
    count = max(1, len(busy))
    return ReplayOutcome(
        changes, on_target / count, sum(utilisations) / count - target_percent if busy else 0.0
    )


def node_group_demands(
    hours: list[DemandHour], bounds: tuple[int, int], target_percent: float
) -> list[NodeGroupDemand]:
    """What a replay needs of one node group's measured `hours` (in time order), whose cluster
    targets `target_percent`: one demand per unbroken run of hours, each starting at the node
    group's size in its first hour. A replay steps hour by hour, so hours either side of a gap
    (an analysis missing, a day Container Insights did not report) are no consecutive hours:
    across it the scaler acted on demand no one measured, and its cooldown ran out."""
    runs: list[list[DemandHour]] = []
    for hour in hours:
        if runs and hour.hour - runs[-1][-1].hour == ONE_HOUR:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return [
        NodeGroupDemand([hour.busy_nodes for hour in run], run[0].nodes, bounds, target_percent)
        for run in runs
    ]


def replay_fleet(
    groups: list[NodeGroupDemand], settings: ScalerSettings, tolerance_percent: float
) -> ReplayOutcome:
    """`replay_steps` of every node group, each judged at its own cluster's target, summed:
    changes, share of hours on target, mean points above the targets."""
    outcomes = [
        (len(group.busy), replay_steps(group, settings, tolerance_percent)) for group in groups
    ]
    hours = max(1, sum(count for count, _ in outcomes))
    return ReplayOutcome(
        changes=sum(outcome.changes for _, outcome in outcomes),
        on_target_share=sum(count * outcome.on_target_share for count, outcome in outcomes) / hours,
        mean_above_target=sum(count * outcome.mean_above_target for count, outcome in outcomes)
        / hours,
    )


def best_scaler_settings(
    groups: list[NodeGroupDemand], tolerance_percent: float
) -> tuple[ScalerSettings, ReplayOutcome, ReplayOutcome]:
    """The grid's best settings for all `groups`, their replay, and the current settings' one.
    The scaler's settings are one for every cluster, so a candidate's thresholds must lie either
    side of every cluster's target; each node group is judged at its own cluster's: judged at
    their mean, a cluster targeting 85 % was off target at 88 % beside one targeting 55 %."""

    def replay(settings: ScalerSettings) -> ReplayOutcome:
        return replay_fleet(groups, settings, tolerance_percent)

    targets = [group.target_percent for group in groups]
    current = replay(SCALER_DEFAULTS)
    candidates = [
        ScalerSettings(up, down, cooldown)
        for up in SCALE_UP_CANDIDATES
        for down in SCALE_DOWN_CANDIDATES
        for cooldown in COOLDOWN_CANDIDATES
        if down < min(targets, default=0.0) and max(targets, default=100.0) < up
    ]
    outcomes = {settings: replay(settings) for settings in candidates}
    outcomes[SCALER_DEFAULTS] = current
    best_share = max(outcome.on_target_share for outcome in outcomes.values())
    required = min(ON_TARGET_SHARE, best_share)

    def rank(item: tuple[ScalerSettings, ReplayOutcome]) -> tuple[int, float, bool]:
        settings, outcome = item
        return (
            outcome.changes,
            abs(outcome.mean_above_target),
            settings != SCALER_DEFAULTS,
        )

    eligible = [item for item in outcomes.items() if item[1].on_target_share >= required]
    best, outcome = min(eligible, key=rank)
    return best, outcome, current
