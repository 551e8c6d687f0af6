"""scale_up, scale_down and restore for the node groups of one cluster in one member account.

Per node group, in this order: refuse one the stack file does not declare (declared_node_groups.py;
an `error` result that reads and changes nothing), ask the cluster calendar (calendar_checks.py; a
refusal is a `skipped` result that reads and changes nothing), take the node group lock (shared with
spot_optimizer), skip it when a hold is in force (holds.py) or an autoscaler manages it without
an override (autoscalers.py), read the facts (DescribeNodegroup in the member account, the
inventory entry, saved sizes and last change, when and its action, from the state table),
record another request's change found made but not recorded (its intent, change_intents.py),
`decision.decide` (before a change, or one a rule stops, again with this request's own change
when one of the node group's last ones is: the retry of a request left open leaves such a node
group as it is), then apply: renew the lock's lease (`locked`, changing nothing, when another
owner took the lock while the reads outlasted it), read the hold again (`held`, changing
nothing, when one was placed meanwhile: placing a hold takes no lock), save the change's intent
(change_intents.py, for a request with a `request_id`), save the previous sizes (scale-down) or
mark the saved ones restored (restore), all undone when EKS refuses the update or never gets
it (kept when its answer was lost: EKS may have made it, and the retry finds out); call
UpdateNodegroupConfig once with `desiredSize` only, and record the change with its info notice
(notices.py), which the caller delivers once every node group is done. Any failure is reported
for that node group and the next one goes on.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.change_intents import KeptIntent, current_intent
from fleet_shared.clock import written_after
from fleet_shared.exceptions import AnswerLostError, FleetError, LockNotAcquiredError
from fleet_shared.inventory import FleetInventory
from fleet_shared.node_group_autoscalers import ManagingAutoscaler, declared_autoscaler
from fleet_shared.node_group_locks import (
    NODE_GROUP_LOCK_LEASE_SECONDS,
    SAVED_SIZES_NAME,
    SPOT_FALLBACK_ACTION,
    TEMPORARY_CHANGE_FIELD,
    node_group_key,
    node_group_lock_name,
)
from fleet_shared.node_group_updates import update_desired_size
from fleet_shared.sessions import MEMBER_CALL_SECONDS, STATE_TABLE_CALL_SECONDS
from fleet_shared.state_table import ClaimDeadline, HeldLock, StateChange
from fleet_shared.timestamps import iso_z
from fleet_shared.validation_errors import shown_value
from handlers.eks_scaler.autoscalers import autoscaler_result, managing_autoscaler
from handlers.eks_scaler.calendar_checks import calendar_refusal
from handlers.eks_scaler.change_intents import (
    drop_intent,
    other_requests_intent,
    record_other_requests_change,
    record_unrecorded_change,
    save_intent,
    this_requests_intent,
)
from handlers.eks_scaler.decision import (
    DecisionKind,
    NodeGroupFacts,
    SavedSizes,
    ScalingDecision,
    decide,
)
from handlers.eks_scaler.declared_node_groups import undeclared_refusal
from handlers.eks_scaler.exceptions import UnreadableScalerChangeError, UpdateAnswerLostError
from handlers.eks_scaler.holds import held_result, node_group_hold
from handlers.eks_scaler.member_node_groups import describe_error, describe_node_group
from handlers.eks_scaler.models import (
    REQUEST_FINGERPRINT_FIELD,
    Action,
    NodeGroupRequest,
    ScalerEvent,
    Status,
    check_same_request,
    node_group_result,
    request_fingerprint,
)
from handlers.eks_scaler.notices import NOTICE_FIELD, Notice, change_notice, pending_notice
from handlers.eks_scaler.services import ScalerServices
from handlers.eks_scaler.sizing import Sizes

NODE_GROUP_SECONDS = 2 * MEMBER_CALL_SECONDS + STATE_TABLE_CALL_SECONDS
"""The invocation time a node group is started with at least (47 s), its worst case: its
DescribeNodegroup and UpdateNodegroupConfig each given up after MEMBER_CALL_SECONDS (17 s), and
one state table call after STATE_TABLE_CALL_SECONDS (13 s; the invocation's later ones then
fail at once). One started with less could be ended by Lambda between its update and its
record, and the node groups after it with nothing recorded at all; left `not_started`, they are
done by the request's retry."""
COOLDOWN_WAIT_RESERVE_SECONDS = 40
"""What a scheduled scale-down keeps of the invocation's time after waiting for a cooldown: the
node group read again and its update, each member call given up within 17 s."""
COOLDOWN_REMAINING = "cooldown_remaining_seconds"
"""The result field of a node group held by the cooldown: the seconds left of it."""
RESOURCE_IN_USE = "ResourceInUseException"
"""EKS's refusal of an update while another update of the node group runs."""
WOULD_CHANGE = frozenset({DecisionKind.CHANGE, DecisionKind.BLOCKED, DecisionKind.REFUSED})
"""Decisions for which this request's own earlier change is looked for: a change, or one that a
rule (the cooldown, the floor, the direction of the action, the node group's status) stops."""
RECENT_CHANGES = 10
"""The node group's changes, newest first, searched for one of the request's own before a
change: a request left open is retried within minutes, so its change is among the last few."""

Outcome = tuple[dict[str, Any], Notice | None]
"""A node group's result, and the notice of the change it made (or that it found pending)."""


def scale_node_groups(
    event: ScalerEvent,
    services: ScalerServices,
    *,
    dry_run: bool,
    owner: str,
    inventory: FleetInventory | None,
    seconds_left: Callable[[], float],
    time_left: Callable[[], float],
    requested_by: str | None = None,
    lock_deadline: ClaimDeadline | None = None,
) -> tuple[list[dict[str, Any]], list[Notice]]:
    """One result per requested node group, in request order, and the notices to deliver.
    Each node group lock's lease ends no later than `lock_deadline` (the invocation): Lambda's
    retry of an invocation it killed holding one, a minute after, finds it free, where the full
    lease (120 s) left the node group `locked` for a retry of one killed within a minute of
    taking it.

    A scheduled scale-down that the cooldown holds waits for it (outside the node group lock) as
    long as `seconds_left` (the invocation's) allows with COOLDOWN_WAIT_RESERVE_SECONDS to spare,
    then tries the node group once more: its evening size is due tonight, not tomorrow.

    A node group is started only while `time_left` (the invocation's, whatever the caller) is
    more than NODE_GROUP_SECONDS; it and the rest are `not_started` otherwise."""
    results = []
    notices: list[Notice] = []
    for index, group in enumerate(event.nodegroups):
        if time_left() <= NODE_GROUP_SECONDS:
            results.extend(_not_started(event.nodegroups[index:], time_left()))
            break
        scale = functools.partial(
            _scale_one,
            event,
            group,
            services,
            dry_run=dry_run,
            owner=owner,
            inventory=inventory,
            requested_by=requested_by,
            notices_found=notices,
            lock_deadline=lock_deadline,
        )
        result, notice = _reporting_failure(group.name, services, scale)
        wait = _cooldown_wait(event, result, dry_run=dry_run, seconds_left=seconds_left)
        if wait > 0:
            services.pause(wait)
            result, notice = _reporting_failure(group.name, services, scale)
        results.append(result)
        if notice is not None:
            notices.append(notice)
    return results, notices


def _not_started(groups: list[NodeGroupRequest], seconds: float) -> list[dict[str, Any]]:
    """The results of node groups left for lack of time (`seconds` left)."""
    reason = (
        f"not started: {max(0, int(seconds))} s of the invocation were left, under the "
        f"{NODE_GROUP_SECONDS} s a node group may take; nothing was read or changed, and the "
        "request's retry does it"
    )
    return [node_group_result(group.name, Status.NOT_STARTED, reason) for group in groups]


def _reporting_failure(
    name: str, services: ScalerServices, scale: Callable[[], Outcome]
) -> Outcome:
    """`scale` (`_scale_one` of the node group `name`), with a lock held by another owner or a
    failure as the node group's result."""
    try:
        return scale()
    except LockNotAcquiredError as error:
        return node_group_result(name, Status.LOCKED, str(error)), None
    except (FleetError, *AWS_CALL_ERRORS) as error:
        services.logger.warning("node group failed", extra={"nodegroup": name, "error": str(error)})
        return node_group_result(name, Status.ERROR, describe_error(error)), None


def _cooldown_wait(
    event: ScalerEvent,
    result: dict[str, Any],
    *,
    dry_run: bool,
    seconds_left: Callable[[], float],
) -> float:
    """How long to wait before trying a node group again: the rest of its cooldown, at most what
    the invocation can spare, for a scheduled scale-down the cooldown holds; else 0."""
    if not waits_for_cooldown(event, result, dry_run=dry_run):
        return 0
    spare = seconds_left() - COOLDOWN_WAIT_RESERVE_SECONDS
    return max(0.0, min(result[COOLDOWN_REMAINING], spare))


def waits_for_cooldown(event: ScalerEvent, result: dict[str, Any], *, dry_run: bool) -> bool:
    """Whether `result` is a scheduled scale-down's node group held by the cooldown: it stays
    open (the run fails for Lambda's retry), since completed it would leave the node group at
    its daytime size all night."""
    return (
        event.scheduled
        and event.action is Action.SCALE_DOWN
        and not dry_run
        and result["status"] == Status.SCALE_DOWN_BLOCKED.value
        and COOLDOWN_REMAINING in result
    )


def _scale_one(
    event: ScalerEvent,
    group: NodeGroupRequest,
    services: ScalerServices,
    *,
    dry_run: bool,
    owner: str,
    inventory: FleetInventory | None,
    requested_by: str | None,
    notices_found: list[Notice],
    lock_deadline: ClaimDeadline | None,
) -> Outcome:
    """The node group's result, and the notice of this request's change. `notices_found` gets
    the notice of another request's change found made but not recorded, which is recorded
    first: kept there whatever happens to the node group after."""
    undeclared = undeclared_refusal(event, group.name, inventory)
    if undeclared is not None:
        # An error, not `skipped`: the request is wrong (a typo, another stack's node group),
        # and it stays open, so a scheduled run fails and its alarm tells people.
        return node_group_result(group.name, Status.ERROR, undeclared), None
    cluster = (
        inventory.find_cluster(event.account_id, event.region, event.cluster)
        if inventory is not None
        else None
    )
    refusal = calendar_refusal(event, group.name, cluster, services.clock.now())
    if refusal is not None:
        return node_group_result(group.name, Status.SKIPPED, refusal), None
    eks = services.member_client("eks", event.account_id, event.region)

    def decide_and_apply(held: HeldLock | None) -> Outcome:
        hold = node_group_hold(event, group.name, services, dry_run=dry_run)
        if hold is not None:
            return held_result(group.name, hold), None
        autoscaling = services.member_client("autoscaling", event.account_id, event.region)
        autoscaler = managing_autoscaler(
            eks, autoscaling, event.cluster, group.name, declared=declared_autoscaler(cluster)
        )
        if autoscaler is not None and not group.override_autoscaler:
            return autoscaler_result(group.name, autoscaler), None
        facts, unspent, redated = read_facts(
            event, group.name, services, eks, inventory, dry_run=dry_run
        )
        if unspent is not None and not dry_run:
            # Before this request's intent replaces it, and its change spends it: found made,
            # another request's change is recorded and announced now, or never.
            key = node_group_key(event.account_id, event.region, event.cluster, group.name)
            found = record_other_requests_change(
                event, services, key, unspent=unspent, current=facts.current
            )
            if found is not None:
                notices_found.append(found)
        decide_now = functools.partial(
            decide,
            event.action,
            group,
            now=services.clock.now(),
            scheduled=event.scheduled,
            request_id=event.request_id,
            save_sizes=event.save_sizes,
        )
        decision = decide_now(facts)
        earlier_notice = None
        if decision.kind in WOULD_CHANGE and facts.size_this_request_set is None:
            # Read only when a change would be made but for a rule (the node group's last change
            # is read for every one): the retry of a request left open must not change again a
            # node group it changed before another change came (nor wait for that change's
            # cooldown, nor be refused its direction), and still owes that change's notice.
            earlier = _this_requests_earlier_change(event, group.name, services)
            if earlier is not None:
                desired = (earlier.record.get("new") or {}).get("desired_size")
                if isinstance(desired, int):
                    decision = decide_now(replace(facts, size_this_request_set=desired))
                    earlier_notice = earlier.record.get(NOTICE_FIELD)
        result, notice = apply_decision(
            decision,
            event,
            group.name,
            services,
            eks,
            dry_run=dry_run,
            requested_by=requested_by,
            overridden_autoscaler=autoscaler,
            still_holds_lock=held.renew if held is not None else None,
            earlier_notice=earlier_notice,
        )
        if redated:
            result["reason"] = _join([*redated, result["reason"]])
        return result, notice

    if dry_run:
        # A dry run takes no lock: it writes nothing, so it cannot race anyone.
        return decide_and_apply(None)
    names = (event.account_id, event.region, event.cluster, group.name)
    with services.state.lock(
        node_group_lock_name(*names),
        owner,
        NODE_GROUP_LOCK_LEASE_SECONDS,
        deadline=lock_deadline,
    ) as held:
        return decide_and_apply(held)


def read_facts(
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    eks: Any,
    inventory: FleetInventory | None,
    *,
    dry_run: bool,
) -> tuple[NodeGroupFacts, KeptIntent | None, list[str]]:
    """Everything `decide` needs about one node group (read under its lock), another
    request's intent saved after the last recorded change (unspent), if any, and what was done
    about a last change or an intent dated after now (`_latest_change`, `_kept_intent`)."""
    key = node_group_key(event.account_id, event.region, event.cluster, name)
    described = describe_node_group(eks, event.cluster, name)
    configured = (
        inventory.find_node_group(event.account_id, event.region, event.cluster, name)
        if inventory is not None
        else None
    )
    cluster = (
        inventory.find_cluster(event.account_id, event.region, event.cluster)
        if inventory is not None
        else None
    )
    saved = services.state.get_value(key, SAVED_SIZES_NAME)
    last_change, change_redated = _latest_change(services, key, name, dry_run=dry_run)
    last_change_at = last_change.changed_at if last_change is not None else None
    last_change_action = last_change.record.get("action") if last_change is not None else None
    kept, intent_redated = _kept_intent(services, key, name, dry_run=dry_run)
    size_this_request_set = _size_this_request_set(
        last_change if _made_by_this_request(last_change, event, services) else None,
        last_change_at,
        this_requests_intent(kept, event),
        described.sizes.desired_size,
    )
    unspent = other_requests_intent(kept, event)
    if unspent is not None and unspent.spent_by(last_change_at):
        unspent = None
    if unspent is not None:
        # A change made after the last recorded one, whose record the state table refused (or
        # its invocation never wrote).
        last_change_at, last_change_action = unspent.prepared_at, unspent.action
    desired_before_temporary_raises = action_under_temporary_raises = None
    if last_change_action == SPOT_FALLBACK_ACTION:
        desired_before_temporary_raises, action_under_temporary_raises = (
            _size_under_temporary_raises(services, key, described.sizes.desired_size)
        )
    facts = NodeGroupFacts(
        current=described.sizes,
        status=described.status,
        capacity_type=described.capacity_type,
        configured=configured,
        saved=SavedSizes.from_record(saved, key) if saved is not None else None,
        last_change_at=last_change_at,
        cooldown_seconds=services.environment.scaler_cooldown_seconds,
        cluster=cluster,
        last_change_action=last_change_action,
        desired_before_temporary_raises=desired_before_temporary_raises,
        action_under_temporary_raises=action_under_temporary_raises,
        size_this_request_set=size_this_request_set,
    )
    return facts, unspent, [note for note in (change_redated, intent_redated) if note]


def _latest_change(
    services: ScalerServices, key: str, name: str, *, dry_run: bool
) -> tuple[StateChange | None, str | None]:
    """The node group's last recorded change, and why its time was changed when it lay after
    now (`clock.written_after`: a hand edit or corruption, not a clock). Read as it is, it
    would hold every decrease until then, a cooldown that never ends; the change cannot have
    been made later than now, so it is dated now (`redate_latest_change`: the decreases wait
    one cooldown from when it was first seen, the safe side of what is unknown, and the next
    request reads a true time, so it is reported once). A dry run dates it so for itself only."""
    change = services.state.latest_change(key)
    if change is None or not written_after(change.changed_at, services.clock.now()):
        return change, None
    note = _dated_now(services, name, "last change", change.changed_at, dry_run=dry_run)
    if dry_run:
        return replace(change, changed_at=services.clock.now()), note
    return services.state.redate_latest_change(key, change), note


def _kept_intent(
    services: ScalerServices, key: str, name: str, *, dry_run: bool
) -> tuple[KeptIntent | None, str | None]:
    """The node group's kept intent, and why its time was changed when it lay after now, as
    for the last change (`_latest_change`): unspent, an intent counts as the last change, so
    read as it is it would hold every decrease until then, or until its TTL. It is saved again
    as of now (`fleet_shared.change_intents.current_intent`, the spot optimizer's rule too); a
    dry run dates it so for itself only."""
    kept, recorded_at = current_intent(
        services.state, key, now=services.clock.now(), dry_run=dry_run
    )
    if recorded_at is None:
        return kept, None
    return kept, _dated_now(services, name, "change intent", recorded_at, dry_run=dry_run)


def _dated_now(
    services: ScalerServices, name: str, what: str, recorded_at: datetime, *, dry_run: bool
) -> str:
    """Log that the node group's `what` was recorded as of `recorded_at`, after now, and say
    why it is dated now (or, in a dry run, counted so)."""
    recorded = iso_z(recorded_at)
    services.logger.warning(
        f"{what} dated after now", extra={"nodegroup": name, "recorded_at": recorded}
    )
    why = (
        "a dry run counts it as of now, and leaves it dated so"
        if dry_run
        else "dated now instead, so the cooldown of a decrease counts from now"
    )
    return (
        f"its {what} was recorded as of {recorded}, after now, which no clock writes (a hand "
        f"edit or corruption): {why}"
    )


def _this_requests_earlier_change(
    event: ScalerEvent, name: str, services: ScalerServices
) -> StateChange | None:
    """This request's (its `request_id`'s) change among the node group's last recorded ones (a
    page of them, newest first), or None."""
    if event.request_id is None:
        return None
    key = node_group_key(event.account_id, event.region, event.cluster, name)
    for change in itertools.islice(services.state.changes_newest_first(key), RECENT_CHANGES):
        if _made_by_this_request(change, event, services):
            return change
    return None


def _made_by_this_request(
    change: StateChange | None, event: ScalerEvent, services: ScalerServices
) -> bool:
    """Whether `change` was made by this request: its `request_id`, within the time the
    scaler remembers one (the same id used later is another request); raises EventValidationError
    naming `request_id` when a request that asked something else made it (`check_same_request`)."""
    if change is None or event.request_id is None:
        return False
    remembered = timedelta(hours=services.environment.scaler_idempotency_ttl_hours)
    if (
        change.record.get("request_id") != event.request_id
        or services.clock.now() - change.changed_at >= remembered
    ):
        return False
    check_same_request(change.record, event)
    return True


def _size_this_request_set(
    own_change: StateChange | None,
    last_change_at: datetime | None,
    own_intent: KeptIntent | None,
    current_desired: int,
) -> int | None:
    """The desired size this request already gave the node group: `own_change`, the last
    recorded change when this request made it, or its kept intent is at the node group's size
    (the change made, not recorded: its invocation ended first; no change recorded after).
    None otherwise: its change was not made, or another change came after it."""
    if own_change is not None:
        desired = (own_change.record.get("new") or {}).get("desired_size")
        return desired if isinstance(desired, int) else None
    if (
        own_intent is not None
        and not own_intent.spent_by(last_change_at)
        and own_intent.desired_size == current_desired
    ):
        return own_intent.desired_size
    return None


def _size_under_temporary_raises(
    services: ScalerServices, key: str, current_desired: int
) -> tuple[int | None, str | None]:
    """The desired size before the spot optimizer's temporary +1s that the node group's last
    recorded changes are and that it still holds (each found at its new size), or None when its
    size is not theirs (none, or someone changed it since); and the action of the recorded
    change that set that size, when the one before the +1s did (`predictive`: the forecast's)."""
    desired = current_desired
    under = None
    for change in services.state.changes_newest_first(key):
        # A record that is no object raises the state table's UnreadableStateRecordError.
        record = change.record
        if (
            record.get("action") != SPOT_FALLBACK_ACTION
            or record.get(TEMPORARY_CHANGE_FIELD) is not True
            or _recorded_desired_size(change, "new") != desired
        ):
            if (record.get("new") or {}).get("desired_size") == desired:
                under = record.get("action")
            break
        desired = _recorded_desired_size(change, "previous")
    if desired == current_desired:
        return None, None
    return desired, under


def _recorded_desired_size(change: StateChange, side: str) -> int:
    """The `desired_size` of `side` (`previous` or `new`) of a temporary raise's record, a node
    count; UnreadableScalerChangeError naming the field otherwise (a KeyError or TypeError here
    would fail the whole request, and text or a negative number become the size returned to)."""
    sizes = change.record.get(side)
    size = sizes.get("desired_size") if isinstance(sizes, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise UnreadableScalerChangeError(
            iso_z(change.changed_at),
            f"{side}.desired_size {shown_value(size)} is not a node count",
        )
    return size


def apply_decision(
    decision: ScalingDecision,
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    eks: Any,
    *,
    dry_run: bool,
    requested_by: str | None,
    overridden_autoscaler: ManagingAutoscaler | None = None,
    still_holds_lock: Callable[[], bool] | None = None,
    earlier_notice: Notice | None = None,
) -> Outcome:
    """Carry out `decision` (nothing is written in a dry run): the node group's result, and the
    notice of its change (a new one, or the one a previous run of the request left pending).
    A change made over an autoscaler's management (`overridden_autoscaler`) says so in its
    result and change record. `still_holds_lock` renews the node group lock's lease just before
    the change; when it answers False (another owner took the lock while the node group was
    read) nothing is changed and the node group is `locked`. `earlier_notice`: the notice of
    this request's change found before a later one (for a decision that leaves the node group
    as it is), delivered again (a duplicate when it went out)."""
    key = node_group_key(event.account_id, event.region, event.cluster, name)
    previous = decision.current.as_dict()
    new = decision.target.as_dict() if decision.target is not None else None
    reasons = list(decision.reasons)
    override: dict[str, Any] = {}
    if overridden_autoscaler is not None:
        override = {"override_autoscaler": overridden_autoscaler.as_dict()}
        reasons.insert(
            0, f"override_autoscaler: {' and '.join(overridden_autoscaler.kinds)} overridden"
        )
    if decision.kind is DecisionKind.WAIT_FOR_UPDATE:
        return node_group_result(name, Status.UPDATING, _join(reasons), previous), None
    if decision.kind is DecisionKind.REFUSED or decision.target is None:
        return node_group_result(name, Status.ERROR, _join(reasons), previous), None
    if decision.kind is DecisionKind.BLOCKED:
        extra = (
            {COOLDOWN_REMAINING: decision.cooldown_remaining_seconds}
            if decision.cooldown_remaining_seconds is not None
            else {}
        )
        # A retry of this request finds the change it made to the floor blocked by that floor:
        # the change's notice is still this request's to deliver.
        notice = None
        if not dry_run:
            notice = _this_requests_notice(
                event, name, services, key, current=decision.current, reasons=reasons
            )
        blocked = node_group_result(
            name, Status.SCALE_DOWN_BLOCKED, _join(reasons), previous, new, **extra
        )
        return blocked, notice
    if decision.kind is DecisionKind.NO_CHANGE:
        notice = None
        if not dry_run:
            if decision.restores is not None:
                _mark_restored(services, key, decision.restores, event.request_id)
            notice = earlier_notice or _this_requests_notice(
                event, name, services, key, current=decision.current, reasons=reasons
            )
        unchanged = node_group_result(name, Status.NO_CHANGE_NEEDED, _join(reasons), previous, new)
        return unchanged, notice
    if dry_run:
        reasons.append("dry run: nothing was changed")
        return node_group_result(name, Status.DRY_RUN, _join(reasons), previous, new), None
    # Reading EKS under the lock can outlast its lease (botocore's retries of a slow call);
    # another owner may then have changed the node group after it was read.
    if still_holds_lock is not None and not still_holds_lock():
        reasons.append(
            "nothing was changed: the node group lock's lease ran out while the node group was "
            "read and another owner took the lock, so what was read may be stale"
        )
        return node_group_result(name, Status.LOCKED, _join(reasons), previous, new), None
    # Placing a hold takes no node group lock: one placed while the node group was read must
    # still stop the change, as its `hold_placed` answer promised.
    hold = node_group_hold(event, name, services, dry_run=dry_run)
    if hold is not None:
        return held_result(name, hold), None

    record = {
        "source": services.function_name,
        "action": event.action.value,
        "previous": previous,
        "new": new,
        "request_id": event.request_id,
        "requested_by": requested_by,
        **override,
    }
    if event.request_id is not None:
        record[REQUEST_FINGERPRINT_FIELD] = request_fingerprint(event)
    if event.request_id is not None:
        # The update id is not known yet; the intent's notice is keyed by the request id, as
        # the change's own notice is, so at most one of them goes out.
        intent_notice = change_notice(event, name, services, decision, update_id=None)
        save_intent(services, key, {**record, "update_id": None, NOTICE_FIELD: intent_notice})
    try:
        if decision.sizes_to_save is not None:
            saved = SavedSizes(decision.sizes_to_save, iso_z(services.clock.now()))
            services.state.put_value(key, SAVED_SIZES_NAME, saved.as_record())
        if decision.restores is not None:
            # Marked before the update, as the save is made before a scale-down: a restore made
            # whose sizes still waited would be made again, and kept over the next evening's
            # sizes, by the next scale-down and restore.
            _mark_restored(services, key, decision.restores, event.request_id)
        update = update_desired_size(eks, event.cluster, name, decision.target.desired_size)
    except AnswerLostError as error:
        # EKS may have made the change: what was written for it stays true if it did, and the
        # request's retry finds out (at its target: recorded from the intent; not: made then).
        raise UpdateAnswerLostError(name, error.unanswered) from error
    except (ClientError, BotoCoreError) as error:
        if decision.saves_previous_sizes:
            _put_back_saved_sizes(services, key, name, decision.replaced_saved_sizes)
        if decision.restores is not None:
            _put_back_saved_sizes(services, key, name, decision.restores)
        if event.request_id is not None:
            drop_intent(services, key, name)
        if not _refused_as_in_use(error):
            raise
        # An update EKS started after the node group was read (an upgrade, `pulumi up` applying
        # its min and max): what a read finding it UPDATING means, not a failure.
        reasons.append(
            f"EKS refused the update, the node group being updated ({describe_error(error)}); "
            "nothing changed: a retry, or the next request, acts once it is ACTIVE"
        )
        return node_group_result(name, Status.UPDATING, _join(reasons), previous, new), None
    update_id = update.get("id")
    notice = change_notice(event, name, services, decision, update_id=update_id)
    if decision.saves_previous_sizes:
        reasons.append("previous sizes saved for restore")
    reasons.append(f"update {update_id} started")
    try:
        services.state.record_change(
            key,
            {**record, "update_id": update_id, NOTICE_FIELD: notice},
            history_ttl_seconds=services.environment.scaler_history_ttl_days * 86400,
        )
    except (ClientError, BotoCoreError) as error:
        # EKS took the change: reporting it as failed would hide it, and its retry would find
        # nothing to do and announce nothing. It stands, announced now, with what is missing.
        services.logger.warning(
            "change made but not recorded", extra={"nodegroup": name, "error": str(error)}
        )
        reasons.append(
            f"the change was not recorded ({describe_error(error)}): no history entry (the "
            "cooldown counts from its intent)"
        )
    initiated = node_group_result(
        name,
        Status.SCALING_INITIATED,
        _join(reasons),
        previous,
        new,
        update_id=update_id,
        **override,
    )
    return initiated, notice


def _refused_as_in_use(error: ClientError | BotoCoreError) -> bool:
    """Whether EKS refused the update because the node group is being updated."""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") == RESOURCE_IN_USE
    )


def _this_requests_notice(
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    key: str,
    *,
    current: Sizes,
    reasons: list[str],
) -> Notice | None:
    """The notice of the change this request made to a node group now found at its target: from
    its change record, or, when it was not recorded (its invocation ended first, or the state
    table refused), from its intent: the change is recorded now, and `reasons` says so."""
    notice = pending_notice(event, name, services)
    if notice is not None:
        return notice
    notice = record_unrecorded_change(event, name, services, key, current)
    if notice is not None:
        reasons.append("this request's change to it was not recorded when made; recorded now")
    return notice


def _put_back_saved_sizes(
    services: ScalerServices, key: str, name: str, replaced: SavedSizes | None
) -> None:
    """Put back the saved sizes an update that EKS refused or never received `replaced`: a
    scale-down's save (the sizes saved then are the current ones, and a later restore would
    take them back from whatever the node group has by then), or a restore's mark (the sizes
    wait again for the retry). An update whose answer was lost keeps them: EKS may have made
    it."""
    try:
        if replaced is None:
            services.state.delete_value(key, SAVED_SIZES_NAME)
        else:
            services.state.put_value(key, SAVED_SIZES_NAME, replaced.as_record())
    except (ClientError, BotoCoreError) as error:
        services.logger.warning(
            "saved sizes of a failed update not put back",
            extra={"nodegroup": name, "error": str(error)},
        )


def _mark_restored(
    services: ScalerServices, key: str, saved: SavedSizes, request_id: str | None
) -> None:
    restored = SavedSizes(saved.sizes, saved.saved_at, iso_z(services.clock.now()), request_id)
    services.state.put_value(key, SAVED_SIZES_NAME, restored.as_record())


def _join(parts: list[str]) -> str:
    return "; ".join(part for part in parts if part)
