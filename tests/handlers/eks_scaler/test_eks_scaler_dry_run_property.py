"""Property of the scaler against moto: a dry run "reports and changes nothing", whatever it is
asked. One cluster is set up for the test, and every request hypothesis draws runs against it:
since none may change anything, each starts from the same node groups, state table and alert
topic, which is itself checked after each."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scaler_helpers import NODE_GROUPS, REGION, Scaler, event, sizes

from fleet_shared.clock import ManualClock
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from tests.handlers.conftest import STATE_TABLE_NAME, AlertInbox

DESIRED_BEFORE = 2
"""Every node group's desired size when the dry runs start (web's after its scale-down)."""

MAXIMA = {name: high for name, (_, _, _, high) in NODE_GROUPS.items()}
FLOORS = {"web": 2}
"""The floors at or above DESIRED_BEFORE (the inventory's for web); the others' are below it."""

DRY_RUN_ANSWERS = frozenset({"dry_run", "no_change_needed", "scale_down_blocked", "no_hold"})
"""What a dry run answers for a node group whose change it does not refuse."""

ACTIONS = ("scale_up", "scale_down", "scale_down", "restore", "predictive", "hold", "release")
"""The actions a dry run may be asked for, the one that saves sizes twice as often."""


@st.composite
def dry_run_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A dry-run request of any action for some of the cluster's node groups, sized or not."""
    action = draw(st.sampled_from(ACTIONS))
    names = draw(
        st.lists(st.sampled_from(sorted(NODE_GROUPS)), min_size=1, max_size=3, unique=True)
    )
    groups = []
    for name in names:
        group: dict[str, Any] = {"name": name}
        if action in ("scale_down", "predictive") or (action == "scale_up" and draw(st.booleans())):
            group["desired_size"] = draw(
                st.integers(min_value=0, max_value=8) | st.integers(min_value=9, max_value=2**70)
            )
        groups.append(group)
    extra: dict[str, Any] = {"dry_run": True}
    if action == "hold":
        extra["until"] = "2025-06-03T00:00:00Z"
        extra["reason"] = "property test"
    if draw(st.booleans()):
        extra["request_id"] = draw(st.sampled_from(("r-1", "r-2")))
    if action in ("scale_up", "scale_down") and draw(st.booleans()):
        extra["scheduled"] = True
    return event(action, *groups, **extra)


@pytest.fixture
def scaled_down_web(scaler: Scaler, fake_clock: ManualClock, alert_inbox: AlertInbox) -> None:
    """web scaled down for real from 3 to 2 an hour ago: saved sizes wait for a restore, a
    change is recorded, so the dry runs have state to leave alone."""
    result = scaler(event("scale_down", {"name": "web", "desired_size": 2}))
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    alert_inbox.receive()
    fake_clock.advance(3600)


def _refused(request: dict[str, Any]) -> list[str]:
    """The node groups of `request` that a run refuses whether or not it is a dry run: any
    predictive change (the cluster is in schedule mode), a requested scale-down that would raise
    desired (a schedule's is no change), a scale-up that would lower it (after the floor)."""
    action = request["action"]
    refused = []
    for group in request["nodegroups"]:
        name, size = group["name"], group.get("desired_size")
        if (
            action == "predictive"
            or (
                action == "scale_down"
                and not request.get("scheduled")
                and min(size, MAXIMA[name]) > DESIRED_BEFORE
            )
            or (
                action == "scale_up"
                and size is not None
                and max(size, FLOORS.get(name, 0)) < DESIRED_BEFORE
            )
        ):
            refused.append(name)
    return refused


def _table_items() -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    return sorted(
        dynamodb.scan(TableName=STATE_TABLE_NAME)["Items"], key=lambda item: repr(sorted(item))
    )


# A quarter of the profile's examples, each an invocation against moto; the fixtures (one
# cluster) serve them all, which is the point: a dry run leaves them as they were.
@settings(
    max_examples=settings().max_examples // 4,
    suppress_health_check=(HealthCheck.function_scoped_fixture,),
)
@given(request=dry_run_requests())
def test_a_dry_run_changes_no_node_group_no_state_and_sends_no_alert(
    request: dict[str, Any],
    scaler: Scaler,
    member_eks: Any,
    alert_inbox: AlertInbox,
    scaled_down_web: None,
) -> None:
    # GIVEN the member cluster with web scaled down an hour ago, and the state table as it is
    # before the request
    before_sizes = {name: sizes(member_eks, name) for name in NODE_GROUPS}
    before_items = _table_items()
    refused = _refused(request)
    # WHEN any request is made as a dry run
    try:
        result = scaler(request)
    except ScheduledRunUnfinishedError as unfinished:
        # THEN a scheduled run with a node group refused fails the invocation, so that it is
        # retried and, refused every time, ends in the dead-letter queue and the Errors alarm
        assert request.get("scheduled") and refused
        assert [item["nodegroup"] for item in unfinished.unfinished] == refused
    else:
        # THEN otherwise it answers as a dry run for each node group asked, refusing only what a
        # real run would refuse too
        assert not (request.get("scheduled") and refused)
        assert result["dry_run"] is True and "status" not in result
        names = [group["name"] for group in request["nodegroups"]]
        assert [item["nodegroup"] for item in result["results"]] == names
        for item in result["results"]:
            if item["nodegroup"] in refused:
                assert item["status"] == "error"
            else:
                assert item["status"] in DRY_RUN_ANSWERS
    # ... and no node group, state item or alert changed
    assert {name: sizes(member_eks, name) for name in NODE_GROUPS} == before_sizes
    assert _table_items() == before_items
    assert alert_inbox.receive() == []
