"""The pure sizing rules: floors, min <= desired <= max, and the order EKS needs."""

from __future__ import annotations

from handlers.eks_scaler.sizing import Request, Sizes, default_floor, plan_sizes

CURRENT = Sizes(min_size=1, desired_size=2, max_size=4)


def test_default_floor_is_one_on_demand_and_zero_spot() -> None:
    # GIVEN no configured floor WHEN the default is asked THEN on-demand keeps a node, spot none
    assert default_floor("ON_DEMAND") == 1
    assert default_floor("SPOT") == 0


def test_requested_desired_below_floor_is_raised_to_the_floor() -> None:
    # GIVEN an on-demand floor of 1 WHEN desired 0 and min 0 are asked
    plan = plan_sizes(CURRENT, Request(min_size=0, desired_size=0), floor=1)
    # THEN both stay at the floor and the plan says so
    assert plan.target == Sizes(1, 1, 4)
    assert plan.held_by_floor
    assert any("below the floor 1" in note for note in plan.notes)


def test_min_above_current_desired_raises_desired_in_the_same_config() -> None:
    # GIVEN desired 2 WHEN only min 3 is asked
    # THEN desired is raised with it in one config (EKS refuses min > desired)
    plan = plan_sizes(CURRENT, Request(min_size=3), floor=1)
    assert plan.target == Sizes(3, 3, 4)


def test_max_below_current_desired_lowers_desired_within_the_floor() -> None:
    # GIVEN desired 3 WHEN only max 2 is asked THEN desired comes down to 2
    assert plan_sizes(Sizes(1, 3, 6), Request(max_size=2), floor=1).target == Sizes(1, 2, 2)
    # AND a max below the floor is refused rather than breaking the floor
    refused = plan_sizes(Sizes(2, 3, 6), Request(max_size=1), floor=2)
    assert refused.target is None
    assert refused.refused == "max_size 1 is below the floor 2"


def test_desired_below_current_min_lowers_min_and_above_max_is_refused() -> None:
    # GIVEN min 2 WHEN desired 1 alone is asked THEN min follows it down
    assert plan_sizes(Sizes(2, 3, 6), Request(desired_size=1), floor=0).target == Sizes(1, 1, 6)
    # AND desired above max without a new max is refused: raising max must be explicit
    refused = plan_sizes(CURRENT, Request(desired_size=5), floor=1)
    assert refused.target is None
    assert "above max_size 4" in (refused.refused or "")


def test_spot_group_may_go_to_zero_but_max_stays_at_least_one() -> None:
    # GIVEN a spot group (floor 0) WHEN scaled to zero THEN min and desired are 0, max unchanged
    assert plan_sizes(Sizes(0, 2, 6), Request(min_size=0, desired_size=0), floor=0).target == (
        Sizes(0, 0, 6)
    )
