"""scale_up, scale_down and restore for the node groups of one cluster in one member account.

Per node group, in this order: take the node group lock (shared with spot_optimizer), read the
facts (DescribeNodegroup in the member account, the inventory entry, saved sizes and last change
from the state table), `decision.decide`, then apply: save the previous sizes (scale-down), call
UpdateNodegroupConfig once with `desiredSize` only, record the change and announce it. Any
failure is reported for that node group and the next one goes on.
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
from fleet_shared.timestamps import iso_z
from handlers.eks_scaler.decision import (
    DecisionKind,
    NodeGroupFacts,
    SavedSizes,
    ScalingDecision,
    decide,
)
from handlers.eks_scaler.member_node_groups import describe_error, describe_node_group
from handlers.eks_scaler.models import NodeGroupRequest, ScalerEvent, Status, node_group_result
from handlers.eks_scaler.services import ScalerServices


def scale_node_groups(
    event: ScalerEvent,
    services: ScalerServices,
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
            result = _scale_one(
                event,
                group,
                services,
                dry_run=dry_run,
                owner=owner,
                inventory=inventory,
                requested_by=requested_by,
            )
        except LockNotAcquiredError as error:
            result = node_group_result(group.name, Status.LOCKED, str(error))
        except (FleetError, ClientError, BotoCoreError) as error:
            services.logger.warning(
                "node group failed", extra={"nodegroup": group.name, "error": str(error)}
            )
            result = node_group_result(group.name, Status.ERROR, describe_error(error))
        results.append(result)
    return results


def _scale_one(
    event: ScalerEvent,
    group: NodeGroupRequest,
    services: ScalerServices,
    *,
    dry_run: bool,
    owner: str,
    inventory: FleetInventory | None,
    requested_by: str | None,
) -> dict[str, Any]:
    eks = services.sessions.client("eks", event.account_id, event.region)

    def decide_and_apply() -> dict[str, Any]:
        facts = read_facts(event, group.name, services, eks, inventory)
        decision = decide(event.action, group, facts, services.clock.now())
        return apply_decision(
            decision,
            event,
            group.name,
            services,
            eks,
            dry_run=dry_run,
            requested_by=requested_by,
        )

    if dry_run:
        # A dry run takes no lock: it writes nothing, so it cannot race anyone.
        return decide_and_apply()
    names = (event.account_id, event.region, event.cluster, group.name)
    with services.state.lock(node_group_lock_name(*names), owner, NODE_GROUP_LOCK_LEASE_SECONDS):
        return decide_and_apply()


def read_facts(
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    eks: Any,
    inventory: FleetInventory | None,
) -> NodeGroupFacts:
    """Everything `decide` needs about one node group (read under its lock)."""
    key = node_group_key(event.account_id, event.region, event.cluster, name)
    described = describe_node_group(eks, event.cluster, name)
    configured = (
        inventory.find_node_group(event.account_id, event.region, event.cluster, name)
        if inventory is not None
        else None
    )
    saved = services.state.get_value(key, SAVED_SIZES_NAME)
    return NodeGroupFacts(
        current=described.sizes,
        status=described.status,
        capacity_type=described.capacity_type,
        configured=configured,
        saved=SavedSizes.from_record(saved) if saved is not None else None,
        last_change_at=services.state.last_change_at(key),
        cooldown_seconds=services.environment.scaler_cooldown_seconds,
    )


def apply_decision(
    decision: ScalingDecision,
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    eks: Any,
    *,
    dry_run: bool,
    requested_by: str | None,
) -> dict[str, Any]:
    """Carry out `decision` (nothing is written in a dry run) and return the node group's result."""
    key = node_group_key(event.account_id, event.region, event.cluster, name)
    previous = decision.current.as_dict()
    new = decision.target.as_dict() if decision.target is not None else None
    reasons = list(decision.reasons)
    if decision.kind is DecisionKind.REFUSED or decision.target is None:
        return node_group_result(name, Status.ERROR, _join(reasons), previous)
    if decision.kind is DecisionKind.BLOCKED:
        extra = (
            {"cooldown_remaining_seconds": decision.cooldown_remaining_seconds}
            if decision.cooldown_remaining_seconds is not None
            else {}
        )
        return node_group_result(
            name, Status.SCALE_DOWN_BLOCKED, _join(reasons), previous, new, **extra
        )
    if decision.kind is DecisionKind.NO_CHANGE:
        if decision.restores is not None and not dry_run:
            _mark_restored(services, key, decision.restores)
        return node_group_result(name, Status.NO_CHANGE_NEEDED, _join(reasons), previous, new)
    if dry_run:
        return node_group_result(
            name, Status.DRY_RUN, _join([*reasons, "dry run: nothing was changed"]), previous, new
        )

    if decision.saves_previous_sizes:
        saved = SavedSizes(decision.current, iso_z(services.clock.now()))
        services.state.put_value(key, SAVED_SIZES_NAME, saved.as_record())
        reasons.append("previous sizes saved for restore")
    # desiredSize only: the stack file owns minSize and maxSize, and pulumi-eks
    # ignoreScalingChanges ignores desiredSize alone, so `pulumi up` never undoes this.
    update = eks.update_nodegroup_config(
        clusterName=event.cluster,
        nodegroupName=name,
        scalingConfig={"desiredSize": decision.target.desired_size},
    )["update"]
    update_id = update.get("id")
    services.state.record_change(
        key,
        {
            "source": services.function_name,
            "action": event.action.value,
            "previous": previous,
            "new": new,
            "request_id": event.request_id,
            "update_id": update_id,
            "requested_by": requested_by,
        },
        history_ttl_seconds=services.environment.scaler_history_ttl_days * 86400,
    )
    if decision.restores is not None:
        _mark_restored(services, key, decision.restores)
    reasons.append(f"update {update_id} started")
    if not _announce(event, name, services, decision, update_id=update_id):
        reasons.append("the info alert could not be published")
    return node_group_result(
        name, Status.SCALING_INITIATED, _join(reasons), previous, new, update_id=update_id
    )


def _mark_restored(services: ScalerServices, key: str, saved: SavedSizes) -> None:
    restored = SavedSizes(saved.sizes, saved.saved_at, iso_z(services.clock.now()))
    services.state.put_value(key, SAVED_SIZES_NAME, restored.as_record())


def _announce(
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    decision: ScalingDecision,
    *,
    update_id: str | None,
) -> bool:
    """Info alert for the change; a publishing failure is reported, it does not undo the change."""
    previous, new = decision.current, decision.target or decision.current
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
    now = services.clock.now()
    alert = Alert.create(
        severity=Severity.INFO,
        source=services.function_name,
        title=title,
        detail=detail,
        resource=resource,
        account_id=event.account_id,
        region=event.region,
        timestamp=now,
        # Every change is its own event: the id includes the update, so no dedup hides it.
        id=alert_id(services.function_name, resource, f"{title} {update_id or iso_z(now)}"),
    )
    return services.alerts.publish_or_log(alert, services.logger) is not None


def _join(parts: list[str]) -> str:
    return "; ".join(part for part in parts if part)
