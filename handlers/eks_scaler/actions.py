"""One validated scaler event from start to result: `analyze`, or a change (of sizes, or of
holds: holds.py) under idempotency.

A change with a `request_id` runs at most once (not in dry run, which writes nothing); a result
with a `locked`, `updating` or `error` node group is not stored, so a retry can finish the work.
The stored result keeps the notices of its changes (notices.py): every run of the request, first
or repeat, delivers them once the work is recorded, and a notice SNS refuses fails the invocation
(`AlertNotDeliveredError`) so that the retry sends it without scaling again.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import call_error_text
from fleet_shared.event_parsing import error_result
from fleet_shared.exceptions import (
    FleetError,
    InventoryUnreadableError,
    RequestIdReusedError,
    RequestInProgressError,
    UnreadableStateValueError,
)
from fleet_shared.handler import Invocation
from fleet_shared.inventory import FleetInventory
from handlers.eks_scaler.analysis import analyze
from handlers.eks_scaler.holds import change_holds, check_hold_window, listed_holds
from handlers.eks_scaler.member_node_groups import describe_error
from handlers.eks_scaler.models import (
    HOLD_ACTIONS,
    Action,
    ScalerEvent,
    Status,
    node_group_result,
    request_fingerprint,
    request_id_reused,
)
from handlers.eks_scaler.notices import Notice, deliver_notices
from handlers.eks_scaler.scaling import scale_node_groups, waits_for_cooldown
from handlers.eks_scaler.services import ScalerServices

UNFINISHED_STATUSES = frozenset(
    {Status.LOCKED.value, Status.UPDATING.value, Status.ERROR.value, Status.NOT_STARTED.value}
)
"""Node group statuses that leave a request open (not stored), so a retry can finish it."""
PARTIAL = "partial"
"""The `status` of a change's result that left node groups `not_started` (none otherwise)."""
_NOTICES = "notices"
"""The field of a stored result that keeps the notices of its changes (not returned)."""


def run(
    event: ScalerEvent,
    services: ScalerServices,
    invocation: Invocation,
    *,
    requested_by: str | None = None,
    over_http: bool = False,
) -> dict[str, Any]:
    """The result of `event`: the analysis, or one result per node group (or per hold).
    `over_http`: the event came through the HTTP API, whose caller is not kept waiting for a
    cooldown (API Gateway gives up on an answer after 30 s).

    A request's claim blocks a concurrent copy (answered `in progress`) only while this
    invocation can run, so the platform's retry of an invocation killed at its deadline finishes
    the request. Raises EventValidationError for a hold whose `until` is out of bounds, before
    anything is claimed or written, and naming `request_id` for a request under the id of an
    earlier one, done or running, that asked something else: answered with that one's result,
    it would read as done.
    """
    check_hold_window(event, services.clock.now())
    dry_run = event.dry_run or services.environment.fleet_dry_run
    if event.action is Action.ANALYZE:
        inventory, problem = _inventory(services)
        analysis = analyze(event, services, inventory)
        if problem:
            analysis["inventory"] = problem
        names = [item["nodegroup"] for item in analysis["results"]]
        try:
            analysis["holds"] = listed_holds(event, services, names)
        except (ClientError, BotoCoreError, UnreadableStateValueError) as error:
            # None, not []: the holds are unknown, which is not the same as none in force.
            analysis["holds"] = None
            analysis["holds_unavailable"] = f"holds unavailable: {describe_error(error)}"
        return {**_header(event, dry_run=True), **analysis}
    change = partial(
        _change,
        event,
        services,
        dry_run,
        invocation,
        requested_by=requested_by,
        over_http=over_http,
    )
    if event.request_id is None or dry_run:
        result, notices = change()
        deliver_notices(services, notices, invocation)
        return result
    request_key = f"{event.account_id}/{event.region}/{event.cluster}/{event.request_id}"
    ttl = services.environment.scaler_idempotency_ttl_hours * 3600
    try:
        with services.state.idempotent(
            services.function_name,
            request_key,
            ttl,
            deadline=invocation,
            fingerprint=request_fingerprint(event),
        ) as request:
            if request.is_repeat and request.result is not None:
                stored = dict(request.result)
                notices = stored.pop(_NOTICES, [])
                result = {**stored, "repeated_request": True}
            else:
                result, notices = change()
                # Locked, updating or failed node groups leave the request open, so a retry can
                # finish it; node groups that did change are then found already at their target,
                # and their notices in their change records.
                if not unfinished_results(event, result):
                    result = _completed(request, result, notices)
    except RequestIdReusedError:
        raise request_id_reused() from None
    except RequestInProgressError as error:
        return error_result(
            error, action=event.action.value, request_id=event.request_id, in_progress=True
        )
    deliver_notices(services, notices, invocation)
    return result


def unfinished_results(event: ScalerEvent, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The node group results of `result` that leave the request open for a retry: `locked`,
    `updating` or `error`, and a scheduled scale-down's node group still held by the cooldown
    after what its invocation could wait (stored, that run would keep it at its daytime size all
    night: the retry, a minute or more later, scales it down)."""
    dry_run = result.get("dry_run") is True
    return [
        item
        for item in result.get("results", [])
        if item["status"] in UNFINISHED_STATUSES or waits_for_cooldown(event, item, dry_run=dry_run)
    ]


def _completed(request: Any, result: dict[str, Any], notices: list[Notice]) -> dict[str, Any]:
    """Store the result of a request whose changes are made; when the state table refuses, the
    changes stand and the result says so: a repeat then finds the node groups at their target
    (no change), and the notices in their change records."""
    try:
        request.complete({**result, _NOTICES: notices})
    except (ClientError, BotoCoreError) as error:
        return {**result, "idempotency_record": f"not stored: {call_error_text(error)}"}
    return result


def _change(
    event: ScalerEvent,
    services: ScalerServices,
    dry_run: bool,
    invocation: Invocation,
    *,
    requested_by: str | None,
    over_http: bool,
) -> tuple[dict[str, Any], list[Notice]]:
    if event.action in HOLD_ACTIONS:
        results = change_holds(event, services, dry_run=dry_run, requested_by=requested_by)
        return {**_header(event, dry_run=dry_run), "results": results}, []
    inventory, problem = _inventory(services)
    if problem:
        # Floors and ceilings cannot be known: refuse every change rather than assume defaults.
        results = [
            node_group_result(group.name, Status.ERROR, problem) for group in event.nodegroups
        ]
        notices: list[Notice] = []
    else:
        results, notices = scale_node_groups(
            event,
            services,
            dry_run=dry_run,
            owner=f"{services.function_name}:{invocation.request_id}",
            inventory=inventory,
            seconds_left=_no_time_to_wait if over_http else invocation.remaining_seconds,
            time_left=invocation.remaining_seconds,
            requested_by=requested_by,
            lock_deadline=invocation,
        )
    partial_run = (
        {"status": PARTIAL}
        if any(item["status"] == Status.NOT_STARTED.value for item in results)
        else {}
    )
    return {**_header(event, dry_run=dry_run), **partial_run, "results": results}, notices


def _no_time_to_wait() -> float:
    return 0.0


def _inventory(services: ScalerServices) -> tuple[FleetInventory | None, str | None]:
    try:
        return services.configured_inventory(), None
    except (FleetError, InventoryUnreadableError) as error:
        return None, str(error)


def _header(event: ScalerEvent, *, dry_run: bool) -> dict[str, Any]:
    return {
        "action": event.action.value,
        "account_id": event.account_id,
        "region": event.region,
        "cluster": event.cluster,
        "dry_run": dry_run,
    }
