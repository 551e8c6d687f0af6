"""The scaler's event and result models.

One event shape serves the schedules, the HTTP API body and other functions. Validation happens
before anything is read or changed, so a bad request changes nothing and its error names the
field (`nodegroups[1].desired_size: ...`).

The stack file owns a node group's `min_size` and `max_size` (pulumi-eks applies them); the
scaler changes `desiredSize` only, which pulumi-eks `ignoreScalingChanges` leaves alone. A
request carrying `min_size` or `max_size` is therefore refused naming the field.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleet_shared.exceptions import EventValidationError, OutsideCalendarError
from fleet_shared.field_types import (
    NODE_GROUPS_PER_CLUSTER_MOST,
    AccountId,
    AwsRegion,
    BoolFlag,
    EksClusterName,
    EksNodeGroupName,
)
from fleet_shared.timestamps import parse_iso
from fleet_shared.utc_times import UtcTime
from fleet_shared.validation_errors import shown_value

STACK_OWNED_SIZES = ("min_size", "max_size")
REQUEST_FINGERPRINT_FIELD = "request_fingerprint"
"""The field of a change record (and its intent) that holds its request's fingerprint."""


class Action(StrEnum):
    """What the request asks for."""

    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    ANALYZE = "analyze"
    RESTORE = "restore"
    PREDICTIVE = "predictive"
    """The forecaster's hourly size (eks_scaler/predictive.py bounds it)."""
    HOLD = "hold"
    RELEASE = "release"


HOLD_ACTIONS = frozenset({Action.HOLD, Action.RELEASE})
"""Actions that place or end a hold (holds.py) rather than change sizes."""

SIZED_ACTIONS = frozenset({Action.SCALE_DOWN, Action.SCALE_UP})
"""Actions that take `save_sizes: false`: the change validator sends either to restore a size."""

HOLD_REASON_MAX_CHARS = 200
"""A hold's reason is cut to this many characters (it is repeated in every skipped result); one
with control characters is refused."""


class Status(StrEnum):
    """Outcome for one node group."""

    SCALING_INITIATED = "scaling_initiated"
    NO_CHANGE_NEEDED = "no_change_needed"
    SCALE_DOWN_BLOCKED = "scale_down_blocked"
    LOCKED = "locked"
    UPDATING = "updating"
    """EKS is updating the node group (an upgrade); nothing changed, the request stays open."""
    NOT_STARTED = "not_started"
    """Left for lack of the invocation's time; nothing read or changed, the request stays open."""
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    ERROR = "error"
    HELD = "held"
    HOLD_PLACED = "hold_placed"
    HOLD_RELEASED = "hold_released"
    NO_HOLD = "no_hold"
    AUTOSCALER_MANAGED = "autoscaler_managed"


class NodeGroupRequest(BaseModel):
    """One node group of the request; without `desired_size` the saved size is restored (a
    `scale_up` with none waiting goes to the stack file's desired size).
    `override_autoscaler` changes a node group that an autoscaler manages (autoscalers.py):
    a requested change may say it, the cluster schedules never do. `hand_back` (`predictive`
    only, without a size): the forecaster keeps the schedule this hour, so a node group whose
    size the forecast set returns to the schedule's size (predictive.py)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    name: EksNodeGroupName
    desired_size: int | None = Field(default=None, ge=0)
    override_autoscaler: BoolFlag = False
    hand_back: BoolFlag = False
    # Declared only to refuse them with a message naming the field and its owner.
    min_size: None = None
    max_size: None = None

    @field_validator("desired_size", mode="before")
    @classmethod
    def _no_flag_for_a_size(cls, value: object) -> object:
        # pydantic reads `true` as 1: a flag written for a size is a mistake, never a size.
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {shown_value(value)} (bool)")
        return value

    @field_validator(*STACK_OWNED_SIZES, mode="before")
    @classmethod
    def _owned_by_the_stack_file(cls, value: object) -> None:
        raise ValueError(
            "is owned by the stack file (the node group's min_size and max_size in "
            "Pulumi.<stack>.yaml); the scaler changes desired_size only"
        )


class ScalerEvent(BaseModel):
    """`{"action", "account_id", "region", "cluster", "nodegroups", "dry_run"?, "request_id"?,
    "scheduled"?, "run"?, "save_sizes"?}`, plus `until` and `reason` for a hold (holds.py);
    `scheduled: true` (the cluster schedules' payloads, with their `run`) applies the calendar's
    holidays, working days and excluded node groups."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    action: Action
    account_id: AccountId
    region: AwsRegion
    cluster: EksClusterName
    nodegroups: tuple[NodeGroupRequest, ...] = ()
    dry_run: BoolFlag = False
    request_id: str | None = Field(default=None, min_length=1, max_length=200)
    scheduled: BoolFlag = False
    run: UtcTime | None = None
    """The time a cluster schedule's run was scheduled for (every attempt carries it): the
    calendar judges the run's day by it, not by when a late or retried attempt arrives."""
    save_sizes: BoolFlag = True
    """`false`: a scale-down saves no sizes for the next restore and leaves those waiting as
    they are. The change validator's restore of an undone scaler change says it: saved, the size
    it undid would come back with the next morning's restore."""
    until: str | None = None
    reason: str | None = None

    @field_validator("nodegroups", mode="before")
    @classmethod
    def _not_more_than_a_cluster_has(cls, value: object) -> object:
        # Before the entries are read: pydantic checks a length only after validating every
        # entry, so thousands of them would be read (and each bad one reported) first.
        if isinstance(value, list | tuple) and len(value) > NODE_GROUPS_PER_CLUSTER_MOST:
            raise ValueError(
                f"at most {NODE_GROUPS_PER_CLUSTER_MOST} node groups per request (a cluster's "
                f"most), got {len(value)}"
            )
        return value

    @field_validator("until")
    @classmethod
    def _timestamp_with_offset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_iso(value)
        except OutsideCalendarError as error:
            raise ValueError(str(error)) from None
        except ValueError:
            raise ValueError(
                "must be an ISO 8601 timestamp with an offset, e.g. 2025-06-02T18:00:00+05:30"
            ) from None
        return value

    @field_validator("reason")
    @classmethod
    def _cut_reason(cls, value: str | None) -> str | None:
        if value is None:
            return None
        reason = value.strip()
        if not reason:
            raise ValueError("must not be empty")
        if any(unicodedata.category(character) == "Cc" for character in reason):
            # The reason is repeated in every `held` result as one line, and printed as is.
            raise ValueError(
                "must not contain control characters (line breaks, escapes, NUL): "
                f"{shown_value(value)}"
            )
        return reason[:HOLD_REASON_MAX_CHARS]


@dataclass(frozen=True)
class ScalerCall:
    """One validated call: the event, who asked (the IAM caller of an HTTP request) and whether
    the answer is an HTTP response."""

    event: ScalerEvent
    requested_by: str | None = None
    over_http: bool = False


def request_fingerprint(event: ScalerEvent) -> str:
    """A digest of what `event` asks, all of it but its `request_id`: kept with the request's
    idempotency record and its change records, so that a different request under the same id
    is refused, not answered with the first one's result (`StateTable.idempotent`) nor taken
    for the request that made the first one's changes (`check_same_request`)."""
    asked = event.model_dump(mode="json", exclude={"request_id"})
    text = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_id_reused() -> EventValidationError:
    """The refusal of a request under the `request_id` of an earlier one that asked something
    else."""
    return EventValidationError(
        "request_id",
        "already used for a request that asked something else (an id is remembered for "
        "SCALER_IDEMPOTENCY_TTL_HOURS); a different request needs a new request_id",
    )


def check_same_request(record: dict[str, Any], event: ScalerEvent) -> None:
    """Raise `request_id_reused` when `record` (a change record or intent under `event`'s
    `request_id`) was written by a request that asked something else (its
    REQUEST_FINGERPRINT_FIELD): a request left open (a node group locked) keeps no idempotency
    record, and without this a different request under its id would find the first one's
    changes and take them for its own, leaving the node group as it is. A record without a
    fingerprint (written before) is taken for the request's."""
    recorded = record.get(REQUEST_FINGERPRINT_FIELD)
    if recorded is not None and recorded != request_fingerprint(event):
        raise request_id_reused()


def check_node_groups(event: ScalerEvent) -> None:
    """Rules that depend on the action, raised with the exact field path (pydantic would name
    only the event as a whole for a cross-field rule)."""
    _check_hold_fields(event)
    if not event.save_sizes and event.action not in SIZED_ACTIONS:
        raise EventValidationError(
            "save_sizes", f"only scale_down and scale_up take it, not {event.action.value}"
        )
    if not event.nodegroups and event.action not in (Action.ANALYZE, *HOLD_ACTIONS):
        raise EventValidationError(
            "nodegroups", f"{event.action.value} needs at least one node group"
        )
    seen: set[str] = set()
    for index, group in enumerate(event.nodegroups):
        field = f"nodegroups[{index}]"
        if group.name in seen:
            raise EventValidationError(
                f"{field}.name", f"node group {group.name!r} is listed twice"
            )
        seen.add(group.name)
        if (
            event.action in (Action.RESTORE, Action.ANALYZE, *HOLD_ACTIONS)
            and group.desired_size is not None
        ):
            raise EventValidationError(field, f"{event.action.value} takes no sizes, only the name")
        if group.override_autoscaler and event.action in (Action.ANALYZE, *HOLD_ACTIONS):
            raise EventValidationError(
                f"{field}.override_autoscaler", f"{event.action.value} changes no sizes"
            )
        if group.hand_back:
            if event.action is not Action.PREDICTIVE:
                raise EventValidationError(
                    f"{field}.hand_back", f"only predictive hands back, not {event.action.value}"
                )
            if group.desired_size is not None:
                raise EventValidationError(
                    f"{field}.desired_size",
                    "a hand-back takes no size (its target is the schedule's size)",
                )
        elif event.action in (Action.SCALE_DOWN, Action.PREDICTIVE) and group.desired_size is None:
            alternative = " or hand_back" if event.action is Action.PREDICTIVE else ""
            raise EventValidationError(
                field, f"{event.action.value} needs desired_size{alternative}"
            )


def _check_hold_fields(event: ScalerEvent) -> None:
    """`until` and `reason` belong to `hold`, which needs both; without node groups a hold or
    release concerns the whole cluster."""
    if event.action is Action.HOLD:
        for field in ("until", "reason"):
            if getattr(event, field) is None:
                raise EventValidationError(field, "hold needs until and reason")
        return
    for field in ("until", "reason"):
        if getattr(event, field) is not None:
            raise EventValidationError(field, f"only hold takes {field}, not {event.action.value}")


def node_group_result(
    nodegroup: str,
    status: Status,
    reason: str,
    previous: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of `results`: `{"nodegroup", "status", "previous", "new", "reason", ...}`."""
    return {
        "nodegroup": nodegroup,
        "status": status.value,
        "previous": previous,
        "new": new,
        "reason": reason,
        **extra,
    }
