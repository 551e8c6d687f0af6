"""The hourly fleet run against Lambda's deadline: a cluster whose CloudWatch endpoint hangs costs
the run a bounded time, as does a hub service that hangs (the state table, SNS, the scaler's
Lambda), a cluster the run has no time left for is reported `not_started` and goes first in the
next run, so one hung cluster never costs the others their hour.

Time is simulated: the invocation's time left is its timeout less the time spent, a hung
GetMetricData attempt spends its client's read timeout, botocore's waits between attempts spend
theirs, and once the time is up the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from fleet_shared.clock import ManualClock
from fleet_shared.sessions import STATE_TABLE_ATTEMPTS
from fleet_shared.state_table import StateTable
from handlers.demand_forecaster import app
from handlers.demand_forecaster.services import ForecasterServices
from tests.handlers.analytics_accounts import member_session
from tests.handlers.analytics_services import inject_services
from tests.handlers.conftest import (
    DATA_BUCKET_NAME,
    HUB_ACCOUNT_ID,
    MEMBER_ACCOUNT_ID,
    REGION,
    FakeLambdaContext,
)
from tests.handlers.deadlines import LambdaTime
from tests.handlers.demand_forecaster.conftest import TIMEOUT_SECONDS
from tests.handlers.demand_forecaster.test_demand_forecaster_app import (
    create_cluster,
    demand,
    put_history,
)

HUNG = "dev-apps"
OTHERS = ("web-front", "batch-jobs")
FLEET_RUN = {"action": "forecast_fleet", "horizon_minutes": 180}


@dataclass
class HungEndpoint:
    """One operation's calls for one cluster go to an endpoint that accepts the connection and
    never answers: each attempt spends its client's read timeout and fails as botocore fails it."""

    cluster: str
    time: LambdaTime
    attempts: int = 0
    _config: Config | None = None

    def note_call(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self._config = context["client_config"] if self._names_the_cluster(params) else None

    def hang(self, request: Any, **_: Any) -> None:
        if self._config is None:
            return
        self.attempts += 1
        self.time.spend(self._config.read_timeout)
        raise ReadTimeoutError(endpoint_url=request.url)

    def _names_the_cluster(self, params: dict[str, Any]) -> bool:
        """Whether a DescribeNodegroup or GetMetricData call is for the cluster."""
        dimensions = [
            dimension
            for query in params.get("MetricDataQueries", [])
            for dimension in query["MetricStat"]["Metric"]["Dimensions"]
        ]
        return params.get("clusterName") == self.cluster or (
            {"Name": "ClusterName", "Value": self.cluster} in dimensions
        )


@pytest.fixture
def inventory_document(inventory_document: dict[str, Any]) -> dict[str, Any]:
    """The handlers' inventory with two more clusters after dev-apps in the member account."""
    clusters = inventory_document["members"][0]["clusters"]
    for name in OTHERS:
        clusters.append({**copy.deepcopy(clusters[0]), "name": name})
    return inventory_document


@pytest.fixture
def fleet(
    fleet_environment: dict[str, str],
    inventory_in_s3: dict[str, Any],
    fake_clock: ManualClock,
    state_table: StateTable,
    monkeypatch: pytest.MonkeyPatch,
) -> ManualClock:
    """The forecaster in moto on the fake clock, three clusters with two weeks of history each,
    the inventory in the order dev-apps, web-front, batch-jobs."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    inject_services(monkeypatch, app.FUNCTION, fake_clock, ForecasterServices)
    member = member_session(MEMBER_ACCOUNT_ID)
    for seed, name in enumerate((HUNG, *OTHERS), start=1):
        create_cluster(member, name)
        put_history(member, name, fake_clock, demand(seed))
    return fake_clock


def hang(
    cluster: str,
    time: LambdaTime,
    monkeypatch: pytest.MonkeyPatch,
    operation: str = "cloudwatch.GetMetricData",
) -> HungEndpoint:
    """Make `cluster`'s calls of `operation` (service id and name) hang in the forecaster's
    member session, and botocore's waits between attempts spend the invocation's time instead
    of the test's."""
    time.spend_botocore_waits(monkeypatch)
    fault = HungEndpoint(cluster, time)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register_first(f"before-parameter-build.{operation}", fault.note_call)
    session.events.register_first(f"before-send.{operation}", fault.hang)
    return fault


@dataclass
class SlowAnswers:
    """One cluster's DescribeNodegroup calls answered, each after `seconds` of the invocation's
    time: an endpoint slow to answer whose bytes come within the client's read timeout of each
    other, so that no attempt times out."""

    cluster: str
    time: LambdaTime
    seconds: float
    calls: int = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("clusterName") == self.cluster:
            self.calls += 1
            self.time.spend(self.seconds)


def saved_forecasts(state_table: StateTable) -> list[str]:
    """The clusters whose forecast the state table holds."""
    return [
        name
        for name in (HUNG, *OTHERS)
        if state_table.get_value(f"forecast/{MEMBER_ACCOUNT_ID}/{REGION}/{name}", "latest")
    ]


def test_a_cluster_whose_metric_reads_hang_does_not_cost_the_clusters_after_it_their_forecast(
    fleet: ManualClock, state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the first cluster's CloudWatch endpoint hangs, and a run with the whole 300 s
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang(HUNG, time, monkeypatch)
    # WHEN the hourly fleet run forecasts
    result = app.lambda_handler(FLEET_RUN, time.context())
    # THEN the hung cluster's reads were given up in well under a third of the run, it is
    # reported as failed, and the clusters after it are forecast and saved
    assert fault.attempts == 3
    assert time.spent < TIMEOUT_SECONDS / 3
    assert result["status"] == "partial"
    hung, *others = result["clusters"]
    assert (hung["cluster"], hung["status"]) == (HUNG, "error")
    assert "Read timeout" in hung["error"]
    assert [(c["cluster"], c["status"]) for c in others] == [(name, "ok") for name in OTHERS]
    assert saved_forecasts(state_table) == list(OTHERS)


def test_a_cluster_whose_node_groups_are_described_slowly_ends_in_time_for_the_others_turn(
    fleet: ManualClock, inventory_document: dict[str, Any], state_table: StateTable
) -> None:
    # GIVEN dev-apps with 21 node groups, EKS answering each DescribeNodegroup of it 15 s after
    # it is asked (no attempt times out: nothing fails), and a run with the whole 300 s
    [apps, *_] = inventory_document["members"][0]["clusters"]
    extra = [f"pool-{index:02d}" for index in range(20)]
    apps["node_groups"] += [{**apps["node_groups"][0], "name": name} for name in extra]
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode("utf-8"),
    )
    member = member_session(MEMBER_ACCOUNT_ID)
    eks = member.client("eks")
    for name in extra:
        eks.create_nodegroup(
            clusterName=HUNG,
            nodegroupName=name,
            scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 2},
            instanceTypes=["m7g.large"],
            nodeRole=f"arn:aws:iam::{MEMBER_ACCOUNT_ID}:role/node",
            subnets=["subnet-1"],
        )
    time = LambdaTime(TIMEOUT_SECONDS)
    slow = SlowAnswers(HUNG, time, 15.0)
    session = app.FUNCTION.services().sessions.session(MEMBER_ACCOUNT_ID, REGION)
    session.events.register_first("before-parameter-build.eks.DescribeNodegroup", slow)
    # WHEN the hourly fleet run forecasts
    result = app.lambda_handler(FLEET_RUN, time.context())
    # THEN it stopped describing dev-apps while the run still had the time a cluster starts
    # with, instead of describing all 21 past Lambda's deadline: dev-apps is an error saying
    # so, and the clusters after it are left for the next run, which starts with them
    assert slow.calls == 14
    assert time.spent < TIMEOUT_SECONDS
    hung, *others = result["clusters"]
    assert (hung["cluster"], hung["status"]) == (HUNG, "error")
    assert "node groups read cut short after 14 of 21" in hung["error"]
    assert [c["status"] for c in others] == ["not_started", "not_started"]
    assert [c["cluster"] for c in result["not_started"]] == list(OTHERS)


def test_clusters_the_run_has_no_time_left_for_are_not_started_and_go_first_in_the_next_run(
    fleet: ManualClock, state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the first cluster's CloudWatch endpoint hangs, and a run with 100 s left: time for
    # the hung cluster's bounded reads (about 30 s) but then not for another cluster's budget
    time = LambdaTime(100)
    hang(HUNG, time, monkeypatch)
    # WHEN the hourly fleet run forecasts
    first = app.lambda_handler(FLEET_RUN, time.context())
    # THEN the run ends in time and names the clusters it did not start, in inventory order
    assert first["status"] == "partial"
    assert [(c["cluster"], c["status"]) for c in first["clusters"]] == [
        (HUNG, "error"),
        *((name, "not_started") for name in OTHERS),
    ]
    assert first["not_started"] == [
        {"account_id": MEMBER_ACCOUNT_ID, "region": REGION, "cluster": name} for name in OTHERS
    ]
    assert saved_forecasts(state_table) == []
    # WHEN the next hour's run again has 100 s, and the endpoint still hangs
    fleet.advance(3600)
    time = LambdaTime(100)
    hang(HUNG, time, monkeypatch)
    second = app.lambda_handler(FLEET_RUN, time.context())
    # THEN it forecast the clusters left over first, and the hung one after them
    assert [(c["cluster"], c["status"]) for c in second["clusters"]] == [
        (HUNG, "error"),
        *((name, "ok") for name in OTHERS),
    ]
    assert "not_started" not in second
    assert saved_forecasts(state_table) == list(OTHERS)


def test_a_run_with_time_for_every_cluster_leaves_none_for_the_next(
    fleet: ManualClock, state_table: StateTable, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a run that left web-front and batch-jobs for the next one
    state_table.put_value(
        "demand_forecaster/forecast-fleet",
        "not_started",
        {
            "clusters": [
                {"account_id": MEMBER_ACCOUNT_ID, "region": REGION, "cluster": name}
                for name in OTHERS
            ]
        },
    )
    # WHEN the next run has time for every cluster
    result = app.lambda_handler(FLEET_RUN, lambda_context)
    # THEN every cluster is forecast, in inventory order, and none is left for the run after
    assert result["status"] == "ok", json.dumps(result)[:500]
    assert [c["cluster"] for c in result["clusters"]] == [HUNG, *OTHERS]
    assert state_table.get_value("demand_forecaster/forecast-fleet", "not_started") == {
        "clusters": []
    }


@dataclass
class ScalerRunningToItsTimeout:
    """The forecaster's Lambda client for the scaler, whose every invoke runs to the scaler's
    120 s timeout and comes back as Lambda answers a timed-out function."""

    time: LambdaTime
    asked: list[str] = field(default_factory=list)

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        self.asked.append(json.loads(Payload)["cluster"])
        self.time.spend(120)
        answer = {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 120 s"}
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": io.BytesIO(json.dumps(answer).encode("utf-8")),
        }


def all_clusters_predictive(
    inventory_document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Put every cluster of the inventory in predictive mode, in S3 as deployed, with the scaler
    the forecaster asks."""
    for cluster in inventory_document["members"][0]["clusters"]:
        cluster["scaling"] = {**cluster["scaling"], "mode": "predictive"}
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode("utf-8"),
    )
    monkeypatch.setenv("SCALER_FUNCTION_NAME", "lambda-fleet-handlers-eks_scaler")


def test_clusters_in_predictive_mode_start_only_with_time_for_the_scalers_answer_and_take_turns(
    fleet: ManualClock,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the three clusters in predictive mode and a scaler that runs to its 120 s timeout
    # on every request
    all_clusters_predictive(inventory_document, monkeypatch)
    asked_by_run: list[list[str]] = []
    not_started_by_run: list[list[str]] = []
    for _hour in range(3):
        time = LambdaTime(TIMEOUT_SECONDS)
        scaler = ScalerRunningToItsTimeout(time)
        scaler_client = property(lambda _services, client=scaler: client)
        monkeypatch.setattr(ForecasterServices, "scaler_client", scaler_client)
        # WHEN the hourly fleet run forecasts, each hour with the whole 300 s
        result = app.lambda_handler(FLEET_RUN, time.context())
        asked_by_run.append(scaler.asked)
        not_started_by_run.append([item["cluster"] for item in result.get("not_started", [])])
        fleet.advance(3600)
    # THEN each run ends in time: it asks the scaler for one cluster only (a second would not
    # have its 130 s read timeout left), and the clusters take turns, none left out twice
    assert asked_by_run == [[HUNG], [OTHERS[0]], [OTHERS[1]]]
    assert not_started_by_run == [list(OTHERS), [HUNG, OTHERS[1]], [HUNG, OTHERS[0]]]


def test_a_cluster_whose_eks_endpoint_hangs_costs_the_run_one_bounded_call(
    fleet: ManualClock,
    state_table: StateTable,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the first cluster, with two node groups, whose EKS endpoint hangs, and a run with
    # the whole 300 s
    clusters = inventory_document["members"][0]["clusters"]
    clusters[0]["node_groups"].append({**clusters[0]["node_groups"][0], "name": "workers"})
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET_NAME,
        Key="config/fleet-inventory.json",
        Body=json.dumps(inventory_document).encode("utf-8"),
    )
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang(HUNG, time, monkeypatch, operation="eks.DescribeNodegroup")
    # WHEN the hourly fleet run forecasts
    result = app.lambda_handler(FLEET_RUN, time.context())
    # THEN the hung cluster cost one DescribeNodegroup of three short attempts, not one per node
    # group, and is reported failed naming the timeout; the clusters after it are forecast and saved
    assert fault.attempts == 3
    assert time.spent < TIMEOUT_SECONDS / 3
    hung, *others = result["clusters"]
    assert (hung["cluster"], hung["status"]) == (HUNG, "error")
    assert "Read timeout" in hung["error"]
    assert [(c["cluster"], c["status"]) for c in others] == [(name, "ok") for name in OTHERS]
    assert saved_forecasts(state_table) == list(OTHERS)


@dataclass
class HungHubService:
    """Every call of one hub service goes to an endpoint that accepts the connection and never
    answers, until `healed`: each attempt spends its client's read timeout and fails as botocore
    fails it."""

    time: LambdaTime
    attempts: int = 0
    healed: bool = False
    _config: Config | None = None

    def note_call(self, context: dict[str, Any], **_: Any) -> None:
        self._config = context["client_config"]

    def hang(self, request: Any, **_: Any) -> None:
        if self.healed:
            return
        assert self._config is not None
        self.attempts += 1
        self.time.spend(self._config.read_timeout)
        raise ReadTimeoutError(endpoint_url=request.url)


def hang_hub(service: str, time: LambdaTime, monkeypatch: pytest.MonkeyPatch) -> HungHubService:
    """Make every call of `service` (its service id) in the forecaster's hub session hang, and
    botocore's waits between attempts spend the invocation's time instead of the test's."""
    time.spend_botocore_waits(monkeypatch)
    fault = HungHubService(time)
    session = app.FUNCTION.services().sessions.session(HUB_ACCOUNT_ID, REGION)
    session.events.register_first(f"before-parameter-build.{service}", fault.note_call)
    session.events.register_first(f"before-send.{service}", fault.hang)
    return fault


def test_a_state_table_that_never_answers_costs_the_run_one_bounded_call_and_it_ends_in_time(
    fleet: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the hub's state table endpoint never answers, and a run with the whole 300 s
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub("dynamodb", time, monkeypatch)
    # WHEN the hourly fleet run forecasts
    result = app.lambda_handler(FLEET_RUN, time.context())
    # THEN the run ends before Lambda's deadline with every cluster forecast: the state table
    # was given up after one call's short attempts, and each unsaved forecast says so
    assert time.spent < TIMEOUT_SECONDS / 3
    assert fault.attempts == STATE_TABLE_ATTEMPTS
    assert [(c["cluster"], c["status"]) for c in result["clusters"]] == [
        (name, "ok") for name in (HUNG, *OTHERS)
    ]
    for cluster in result["clusters"]:
        assert [error["error"][:8] for error in cluster["errors"]] == ["saving: "]


def test_a_state_table_that_did_not_answer_one_run_is_asked_again_by_the_next(
    fleet: ManualClock, state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run during which the hub's state table never answered
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub("dynamodb", time, monkeypatch)
    app.lambda_handler(FLEET_RUN, time.context())
    assert saved_forecasts(state_table) == []
    # WHEN the next hour's run finds it answering again, in the same container
    fault.healed = True
    fleet.advance(3600)
    result = app.lambda_handler(FLEET_RUN, LambdaTime(TIMEOUT_SECONDS).context())
    # THEN that run asks it again: every forecast is saved
    assert result["status"] == "ok", result
    assert saved_forecasts(state_table) == [HUNG, *OTHERS]


def test_an_sns_that_never_answers_costs_the_run_one_bounded_call_and_it_ends_in_time(
    fleet: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three clusters whose demand needs more than their 4 nodes (a capacity warning
    # each), SNS's endpoint never answering, and a run with the whole 300 s
    member = member_session(MEMBER_ACCOUNT_ID)
    for seed, name in enumerate((HUNG, *OTHERS), start=1):
        put_history(member, name, fleet, demand(seed, scale=1.0), nodes=4)
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub("sns", time, monkeypatch)
    # WHEN the hourly fleet run forecasts
    result = app.lambda_handler(FLEET_RUN, time.context())
    # THEN the run ends before Lambda's deadline with every cluster forecast: SNS was given up
    # after one publish's short attempts, and each lost warning is listed
    assert time.spent < TIMEOUT_SECONDS / 3
    assert fault.attempts == 2
    assert (result["status"], result["alerts"]) == ("ok", 0)
    for cluster in result["clusters"]:
        assert cluster["errors"] == [{"node_group": "system", "error": "alert not published"}]


def test_a_scaler_endpoint_that_never_answers_costs_the_run_one_read_of_its_answer(
    fleet: ManualClock,
    inventory_document: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the three clusters in predictive mode, the Lambda endpoint that would run the
    # scaler never answering, and a run with the whole 300 s
    all_clusters_predictive(inventory_document, monkeypatch)
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub("lambda", time, monkeypatch)
    # WHEN the hourly fleet run forecasts
    result = app.lambda_handler(FLEET_RUN, time.context())
    # THEN the run ends before Lambda's deadline: the scaler was asked once, its answer waited
    # for once, the decision failed naming the timeout, and the other clusters wait their turn
    assert fault.attempts == 1
    assert time.spent < TIMEOUT_SECONDS
    hung, *others = result["clusters"]
    assert hung["predictive"]["outcome"] == "scaler_asked"
    assert "Read timeout" in hung["predictive"]["node_groups"][0]["scaler_reason"]
    assert [c["status"] for c in others] == ["not_started", "not_started"]
