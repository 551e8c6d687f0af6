"""change_validator end to end against moto with a manual clock: a change arrives as its
CloudTrail record, the update is followed and baked through the validator's own one-time
schedules, and the verdict is recorded with its figures, its rollback and one alert."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from change_validator_helpers import (
    CLUSTER,
    NODE_GROUP,
    REFUSED,
    SCALER_ROLE,
    SCHEDULE_GROUP,
    EksUpdates,
    ScalerThroughItsHandler,
    Validator,
    cloudtrail_event,
    record_endpoint_results,
)

from catalog import function_spec
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.endpoint_history import HISTORY_VALUE, endpoint_history_key
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.handler import Invocation
from fleet_shared.load_balancers import DESCRIBE_BY_ARN_BATCH
from fleet_shared.metric_data import MAX_QUERIES_PER_CALL
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateTable
from fleet_shared.timestamps import iso_z
from handlers.change_validator import app
from handlers.change_validator.exceptions import ValidationInProgressError
from handlers.change_validator.open_validations import OPEN_VALIDATIONS_KEY
from handlers.change_validator.services import (
    FINISH_SECONDS,
    MEASUREMENT_RESERVE_SECONDS,
    SCALER_CONNECT_TIMEOUT_SECONDS,
    SCALER_READ_TIMEOUT_SECONDS,
    ValidatorServices,
)
from handlers.change_validator.validation import (
    LOCK_LEASE_SECONDS,
    RECORD_NAME,
    RECORD_TTL_SECONDS,
    load_record,
    record_key,
)
from handlers.eks_scaler import app as scaler_app
from tests.handlers.conftest import MEMBER_ACCOUNT_ID, REGION, FakeLambdaContext
from tests.handlers.deadlines import (
    PLATFORM_RETRY_SECONDS,
    THREAD_REACHED_SECONDS,
    ContextRunningOutOfTime,
    HungOperation,
    InvocationEndedError,
    LambdaTime,
    answer_at_the_last_attempt,
    hang_every_attempt,
    killed_while_publishing_then_retried,
)
from tests.handlers.endless_listings import EndlessSlowPages
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    InvocationKilledError,
    answer_malformed,
    fail_every_attempt,
    hang_first_attempt,
    refuse_every_s3_attempt,
)
from tests.handlers.member_accounts import member_session
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

SCALER_CLIENT = ValidatorServices.__dict__["scaler_client"]
"""The validator's own Lambda client for the scaler (the fixture replaces it)."""
TIMEOUT_SECONDS = function_spec("change_validator").timeout_seconds
ENDED_INVOCATION_SECONDS = 120
"""An invocation Lambda ends on slow member endpoints: three calls answered at their last attempts
outlast 120 s. They cannot outlast the validator's whole timeout (a measurement of a cluster
without load balancers makes three member calls); more of them, a cluster's many node groups or
load balancers, can, and Lambda ends that invocation as it ends this one."""
ELB_DESCRIBE_REQUESTS_PER_SECOND = 10
"""What ELB refills an account's bucket of Describe requests with (the ELB guide)."""


def desired_size() -> int:
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    group = eks.describe_nodegroup(clusterName=CLUSTER, nodegroupName=NODE_GROUP)["nodegroup"]
    return int(group["scalingConfig"]["desiredSize"])


def scale_with_the_scaler(scaler_client: ScalerThroughItsHandler, desired: int) -> str:
    """Ask the scaler (through its handler) for `desired` nodes in `system`; the update id."""
    request = {
        "action": "scale_up",
        "account_id": MEMBER_ACCOUNT_ID,
        "region": REGION,
        "cluster": CLUSTER,
        "nodegroups": [{"name": NODE_GROUP, "desired_size": desired}],
        "request_id": "req-1",
    }
    answer = scaler_client.invoke(
        FunctionName="lf-handlers-eks-scaler",
        InvocationType="RequestResponse",
        Payload=json.dumps(request).encode("utf-8"),
    )
    result = json.loads(answer["Payload"].read())
    scaler_client.payloads.clear()
    [group] = result["results"]
    assert group["status"] == "scaling_initiated", result
    return str(group["update_id"])


def nodes_in_service(count: int) -> None:
    """The node group's Auto Scaling group brought to `count` instances, all InService and
    Healthy, as EKS does after a change of the desired size (moto's EKS leaves it alone)."""
    session = member_session(MEMBER_ACCOUNT_ID)
    group = session.client("eks").describe_nodegroup(clusterName=CLUSTER, nodegroupName=NODE_GROUP)
    [asg] = group["nodegroup"]["resources"]["autoScalingGroups"]
    session.client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=asg["name"], DesiredCapacity=count
    )


def scaler_change_after_a_steady_quarter_hour(
    validator: Validator, new_node_ready: bool = True
) -> tuple[datetime, str, dict[str, Any]]:
    """15 minutes of endpoint results at about 100 ms, then the scaler takes `system` from 2 to 3
    nodes, the third node ready (unless `new_node_ready` is False), and EKS reports the update
    successful: the moment, the update id and the change's CloudTrail record (by the scaler's
    member role)."""
    now = validator.clock.now()
    record_endpoint_results(validator.state, now - timedelta(minutes=15), 15, latency_ms=100)
    update_id = scale_with_the_scaler(validator.scaler, 3)
    if new_node_ready:
        nodes_in_service(3)
    validator.eks_updates.status = "Successful"
    change = cloudtrail_event(
        "UpdateNodegroupConfig",
        update_id,
        now,
        {"nodegroupName": NODE_GROUP, "scalingConfig": {"desiredSize": 3}},
        role=SCALER_ROLE,
    )
    return now, update_id, change


RELEASE_UPDATE = {"nodegroupName": NODE_GROUP, "releaseVersion": "1.33.5-20251120"}
LAUNCH_TEMPLATE_UPDATE = {
    "nodegroupName": NODE_GROUP,
    "launchTemplate": {"name": "nodes", "version": "7"},
}


def node_group_update_baking(
    validator: Validator,
    update_id: str,
    request: dict[str, Any] = RELEASE_UPDATE,
    bake_latency_ms: float = 105,
) -> None:
    """A node group update by a person after a steady quarter hour at about 100 ms, that EKS
    reports finished at once: the validation bakes, the endpoint answering in `bake_latency_ms`."""
    now = validator.clock.now()
    record_endpoint_results(validator.state, now - timedelta(minutes=15), 15, latency_ms=100)
    validator.eks_updates.status = "Successful"
    started = validator.send(cloudtrail_event("UpdateNodegroupVersion", update_id, now, request))
    assert started["status"] == "baking", started
    record_endpoint_results(
        validator.state, now + timedelta(minutes=1), 14, latency_ms=bake_latency_ms
    )


def degraded_bake_of_a_restorable_scaler_change(
    validator: Validator,
    monkeypatch: pytest.MonkeyPatch,
    also_asked: dict[str, Any] | None = None,
) -> str:
    """A stack that lets the validator restore the scaler's changes, the scaler taking system
    from 2 to 3 nodes (its CloudTrail record also asking `also_asked`, labels or taints, when
    given), and a bake in which the endpoint fails half its requests; the update id."""
    monkeypatch.setenv("VALIDATION_RESTORE_SCALER_CHANGES", "true")
    now, update_id, change = scaler_change_after_a_steady_quarter_hour(validator)
    change["detail"]["requestParameters"].update(also_asked or {})
    validator.send(change)
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 7, latency_ms=100)
    record_endpoint_results(
        validator.state, now + timedelta(minutes=8), 7, latency_ms=100, ok=False
    )
    return update_id


def node_group_version_update(validator: Validator, update_id: str) -> dict[str, Any]:
    """The CloudTrail record of a person's UpdateNodegroupVersion of system to 1.20, made now."""
    return cloudtrail_event(
        "UpdateNodegroupVersion",
        update_id,
        validator.clock.now(),
        {"nodegroupName": NODE_GROUP, "version": "1.20"},
    )


def test_a_scaler_change_followed_by_a_healthy_bake_passes(validator: Validator) -> None:
    # GIVEN an endpoint answering in about 100 ms for the last 15 minutes, and the scaler
    # taking node group system from 2 to 3 nodes (its UpdateNodegroupConfig, by its member role)
    now, update_id, change = scaler_change_after_a_steady_quarter_hour(validator)
    # WHEN its CloudTrail record arrives, twice
    first = validator.send(change)
    second = validator.send(change)
    # THEN one validation of the fleet's own scaling change bakes, with one bake schedule
    assert first["status"] == "baking" and first["kind"] == "scaling"
    assert first["by_fleet_scaler"] is True
    assert second["duplicate"] is True and second["validation_id"] == update_id
    [bake] = validator.schedules()
    assert bake["ActionAfterCompletion"] == "DELETE"
    assert bake["Target"]["Arn"].endswith(":function:lf-handlers-change-validator")
    # AND the rollback it would name is the scaler's previous size, 2
    assert first["rollback"]["sizes"]["desired_size"] == 2
    # WHEN the endpoint stays at about 100 ms through the 15-minute bake
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 14, latency_ms=105)
    [verdict] = validator.advance(15)
    # THEN the change passed, nothing is alerted and no schedule is left
    assert verdict["status"] == "passed", verdict
    assert verdict["moved"] == []
    assert validator.alerts() == []
    assert validator.schedules() == []


def test_a_scale_up_whose_new_node_never_becomes_ready_is_degraded(
    validator: Validator,
) -> None:
    # GIVEN the scaler taking node group system from 2 ready nodes to 3, EKS showing the new
    # desired size at once, and the third node never coming up
    now, _, change = scaler_change_after_a_steady_quarter_hour(validator, new_node_ready=False)
    started = validator.send(change)
    assert started["status"] == "baking", started
    # WHEN the endpoint stays at about 100 ms through the bake, with still 2 nodes ready
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 14, latency_ms=105)
    [verdict] = validator.advance(15)
    # THEN the change is degraded: 2 of 2 nodes were ready before it, 2 of 3 after the bake
    assert verdict["status"] == "degraded", verdict
    [moved] = verdict["moved"]
    assert moved["subject"] == f"node_group/{NODE_GROUP}"
    assert (moved["figure"], moved["before"], moved["after"]) == ("ready_ratio", 1.0, 0.6667)
    [alert] = validator.alerts()
    assert alert["severity"] == "critical"
    assert "ready_ratio 1.0 -> 0.6667" in alert["detail"]


def test_a_scale_up_from_zero_whose_nodes_never_become_ready_is_degraded(
    validator: Validator, state_table: StateTable
) -> None:
    # GIVEN node group system at 0 nodes overnight, and the scaler's morning change to 2 (its
    # change record, as eks_scaler writes it, saying the size before was 0), EKS showing the new
    # size at once and reporting the update successful, and no node ever coming up
    update_id = "5e6f7a8b-0000-4111-8222-933344445555"
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    eks.update_nodegroup_config(
        clusterName=CLUSTER,
        nodegroupName=NODE_GROUP,
        scalingConfig={"minSize": 0, "desiredSize": 2, "maxSize": 4},
    )
    nodes_in_service(0)
    state_table.record_change(
        node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, NODE_GROUP),
        {
            "source": "eks_scaler",
            "action": "restore",
            "previous": {"min_size": 0, "desired_size": 0, "max_size": 4},
            "new": {"min_size": 0, "desired_size": 2, "max_size": 4},
            "request_id": "morning-restore",
            "update_id": update_id,
        },
        history_ttl_seconds=86400,
    )
    validator.eks_updates.status = "Successful"
    change = cloudtrail_event(
        "UpdateNodegroupConfig",
        update_id,
        validator.clock.now(),
        {"nodegroupName": NODE_GROUP, "scalingConfig": {"desiredSize": 2}},
        role=SCALER_ROLE,
    )
    assert validator.send(change)["status"] == "baking"
    # WHEN the bake ends with still no node ready
    [verdict] = validator.advance(15)
    # THEN the change is degraded: none of no nodes missing before it, none of 2 ready after
    assert verdict["status"] == "degraded", verdict
    [moved] = verdict["moved"]
    assert moved["subject"] == f"node_group/{NODE_GROUP}"
    assert (moved["figure"], moved["before"], moved["after"]) == ("ready_ratio", 1.0, 0.0)


def test_a_scaler_change_whose_record_is_no_object_is_inconclusive_naming_the_record(
    validator: Validator, state_table: StateTable
) -> None:
    # GIVEN the scaler's change of node group system, its record in the state table's history
    # written as a JSON list (corruption, or an older format)
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, NODE_GROUP)
    changed_at = validator.clock.now()
    state_table.record_change(key, ["resize"], history_ttl_seconds=86400)  # type: ignore[arg-type]
    change = cloudtrail_event(
        "UpdateNodegroupConfig",
        "5e6f7a8b-0000-4111-8222-933344445556",
        changed_at,
        {"nodegroupName": NODE_GROUP, "scalingConfig": {"desiredSize": 2}},
        role=SCALER_ROLE,
    )
    # WHEN the change arrives
    result = validator.send(change)
    # THEN it is inconclusive, naming the record and what it is (instead of an AttributeError
    # failing the invocation), with no automatic rollback planned
    assert result["status"] == "inconclusive", result
    assert (
        f"state record of {key} at {iso_z(changed_at, 'microseconds')}: its data is a JSON list"
        in result["reason"]
    )


def test_a_bake_callback_firing_at_its_scheduled_second_gives_the_verdict(
    validator: Validator,
) -> None:
    # GIVEN a change that arrives 0.4 s into a second, so the bake ends 0.4 s into a second
    validator.clock.advance(0.4)
    now, _, change = scaler_change_after_a_steady_quarter_hour(validator)
    assert validator.send(change)["status"] == "baking"
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 14, latency_ms=105)
    # WHEN the clock reaches exactly the whole second the bake schedule names, and it fires
    [bake] = validator.schedules()
    fires_at = datetime.fromisoformat(bake["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
    validator.clock.advance((fires_at - validator.clock.now()).total_seconds())
    [verdict] = validator.fire_due_callbacks()
    # THEN the bake is over at that moment and the verdict is given, not left waiting
    assert verdict["status"] == "passed", verdict


def test_an_endpoint_that_slows_after_a_node_group_update_is_degraded_with_figures_and_rollback(
    validator: Validator, state_table: StateTable, eks_updates: EksUpdates
) -> None:
    # GIVEN an endpoint answering in about 100 ms, and a node group version update by a person
    now = validator.clock.now()
    record_endpoint_results(state_table, now - timedelta(minutes=15), 15, latency_ms=100)
    change = cloudtrail_event(
        "UpdateNodegroupVersion",
        "5a6b7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c0d",
        now,
        {"nodegroupName": NODE_GROUP, "releaseVersion": "1.33.5-20251120"},
    )
    # WHEN its record arrives while EKS still rolls the nodes
    started = validator.send(change)
    # THEN the validation follows the update with a callback five minutes later
    assert started["status"] == "following" and started["kind"] == "node_group_version"
    assert started["by_fleet_scaler"] is False
    assert len(validator.schedules()) == 1
    # WHEN EKS reports it finished at the next check, and the endpoint then answers in 400 ms
    eks_updates.status = "Successful"
    [baking] = validator.advance(5)
    assert baking["status"] == "baking"
    record_endpoint_results(state_table, now + timedelta(minutes=6), 14, latency_ms=400)
    [verdict] = validator.advance(15)
    # THEN the change is degraded, naming the figure that moved and by how much
    assert verdict["status"] == "degraded", verdict
    [moved] = verdict["moved"]
    assert moved["subject"] == "endpoint/api" and moved["figure"] == "latency_p95_ms"
    assert (moved["before"], moved["after"]) == (100.0, 400.0)
    assert moved["change"] == "+300 ms (+300%)"
    # AND the rollback is the release the node group ran before (moto's default)
    assert "back to version 1.19 (release 1.19.8-20210414)" in verdict["rollback"]["action"]
    # AND one critical alert says so
    [alert] = validator.alerts()
    assert alert["severity"] == "critical"
    assert "latency_p95_ms 100.0 -> 400.0" in alert["detail"]
    assert "release 1.19.8-20210414" in alert["detail"]


@pytest.mark.parametrize(
    ("new_node_ready", "expected"), [(True, "not_enough_baseline"), (False, "degraded")]
)
def test_a_change_with_too_few_baseline_results_is_not_judged_on_them(
    validator: Validator, new_node_ready: bool, expected: str
) -> None:
    # GIVEN the scaler taking system from 2 to 3 nodes, the health monitor having kept only 2
    # results of endpoint api in the quarter hour before it (runs missed), both slow
    now, _, change = scaler_change_after_a_steady_quarter_hour(validator, new_node_ready)
    validator.state.delete_value(
        endpoint_history_key(f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}", "api"), HISTORY_VALUE
    )
    record_endpoint_results(validator.state, now - timedelta(minutes=3), 2, latency_ms=900)
    assert validator.send(change)["status"] == "baking"
    # WHEN the bake ends with the endpoint failing half its probes
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 7, latency_ms=100)
    record_endpoint_results(
        validator.state, now + timedelta(minutes=8), 7, latency_ms=100, ok=False
    )
    [verdict] = validator.advance(15)
    # THEN the 2 results judge nothing: with nothing else moved the change is not judged, and
    # one warning says why; a node that never came up is still a regression
    assert verdict["status"] == expected, verdict
    assert all(moved["subject"] != "endpoint/api" for moved in verdict["moved"])
    [alert] = validator.alerts()
    if expected == "not_enough_baseline":
        assert "fewer than 3 samples before the change (endpoint/api 2)" in verdict["reason"]
        assert alert["severity"] == "warning"
        assert alert["title"].startswith("Change not judged")
    else:
        assert alert["severity"] == "critical"


def test_a_second_change_during_the_first_ones_bake_is_judged_against_the_health_before_both(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN the endpoint at about 100 ms, a node group update that slows it to 400 ms, and,
    # ten minutes later while that update bakes, a cluster version update of the same cluster
    first_id, second_id = (f"6a7b8c9d-0000-4111-8222-93334444555{n}" for n in (1, 2))
    now = validator.clock.now()
    record_endpoint_results(validator.state, now - timedelta(minutes=15), 15, latency_ms=100)
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 24, latency_ms=400)
    assert validator.send(node_group_version_update(validator, first_id))["status"] == "following"
    eks_updates.status = "Successful"
    [baking] = validator.advance(5)
    assert baking["status"] == "baking", baking
    validator.clock.advance(5 * 60)
    second = cloudtrail_event(
        "UpdateClusterVersion", second_id, validator.clock.now(), {"version": "1.20"}
    )
    assert validator.send(second)["status"] == "baking"
    # WHEN both bakes end with the endpoint still at 400 ms
    [first_verdict] = validator.advance(10)
    [second_verdict] = validator.advance(5)
    # THEN both are degraded: the second is measured against the health before the first
    # (its own quarter hour before held the first one's 400 ms), and says so
    assert first_verdict["status"] == "degraded", first_verdict
    assert second_verdict["status"] == "degraded", second_verdict
    assert [moved["after"] for moved in second_verdict["moved"]] == [400.0]
    assert f"against the baseline of update {first_id}" in second_verdict["reason"]
    first_record = load_record(validator.services[0], first_id)
    second_record = load_record(validator.services[0], second_id)
    assert first_record is not None and second_record is not None
    assert second_record["baseline_window"] == first_record["baseline_window"]


@pytest.mark.parametrize(
    "more_errors",
    [
        pytest.param([], id="one-error"),
        pytest.param(
            [{"errorCode": "Other", "errorMessage": "x" * 10_000}] * 60,
            id="sixty-more-long-errors",
        ),
        # botocore hands a null among a JSON list's items on unchecked
        pytest.param([None], id="and-a-null"),
        pytest.param(
            [{"errorCode": "Other", "errorMessage": "Drain failed\nConsole: evil.example\n" * 99}],
            id="and-one-of-many-long-lines",
        ),
    ],
)
def test_an_update_eks_reports_failed_is_failed_at_once(
    validator: Validator, eks_updates: EksUpdates, more_errors: list[dict[str, str] | None]
) -> None:
    # GIVEN a cluster version update that EKS reports failed, with its reason first, and
    # possibly 60 more errors of 10,000 characters each, a null, or one of many long lines
    eks_updates.status = "Failed"
    eks_updates.errors = [
        {"errorCode": "PodEvictionFailure", "errorMessage": "PDB blocks"},
        *more_errors,
    ]
    change = cloudtrail_event(
        "UpdateClusterVersion", "9d8c7b6a-0000-4111-8222-933344445555",
        validator.clock.now(), {"version": "1.20"},
    )  # fmt: skip
    # WHEN its record arrives
    verdict = validator.send(change)
    # THEN the verdict is failed with EKS's reason in one short line, no schedule is left
    # waiting
    assert verdict["status"] == "failed", verdict
    assert "PodEvictionFailure: PDB blocks" in verdict["reason"]
    assert len(verdict["reason"]) <= 300
    assert "\n" not in verdict["reason"]
    assert validator.schedules() == []
    # AND the one critical alert names the previous control plane version
    [alert] = validator.alerts()
    assert alert["severity"] == "critical"
    assert "previous control plane version was 1.19" in alert["detail"]


def test_a_failed_update_killed_while_sns_hangs_is_alerted_once_by_the_platforms_retry(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a cluster version update that EKS reports failed
    eks_updates.status = "Failed"
    change = cloudtrail_event(
        "UpdateClusterVersion", "9d8c7b6a-0000-4111-8222-933344445556",
        validator.clock.now(), {"version": "1.20"},
    )  # fmt: skip
    # WHEN SNS never answers the verdict's Publish, so Lambda kills the invocation at its
    # deadline, and retries the record a minute later
    retried = killed_while_publishing_then_retried(
        app.FUNCTION.services().sessions.hub_client("sns"),
        validator.clock,
        lambda context: validator.send(change, context),
    )
    # THEN the retry is not refused by the killed invocation's claim: the verdict is failed and
    # its critical alert goes out once
    assert retried["status"] == "failed", retried
    assert [alert["severity"] for alert in validator.alerts()] == ["critical"]


def test_a_failed_labels_change_names_what_it_asked_not_the_labels_it_set_as_the_previous_ones(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN node group system labelled tier=system, and a person's UpdateNodegroupConfig that
    # sets team=payments, removes tier and adds a taint, which EKS applied before its CloudTrail
    # record arrived (a labels update is quick) and then reports failed
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    eks.update_nodegroup_config(
        clusterName=CLUSTER,
        nodegroupName=NODE_GROUP,
        labels={"addOrUpdateLabels": {"tier": "system"}},
    )
    asked = {
        "nodegroupName": NODE_GROUP,
        "labels": {"addOrUpdateLabels": {"team": "payments"}, "removeLabels": ["tier"]},
        "taints": {
            "addOrUpdateTaints": [{"key": "dedicated", "value": "pay", "effect": "NO_SCHEDULE"}]
        },
    }
    eks.update_nodegroup_config(
        clusterName=CLUSTER,
        nodegroupName=NODE_GROUP,
        labels=asked["labels"],
        taints=asked["taints"],
    )
    eks_updates.status = "Failed"
    change = cloudtrail_event(
        "UpdateNodegroupConfig", "7e6d5c4b-0000-4111-8222-933344445555",
        validator.clock.now(), asked,
    )  # fmt: skip
    # WHEN its record arrives
    verdict = validator.send(change)
    # THEN the rollback names what the change asked, to be undone, and does not pass the labels
    # EKS showed on arrival (the new ones) for those the node group had before
    assert verdict["status"] == "failed", verdict
    action = verdict["rollback"]["action"]
    assert "back to labels {'team': 'payments'}" not in action
    assert "added or updated labels {'team': 'payments'}" in action
    assert "removed labels ['tier']" in action
    assert "added or updated taints ['dedicated=pay:NO_SCHEDULE']" in action
    assert "possibly the new ones already" in action
    # AND the one critical alert says the same
    [alert] = validator.alerts()
    assert action in alert["detail"]


def test_a_failed_change_of_sizes_and_labels_names_both_in_its_rollback(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a person's UpdateNodegroupConfig of node group system that sets 3 nodes and, in the
    # same call, the label team=payments and a taint, which EKS then reports failed
    asked = {
        "nodegroupName": NODE_GROUP,
        "scalingConfig": {"desiredSize": 3},
        "labels": {"addOrUpdateLabels": {"team": "payments"}},
        "taints": {"removeTaints": [{"key": "dedicated", "effect": "NO_SCHEDULE"}]},
    }
    eks_updates.status = "Failed"
    change = cloudtrail_event(
        "UpdateNodegroupConfig", "7e6d5c4b-0000-4111-8222-933344445666",
        validator.clock.now(), asked,
    )  # fmt: skip
    # WHEN its record arrives
    verdict = validator.send(change)
    # THEN it is a failed scaling change whose rollback names the sizes to go back to
    assert verdict["status"] == "failed", verdict
    assert verdict["kind"] == "scaling"
    rollback = verdict["rollback"]
    assert "restore node group system to desired size 2" in rollback["action"]
    # AND what the change asked of labels and taints, to be undone by hand
    assert "added or updated labels {'team': 'payments'}" in rollback["action"]
    assert "removed taints ['dedicated:NO_SCHEDULE']" in rollback["action"]
    assert rollback["labels_and_taints"]["automatic"] is False
    # AND the one critical alert names both parts
    [alert] = validator.alerts()
    assert rollback["action"] in alert["detail"]


def test_an_automatic_restore_of_sizes_and_labels_restores_the_sizes_and_leaves_labels_to_a_person(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, a change through the
    # scaler's member role that takes system from 2 to 3 nodes and also sets the label
    # team=payments, and a bake in which the endpoint fails half its requests
    also_asked = {"labels": {"addOrUpdateLabels": {"team": "payments"}}}
    degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch, also_asked)
    # WHEN the bake ends
    [verdict] = validator.advance(15)
    # THEN the scaler is asked to put the size back to 2, which it can
    assert verdict["status"] == "degraded"
    [request] = scaler_client.payloads
    assert request["nodegroups"] == [{"name": NODE_GROUP, "desired_size": 2}]
    assert desired_size() == 2
    # AND the restore and the critical alert say the label the change set is left to a person
    left = verdict["restore"]["left_to_a_person"]
    assert "added or updated labels {'team': 'payments'}" in left
    [alert] = validator.alerts()
    assert "asked to restore it: scaling_initiated" in alert["detail"]
    assert "the labels and taints this change asked are left to a person" in alert["detail"]
    assert "added or updated labels {'team': 'payments'}" in alert["detail"]


def test_a_failed_update_of_launch_template_and_release_names_both_to_go_back_to(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a person's UpdateNodegroupVersion of node group system that asks, in one call, for
    # launch template version 7 and a new AMI release, which EKS then reports failed
    eks_updates.status = "Failed"
    change = cloudtrail_event(
        "UpdateNodegroupVersion", "7e6d5c4b-0000-4111-8222-933344445777",
        validator.clock.now(),
        {**LAUNCH_TEMPLATE_UPDATE, "releaseVersion": "1.33.5-20251120"},
    )  # fmt: skip
    # WHEN its record arrives
    verdict = validator.send(change)
    # THEN it is a failed launch template change whose rollback names the launch template
    # version to go back to AND the release the node group ran before (moto's default)
    assert verdict["status"] == "failed", verdict
    assert verdict["kind"] == "launch_template"
    action = verdict["rollback"]["action"]
    assert "back to launch template" in action
    assert "version 1.19 (release 1.19.8-20210414)" in action
    # AND the one critical alert says the same
    [alert] = validator.alerts()
    assert action in alert["detail"]


def test_an_update_still_running_after_the_last_check_is_failed(
    validator: Validator, eks_updates: EksUpdates, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN at most two checks, and an update EKS keeps reporting InProgress
    monkeypatch.setenv("VALIDATION_MAX_FOLLOW_CHECKS", "2")
    change = node_group_version_update(validator, "1a2b3c4d-0000-4111-8222-933344445555")
    # WHEN its record arrives and the second check comes
    assert validator.send(change)["status"] == "following"
    [verdict] = validator.advance(5)
    # THEN the verdict is failed, saying how long it waited
    assert verdict["status"] == "failed"
    assert "still InProgress after 2 checks" in verdict["reason"]
    assert eks_updates.asked == 2


def test_a_follow_up_callback_delivered_twice_checks_the_update_once(
    validator: Validator, eks_updates: EksUpdates, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN at most three checks, and an update EKS keeps reporting InProgress
    monkeypatch.setenv("VALIDATION_MAX_FOLLOW_CHECKS", "3")
    update_id = "3c4d5e6f-0000-4111-8222-933344445555"
    change = node_group_version_update(validator, update_id)
    assert validator.send(change)["status"] == "following"
    [second_check] = validator.advance(5)
    assert second_check["status"] == "following"
    # WHEN the scheduler delivers that callback again a few seconds later (at least once)
    validator.clock.advance(10)
    copy = validator.send({"action": "follow_up", "validation_id": update_id})
    # THEN the copy neither asks EKS again nor books another check: one schedule waits, and the
    # update is not failed before its third check
    assert copy["status"] == "following"
    assert eks_updates.asked == 2
    assert len(validator.schedules()) == 1
    [third_check] = validator.advance(5)
    assert third_check["status"] == "failed"
    assert "still InProgress after 3 checks" in third_check["reason"]


@pytest.mark.parametrize(
    ("field", "edited", "problem"),
    [
        ("phase", None, "phase: Field required"),
        ("phase", "paused", "phase: Input should be 'following', 'baking' or 'done'"),
        ("follow_checks", "1", "follow_checks: Input should be a valid integer"),
    ],
)
def test_a_hand_edited_validation_record_is_reported_once_naming_the_field(
    validator: Validator, field: str, edited: object, problem: str
) -> None:
    # GIVEN a node group update being followed, and its record edited by hand: a field
    # removed, or set to an unknown phase or to a number written as text
    update_id = "3c4d5e6f-0000-4111-8222-933344445556"
    change = node_group_version_update(validator, update_id)
    assert validator.send(change)["status"] == "following"
    record = load_record(validator.services[0], update_id)
    assert record is not None
    if edited is None:
        del record[field]
    else:
        record[field] = edited
    validator.state.put_value(record_key(update_id), RECORD_NAME, record)
    # WHEN its callback fires, and is delivered again
    [answer] = validator.advance(5)
    again = validator.send({"action": "follow_up", "validation_id": update_id})
    # THEN each answers an error naming the record and the field, rather than failing
    for result in (answer, again):
        assert result["status"] == "error", result
        assert f"change_validator/{update_id}: {problem}" in result["error"]
    # AND one warning names them, once
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"
    assert f"change_validator/{update_id}: {problem}" in alert["detail"]


def test_a_validation_whose_callback_schedule_was_deleted_is_closed_by_the_sweep_once(
    validator: Validator,
) -> None:
    # GIVEN two node group updates being followed: the next callback of the first deleted by
    # hand, the record of the second edited by hand (its phase removed)
    deleted_id, edited_id = (f"3c4d5e6f-0000-4111-8222-93334444555{n}" for n in (7, 8))
    for update_id in (deleted_id, edited_id):
        assert validator.send(node_group_version_update(validator, update_id))["status"] == (
            "following"
        )
    [booked] = [s["Name"] for s in validator.schedules() if s["Name"].startswith(deleted_id)]
    boto3.client("scheduler", region_name=REGION).delete_schedule(
        Name=booked, GroupName=SCHEDULE_GROUP
    )
    record = load_record(validator.services[0], edited_id)
    assert record is not None
    del record["phase"]
    validator.state.put_value(record_key(edited_id), RECORD_NAME, record)
    sweep = {"action": "sweep"}
    # WHEN the hourly sweep runs an hour later
    validator.clock.advance(3600)
    first = validator.send(sweep)
    # THEN the first may still be called back; the second is reported, the first left waiting
    assert first["waiting"] == [deleted_id] and first["unreadable"] == [edited_id], first
    # WHEN the sweep runs three hours after the deleted callback's time, and the hour after
    validator.clock.advance(3 * 3600)
    second = validator.send(sweep)
    third = validator.send(sweep)
    # THEN the first validation is closed inconclusive, saying its schedule is gone
    assert second["closed"] == [deleted_id] and second["unreadable"] == [edited_id], second
    closed = load_record(validator.services[0], deleted_id)
    assert closed is not None and closed["verdict"] == "inconclusive"
    assert f"its callback {booked}" in closed["reason"]
    assert "its schedule is gone" in closed["reason"]
    assert third["closed"] == [] and third["unreadable"] == [edited_id], third
    # AND one warning each: the closed validation's, and the unreadable record's
    alerts = validator.alerts()
    assert sorted(alert["title"].split(" (")[0] for alert in alerts) == [
        "Change not validated: node_group_version of "
        f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/{NODE_GROUP}",
        "Validation record unreadable",
    ], alerts


def test_validations_opened_before_the_index_are_swept_once_after_the_upgrade(
    validator: Validator,
) -> None:
    # GIVEN, saved by the version before the index of open validations, a node group update
    # being followed whose callback schedule was then deleted, and an update EKS reported failed
    # (judged and alerted then): neither is in the index
    open_id, done_id = (f"3c4d5e6f-0000-4111-8222-93334444556{n}" for n in (1, 2))
    assert validator.send(node_group_version_update(validator, open_id))["status"] == "following"
    validator.eks_updates.status = "Failed"
    assert validator.send(node_group_version_update(validator, done_id))["status"] == "failed"
    assert len(validator.alerts()) == 1
    [booked] = [s["Name"] for s in validator.schedules() if s["Name"].startswith(open_id)]
    boto3.client("scheduler", region_name=REGION).delete_schedule(
        Name=booked, GroupName=SCHEDULE_GROUP
    )
    validator.state.delete_value(OPEN_VALIDATIONS_KEY, open_id)
    # WHEN the first sweep of this version runs four hours later, and the next an hour after
    validator.clock.advance(4 * 3600)
    first = validator.send({"action": "sweep"})
    validator.clock.advance(3600)
    second = validator.send({"action": "sweep"})
    # THEN the first finds the open validation and closes it inconclusive, with its warning, and
    # leaves the judged one alone; the second searches no more and finds nothing to do
    assert (first["earlier"], first["closed"], first["done"]) == ("done", [open_id], []), first
    assert (second["earlier"], second["closed"], second["waiting"]) == ("done", [], []), second
    closed = load_record(validator.services[0], open_id)
    assert closed is not None and closed["verdict"] == "inconclusive"
    [warning] = validator.alerts()
    assert warning["title"].startswith("Change not validated") and open_id[:8] in warning["title"]


def test_a_change_whose_validation_lock_another_invocation_holds_is_not_started_until_retried(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a person's node group update, and its validation's lock held by another invocation
    # (a follow-up booked by a copy of the change Lambda killed at its deadline)
    update_id = "4e5f6a7b-0000-4111-8222-933344445555"
    change = node_group_version_update(validator, update_id)
    with validator.state.lock(record_key(update_id), "the-follow-up", 300):
        # WHEN the change's CloudTrail record arrives
        with pytest.raises(ValidationInProgressError, match="held by the-follow-up") as refused:
            validator.send(change)
        # THEN the invocation fails saying the validation is being advanced, so Lambda retries
        # it, and nothing was started: no record, EKS not asked, no check booked
        assert "is being advanced by another invocation" in str(refused.value)
        assert load_record(validator.services[0], update_id) is None
        assert eks_updates.asked == 0
        assert validator.schedules() == []
    # WHEN the lock is free and Lambda retries the event
    retried = validator.send(change)
    # THEN the retry starts the validation, once, with its one check booked
    assert retried["status"] == "following", retried
    assert len(validator.schedules()) == 1


def test_a_describe_update_that_fails_is_asked_again_at_the_next_check(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a node group update, and DescribeUpdate refused at first
    eks_updates.status = REFUSED
    change = node_group_version_update(validator, "2b3c4d5e-0000-4111-8222-933344445555")
    # WHEN its record arrives
    started = validator.send(change)
    # THEN the validation goes on following, the error kept, with a check five minutes later
    assert started["status"] == "following"
    assert started["update_status"] == "Unknown"
    assert len(validator.schedules()) == 1
    # WHEN DescribeUpdate answers at the next check
    eks_updates.status = "Successful"
    [baking] = validator.advance(5)
    # THEN the bake starts
    assert baking["status"] == "baking"


def test_a_describe_update_answered_with_a_proxy_page_is_asked_again_at_the_next_check(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a node group update, and the member's EKS answering DescribeUpdate with a proxy's
    # page (HTTP 200), which botocore hands on as an answer without the update
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    member_eks.meta.events.unregister("before-call.eks.DescribeUpdate", eks_updates.answer)
    page = answer_malformed(member_eks, "eks", "DescribeUpdate", b"<html>gateway</html>")
    update_id = "2b3c4d5e-0000-4111-8222-933344445566"
    # WHEN its record arrives
    started = validator.send(node_group_version_update(validator, update_id))
    # THEN the invocation did not fail: the validation goes on following, the status unknown
    # and the error naming what the answer lacked kept, with a check five minutes later
    assert page.answered >= 1
    assert started["status"] == "following", started
    assert started["update_status"] == "Unknown"
    stored = load_record(validator.services[0], update_id)
    assert stored is not None
    [error] = stored["update_errors"]
    assert "DescribeUpdate answered without update" in error
    assert len(validator.schedules()) == 1
    # WHEN EKS answers DescribeUpdate at the next check
    member_eks.meta.events.unregister("before-send.eks.DescribeUpdate", page)
    member_eks.meta.events.register("before-call.eks.DescribeUpdate", eks_updates.answer)
    eks_updates.status = "Successful"
    [baking] = validator.advance(5)
    # THEN the bake starts
    assert baking["status"] == "baking", baking


def test_a_regression_after_the_scalers_change_restores_the_previous_size_when_allowed(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    update_id = degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    # WHEN the bake ends
    [verdict] = validator.advance(15)
    # THEN the change is degraded and the scaler was asked, once, through its normal path, to
    # scale system back down to 2 (dry run off in this fleet)
    assert verdict["status"] == "degraded"
    assert verdict["moved"][0]["figure"] == "error_rate"
    [request] = scaler_client.payloads
    assert request["action"] == "scale_down"
    assert request["nodegroups"] == [{"name": NODE_GROUP, "desired_size": 2}]
    assert request["request_id"] == f"change-validator-restore-{update_id}"
    assert verdict["restore"]["results"] == [
        {"nodegroup": NODE_GROUP, "status": "scaling_initiated"}
    ]
    assert desired_size() == 2
    # AND the restore's status and the critical alert say what the scaler did
    assert verdict["restore"]["status"] == "scaling_initiated"
    [alert] = validator.alerts()
    assert "asked to restore it: scaling_initiated" in alert["detail"]


def the_next_mornings_restore(validator: Validator) -> dict[str, Any]:
    """The scaler's result for `system` of the next morning's restore, 12 hours on: a size-less
    scale_up, as the schedule sends, which brings back the sizes a scale-down saved."""
    validator.clock.advance(12 * 3600)
    morning = scaler_app.lambda_handler(
        {
            "action": "scale_up",
            "account_id": MEMBER_ACCOUNT_ID,
            "region": REGION,
            "cluster": CLUSTER,
            "nodegroups": [{"name": NODE_GROUP}],
            "request_id": "morning-restore",
        },
        FakeLambdaContext(),
    )
    [group] = morning["results"]
    return dict(group)


def test_the_next_morning_restore_does_not_bring_back_the_size_an_automatic_restore_undid(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, a degraded bake, and the validator's restore back to 2
    degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    [verdict] = validator.advance(15)
    assert verdict["restore"]["status"] == "scaling_initiated", verdict
    assert desired_size() == 2
    # WHEN the next morning's restore arrives (a size-less scale_up, as the schedule sends)
    group = the_next_mornings_restore(validator)
    # THEN it does not bring back the 3 the validator undid: the restore saved no sizes for it
    assert group["status"] == "no_change_needed", group
    assert desired_size() == 2


def test_a_regression_after_a_scaler_change_it_did_not_record_is_not_restored_automatically(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, and the scaler taking
    # system from 2 to 3 nodes while DynamoDB refuses its change record (the change stands,
    # unrecorded), so the validator can read the size before it only from EKS, which already
    # shows the new one
    scaler_dynamodb = scaler_app.FUNCTION.services().sessions.hub_client("dynamodb")
    unrecorded = fail_every_attempt(scaler_dynamodb, "dynamodb", "TransactWriteItems")
    monkeypatch.setenv("VALIDATION_RESTORE_SCALER_CHANGES", "true")
    now, _, change = scaler_change_after_a_steady_quarter_hour(validator)
    unrecorded.healed = True
    assert unrecorded.attempts > 1
    validator.send(change)
    # WHEN the endpoint fails half its requests through the bake, and the bake ends
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 7, latency_ms=100)
    record_endpoint_results(
        validator.state, now + timedelta(minutes=8), 7, latency_ms=100, ok=False
    )
    [verdict] = validator.advance(15)
    # THEN the change is degraded, and the scaler is not asked to "restore" a size the fleet
    # does not know was the one before: the rollback is left to a person, saying why
    assert verdict["status"] == "degraded", verdict
    assert scaler_client.payloads == []
    assert "restore" not in verdict
    assert verdict["rollback"]["automatic"] is False
    [alert] = validator.alerts()
    assert "The scaler was asked" not in alert["detail"]
    assert "the scaler's record of this change was not found" in alert["detail"]


def test_a_failed_scaler_change_that_left_the_size_as_it_was_says_there_is_nothing_to_restore(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, and the scaler's update
    # of system from 2 to 3 nodes that EKS reports failed, the node group left at 2
    monkeypatch.setenv("VALIDATION_RESTORE_SCALER_CHANGES", "true")
    _, _, change = scaler_change_after_a_steady_quarter_hour(validator)
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName=NODE_GROUP, scalingConfig={"desiredSize": 2}
    )
    validator.eks_updates.status = "Failed"
    # WHEN its record arrives
    verdict = validator.send(change)
    # THEN the change failed, the scaler is not asked, and the restore is skipped because the
    # node group is at the size before the change, not because of a later change that is not
    # there
    assert verdict["status"] == "failed", verdict
    assert scaler_client.payloads == []
    assert verdict["restore"]["status"] == "skipped"
    reason = verdict["restore"]["reason"]
    assert "already at desired size 2, the size before this change" in reason
    [alert] = validator.alerts()
    assert "a later change stands" not in alert["detail"]
    assert reason in alert["detail"]


def test_a_regression_in_a_dry_run_fleet_asks_the_scaler_for_a_dry_run_restore(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    # AND the fleet put in dry run (FLEET_DRY_RUN) during the bake
    monkeypatch.setenv("FLEET_DRY_RUN", "true")
    # WHEN the bake ends
    [verdict] = validator.advance(15)
    # THEN the change is degraded, and the scaler is asked for the restore as a dry run
    assert verdict["status"] == "degraded"
    [request] = scaler_client.payloads
    assert request["dry_run"] is True
    assert request["nodegroups"] == [{"name": NODE_GROUP, "desired_size": 2}]
    assert desired_size() == 3


def test_a_regression_does_not_restore_a_node_group_changed_again_since(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    # AND, during the bake, the on-call engineer raising system to 5 nodes
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName=NODE_GROUP, scalingConfig={"desiredSize": 5}
    )
    # WHEN the bake ends
    [verdict] = validator.advance(15)
    # THEN the change is degraded, but the scaler is not asked to go back to 2: the size the
    # change set is no longer there, so restoring would undo the later change
    assert verdict["status"] == "degraded"
    assert scaler_client.payloads == []
    assert desired_size() == 5
    assert verdict["restore"]["status"] == "skipped"
    assert "desired size 5, not the 3 this change set" in verdict["restore"]["reason"]
    # AND the critical alert says the restore was skipped and why
    [alert] = validator.alerts()
    assert "not restored automatically" in alert["detail"]


def test_the_verdict_alert_is_sent_exactly_once_when_sns_fails_and_the_callback_is_retried(
    validator: Validator,
) -> None:
    # GIVEN a node group update that slowed the endpoint, baking, and SNS unreachable
    update_id = "7e6d5c4b-0000-4111-8222-933344445555"
    node_group_update_baking(validator, update_id, LAUNCH_TEMPLATE_UPDATE, bake_latency_ms=900)
    services = validator.services[0]
    fault = fail_every_attempt(services.sessions.hub_client("sns"), "sns", "Publish")
    # WHEN the bake callback runs
    validator.clock.advance(15 * 60)
    with pytest.raises(AlertNotDeliveredError):
        validator.fire_due_callbacks()
    # THEN the invocation failed after botocore's retries, the verdict is stored, nothing sent
    assert fault.attempts > 1
    stored = load_record(services, update_id)
    assert stored is not None and stored["verdict"] == "degraded"
    assert validator.alerts() == []
    # WHEN SNS is back and Lambda retries the failed callback, and the callback comes twice
    fault.healed = True
    validator.clock.advance(60)
    callback = {"action": "follow_up", "validation_id": update_id}
    retried = validator.send(callback)
    again = validator.send(callback)
    # THEN the same verdict is answered, not judged again, and the alert went out exactly once,
    # naming the launch template version to go back to
    assert retried["status"] == again["status"] == "degraded"
    stored_again = load_record(services, update_id)
    assert stored_again is not None and stored_again["judged_at"] == stored["judged_at"]
    [alert] = validator.alerts()
    assert "launch_template" in alert["title"]
    assert "back to launch template" in alert["detail"]


def test_a_verdict_is_counted_once_when_its_alert_fails_and_its_callback_comes_again(
    validator: Validator, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a node group update that slowed the endpoint, baking, and SNS unreachable
    update_id = "7e6d5c4b-0000-4111-8222-933344445577"
    node_group_update_baking(validator, update_id, LAUNCH_TEMPLATE_UPDATE, bake_latency_ms=900)
    fault = fail_every_attempt(validator.services[0].sessions.hub_client("sns"), "sns", "Publish")
    capsys.readouterr()
    # WHEN the bake callback judges the update and fails on its alert, Lambda retries it once SNS
    # is back, and the scheduler delivers the callback once more
    validator.clock.advance(15 * 60)
    with pytest.raises(AlertNotDeliveredError):
        validator.fire_due_callbacks()
    fault.healed = True
    validator.clock.advance(60)
    callback = {"action": "follow_up", "validation_id": update_id}
    assert validator.send(callback)["status"] == "degraded"
    assert validator.send(callback)["status"] == "degraded"
    # THEN the verdict's metric was sent once over the three invocations, not once per answer
    assert capsys.readouterr().out.count('"ChangesDegraded":[1.0]') == 1


def test_a_bake_callback_killed_while_sns_hangs_is_alerted_once_by_the_platforms_retry(
    validator: Validator,
) -> None:
    # GIVEN a node group update that slowed the endpoint, baking
    update_id = "7e6d5c4b-0000-4111-8222-933344445556"
    node_group_update_baking(validator, update_id, LAUNCH_TEMPLATE_UPDATE, bake_latency_ms=900)
    validator.clock.advance(15 * 60)
    callback = {"action": "follow_up", "validation_id": update_id}
    # WHEN SNS never answers the verdict's Publish, so Lambda kills the bake callback at its
    # deadline (holding the validation's lock and the verdict's claim), and retries it a minute
    # later with the same Lambda request id
    retried = killed_while_publishing_then_retried(
        validator.services[0].sessions.hub_client("sns"),
        validator.clock,
        lambda context: validator.send(callback, context),
    )
    # THEN the retry judges nothing again and sends the verdict's critical alert, once
    assert retried["status"] == "degraded", retried
    [alert] = validator.alerts()
    assert "launch_template" in alert["title"]


def test_a_bake_callback_killed_holding_the_lock_does_not_keep_out_a_later_invocation(
    validator: Validator,
) -> None:
    # GIVEN a node group update that slowed the endpoint, baking
    update_id = "7e6d5c4b-0000-4111-8222-933344445558"
    node_group_update_baking(validator, update_id, LAUNCH_TEMPLATE_UPDATE, bake_latency_ms=900)
    validator.clock.advance(15 * 60)
    callback = {"action": "follow_up", "validation_id": update_id}
    later_invocation = FakeLambdaContext(aws_request_id="11111111-0000-4000-8000-000000000000")
    # WHEN SNS never answers the verdict's Publish, so Lambda kills the bake callback at its
    # deadline holding the validation's lock, and a minute later the callback comes again as
    # another invocation (another request id: the lock is not its own)
    again = killed_while_publishing_then_retried(
        validator.services[0].sessions.hub_client("sns"),
        validator.clock,
        lambda context: validator.send(
            callback,
            context if isinstance(context, ContextRunningOutOfTime) else later_invocation,
        ),
    )
    # THEN the killed invocation's lock ended with it: the later one sends the verdict's alert
    assert again["status"] == "degraded", again
    [alert] = validator.alerts()
    assert "launch_template" in alert["title"]


def test_a_validation_killed_at_its_deadline_is_opened_by_the_platforms_retry(
    validator: Validator,
) -> None:
    # GIVEN the scaler's change to node group system, and the member's EKS never answering the
    # validator's first DescribeNodegroup, so that invocation (the validator's whole timeout)
    # hangs holding the update's claim
    _, update_id, change = scaler_change_after_a_steady_quarter_hour(validator)
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    hang = hang_first_attempt(member_eks, "eks", "DescribeNodegroup")
    deadline = Invocation.from_context(
        ContextRunningOutOfTime(millis_left=[TIMEOUT_SECONDS * 1000])
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(app.FUNCTION.invoke, change, deadline)
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        # WHEN Lambda kills it at its deadline and retries the event a minute later
        validator.clock.advance(TIMEOUT_SECONDS + 60)
        retried = validator.send(change)
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry opened the validation (the dead invocation's claim did not answer "in
    # progress", which would end the retries with the change never validated)
    assert retried["status"] == "baking", retried
    assert retried["validation_id"] == update_id
    assert len(validator.schedules()) == 1


@pytest.mark.parametrize(
    "variable", ["VALIDATION_HEALTHY_RATIO_DROP", "VALIDATION_ERROR_RATE_INCREASE"]
)
def test_a_zero_regression_threshold_is_refused_naming_the_variable_and_changes_nothing(
    validator: Validator, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # GIVEN a threshold set to 0, under which a figure that did not move at all (a drop or a
    # growth of 0) would be a regression, so every change would be degraded (and every scaler
    # change restored)
    monkeypatch.setenv(variable, "0")
    change = node_group_version_update(validator, "0000bbbb-0000-4111-8222-933344445555")
    # WHEN a change arrives
    with pytest.raises(ConfigurationError) as refused:
        validator.send(change)
    # THEN the invocation fails naming the variable, and no validation was opened
    assert variable in str(refused.value)
    assert load_record(validator.services[0], "0000bbbb-0000-4111-8222-933344445555") is None
    assert validator.schedules() == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VALIDATION_LATENCY_INCREASE_RATIO", "inf"),
        ("VALIDATION_LATENCY_INCREASE_RATIO", "1e308"),
        ("VALIDATION_LATENCY_MIN_INCREASE_MS", "999999999999"),
    ],
)
def test_a_latency_threshold_past_its_bound_is_refused_naming_the_variable_and_changes_nothing(
    validator: Validator, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # GIVEN a latency threshold no growth can reach, under which no latency is ever a regression
    # and every change that slowed the endpoints would pass
    monkeypatch.setenv(variable, value)
    change = node_group_version_update(validator, "0000bbbb-0000-4111-8222-933344446666")
    # WHEN a change arrives
    with pytest.raises(ConfigurationError) as refused:
        validator.send(change)
    # THEN the invocation fails naming the variable and its bound, and no validation was opened
    assert f"{variable}: Input should be less than or equal to" in str(refused.value)
    assert load_record(validator.services[0], "0000bbbb-0000-4111-8222-933344446666") is None
    assert validator.schedules() == []


@pytest.mark.parametrize("checks", ["2017", "99999999999999999999"])
def test_follow_checks_that_would_take_over_a_week_are_refused_naming_the_variable(
    validator: Validator, monkeypatch: pytest.MonkeyPatch, checks: str
) -> None:
    # GIVEN so many follow checks, 5 minutes apart, that an update stuck in progress (or a bake
    # that cannot be measured) would be followed for more than a week, up to for ever
    monkeypatch.setenv("VALIDATION_MAX_FOLLOW_CHECKS", checks)
    change = node_group_version_update(validator, "0000bbbb-0000-4111-8222-933344449999")
    # WHEN a change arrives
    with pytest.raises(ConfigurationError) as refused:
        validator.send(change)
    # THEN the invocation fails naming the variable and the start of its value, and no
    # validation was opened
    message = str(refused.value)
    assert "VALIDATION_MAX_FOLLOW_CHECKS: checks VALIDATION_FOLLOW_MINUTES (5) apart" in message
    assert f"got {checks[:8]}" in message.replace("'", "") and len(message) < 200
    assert load_record(validator.services[0], "0000bbbb-0000-4111-8222-933344449999") is None
    assert validator.schedules() == []


def test_a_failed_call_is_ignored_and_changes_nothing(validator: Validator) -> None:
    # GIVEN the CloudTrail record of an UpdateNodegroupVersion that EKS refused
    change = cloudtrail_event(
        "UpdateNodegroupVersion", "0000aaaa-0000-4111-8222-933344445555",
        validator.clock.now(), {"nodegroupName": NODE_GROUP},
    )  # fmt: skip
    change["detail"]["responseElements"] = None
    change["detail"]["errorCode"] = "InvalidParameterException"
    # WHEN it arrives
    result = validator.send(change)
    # THEN it is ignored with the reason, and no schedule was created
    assert result["status"] == "ignored"
    assert "InvalidParameterException" in result["reason"]
    assert validator.schedules() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "aws.ec2"}, "source: must be 'aws.eks', got 'aws.ec2'"),
        ({"source": "aws.eks" + "x" * 500}, "source: must be 'aws.eks', got 'aws.eksxxxxxxxxx"),
        (
            {"detail-type": "AWS Service Event via CloudTrail"},
            "detail-type: must be 'AWS API Call via CloudTrail', got 'AWS Service Event via",
        ),
        ({"detail": {"eventName": "DeleteCluster"}}, "detail.eventName"),
        ({"detail": {"requestParameters": {"name": None}}}, "detail.requestParameters.name"),
        ({"detail": {"requestParameters": {"nodegroupName": None}}}, "nodegroupName"),
        # Names that are no EKS names would reach EKS, the state table's keys and the alerts.
        (
            {"detail": {"requestParameters": {"name": "dev-apps](https://evil)"}}},
            "detail.requestParameters.name: must be an EKS name",
        ),
        (
            {"detail": {"requestParameters": {"clusterName": "<b>dev</b>\n" + "x" * 5000}}},
            "detail.requestParameters.clusterName: must be an EKS name",
        ),
        (
            {"detail": {"requestParameters": {"nodegroupName": "s" * 64}}},
            "detail.requestParameters.nodegroupName: must be an EKS name",
        ),
        (
            {"detail": {"requestParameters": {"labels": {"removeLabels": "tier"}}}},
            "detail.requestParameters.labels.removeLabels",
        ),
        (
            {"detail": {"requestParameters": {"taints": {"addOrUpdateTaints": [{"key": 7}]}}}},
            "detail.requestParameters.taints.addOrUpdateTaints[0].key: Input should be",
        ),
        ({"detail": {"responseElements": {"update": {"id": "no spaces allowed"}}}}, "update.id"),
        # Longer than an EKS update id (a UUID): its callbacks' schedule names (`<id>-bake`) would
        # pass Scheduler's 64 characters, so the validation could never book one.
        ({"detail": {"responseElements": {"update": {"id": "a" * 60}}}}, "update.id"),
        # Past the calendar's ends once in UTC, and without an offset.
        ({"time": "9999-12-31T23:59:59-14:00"}, "time: '9999-12-31T23:59:59-14:00' is outside"),
        ({"time": "0001-01-01T00:00:00+14:00"}, "time: '0001-01-01T00:00:00+14:00' is outside"),
        ({"time": "2025-06-02T03:30:05"}, "time: Input should have timezone info"),
        # The change's own second as Unix seconds, which pydantic alone would read as that time.
        ({"time": 1748835005}, "time: must be an ISO 8601 time as text, not a number"),
        # Not a time CloudTrail wrote: its baseline would hold no result from before it.
        ({"time": "2099-01-01T00:00:00Z"}, "time: 2099-01-01T00:00:00Z is more than 5 minutes"),
        # Older than a validation's record is kept (a replay would open it again), and, this
        # near the calendar's start, without a baseline window before it.
        ({"time": "0001-01-01T00:05:00Z"}, "time: 0001-01-01T00:05:00Z is more than 30 days"),
        ({"time": "2025-05-02T03:29:59Z"}, "time: 2025-05-02T03:29:59Z is more than 30 days"),
    ],
)
def test_a_bad_change_event_is_refused_naming_the_field_and_changes_nothing(
    validator: Validator, change: dict[str, Any], field: str
) -> None:
    # GIVEN the record of a node group update with one field wrong
    event = cloudtrail_event(
        "UpdateNodegroupVersion", "0000bbbb-0000-4111-8222-933344445555",
        validator.clock.now(), {"nodegroupName": NODE_GROUP},
    )  # fmt: skip
    for key, value in change.items():
        if key == "detail":
            for detail_key, detail_value in value.items():
                if isinstance(detail_value, dict) and detail_key == "requestParameters":
                    event["detail"][detail_key].update(detail_value)
                else:
                    event["detail"][detail_key] = detail_value
        else:
            event[key] = value
    # WHEN it arrives
    result = validator.send(event)
    # THEN it is refused naming the field (and a short prefix of a wrong value), and nothing
    # was scheduled or recorded
    assert result["status"] == "error"
    assert field in result["error"]
    assert len(result["error"]) < 240
    assert validator.schedules() == []
    table = boto3.client("dynamodb", region_name=REGION)
    assert table.scan(TableName="lambda-fleet-state")["Items"] == []


TAGGING = "resource-groups-tagging-api"
"""The Resource Groups Tagging API's event name: its GetResources is a measurement's first load
balancer request."""


def member_tagging() -> Any:
    """The validator's own Resource Groups Tagging API client in the member account (the one its
    measurements find the cluster's load balancers with)."""
    return app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)(
        "resourcegroupstaggingapi"
    )


def assert_a_failed_check_is_counted_and_the_next_booked(
    validator: Validator, answer: dict[str, Any], update_id: str
) -> str:
    """The bake goes on after a check that could not measure: the check is counted with its one
    error in the record, the next check is booked, nothing is alerted. The error."""
    assert answer["status"] == "baking", answer
    stored = load_record(validator.services[0], update_id)
    assert stored is not None and stored["failed_checks"] == 1
    [error] = stored["measurement_errors"]
    assert len(validator.schedules()) == 1
    assert validator.alerts() == []
    return str(error)


def test_a_bake_measurement_that_fails_is_retried_at_the_next_check(validator: Validator) -> None:
    # GIVEN a node group update baking, and the member's Tagging API unreachable when the bake
    # ends
    update_id = "4d5e6f70-0000-4111-8222-933344445555"
    node_group_update_baking(validator, update_id)
    fault = fail_every_attempt(member_tagging(), TAGGING, "GetResources")
    # WHEN the bake callback runs
    [retrying] = validator.advance(15)
    # THEN botocore retried, the invocation did not fail: the check is counted with its error in
    # the record and the next check is booked five minutes later, no verdict and no alert yet
    assert fault.attempts > 1
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "Could not connect to the endpoint URL" in error
    # WHEN the Tagging API is back at the next check
    fault.healed = True
    [verdict] = validator.advance(5)
    # THEN the bake is measured and judged
    assert verdict["status"] == "passed", verdict
    assert validator.schedules() == []
    assert validator.alerts() == []


def test_a_bake_check_whose_member_endpoint_hangs_is_counted_before_lambda_ends_it(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a node group update baking, and the member's Tagging API endpoint accepting
    # connections but never answering when the bake ends; the bake callback has the validator's
    # whole timeout
    update_id = "4d5e6f70-0000-4111-8222-933344445566"
    node_group_update_baking(validator, update_id)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    hung = hang_every_attempt(member_tagging(), TAGGING, "GetResources", time)
    [bake_callback] = validator.due_callbacks_after(15)
    # WHEN the bake callback runs
    retrying = validator.send(bake_callback, time.context())
    # THEN the hung reads were given up well inside the invocation (Lambda did not end it, which
    # after its retries would leave the validation with no verdict and nothing booked): the check
    # is counted with its error and the next one booked
    assert hung.attempts > 1
    assert time.spent < 60, time.spent
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "Read timeout" in error


# Lambda ends the invocation before the validator adds a metric; Powertools then warns that it
# has none to flush.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_a_bake_check_lambda_ends_on_slow_member_endpoints_still_leaves_the_next_check_booked(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a node group update baking, and, when the bake ends, the member's Tagging API, EKS
    # and Auto Scaling each answering every call only at its last attempt (about 40 s a call):
    # each call ends inside its bound, but together they outlast the invocation
    # (ENDED_INVOCATION_SECONDS)
    update_id = "4d5e6f70-0000-4111-8222-933344447777"
    node_group_update_baking(validator, update_id)
    time = LambdaTime(ENDED_INVOCATION_SECONDS).spend_botocore_waits(monkeypatch)
    member = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)
    slow = [
        answer_at_the_last_attempt(member(service), event_name, operation, time)
        for service, event_name, operation in (
            ("resourcegroupstaggingapi", TAGGING, "GetResources"),
            ("eks", "eks", "DescribeNodegroup"),
            ("autoscaling", "auto-scaling", "DescribeAutoScalingGroups"),
        )
    ]
    [bake_callback] = validator.due_callbacks_after(15)
    # WHEN the bake callback runs and Lambda ends it at its timeout, and the platform's retry
    # comes a minute after that
    with pytest.raises(InvocationEndedError):
        validator.send(bake_callback, time.context())
    validator.clock.advance(time.seconds_left + PLATFORM_RETRY_SECONDS)
    time.spent = 0  # the retry's own time
    retried = validator.send(bake_callback, time.context())
    # THEN the killed check still left the next one booked, and the retry waits for it rather than
    # measure again
    assert all(operation.attempts > 1 for operation in slow[:2])
    assert retried["status"] == "baking", retried
    assert len(validator.schedules()) == 1
    # WHEN the member answers again by the next check
    time.spent = 0
    for operation in slow:
        operation.answers_at_attempt = 1
    [verdict] = validator.advance(5)
    # THEN the bake is measured and judged, the check Lambda ended counted as a failed one
    assert verdict["status"] == "passed", verdict
    assert validator.schedules() == []
    stored = load_record(validator.services[0], update_id)
    assert stored is not None and stored["failed_checks"] == 1
    [error] = stored["measurement_errors"]
    assert "did not finish: Lambda ended its invocation" in error


# Lambda ends the invocation before the validator adds a metric; Powertools then warns that it
# has none to flush.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_a_change_whose_baseline_lambda_ends_on_slow_member_endpoints_is_inconclusive_on_retry(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the member's EKS, Tagging API and Auto Scaling each answering every call only at its
    # last attempt (about 40 s a call) when a node group update arrives: together they outlast
    # the invocation (ENDED_INVOCATION_SECONDS)
    update_id = "4d5e6f70-0000-4111-8222-933344448888"
    time = LambdaTime(ENDED_INVOCATION_SECONDS).spend_botocore_waits(monkeypatch)
    member = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)
    for service, event_name, operation in (
        ("eks", "eks", "DescribeNodegroup"),
        ("resourcegroupstaggingapi", TAGGING, "GetResources"),
        ("autoscaling", "auto-scaling", "DescribeAutoScalingGroups"),
    ):
        answer_at_the_last_attempt(member(service), event_name, operation, time)
    change = node_group_version_update(validator, update_id)
    # WHEN Lambda ends the change's invocation at its timeout, and its first retry, each a minute
    # after the last, and the platform's last retry comes
    for _ in range(2):
        with pytest.raises(InvocationEndedError):
            validator.send(change, time.context())
        validator.clock.advance(time.seconds_left + PLATFORM_RETRY_SECONDS)
        time.spent = 0  # the retry's own time
    last = validator.send(change, time.context())
    # THEN the last retry ends the validation inconclusive (the health before the change was
    # never measured) instead of measuring again, ended too, and the event dead-lettered with no
    # verdict and no warning
    assert last["status"] == "inconclusive", last
    assert "did not finish (Lambda ended their invocations)" in last["reason"]
    assert validator.schedules() == []
    # AND one warning names the change
    [alert] = validator.alerts()
    assert alert["severity"] == "warning" and update_id in alert["detail"]


ENDLESS_PAGE_SECONDS = 25.0
"""What each page of the member's endless DescribeLoadBalancers spends of the invocation's time:
9 pages of the validator's 300 s, so two checks stay within the pages a test's endless listing
answers (REPEATED_TOKEN_PAGE_LIMIT)."""


def endless_load_balancer_pages(time: LambdaTime) -> EndlessSlowPages:
    """The member's Tagging API answering every GetResources with a next page under a new
    token, each page spending ENDLESS_PAGE_SECONDS of `time`."""
    endless = EndlessSlowPages(time, ENDLESS_PAGE_SECONDS, "PaginationToken")
    endless.register(member_tagging().meta.events, f"{TAGGING}.GetResources", "PaginationToken")
    return endless


def test_a_bake_check_whose_load_balancers_page_on_is_counted_and_the_validation_concludes_once(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN at most two checks, a node group update baking, and, when the bake ends, the
    # member's Tagging API answering GetResources page after page under new tokens
    monkeypatch.setenv("VALIDATION_MAX_FOLLOW_CHECKS", "2")
    update_id = "5e6f7081-0000-4111-8222-9333444455bb"
    node_group_update_baking(validator, update_id)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    endless = endless_load_balancer_pages(time)
    [bake_callback] = validator.due_callbacks_after(15)
    # WHEN the bake callback runs with the validator's whole timeout
    retrying = validator.send(bake_callback, time.context())
    # THEN the listing stopped while the invocation still had one hung member read and the
    # record's save left (Lambda did not end it): the check is counted with its error, the next
    # one booked
    assert endless.pages > 1
    assert time.seconds_left - time.spent > MEASUREMENT_RESERVE_SECONDS - ENDLESS_PAGE_SECONDS
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "GetResources read cut short before its next page" in error
    # WHEN the next check meets the same listing with its own whole timeout, and its callback is
    # delivered twice
    time.spent = 0
    [last_callback] = validator.due_callbacks_after(5)
    verdict = validator.send(last_callback, time.context())
    copy = validator.send(last_callback, time.context())
    # THEN the validation ends inconclusive once, nothing left waiting, with one warning
    assert verdict["status"] == copy["status"] == "inconclusive", verdict
    assert "could not be measured after 2 checks" in verdict["reason"]
    assert "cut short before its next page" in verdict["reason"]
    assert validator.schedules() == []
    [alert] = validator.alerts()
    assert alert["severity"] == "warning" and update_id in alert["detail"]


def test_a_change_whose_load_balancers_page_on_at_its_baseline_is_inconclusive_at_once(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the member's Tagging API answering GetResources page after page under new tokens
    # when a node group update arrives
    update_id = "5e6f7081-0000-4111-8222-9333444455cc"
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    endless = endless_load_balancer_pages(time)
    # WHEN the change's event is handled with the validator's whole timeout
    result = validator.send(node_group_version_update(validator, update_id), time.context())
    # THEN the baseline stopped reading in time (Lambda did not end it, nor will it end the
    # platform's retries) and the validation ends inconclusive at once, with one warning
    assert endless.pages > 1
    assert time.seconds_left - time.spent > MEASUREMENT_RESERVE_SECONDS - ENDLESS_PAGE_SECONDS
    assert result["status"] == "inconclusive", result
    assert "the baseline could not be measured" in result["reason"]
    assert "GetResources read cut short" in result["reason"]
    assert validator.schedules() == []
    [alert] = validator.alerts()
    assert alert["severity"] == "warning" and update_id in alert["detail"]


def test_the_validators_timeout_reads_300_load_balancers_and_waits_out_the_scaler() -> None:
    # GIVEN a cluster of 300 load balancers, each with its target group, alone in its region:
    # DescribeLoadBalancers of 20 at a time, a DescribeTargetGroups page, one
    # DescribeTargetHealth each, at the 10 Describe requests a second ELB allows an account (and
    # 3 GetResources pages, which are not ELB's)
    balancers = 300
    requests = math.ceil(balancers / DESCRIBE_BY_ARN_BATCH) + 1 + balancers
    seconds_needed = requests / ELB_DESCRIBE_REQUESTS_PER_SECOND
    # WHEN the validator's timeout is shared between reading and the reserve a measurement keeps
    reading_seconds = TIMEOUT_SECONDS - MEASUREMENT_RESERVE_SECONDS
    # THEN the measurement can read them all (at 120 s it had 29 s for the 31.6 s they take),
    # their traffic in 2 GetMetricData calls
    assert reading_seconds > seconds_needed, (reading_seconds, seconds_needed)
    assert math.ceil(3 * balancers / MAX_QUERIES_PER_CALL) == 2
    # AND after a measurement of that length a restore waits out the scaler's whole timeout,
    # and the validation's lock lasts as long as any invocation holding it
    restore_seconds = SCALER_CONNECT_TIMEOUT_SECONDS + SCALER_READ_TIMEOUT_SECONDS + FINISH_SECONDS
    assert function_spec("eks_scaler").timeout_seconds < SCALER_READ_TIMEOUT_SECONDS
    assert TIMEOUT_SECONDS - seconds_needed > restore_seconds
    assert LOCK_LEASE_SECONDS >= TIMEOUT_SECONDS


@pytest.mark.parametrize(
    ("server_error", "quoted"),
    [
        (None, "Could not connect to the endpoint URL"),
        (MULTI_LINE_PAGE, "(InternalServerError)"),
    ],
    ids=["unreachable", "a-proxy-page-answered"],
)
def test_a_bake_that_cannot_be_measured_by_the_last_check_is_inconclusive_with_one_warning(
    validator: Validator, monkeypatch: pytest.MonkeyPatch, server_error: str | None, quoted: str
) -> None:
    # GIVEN at most two checks, a node group update baking, and the member's Tagging API
    # unreachable, or answering with a proxy's page of thousands of characters over several
    # lines as its error's message
    monkeypatch.setenv("VALIDATION_MAX_FOLLOW_CHECKS", "2")
    update_id = "5e6f7081-0000-4111-8222-933344445555"
    node_group_update_baking(validator, update_id)
    fail_every_attempt(member_tagging(), TAGGING, "GetResources", server_error=server_error)
    # WHEN the bake callback and the one retry run, and the last callback is delivered twice
    [first] = validator.advance(15)
    [verdict] = validator.advance(5)
    copy = validator.send({"action": "follow_up", "validation_id": update_id})
    # THEN the validation ends inconclusive, saying why, with nothing left waiting
    assert first["status"] == "baking"
    assert verdict["status"] == copy["status"] == "inconclusive", verdict
    assert "could not be measured after 2 checks" in verdict["reason"]
    assert validator.schedules() == []
    # AND one warning alert names the change and a short prefix of the error
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"
    assert update_id in alert["detail"] and NODE_GROUP in alert["resource"]
    assert quoted in alert["detail"], alert["detail"]
    assert len(alert["detail"]) < 1000
    # AND the verdict and its alert quote the error on one line, a page's line breaks escaped
    assert "\n" not in verdict["reason"], verdict["reason"]


def test_a_baseline_whose_inventory_s3_refuses_with_a_page_quotes_it_in_one_line(
    validator: Validator,
) -> None:
    # GIVEN S3 (or a proxy before it) refusing the inventory's GetObject with a page: thousands
    # of characters over several lines, markup included, when a node group update arrives
    refusal = refuse_every_s3_attempt(
        validator.services[0].hub_client("s3"), "GetObject", url_with="fleet-inventory"
    )
    update_id = "6f708192-0000-4111-8222-9333444455dd"
    # WHEN its record arrives
    verdict = validator.send(node_group_version_update(validator, update_id))
    # THEN the validation ends inconclusive naming the inventory and S3's refusal, the page
    # quoted as the inventory's error quotes it, on one short line
    assert refusal.refused > 0
    assert verdict["status"] == "inconclusive", verdict
    assert "fleet inventory s3://" in verdict["reason"]
    assert "AccessDenied" in verdict["reason"]
    assert "\n" not in verdict["reason"] and len(verdict["reason"]) < 800, verdict["reason"]


def test_a_change_seen_after_the_results_before_it_are_gone_is_inconclusive_with_one_warning(
    validator: Validator,
) -> None:
    # GIVEN a node group update made three hours ago (its event redriven from the dead-letter
    # queue): the health monitor keeps two hours of endpoint results, so none from before it
    # is left, only those since, the endpoint failing every request
    made_at = validator.clock.now() - timedelta(hours=3)
    record_endpoint_results(validator.state, made_at, 180, latency_ms=100, ok=False)
    update_id = "6f708192-0000-4111-8222-933344440000"
    change = cloudtrail_event(
        "UpdateNodegroupVersion",
        update_id,
        made_at,
        {"nodegroupName": NODE_GROUP, "version": "1.20"},
    )
    validator.eks_updates.status = "Successful"
    # WHEN its record arrives, and is delivered again
    verdict = validator.send(change)
    again = validator.send(change)
    # THEN the validation ends inconclusive at once, saying how late the change was seen, rather
    # than baking against a baseline with no endpoint result and passing
    assert verdict["status"] == "inconclusive", verdict
    assert "seen 3.0 h after it was made" in verdict["reason"]
    assert again["duplicate"] is True and again["status"] == "inconclusive"
    assert validator.schedules() == []
    # AND one warning names the change
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"
    assert update_id in alert["detail"]


def test_a_baseline_that_cannot_be_read_is_inconclusive_with_one_warning(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN the member's Tagging API unreachable when a node group update arrives
    fault = fail_every_attempt(member_tagging(), TAGGING, "GetResources")
    update_id = "6f708192-0000-4111-8222-933344445555"
    change = node_group_version_update(validator, update_id)
    # WHEN its record arrives, and CloudTrail's event is delivered again
    verdict = validator.send(change)
    again = validator.send(change)
    # THEN botocore retried, and the validation ends inconclusive at once (no baseline to compare
    # with), recorded, the repeat answered as a duplicate, nothing left waiting
    assert fault.attempts > 1
    assert verdict["status"] == "inconclusive", verdict
    assert "baseline could not be measured" in verdict["reason"]
    assert again["duplicate"] is True and again["status"] == "inconclusive"
    stored = load_record(validator.services[0], update_id)
    assert stored is not None and stored["verdict"] == "inconclusive"
    assert validator.schedules() == []
    assert eks_updates.asked == 0
    # AND one warning alert names the change and the error
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"
    assert update_id in alert["detail"]
    assert "Could not connect to the endpoint URL" in alert["detail"]


def test_a_baseline_whose_endpoint_results_were_edited_by_hand_is_inconclusive_naming_them(
    validator: Validator,
) -> None:
    # GIVEN endpoint api's recent results edited by hand into a JSON list
    key = endpoint_history_key(f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}", "api")
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=validator.state.table_name,
        Item=unreadable_value(key, HISTORY_VALUE, {"S": f'["{SECRET}"]'}),
    )
    update_id = "6f708192-0000-4111-8222-933344445556"
    # WHEN a node group update arrives
    verdict = validator.send(node_group_version_update(validator, update_id))
    # THEN its validation ends inconclusive at once, naming the saved value, not its content,
    # rather than answer an error and stay open
    assert verdict["status"] == "inconclusive", verdict
    assert f"saved value {HISTORY_VALUE} of {key}: its data is a JSON list" in verdict["reason"]
    assert SECRET not in verdict["reason"]
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"


def test_an_update_whose_status_cannot_be_read_at_the_last_check_is_inconclusive(
    validator: Validator, eks_updates: EksUpdates, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN at most two checks, and DescribeUpdate refused at both
    monkeypatch.setenv("VALIDATION_MAX_FOLLOW_CHECKS", "2")
    eks_updates.status = REFUSED
    change = node_group_version_update(validator, "708192a3-0000-4111-8222-933344445555")
    # WHEN its record arrives and the second check comes
    assert validator.send(change)["status"] == "following"
    [verdict] = validator.advance(5)
    # THEN the fleet does not claim the update failed: it could not read it, and says so once
    assert verdict["status"] == "inconclusive", verdict
    assert "could not be read at the last of 2 checks" in verdict["reason"]
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"
    assert "AccessDeniedException" in alert["detail"]


def _describe_nodegroup_unreachable(member_eks: Any) -> tuple[Callable[[], bool], str]:
    fault = fail_every_attempt(member_eks, "eks", "DescribeNodegroup")
    return lambda: fault.attempts > 1, "could not be read"


def _describe_nodegroup_refused_with_a_page(member_eks: Any) -> tuple[Callable[[], bool], str]:
    # A server error whose message is a proxy's page of thousands of characters over many lines.
    fault = fail_every_attempt(member_eks, "eks", "DescribeNodegroup", server_error=MULTI_LINE_PAGE)
    return lambda: fault.attempts > 1, "could not be read (An error occurred (InternalServerError)"


def _describe_nodegroup_a_proxy_page(member_eks: Any) -> tuple[Callable[[], bool], str]:
    # A proxy's page (HTTP 200), which botocore hands on as an answer without the node group.
    page = answer_malformed(member_eks, "eks", "DescribeNodegroup", b"<html>gateway</html>")
    return lambda: page.answered >= 1, "DescribeNodegroup answered without nodegroup"


@pytest.mark.parametrize(
    "describe_fault",
    [
        _describe_nodegroup_unreachable,
        _describe_nodegroup_refused_with_a_page,
        _describe_nodegroup_a_proxy_page,
    ],
    ids=["unreachable", "refused-with-a-page", "proxy-page"],
)
def test_a_regression_whose_node_group_cannot_be_read_is_alerted_without_a_restore(
    validator: Validator,
    eks_updates: EksUpdates,
    scaler_client: ScalerThroughItsHandler,
    monkeypatch: pytest.MonkeyPatch,
    describe_fault: Callable[[Any], tuple[Callable[[], bool], str]],
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and the update still running when its record arrives
    monkeypatch.setenv("VALIDATION_RESTORE_SCALER_CHANGES", "true")
    _, _, change = scaler_change_after_a_steady_quarter_hour(validator)
    eks_updates.status = "InProgress"
    assert validator.send(change)["status"] == "following"
    # WHEN EKS reports it failed at the next check, and the member's DescribeNodegroup (the size
    # the restore starts from) is unreachable or answered with a page without the node group
    eks_updates.status = "Failed"
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    fault_met, reason = describe_fault(member_eks)
    [verdict] = validator.advance(5)
    # THEN the invocation did not fail: the verdict stands, nothing is restored on a size not
    # read, and the one critical alert says the restore is left to a person and why
    assert fault_met()
    assert verdict["status"] == "failed", verdict
    assert scaler_client.payloads == []
    assert verdict["restore"]["status"] == "skipped"
    assert reason in verdict["restore"]["reason"]
    # AND the reason quotes the error on one line, a page's line breaks escaped
    assert "\n" not in verdict["restore"]["reason"]
    [alert] = validator.alerts()
    assert alert["severity"] == "critical"
    assert "not restored automatically" in alert["detail"]


@pytest.mark.parametrize(
    ("operation", "change_of_kind", "lacking"),
    [
        pytest.param(
            "DescribeNodegroup",
            node_group_version_update,
            "DescribeNodegroup answered without nodegroup",
            id="node-group",
        ),
        pytest.param(
            "DescribeCluster",
            lambda validator, update_id: cloudtrail_event(
                "UpdateClusterVersion", update_id, validator.clock.now(), {"version": "1.20"}
            ),
            "DescribeCluster answered without cluster",
            id="cluster",
        ),
    ],
)
def test_a_change_whose_replaced_state_is_read_from_a_proxy_page_is_inconclusive_with_one_warning(
    validator: Validator,
    operation: str,
    change_of_kind: Any,
    lacking: str,
) -> None:
    # GIVEN the member's EKS answering `operation` with a proxy's page (HTTP 200), which botocore
    # hands on as an answer without the node group or cluster, when a change's record arrives
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    page = answer_malformed(member_eks, "eks", operation, b"<html>gateway</html>")
    update_id = "8192a3b4-0000-4111-8222-933344445555"
    # WHEN its record arrives
    verdict = validator.send(change_of_kind(validator, update_id))
    # THEN the invocation did not fail: the validation ends inconclusive at once (what the change
    # replaced cannot be read later), naming what the answer lacked, with one warning
    assert page.answered >= 1
    assert verdict["status"] == "inconclusive", verdict
    assert lacking in verdict["reason"]
    assert validator.schedules() == []
    [alert] = validator.alerts()
    assert alert["severity"] == "warning"
    assert lacking in alert["detail"]


def fail_the_record_save_after_the_next_callback_is_booked(validator: Validator) -> Any:
    """From the moment the next CreateSchedule succeeds, every PutItem of the validator fails
    (DynamoDB unreachable after botocore's retries); the fault, to heal it."""
    services = validator.services[0]
    dynamodb = services.sessions.hub_client("dynamodb")
    faults: list[Any] = []

    def after_booking(**_: Any) -> None:
        if not faults:
            faults.append(fail_every_attempt(dynamodb, "dynamodb", "PutItem"))

    services.scheduler.meta.events.register("after-call.scheduler.CreateSchedule", after_booking)
    return faults


def test_a_callback_booked_by_an_invocation_whose_record_was_not_saved_still_gets_a_verdict(
    validator: Validator, eks_updates: EksUpdates
) -> None:
    # GIVEN a node group update EKS reports in progress, and DynamoDB failing right after the
    # validator booked its next check, so the invocation fails with the schedule created but
    # the record not saved (the endpoint steady before it)
    update_id = "4d5e6f70-0000-4111-8222-933344445555"
    now = validator.clock.now()
    record_endpoint_results(validator.state, now - timedelta(minutes=15), 15, latency_ms=100)
    change = node_group_version_update(validator, update_id)
    faults = fail_the_record_save_after_the_next_callback_is_booked(validator)
    with pytest.raises(EndpointConnectionError):
        validator.send(change)
    [booked] = [(s["Name"], s["ScheduleExpression"]) for s in validator.schedules()]
    # WHEN DynamoDB is back and Lambda retries the event a minute later
    faults[0].healed = True
    validator.clock.advance(60)
    retried = validator.send(change)
    # THEN the retry keeps the one callback already booked, and waits for its time
    assert retried["status"] == "following", retried
    assert [(s["Name"], s["ScheduleExpression"]) for s in validator.schedules()] == [booked]
    assert retried["next_check_at"] == booked[1].removeprefix("at(").removesuffix(")") + "Z"
    # WHEN EKS reports the update done and that callback fires at its time
    eks_updates.status = "Successful"
    [baking] = validator.advance(4)
    # THEN it checks the update (not taken for an early copy), and the bake goes to a verdict
    assert baking["status"] == "baking", baking
    [verdict] = validator.advance(15)
    assert verdict["status"] == "passed", verdict


def test_a_bake_booked_by_an_invocation_whose_record_was_not_saved_gives_the_verdict_on_time(
    validator: Validator,
) -> None:
    # GIVEN the scaler's change, which EKS reports done at once, and DynamoDB failing right
    # after the validator booked the bake's callback
    _, _, change = scaler_change_after_a_steady_quarter_hour(validator)
    faults = fail_the_record_save_after_the_next_callback_is_booked(validator)
    with pytest.raises(EndpointConnectionError):
        validator.send(change)
    # WHEN DynamoDB is back and Lambda retries the event a minute later
    faults[0].healed = True
    validator.clock.advance(60)
    retried = validator.send(change)
    # THEN the bake ends when its one callback fires, which gives the verdict
    [booked] = validator.schedules()
    assert retried["bake_until"] == booked["ScheduleExpression"][3:-1] + "Z"
    [verdict] = validator.advance(14)
    assert verdict["status"] == "passed", verdict


class ScalerAnsweringBeforeDynamoDbFails(ScalerThroughItsHandler):
    """The scaler through its handler; once it has answered, every PutItem of the validator
    fails (DynamoDB unreachable after botocore's retries) until `fault` is healed."""

    def __init__(self, validator_dynamodb: Any) -> None:
        super().__init__()
        self._dynamodb = validator_dynamodb
        self.fault: Any = None

    def invoke(self, **arguments: Any) -> dict[str, Any]:
        answer = super().invoke(**arguments)
        if self.fault is None:
            self.fault = fail_every_attempt(self._dynamodb, "dynamodb", "PutItem")
        return answer


def assert_restored_when_asked_again(
    validator: Validator, answer: dict[str, Any], request_id: str
) -> None:
    """The scaler was asked once more, with `request_id`, and restored 2 nodes; the answer's
    record says so, and no second alert went out."""
    [request] = validator.scaler.payloads
    assert request["request_id"] == request_id
    assert desired_size() == 2
    assert answer["restore"]["status"] == "scaling_initiated", answer["restore"]
    assert validator.alerts() == []


def test_a_restore_whose_answer_was_not_saved_is_announced_as_the_restore_it_was(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    update_id = degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    # AND DynamoDB failing right after the scaler answered the restore
    scaler = ScalerAnsweringBeforeDynamoDbFails(
        validator.services[0].sessions.hub_client("dynamodb")
    )
    monkeypatch.setattr(ValidatorServices, "scaler_client", lambda _self, _seconds: scaler)
    # WHEN the bake callback runs
    validator.clock.advance(15 * 60)
    with pytest.raises(EndpointConnectionError):
        validator.fire_due_callbacks()
    # THEN the scaler restored 2 nodes, but the invocation failed before the alert
    assert desired_size() == 2
    assert validator.alerts() == []
    # WHEN DynamoDB is back and Lambda retries the callback a minute later
    scaler.fault.healed = True
    validator.clock.advance(60)
    retried = validator.send({"action": "follow_up", "validation_id": update_id})
    # THEN the scaler was asked again with the same request id only, and changed nothing more
    [first, again] = scaler.payloads
    assert first == again and first["request_id"] == f"change-validator-restore-{update_id}"
    assert desired_size() == 2
    # AND the record and the one critical alert say the scaler restored it (not that the
    # restored size was a later change that stands)
    assert retried["restore"]["status"] == "scaling_initiated", retried["restore"]
    [alert] = validator.alerts()
    assert "asked to restore it: scaling_initiated" in alert["detail"]


def test_a_restore_the_scaler_answers_too_late_is_alerted_once_as_unknown_and_asked_again(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    update_id = degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    # AND the scaler taking longer to answer than the bake callback waits (waiting on its lock)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    monkeypatch.setattr(ValidatorServices, "scaler_client", SCALER_CLIENT)
    services = validator.services[0]
    hub = services.sessions.session(services.sessions.hub_account_id, REGION)
    slow_scaler = HungOperation(time)
    hub.events.register_first("before-parameter-build.lambda.Invoke", slow_scaler.note_config)
    hub.events.register_first("before-send.lambda.Invoke", slow_scaler.hang)
    [bake_callback] = validator.due_callbacks_after(15)
    # WHEN the bake callback runs
    verdict = validator.send(bake_callback, time.context())
    # THEN the scaler was asked once, and its answer given up in time for the verdict (Lambda
    # ending the invocation would leave it, every retry, without its alert)
    assert slow_scaler.attempts == 1
    assert time.spent < TIMEOUT_SECONDS, time.spent
    assert verdict["status"] == "degraded"
    # AND the restore stays asked with its request, so a later run asks again with the same id
    request_id = f"change-validator-restore-{update_id}"
    assert verdict["restore"]["status"] == "asked", verdict["restore"]
    assert verdict["restore"]["request"]["request_id"] == request_id
    # AND the one critical alert says the restore was asked and its outcome is unknown
    [alert] = validator.alerts()
    assert alert["severity"] == "critical"
    unknown = f"asked to restore it (request {request_id}), but its outcome is unknown"
    assert f"{unknown}: the scaler did not answer in time" in alert["detail"], alert["detail"]
    assert "may still complete it" in alert["detail"]
    # WHEN the callback is delivered again with 25 s left, too little to wait for the scaler
    monkeypatch.setattr(ValidatorServices, "scaler_client", lambda _self, _seconds: scaler_client)
    short = validator.send(bake_callback, ContextRunningOutOfTime(millis_left=[25_000]))
    # THEN the scaler is not asked, and the restore stays asked with its request
    assert scaler_client.payloads == []
    assert short["restore"]["status"] == "asked", short["restore"]
    assert short["restore"]["request"]["request_id"] == request_id
    # WHEN the callback is delivered again and the scaler answers now
    again = validator.send(bake_callback)
    # THEN the scaler was asked again with the same request id and restored 2 nodes, and the
    # record says so, without a second alert
    assert_restored_when_asked_again(validator, again, request_id)


@dataclass
class SlowNodeGroupReadAtTheRestore:
    """The member's DescribeNodegroup: the bake's read answers, then the restore's read hangs
    for its read timeout on all but its last attempt (an endpoint that answers late)."""

    time: LambdaTime
    read_timeout: float
    hung_attempts: int
    calls: int = 0

    def __call__(self, request: Any, **_: Any) -> None:
        self.calls += 1
        if 1 < self.calls <= 1 + self.hung_attempts:
            self.time.spend(self.read_timeout)
            raise ReadTimeoutError(endpoint_url=request.url)


@pytest.mark.parametrize(
    ("seconds_left", "scaler_asks", "restore_status", "alert_says"),
    [
        pytest.param(120, 1, "asked", "its outcome is unknown", id="time-left-to-ask"),
        pytest.param(60, 0, "skipped", "too little time left", id="too-little-left-to-ask"),
    ],
)
def test_a_restore_whose_node_group_read_was_slow_waits_for_the_scaler_only_in_the_time_left(  # noqa: PLR0917
    validator: Validator,
    monkeypatch: pytest.MonkeyPatch,
    seconds_left: int,
    scaler_asks: int,
    restore_status: str,
    alert_says: str,
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    # AND, in a bake callback with `seconds_left`, the member's EKS answering the restore's read
    # of the node group's size only at its last attempt (about 40 s spent), and the scaler
    # taking longer to answer than the invocation has left
    time = LambdaTime(seconds_left).spend_botocore_waits(monkeypatch)
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    attempts = member_eks.meta.config.retries["total_max_attempts"]
    slow_read = SlowNodeGroupReadAtTheRestore(
        time, member_eks.meta.config.read_timeout, hung_attempts=attempts - 1
    )
    member_eks.meta.events.register_first("before-send.eks.DescribeNodegroup", slow_read)
    monkeypatch.setattr(ValidatorServices, "scaler_client", SCALER_CLIENT)
    services = validator.services[0]
    hub = services.sessions.session(services.sessions.hub_account_id, REGION)
    slow_scaler = HungOperation(time)
    hub.events.register_first("before-parameter-build.lambda.Invoke", slow_scaler.note_config)
    hub.events.register_first("before-send.lambda.Invoke", slow_scaler.hang)
    [bake_callback] = validator.due_callbacks_after(15)
    # WHEN the bake callback runs
    verdict = validator.send(bake_callback, time.context())
    # THEN the wait for the scaler counted the time the read took: the scaler was asked only
    # with time left to wait for it, and given up in time for the verdict and its one critical
    # alert, before Lambda ends the invocation
    assert slow_read.calls == 1 + attempts
    assert slow_scaler.attempts == scaler_asks
    assert time.spent < seconds_left, time.spent
    assert verdict["status"] == "degraded"
    assert verdict["restore"]["status"] == restore_status, verdict["restore"]
    [alert] = validator.alerts()
    assert alert_says in alert["detail"]


def test_a_restore_with_too_little_time_left_for_the_scalers_answer_is_left_to_a_person(
    validator: Validator, scaler_client: ScalerThroughItsHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    [bake_callback] = validator.due_callbacks_after(15)
    # WHEN the bake callback runs with 25 s left, too little to wait for the scaler and then
    # save the verdict and send its alert
    verdict = validator.send(bake_callback, ContextRunningOutOfTime(millis_left=[25_000]))
    # THEN the scaler is not asked, and the one critical alert leaves the restore to a person
    assert verdict["status"] == "degraded"
    assert scaler_client.payloads == []
    assert desired_size() == 3
    assert verdict["restore"]["status"] == "skipped", verdict["restore"]
    [alert] = validator.alerts()
    assert "not restored automatically" in alert["detail"]
    assert "too little time left (25 s)" in alert["detail"]


def restore_asked_while_the_scaler_is_busy(
    validator: Validator, state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The update id, bake callback and verdict of a degraded bake of a scaler change the
    validator may restore (`degraded_bake_of_a_restorable_scaler_change`), its callback run
    while the scaler is still at work on the restore's request id (asked by an earlier attempt)."""
    update_id = degraded_bake_of_a_restorable_scaler_change(validator, monkeypatch)
    [bake_callback] = validator.due_callbacks_after(15)
    request_id = f"change-validator-restore-{update_id}"
    scaler_request = f"{MEMBER_ACCOUNT_ID}/{REGION}/{CLUSTER}/{request_id}"
    with state_table.idempotent(scaler_app.FUNCTION.services().function_name, scaler_request, 600):
        verdict = validator.send(bake_callback)
    return update_id, bake_callback, verdict


def test_a_restore_the_scaler_is_still_working_on_is_alerted_as_unknown_and_asked_again(
    validator: Validator,
    state_table: StateTable,
    scaler_client: ScalerThroughItsHandler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a stack that lets the validator restore the scaler's changes, the scaler taking
    # system from 2 to 3 nodes, and a bake in which the endpoint fails half its requests
    # AND the scaler still at work on the restore's request id (asked by an earlier attempt)
    # WHEN the bake callback runs
    update_id, bake_callback, verdict = restore_asked_while_the_scaler_is_busy(
        validator, state_table, monkeypatch
    )
    request_id = f"change-validator-restore-{update_id}"
    # THEN the scaler answered that the request is in progress, and the restore stays asked
    # with its request, so a later run asks again with the same id
    [busy] = scaler_client.payloads
    assert busy["request_id"] == request_id
    assert verdict["status"] == "degraded"
    assert verdict["restore"]["status"] == "asked", verdict["restore"]
    # AND the one critical alert says its outcome is unknown (not that the restore failed)
    [alert] = validator.alerts()
    unknown = f"asked to restore it (request {request_id}), but its outcome is unknown"
    assert f"{unknown}: " in alert["detail"] and "already in progress" in alert["detail"]
    # WHEN the callback is delivered again once the scaler is free
    scaler_client.payloads.clear()
    again = validator.send(bake_callback)
    # THEN the scaler was asked again with the same id and restored 2 nodes, without a second
    # alert
    assert_restored_when_asked_again(validator, again, request_id)


def test_a_restore_asked_again_does_not_undo_a_change_made_since_it_was_first_asked(
    validator: Validator,
    state_table: StateTable,
    scaler_client: ScalerThroughItsHandler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a degraded bake of a scaler change the validator may restore (system from 2 to 3),
    # whose restore was asked while the scaler was still at work on its request id: the
    # restore stays asked, its outcome unknown
    update_id, bake_callback, verdict = restore_asked_while_the_scaler_is_busy(
        validator, state_table, monkeypatch
    )
    assert verdict["restore"]["status"] == "asked", verdict["restore"]
    [alert] = validator.alerts()
    assert "its outcome is unknown" in alert["detail"]
    # AND, since, the on-call engineer raising system to 5 nodes (the scaler's earlier run of
    # the request never changed it)
    eks = member_session(MEMBER_ACCOUNT_ID).client("eks")
    eks.update_nodegroup_config(
        clusterName=CLUSTER, nodegroupName=NODE_GROUP, scalingConfig={"desiredSize": 5}
    )
    # WHEN the callback is delivered again, the scaler free
    scaler_client.payloads.clear()
    again = validator.send(bake_callback)
    # THEN the scaler is not asked again: the later change stands
    assert scaler_client.payloads == []
    assert desired_size() == 5
    # AND the record says the restore was skipped, why, and which request's outcome is unknown
    request_id = f"change-validator-restore-{update_id}"
    assert again["restore"]["status"] == "skipped", again["restore"]
    reason = again["restore"]["reason"]
    assert "desired size 5, neither the 3 this change set nor the 2 before it" in reason, reason
    assert request_id in reason
    # AND no second alert goes out
    assert validator.alerts() == []


def test_a_restore_stored_by_the_version_before_save_sizes_is_asked_again_saving_no_sizes(
    validator: Validator,
    state_table: StateTable,
    scaler_client: ScalerThroughItsHandler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a degraded bake of a scaler change the validator may restore, whose restore was
    # asked while the scaler was still at work on its request id: the restore stays asked
    update_id, bake_callback, verdict = restore_asked_while_the_scaler_is_busy(
        validator, state_table, monkeypatch
    )
    request_id = f"change-validator-restore-{update_id}"
    assert verdict["restore"]["status"] == "asked", verdict["restore"]
    # AND its record holding the request as the version before `save_sizes` stored it
    record = load_record(validator.services[0], update_id)
    assert record is not None
    del record["restore"]["request"]["save_sizes"]
    state_table.put_value(record_key(update_id), RECORD_NAME, record, RECORD_TTL_SECONDS)
    # WHEN this version delivers the callback again, the scaler free
    scaler_client.payloads.clear()
    again = validator.send(bake_callback)
    # THEN the scaler is asked again with the same request id, saving no sizes, and restores 2
    [request] = scaler_client.payloads
    assert (request["request_id"], request.get("save_sizes", True)) == (request_id, False)
    assert again["restore"]["status"] == "scaling_initiated", again["restore"]
    assert desired_size() == 2
    # AND the next morning's restore does not bring back the 3 the validator undid
    group = the_next_mornings_restore(validator)
    assert group["status"] == "no_change_needed", group
    assert desired_size() == 2


def test_a_change_whose_claim_outlived_a_failed_invocation_is_validated_by_a_later_retry(
    validator: Validator,
) -> None:
    # GIVEN the scaler's change, and DynamoDB failing right after the validator claimed the
    # update (its record cannot be saved, nor its claim released), 110 s before its deadline
    _, update_id, change = scaler_change_after_a_steady_quarter_hour(validator)
    dynamodb = validator.services[0].sessions.hub_client("dynamodb")
    faults: list[Any] = []

    def after_the_claim(**_: Any) -> None:
        if not faults:
            faults.extend(
                fail_every_attempt(dynamodb, "dynamodb", operation)
                for operation in ("PutItem", "DeleteItem")
            )

    dynamodb.meta.events.register("after-call.dynamodb.PutItem", after_the_claim)
    deadline = Invocation.from_context(ContextRunningOutOfTime(millis_left=[110_000]))
    with pytest.raises(EndpointConnectionError):
        app.FUNCTION.invoke(change, deadline)
    # WHEN DynamoDB is back and Lambda retries the event a minute later, while the failed
    # invocation's claim still stands
    for fault in faults:
        fault.healed = True
    validator.clock.advance(60)
    # THEN that retry fails, so Lambda retries again (an answer would end the retries)
    with pytest.raises(ValidationInProgressError):
        validator.send(change)
    # AND the next retry, two minutes later, opens the validation
    validator.clock.advance(120)
    retried = validator.send(change)
    assert retried["status"] == "baking", retried
    assert retried["validation_id"] == update_id
    assert len(validator.schedules()) == 1


def test_a_bake_check_answered_with_a_proxy_page_is_counted_and_the_next_booked(
    validator: Validator,
) -> None:
    # GIVEN a node group update baking, and the member's Tagging API answering GetResources
    # with a proxy's page (HTTP 200, text/html) when the bake ends
    update_id = "4d5e6f70-0000-4111-8222-933344445577"
    node_group_update_baking(validator, update_id)
    page = answer_malformed(
        member_tagging(),
        TAGGING,
        "GetResources",
        b"<html><body>Bad gateway<br></body></html>" + b"x" * 2000,
        content_type="text/html",
    )
    # WHEN the bake callback runs
    [retrying] = validator.advance(15)
    # THEN the invocation did not fail: the check is counted with a short line of its error in
    # the record, and the next check is booked, no verdict and no alert yet
    assert page.answered >= 1
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "Unable to parse response" in error
    assert len(error) <= 250


def test_a_node_group_described_with_a_proxy_page_at_the_bake_is_a_failed_check_and_the_next_booked(
    validator: Validator,
) -> None:
    # GIVEN a node group update baking, and the member's EKS answering DescribeNodegroup with a
    # proxy's page (HTTP 200) that botocore hands on as an answer without the node group
    update_id = "4d5e6f70-0000-4111-8222-933344445588"
    node_group_update_baking(validator, update_id)
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    page = answer_malformed(member_eks, "eks", "DescribeNodegroup", b"<html>gateway</html>")
    # WHEN the bake callback runs
    [retrying] = validator.advance(15)
    # THEN the invocation did not fail: the check is counted with its error naming the call and
    # what its answer lacked, and the next check is booked, no verdict and no alert yet
    assert page.answered >= 1
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "DescribeNodegroup" in error
    assert "without nodegroup" in error


def test_a_node_group_described_with_a_null_auto_scaling_group_at_the_bake_is_a_failed_check(
    validator: Validator,
) -> None:
    # GIVEN a node group update baking, and the member's EKS answering DescribeNodegroup with
    # its JSON listing a null among the node group's Auto Scaling groups
    update_id = "4d5e6f70-0000-4111-8222-9333444455aa"
    node_group_update_baking(validator, update_id)
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    body = {
        "nodegroup": {
            "nodegroupName": "system",
            "scalingConfig": {"minSize": 1, "maxSize": 5, "desiredSize": 3},
            "resources": {"autoScalingGroups": [None]},
        }
    }
    page = answer_malformed(
        member_eks,
        "eks",
        "DescribeNodegroup",
        json.dumps(body).encode(),
        content_type="application/json",
    )
    # WHEN the bake callback runs
    [retrying] = validator.advance(15)
    # THEN the check is counted with its error naming the call and the list, instead of the
    # bare AttributeError that failed the invocation, and the next check is booked
    assert page.answered >= 1
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "answered without an object with a text name for each resources.autoScalingGroups" in (
        error
    )


@pytest.mark.parametrize(
    ("body", "error_says"),
    [
        pytest.param(
            b"<html>gateway</html>",
            "ListNodegroups of dev-apps answered without nodegroups",
            id="a-proxy-page",
        ),
        pytest.param(
            b'{"nodegroups": ["system", null]}',
            "ListNodegroups of dev-apps answered without a text name for each of nodegroups",
            id="a-null-name",
        ),
    ],
)
def test_a_cluster_change_whose_node_group_listing_eks_would_not_send_is_a_failed_check(
    validator: Validator, body: bytes, error_says: str
) -> None:
    # GIVEN a cluster version update baking after a steady quarter hour, and the member's EKS
    # answering ListNodegroups with a proxy's page (HTTP 200) that botocore hands on as an
    # answer without the list, or with its JSON listing a null name (botocore keeps a null
    # among a list's items)
    update_id = "9d8c7b6a-0000-4111-8222-933344445599"
    now = validator.clock.now()
    record_endpoint_results(validator.state, now - timedelta(minutes=15), 15, latency_ms=100)
    validator.eks_updates.status = "Successful"
    started = validator.send(
        cloudtrail_event("UpdateClusterVersion", update_id, now, {"version": "1.20"})
    )
    assert started["status"] == "baking", started
    record_endpoint_results(validator.state, now + timedelta(minutes=1), 14, latency_ms=100)
    member_eks = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("eks")
    page = answer_malformed(member_eks, "eks", "ListNodegroups", body)
    # WHEN the bake callback runs
    [retrying] = validator.advance(15)
    # THEN the check is counted with its error naming the call and what its answer lacked,
    # rather than judging a cluster without node groups or failing the invocation with a bare
    # TypeError, and the next check is booked
    assert page.answered >= 1
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert error_says in error


def test_a_bake_check_whose_auto_scaling_groups_come_without_their_list_is_a_failed_check(
    validator: Validator,
) -> None:
    # GIVEN a node group update baking, and the member's Auto Scaling answering
    # DescribeAutoScalingGroups with an answer of the call's own shape holding none of its fields
    # (HTTP 200), not even the list Auto Scaling (and moto) always sends
    update_id = "4d5e6f70-0000-4111-8222-933344445599"
    node_group_update_baking(validator, update_id)
    autoscaling = app.FUNCTION.services().member_client(MEMBER_ACCOUNT_ID, REGION)("autoscaling")
    page = answer_malformed(
        autoscaling,
        "autoscaling",
        "DescribeAutoScalingGroups",
        b"<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult/>"
        b"</DescribeAutoScalingGroupsResponse>",
    )
    # WHEN the bake callback runs
    [retrying] = validator.advance(15)
    # THEN the check is counted with its error naming the call and the list it lacked, rather
    # than measuring no ready node (a regression that is not there), and the next one is booked
    assert page.answered >= 1
    error = assert_a_failed_check_is_counted_and_the_next_booked(validator, retrying, update_id)
    assert "DescribeAutoScalingGroups answered without AutoScalingGroups" in error
