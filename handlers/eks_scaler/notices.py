"""The info notice of each scaling change: kept with the change, delivered exactly once.

A change is announced after it was made and recorded, so a notice SNS refuses must neither undo
nor repeat the change, and must not be lost either. The notice is therefore part of the records
of the work: the node group's change record (`record_change`) and, for a request with a
`request_id`, the request's idempotency record. Every run of the request, first or repeat,
delivers the notices of its changes with `deliver_all` under a key naming the change
(`eks_scaler/<account>/<region>/<cluster>/<node group>/<request id or update id>`): a notice that
went out is a duplicate, one that failed fails the invocation after the work is recorded, and
the retry sends it without scaling again.
"""

from __future__ import annotations

from datetime import timedelta

from fleet_shared.alert_delivery import deliver_all
from fleet_shared.alerts import Alert, Severity, alert_id
from fleet_shared.change_intents import NOTICE_DELIVERERS, NOTICE_FIELD, Notice
from fleet_shared.node_group_locks import node_group_key, node_group_resource
from fleet_shared.state_table import ClaimDeadline
from fleet_shared.timestamps import iso_z
from handlers.eks_scaler.decision import ScalingDecision
from handlers.eks_scaler.models import ScalerEvent, check_same_request
from handlers.eks_scaler.services import ScalerServices


def change_notice(
    event: ScalerEvent,
    name: str,
    services: ScalerServices,
    decision: ScalingDecision,
    *,
    update_id: str | None,
) -> Notice:
    """The info notice of the change `decision` made to node group `name`."""
    previous, new = decision.current, decision.target or decision.current
    resource = node_group_resource(event.account_id, event.region, event.cluster, name)
    title = (
        f"{event.cluster}/{name} scaled ({event.action.value}): desired "
        f"{previous.desired_size} -> {new.desired_size}"
    )
    # A notice saved before the update (change_intents.py) cannot name it.
    update = f"update {update_id}" if update_id is not None else "update id not recorded"
    detail = (
        f"Node group {name} of cluster {event.cluster} in {event.account_id}/{event.region}: "
        f"min/desired/max {previous.min_size}/{previous.desired_size}/{previous.max_size} -> "
        f"{new.min_size}/{new.desired_size}/{new.max_size} ({update}, request "
        f"{event.request_id or 'none'})."
    )
    now = services.clock.now()
    change = event.request_id or update_id or iso_z(now)
    alert = Alert.create(
        severity=Severity.INFO,
        source=services.function_name,
        title=title,
        detail=detail,
        resource=resource,
        account_id=event.account_id,
        region=event.region,
        timestamp=now,
        # Every change is its own event: the id includes the update, so dedup by id never
        # joins two changes (the router still sends one notice per title in its window).
        id=alert_id(services.function_name, resource, f"{title} {update_id or iso_z(now)}"),
    )
    key = f"{services.function_name}/{resource}/{change}"
    return {"key": key, "alert": alert.model_dump(mode="json")}


def pending_notice(event: ScalerEvent, name: str, services: ScalerServices) -> Notice | None:
    """The notice of the node group's last change when it was made by this request (the same
    `request_id`, or none for both) within the notice window: a retry that finds the node group
    already at its target still delivers it (a duplicate when it went out). Raises
    EventValidationError naming `request_id` when a request that asked something else made it
    under that id (`check_same_request`)."""
    key = node_group_key(event.account_id, event.region, event.cluster, name)
    change = services.state.latest_change(key)
    if change is None or NOTICE_FIELD not in change.record:
        return None
    if change.record.get("request_id") != event.request_id:
        return None
    if event.request_id is not None:
        check_same_request(change.record, event)
    if services.clock.now() - change.changed_at >= timedelta(seconds=notice_ttl_seconds(services)):
        return None
    notice: Notice = change.record[NOTICE_FIELD]
    return notice


def deliver_notices(
    services: ScalerServices, notices: list[Notice], deadline: ClaimDeadline | None
) -> int:
    """Deliver the notices not delivered yet, each claim bound to `deadline` (the invocation);
    how many went out now. Raises `AlertNotDeliveredError` (after trying them all) when SNS
    refused one."""
    deliveries = [(notice["key"], Alert.model_validate(notice["alert"])) for notice in notices]
    ttl_seconds = notice_ttl_seconds(services)
    return len(
        deliver_all(
            services.state,
            services.alerts,
            deliveries,
            ttl_seconds,
            deadline=deadline,
            also_claimed_by=NOTICE_DELIVERERS,
        )
    )


def notice_ttl_seconds(services: ScalerServices) -> int:
    """How long a delivered notice is remembered: as long as a `request_id` is."""
    return services.environment.scaler_idempotency_ttl_hours * 3600
