"""What to do with one node group: a pure function of the request, the node group's current sizes,
its inventory entry, the state facts (saved sizes, last change) and the time.

`decide` makes no AWS call and writes nothing; `scaling.apply_decision` carries it out. Rules, in
order: the node group must be ACTIVE or DEGRADED (one that is UPDATING, an upgrade say, is waited
for: nothing changes now and the request stays open); `restore` and a size-less `scale_up` (the
morning schedule) ask for the desired size saved before the last scale-down (a `scale_up` with none
waiting, for the stack file's desired size, never lower than the current); the desired size is kept
within the limits of `sizing`; `scale_down` never raises (a scheduled one below its size is no
change, a requested one is refused) and `scale_up` with a size never lowers; `predictive` (the
forecaster's hourly size) goes either way within the bounds of `predictive`, and its hand-back
returns a node group the forecast last changed to the schedule's size (or changes nothing); a
decrease waits for the cooldown. Cooldown applies to decreases only: it stops flapping and stacked
scale-downs, while a scale-up (the morning restore, a manual request, the spot optimizer's on-demand
fallback) is the cheaper mistake to let through than missing capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.inventory import Cluster, NodeGroup
from fleet_shared.node_group_locks import SAVED_SIZES_NAME
from fleet_shared.validation_errors import shown_value
from handlers.eks_scaler.models import Action, NodeGroupRequest
from handlers.eks_scaler.predictive import (
    PredictiveTarget,
    hand_back_target,
    in_working_hours,
    predictive_target,
)
from handlers.eks_scaler.sizing import Limits, Sizes, node_group_limits, plan_desired

USABLE_STATUSES = frozenset({"ACTIVE", "DEGRADED"})
"""Node group statuses in which EKS accepts a scaling update."""
TRANSIENT_STATUSES = frozenset({"UPDATING"})
"""Node group statuses EKS leaves by itself (a version upgrade, a configuration update): a
request waits for ACTIVE instead of failing, since nothing is wrong that a person must fix."""


class DecisionKind(StrEnum):
    """What the apply step does with the node group."""

    CHANGE = "change"
    NO_CHANGE = "no_change"
    BLOCKED = "blocked"
    REFUSED = "refused"
    WAIT_FOR_UPDATE = "wait_for_update"
    """EKS is updating the node group: nothing now, the request stays open for its retry."""


@dataclass(frozen=True)
class SavedSizes:
    """The sizes saved before a scale-down, for the next restore."""

    sizes: Sizes
    saved_at: str
    restored_at: str | None = None
    restored_by: str | None = None
    """The `request_id` of the restore (marked before its update, so its retry knows them)."""

    @classmethod
    def from_record(cls, record: dict[str, Any], key: str) -> SavedSizes:
        """From the state table value (`as_record`) of node group `key`.

        UnreadableStateValueError naming the field when it is not one: the table is the fleet's
        own, so only corruption or a hand edit writes one, and it fails that node group alone
        (a KeyError or ValueError failed the whole request, and a flag or a fraction became the
        size restored)."""
        try:
            sizes = Sizes.from_dict(record.get("sizes"))
        except ValueError as error:
            raise UnreadableStateValueError(key, SAVED_SIZES_NAME, f"sizes: {error}") from None
        times = {field: record.get(field) for field in ("saved_at", "restored_at", "restored_by")}
        for field, value in times.items():
            if not isinstance(value, str) and (field == "saved_at" or value is not None):
                raise UnreadableStateValueError(
                    key, SAVED_SIZES_NAME, f"{field} {shown_value(value)} is not a string"
                )
        return cls(sizes, times["saved_at"], times["restored_at"], times["restored_by"])

    def as_record(self) -> dict[str, Any]:
        """The state table value."""
        return {
            "sizes": self.sizes.as_dict(),
            "saved_at": self.saved_at,
            "restored_at": self.restored_at,
            "restored_by": self.restored_by,
        }

    @property
    def waiting(self) -> bool:
        """Whether these sizes are still waiting to be restored."""
        return self.restored_at is None

    def waiting_for(self, request_id: str | None) -> bool:
        """Whether request `request_id` restores these sizes: they still wait, or this request
        marked them restored (its retry, after an invocation that ended in the update)."""
        return self.waiting or (request_id is not None and self.restored_by == request_id)


@dataclass(frozen=True)
class NodeGroupFacts:
    """What is known about one node group when the decision is made."""

    current: Sizes
    status: str
    capacity_type: str
    configured: NodeGroup | None
    """The node group as the inventory (the stack file) describes it, if it lists it."""
    saved: SavedSizes | None
    last_change_at: datetime | None
    cooldown_seconds: int
    cluster: Cluster | None = None
    """The node group's cluster in the inventory (its schedule and scaling settings), if listed."""
    last_change_action: str | None = None
    """The action of the node group's last change (`predictive`: the forecast's): the recorded
    one, or a later one made but not recorded (its `change_intent`)."""
    desired_before_temporary_raises: int | None = None
    """The desired size before the spot optimizer's temporary +1s the node group still holds
    (its last changes), or None when its size is not theirs: a scale-down saves that size, so
    the morning restore does not bring the temporary nodes back."""
    action_under_temporary_raises: str | None = None
    """The action of the recorded change that set `desired_before_temporary_raises`
    (`predictive`: the forecast's size is under the +1s), when known."""
    size_this_request_set: int | None = None
    """The desired size the request being decided already gave the node group (a recorded change
    of it, or its change made but not recorded), or None: the retry of a request left open
    (another node group locked, say) does not change the node group again."""


@dataclass(frozen=True)
class ScalingDecision:
    """What to do for one node group, and why."""

    kind: DecisionKind
    current: Sizes
    target: Sizes | None
    reasons: tuple[str, ...]
    restores: SavedSizes | None = None
    """The saved sizes this decision puts back: marked restored before the update (or when found
    in place)."""
    sizes_to_save: Sizes | None = None
    """What a scale-down saves for the next restore: the current sizes, without the spot
    optimizer's temporary +1s."""
    replaced_saved_sizes: SavedSizes | None = None
    """What that save replaces (nothing, or sizes already restored): put back when the update
    fails, so no restore undoes a scale-down that did not happen."""
    cooldown_remaining_seconds: int | None = None

    @property
    def saves_previous_sizes(self) -> bool:
        """Whether this decision saves sizes for the next restore (a scale-down)."""
        return self.sizes_to_save is not None


def _daytime_size_without_saved_sizes(
    action: Action, saved: SavedSizes | None, facts: NodeGroupFacts
) -> tuple[int | None, str]:
    """The size a `restore` or morning `scale_up` asks for when no saved sizes wait: the stack
    file's `desired_size` for a size-less `scale_up` that would raise the node group to it, else
    None (the current size stands); and why.

    Nothing waits when nothing was ever saved (the scaler first saw the node group at night), or
    when the last scale-down saved nothing: it found the node group already at its night size
    (someone, or the forecast, lowered it before), or it did not run (a hold, the calendar, the
    cooldown, a lock). Without this, such a node group stayed at its night size through every
    working day after: each scale-down found nothing to change and saved nothing.
    """
    why = (
        "no sizes were saved before a scale-down"
        if saved is None
        else f"the sizes saved at {saved.saved_at} were already restored at {saved.restored_at}"
    )
    configured = facts.configured
    if action is Action.RESTORE or configured is None:
        return None, f"{why}; nothing to restore"
    current = facts.current.desired_size
    if configured.desired_size <= current:
        return (
            None,
            f"{why}; desired {current} is at or above the stack file's {configured.desired_size}",
        )
    return (
        configured.desired_size,
        f"{why}; scaling up to the stack file's desired size {configured.desired_size}",
    )


def cooldown_remaining(
    last_change_at: datetime | None, cooldown_seconds: int, now: datetime
) -> int:
    """Whole seconds until `cooldown_seconds` have passed since the last change (0 = go)."""
    if last_change_at is None:
        return 0
    remaining = (last_change_at + timedelta(seconds=cooldown_seconds) - now).total_seconds()
    return max(0, math.ceil(remaining))


def decide(
    action: Action,
    group: NodeGroupRequest,
    facts: NodeGroupFacts,
    now: datetime,
    *,
    scheduled: bool = False,
    request_id: str | None = None,
    save_sizes: bool = True,
) -> ScalingDecision:
    """The decision for `group` under `action` (never `analyze`), given `facts` at `now`;
    `request_id`: the request's, which restores saved sizes it marked restored itself;
    `save_sizes`: False when a scale-down must save no sizes for the next restore (the change
    validator's restore of an undone change);
    `scheduled`: the request is a cluster schedule's (its evening scale-down asks for at most the
    night size, so a node group already below it needs no change rather than a refusal).

    A node group without `desired_size` (validation allows that for `restore` and `scale_up`,
    and for a `predictive` hand-back, which asks for the schedule's size) asks for the saved
    size; a size-less `scale_up` with none waiting, for the stack file's desired size.
    """
    current = facts.current
    already = facts.size_this_request_set
    if already is not None and (action is Action.PREDICTIVE or already != current.desired_size):
        # A request changes a node group once: the retry of one left open leaves it as it is
        # found, as a repeat of a completed one does. Changed again, it would undo a later
        # change (or, the forecast's size being a step from the size found, step again), and
        # the second change's notice, keyed by the request like the first's, would never go out.
        return ScalingDecision(
            DecisionKind.NO_CHANGE,
            current,
            current,
            (
                f"this request already changed it (to desired {already}); its retry leaves "
                f"desired {current.desired_size} as it is",
            ),
        )
    if facts.status in TRANSIENT_STATUSES:
        return ScalingDecision(
            DecisionKind.WAIT_FOR_UPDATE,
            current,
            None,
            (
                f"node group is {facts.status} (an EKS update in progress, such as a version "
                "upgrade); nothing changed: a retry, or the next request, acts once it is ACTIVE",
            ),
        )
    if facts.status not in USABLE_STATUSES:
        return _refused(
            current,
            [f"node group is {facts.status}; EKS accepts scaling only when ACTIVE or DEGRADED"],
        )
    restores: SavedSizes | None = None
    limits = node_group_limits(current, facts.capacity_type, facts.configured)
    reasons: list[str] = []
    if action is Action.PREDICTIVE:
        bounded = _predictive(group, facts, limits, now)
        if bounded.refused is not None:
            return _refused(current, [bounded.refused])
        if bounded.desired_size is None:
            return ScalingDecision(DecisionKind.NO_CHANGE, current, current, bounded.notes)
        requested = bounded.desired_size
        reasons.extend(bounded.notes)
    elif action is Action.RESTORE or group.desired_size is None:
        saved = facts.saved
        # Sizes already restored are not put back again, by `restore` either: they are stale
        # by then, and would undo whatever changed the node group since.
        if saved is not None and saved.waiting_for(request_id):
            restores = saved
            requested = saved.sizes.desired_size
        else:
            daytime_size, why = _daytime_size_without_saved_sizes(action, saved, facts)
            if daytime_size is None:
                return ScalingDecision(DecisionKind.NO_CHANGE, current, current, (why,))
            requested = daytime_size
            reasons.append(why)
    else:
        requested = group.desired_size

    plan = plan_desired(requested, limits)
    reasons.extend(plan.notes)
    if plan.desired_size is None:
        return _refused(current, [*reasons, plan.refused or ""])
    target = current.with_desired(plan.desired_size)
    lowers = target.desired_size < current.desired_size
    if action is Action.SCALE_DOWN and target.desired_size > current.desired_size:
        if scheduled:
            return ScalingDecision(
                DecisionKind.NO_CHANGE,
                current,
                current,
                (
                    *reasons,
                    f"desired {current.desired_size} is already below the "
                    f"{target.desired_size} this scale-down would set; a scheduled scale-down "
                    "never raises",
                ),
            )
        return _refused(
            current,
            [
                *reasons,
                f"scale_down would raise desired from {current.desired_size} to "
                f"{target.desired_size}; use scale_up",
            ],
        )
    if action is Action.SCALE_UP and restores is None and lowers:
        return _refused(
            current,
            [
                *reasons,
                f"scale_up would lower desired from {current.desired_size} to "
                f"{target.desired_size}; use scale_down",
            ],
        )
    if restores is not None and lowers:
        kept = _forecast_capacity_kept(restores, current, target, facts, now)
        if kept is not None:
            return ScalingDecision(DecisionKind.NO_CHANGE, current, current, (*reasons, kept))
    if restores is not None:
        reasons.append(f"restoring the sizes saved at {restores.saved_at}")

    if target == current:
        if action is Action.SCALE_DOWN and plan.held_at_lower_bound:
            reasons.append(f"already at {limits.lower_bound}")
            return ScalingDecision(DecisionKind.BLOCKED, current, target, tuple(reasons))
        reasons.append("the scaling config already has these sizes")
        return ScalingDecision(
            DecisionKind.NO_CHANGE, current, target, tuple(reasons), restores=restores
        )

    if lowers:
        remaining = cooldown_remaining(facts.last_change_at, facts.cooldown_seconds, now)
        if remaining > 0:
            reasons.append(
                f"cooldown: the node group changed less than {facts.cooldown_seconds} s ago; "
                f"{remaining} s left"
            )
            return ScalingDecision(
                DecisionKind.BLOCKED,
                current,
                target,
                tuple(reasons),
                cooldown_remaining_seconds=remaining,
            )

    sizes_to_save = None
    if action is Action.SCALE_DOWN:
        # A second scale-down must not replace the daytime sizes with the night ones.
        if facts.saved is not None and facts.saved.waiting:
            reasons.append(
                f"keeping the sizes saved at {facts.saved.saved_at} for the next restore"
            )
        elif not save_sizes:
            # The current size is the one this request undoes: saved, the next restore would
            # bring it back.
            reasons.append("no sizes saved for the next restore (the request says save_sizes)")
        else:
            sizes_to_save = _sizes_to_save(facts, reasons)
    return ScalingDecision(
        DecisionKind.CHANGE,
        current,
        target,
        tuple(reasons),
        restores=restores,
        sizes_to_save=sizes_to_save,
        replaced_saved_sizes=facts.saved if sizes_to_save is not None else None,
    )


def _forecast_capacity_kept(
    restores: SavedSizes, current: Sizes, target: Sizes, facts: NodeGroupFacts, now: datetime
) -> str | None:
    """Why a restore that would lower the node group to `target` changes nothing, or None when
    it goes on: in the schedule's working hours of a cluster in predictive mode, a size the
    forecast set last (its hour's need) is kept, where the cooldown held it only for minutes
    and the restore then lowered it until the next hourly forecast. The saved sizes are not
    marked restored: they wait for the next morning's restore, as the evening keeps them."""
    cluster = facts.cluster
    if (
        cluster is None
        or cluster.scaling.mode != "predictive"
        or cluster.schedule is None
        or facts.last_change_action != Action.PREDICTIVE.value
        or not in_working_hours(cluster.schedule, now, calendar=cluster.calendar)
    ):
        return None
    return (
        f"the sizes saved at {restores.saved_at} (desired {target.desired_size}) are not "
        f"restored: they would lower desired {current.desired_size}, the forecast's last size, "
        "and in the schedule's working hours the forecast's capacity is kept; they stay saved "
        "for the next restore"
    )


def _sizes_to_save(facts: NodeGroupFacts, reasons: list[str]) -> Sizes:
    """The current sizes, without the spot optimizer's temporary +1s the node group still holds:
    saved with them, the morning restore would bring them back, and every evening after would
    save them again. A size the forecast set last (its last working hour's need, under such +1s
    too) is saved as the stack file's `desired_size`, the schedule's daytime size: restored, the
    forecast's size of the evening before would be the morning's, and a hand-back (which returns
    only a size the forecast set) would keep it all day, above the daytime size or, without the
    working-hours floor, below it."""
    configured = facts.configured
    before = facts.desired_before_temporary_raises
    set_by = facts.last_change_action if before is None else facts.action_under_temporary_raises
    if set_by == Action.PREDICTIVE.value and configured is not None:
        forecasts = facts.current.desired_size if before is None else before
        reasons.append(
            f"desired {configured.desired_size}, the stack file's daytime size, saved instead of "
            f"the forecast's {forecasts}"
        )
        return facts.current.with_desired(configured.desired_size)
    if before is None:
        return facts.current
    reasons.append(
        f"desired {before} saved without the spot optimizer's temporary "
        f"+{facts.current.desired_size - before}"
    )
    return facts.current.with_desired(before)


def _predictive(
    group: NodeGroupRequest, facts: NodeGroupFacts, limits: Limits, now: datetime
) -> PredictiveTarget:
    """The target of a `predictive` request: the forecast's count (validation gives every
    other predictive node group a size) made safe, or a hand-back's."""
    if group.hand_back or group.desired_size is None:
        # Under the spot optimizer's temporary +1s the node group still holds, the size is the
        # one the change before them set: the forecast's is handed back through them.
        set_by = (
            facts.last_change_action
            if facts.desired_before_temporary_raises is None
            else facts.action_under_temporary_raises
        )
        return hand_back_target(
            group.name, limits, cluster=facts.cluster, last_change_action=set_by, now=now
        )
    return predictive_target(
        group.desired_size, group.name, facts.current, limits, cluster=facts.cluster, now=now
    )


def _refused(current: Sizes, reasons: list[str]) -> ScalingDecision:
    return ScalingDecision(
        DecisionKind.REFUSED, current, None, tuple(reason for reason in reasons if reason)
    )
