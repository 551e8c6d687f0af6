"""The scaler's calls in the member account when its endpoint hangs, against the 120 s timeout.

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's read timeout
of the invocation's time, botocore's waits between attempts spend theirs, and once the time is up
the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from scaler_helpers import (
    CLUSTER,
    MEMBER_ACCOUNT_ID,
    REGION,
    declared_spot_node_group,
    sizes,
)

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.node_group_locks import SAVED_SIZES_NAME, node_group_key
from fleet_shared.sessions import MEMBER_CALL_SECONDS
from fleet_shared.unanswered_endpoints import MEMBER_CALLS_GIVEN_UP_AFTER
from handlers.eks_scaler import app
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.deadlines import LambdaTime, draw_longest_botocore_waits
from tests.handlers.faults import ThrottledAtTheLastMoment

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["eks_scaler"].timeout_seconds
SCALE_DOWN = json.loads(
    (Path(__file__).parents[3] / "events/eks_scaler/scale_down_schedule.json").read_text()
)
ANALYZE = json.loads((Path(__file__).parents[3] / "events/eks_scaler/analyze.json").read_text())
EXTRA_NODE_GROUPS = [f"batch-{number:02d}" for number in range(10)]
"""With system and batch-spot, 12 node groups: one hung EKS call each (60 s) outlasts the
timeout many times over."""


@pytest.fixture
def inventory_document(inventory_document: dict[str, Any]) -> dict[str, Any]:
    """The scaler tests' inventory, declaring the extra node groups too."""
    inventory_document["members"][0]["clusters"][0]["node_groups"].extend(
        declared_spot_node_group(name) for name in EXTRA_NODE_GROUPS
    )
    return inventory_document


@dataclass
class HungEndpoint:
    """Every attempt of the calls whose URL contains `url_part` goes to an endpoint that accepts
    the connection and never answers: each spends the client's read timeout of the invocation's
    time and fails as botocore fails it; `healed` lets them through."""

    time: LambdaTime
    read_timeout: float
    url_part: str
    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        if self.healed or self.url_part not in request.url:
            return
        self.attempts += 1
        self.time.spend(self.read_timeout)
        raise ReadTimeoutError(endpoint_url=request.url)


def hang_member_endpoint(
    services: ScalerServices, time: LambdaTime, service: str, url_part: str = ""
) -> HungEndpoint:
    """Make the scaler's member client of `service` hang on every call whose URL contains
    `url_part`."""
    client = services.member_client(service, MEMBER_ACCOUNT_ID, REGION)
    fault = HungEndpoint(time, client.meta.config.read_timeout, url_part)
    client.meta.events.register_first(f"before-send.{service}", fault)
    return fault


def add_node_groups(member_eks: Any, names: list[str]) -> None:
    for name in names:
        member_eks.create_nodegroup(
            clusterName=CLUSTER,
            nodegroupName=name,
            nodeRole=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/eks-node",
            subnets=["subnet-1"],
            capacityType="SPOT",
            scalingConfig={"minSize": 0, "desiredSize": 2, "maxSize": 6},
        )


def test_a_node_group_whose_update_hangs_fails_alone_and_the_others_are_scaled_in_time(
    services: ScalerServices, member_eks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the scheduled scale-down of system, web and batch-spot, with the function's whole
    # timeout, and EKS never answering web's UpdateNodegroupConfig (every attempt)
    scale_down = {
        **SCALE_DOWN,
        "nodegroups": [
            {"name": "system", "desired_size": 1},
            {"name": "web", "desired_size": 2},
            {"name": "batch-spot", "desired_size": 0},
        ],
    }
    app.FUNCTION.use_services(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_endpoint(services, time, "eks", url_part="/node-groups/web/update-config")
    # WHEN the schedule invokes the scaler
    with pytest.raises(ScheduledRunUnfinishedError) as raised:
        app.lambda_handler(scale_down, time.context())
    # THEN web's update was given up after its bounded attempts and web alone failed, saying
    # why, while system and batch-spot were scaled; the run failed in time (Lambda did not end
    # it), so the schedule retries it
    assert fault.attempts > 1
    assert time.spent <= MEMBER_CALL_SECONDS
    [unfinished] = raised.value.unfinished
    assert unfinished["nodegroup"] == "web"
    assert unfinished["status"] == "error"
    assert "Read timeout" in unfinished["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert sizes(member_eks, "batch-spot")["desired_size"] == 0
    # WHEN EKS answers again and the schedule retries the run
    fault.healed = True
    retried = app.lambda_handler(scale_down, FakeLambdaContext())
    # THEN web is scaled down once, its day size saved for the morning's restore, and the others
    # are found at their target
    assert [item["status"] for item in retried["results"]] == [
        "no_change_needed",
        "scaling_initiated",
        "no_change_needed",
    ]
    assert sizes(member_eks, "web")["desired_size"] == 2
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert services.state.get_value(web_key, SAVED_SIZES_NAME)["sizes"]["desired_size"] == 3
    assert len(services.state.query_history(web_key, datetime(2000, 1, 1, tzinfo=UTC))) == 1


def test_node_groups_behind_a_hung_eks_endpoint_fail_at_once_after_two_and_the_retry_scales(
    services: ScalerServices, member_eks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the scheduled scale-down of 12 node groups with the function's whole timeout, and
    # the member's EKS endpoint answering no call
    add_node_groups(member_eks, EXTRA_NODE_GROUPS)
    scale_down = {
        **SCALE_DOWN,
        "nodegroups": [
            *SCALE_DOWN["nodegroups"],
            *({"name": name, "desired_size": 0} for name in EXTRA_NODE_GROUPS),
        ],
    }
    app.FUNCTION.use_services(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    fault = hang_member_endpoint(services, time, "eks")
    # WHEN the schedule invokes the scaler
    with pytest.raises(ScheduledRunUnfinishedError) as raised:
        app.lambda_handler(scale_down, time.context())
    # THEN the first two node groups each waited out one bounded call, and every later one
    # failed at once, naming the endpoint given up: the run failed in time for its retry
    assert time.spent <= MEMBER_CALLS_GIVEN_UP_AFTER * MEMBER_CALL_SECONDS
    reasons = [item["reason"] for item in raised.value.unfinished]
    assert [item["status"] for item in raised.value.unfinished] == ["error"] * 12
    assert all("Read timeout" in reason for reason in reasons[:MEMBER_CALLS_GIVEN_UP_AFTER])
    assert all(
        f"eks in account {MEMBER_ACCOUNT_ID} region {REGION} did not answer 2 calls" in reason
        for reason in reasons[MEMBER_CALLS_GIVEN_UP_AFTER:]
    )
    # WHEN EKS answers again and the schedule retries the run
    fault.healed = True
    retried = app.lambda_handler(scale_down, FakeLambdaContext())
    # THEN the retry asked EKS again and scaled every node group down
    assert [item["status"] for item in retried["results"]] == ["scaling_initiated"] * 12
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert all(
        sizes(member_eks, name)["desired_size"] == 0 for name in ["batch-spot", *EXTRA_NODE_GROUPS]
    )


def test_node_groups_behind_an_eks_throttling_each_call_to_its_bound_fail_at_once_after_two(
    services: ScalerServices, member_eks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the scheduled scale-down of 12 node groups with the function's whole timeout, the
    # member's EKS endpoint answering each attempt of every call with throttling as its timeouts
    # run out (each call spends its whole 17 s), and botocore's waits drawn at their longest
    add_node_groups(member_eks, EXTRA_NODE_GROUPS)
    scale_down = {
        **SCALE_DOWN,
        "nodegroups": [
            *SCALE_DOWN["nodegroups"],
            *({"name": name, "desired_size": 0} for name in EXTRA_NODE_GROUPS),
        ],
    }
    app.FUNCTION.use_services(services)
    draw_longest_botocore_waits(monkeypatch)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    config = eks.meta.config
    throttling = ThrottledAtTheLastMoment(time.spend, config.connect_timeout + config.read_timeout)
    eks.meta.events.register_first("before-send.eks", throttling)
    # WHEN the schedule invokes the scaler
    with pytest.raises(ScheduledRunUnfinishedError) as raised:
        app.lambda_handler(scale_down, time.context())
    # THEN the first two node groups each ran one call to its bound, which gave the endpoint up
    # as two unanswered calls do, and every later one failed at once naming it: the run failed
    # in time for its retry (12 such calls, 204 s, would have outlasted the 120 s timeout)
    assert time.spent == MEMBER_CALLS_GIVEN_UP_AFTER * MEMBER_CALL_SECONDS
    assert throttling.attempts == MEMBER_CALLS_GIVEN_UP_AFTER * 2
    reasons = [item["reason"] for item in raised.value.unfinished]
    assert [item["status"] for item in raised.value.unfinished] == ["error"] * 12
    assert all("ThrottlingException" in reason for reason in reasons)
    assert all(
        f"eks in account {MEMBER_ACCOUNT_ID} region {REGION} did not answer 2 calls" in reason
        for reason in reasons[MEMBER_CALLS_GIVEN_UP_AFTER:]
    )


def test_an_analysis_whose_member_endpoints_hang_answers_in_time(
    services: ScalerServices, member_eks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an analysis of 12 node groups with the function's whole timeout, and neither the
    # member's CloudWatch nor its EKS endpoint answering any call
    add_node_groups(member_eks, EXTRA_NODE_GROUPS)
    names = ["system", "web", "batch-spot", *EXTRA_NODE_GROUPS[:-1]]
    analysis_request = {**ANALYZE, "nodegroups": [{"name": name} for name in names]}
    app.FUNCTION.use_services(services)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    hang_member_endpoint(services, time, "cloudwatch")
    hang_member_endpoint(services, time, "eks")
    # WHEN the analysis is asked for
    analysis = app.lambda_handler(analysis_request, time.context())
    # THEN it answers in time (Lambda did not end it): the utilisation unavailable after one
    # bounded call, the first two node groups failed on their bounded call and the others at once
    assert time.spent <= (1 + MEMBER_CALLS_GIVEN_UP_AFTER) * MEMBER_CALL_SECONDS
    assert analysis["utilization"]["available"] is False
    assert "Read timeout" in analysis["utilization"]["reason"]
    reasons = [item["reason"] for item in analysis["results"]]
    assert [item["status"] for item in analysis["results"]] == ["error"] * 12
    assert all("Read timeout" in reason for reason in reasons[:MEMBER_CALLS_GIVEN_UP_AFTER])
    assert all("not asked again" in reason for reason in reasons[MEMBER_CALLS_GIVEN_UP_AFTER:])
