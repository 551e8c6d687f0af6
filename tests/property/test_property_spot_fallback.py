"""Properties of spot_optimizer's on-demand fallback size (`interruptions._plan`): the +1 of a
node group EKS described stays within its maxSize in EKS and the stack file's `max_size`, "the
lower of the two as eks_scaler bounds its own changes", and changes the desired size alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from handlers.spot_optimizer.interruptions import _plan


@st.composite
def described_node_groups(draw: st.DrawFn) -> dict[str, object]:
    """A DescribeNodegroup answer's node group: EKS keeps min <= desired <= max."""
    max_size = draw(st.integers(min_value=1, max_value=450))
    min_size = draw(st.integers(min_value=0, max_value=max_size))
    desired_size = draw(st.integers(min_value=min_size, max_value=max_size))
    return {
        "nodegroupName": "on-demand",
        "scalingConfig": {"minSize": min_size, "desiredSize": desired_size, "maxSize": max_size},
    }


@given(
    group=described_node_groups(),
    stack_max_size=st.none() | st.integers(min_value=1, max_value=450),
)
def test_the_fallback_adds_one_node_only_within_both_max_sizes(
    group: dict[str, object], stack_max_size: int | None
) -> None:
    # GIVEN any on-demand node group as EKS describes it, listed in the inventory or not
    # WHEN its fallback +1 is planned
    plan = _plan(group, stack_max_size)
    previous = plan["previous"]
    ceiling = min(previous["max_size"], stack_max_size or previous["max_size"])
    # THEN it adds exactly one node while the desired size is under both max sizes, changes
    # neither min_size nor max_size, and plans nothing at either ceiling
    if previous["desired_size"] >= ceiling:
        assert plan["new"] is None
        return
    assert plan["new"] == {**previous, "desired_size": previous["desired_size"] + 1}
    assert plan["new"]["desired_size"] <= ceiling
