"""scale_up, scale_down and restore for the node groups of one cluster in one member account.

Per node group, in this order: take the node group lock (shared with spot_optimizer), read the
current scaling config in the member account, plan the target within the floor, check the
cooldown (decreases only), then save the previous sizes (scale-down), call
update_nodegroup_config once, record the change and announce it. Any failure is reported for that
node group and the next one goes on.

Cooldown applies to decreases only: it stops flapping and stacked scale-downs, while a scale-up
(the morning restore, a manual request, the spot optimizer's on-demand fallback) is the cheaper
mistake to let through than missing capacity.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.alerts import Alert, Severity, alert_id
from fleet_shared.exceptions import FleetError, LockNotAcquiredError
from fleet_shared.inventory import FleetInventory
from fleet_shared.node_group_locks import (
    NODE_GROUP_LOCK_LEASE_SECONDS,
    SAVED_SIZES_NAME,
    node_group_key,
    node_group_lock_name,
    node_group_resource,
)
from fleet_shared.observability import observability_for
from handlers.eks_scaler.models import (
    Action,
    NodeGroupRequest,
    ScalerEvent,
    Status,
    node_group_result,
)
from handlers.eks_scaler.runtime import FUNCTION_NAME, ScalerRuntime
from handlers.eks_scaler.sizing import Request, Sizes, default_floor, plan_sizes

logger = observability_for(FUNCTION_NAME).logger

USABLE_STATUSES = frozenset({"ACTIVE", "DEGRADED"})
"""Node group statuses in which EKS accepts a scaling update."""


def scale_node_groups(
    event: ScalerEvent,
    runtime: ScalerRuntime,
    *,
    dry_run: bool,
    owner: str,
    inventory: FleetInventory | None,
    requested_by: str | None = None,
) -> list[dict[str, Any]]:
    """One result per requested node group, in request order."""
    results = []
    for group in event.nodegroups:
        try:
            result = _change_one(
                event,
                group,
                runtime,
                dry_run=dry_run,
                owner=owner,
                inventory=inventory,
                requested_by=requested_by,
            )
        except LockNotAcquiredError as error:
            result = node_group_result(group.name, Status.LOCKED, str(error))
        except (FleetError, ClientError, BotoCoreError) as error:
            logger.warning(
                "node group failed", extra={"nodegroup": group.name, "error": str(error)}
            )
            result = node_group_result(group.name, Status.ERROR, describe_error(error))
        results.append(result)
    return results


def _change_one(
    event: ScalerEvent,
    group: NodeGroupRequest,
    runtime: ScalerRuntime,
    *,
    dry_run: bool,
    owner: str,
    inventory: FleetInventory | None,
    requested_by: str | None,
) -> dict[str, Any]:
    names = (event.account_id, event.region, event.cluster, group.name)
    eks = runtime.sessions.client("eks", event.account_id, event.region)
    if dry_run:
        # A dry run takes no lock: it writes nothing, so it cannot race anyone.
        return _plan_and_apply(
            event,
            group,
            runtime,
            eks,
            dry_run=dry_run,
            inventory=inventory,
            requested_by=requested_by,
        )
    with runtime.state.lock(node_group_lock_name(*names), owner, NODE_GROUP_LOCK_LEASE_SECONDS):
        return _plan_and_apply(
            event,
            group,
            runtime,
            eks,
            dry_run=dry_run,
            inventory=inventory,
            requested_by=requested_by,
        )


def _plan_and_apply(
    event: ScalerEvent,
    group: NodeGroupRequest,
    runtime: ScalerRuntime,
    eks: Any,
    *,
    dry_run: bool,
    inventory: FleetInventory | None,
    requested_by: str | None,
) -> dict[str, Any]:
    key = node_group_key(event.account_id, event.region, event.cluster, group.name)
    described = eks.describe_nodegroup(clusterName=event.cluster, nodegroupName=group.name)[
        "nodegroup"
    ]
    current = Sizes.from_eks(described["scalingConfig"])
    status = described.get("status", "ACTIVE")
    if status not in USABLE_STATUSES:
        return node_group_result(
            group.name,
            Status.ERROR,
            f"node group is {status}; EKS accepts scaling only when ACTIVE or DEGRADED",
            current.as_dict(),
        )
    floor = node_group_floor(
        event, group.name, described.get("capacityType", "ON_DEMAND"), inventory
    )

    saved: dict[str, Any] | None = None
    if event.action is Action.RESTORE or (event.action is Action.SCALE_UP and not group.has_sizes):
        saved = runtime.state.get_value(key, SAVED_SIZES_NAME)
        if saved is None:
            return node_group_result(
                group.name,
                Status.NO_CHANGE_NEEDED,
                "no sizes were saved before a scale-down; nothing to restore",
                current.as_dict(),
                current.as_dict(),
            )
        if event.action is Action.SCALE_UP and saved.get("restored_at"):
            return node_group_result(
                group.name,
                Status.NO_CHANGE_NEEDED,
                f"the sizes saved at {saved['saved_at']} were already restored at "
                f"{saved['restored_at']}",
                current.as_dict(),
                current.as_dict(),
            )
        sizes = Sizes.from_dict(saved["sizes"])
        request = Request(sizes.min_size, sizes.desired_size, sizes.max_size)
    else:
        request = Request(group.min_size, group.desired_size, group.max_size)

    plan = plan_sizes(current, request, floor)
    notes = [*plan.notes]
    if plan.target is None:
        return node_group_result(
            group.name, Status.ERROR, _join([*notes, plan.refused or ""]), current.as_dict()
        )
    target = plan.target
    if event.action is Action.SCALE_DOWN and target.desired_size > current.desired_size:
        return node_group_result(
            group.name,
            Status.ERROR,
            f"scale_down would raise desired from {current.desired_size} to "
            f"{target.desired_size}; use scale_up",
            current.as_dict(),
        )
    lowers = target.desired_size < current.desired_size
    if event.action is Action.SCALE_UP and group.has_sizes and lowers:
        return node_group_result(
            group.name,
            Status.ERROR,
            f"scale_up would lower desired from {current.desired_size} to "
            f"{target.desired_size}; use scale_down",
            current.as_dict(),
        )
    if saved is not None:
        notes.append(f"restoring the sizes saved at {saved['saved_at']}")

    if target == current:
        if saved is not None and not dry_run:
            _mark_restored(runtime, key, saved)
        if event.action is Action.SCALE_DOWN and plan.held_by_floor:
            return node_group_result(
                group.name,
                Status.SCALE_DOWN_BLOCKED,
                _join([*notes, f"already at the floor {floor}"]),
                current.as_dict(),
                target.as_dict(),
            )
        return node_group_result(
            group.name,
            Status.NO_CHANGE_NEEDED,
            _join([*notes, "the scaling config already has these sizes"]),
            current.as_dict(),
            target.as_dict(),
        )

    if target.desired_size < current.desired_size:
        remaining = runtime.state.cooldown_remaining(
            key, runtime.environment.scaler_cooldown_seconds
        )
        if remaining > 0:
            return node_group_result(
                group.name,
                Status.SCALE_DOWN_BLOCKED,
                _join(
                    [
                        *notes,
                        f"cooldown: the node group changed less than "
                        f"{runtime.environment.scaler_cooldown_seconds} s ago; "
                        f"{remaining} s left",
                    ]
                ),
                current.as_dict(),
                target.as_dict(),
                cooldown_remaining_seconds=remaining,
            )

    if dry_run:
        return node_group_result(
            group.name,
            Status.DRY_RUN,
            _join([*notes, "dry run: nothing was changed"]),
            current.as_dict(),
            target.as_dict(),
        )

    if event.action is Action.SCALE_DOWN:
        _save_previous_sizes(runtime, key, current, notes)

    update = eks.update_nodegroup_config(
        clusterName=event.cluster, nodegroupName=group.name, scalingConfig=target.as_eks()
    )["update"]
    runtime.state.record_change(
        key,
        {
            "source": FUNCTION_NAME,
            "action": event.action.value,
            "previous": current.as_dict(),
            "new": target.as_dict(),
            "request_id": event.request_id,
            "update_id": update.get("id"),
            "requested_by": requested_by,
        },
        history_ttl_seconds=runtime.environment.scaler_history_ttl_days * 86400,
    )
    if saved is not None:
        _mark_restored(runtime, key, saved)
    alert_sent = _announce(
        event, group.name, runtime, previous=current, new=target, update_id=update.get("id")
    )
    reason = _join([*notes, f"update {update.get('id')} started"])
    return node_group_result(
        group.name,
        Status.SCALING_INITIATED,
        reason if alert_sent else _join([reason, "the info alert could not be published"]),
        current.as_dict(),
        target.as_dict(),
        update_id=update.get("id"),
    )


def node_group_floor(
    event: ScalerEvent, name: str, capacity_type: str, inventory: FleetInventory | None
) -> int:
    """The inventory's floor for a node group it knows, else the capacity type's default."""
    if inventory is not None:
        known = inventory.find_node_group(event.account_id, event.region, event.cluster, name)
        if known is not None:
            return known.floor
    return default_floor(capacity_type)


def _save_previous_sizes(
    runtime: ScalerRuntime, key: str, current: Sizes, notes: list[str]
) -> None:
    """Save the sizes before a scale-down, unless earlier sizes are still waiting to be restored:
    a second scale-down must not replace the daytime sizes with the night ones."""
    saved = runtime.state.get_value(key, SAVED_SIZES_NAME)
    if saved is not None and not saved.get("restored_at"):
        notes.append(f"keeping the sizes saved at {saved['saved_at']} for the next restore")
        return
    runtime.state.put_value(
        key,
        SAVED_SIZES_NAME,
        {"sizes": current.as_dict(), "saved_at": _now_iso(runtime), "restored_at": None},
    )
    notes.append("previous sizes saved for restore")


def _mark_restored(runtime: ScalerRuntime, key: str, saved: dict[str, Any]) -> None:
    runtime.state.put_value(key, SAVED_SIZES_NAME, {**saved, "restored_at": _now_iso(runtime)})


def _announce(
    event: ScalerEvent,
    name: str,
    runtime: ScalerRuntime,
    *,
    previous: Sizes,
    new: Sizes,
    update_id: str | None,
) -> bool:
    """Info alert for the change; a publishing failure is reported, it does not undo the change."""
    resource = node_group_resource(event.account_id, event.region, event.cluster, name)
    title = (
        f"{event.cluster}/{name} scaled ({event.action.value}): desired "
        f"{previous.desired_size} -> {new.desired_size}"
    )
    detail = (
        f"Node group {name} of cluster {event.cluster} in {event.account_id}/{event.region}: "
        f"min/desired/max {previous.min_size}/{previous.desired_size}/{previous.max_size} -> "
        f"{new.min_size}/{new.desired_size}/{new.max_size} (update {update_id}, request "
        f"{event.request_id or 'none'})."
    )
    alert = Alert.create(
        severity=Severity.INFO,
        source=FUNCTION_NAME,
        title=title,
        detail=detail,
        resource=resource,
        account_id=event.account_id,
        region=event.region,
        timestamp=runtime.clock.now(),
        # Every change is its own event: the id includes the update, so no dedup hides it.
        id=alert_id(FUNCTION_NAME, resource, f"{title} {update_id or _now_iso(runtime)}"),
    )
    try:
        runtime.publish(alert)
    except (ClientError, BotoCoreError) as error:
        logger.error("alert not published", extra={"error": str(error), "resource": resource})
        return False
    return True


def _now_iso(runtime: ScalerRuntime) -> str:
    return runtime.clock.now().isoformat().replace("+00:00", "Z")


def _join(parts: list[str]) -> str:
    return "; ".join(part for part in parts if part)


def describe_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "ClientError")
        if code == "ResourceNotFoundException":
            return f"not found: {details.get('Message', '')}".strip()
        return f"{code}: {details.get('Message', '')}".strip()
    return str(error)
