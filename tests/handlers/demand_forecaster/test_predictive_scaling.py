"""Predictive mode end to end: the hourly forecast_fleet run asks eks_scaler for the next hour's
sizes (both handlers' `lambda_handler`s, moto, the manual clock), or leaves the schedule in
charge and says why; every decision is recorded and shown by the scaler's `analyze`."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.eks.models import eks_backends

from catalog.functions import function_spec
from catalog.model import FixedSchedule
from fleet_shared.clock import ManualClock
from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.inventory import ClusterScaling
from fleet_shared.node_group_locks import node_group_lock_name
from fleet_shared.predictive_decisions import (
    KEPT_DECISIONS,
    decisions_key,
    recent_decisions,
    record_decision,
)
from fleet_shared.timestamps import iso_z
from fleetctl.schedule_replay import scheduler_input
from handlers.demand_forecaster import app as forecaster_app
from handlers.demand_forecaster.asked_sizes import asked_value_name, first_asked
from handlers.demand_forecaster.cluster_forecasts import predictive_failure
from handlers.demand_forecaster.forecast import NoHistoryError
from handlers.demand_forecaster.predictive_request import nodes_for_demand, scale_predictively
from handlers.demand_forecaster.services import ForecasterServices
from handlers.eks_scaler import app as scaler_app
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.analytics_accounts import member_session
from tests.handlers.analytics_services import inject_services
from tests.handlers.conftest import MEMBER_ACCOUNT_ID, REGION, STATE_TABLE_NAME
from tests.handlers.demand_forecaster.conftest import ForecasterLambdaContext
from tests.handlers.demand_forecaster.test_demand_forecaster_app import (
    create_cluster,
    demand,
    put_history,
)
from tests.handlers.faults import throttle_attempts
from tests.handlers.unreadable_state_entries import unreadable_value

CLUSTER = "dev-apps"
KEY = decisions_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER)
FLEET_RUN = {"action": "forecast_fleet", "horizon_minutes": 180}


class ScalerThroughItsHandler:
    """The forecaster's Lambda client for the scaler: the invoke runs the scaler's own
    `lambda_handler` in process, as Lambda would run it; for a cluster in `answers`, the
    function answers that instead (a scaler of another version, or not the scaler)."""

    def __init__(self, lambda_context: Any) -> None:
        self.lambda_context = lambda_context
        self.payloads: list[dict[str, Any]] = []
        self.answers: dict[str, Any] = {}

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        payload = json.loads(Payload)
        self.payloads.append(payload)
        answer = self.answers.get(payload["cluster"])
        if answer is None:
            answer = scaler_app.lambda_handler(payload, self.lambda_context)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode("utf-8"))}


@pytest.fixture
def threshold() -> float:
    """The cluster's confidence threshold; a test parametrizes it."""
    return 0.3


@pytest.fixture
def inventory_document(inventory_document: dict[str, Any], threshold: float) -> dict[str, Any]:
    """The handlers' inventory (system at 1/2/4 in working hours) in predictive mode, with the
    fleet's dry run off."""
    inventory_document["dry_run"] = False
    cluster = inventory_document["members"][0]["clusters"][0]
    cluster["scaling"] = {**cluster["scaling"], "mode": "predictive",
                          "confidence_threshold": threshold}  # fmt: skip
    return inventory_document


@pytest.fixture
def scaler_client(
    *,
    fleet_environment: dict[str, str],
    inventory_in_s3: dict[str, Any],
    state_table: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> ScalerThroughItsHandler:
    """Both functions on the fake clock in moto, the forecaster reaching the scaler's handler."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("SCALER_FUNCTION_NAME", "lambda-fleet-handlers-eks_scaler")
    inject_services(monkeypatch, forecaster_app.FUNCTION, fake_clock, ForecasterServices)
    inject_services(monkeypatch, scaler_app.FUNCTION, fake_clock, ScalerServices)
    client = ScalerThroughItsHandler(lambda_context)
    monkeypatch.setattr(ForecasterServices, "scaler_client", property(lambda _self: client))
    create_cluster(member_session(MEMBER_ACCOUNT_ID), CLUSTER)
    return client


def put_cpu_demand(clock: ManualClock, values: np.ndarray) -> None:
    """Container Insights history of the cluster in the member account carrying `values` vCPU."""
    put_history(member_session(MEMBER_ACCOUNT_ID), CLUSTER, clock, values)


def run_fleet_forecast() -> dict[str, Any]:
    """The forecaster's result for the hourly fleet run (the `lambda_context` fixture's context)."""
    result: dict[str, Any] = forecaster_app.lambda_handler(FLEET_RUN, ForecasterLambdaContext())
    return result


def scaler_analysis() -> dict[str, Any]:
    """The scaler's `analyze` of the cluster."""
    event = {
        "action": "analyze",
        "account_id": MEMBER_ACCOUNT_ID,
        "region": REGION,
        "cluster": CLUSTER,
    }
    result: dict[str, Any] = scaler_app.lambda_handler(event, ForecasterLambdaContext())
    return result


def _desired_size() -> int:
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    group = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName="system")["nodegroup"]
    return int(group["scalingConfig"]["desiredSize"])


def test_a_confident_forecast_resizes_the_node_group_through_the_scaler(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    alert_inbox: Any,
) -> None:
    # GIVEN two weeks of 6-9.6 vCPU demand on system's 2 nodes of 2 vCPU (max_size 4)
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN the scaler was asked once, with the hour's request id, for the p90-based count
    [cluster] = result["clusters"]
    [payload] = scaler_client.payloads
    assert payload["action"] == "predictive"
    assert payload["request_id"] == "predictive-2025-06-02T03"
    [decision] = recent_decisions(state_table, KEY)
    [group] = decision["node_groups"]
    assert payload["nodegroups"] == [{"name": "system", "desired_size": group["nodes_wanted"]}]
    # AND the node group grew by max_step (2), up to max_size 4, through the usual path
    assert group["nodes_wanted"] > 4
    assert group["scaler_status"] == "scaling_initiated"
    assert _desired_size() == 4
    assert cluster["predictive"]["outcome"] == "scaler_asked"
    # (the info notice of the change, beside the forecaster's shortfall warning)
    assert "info" in [alert.alert["severity"] for alert in alert_inbox.receive()]
    # AND the decision has the forecast of the hour, its interval, the confidence and capacity
    assert decision["forecast"]["lower_vcpu"] <= decision["forecast"]["demand_vcpu"]
    assert decision["forecast"]["demand_vcpu"] <= decision["forecast"]["p90_vcpu"]
    hour = (decision["forecast"]["start"], decision["forecast"]["end"])
    assert hour == ("2025-06-02T03:30:00Z", "2025-06-02T04:30:00Z")
    assert decision["confidence"] >= 0.3
    assert group["allocatable_vcpu_per_node"] == pytest.approx(1.805)
    assert group["memory_mib_per_node"] > 0
    # AND the scaler's analyze shows it
    analysis = scaler_analysis()
    assert analysis["predictive_decisions"][0]["reason"] == decision["reason"]
    # AND a repeat of the same hour is not applied twice
    run_fleet_forecast()
    assert recent_decisions(state_table, KEY)[0]["node_groups"][0]["desired_size"] == 4
    assert "info" not in [alert.alert["severity"] for alert in alert_inbox.receive()]


@pytest.mark.parametrize("run", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_run_past_the_calendars_ends_in_utc_is_refused_naming_it_before_any_work(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    run: str,
) -> None:
    # GIVEN a confident forecast the scaler would be asked for, and a fleet run whose `run` has
    # an offset that carries it past the years 1-9999 once in UTC, where its hour names the
    # scaler's request
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    # WHEN the run arrives
    result = forecaster_app.lambda_handler(
        {"action": "forecast_fleet", "run": run}, ForecasterLambdaContext()
    )
    # THEN it is refused naming the field, and nothing is asked, decided or resized
    assert result["status"] == "error"
    assert result["error"].startswith(f"invalid event: run: {run!r} is outside the years 1-9999")
    assert scaler_client.payloads == []
    assert recent_decisions(state_table, KEY) == []
    assert _desired_size() == 2


def scheduled_fleet_run(scheduled_at: datetime, attempt: int) -> dict[str, Any]:
    """The forecaster's hourly schedule payload as the catalog declares it, as Scheduler
    delivers one attempt of the run scheduled for `scheduled_at`."""
    [schedule] = [
        t for t in function_spec("demand_forecaster").triggers if isinstance(t, FixedSchedule)
    ]
    return scheduler_input(
        schedule.payload,
        scheduled_at=scheduled_at,
        execution_id=f"forecast-attempt-{attempt}",
        attempt=attempt,
    )


def test_a_retried_hourly_run_asks_the_scaler_under_its_own_request_id_not_the_next_hours(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    lambda_context: Any,
    alert_inbox: Any,
) -> None:
    # GIVEN the run scheduled for 03:58 that asked the scaler for the next hour's size (system
    # raised to 4) but whose answer was lost
    scheduled_at = datetime(2025, 6, 2, 3, 58, tzinfo=UTC)
    fake_clock.set(scheduled_at)
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    forecaster_app.lambda_handler(scheduled_fleet_run(scheduled_at, attempt=1), lambda_context)
    assert _desired_size() == 4
    alert_inbox.receive()
    # WHEN Scheduler retries that run at 04:02, in the next hour
    fake_clock.set(scheduled_at + timedelta(minutes=4))
    forecaster_app.lambda_handler(scheduled_fleet_run(scheduled_at, attempt=2), lambda_context)
    # AND the next run, scheduled for 04:58, follows
    fake_clock.set(scheduled_at + timedelta(hours=1))
    forecaster_app.lambda_handler(
        scheduled_fleet_run(scheduled_at + timedelta(hours=1), attempt=1), lambda_context
    )
    # THEN the retry asked under the run's request id, so the scaler answered it as a repeat
    # and announced nothing again, and the next run asked under an id of its own
    first, retry, next_run = (payload["request_id"] for payload in scaler_client.payloads)
    assert retry == first == "predictive-2025-06-02T03"
    assert next_run == "predictive-2025-06-02T04"
    assert "info" not in [alert.alert["severity"] for alert in alert_inbox.receive()]


def test_analyze_says_the_decisions_are_unknown_when_the_state_table_cannot_be_read(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock
) -> None:
    # GIVEN a recorded predictive decision, and every attempt to read the decisions failing to
    # connect
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    run_fleet_forecast()

    def fail_decision_reads(request: Any, **_: Any) -> None:
        if b"predictive/" in (request.body or b""):
            raise EndpointConnectionError(endpoint_url=request.url)

    dynamodb = scaler_app.FUNCTION.services().hub_client("dynamodb")
    dynamodb.meta.events.register_first("before-send.dynamodb.GetItem", fail_decision_reads)
    # WHEN the scaler analyses the cluster
    analysis = scaler_analysis()
    # THEN the analysis is still given, and it says the decisions could not be read rather than
    # showing none
    assert analysis["results"][0]["nodegroup"] == "system"
    assert analysis["predictive_decisions"] is None
    assert "Could not connect" in analysis["predictive_decisions_unavailable"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param("{\"secret", "its data is not JSON", id="no-json"),
        pytest.param('{"note": "secret"}', "`decisions` is not a list of objects", id="no-list"),
        pytest.param('{"decisions": ["secret"]}', "`decisions` is not a list of objects",
                     id="a-list-of-text"),
    ],
)  # fmt: skip
def test_a_decisions_record_no_one_can_read_is_named_and_the_decision_still_acts(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    dynamodb_client: Any,
    data: str,
    problem: str,
) -> None:
    # GIVEN the cluster's record of predictive decisions left unreadable by a hand edit
    dynamodb_client.put_item(
        TableName=STATE_TABLE_NAME, Item=unreadable_value(KEY, "decisions", {"S": data})
    )
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    # WHEN the hourly fleet forecast runs, then the scaler analyses the cluster
    result = run_fleet_forecast()
    analysis = scaler_analysis()
    # THEN the decision was made and acted on, and says that it was not recorded and why; the
    # record is named, never its data, and left as it is
    [cluster] = result["clusters"]
    assert cluster["predictive"]["outcome"] == "scaler_asked"
    assert _desired_size() == 4
    expected = f"saved value decisions of {KEY}: {problem}"
    assert cluster["predictive"]["not_recorded"] == f"decision not recorded: {expected}"
    # AND the analysis is still given, saying the decisions cannot be read rather than none
    assert analysis["results"][0]["nodegroup"] == "system"
    assert analysis["predictive_decisions"] is None
    assert analysis["predictive_decisions_unavailable"] == (
        f"predictive decisions unavailable: {expected}"
    )
    assert "secret" not in json.dumps([result, analysis])


def test_two_decisions_recorded_at_once_are_both_kept(
    state_table: Any, dynamodb_client: Any
) -> None:
    # GIVEN a kept decision, and a second copy of the run recording its decision between this
    # copy's read of the kept decisions and its write
    record_decision(state_table, KEY, {"hour": "02", "outcome": "schedule_kept"})
    interleaved: list[str] = []

    def other_copy_records_first(request: Any, **_: Any) -> None:
        if not interleaved and b"VALUE#decisions" in (request.body or b""):
            interleaved.append("other")
            record_decision(state_table, KEY, {"hour": "03", "outcome": "other copy"})

    dynamodb_client.meta.events.register_first(
        "before-send.dynamodb.PutItem", other_copy_records_first
    )
    # WHEN this copy records its decision
    record_decision(state_table, KEY, {"hour": "03", "outcome": "scaler_asked"})
    # THEN neither copy's decision is lost
    assert interleaved == ["other"]
    assert [decision["outcome"] for decision in recent_decisions(state_table, KEY)] == [
        "scaler_asked",
        "other copy",
        "schedule_kept",
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param('{"secret', "its data is not JSON", id="no-json"),
        pytest.param(
            '{"node_groups": [{"name": "system", "nodes_wanted": "secret"}]}',
            "`node_groups` is not a list of node groups with their sizes",
            id="a-size-of-text",
        ),
    ],
)
def test_sizes_a_run_kept_that_no_one_can_read_are_named_and_left_as_they_are(
    state_table: Any, dynamodb_client: Any, data: str, problem: str
) -> None:
    # GIVEN the sizes kept for the run's request left unreadable by a hand edit
    name = asked_value_name("predictive-2025-06-02T03")
    item = unreadable_value(KEY, name, {"S": data})
    dynamodb_client.put_item(TableName=STATE_TABLE_NAME, Item=item)
    # WHEN an attempt of the run keeps the sizes it asks
    with pytest.raises(UnreadableStateValueError) as raised:
        first_asked(
            state_table, KEY, "predictive-2025-06-02T03", [{"name": "system", "nodes_wanted": 3}]
        )
    # THEN they are named, never shown, and left as they are (the attempt asks its own sizes)
    assert str(raised.value) == f"saved value {name} of {KEY}: {problem}"
    assert "secret" not in str(raised.value)
    stored = dynamodb_client.get_item(
        TableName=STATE_TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]}
    )
    assert stored["Item"] == item


def test_the_decisions_of_a_cluster_with_many_node_groups_still_fit_in_the_state_table(
    state_table: Any,
) -> None:
    # GIVEN a day of decisions of a cluster with 40 node groups, each answered at length by the
    # scaler (about 20 KB a decision: 24 of them are more than DynamoDB's 400 KB item)
    node_groups = [
        {"name": f"workers-{index:02d}", "scaler_reason": "r" * 450} for index in range(40)
    ]
    for hour in range(KEPT_DECISIONS):
        record_decision(state_table, KEY, {"hour": hour, "node_groups": node_groups})
    # WHEN the next hour's decision is recorded
    record_decision(state_table, KEY, {"hour": "newest", "node_groups": node_groups})
    # THEN it is kept first, with as many of the newest others as fit
    kept = recent_decisions(state_table, KEY)
    assert kept[0]["hour"] == "newest"
    assert [decision["hour"] for decision in kept[1:]] == list(range(23, 24 - len(kept), -1))


@pytest.mark.parametrize("threshold", [0.99])
def test_below_the_confidence_threshold_the_schedule_stays_in_charge(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock, state_table: Any
) -> None:
    # GIVEN a threshold of 0.99, which the forecast of noisy demand does not reach
    put_cpu_demand(fake_clock, demand(1, scale=0.2))
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN the decision says why the schedule is kept, and the node group, which no forecast
    # has sized, is handed back without a change
    [decision] = recent_decisions(state_table, KEY)
    assert decision["outcome"] == "schedule_kept"
    assert "below the threshold 0.99" in decision["reason"]
    assert result["clusters"][0]["predictive"]["reason"] == decision["reason"]
    [payload] = scaler_client.payloads
    assert payload["nodegroups"] == [{"name": "system", "hand_back": True}]
    assert decision["node_groups"][0]["scaler_status"] == "no_change_needed"
    assert _desired_size() == 2


def test_without_enough_history_the_schedule_stays_in_charge(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock, state_table: Any
) -> None:
    # GIVEN only 30 hours of history (the model needs 72)
    put_cpu_demand(fake_clock, demand(1)[-30:])
    # WHEN the hourly fleet forecast runs
    run_fleet_forecast()
    # THEN the decision names the missing history and the node group is handed back unchanged
    assert [payload["nodegroups"] for payload in scaler_client.payloads] == [
        [{"name": "system", "hand_back": True}]
    ]
    assert _desired_size() == 2
    [decision] = recent_decisions(state_table, KEY)
    assert decision["outcome"] == "schedule_kept"
    assert "hours of history" in decision["reason"]


@pytest.mark.parametrize(
    ("hours_without_data", "outcome"), [(6, "scaler_asked"), (7, "schedule_kept")]
)
def test_a_history_that_stopped_hours_ago_leaves_the_schedule_in_charge(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    hours_without_data: int,
    outcome: str,
) -> None:
    # GIVEN two weeks of steady demand, after which Container Insights sent nothing for
    # `hours_without_data` whole hours (its agent stopped, or the cluster's metrics went
    # elsewhere)
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    fake_clock.advance(timedelta(hours=hours_without_data).total_seconds())
    # WHEN the hourly fleet forecast runs
    run_fleet_forecast()
    # THEN up to 6 hours the forecast still sizes the cluster; beyond, the decision names the
    # hours without data and the node group is handed back to the schedule: a forecast of an
    # old pattern must not size a cluster whose load nobody has seen for hours
    [decision] = recent_decisions(state_table, KEY)
    assert decision["outcome"] == outcome
    if outcome == "schedule_kept":
        assert "no history for the 7 hours before this one" in decision["reason"]
        assert "the last hour with data began 2025-06-02T02:00:00Z" in decision["reason"]
        assert [payload["nodegroups"] for payload in scaler_client.payloads] == [
            [{"name": "system", "hand_back": True}]
        ]


@pytest.fixture
def second_cluster(
    inventory_document: dict[str, Any], request: pytest.FixtureRequest
) -> dict[str, Any]:
    """`dev-batch`, a copy of `dev-apps` (predictive mode), listed first in the inventory."""
    clusters = inventory_document["members"][0]["clusters"]
    batch = {**copy.deepcopy(clusters[0]), "name": "dev-batch"}
    clusters.insert(0, batch)
    return batch


def fail_the_scalers_reads_of(cluster: str) -> Callable[..., None]:
    """A `before-send` handler that fails, as a network failure would, every attempt of the
    scaler's EKS requests about `cluster` (botocore's retries run)."""

    def fail(request: Any, **_: Any) -> None:
        if f"/clusters/{cluster}/" in request.url:
            raise EndpointConnectionError(endpoint_url=request.url)

    return fail


@pytest.mark.parametrize(
    ("failure", "named"),
    [
        ("reads", "Could not connect"),
        ("answer", "the scaler's predictive request answered without results as a list"),
    ],
    ids=["scaler-cannot-read", "answer-not-the-scalers"],
)
def test_a_cluster_the_scaler_fails_is_reported_and_the_others_go_on(
    *,
    second_cluster: dict[str, Any],
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    alert_inbox: Any,
    failure: str,
    named: str,
) -> None:
    # GIVEN two clusters in predictive mode with confident forecasts, and the scaler unable to
    # read dev-batch's node group (every attempt fails to connect), or an answer for dev-batch
    # not shaped as the scaler's (its `results` no list: a TypeError that ended the run)
    member = member_session(MEMBER_ACCOUNT_ID)
    create_cluster(member, "dev-batch")
    for name in ("dev-batch", CLUSTER):
        put_history(member, name, fake_clock, demand(1, scale=0.3))
    if failure == "reads":
        scaler_eks = scaler_app.FUNCTION.services().member_client("eks", MEMBER_ACCOUNT_ID, REGION)
        scaler_eks.meta.events.register_first(
            "before-send.eks", fail_the_scalers_reads_of("dev-batch")
        )
    else:
        scaler_client.answers["dev-batch"] = {"status": "ok", "results": "system"}
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN dev-apps, after it, is still resized
    batch, apps = result["clusters"]
    assert apps["predictive"]["node_groups"][0]["scaler_status"] == "scaling_initiated"
    assert _desired_size() == 4
    # AND dev-batch's failure is reported: the run is partial, the cluster's summary gives the
    # scaler's reason, and a warning alert names the cluster and the reason
    assert result["status"] == "partial"
    assert result["predictive_failed"] == 1
    [group] = batch["predictive"]["node_groups"]
    assert group["scaler_status"] == "error"
    assert named in group["scaler_reason"]
    warnings = [
        received.alert
        for received in alert_inbox.receive()
        if received.alert["source"] == "demand_forecaster"
        and received.alert["severity"] == "warning"
        and "Forecast demand exceeds" not in received.alert["title"]
    ]
    [warning] = warnings
    assert "dev-batch" in warning["title"]
    assert named in warning["detail"]


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({"status": "ok", "results": ["system"]}, "results[0] as an object"),
        ({"status": "ok", "results": [{"status": "no_change"}]}, "results[0].nodegroup as text"),
        (
            {"results": [{"nodegroup": "system", "new": {"desired_size": "3\n" * 100}}]},
            "results[0].new.desired_size as a whole number",
        ),
        ({"status": ["ok"], "results": []}, "status as text"),
    ],
    ids=["result-no-object", "result-without-name", "size-no-number", "status-no-text"],
)
def test_an_answer_not_shaped_as_the_scalers_is_the_clusters_failed_decision(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    answer: dict[str, Any],
    named: str,
) -> None:
    # GIVEN a confident forecast of the coming hour, and an answer to the request that is not
    # shaped as the scaler's
    scaler_client.answers[CLUSTER] = answer
    # WHEN the predictive decision is made
    decision = _decide(_hand_made_forecast(fake_clock, [0.95, 0.95]))
    # THEN it is recorded as the scaler's error for the node group (a TypeError or KeyError
    # ended the fleet run), naming the field, the value shown cut and on one line
    [group] = decision["node_groups"]
    assert group["scaler_status"] == "error"
    reason = group["scaler_reason"]
    assert reason.startswith(f"the scaler's predictive request answered without {named}")
    assert "\n" not in reason
    assert len(reason) < 200
    assert predictive_failure(decision) == f"system: {reason}"
    assert recent_decisions(state_table, KEY)[0]["scaler_error"] == reason


def test_a_run_that_meets_the_same_request_in_progress_reports_no_failure(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN two copies of the hour's run at once (a retry of an attempt whose answer is late):
    # the second asks the scaler while the first one's request is being carried out
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    second: list[dict[str, Any]] = []

    def second_run_during_the_first(parsed: dict[str, Any], **_: Any) -> None:
        if not second:
            second.append(run_fleet_forecast())

    scaler_eks = scaler_app.FUNCTION.services().member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    scaler_eks.meta.events.register("after-call.eks.DescribeNodegroup", second_run_during_the_first)
    # WHEN the first copy runs
    first = run_fleet_forecast()
    # THEN the first copy resized the node group, and the second, answered that the same request
    # is in progress, says so without calling it a failure: its run is ok and raises no warning
    assert first["clusters"][0]["predictive"]["node_groups"][0]["scaler_status"] == (
        "scaling_initiated"
    )
    assert _desired_size() == 4
    [group] = second[0]["clusters"][0]["predictive"]["node_groups"]
    assert group["scaler_status"] == "in_progress"
    assert "already in progress" in group["scaler_reason"]
    assert second[0]["status"] == "ok"
    assert second[0]["predictive_failed"] == 0
    titles = [received.alert["title"] for received in alert_inbox.receive()]
    assert not [title for title in titles if title.startswith("Predictive scaling of")]


def _put_memory_history(clock: ManualClock, memory_mib: np.ndarray, nodes: int = 2) -> None:
    """Container Insights memory history ending at the last whole hour: utilisation of `nodes`
    m7g.large nodes (8192 MiB each) holding `memory_mib`."""
    cloudwatch = member_session(MEMBER_ACCOUNT_ID).client("cloudwatch")
    end = clock.now().replace(minute=0, second=0, microsecond=0)
    data = [
        {
            "MetricName": "node_memory_utilization",
            "Dimensions": [{"Name": "ClusterName", "Value": CLUSTER}],
            "Timestamp": end - timedelta(hours=len(memory_mib) - i),
            "Value": float(value) / (8192 * nodes) * 100,
        }
        for i, value in enumerate(memory_mib)
    ]
    for offset in range(0, len(data), 1000):
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights", MetricData=data[offset : offset + 1000]
        )


def test_memory_demand_sizes_the_node_group_when_it_needs_more_nodes_than_cpu(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock, state_table: Any
) -> None:
    # GIVEN two weeks of 2-3.2 vCPU demand (3 nodes of 1.805 allocatable vCPU at 70%) and of
    # memory filling 93-97% of the 2 nodes' 8 GiB (4 nodes of 7518 allocatable MiB at 70%)
    put_cpu_demand(fake_clock, demand(1))
    cpu = demand(1)
    memory = 15_200 + 800 * (cpu - cpu.min()) / (cpu.max() - cpu.min())
    _put_memory_history(fake_clock, memory)
    # WHEN the hourly fleet forecast runs
    run_fleet_forecast()
    # THEN the node group is asked for the larger count, that of memory, and the decision
    # records both forecasts and the allocatable memory per node
    [decision] = recent_decisions(state_table, KEY)
    [group] = decision["node_groups"]
    hour = decision["forecast"]
    scaling = ClusterScaling()
    by_cpu = nodes_for_demand(hour["p90_vcpu"], 1.0, group["allocatable_vcpu_per_node"], scaling)
    by_memory = nodes_for_demand(
        hour["p90_memory_mib"], 1.0, group["allocatable_memory_mib_per_node"], scaling
    )
    assert group["allocatable_memory_mib_per_node"] == pytest.approx(8192 - (11 * 29 + 255) - 100)
    assert by_memory > by_cpu
    assert group["nodes_wanted"] == by_memory
    assert "MiB" in decision["reason"]


def test_without_memory_history_the_node_group_is_sized_on_cpu(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock, state_table: Any
) -> None:
    # GIVEN two weeks of CPU history and none of memory
    put_cpu_demand(fake_clock, demand(1))
    # WHEN the hourly fleet forecast runs
    run_fleet_forecast()
    # THEN the count is CPU's and no memory forecast is recorded
    [decision] = recent_decisions(state_table, KEY)
    [group] = decision["node_groups"]
    hour = decision["forecast"]
    assert hour["p90_memory_mib"] is None
    assert group["nodes_wanted"] == nodes_for_demand(
        hour["p90_vcpu"], 1.0, group["allocatable_vcpu_per_node"], ClusterScaling()
    )


def _hand_made_forecast(
    fake_clock: ManualClock, step_confidences: list[float], hour_p90_vcpu: float = 2.5
) -> dict[str, Any]:
    """A forecast result of `system` (2 x m7g.large) whose history ends with the last hour and
    whose steps start at the current hour, each with a p90 of 2.5 vCPU, and the coming hour's
    p90 `hour_p90_vcpu`."""
    hour = fake_clock.now().replace(minute=0, second=0, microsecond=0)
    return {
        "confidence": round(sum(step_confidences) / len(step_confidences), 4),
        "confidence_reason": "hand-made",
        "interval": 0.9,
        "history": {"last_observation": iso_z(hour - timedelta(hours=1))},
        "forecast": [
            {
                "timestamp": iso_z(hour + timedelta(hours=index)),
                "demand_vcpu": 2.0,
                "lower_vcpu": 1.5,
                "upper_vcpu": 3.0,
                "p90_vcpu": 2.5,
                "confidence": confidence,
            }
            for index, confidence in enumerate(step_confidences)
        ],
        "coming_hour": {
            "start": iso_z(fake_clock.now()),
            "end": iso_z(fake_clock.now() + timedelta(hours=1)),
            "p90_vcpu": hour_p90_vcpu,
        },
        "node_groups": [
            {
                "name": "system",
                "instance_type": "m7g.large",
                "allocatable_vcpu_per_node": 1.805,
                "memory_mib_per_node": 8192,
                "allocatable_memory_mib_per_node": 7518.0,
                "share_of_demand": 1.0,
            }
        ],
    }


def _decide(forecast: dict[str, Any]) -> dict[str, Any]:
    """The predictive decision for the test cluster on `forecast`, as the hourly run makes it."""
    cluster = (
        forecaster_app.FUNCTION.services()
        .inventory()
        .find_cluster(MEMBER_ACCOUNT_ID, REGION, CLUSTER)
    )
    assert cluster is not None
    return scale_predictively(
        forecaster_app.FUNCTION.services(),
        MEMBER_ACCOUNT_ID,
        cluster,
        forecast=forecast,
        problem=None,
        dry_run=False,
    )


@pytest.mark.parametrize("threshold", [0.85])
@pytest.mark.parametrize(
    ("step_confidences", "asked"),
    [([0.9, 0.88, 0.5, 0.4], True), ([0.6, 0.7, 0.95, 0.99], False)],
)
def test_the_decision_trusts_the_confidence_of_the_steps_it_sizes_on(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    step_confidences: list[float],
    asked: bool,
) -> None:
    # GIVEN a forecast whose steps in the coming hour (the first two) are forecast with another
    # confidence than the later ones, and a threshold of 0.85
    forecast = _hand_made_forecast(fake_clock, step_confidences)
    # WHEN the predictive decision is made
    decision = _decide(forecast)
    # THEN it is the first two steps' confidence (half an hour each) that decides whether the
    # scaler is asked
    assert decision["hour_confidence"] == pytest.approx(sum(step_confidences[:2]) / 2)
    assert (decision["outcome"] == "scaler_asked") is asked
    assert ("desired_size" in scaler_client.payloads[0]["nodegroups"][0]) is asked


@pytest.mark.parametrize("threshold", [0.75])
def test_a_confidence_exactly_at_the_threshold_is_trusted(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock
) -> None:
    # GIVEN a forecast whose coming hour is forecast with the threshold's confidence exactly
    forecast = _hand_made_forecast(fake_clock, [0.75, 0.75, 0.75, 0.75])
    # WHEN the predictive decision is made
    decision = _decide(forecast)
    # THEN the confidence is not below the threshold, and the scaler is asked for a size
    assert decision["hour_confidence"] == 0.75
    assert decision["outcome"] == "scaler_asked"
    assert "desired_size" in scaler_client.payloads[0]["nodegroups"][0]


def test_the_hour_is_sized_on_its_own_p90_not_on_its_steps(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock
) -> None:
    # GIVEN a confident forecast whose coming hour has a p90 of 6.1 vCPU and its steps 2.5 (made
    # by hand: a real hour's p90 lies between its steps', which would not tell them apart)
    forecast = _hand_made_forecast(fake_clock, [0.95, 0.95], hour_p90_vcpu=6.1)
    # WHEN the predictive decision is made
    decision = _decide(forecast)
    # THEN the node count is the coming hour's (6.1 vCPU + 10% at 70% of 1.805: 6 nodes), not
    # that of any step (3 nodes)
    [group] = decision["node_groups"]
    assert group["nodes_wanted"] == 6
    assert decision["forecast"]["p90_vcpu"] == 6.1
    assert "p90 6.10 vCPU" in decision["reason"]


@pytest.mark.parametrize(
    ("step_confidences", "hour_p90_vcpu", "named"),
    [
        ([0.95, 0.95], math.nan, "p90_vcpu nan"),
        ([0.95, 0.95], math.inf, "p90_vcpu inf"),
        ([math.nan, math.nan], 6.1, "hour_confidence nan"),
    ],
    ids=["p90-nan", "p90-inf", "confidence-nan"],
)
def test_a_forecast_that_is_not_a_finite_number_never_becomes_a_size(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    step_confidences: list[float],
    hour_p90_vcpu: float,
    named: str,
) -> None:
    # GIVEN a forecast whose coming hour has a p90 or a confidence that is not a finite number
    forecast = _hand_made_forecast(fake_clock, step_confidences, hour_p90_vcpu=hour_p90_vcpu)
    # WHEN the predictive decision is made
    decision = _decide(forecast)
    # THEN the schedule stays in charge and says which figure was not a number: the scaler is
    # asked only to take the node group back, with no size
    assert decision["outcome"] == "schedule_kept"
    assert named in decision["reason"]
    assert [payload["nodegroups"] for payload in scaler_client.payloads] == [
        [{"name": "system", "hand_back": True}]
    ]
    assert _desired_size() == 2


@pytest.mark.parametrize("threshold", [0.85])
@pytest.mark.parametrize(("confidence", "shown"), [(0.849, "0.849"), (0.84996, "0.84996")])
def test_a_confidence_just_below_the_threshold_is_below_it_and_does_not_read_as_equal_to_it(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    confidence: float,
    shown: str,
) -> None:
    # GIVEN a forecast whose coming hour is forecast with `confidence`, threshold 0.85
    forecast = _hand_made_forecast(fake_clock, [confidence, confidence])
    # WHEN the predictive decision is made
    decision = _decide(forecast)
    # THEN the schedule is kept (0.84996, rounded to 4 decimals before the comparison, passed),
    # and the reason shows the confidence with the decimals that show it below the threshold
    assert decision["outcome"] == "schedule_kept"
    assert decision["hour_confidence"] < 0.85
    reason = decision["reason"]
    assert f"confidence {shown} in the hour's steps is below the threshold 0.85" in reason


@pytest.mark.parametrize("threshold", [0.85])
def test_each_step_weighs_by_the_minutes_of_the_coming_hour_it_covers(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a run at 5 past the hour: the current hour's step covers 55 minutes of the coming
    # hour and is confident, the next hour's step covers 5 minutes and is not
    fake_clock.set(fake_clock.now().replace(minute=5))
    forecast = _hand_made_forecast(fake_clock, [0.9, 0.5, 0.5])
    # WHEN the predictive decision is made
    decision = _decide(forecast)
    # THEN the hour's confidence is 55/60 of the first step's and 5/60 of the second's, which
    # reaches the threshold, so the forecast sizes the node group
    assert decision["hour_confidence"] == pytest.approx(0.9 * 55 / 60 + 0.5 * 5 / 60, abs=1e-4)
    assert decision["outcome"] == "scaler_asked"
    assert "desired_size" in scaler_client.payloads[0]["nodegroups"][0]


@pytest.mark.parametrize("threshold", [0.85])
def test_when_confidence_drops_a_node_group_the_forecast_sized_goes_back_to_the_schedule(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
) -> None:
    # GIVEN working hours, system at its daytime size 2, raised to 3 by a confident forecast
    confident = _decide(_hand_made_forecast(fake_clock, [0.9, 0.9]))
    assert confident["node_groups"][0]["scaler_status"] == "scaling_initiated"
    assert _desired_size() == 3
    # WHEN, an hour later, the forecast of the hour is not confident
    fake_clock.advance(3600)
    decision = _decide(_hand_made_forecast(fake_clock, [0.5, 0.5]))
    # THEN the schedule is kept and the scaler put system back at its daytime size, under the
    # hour's request id, and the recorded decision says so
    assert decision["outcome"] == "schedule_kept"
    assert scaler_client.payloads[-1]["request_id"] == decision["request_id"]
    [group] = decision["node_groups"]
    assert group["hand_back"] is True
    assert group["scaler_status"] == "scaling_initiated"
    assert group["desired_size"] == 2
    assert "back to the scheduled daytime size 2" in group["scaler_reason"]
    assert _desired_size() == 2
    assert recent_decisions(state_table, KEY)[0] == decision


def test_a_forecast_that_failed_on_a_throttled_read_keeps_the_forecasts_size(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    alert_inbox: Any,
    no_retry_waits: None,
) -> None:
    # GIVEN working hours, system raised from its daytime size 2 to 3 by a confident forecast
    _decide(_hand_made_forecast(fake_clock, [0.9, 0.9]))
    assert _desired_size() == 3
    # AND, an hour later (past the cooldown), the member's CloudWatch throttling every attempt
    # of the history's read
    fake_clock.advance(3600)
    services = forecaster_app.FUNCTION.services()
    cloudwatch = services.member_client("cloudwatch", MEMBER_ACCOUNT_ID, REGION)
    throttled = throttle_attempts(cloudwatch, "cloudwatch", *range(1, 100))
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN system keeps the forecast's 3 nodes: the scaler is not asked to hand it back to the
    # schedule's 2, which a read that failed says nothing about
    assert throttled.injected >= 1
    assert _desired_size() == 3
    assert len(scaler_client.payloads) == 1
    # AND the decision, recorded, says why; the run is partial and a warning names the failure
    decision = recent_decisions(state_table, KEY)[0]
    assert decision["outcome"] == "sizes_kept"
    assert "ThrottlingException" in decision["reason"]
    assert result["clusters"][0]["predictive"]["outcome"] == "sizes_kept"
    assert (result["status"], result["predictive_failed"]) == ("partial", 1)
    [warning] = _predictive_failure_alerts(alert_inbox)
    assert "sizes kept: no forecast" in warning["detail"]
    assert "ThrottlingException" in warning["detail"]


def _held_by_the_on_call_engineer() -> contextlib.AbstractContextManager[object]:
    """A hold placed on the cluster through the scaler's handler, for the block and after."""
    hold = {
        "action": "hold",
        "account_id": MEMBER_ACCOUNT_ID,
        "region": REGION,
        "cluster": CLUSTER,
        "until": "2025-06-02T20:00:00+05:30",
        "reason": "incident 42",
    }
    placed = scaler_app.lambda_handler(hold, ForecasterLambdaContext())
    assert placed["results"][0]["status"] == "hold_placed"
    return contextlib.nullcontext()


@pytest.mark.parametrize("hindrance", ["locked", "held"])
def test_a_node_group_locked_or_held_is_no_failure_of_the_decision(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    hindrance: str,
) -> None:
    # GIVEN the spot optimizer holding system's lock, or the on-call engineer's hold on the
    # cluster, while a confident forecast would raise system from 2 to 3
    lock_name = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    hindered = (
        state_table.lock(lock_name, "spot_optimizer", 120)
        if hindrance == "locked"
        else _held_by_the_on_call_engineer()
    )
    # WHEN the predictive decision is made
    with hindered:
        decision = _decide(_hand_made_forecast(fake_clock, [0.9, 0.9]))
    # THEN system is left as it is, and the decision is no failure (no warning, the run not
    # partial for it): the next hour asks again
    [group] = decision["node_groups"]
    assert group["scaler_status"] == hindrance
    assert _desired_size() == 2
    assert predictive_failure(decision) is None


def _decide_for_the_run(
    fake_clock: ManualClock, run: datetime, *, confident: bool, hour_p90_vcpu: float = 2.5
) -> dict[str, Any]:
    """The predictive decision of one attempt of the run scheduled for `run`: the forecast sizes
    the node group (`confident`, system wants 3 nodes for the default p90) or the schedule is
    kept (no forecast)."""
    services = forecaster_app.FUNCTION.services()
    cluster = services.inventory().find_cluster(MEMBER_ACCOUNT_ID, REGION, CLUSTER)
    assert cluster is not None
    forecast = _hand_made_forecast(fake_clock, [0.9, 0.9], hour_p90_vcpu=hour_p90_vcpu)
    return scale_predictively(
        services,
        MEMBER_ACCOUNT_ID,
        cluster,
        forecast=forecast if confident else None,
        problem=None if confident else NoHistoryError("no Container Insights history"),
        dry_run=False,
        run=run,
    )


@pytest.mark.parametrize(
    ("first_confident", "size_after_retry"),
    [(False, 3), (True, 2)],
    ids=["hand-back-then-sizing", "sizing-then-hand-back"],
)
def test_a_retry_that_decides_otherwise_than_its_first_attempt_is_carried_out_once(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    alert_inbox: Any,
    first_confident: bool,
    size_after_retry: int,
) -> None:
    # GIVEN the first attempt of the hour's run (working hours, system at its daytime size 2)
    # that either handed system back to the schedule (no forecast) or sized it to 3
    run = fake_clock.now()
    first = _decide_for_the_run(fake_clock, run, confident=first_confident)
    assert _desired_size() == (3 if first_confident else 2)
    alert_inbox.receive()
    # WHEN Scheduler retries the run past the cooldown and this attempt decides the other way,
    # and then retries it once more with the same decision
    fake_clock.advance(600)
    retry = _decide_for_the_run(fake_clock, run, confident=not first_confident)
    repeat = _decide_for_the_run(fake_clock, run, confident=not first_confident)
    # THEN the retry is carried out (sized to 3, or handed back to 2), not answered with the
    # first attempt's stored result: it is a request of its own
    [group] = retry["node_groups"]
    assert group["scaler_status"] == "scaling_initiated"
    assert group["desired_size"] == size_after_retry
    assert _desired_size() == size_after_retry
    assert retry["request_id"] != first["request_id"]
    # AND the same decision asked twice changed the node group once: one notice, and the repeat
    # is the same request, answered from its stored result
    assert repeat["request_id"] == retry["request_id"]
    assert repeat["node_groups"] == retry["node_groups"]
    notices = [received.alert for received in alert_inbox.receive()]
    assert [alert["severity"] for alert in notices] == ["info"]


def _fail_decision_writes(request: Any, **_: Any) -> None:
    """A `before-send` handler of the forecaster's DynamoDB client: every attempt to write the
    decisions fails to connect (botocore's retries included)."""
    if b"VALUE#decisions" in (request.body or b""):
        raise EndpointConnectionError(endpoint_url=request.url)


@pytest.mark.parametrize("first_recorded", [True, False], ids=["recorded", "its-write-failed"])
def test_a_retry_that_sizes_otherwise_asks_again_for_the_first_attempts_sizes_no_failure(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    first_recorded: bool,
) -> None:
    # GIVEN the first attempt of the hour's run, whose forecast sized system to 3 (from 2), and
    # whose decision was recorded, or lost every attempt to write it after the scaler acted
    forecaster_dynamodb = forecaster_app.FUNCTION.services().hub_client("dynamodb")
    if not first_recorded:
        forecaster_dynamodb.meta.events.register_first(
            "before-send.dynamodb.PutItem", _fail_decision_writes
        )
    run = fake_clock.now()
    first = _decide_for_the_run(fake_clock, run, confident=True)
    forecaster_dynamodb.meta.events.unregister(
        "before-send.dynamodb.PutItem", _fail_decision_writes
    )
    assert _desired_size() == 3
    assert ("not_recorded" in first) is not first_recorded
    # WHEN Scheduler retries the run minutes later and this attempt's forecast wants 4
    fake_clock.advance(600)
    retry = _decide_for_the_run(fake_clock, run, confident=True, hour_p90_vcpu=3.5)
    # THEN the retry asks for the first attempt's size again, under the run's request id, and
    # the scaler answers it as the same request: no "request_id reused" refusal taken for a
    # failed decision (and a warning), and system stays at 3
    first_request, retried = scaler_client.payloads
    assert retried == first_request
    [group] = retry["node_groups"]
    assert (group["nodes_wanted"], group["scaler_status"]) == (3, "scaling_initiated")
    assert predictive_failure(retry) is None
    assert _desired_size() == 3
    # AND the decision says whose sizes it asked for, and what this attempt would have asked
    assert "the sizes of this run's first attempt (system 3) asked again" in retry["reason"]
    assert "not this attempt's (system 4 sized on the hour's p90 3.50 vCPU" in retry["reason"]
    assert recent_decisions(state_table, KEY) == ([retry, first] if first_recorded else [retry])


def _set_node_group_status(status: str) -> None:
    """Put system in `status` as EKS reports it (an upgrade: UPDATING)."""
    cluster = eks_backends[MEMBER_ACCOUNT_ID][REGION].clusters[CLUSTER]
    cluster.nodegroups["system"].status = status


def _predictive_failure_alerts(alert_inbox: Any) -> list[dict[str, Any]]:
    return [
        received.alert
        for received in alert_inbox.receive()
        if received.alert["title"].startswith("Predictive scaling of")
    ]


def test_a_node_group_being_upgraded_is_skipped_without_a_warning_and_sized_once_active(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    lambda_context: Any,
    state_table: Any,
    alert_inbox: Any,
) -> None:
    # GIVEN a confident forecast that wants system above its 2 nodes, and system in UPDATING
    # (an EKS version upgrade)
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    _set_node_group_status("UPDATING")
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN system is left alone, the run is no failure and raises no warning
    assert _desired_size() == 2
    assert result["status"] == "ok"
    assert result["predictive_failed"] == 0
    assert _predictive_failure_alerts(alert_inbox) == []
    # AND the recorded decision, which analyze shows, says why system was skipped
    [group] = recent_decisions(state_table, KEY)[0]["node_groups"]
    assert group["scaler_status"] == "updating"
    assert "UPDATING" in group["scaler_reason"]
    analysis = scaler_app.lambda_handler(
        {"action": "analyze", "account_id": MEMBER_ACCOUNT_ID, "region": REGION,
         "cluster": CLUSTER},
        lambda_context,
    )  # fmt: skip
    assert analysis["predictive_decisions"][0]["node_groups"][0]["scaler_status"] == "updating"
    # WHEN the upgrade is over and the run is retried (the same request)
    _set_node_group_status("ACTIVE")
    run_fleet_forecast()
    # THEN the forecast's size is applied then
    assert recent_decisions(state_table, KEY)[0]["node_groups"][0]["scaler_status"] == (
        "scaling_initiated"
    )
    assert _desired_size() == 4


def test_a_node_group_that_failed_to_be_created_still_raises_a_warning(
    scaler_client: ScalerThroughItsHandler, fake_clock: ManualClock, alert_inbox: Any
) -> None:
    # GIVEN a confident forecast, and system in CREATE_FAILED
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    _set_node_group_status("CREATE_FAILED")
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN the run is partial and a warning names the status: nothing will change it by itself
    assert result["status"] == "partial"
    [warning] = _predictive_failure_alerts(alert_inbox)
    assert "CREATE_FAILED" in warning["detail"]


def test_a_decision_whose_write_answer_was_lost_is_recorded_once(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    dynamodb_client: Any,
) -> None:
    # GIVEN a confident forecast, and the first attempt to write the decision reaching DynamoDB
    # but its answer lost on the way back (a read timeout), so botocore sends it again
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    lost: list[str] = []

    def write_then_lose_the_answer(request: Any, **_: Any) -> None:
        if not lost and b"VALUE#decisions" in (request.body or b""):
            lost.append("answer")
            dynamodb_client.put_item(**json.loads(request.body))
            raise ReadTimeoutError(endpoint_url=request.url)

    forecaster_dynamodb = forecaster_app.FUNCTION.services().hub_client("dynamodb")
    forecaster_dynamodb.meta.events.register_first(
        "before-send.dynamodb.PutItem", write_then_lose_the_answer
    )
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN the node group was resized and its decision is recorded once, not twice
    assert lost == ["answer"]
    assert _desired_size() == 4
    assert result["clusters"][0]["predictive"]["outcome"] == "scaler_asked"
    decisions = recent_decisions(state_table, KEY)
    assert [decision["request_id"] for decision in decisions] == ["predictive-2025-06-02T03"]


def test_without_a_state_table_the_decision_is_made_and_says_it_is_not_recorded(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a forecaster deployed without STATE_TABLE_NAME (nor a scaler to ask)
    monkeypatch.delenv("STATE_TABLE_NAME")
    monkeypatch.delenv("SCALER_FUNCTION_NAME")
    # WHEN the predictive decision is made on a confident forecast
    decision = _decide(_hand_made_forecast(fake_clock, [0.95, 0.95]))
    # THEN it is made (a ConfigurationError made it "not made") and says why it is not recorded
    assert decision["outcome"] == "schedule_kept"
    assert decision["reason"] == "schedule kept: SCALER_FUNCTION_NAME is not set"
    assert decision["not_recorded"] == "decision not recorded: STATE_TABLE_NAME is not set"


def test_a_decision_the_state_table_refuses_to_record_is_not_reported_as_not_acted_on(
    scaler_client: ScalerThroughItsHandler,
    fake_clock: ManualClock,
    state_table: Any,
    alert_inbox: Any,
) -> None:
    # GIVEN a confident forecast, and every attempt to write the decision failing to connect
    put_cpu_demand(fake_clock, demand(1, scale=0.3))
    forecaster_dynamodb = forecaster_app.FUNCTION.services().hub_client("dynamodb")
    forecaster_dynamodb.meta.events.register_first(
        "before-send.dynamodb.PutItem", _fail_decision_writes
    )
    # WHEN the hourly fleet forecast runs
    result = run_fleet_forecast()
    # THEN the scaler's change stands and the cluster's summary gives its answer, with why the
    # decision is not recorded
    assert _desired_size() == 4
    predictive = result["clusters"][0]["predictive"]
    assert predictive["outcome"] == "scaler_asked"
    assert predictive["node_groups"][0]["scaler_status"] == "scaling_initiated"
    assert "Could not connect" in predictive["not_recorded"]
    assert recent_decisions(state_table, KEY) == []
    # AND no alert claims that the scaler did not act on the decision
    details = [received.alert["detail"] for received in alert_inbox.receive()]
    assert not [detail for detail in details if "did not act" in detail]
