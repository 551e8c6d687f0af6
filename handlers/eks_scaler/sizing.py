"""Pure sizing rules of the scaler: from the current scaling config, a request and a floor to the
one consistent scaling config that is sent to EKS (or the reason none can be).

Kept free of AWS calls so every rule (floors, min <= desired <= max, the order EKS needs) is unit
tested directly. EKS validates the scaling config of an update as a whole: one
`update_nodegroup_config` call carrying a consistent {minSize, desiredSize, maxSize} therefore
"raises desired first" or "lowers desired first" in a single step, with no intermediate state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sizes:
    """A node group's scaling config."""

    min_size: int
    desired_size: int
    max_size: int

    @classmethod
    def from_eks(cls, scaling_config: dict[str, Any]) -> Sizes:
        """From describe_nodegroup's `scalingConfig`."""
        return cls(
            min_size=int(scaling_config["minSize"]),
            desired_size=int(scaling_config["desiredSize"]),
            max_size=int(scaling_config["maxSize"]),
        )

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Sizes:
        """From the JSON form (`as_dict`), as saved in the state table."""
        return cls(
            min_size=int(value["min_size"]),
            desired_size=int(value["desired_size"]),
            max_size=int(value["max_size"]),
        )

    def as_dict(self) -> dict[str, int]:
        """The JSON form used in results, history and saved values."""
        return {
            "min_size": self.min_size,
            "desired_size": self.desired_size,
            "max_size": self.max_size,
        }

    def as_eks(self) -> dict[str, int]:
        """The `scalingConfig` argument of update_nodegroup_config."""
        return {
            "minSize": self.min_size,
            "desiredSize": self.desired_size,
            "maxSize": self.max_size,
        }


@dataclass(frozen=True)
class Request:
    """The sizes a caller asked for; None keeps the current value (or adjusts it, see plan)."""

    min_size: int | None = None
    desired_size: int | None = None
    max_size: int | None = None


@dataclass(frozen=True)
class Plan:
    """The outcome of planning: the target sizes, or why there is none (`refused`)."""

    target: Sizes | None
    notes: tuple[str, ...] = ()
    refused: str | None = None
    held_by_floor: bool = False
    """A requested size was raised to the floor."""


def default_floor(capacity_type: str) -> int:
    """1 for ON_DEMAND (a cluster keeps a node for system pods), 0 for SPOT."""
    return 1 if capacity_type == "ON_DEMAND" else 0


def plan_sizes(current: Sizes, request: Request, floor: int) -> Plan:
    """The consistent scaling config that honours `request` without going below `floor`.

    - A requested min or desired below the floor is raised to the floor (noted).
    - A requested min above the resulting desired raises desired to it (desired not requested).
    - A requested max below the resulting desired lowers desired to it (desired not requested);
      a max below the floor is refused.
    - A requested desired below the current min lowers min with it (min not requested); one above
      the current max is refused: raising max is a decision the caller must state.
    - An explicit request that is itself inconsistent is refused; nothing is guessed.
    """
    notes: list[str] = []
    held = False

    def at_floor(value: int | None, name: str) -> int | None:
        nonlocal held
        if value is not None and value < floor:
            held = True
            notes.append(f"requested {name} {value} is below the floor {floor}; using {floor}")
            return floor
        return value

    req_min = at_floor(request.min_size, "min_size")
    req_desired = at_floor(request.desired_size, "desired_size")
    req_max = request.max_size
    if req_max is not None and req_max < floor:
        return Plan(None, tuple(notes), f"max_size {req_max} is below the floor {floor}")

    max_size = req_max if req_max is not None else current.max_size
    min_size = req_min if req_min is not None else current.min_size
    if req_desired is not None:
        desired = req_desired
    else:
        desired = max(current.desired_size, floor)
        if desired < min_size:
            notes.append(f"desired raised from {desired} to min_size {min_size}")
            desired = min_size
        if desired > max_size:
            notes.append(f"desired lowered from {desired} to max_size {max_size}")
            desired = max_size

    if req_min is None and desired < min_size:
        notes.append(f"min_size lowered from {min_size} to desired {desired}")
        min_size = desired
    if req_max is None and desired > max_size:
        return Plan(
            None,
            tuple(notes),
            f"desired_size {desired} is above max_size {max_size}; ask for max_size too",
        )
    if not min_size <= desired <= max_size:
        return Plan(
            None,
            tuple(notes),
            f"sizes are inconsistent: min_size {min_size}, desired_size {desired}, "
            f"max_size {max_size} (need min_size <= desired_size <= max_size)",
        )
    if max_size < 1:
        return Plan(None, tuple(notes), "max_size must be at least 1 (EKS refuses 0)")
    return Plan(Sizes(min_size, desired, max_size), tuple(notes), held_by_floor=held)
