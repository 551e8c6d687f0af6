"""The scaler's scheduled run against its 120 s timeout when STS hangs: every member session
starts with AssumeRole.

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's read timeout
of the invocation's time, botocore's waits between attempts spend theirs, and once the time is up
the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scaler_helpers import (
    CLUSTER,
    MEMBER_ACCOUNT_ID,
    NODE_GROUPS,
    REGION,
    declared_spot_node_group,
    event,
    sizes,
)

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.sessions import HUB_ATTEMPTS, HUB_CALL_SECONDS, HUB_READ_TIMEOUT_SECONDS
from handlers.eks_scaler import app
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from handlers.eks_scaler.scaling import NODE_GROUP_SECONDS
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.deadlines import ContextRunningOutOfTime, HungOperation, LambdaTime

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["eks_scaler"].timeout_seconds
SCALE_DOWN = json.loads(
    (Path(__file__).parents[3] / "events/eks_scaler/scale_down_schedule.json").read_text()
)
NODE_GROUPS_OUTLASTING_THE_TIMEOUT = math.ceil(
    TIMEOUT_SECONDS / (HUB_ATTEMPTS * HUB_READ_TIMEOUT_SECONDS)
)
"""Enough node groups (12) that one hung AssumeRole each, its attempts spending their read
timeout, outlasts the scaler's timeout."""
EXTRA_NODE_GROUPS = [
    f"batch-{number:02d}" for number in range(NODE_GROUPS_OUTLASTING_THE_TIMEOUT - 2)
]
"""The cluster's node groups besides system and batch-spot."""


@pytest.fixture
def inventory_document(inventory_document: dict[str, Any]) -> dict[str, Any]:
    """The scaler tests' inventory, declaring the extra node groups too."""
    inventory_document["members"][0]["clusters"][0]["node_groups"].extend(
        declared_spot_node_group(name) for name in EXTRA_NODE_GROUPS
    )
    return inventory_document


def test_a_scheduled_run_through_a_hung_sts_fails_in_time_and_its_retry_scales_once(
    services: ScalerServices, member_eks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN STS does not answer AssumeRole, and the scheduled scale-down of a cluster with 12
    # node groups, with the function's whole timeout
    for name in EXTRA_NODE_GROUPS:
        member_eks.create_nodegroup(
            clusterName=CLUSTER,
            nodegroupName=name,
            nodeRole=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/eks-node",
            subnets=["subnet-1"],
            capacityType="SPOT",
            scalingConfig={"minSize": 0, "desiredSize": 2, "maxSize": 6},
        )
    scale_down = {
        **SCALE_DOWN,
        "nodegroups": [
            *SCALE_DOWN["nodegroups"],
            *({"name": name, "desired_size": 0} for name in EXTRA_NODE_GROUPS),
        ],
    }
    app.FUNCTION.use_services(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    sessions = services.sessions
    hub = sessions.session(sessions.hub_account_id, sessions.home_region)
    fault = HungOperation(time)
    hub.events.register_first("before-parameter-build.sts.AssumeRole", fault.note_config)
    hub.events.register_first("before-send.sts.AssumeRole", fault.hang)
    # WHEN the schedule invokes the scaler
    with pytest.raises(ScheduledRunUnfinishedError) as raised:
        app.lambda_handler(scale_down, time.context())
    # THEN the member's AssumeRole was given up once, after its bounded attempts, and every node
    # group failed at once on it: the run failed in time naming the account, so the schedule
    # retries it (Lambda did not end it)
    assert fault.attempts == HUB_ATTEMPTS
    assert time.spent <= HUB_CALL_SECONDS
    assert [item["status"] for item in raised.value.unfinished] == ["error"] * (
        NODE_GROUPS_OUTLASTING_THE_TIMEOUT
    )
    assert "cannot access account" in str(raised.value)
    # WHEN STS answers again and the schedule retries the run
    sts = sessions.hub_client("sts")
    sts.meta.events.unregister("before-send.sts.AssumeRole", fault.hang)
    assumed: list[str] = []
    sts.meta.events.register_first(
        "before-send.sts.AssumeRole", lambda **_: assumed.append("AssumeRole")
    )
    retried = app.lambda_handler(scale_down, FakeLambdaContext())
    # THEN the retry assumed the member role again, once, and scaled every node group down
    assert assumed == ["AssumeRole"]
    assert [item["status"] for item in retried["results"]] == ["scaling_initiated"] * (
        NODE_GROUPS_OUTLASTING_THE_TIMEOUT
    )
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert all(
        sizes(member_eks, name)["desired_size"] == 0 for name in ["batch-spot", *EXTRA_NODE_GROUPS]
    )


def test_a_node_group_starts_only_with_more_than_its_reserve_left_and_the_retry_does_the_rest(
    services: ScalerServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN a request scaling system, web and batch-spot down, in an invocation with 60 s left
    # until system's update, which leaves it exactly a node group's reserve (NODE_GROUP_SECONDS)
    app.FUNCTION.use_services(services)
    context = ContextRunningOutOfTime(millis_left=[60_000])

    def spend_the_time(**_: Any) -> None:
        context.millis_left[:] = [NODE_GROUP_SECONDS * 1000]

    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register("before-send.eks.UpdateNodegroupConfig", spend_the_time)
    request = {
        **event(
            "scale_down",
            {"name": "system", "desired_size": 1},
            {"name": "web", "desired_size": 2},
            {"name": "batch-spot", "desired_size": 1},
        ),
        "request_id": "evening-1",
    }
    # WHEN the scaler runs it
    result = app.lambda_handler(request, context)
    # THEN system is scaled, web and batch-spot are not started (nothing read or changed), and
    # the run is partial
    assert result["status"] == "partial"
    assert [item["status"] for item in result["results"]] == [
        "scaling_initiated",
        "not_started",
        "not_started",
    ]
    assert f"{NODE_GROUP_SECONDS} s of the invocation were left" in result["results"][1]["reason"]
    assert [sizes(member_eks, name)["desired_size"] for name in NODE_GROUPS] == [1, 3, 2]
    eks.meta.events.unregister("before-send.eks.UpdateNodegroupConfig", spend_the_time)
    # WHEN its retry comes with one second less than the reserve
    short = ContextRunningOutOfTime(millis_left=[(NODE_GROUP_SECONDS - 1) * 1000])
    starved = app.lambda_handler(request, short)
    # THEN no node group is started, and the request stays open
    assert starved["status"] == "partial"
    assert [item["status"] for item in starved["results"]] == ["not_started"] * 3
    assert [sizes(member_eks, name)["desired_size"] for name in NODE_GROUPS] == [1, 3, 2]
    # WHEN the next retry comes with one second more than the reserve for each node group
    enough = ContextRunningOutOfTime(millis_left=[(NODE_GROUP_SECONDS + 1) * 1000])
    retried = app.lambda_handler(request, enough)
    # THEN the retry leaves system as it is and scales the others
    assert "status" not in retried
    assert [item["status"] for item in retried["results"]] == [
        "no_change_needed",
        "scaling_initiated",
        "scaling_initiated",
    ]
    assert [sizes(member_eks, name)["desired_size"] for name in NODE_GROUPS] == [1, 2, 1]
