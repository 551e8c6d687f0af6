"""The pure sizing rules: floors, min_size and max_size bound the desired size; clamped or
refused, always with the reason."""

from __future__ import annotations

from fleet_shared.inventory import NodeGroup
from handlers.eks_scaler.sizing import Sizes, default_floor, node_group_limits, plan_desired

CURRENT = Sizes(min_size=1, desired_size=2, max_size=6)


def configured(floor: int = 1, max_size: int = 6) -> NodeGroup:
    """The node group as the stack file (through the inventory) describes it."""
    return NodeGroup(
        name="web",
        capacity_type="ON_DEMAND",
        instance_types=("m7g.large",),
        min_size=1,
        desired_size=2,
        max_size=max_size,
        floor=floor,
    )


def test_default_floor_is_one_on_demand_and_zero_spot() -> None:
    # GIVEN no configured floor WHEN the default is asked THEN on-demand keeps a node, spot none
    assert default_floor("ON_DEMAND") == 1
    assert default_floor("SPOT") == 0


def test_requested_desired_below_the_floor_is_raised_to_the_floor() -> None:
    # GIVEN a configured floor of 2 WHEN desired 0 is asked
    plan = plan_desired(0, node_group_limits(CURRENT, "ON_DEMAND", configured(floor=2)))
    # THEN the floor is used and the plan says why
    assert plan.desired_size == 2
    assert plan.held_at_lower_bound
    assert plan.notes == ("requested desired_size 0 is below the floor 2; using 2",)


def test_requested_desired_below_eks_min_size_is_raised_to_it() -> None:
    # GIVEN a spot group (floor 0) whose min_size in EKS is 2 WHEN desired 1 is asked
    limits = node_group_limits(Sizes(2, 3, 6), "SPOT", None)
    plan = plan_desired(1, limits)
    # THEN min_size holds: EKS refuses a desired size below it, and the stack file owns it
    assert plan.desired_size == 2
    assert plan.notes == ("requested desired_size 1 is below min_size 2; using 2",)


def test_a_request_far_above_max_size_is_clamped_to_it_with_the_reason() -> None:
    # GIVEN the stack file's max_size 6 WHEN a billion nodes are asked
    plan = plan_desired(1_000_000_000, node_group_limits(CURRENT, "ON_DEMAND", configured()))
    # THEN max_size is used
    assert plan.desired_size == 6
    assert plan.notes == ("desired_size 1000000000 clamped to max_size 6",)


def test_an_eks_max_size_below_the_stack_files_is_the_ceiling_until_pulumi_applies_it() -> None:
    # GIVEN the stack file says max_size 8 but EKS still has 6 WHEN 8 is asked
    plan = plan_desired(8, node_group_limits(CURRENT, "ON_DEMAND", configured(max_size=8)))
    # THEN EKS's maxSize holds (it would refuse more) and the reason names both
    assert plan.desired_size == 6
    assert "maxSize 6 in EKS" in plan.notes[0]
    assert "max_size 8 is not applied yet" in plan.notes[0]


def test_an_eks_max_size_raised_by_hand_is_no_licence_to_outgrow_the_stack_files_max_size() -> None:
    # GIVEN the stack file says max_size 4 while EKS's maxSize was raised to 10 in the console
    limits = node_group_limits(Sizes(1, 2, 10), "ON_DEMAND", configured(max_size=4))
    # WHEN 9 is asked
    plan = plan_desired(9, limits)
    # THEN the stack file's max_size is the ceiling, and the plan says so
    assert plan.desired_size == 4
    assert plan.notes == ("desired_size 9 clamped to max_size 4",)


def test_without_a_configured_max_size_a_request_above_eks_max_size_is_refused() -> None:
    # GIVEN no inventory entry (default floor, no configured max_size) WHEN 7 is asked of max 6
    plan = plan_desired(7, node_group_limits(CURRENT, "ON_DEMAND", None))
    # THEN it is refused, not clamped: nothing says how far this node group may go
    assert plan.desired_size is None
    assert "above the node group's maxSize 6" in (plan.refused or "")
    # AND a request within maxSize is taken as it is
    assert plan_desired(6, node_group_limits(CURRENT, "ON_DEMAND", None)).desired_size == 6


def test_limits_that_leave_no_size_are_refused() -> None:
    # GIVEN a floor of 4 and EKS maxSize 3 (the stack file's max_size 6 not yet applied)
    limits = node_group_limits(Sizes(1, 2, 3), "ON_DEMAND", configured(floor=4))
    # WHEN any size is asked THEN it is refused naming both bounds
    plan = plan_desired(2, limits)
    assert plan.desired_size is None
    assert "the floor 4 is above the node group's maxSize 3 in EKS" in (plan.refused or "")


def test_limits_that_leave_one_size_give_that_size() -> None:
    # GIVEN a floor of 4 at the stack file's and EKS's max_size 4
    limits = node_group_limits(Sizes(1, 2, 4), "ON_DEMAND", configured(floor=4, max_size=4))
    # WHEN a smaller size is asked THEN the one size left is used, not refused
    plan = plan_desired(2, limits)
    assert (plan.desired_size, plan.refused) == (4, None)


def test_spot_group_may_go_to_zero() -> None:
    # GIVEN a spot group at 0/2/6 (floor 0) WHEN desired 0 is asked THEN 0 it is
    plan = plan_desired(0, node_group_limits(Sizes(0, 2, 6), "SPOT", None))
    assert plan.desired_size == 0
    assert plan.notes == ()
