"""Bad events, configuration errors, the HTTP API and `analyze` (utilisation, forecaster) of the
scaler."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from scaler_helpers import (
    CLUSTER,
    MEMBER_ACCOUNT_ID,
    REGION,
    Scaler,
    event,
    member_session,
    sizes,
)

from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.http_api_alias import HTTP_API_ALIAS
from fleet_shared.node_group_locks import node_group_lock_name
from fleet_shared.state_table import StateTable
from fleet_shared.unanswered_endpoints import UnansweredEndpoints
from handlers.eks_scaler import app
from handlers.eks_scaler.app import callers_request_id, lambda_handler
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.faults import answer_the_same_page_token, fail_every_attempt

STACK_OWNED = "is owned by the stack file"

BAD_EVENTS: list[tuple[Any, str]] = [
    ([], "invalid event: event: expected a JSON object, got list"),
    ({**event("scale_up", {"name": "system"}), "action": "grow"}, "action"),
    (event("scale_down", {"name": "system", "desired_size": -1}), "nodegroups[0].desired_size"),
    # A flag where a size is meant is a mistake, never a size: pydantic would read it as 1.
    (
        event("scale_down", {"name": "system", "desired_size": True}),
        "nodegroups[0].desired_size: expected a number, got True (bool)",
    ),
    (
        event("predictive", {"name": "system", "desired_size": False}),
        "nodegroups[0].desired_size: expected a number, got False (bool)",
    ),
    (
        event("scale_up", {"name": "system", "min_size": 3, "desired_size": 3}),
        f"nodegroups[0].min_size: {STACK_OWNED}",
    ),
    (
        event("scale_up", {"name": "system", "desired_size": 3, "max_size": 1_000_000_000}),
        f"nodegroups[0].max_size: {STACK_OWNED}",
    ),
    (
        event("scale_down", {"name": "system", "min_size": 0}),
        f"nodegroups[0].min_size: {STACK_OWNED}",
    ),
    (event("scale_down", {"name": "system"}), "nodegroups[0]: scale_down needs"),
    (event("restore", {"name": "system", "desired_size": 2}), "nodegroups[0]: restore takes"),
    (
        event("scale_down", {"name": "system", "desired_size": 1}, save_sizes="no"),
        "save_sizes: must be true or false, got 'no'",
    ),
    (
        event("restore", {"name": "system"}, save_sizes=False),
        "save_sizes: only scale_down and scale_up take it, not restore",
    ),
    (event("scale_up"), "nodegroups: scale_up needs at least one node group"),
    (
        event("scale_up", *({"name": f"group-{index}"} for index in range(101))),
        "nodegroups: at most 100 node groups per request (a cluster's most), got 101",
    ),
    ({**event("scale_up", {"name": "system"}), "account_id": "12"}, "account_id"),
    ({**event("scale_up", {"name": "system"}), "extra": 1}, "extra"),
]


def test_bad_events_are_refused_naming_the_field_and_change_nothing(
    scaler: Scaler, member_eks: Any, state_table: StateTable
) -> None:
    # GIVEN malformed events (one moto setup for all: the setup dominates the test's time)
    for payload, message in BAD_EVENTS:
        # WHEN each is handled
        result = scaler(payload, "inv-1")
        # THEN the result is an error naming the field
        assert result == {"status": "error", "error": result["error"]}, payload
        assert message in result["error"], payload
    # AND nothing was changed or recorded
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert (
        state_table.latest_change(f"nodegroup/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/system")
        is None
    )


def http_event(body: str) -> dict[str, Any]:
    """An HTTP API (payload v2) request to POST /scale with IAM auth, as API Gateway sends it."""
    return {
        "version": "2.0",
        "routeKey": "POST /scale",
        "rawPath": "/scale",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:user/ops"}},
            "domainName": "a1b2c3d4e5.execute-api.ap-south-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": "POST",
                "path": "/scale",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "awscurl",
            },
            "requestId": "JKJaXmPLhcwEJ9Q=",
            "routeKey": "POST /scale",
            "stage": "$default",
            "time": "02/Jun/2025:04:15:00 +0000",
            "timeEpoch": 1748837700000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def lambda_context(lambda_context: Any) -> Any:
    """The Lambda context of an invocation through the function's http-api alias, as API Gateway
    makes them: this module's HTTP requests come so (the scaler tells an event not shaped as one
    by what it asks, not by the way it came)."""
    return dataclasses.replace(
        lambda_context,
        invoked_function_arn=f"{lambda_context.invoked_function_arn}:{HTTP_API_ALIAS}",
    )


def with_forecaster(services: ScalerServices, function_name: str) -> ScalerServices:
    """`services` whose FORECASTER_FUNCTION_NAME is `function_name`, put in place."""
    environment = services.environment.model_copy(
        update={"forecaster_function_name": function_name}
    )
    replaced = dataclasses.replace(services, environment=environment)
    app.FUNCTION.use_services(replaced)
    return replaced


@pytest.mark.usefixtures("fleet_environment")
def test_a_configuration_error_fails_the_invocation_for_a_schedule_and_an_http_request(
    monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    # GIVEN the scaler deployed without STATE_TABLE_NAME
    monkeypatch.delenv("STATE_TABLE_NAME")
    missing = r"^environment variable STATE_TABLE_NAME: is required but not set$"
    # WHEN a schedule event comes THEN the invocation fails naming the variable, so the
    # scheduler retries it and the Errors alarm fires
    with pytest.raises(ConfigurationError, match=missing):
        lambda_handler(event("scale_up", {"name": "system"}), lambda_context)
    # AND an HTTP request fails the same way: the function answers no response, so API Gateway
    # answers the caller its own 5xx error (the variable is named in the function's log)
    body = json.dumps(event("scale_up", {"name": "system", "desired_size": 3}))
    with pytest.raises(ConfigurationError, match=missing):
        lambda_handler(http_event(body), lambda_context)


def test_http_api_answers_400_200_and_409(
    member_eks: Any,
    state_table: StateTable,
    dynamodb_client: Any,
    lambda_context: Any,
    fleet_environment: Any,
) -> None:
    # GIVEN the deployed entry point WHEN the body is not JSON THEN 400 with the message
    bad = lambda_handler(http_event("{nope"), lambda_context)
    assert bad["statusCode"] == 400
    assert "body" in json.loads(bad["body"])["error"]
    # AND a body that sets max_size is refused naming the field and its owner
    sized = {"name": "system", "desired_size": 3, "max_size": 1_000_000_000}
    owned = lambda_handler(http_event(json.dumps(event("scale_up", sized))), lambda_context)
    assert owned["statusCode"] == 400
    assert f"nodegroups[0].max_size: {STACK_OWNED}" in json.loads(owned["body"])["error"]
    # AND a body naming thousands of node groups is refused before they are read, naming the
    # list, and a body past 64 KiB before it is decoded, naming the body
    many = event("scale_up", *({"name": f"ng-{index}"} for index in range(3000)), request_id="m")
    crowded = lambda_handler(http_event(json.dumps(many)), lambda_context)
    assert crowded["statusCode"] == 400
    assert "nodegroups: at most 100 node groups per request" in json.loads(crowded["body"])["error"]
    padded = {**event("scale_up", {"name": "system"}), "reason": "x" * 70_000}
    oversized = lambda_handler(http_event(json.dumps(padded)), lambda_context)
    assert oversized["statusCode"] == 400
    assert "body: is 70149 bytes or more; at most 65536" in json.loads(oversized["body"])["error"]
    assert (
        state_table.latest_change(f"nodegroup/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/system")
        is None
    )
    # WHEN a valid scale-down comes THEN 200 with the per-node-group result, and it is done
    body = json.dumps(
        event("scale_down", {"name": "batch-spot", "desired_size": 1}, request_id="ops-1")
    )
    ok = lambda_handler(http_event(body), lambda_context)
    assert ok["statusCode"] == 200
    assert json.loads(ok["body"])["results"][0]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1
    # WHEN every requested node group is locked by someone else THEN 409
    # (the entry point runs on the real clock, so the lease is taken on it too)
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    real_time_table = StateTable(
        state_table.table_name, dynamodb_client, unanswered=UnansweredEndpoints()
    )
    assert real_time_table.acquire_lock(lock, "spot_optimizer:x", 120)
    scale_up = event("scale_up", {"name": "system", "desired_size": 3}, request_id="ops-2")
    locked = lambda_handler(http_event(json.dumps(scale_up)), lambda_context)
    assert locked["statusCode"] == 409
    assert sizes(member_eks, "system")["desired_size"] == 2


def test_an_http_change_needs_its_callers_request_id_and_its_retry_is_not_made_twice(
    member_eks: Any,
    state_table: StateTable,
    dynamodb_client: Any,
    lambda_context: Any,
    fleet_environment: Any,
) -> None:
    # GIVEN the deployed entry point
    scale_down = event("scale_down", {"name": "batch-spot", "desired_size": 1})
    # WHEN a scale-down comes over HTTP without request_id
    missing = lambda_handler(http_event(json.dumps(scale_down)), lambda_context)
    # THEN 400 naming request_id, and nothing was changed or recorded
    assert missing["statusCode"] == 400
    assert json.loads(missing["body"])["error"].startswith(
        "invalid event: request_id: is required over HTTP"
    )
    assert sizes(member_eks, "batch-spot")["desired_size"] == 2
    key = f"nodegroup/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/batch-spot"
    assert state_table.latest_change(key) is None
    # WHEN it comes with the caller's request_id, and again with the same id (a retry after
    # API Gateway gave up waiting: another HTTP request, another API Gateway request id)
    body = json.dumps({**scale_down, "request_id": "ticket-7"})
    first = lambda_handler(http_event(body), lambda_context)
    retry = http_event(body)
    retry["requestContext"]["requestId"] = "KLMbYnQMidxFK0R="
    again = lambda_handler(retry, lambda_context)
    # THEN the first is made and recorded under the caller's id, and the retry is answered with
    # its result, changing nothing
    assert first["statusCode"] == again["statusCode"] == 200
    assert json.loads(first["body"])["results"][0]["status"] == "scaling_initiated"
    assert json.loads(again["body"])["repeated_request"] is True
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1
    ops = callers_request_id("ticket-7", "arn:aws:iam::123456789012:user/ops")
    assert ops.startswith("http-") and ops.endswith("-ticket-7")
    assert [change.record["request_id"] for change in state_table.changes_newest_first(key)] == [
        ops
    ]
    # WHEN another caller sends its own ticket-7, asking something else
    scale_up = event("scale_up", {"name": "batch-spot", "desired_size": 3}, request_id="ticket-7")
    others = http_event(json.dumps(scale_up))
    others["requestContext"]["authorizer"]["iam"]["userArn"] = "arn:aws:iam::123456789012:user/dev"
    theirs = lambda_handler(others, lambda_context)
    # THEN it is that caller's own request, made: neither answered with the first caller's
    # result nor refused as a reuse of its id
    assert theirs["statusCode"] == 200
    assert "repeated_request" not in json.loads(theirs["body"])
    assert json.loads(theirs["body"])["results"][0]["status"] == "scaling_initiated"
    assert sizes(member_eks, "batch-spot")["desired_size"] == 3
    dev = callers_request_id("ticket-7", "arn:aws:iam::123456789012:user/dev")
    assert [change.record["request_id"] for change in state_table.changes_newest_first(key)] == [
        dev,
        ops,
    ]
    # WHEN an id was answered before ids were scoped (kept as http-ticket-8), and is sent again
    real_time_table = StateTable(
        state_table.table_name, dynamodb_client, unanswered=UnansweredEndpoints()
    )
    unscoped = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/http-ticket-8"
    with real_time_table.idempotent("eks_scaler", unscoped, 3600) as earlier:
        earlier.complete({"status": "answered before the upgrade"})
    same = {**scale_up, "request_id": "ticket-8"}
    after_upgrade = json.loads(lambda_handler(http_event(json.dumps(same)), lambda_context)["body"])
    # THEN the unscoped record is no one's: the request is judged afresh (the node group is at
    # its size already), not answered with that record
    assert "repeated_request" not in after_upgrade
    assert after_upgrade["results"][0]["status"] == "no_change_needed"
    # AND analyze, which changes nothing, needs no request_id
    analyze = event("analyze", {"name": "batch-spot"})
    assert lambda_handler(http_event(json.dumps(analyze)), lambda_context)["statusCode"] == 200


def test_schedule_event_through_the_entry_point_returns_the_result(
    member_eks: Any, state_table: StateTable, lambda_context: Any, fleet_environment: Any
) -> None:
    # GIVEN the evening schedule's payload WHEN the deployed entry point gets it
    payload = event(
        "scale_down", {"name": "system", "desired_size": 1}, request_id="arn:aws:scheduler:exec/1"
    )
    result = lambda_handler(payload, lambda_context)
    # THEN the result follows the documented shape
    assert set(result) == {"action", "account_id", "region", "cluster", "dry_run", "results"}
    assert set(result["results"][0]) >= {"nodegroup", "status", "previous", "new", "reason"}
    assert sizes(member_eks, "system")["desired_size"] == 1


def put_utilisation(clock: ManualClock, cpu: float, memory: float) -> None:
    """Container Insights cluster-level node metrics in the member account for the last hour."""
    cloudwatch = member_session().client("cloudwatch")
    for minutes in range(5, 60, 5):
        at = clock.now() - timedelta(minutes=minutes)
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "ClusterName", "Value": CLUSTER}],
                    "Timestamp": at,
                    "Value": value,
                    "Unit": "Percent",
                }
                for name, value in (
                    ("node_cpu_utilization", cpu),
                    ("node_memory_utilization", memory),
                )
            ],
        )


def test_analyze_recommends_from_utilisation_and_changes_nothing(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock, state_table: StateTable
) -> None:
    # GIVEN a busy cluster (CPU 85%), no forecaster configured, and besides the node groups the
    # stack file declares one, `foreign`, that it does not
    put_utilisation(fake_clock, cpu=85.0, memory=40.0)
    member_eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName="foreign",
        nodeRole=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/eks-node",
        subnets=["subnet-1"],
        scalingConfig={"minSize": 1, "desiredSize": 2, "maxSize": 4},
    )
    # WHEN analyze is asked for every node group
    result = scaler(event("analyze"), "inv-1")
    # THEN utilisation is reported, the forecast is said unavailable, one more node recommended
    assert result["utilization"]["cpu"]["average"] == 85.0
    assert result["forecast"]["available"] is False
    assert "forecast unavailable" in result["forecast"]["reason"]
    by_group = {item["nodegroup"]: item for item in result["results"]}
    assert set(by_group) == {"system", "web", "batch-spot", "foreign"}
    assert by_group["system"]["recommended_action"] == "scale_up"
    assert by_group["system"]["new"]["desired_size"] == 3
    assert "85.0% is above 75.0%" in by_group["system"]["reason"]
    # AND foreign is analysed too, said not declared, which the scaler would refuse to change
    assert [name for name, item in by_group.items() if not item["declared"]] == ["foreign"]
    assert by_group["foreign"]["reason"].endswith(
        f"node group foreign is not declared in the stack file for cluster {CLUSTER} "
        f"({MEMBER_ACCOUNT_ID}, {REGION}); the scaler changes declared node groups only"
    )
    # AND nothing changed
    assert sizes(member_eks, "system")["desired_size"] == 2


def test_analyze_reports_utilisation_unavailable_when_cloudwatch_repeats_a_page_token(
    scaler: Scaler, services: ScalerServices, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a busy cluster whose CloudWatch answers the same NextToken on every page
    put_utilisation(fake_clock, cpu=85.0, memory=40.0)
    cloudwatch = services.member_client("cloudwatch", MEMBER_ACCOUNT_ID, REGION)
    repeated = answer_the_same_page_token(cloudwatch, "GetMetricData", "NextToken")
    # WHEN analyze is asked for every node group
    result = scaler(event("analyze"), "inv-1")
    # THEN the read stops at the first repeat and utilisation is said unavailable, naming it
    assert repeated.pages == 2
    assert result["utilization"]["available"] is False
    assert "GetMetricData answered the NextToken 'page-2' again" in result["utilization"]["reason"]
    # AND every node group is still analysed, and nothing changed
    assert {item["nodegroup"] for item in result["results"]} == {"system", "web", "batch-spot"}
    assert sizes(member_eks, "system")["desired_size"] == 2


class OneCpuAverageAnsweredAs:
    """Answers the newest value of the `cpu_average` series of the member's GetMetricData as
    `value` (what CloudWatch's CBOR answer can carry, and moto's store cannot)."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.replaced = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Id"] == "cpu_average" and result["Values"]:
                result["Values"][-1] = self.value
                self.replaced += 1


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_analyze_leaves_a_utilisation_that_is_not_a_number_out_and_names_it(
    scaler: Scaler, services: ScalerServices, member_eks: Any, fake_clock: ManualClock, value: float
) -> None:
    # GIVEN a quiet cluster (CPU 20%, memory 20%) whose CloudWatch answers its newest CPU
    # average as `value`
    put_utilisation(fake_clock, cpu=20.0, memory=20.0)
    cloudwatch = services.member_client("cloudwatch", MEMBER_ACCOUNT_ID, REGION)
    answered_as = OneCpuAverageAnsweredAs(value)
    cloudwatch.meta.events.register("after-call.cloudwatch.GetMetricData", answered_as)
    # WHEN analyze is asked for every node group
    result = scaler(event("analyze"), "inv-1")
    # THEN the value is left out of the average and named
    assert answered_as.replaced == 1
    assert result["utilization"]["cpu"]["average"] == 20.0
    [left_out] = result["utilization"]["left_out"]
    assert left_out.startswith(f"cpu_average: 1 value left out, not a number within +-2**360 "
                               f"(CloudWatch's limit); the first {value!r} at ")  # fmt: skip
    # AND the recommendation follows the measured utilisation: one node less
    by_group = {item["nodegroup"]: item for item in result["results"]}
    assert by_group["web"]["recommended_action"] == "scale_down"
    assert "utilisation 20.0% is below 30.0%" in by_group["web"]["reason"]


def test_analyze_uses_the_forecasters_recommendation_when_it_answers(
    scaler: Scaler, services: ScalerServices, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a forecaster that recommends 4 nodes for web (moto cannot run Lambda code, so this
    # one call is stubbed; the request it must receive is asserted by the stubber)
    put_utilisation(fake_clock, cpu=50.0, memory=50.0)
    client = with_forecaster(services, "lambda-fleet-demand-forecaster").forecaster_client
    answer = {"recommendation": [{"name": "web", "desired_size": 4, "reason": "peak"}]}
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())},
            {
                "FunctionName": "lambda-fleet-demand-forecaster",
                "InvocationType": "RequestResponse",
                "Payload": json.dumps(
                    {
                        "action": "forecast",
                        "account_id": MEMBER_ACCOUNT_ID,
                        "region": REGION,
                        "cluster": CLUSTER,
                        "horizon_minutes": 60,
                    }
                ).encode(),
            },
        )
        result = scaler(event("analyze", {"name": "web"}, {"name": "system"}), "inv-1")
    # THEN web follows the forecast, system (not named by it) the utilisation band
    by_group = {item["nodegroup"]: item for item in result["results"]}
    assert result["forecast"]["available"] is True
    assert by_group["web"]["new"]["desired_size"] == 4
    assert by_group["web"]["reason"].startswith("forecast: peak")
    assert by_group["system"]["recommended_action"] == "none"


def test_analyze_survives_a_forecaster_that_does_not_exist(
    scaler: Scaler, services: ScalerServices, member_eks: Any
) -> None:
    # GIVEN FORECASTER_FUNCTION_NAME names a function that is not deployed (moto: not found)
    with_forecaster(services, "missing-forecaster")
    # WHEN analyze runs with no metrics either
    result = scaler(event("analyze", {"name": "system"}), "inv-1")
    # THEN it still answers: forecast unavailable, no Container Insights data, no recommendation
    assert result["forecast"]["available"] is False
    assert "Function not found" in result["forecast"]["reason"]
    assert result["utilization"]["available"] is False
    assert result["results"][0]["recommended_action"] == "none"
    assert result["results"][0]["status"] == "no_change_needed"


def test_post_scale_far_above_max_size_never_leaves_the_node_group_above_it(
    member_eks: Any, state_table: StateTable, lambda_context: Any, fleet_environment: Any
) -> None:
    # GIVEN system with max_size 4 in the stack file (inventory) and in EKS
    # WHEN an IAM caller posts a billion nodes to POST /scale
    billion = {"name": "system", "desired_size": 1_000_000_000}
    body = json.dumps(event("scale_up", billion, request_id="ops-3"))
    answer = lambda_handler(http_event(body), lambda_context)
    # THEN the request is done within max_size, saying why, and min/max are unchanged
    assert answer["statusCode"] == 200
    item = json.loads(answer["body"])["results"][0]
    assert item["status"] == "scaling_initiated"
    assert "desired_size 1000000000 clamped to max_size 4" in item["reason"]
    assert sizes(member_eks, "system") == {"min_size": 1, "desired_size": 4, "max_size": 4}
    # AND the change history names the caller
    change = state_table.latest_change(f"nodegroup/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/system")
    assert change is not None
    assert change.record["requested_by"] == "arn:aws:iam::123456789012:user/ops"


def test_analyze_asks_a_forecaster_that_cannot_be_reached_once(
    scaler: Scaler, services: ScalerServices, member_eks: Any
) -> None:
    # GIVEN a forecaster whose every Invoke fails to connect
    client = with_forecaster(services, "lambda-fleet-demand-forecaster").forecaster_client
    fault = fail_every_attempt(client, "lambda", "Invoke")
    # WHEN analyze runs
    result = scaler(event("analyze", {"name": "system"}), "inv-1")
    # THEN the forecast is unavailable after one attempt: a slow forecaster must not hold the
    # scaler through botocore's retries
    assert result["forecast"]["available"] is False
    assert fault.attempts == 1


def test_a_request_shaped_as_http_is_believed_only_through_the_apis_alias(
    member_eks: Any, state_table: StateTable, lambda_context: Any, fleet_environment: Any
) -> None:
    # GIVEN a scale-down shaped as an HTTP API request, naming an IAM caller
    body = json.dumps(
        event("scale_down", {"name": "batch-spot", "desired_size": 1}, request_id="ops-9")
    )
    forged = http_event(body)
    forged["requestContext"]["authorizer"]["iam"]["userArn"] = "arn:aws:iam::123456789012:user/x"
    # WHEN someone allowed lambda:InvokeFunction invokes the function's own ARN with it
    function_arn = lambda_context.invoked_function_arn.rsplit(":", 1)[0]
    direct = dataclasses.replace(lambda_context, invoked_function_arn=function_arn)
    refused = lambda_handler(forged, direct)
    # THEN it is refused naming requestContext: the caller it names is only text in the event
    assert refused["statusCode"] == 400
    assert json.loads(refused["body"])["error"].startswith(
        "invalid event: requestContext: is an HTTP API request's, but the invocation did not come "
        "through the API (alias http-api)"
    )
    # AND through the alias (API Gateway's way in), a request naming no IAM caller is refused
    anonymous = http_event(body)
    anonymous["requestContext"]["authorizer"] = None
    unnamed = lambda_handler(anonymous, lambda_context)
    assert unnamed["statusCode"] == 400
    assert (
        "requestContext.authorizer.iam.userArn: is missing" in json.loads(unnamed["body"])["error"]
    )
    # AND nothing was changed or recorded
    assert sizes(member_eks, "batch-spot")["desired_size"] == 2
    key = f"nodegroup/{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/batch-spot"
    assert state_table.latest_change(key) is None
