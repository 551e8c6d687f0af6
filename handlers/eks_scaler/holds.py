"""`hold` and `release`: freeze a cluster's or some node groups' sizes until a time, or end that
early; and how a hold shows in the scaler's results.

A hold (fleet_shared.node_group_holds) stops every size change of the scaler (schedules,
requests, forecast-driven changes) and the spot optimizer's on-demand fallback: each skipped
change is a `held` result that gives the hold's reason, its end and who set it. `until` must lie
in the future and at most MAX_HOLD_DAYS ahead by the services' clock, so a forgotten hold
cannot freeze a cluster for good, and the cluster and node groups it names must be listed by EKS
(a typo would freeze nothing). Without `nodegroups` the hold (or release) concerns the whole
cluster; a release ends only the holds it names. A dry run reports and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.exceptions import EventValidationError, FleetError, UnreadableStateValueError
from fleet_shared.node_group_holds import (
    HOLD_NAME,
    MAX_HOLD_DAYS,
    Hold,
    cluster_key,
    hold_in_force,
    stored_hold,
)
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.timestamps import iso_z, parse_iso
from fleet_shared.validation_errors import shown_value
from handlers.eks_scaler.member_node_groups import describe_error, list_node_groups
from handlers.eks_scaler.models import Action, ScalerEvent, Status, node_group_result
from handlers.eks_scaler.services import ScalerServices

CLUSTER_TARGET = "*"
"""The `nodegroup` of a result (or listed hold) that concerns the whole cluster."""

DIRECT_CALLER = "direct invocation"
"""Who set a hold when the call came without an HTTP caller ARN (a schedule, another function)."""

UNKNOWN_SETTER = "unknown (the hold could not be read)"
"""Who set a hold that was released without being readable."""


def check_hold_window(event: ScalerEvent, now: datetime) -> None:
    """Refuse a hold whose `until` is not in the future or lies beyond MAX_HOLD_DAYS."""
    if event.action is not Action.HOLD or event.until is None:
        return
    until = parse_iso(event.until)
    if until <= now:
        raise EventValidationError("until", f"must be in the future (now is {iso_z(now)})")
    if until - now > timedelta(days=MAX_HOLD_DAYS):
        raise EventValidationError(
            "until", f"must be at most {MAX_HOLD_DAYS} days ahead (now is {iso_z(now)})"
        )


def change_holds(
    event: ScalerEvent, services: ScalerServices, *, dry_run: bool, requested_by: str | None
) -> list[dict[str, Any]]:
    """Place or release the hold of the cluster (no `nodegroups`) or of each node group: one
    result per target."""
    now = services.clock.now()
    targets = [(group.name, _key(event, group.name)) for group in event.nodegroups] or [
        (CLUSTER_TARGET, _key(event, None))
    ]
    caller = requested_by or DIRECT_CALLER
    if event.action is Action.HOLD:
        if event.until is None or event.reason is None:
            raise EventValidationError("until", "hold needs until and reason")
        unchecked = check_hold_targets(event, services)
        until = iso_z(parse_iso(event.until))
        return [
            _each_target(
                name,
                partial(
                    _place,
                    services,
                    name,
                    key,
                    Hold(
                        scope="cluster" if name == CLUSTER_TARGET else "nodegroup",
                        reason=event.reason,
                        until=until,
                        set_by=caller,
                        set_at=iso_z(now),
                        request_id=event.request_id,
                    ),
                    now,
                    dry_run=dry_run,
                    unchecked=unchecked,
                ),
            )
            for name, key in targets
        ]
    return [
        _each_target(name, partial(_release, services, name, key, caller, now, dry_run=dry_run))
        for name, key in targets
    ]


def _each_target(name: str, change: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`change` of one target (its hold placed or released), with a failure of the state table
    (after botocore's retries) as that target's `error`: the other targets go on, and the
    request stays open, so its retry places or releases it (done twice, the same)."""
    try:
        return change()
    except (FleetError, *AWS_CALL_ERRORS) as error:
        return node_group_result(
            name,
            Status.ERROR,
            f"the state table failed ({describe_error(error)}); retry the request",
        )


def check_hold_targets(event: ScalerEvent, services: ScalerServices) -> str | None:
    """Refuse a hold on a cluster or node group that EKS does not know: a typo would answer
    `hold_placed` and freeze nothing. When EKS cannot be asked, the hold is placed anyway (a
    freeze must not wait for EKS), and the returned note says its names were not checked."""
    try:
        eks = services.member_client("eks", event.account_id, event.region)
        # DescribeCluster first: it says plainly when the cluster is not there.
        eks.describe_cluster(name=event.cluster)
        existing = set(list_node_groups(eks, event.cluster))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise EventValidationError(
                "cluster",
                f"no cluster {shown_value(event.cluster)} in account {event.account_id} region "
                f"{event.region}",
            ) from None
        return f"the names were not checked against EKS ({describe_error(error)})"
    except (FleetError, BotoCoreError) as error:
        return f"the names were not checked against EKS ({describe_error(error)})"
    for index, group in enumerate(event.nodegroups):
        if group.name not in existing:
            raise EventValidationError(
                f"nodegroups[{index}].name",
                f"no node group {shown_value(group.name)} in cluster {event.cluster}",
            )
    return None


def held_result(name: str, hold: Hold) -> dict[str, Any]:
    """The result of a change skipped because of `hold`."""
    return node_group_result(name, Status.HELD, hold.explanation(), hold=hold.as_record())


def node_group_hold(
    event: ScalerEvent, name: str, services: ScalerServices, *, dry_run: bool
) -> Hold | None:
    """The hold that freezes node group `name` of the event's cluster now, if any (one reaching
    too far cut, and saved so unless `dry_run`: `fleet_shared.node_group_holds`)."""
    return hold_in_force(
        services.state,
        event.account_id,
        event.region,
        event.cluster,
        name,
        now=services.clock.now(),
        dry_run=dry_run,
    )


def listed_holds(
    event: ScalerEvent, services: ScalerServices, names: list[str]
) -> list[dict[str, Any]]:
    """The holds in force for the cluster and for node groups `names`, as `analyze` lists them."""
    now = services.clock.now()
    listed = []
    for name in dict.fromkeys([CLUSTER_TARGET, *names]):
        key = _key(event, None if name == CLUSTER_TARGET else name)
        # `analyze` writes nothing: a hold reaching too far is listed cut, and left as stored.
        hold = stored_hold(services.state, key, now=now, dry_run=True)
        if hold is not None and hold.in_force(now):
            listed.append({"nodegroup": name, **hold.as_record()})
    return listed


def _place(
    services: ScalerServices,
    name: str,
    key: str,
    hold: Hold,
    now: datetime,
    *,
    dry_run: bool,
    unchecked: str | None,
) -> dict[str, Any]:
    note = f"; {unchecked}" if unchecked is not None else ""
    if dry_run:
        return node_group_result(
            name, Status.DRY_RUN, f"dry run: the hold was not placed{note}", hold=hold.as_record()
        )
    services.state.put_value(key, HOLD_NAME, hold.as_record(), hold.seconds_left(now))
    return node_group_result(
        name,
        Status.HOLD_PLACED,
        f"no size changes until {hold.until}{note}",
        hold=hold.as_record(),
    )


def _release(
    services: ScalerServices, name: str, key: str, caller: str, now: datetime, *, dry_run: bool
) -> dict[str, Any]:
    try:
        hold = stored_hold(services.state, key, now=now, dry_run=dry_run)
    except UnreadableStateValueError as error:
        return _release_unreadable(services, name, key, caller, now, error=error, dry_run=dry_run)
    if hold is None or not hold.in_force(now):
        return node_group_result(name, Status.NO_HOLD, "no hold in force; nothing to release")
    released = replace(hold, released_at=iso_z(now), released_by=caller)
    if dry_run:
        return node_group_result(
            name, Status.DRY_RUN, "dry run: the hold was not released", hold=hold.as_record()
        )
    # Kept (released) until its own end, so `analyze` and the history can tell who ended it.
    services.state.put_value(key, HOLD_NAME, released.as_record(), hold.seconds_left(now))
    return node_group_result(
        name,
        Status.HOLD_RELEASED,
        f"hold released; it would have lasted until {hold.until}",
        hold=released.as_record(),
    )


def _release_unreadable(
    services: ScalerServices,
    name: str,
    key: str,
    caller: str,
    now: datetime,
    *,
    error: UnreadableStateValueError,
    dry_run: bool,
) -> dict[str, Any]:
    """Release a hold that cannot be read (a field missing or of the wrong type: a hand edit,
    corruption). It fails every change of what it would freeze, whether in force or not, so
    the release is its one way out: it is replaced by a released hold that says so (kept as
    long as a hold can last, for `analyze` and whoever asks who ended it)."""
    released = Hold(
        scope="cluster" if name == CLUSTER_TARGET else "nodegroup",
        reason=f"an unreadable hold: {error.problem}",
        until=iso_z(now),
        set_by=UNKNOWN_SETTER,
        set_at=iso_z(now),
        released_at=iso_z(now),
        released_by=caller,
    )
    if dry_run:
        return node_group_result(
            name,
            Status.DRY_RUN,
            f"dry run: the hold cannot be read ({error.problem}) and was not released",
            hold=released.as_record(),
        )
    services.state.put_value(key, HOLD_NAME, released.as_record(), MAX_HOLD_DAYS * 86400)
    return node_group_result(
        name,
        Status.HOLD_RELEASED,
        f"the hold could not be read ({error.problem}); released all the same: it freezes "
        "nothing now",
        hold=released.as_record(),
    )


def _key(event: ScalerEvent, node_group: str | None) -> str:
    if node_group is None:
        return cluster_key(event.account_id, event.region, event.cluster)
    return node_group_key(event.account_id, event.region, event.cluster, node_group)
