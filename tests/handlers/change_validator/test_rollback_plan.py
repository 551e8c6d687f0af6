"""Which scaling changes the validator restores by itself (`rollback_plan`'s `automatic`): only
the fleet scaler's own, when the stack allows it, and never a change that was itself a restore."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.change_validator.changes import Change, ChangeKind
from handlers.change_validator.rollback import RESTORE_REQUEST_PREFIX, rollback_plan

PREVIOUS_SIZES = {"min_size": 1, "desired_size": 2, "max_size": 4}


def scaling_change(*, by_fleet_scaler: bool) -> Change:
    """An UpdateNodegroupConfig of system from 2 to 3 nodes."""
    return Change(
        validation_id="1a2b3c4d-0000-4111-8222-933344445555",
        account_id="222222222222",
        region="ap-south-1",
        cluster="dev-apps",
        node_group="system",
        kind=ChangeKind.SCALING,
        event_id="event-1",
        event_name="UpdateNodegroupConfig",
        changed_at="2025-06-02T03:00:00Z",
        by_fleet_scaler=by_fleet_scaler,
        requested={"nodegroupName": "system", "scalingConfig": {"desiredSize": 3}},
    )


def previous_state(scaler_request_id: str | None) -> dict[str, Any]:
    """The sizes before the change, as the scaler's change record gives them."""
    return {
        "sizes": PREVIOUS_SIZES,
        "seen_in": "the scaler's change record",
        "scaler_request_id": scaler_request_id,
    }


def test_the_scalers_own_change_is_restored_automatically_when_the_stack_allows_it() -> None:
    # GIVEN the fleet scaler's change, made for an ordinary request
    change = scaling_change(by_fleet_scaler=True)
    # WHEN its rollback is planned with and without the stack's permission
    allowed = rollback_plan(change, previous_state("evening-run"), restore_allowed=True)
    refused = rollback_plan(change, previous_state("evening-run"), restore_allowed=False)
    # THEN only the allowed one is automatic, back to the previous desired size
    assert allowed["automatic"] is True
    assert allowed["sizes"] == PREVIOUS_SIZES
    assert refused["automatic"] is False


@pytest.mark.parametrize(
    ("by_fleet_scaler", "scaler_request_id"),
    [(False, None), (True, f"{RESTORE_REQUEST_PREFIX}0f1e2d3c-0000-4111-8222-933344445555")],
    ids=["someone-elses-change", "a-restore-itself"],
)
def test_a_change_not_the_scalers_own_or_itself_a_restore_is_never_restored_automatically(
    by_fleet_scaler: bool, scaler_request_id: str | None
) -> None:
    # GIVEN a scaling change made by someone other than the fleet scaler, or the scaler's restore
    # of an earlier change (restoring it would flap between the two sizes)
    change = scaling_change(by_fleet_scaler=by_fleet_scaler)
    # WHEN its rollback is planned in a stack that lets the validator restore the scaler's changes
    plan = rollback_plan(change, previous_state(scaler_request_id), restore_allowed=True)
    # THEN it is left to a person, the rollback still named
    assert plan["automatic"] is False
    assert "restore node group system to desired size 2" in plan["action"]


@pytest.mark.parametrize("desired_size", [None, "2", 2.5], ids=["missing", "text", "fraction"])
def test_a_scaler_record_without_a_whole_previous_desired_size_is_not_restored_automatically(
    desired_size: object,
) -> None:
    # GIVEN the scaler's own change, whose record gives no whole desired size before it
    change = scaling_change(by_fleet_scaler=True)
    previous = {**previous_state("evening-run"), "sizes": {**PREVIOUS_SIZES}}
    previous["sizes"]["desired_size"] = desired_size
    # WHEN its rollback is planned in a stack that lets the validator restore the scaler's changes
    plan = rollback_plan(change, previous, restore_allowed=True)
    # THEN it is left to a person: there is no size the scaler could be asked for
    assert plan["automatic"] is False
