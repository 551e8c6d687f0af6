"""The scaler's event and result models.

One event shape serves the schedules, the HTTP API body and other functions. Validation happens
before anything is read or changed, so a bad request changes nothing and its error names the
field (`nodegroups[1].min_size: ...`).
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleet_shared.exceptions import EventValidationError
from fleet_shared.field_types import AccountId, AwsRegion, BoolFlag


class Action(StrEnum):
    """What the request asks for."""

    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    ANALYZE = "analyze"
    RESTORE = "restore"


class Status(StrEnum):
    """Outcome for one node group."""

    SCALING_INITIATED = "scaling_initiated"
    NO_CHANGE_NEEDED = "no_change_needed"
    SCALE_DOWN_BLOCKED = "scale_down_blocked"
    LOCKED = "locked"
    DRY_RUN = "dry_run"
    ERROR = "error"


class NodeGroupRequest(BaseModel):
    """One node group of the request; sizes are optional (None keeps or restores)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=63)
    desired_size: int | None = Field(default=None, ge=0)
    min_size: int | None = Field(default=None, ge=0)
    max_size: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _given_sizes_are_ordered(self) -> NodeGroupRequest:
        given = [
            (name, value)
            for name, value in (
                ("min_size", self.min_size),
                ("desired_size", self.desired_size),
                ("max_size", self.max_size),
            )
            if value is not None
        ]
        for (low_name, low), (high_name, high) in itertools.pairwise(given):
            if low > high:
                raise ValueError(
                    f"{low_name} {low} is above {high_name} {high} "
                    "(need min_size <= desired_size <= max_size)"
                )
        return self

    @property
    def has_sizes(self) -> bool:
        """Whether any size was given."""
        return any(v is not None for v in (self.min_size, self.desired_size, self.max_size))


class ScalerEvent(BaseModel):
    """`{"action", "account_id", "region", "cluster", "nodegroups", "dry_run"?, "request_id"?}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    account_id: AccountId
    region: AwsRegion
    cluster: str = Field(min_length=1, max_length=100)
    nodegroups: tuple[NodeGroupRequest, ...] = ()
    dry_run: BoolFlag = False
    request_id: str | None = Field(default=None, min_length=1, max_length=200)


def check_node_groups(event: ScalerEvent) -> None:
    """Rules that depend on the action, raised with the exact field path (pydantic would name
    only the event as a whole for a cross-field rule)."""
    if not event.nodegroups and event.action is not Action.ANALYZE:
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
        if event.action in (Action.RESTORE, Action.ANALYZE) and group.has_sizes:
            raise EventValidationError(field, f"{event.action.value} takes no sizes, only the name")
        if event.action is Action.SCALE_DOWN and not group.has_sizes:
            raise EventValidationError(field, "scale_down needs desired_size, min_size or max_size")


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
