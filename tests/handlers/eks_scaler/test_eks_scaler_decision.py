"""The scaler's decision for one node group, as a pure function (no AWS, no state table)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from fleet_shared.inventory import NodeGroup
from handlers.eks_scaler.decision import (
    DecisionKind,
    NodeGroupFacts,
    SavedSizes,
    ScalingDecision,
    cooldown_remaining,
    decide,
)
from handlers.eks_scaler.models import Action, NodeGroupRequest
from handlers.eks_scaler.sizing import Sizes

NOW = datetime(2025, 6, 2, 12, 30, tzinfo=UTC)
WEB = NodeGroup(
    name="web",
    capacity_type="ON_DEMAND",
    instance_types=("m7g.large",),
    min_size=2,
    desired_size=3,
    max_size=6,
    floor=2,
)
FACTS = NodeGroupFacts(
    current=Sizes(2, 3, 6),
    status="ACTIVE",
    capacity_type="ON_DEMAND",
    configured=WEB,
    saved=None,
    last_change_at=None,
    cooldown_seconds=300,
)
DAYTIME = SavedSizes(Sizes(2, 4, 6), saved_at="2025-06-01T12:30:00Z")


def decision_for(
    action: Action, desired_size: int | None = None, **facts: object
) -> ScalingDecision:
    """The decision for web under `action`, with FACTS changed by `facts`."""
    group = NodeGroupRequest(name="web", desired_size=desired_size)
    return decide(action, group, dataclasses.replace(FACTS, **facts), NOW)


@pytest.mark.parametrize("status", ["CREATE_FAILED", "DELETING"])
def test_a_node_group_that_is_not_active_or_degraded_is_refused(status: str) -> None:
    # GIVEN web in a status EKS does not leave by itself for ACTIVE
    # WHEN a scale-up is decided THEN it is refused with the status
    decision = decision_for(Action.SCALE_UP, 4, status=status)
    assert decision.kind is DecisionKind.REFUSED
    assert decision.target is None
    assert decision.reasons == (
        f"node group is {status}; EKS accepts scaling only when ACTIVE or DEGRADED",
    )


@pytest.mark.parametrize("action", [Action.SCALE_UP, Action.PREDICTIVE])
def test_a_node_group_being_upgraded_is_waited_for_not_refused(action: Action) -> None:
    # GIVEN web UPDATING (an EKS version upgrade)
    # WHEN a change is decided
    decision = decision_for(action, 4, status="UPDATING")
    # THEN nothing changes now, and the reason says why and when it will
    assert decision.kind is DecisionKind.WAIT_FOR_UPDATE
    assert decision.target is None
    [reason] = decision.reasons
    assert reason.startswith("node group is UPDATING (an EKS update in progress")
    assert "once it is ACTIVE" in reason


def test_a_scale_up_within_the_limits_changes_desired_only() -> None:
    # GIVEN web at 2/3/6 WHEN desired 5 is asked THEN only desired changes
    decision = decision_for(Action.SCALE_UP, 5)
    assert decision.kind is DecisionKind.CHANGE
    assert decision.target == Sizes(2, 5, 6)
    assert decision.reasons == ()
    assert not decision.saves_previous_sizes


def test_a_request_above_max_size_is_clamped_with_the_reason() -> None:
    # GIVEN web with max_size 6 WHEN a billion is asked THEN 6, and the reason says so
    decision = decision_for(Action.SCALE_UP, 1_000_000_000)
    assert decision.kind is DecisionKind.CHANGE
    assert decision.target == Sizes(2, 6, 6)
    assert decision.reasons == ("desired_size 1000000000 clamped to max_size 6",)


def test_without_an_inventory_entry_a_request_above_eks_max_size_is_refused() -> None:
    # GIVEN web not listed in the inventory WHEN 7 is asked of EKS maxSize 6 THEN refused
    decision = decision_for(Action.SCALE_UP, 7, configured=None)
    assert decision.kind is DecisionKind.REFUSED
    assert "above the node group's maxSize 6" in decision.reasons[0]


def test_scale_down_never_raises_and_scale_up_with_a_size_never_lowers() -> None:
    # GIVEN web at desired 3
    # WHEN scale_down asks for 4 THEN refused
    down = decision_for(Action.SCALE_DOWN, 4)
    assert down.kind is DecisionKind.REFUSED
    assert down.reasons == ("scale_down would raise desired from 3 to 4; use scale_up",)
    # WHEN scale_up asks for 2 THEN refused
    up = decision_for(Action.SCALE_UP, 2)
    assert up.kind is DecisionKind.REFUSED
    assert up.reasons == ("scale_up would lower desired from 3 to 2; use scale_down",)


def test_a_scale_down_below_the_floor_at_the_floor_is_blocked() -> None:
    # GIVEN web already at its floor 2 WHEN scale_down asks for 0 THEN blocked by the floor
    decision = decision_for(Action.SCALE_DOWN, 0, current=Sizes(2, 2, 6))
    assert decision.kind is DecisionKind.BLOCKED
    assert decision.reasons == (
        "requested desired_size 0 is below the floor 2; using 2",
        "already at the floor 2",
    )


def test_a_request_for_the_current_size_needs_no_change() -> None:
    # GIVEN web at desired 3 WHEN scale_up asks for 3 THEN nothing to do
    decision = decision_for(Action.SCALE_UP, 3)
    assert decision.kind is DecisionKind.NO_CHANGE
    assert decision.reasons == ("the scaling config already has these sizes",)


def test_a_decrease_waits_for_the_cooldown_and_an_increase_does_not() -> None:
    # GIVEN web changed 100 s ago, with a 300 s cooldown
    recently = NOW - timedelta(seconds=100)
    # WHEN a decrease is decided THEN it is blocked with the time left
    down = decision_for(Action.SCALE_DOWN, 2, last_change_at=recently)
    assert down.kind is DecisionKind.BLOCKED
    assert down.cooldown_remaining_seconds == 200
    assert down.target == Sizes(2, 2, 6)
    # AND an increase goes ahead
    assert decision_for(Action.SCALE_UP, 4, last_change_at=recently).kind is DecisionKind.CHANGE
    # AND in the cooldown's last second (half of one left) it still waits
    last_second = NOW - timedelta(seconds=299.5)
    down = decision_for(Action.SCALE_DOWN, 2, last_change_at=last_second)
    assert (down.kind, down.cooldown_remaining_seconds) == (DecisionKind.BLOCKED, 1)
    # AND once the cooldown passed, the decrease goes ahead
    earlier = NOW - timedelta(seconds=300)
    assert decision_for(Action.SCALE_DOWN, 2, last_change_at=earlier).kind is DecisionKind.CHANGE


def test_a_scale_down_saves_the_sizes_unless_earlier_ones_wait_for_a_restore() -> None:
    # GIVEN nothing saved WHEN web scales down THEN the current sizes are to be saved
    first = decision_for(Action.SCALE_DOWN, 2)
    assert first.kind is DecisionKind.CHANGE
    assert first.saves_previous_sizes
    # GIVEN the daytime sizes still waiting WHEN web scales down again THEN they are kept
    second = decision_for(Action.SCALE_DOWN, 2, saved=DAYTIME)
    assert not second.saves_previous_sizes
    assert second.reasons == (
        "keeping the sizes saved at 2025-06-01T12:30:00Z for the next restore",
    )


def test_a_scale_down_that_says_save_sizes_false_saves_none_and_keeps_those_waiting() -> None:
    # GIVEN web at 2/3/6, its last saved sizes already restored, and a scale-down to 2 that
    # says save_sizes false (the change validator undoing a raise)
    restored = dataclasses.replace(DAYTIME, restored_at="2025-06-02T02:30:00Z")
    group = NodeGroupRequest(name="web", desired_size=2)
    # WHEN it is decided
    undo = decide(
        Action.SCALE_DOWN, group, dataclasses.replace(FACTS, saved=restored), NOW, save_sizes=False
    )
    # THEN web goes to 2 and the 3 it undoes is not saved for the next restore
    assert undo.kind is DecisionKind.CHANGE
    assert undo.target == Sizes(2, 2, 6)
    assert not undo.saves_previous_sizes
    assert undo.replaced_saved_sizes is None
    assert undo.reasons == ("no sizes saved for the next restore (the request says save_sizes)",)
    # AND with the daytime sizes still waiting, they are kept for the next restore
    waiting = decide(
        Action.SCALE_DOWN, group, dataclasses.replace(FACTS, saved=DAYTIME), NOW, save_sizes=False
    )
    assert not waiting.saves_previous_sizes
    assert waiting.reasons == (
        "keeping the sizes saved at 2025-06-01T12:30:00Z for the next restore",
    )


@pytest.mark.parametrize("action", [Action.RESTORE, Action.SCALE_UP])
def test_restore_and_a_size_less_scale_up_put_back_the_saved_desired_size(action: Action) -> None:
    # GIVEN daytime sizes 2/4/6 saved WHEN restore (or the morning scale_up) is decided
    decision = decision_for(action, saved=DAYTIME)
    # THEN desired 4 comes back, and the saved sizes are the ones restored
    assert decision.kind is DecisionKind.CHANGE
    assert decision.target == Sizes(2, 4, 6)
    assert decision.restores == DAYTIME
    assert decision.reasons == ("restoring the sizes saved at 2025-06-01T12:30:00Z",)


def test_a_morning_scale_up_lowers_a_node_group_raised_overnight_to_the_saved_size() -> None:
    # GIVEN daytime sizes 2/4/6 saved, and web raised to 5 overnight (the spot optimizer's
    # temporary +1, a person's, or the forecast's), long past the cooldown
    raised = Sizes(2, 5, 6)
    # WHEN the morning scale_up comes
    decision = decision_for(Action.SCALE_UP, current=raised, saved=DAYTIME)
    # THEN the saved 4 comes back: kept at 5, the raise would be saved by the evening scale-down
    # and restored every day after (the rule was tried and reverted twice for that reason)
    assert decision.kind is DecisionKind.CHANGE
    assert decision.target == Sizes(2, 4, 6)
    assert decision.restores == DAYTIME


def test_a_restore_already_in_place_needs_no_change_but_is_marked_restored() -> None:
    # GIVEN saved desired 3, which web already has WHEN restore is decided
    in_place = SavedSizes(Sizes(2, 3, 6), saved_at="2025-06-01T12:30:00Z")
    decision = decision_for(Action.RESTORE, saved=in_place)
    # THEN no change, and the saved sizes are to be marked restored
    assert decision.kind is DecisionKind.NO_CHANGE
    assert decision.restores == in_place


def test_an_explicit_restore_of_sizes_already_restored_restores_nothing() -> None:
    # GIVEN daytime desired 4 saved and already restored by the morning's request, and web
    # raised to 5 since (a person, or the spot optimizer's temporary +1)
    restored = dataclasses.replace(
        DAYTIME, restored_at="2025-06-02T02:30:00Z", restored_by="morning-1"
    )
    raised = Sizes(2, 5, 6)
    # WHEN another request asks for a restore
    group = NodeGroupRequest(name="web")
    facts = dataclasses.replace(FACTS, current=raised, saved=restored)
    again = decide(Action.RESTORE, group, facts, NOW, request_id="manual-7")
    # THEN nothing changes: the old sizes are not put back a second time
    assert again.kind is DecisionKind.NO_CHANGE
    assert again.target == raised
    assert again.restores is None
    assert again.reasons == (
        "the sizes saved at 2025-06-01T12:30:00Z were already restored at "
        "2025-06-02T02:30:00Z; nothing to restore",
    )
    # AND the retry of the request that marked them restored still restores them
    retried = decide(Action.RESTORE, group, facts, NOW, request_id="morning-1")
    assert retried.kind is DecisionKind.CHANGE
    assert retried.target == Sizes(2, 4, 6)
    assert retried.restores == restored


def test_a_restore_is_clamped_to_the_current_limits() -> None:
    # GIVEN saved desired 9 from before max_size was lowered to 6 WHEN restored THEN 6
    saved = SavedSizes(Sizes(2, 9, 10), saved_at="2025-06-01T12:30:00Z")
    decision = decision_for(Action.RESTORE, saved=saved)
    assert decision.target == Sizes(2, 6, 6)
    assert decision.reasons[0] == "desired_size 9 clamped to max_size 6"


def test_a_scheduled_scale_down_finding_the_node_group_below_its_size_changes_nothing() -> None:
    # GIVEN web at desired 3, below the evening schedule's 4 (lowered earlier by hand or by the
    # forecast)
    group = NodeGroupRequest(name="web", desired_size=4)
    # WHEN the schedule's scale_down comes
    decision = decide(Action.SCALE_DOWN, group, FACTS, NOW, scheduled=True)
    # THEN no change and no refusal: the schedule asks for at most its size
    assert decision.kind is DecisionKind.NO_CHANGE
    assert decision.target == Sizes(2, 3, 6)
    assert decision.reasons == (
        "desired 3 is already below the 4 this scale-down would set; a scheduled scale-down "
        "never raises",
    )


def test_nothing_saved_or_already_restored_needs_no_change_at_the_stack_files_size() -> None:
    # GIVEN nothing saved and web at desired 3, its stack file's size
    # WHEN the morning scale_up comes THEN no change, with the reason
    nothing = decision_for(Action.SCALE_UP)
    assert nothing.kind is DecisionKind.NO_CHANGE
    assert nothing.reasons == (
        "no sizes were saved before a scale-down; desired 3 is at or above the stack file's 3",
    )
    # GIVEN the saved sizes already restored WHEN a size-less scale_up comes THEN no change
    restored = dataclasses.replace(DAYTIME, restored_at="2025-06-02T02:30:00Z")
    again = decision_for(Action.SCALE_UP, saved=restored)
    assert again.kind is DecisionKind.NO_CHANGE
    assert "already restored at 2025-06-02T02:30:00Z" in again.reasons[0]
    assert again.restores is None


def test_a_morning_scale_up_with_nothing_saved_raises_to_the_stack_files_size() -> None:
    # GIVEN web at its night size 2, below its stack file's 3, and nothing saved (the scaler
    # first saw it at night)
    night = Sizes(2, 2, 6)
    # WHEN the morning scale_up comes
    decision = decision_for(Action.SCALE_UP, current=night)
    # THEN web goes up to the stack file's size, saying why, and restores nothing
    assert decision.kind is DecisionKind.CHANGE
    assert decision.target == Sizes(2, 3, 6)
    assert decision.restores is None
    assert decision.reasons == (
        "no sizes were saved before a scale-down; scaling up to the stack file's desired size 3",
    )


def test_a_morning_scale_up_after_a_scale_down_that_saved_nothing_raises_to_the_stack_size() -> (
    None
):
    # GIVEN the last saved sizes already restored (the evening scale-down found web already at
    # its night size 2, so it saved nothing)
    restored = dataclasses.replace(DAYTIME, restored_at="2025-06-01T13:00:00Z")
    # WHEN the morning scale_up comes THEN web goes up to its stack file's 3, not to the old 4
    decision = decision_for(Action.SCALE_UP, current=Sizes(2, 2, 6), saved=restored)
    assert decision.kind is DecisionKind.CHANGE
    assert decision.target == Sizes(2, 3, 6)
    assert "scaling up to the stack file's desired size 3" in decision.reasons[0]


def test_without_saved_sizes_a_restore_or_an_unlisted_node_group_changes_nothing() -> None:
    # GIVEN web at 2 with nothing saved
    night = Sizes(2, 2, 6)
    # WHEN an explicit restore comes, or a scale_up for a node group the inventory does not list
    explicit = decision_for(Action.RESTORE, current=night)
    unlisted = decision_for(Action.SCALE_UP, current=night, configured=None)
    # THEN neither changes anything: there is nothing to restore and no size to go up to
    for decision in (explicit, unlisted):
        assert decision.kind is DecisionKind.NO_CHANGE
        assert decision.reasons == ("no sizes were saved before a scale-down; nothing to restore",)


def test_cooldown_remaining_counts_whole_seconds_and_never_below_zero() -> None:
    # GIVEN a 300 s cooldown WHEN the last change was 99.5 s ago, long ago or never
    # THEN 201 s (rounded up), 0 and 0 are left
    assert cooldown_remaining(NOW - timedelta(seconds=99.5), 300, NOW) == 201
    assert cooldown_remaining(NOW - timedelta(hours=1), 300, NOW) == 0
    assert cooldown_remaining(None, 300, NOW) == 0
