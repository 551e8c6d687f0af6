"""One optimisation run: per node group of the inventory, the sizes from its measured demand;
the scaler's settings from all node groups together; memory from the cost analyzer.

Paths in the stack file follow the inventory's order, which is the stack file's own (the
program builds the inventory from it): member, cluster and node group indexes are the same.
The recommendations are written to `recommendations/<time>.json` and copied to
`recommendations/latest.json`; nothing is applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.exceptions import (
    ObjectReadTimeoutError,
    ObjectTooLargeError,
    PagesCutShortError,
    UnreadableStateRecordError,
)
from fleet_shared.function_services import FunctionServices
from fleet_shared.handler import Invocation
from fleet_shared.inventory import Cluster, FleetInventory, NodeGroup
from fleet_shared.performance_documents import (
    LATEST_RECOMMENDATIONS_KEY,
    SCHEMA_VERSION,
    PathSegment,
    Recommendations,
    ScalerSettingAdvice,
    StackFileChange,
    recommendations_key,
)
from fleet_shared.sessions import HUB_CALL_SECONDS
from fleet_shared.working_hours import in_working_hours
from handlers.scaling_optimizer.environment import OptimizerEnvironment
from handlers.scaling_optimizer.history import (
    UnreadableScalerChangeError,
    desired_size_timeline,
    read_cluster_history,
)
from handlers.scaling_optimizer.memory import latest_cost_detail, memory_changes
from handlers.scaling_optimizer.sizing import (
    SCALER_DEFAULTS,
    DemandHour,
    NodeGroupDemand,
    NodeGroupSizes,
    ReplayOutcome,
    SizeRecommendation,
    best_scaler_settings,
    node_group_demands,
    recommend_sizes,
)

OptimizerServices = FunctionServices[OptimizerEnvironment]

MEMBERS_KEY = "lambda-fleet:members"
WRITE_SECONDS = 2 * HUB_CALL_SECONDS
"""What writing the recommendations may take: two PutObjects to the data bucket, each bounded."""
CLUSTER_SECONDS = 20.0
"""What reading one cluster may take: its analyses (84 objects of a few KB in 14 days, one each
4 hours) and each node group's scaler history, a few seconds when S3 and DynamoDB answer."""
ANALYSIS_SECONDS = HUB_CALL_SECONDS
"""What reading one more of a cluster's analyses may take: its GetObject, bounded. Under
CLUSTER_SECONDS, so a cluster started reads its analyses until the writes' time is near."""
COST_REPORT_SECONDS = 20.0
"""What reading the cost report may take: a listing of the cost reports and the newest detail,
a few seconds when S3 answers."""
OUT_OF_TIME = "not read, the invocation's time ran out (the next run reads it)"
READ_IN_PART = "analyses read in part, the invocation's time ran out (the next run reads them)"


def is_working_hour(cluster: Cluster, moment: datetime) -> bool:
    """Whether the cluster's schedule has it at its daytime size at `moment` (always, without
    a schedule), by the scaler's own rule (`fleet_shared.working_hours`): on the schedule's days
    and the cluster calendar's forced working days, not on its holidays. A window past midnight
    (scale-down before scale-up, a night shift) belongs to the day it starts on, as the scaler
    runs it: 02:00 on Saturday is in Friday's window. A window lasts from the first reading of
    its scale-up time to the first reading of its scale-down time (`fleet_shared.wall_clocks`):
    on the night the clocks go back, the repeated hour after the scale-down is off-hours, not a
    working hour again."""
    schedule = cluster.schedule
    if schedule is None:
        return True
    return in_working_hours(schedule, moment, calendar=cluster.calendar)


@dataclass(frozen=True)
class Optimisation:
    """The recommendations written, and how many reads failed (a cluster's analyses or one of
    them, a node group's scaler history, the cost report): what they would have shown is
    missing from the recommendations, and the notes name each."""

    recommendations: Recommendations
    unread: int


def optimise(services: OptimizerServices, deadline: Invocation) -> Optimisation:
    """Read the history, recommend, write the recommendations. A read that fails is named in
    the notes and leaves out what it concerns only (a cluster, a node group, the memory); the
    other clusters and node groups are recommended all the same. A cluster (or the cost report)
    is read only while `deadline` (the invocation) leaves time for it and for the writes: the
    recommendations of what was read are written, instead of none when Lambda ends the run; an
    object's bytes likewise only within the time left but for the writes (an analysis's within
    ANALYSIS_SECONDS at most), as S3 may send them a few at a time."""
    environment = services.environment
    now = services.clock.now()
    since = now - timedelta(days=environment.optimizer_history_days)
    inventory = services.inventory()
    s3 = services.hub_client("s3")
    changes: list[StackFileChange] = []
    notes: list[str] = []
    demands: list[NodeGroupDemand] = []
    analyses_read = unread = 0
    for member in inventory.members:
        for cluster in member.clusters:
            resource = f"{member.account_id}/{cluster.region}/{cluster.name}"
            if cluster.autoscaler != "none":
                # The autoscaler sets the sizes from pending pods and the scaler leaves them
                # alone: the history holds none of them, so the busy nodes read from it (the
                # stack file's desired size) would size a max_size that caps the autoscaler.
                notes.append(
                    f"{resource}: its node groups' sizes are set by {cluster.autoscaler}, which "
                    "the scaler's history does not record; no sizes recommended"
                )
                continue
            if not deadline.allows(CLUSTER_SECONDS + WRITE_SECONDS):
                notes.append(f"{resource}: {OUT_OF_TIME}; no sizes recommended")
                unread += 1
                continue
            try:
                history = read_cluster_history(
                    s3,
                    environment.data_bucket_name,
                    member.account_id,
                    cluster,
                    since,
                    until=now,
                    more_allowed=lambda: deadline.allows(ANALYSIS_SECONDS + WRITE_SECONDS),
                    body_seconds=lambda: min(ANALYSIS_SECONDS, _time_to_write_by(deadline)),
                )
            except AWS_CALL_ERRORS as error:
                notes.append(f"{resource}: analyses not read ({error}); no sizes recommended")
                unread += 1
                continue
            analyses_read += history.analyses_read
            unread += history.unread
            notes.extend(history.skipped)
            if history.cut_short:
                # The window's newest analyses are the ones not read (keys sort in time order):
                # sizes from the rest would leave out the latest load.
                notes.append(f"{resource}: {READ_IN_PART}; no sizes recommended")
                unread += 1
                continue
            if len(history.utilisation_by_hour) < environment.optimizer_min_hours:
                notes.append(
                    f"{resource}: {len(history.utilisation_by_hour)} measured hours, "
                    f"{environment.optimizer_min_hours} needed; no sizes recommended"
                )
                continue
            # Entries by name, not index: the stack file's lists may be reordered before the
            # patch is rendered.
            cluster_path: list[PathSegment] = [MEMBERS_KEY, member.name, "clusters", cluster.name]
            for group in cluster.node_groups:
                try:
                    desired_at = desired_size_timeline(
                        services.state,
                        member.account_id,
                        cluster,
                        node_group=group.name,
                        since=since,
                        configured_desired=group.desired_size,
                    )
                except (
                    ClientError,
                    BotoCoreError,
                    UnreadableScalerChangeError,
                    UnreadableStateRecordError,
                ) as error:
                    notes.append(
                        f"{resource}/{group.name}: scaler history not read ({error}); "
                        "no sizes recommended"
                    )
                    unread += 1
                    continue
                hours = [
                    DemandHour(hour, desired_at(hour), cpu, is_working_hour(cluster, hour), memory)
                    for hour, (cpu, memory) in sorted(history.utilisation_by_hour.items())
                ]
                off_hours_size = (
                    None
                    if cluster.schedule is None
                    else cluster.schedule.off_hours_desired.get(group.name)
                )
                sizes = recommend_sizes(
                    hours,
                    cluster.scaling.target_utilization,
                    group.capacity_type,
                    group.floor,
                    off_hours_size,
                )
                group_path = [*cluster_path, "node_groups", group.name]
                changes.extend(_node_group_changes(cluster, group, group_path, cluster_path, sizes))
                demands.extend(
                    node_group_demands(
                        hours,
                        (sizes.min_size.value, sizes.max_size.value),
                        cluster.scaling.target_utilization,
                    )
                )
    scaler_settings = _scaler_advice(demands, environment.optimizer_tolerance_percent)
    if deadline.allows(COST_REPORT_SECONDS + WRITE_SECONDS):
        memory, memory_notes, memory_unread = _memory_changes(
            s3,
            environment,
            inventory,
            now,
            next_page_allowed=lambda: deadline.allows(HUB_CALL_SECONDS + WRITE_SECONDS),
            body_seconds=lambda: _time_to_write_by(deadline),
        )
        changes.extend(memory)
        notes.extend(memory_notes)
        unread += memory_unread
    else:
        notes.append(f"cost report: {OUT_OF_TIME}; no memory recommended")
        unread += 1
    recommendations = Recommendations(
        schema_version=SCHEMA_VERSION,
        stack=inventory.stack,
        generated_at=now,
        history_days=environment.optimizer_history_days,
        analyses_read=analyses_read,
        changes=changes,
        scaler_settings=scaler_settings,
        notes=notes,
    )
    body = recommendations.model_dump_json(indent=2).encode("utf-8")
    for key in (recommendations_key(now), LATEST_RECOMMENDATIONS_KEY):
        s3.put_object(
            Bucket=environment.data_bucket_name, Key=key, Body=body, ContentType="application/json"
        )
    return Optimisation(recommendations, unread)


def _time_to_write_by(deadline: Invocation) -> float:
    """The time left before the recommendations must be written (at least 0)."""
    return max(0.0, deadline.remaining_seconds() - WRITE_SECONDS)


def _memory_changes(
    s3: Any,
    environment: OptimizerEnvironment,
    inventory: FleetInventory,
    now: datetime,
    *,
    next_page_allowed: Callable[[], bool],
    body_seconds: Callable[[], float],
) -> tuple[list[StackFileChange], list[str], int]:
    """The memory lines from the newest cost report, the notes on it, and 1 when it could not
    be read, its listing cut short before a next page (`next_page_allowed()` False) or its
    bytes not all come within `body_seconds()` included (else 0; one too large to read is left
    out as one that does not validate is)."""
    try:
        cost = latest_cost_detail(
            s3,
            environment.data_bucket_name,
            now,
            next_page_allowed=next_page_allowed,
            body_seconds=body_seconds,
        )
    except (*AWS_CALL_ERRORS, ObjectReadTimeoutError, PagesCutShortError) as error:
        return [], [f"cost report not read ({error}); no memory recommended"], 1
    except ObjectTooLargeError as error:
        return [], [f"{error}; not read, no memory recommended"], 0
    if cost is None:
        return [], ["no cost report in the data bucket; no memory recommended"], 0
    memory, unusable = memory_changes(cost[1], cost[0], inventory)
    return memory, unusable, 0


def _node_group_changes(
    cluster: Cluster,
    group: NodeGroup,
    group_path: list[PathSegment],
    cluster_path: list[PathSegment],
    sizes: NodeGroupSizes,
) -> list[StackFileChange]:
    proposed: list[tuple[list[PathSegment], int | None, SizeRecommendation]] = [
        ([*group_path, "min_size"], group.min_size, sizes.min_size),
        ([*group_path, "desired_size"], group.desired_size, sizes.desired_size),
        ([*group_path, "max_size"], group.max_size, sizes.max_size),
    ]
    schedule = cluster.schedule
    if schedule is not None and group.name in schedule.off_hours_desired and sizes.off_hours:
        proposed.append(
            (
                [*cluster_path, "schedule", "off_hours_desired", group.name],
                schedule.off_hours_desired[group.name],
                sizes.off_hours,
            )
        )
    return [
        StackFileChange(
            path=path, current=current, recommended=recommended.value, evidence=recommended.evidence
        )
        for path, current, recommended in proposed
        if recommended.value != current
    ]


def _scaler_advice(demands: list[NodeGroupDemand], tolerance: float) -> list[ScalerSettingAdvice]:
    if not demands:
        return []
    best, outcome, current = best_scaler_settings(demands, tolerance)
    targets = sorted({demand.target_percent for demand in demands})
    evidence = _replay_evidence(outcome, current, sum(len(d.busy) for d in demands), targets)
    rows: list[tuple[str, float, float]] = [
        (
            "SCALER_SCALE_UP_UTILIZATION",
            SCALER_DEFAULTS.scale_up_utilization,
            best.scale_up_utilization,
        ),
        (
            "SCALER_SCALE_DOWN_UTILIZATION",
            SCALER_DEFAULTS.scale_down_utilization,
            best.scale_down_utilization,
        ),
        ("SCALER_COOLDOWN_SECONDS", SCALER_DEFAULTS.cooldown_seconds, best.cooldown_seconds),
    ]
    return [
        ScalerSettingAdvice(
            variable=variable, current=current_value, recommended=value, evidence=evidence
        )
        for variable, current_value, value in rows
        if value != current_value
    ]


def _replay_evidence(
    outcome: ReplayOutcome, current: ReplayOutcome, hours: int, targets: list[float]
) -> str:
    """The replay's figures; `targets` the clusters' distinct targets, each node group judged
    at its own cluster's."""
    at = (
        f"the {targets[0]:g} % target"
        if len(targets) == 1
        else f"their clusters' targets ({', '.join(f'{target:g} %' for target in targets)})"
    )
    return (
        f"replayed over {hours} node-group hours at {at}: "
        f"{outcome.changes} changes, {outcome.on_target_share:.0%} of hours on target "
        f"(current settings: {current.changes} changes, {current.on_target_share:.0%})"
    )


def summary(optimisation: Optimisation, key: str) -> dict[str, Any]:
    """What the handler returns about a run: `partial` when a read failed."""
    recommendations = optimisation.recommendations
    return {
        "status": "partial" if optimisation.unread else "ok",
        "stack": recommendations.stack,
        "recommendations": key,
        "analyses_read": recommendations.analyses_read,
        "changes": [change.dotted() for change in recommendations.changes],
        "scaler_settings": [advice.variable for advice in recommendations.scaler_settings],
        "notes": recommendations.notes,
    }
