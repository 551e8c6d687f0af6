"""Pure sizing rules of the scaler: which desired size a node group may get, and why.

The stack file owns `min_size` and `max_size` (pulumi-eks applies them); the scaler sets
`desiredSize` only, always within:
- below: the floor (the inventory's `floor`, else 1 for ON_DEMAND and 0 for SPOT) and the node
  group's minSize in EKS (EKS refuses a desired size below it);
- above: the stack file's `max_size` from the inventory and the node group's maxSize in EKS.
A request outside those bounds is clamped to them with the reason. Without a configured
`max_size` (no inventory, or a node group it does not list) nothing says how far a request may go,
so one above the current maxSize is refused instead.

Kept free of AWS calls so every rule is unit tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_shared.inventory import NodeGroup
from fleet_shared.validation_errors import shown_value


@dataclass(frozen=True)
class Sizes:
    """A node group's scaling config."""

    min_size: int
    desired_size: int
    max_size: int

    @classmethod
    def from_dict(cls, value: object) -> Sizes:
        """From the JSON form (`as_dict`), as saved in the state table; ValueError naming the
        field that is no node count (`int()` would make a flag 1 and 2.7 2, sizes then set)."""
        if not isinstance(value, dict):
            raise ValueError(f"is a {type(value).__name__}, not an object of sizes")
        counts: dict[str, int] = {}
        for field in ("min_size", "desired_size", "max_size"):
            count = value.get(field)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"{field} {shown_value(count)} is not a node count")
            counts[field] = count
        return cls(**counts)

    def as_dict(self) -> dict[str, int]:
        """The JSON form used in results, history and saved values."""
        return {
            "min_size": self.min_size,
            "desired_size": self.desired_size,
            "max_size": self.max_size,
        }

    def with_desired(self, desired_size: int) -> Sizes:
        """The same config with another desired size (the only field the scaler changes)."""
        return Sizes(self.min_size, desired_size, self.max_size)


@dataclass(frozen=True)
class Limits:
    """The bounds of one node group's desired size and where each comes from."""

    floor: int
    eks_min_size: int
    eks_max_size: int
    configured_max_size: int | None
    """The stack file's `max_size` (through the inventory); None when it is not known."""

    @property
    def lowest(self) -> int:
        """The smallest desired size the scaler may set."""
        return max(self.floor, self.eks_min_size)

    @property
    def highest(self) -> int:
        """The largest desired size the scaler may set."""
        if self.configured_max_size is None:
            return self.eks_max_size
        return min(self.configured_max_size, self.eks_max_size)

    @property
    def lower_bound(self) -> str:
        """The binding lower bound in words, e.g. `the floor 2` or `min_size 3`."""
        if self.floor >= self.eks_min_size:
            return f"the floor {self.floor}"
        return f"min_size {self.eks_min_size}"

    @property
    def upper_bound(self) -> str:
        """The binding upper bound in words, e.g. `max_size 6`."""
        if self.configured_max_size is not None and self.configured_max_size > self.eks_max_size:
            return (
                f"the node group's maxSize {self.eks_max_size} in EKS (the stack file's "
                f"max_size {self.configured_max_size} is not applied yet)"
            )
        return f"max_size {self.highest}"


@dataclass(frozen=True)
class DesiredPlan:
    """The desired size to set, or why there is none (`refused`)."""

    desired_size: int | None
    notes: tuple[str, ...] = ()
    refused: str | None = None
    held_at_lower_bound: bool = False
    """The requested size was raised to the floor or min_size."""


def default_floor(capacity_type: str) -> int:
    """1 for ON_DEMAND (a cluster keeps a node for system pods), 0 for SPOT."""
    return 1 if capacity_type == "ON_DEMAND" else 0


def node_group_limits(current: Sizes, capacity_type: str, configured: NodeGroup | None) -> Limits:
    """The limits of a node group from its current EKS config and its inventory entry, if any."""
    return Limits(
        floor=configured.floor if configured is not None else default_floor(capacity_type),
        eks_min_size=current.min_size,
        eks_max_size=current.max_size,
        configured_max_size=configured.max_size if configured is not None else None,
    )


def plan_desired(requested: int, limits: Limits) -> DesiredPlan:
    """The desired size for a request of `requested` within `limits`.

    - Below the floor or min_size: raised to it (noted).
    - Above the configured max_size (or EKS maxSize when lower): clamped to it (noted).
    - Above EKS maxSize with no configured max_size: refused.
    - Limits that leave no size (a floor above maxSize): refused.
    """
    if limits.configured_max_size is None and requested > limits.eks_max_size:
        return DesiredPlan(
            None,
            refused=(
                f"desired_size {requested} is above the node group's maxSize "
                f"{limits.eks_max_size}; without its max_size in the fleet inventory the scaler "
                "never goes past the current maxSize"
            ),
        )
    if limits.lowest > limits.highest:
        return DesiredPlan(
            None,
            refused=(
                f"{limits.lower_bound} is above {limits.upper_bound}; fix the node group in the "
                "stack file"
            ),
        )
    if requested < limits.lowest:
        return DesiredPlan(
            limits.lowest,
            (
                f"requested desired_size {requested} is below {limits.lower_bound}; "
                f"using {limits.lowest}",
            ),
            held_at_lower_bound=True,
        )
    if requested > limits.highest:
        return DesiredPlan(
            limits.highest, (f"desired_size {requested} clamped to {limits.upper_bound}",)
        )
    return DesiredPlan(requested)
