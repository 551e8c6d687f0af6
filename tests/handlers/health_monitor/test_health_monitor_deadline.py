"""health_monitor against its 120 s timeout when an endpoint hangs: STS (every member session
starts with AssumeRole), SNS (the alerts) and a member cluster's own (EKS).

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's read timeout
of the invocation's time, botocore's waits between attempts spend theirs, and once the time is up
the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.sessions import (
    HUB_ATTEMPTS,
    HUB_CALL_SECONDS,
    HUB_READ_TIMEOUT_SECONDS,
    MEMBER_CALL_SECONDS,
    STATE_TABLE_ATTEMPTS,
    STATE_TABLE_CALL_SECONDS,
)
from fleet_shared.unanswered_endpoints import EndpointNotAnsweringError
from handlers.health_monitor.services import HealthServices
from tests.handlers.deadlines import HungOperation, LambdaTime, hang_every_attempt

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["health_monitor"].timeout_seconds
FLEET_RUN = {"action": "check_fleet"}
MEMBER = "222222222222"
REGION = "ap-south-1"


def hang_hub_operation(
    services: HealthServices, operation: str, time: LambdaTime, monkeypatch: pytest.MonkeyPatch
) -> HungOperation:
    """Make every attempt of the hub's `operation` (service id and name) hang, in whichever
    client the function builds for it, and botocore's waits between attempts spend `time`."""
    time.spend_botocore_waits(monkeypatch)
    sessions = services.sessions
    hub = sessions.session(sessions.hub_account_id, sessions.home_region)
    fault = HungOperation(time)
    hub.events.register_first(f"before-parameter-build.{operation}", fault.note_config)
    hub.events.register_first(f"before-send.{operation}", fault.hang)
    return fault


def test_a_hung_sts_costs_a_bounded_time_and_the_run_alerts_the_unreachable_account(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    inventory: dict[str, Any],
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN STS does not answer AssumeRole, and a fleet run with the function's whole timeout
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub_operation(health_services(), "sts.AssumeRole", time, monkeypatch)
    # WHEN the scheduled fleet run checks the member's cluster
    result = invoke(FLEET_RUN, time.context())
    # THEN AssumeRole was given up after its bounded attempts, in a small part of the run
    assert fault.attempts == 2
    assert time.spent <= HUB_CALL_SECONDS < TIMEOUT_SECONDS / 4
    # AND the run ended with its report: the account unreachable, critical
    [report] = result["clusters"]
    [access] = report["checks"]
    assert (access["name"], access["status"], access["severity"]) == (
        "member_access",
        "failed",
        "critical",
    )
    assert "Read timeout" in access["detail"]
    assert result["status"] == "critical"
    # AND its alert went out, once
    [received] = alert_inbox.receive()
    assert (received.alert["account_id"], received.alert["severity"]) == (MEMBER, "critical")


MEMBERS_OUTLASTING_THE_TIMEOUT = math.ceil(
    TIMEOUT_SECONDS / (HUB_ATTEMPTS * HUB_READ_TIMEOUT_SECONDS)
)
"""Enough member accounts (12) that one hung AssumeRole each, its attempts spending their read
timeout, outlasts the monitor's timeout."""


def test_a_hung_sts_costs_one_bounded_assume_role_per_run_however_many_members(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an inventory of 12 member accounts, checked one at a time (so that each member's
    # time adds up as simulated), STS not answering AssumeRole, and a fleet run with the
    # function's whole timeout
    [template] = inventory["members"]
    members = [
        {**template, "account_id": f"{222222220000 + number}", "name": f"member-{number:02d}"}
        for number in range(MEMBERS_OUTLASTING_THE_TIMEOUT)
    ]
    write_inventory({**inventory, "members": members})
    monkeypatch.setenv("HEALTH_MAX_WORKERS", "1")
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub_operation(health_services(), "sts.AssumeRole", time, monkeypatch)
    # WHEN the scheduled fleet run checks every member's cluster
    result = invoke(FLEET_RUN, time.context())
    # THEN STS was asked once, given up after its bounded attempts, and every other member
    # failed at once on that timeout: the run checked all 12 in a small part of its timeout
    # (one AssumeRole per member would have left members unchecked for lack of time)
    assert fault.attempts == HUB_ATTEMPTS
    assert time.spent <= HUB_CALL_SECONDS < TIMEOUT_SECONDS / 4
    assert [report["account_id"] for report in result["clusters"]] == [
        member["account_id"] for member in members
    ]
    for report in result["clusters"]:
        [access] = report["checks"]
        assert (access["name"], access["status"], access["severity"]) == (
            "member_access",
            "failed",
            "critical",
        )
        assert f"cannot access account {report['account_id']}" in access["detail"]
        assert "Read timeout" in access["detail"]
    assert result["status"] == "critical"
    # WHEN STS answers again and the next invocation checks one member's cluster
    hub_sts = health_services().sessions.hub_client("sts")
    hub_sts.meta.events.unregister("before-send.sts.AssumeRole", fault.hang)
    assumed: list[str] = []
    hub_sts.meta.events.register_first(
        "before-send.sts.AssumeRole", lambda **_: assumed.append("AssumeRole")
    )
    checked = invoke(
        {
            "action": "check_cluster",
            "account_id": members[-1]["account_id"],
            "region": REGION,
            "cluster": template["clusters"][0]["name"],
        }
    )
    # THEN it asked STS again, and its checks ran in the member (access no longer failing; the
    # member has no such cluster in moto, which its EKS answered)
    assert assumed == ["AssumeRole"]
    checks = {check["name"]: check["detail"] for check in checked["clusters"][0]["checks"]}
    assert "member_access" not in checks
    assert checks["cluster_status"] == "cluster does not exist in EKS"


def test_a_hung_sns_fails_the_run_in_time_and_the_retry_sends_the_alert_once(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    inventory: dict[str, Any],
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a node group with 1 of 2 instances unhealthy (a warning to alert), SNS not answering
    # Publish, and a fleet run with the function's whole timeout
    member_cluster.mark_unhealthy(1)
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    sns = health_services().hub_client("sns")
    fault = hang_every_attempt(sns, "sns", "Publish", time)
    # WHEN the scheduled fleet run checks the cluster
    with pytest.raises(AlertNotDeliveredError):
        invoke(FLEET_RUN, time.context())
    # THEN the publish was given up after its bounded attempts and the run failed in time, as
    # an undelivered alert fails it (so the platform retries it), instead of Lambda ending it
    assert fault.attempts == 2
    assert time.spent <= HUB_CALL_SECONDS
    assert alert_inbox.receive() == []
    # WHEN SNS answers again and the platform retries the run
    sns.meta.events.unregister("before-send.sns.Publish", fault.hang)
    retried = invoke(FLEET_RUN)
    again = invoke(FLEET_RUN)
    # THEN the retry sent the warning, once
    assert retried["clusters"][0]["alerts"]["sent"] == 1
    assert again["clusters"][0]["alerts"]["sent"] == 0
    [received] = alert_inbox.receive()
    assert (received.alert["severity"], received.alert["resolved"]) == ("warning", False)


def test_a_hung_sns_costs_one_bounded_publish_for_many_alerts_and_the_retry_sends_each_once(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    inventory: dict[str, Any],
    alert_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN more alarms in ALARM (one alert each) than the run has time for hung publishes (each
    # spends its attempts' read timeouts), SNS not answering Publish, and a fleet run with the
    # function's whole timeout
    alarms = TIMEOUT_SECONDS // (HUB_ATTEMPTS * HUB_READ_TIMEOUT_SECONDS) + 1
    alarm_arns = {
        member_cluster.put_alarm(f"dev-apps-alarm-{number}", "ALARM") for number in range(alarms)
    }
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    sns = health_services().hub_client("sns")
    fault = hang_every_attempt(sns, "sns", "Publish", time)
    # WHEN the scheduled fleet run checks the cluster
    with pytest.raises(AlertNotDeliveredError):
        invoke(FLEET_RUN, time.context())
    # THEN one publish was given up after its bounded attempts, the other alerts were refused
    # without asking SNS, and the run failed in time instead of Lambda ending it
    assert fault.attempts == 2
    assert time.spent <= HUB_CALL_SECONDS
    # WHEN SNS answers again and the platform retries the run
    sns.meta.events.unregister("before-send.sns.Publish", fault.hang)
    retried = invoke(FLEET_RUN)
    # THEN the retry sent every alarm's alert, once
    assert retried["clusters"][0]["alerts"]["sent"] == alarms
    assert sorted(received.alert["resource"] for received in alert_inbox.receive()) == sorted(
        alarm_arns
    )


def test_a_cluster_whose_eks_endpoint_hangs_costs_one_bounded_call_and_the_run_reports_it(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    inventory: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the member's EKS endpoint does not answer DescribeCluster, and a fleet run with the
    # function's whole timeout
    time = LambdaTime(TIMEOUT_SECONDS).spend_botocore_waits(monkeypatch)
    member = health_services().sessions.session(MEMBER, REGION)
    fault = HungOperation(time)
    member.events.register_first("before-parameter-build.eks.DescribeCluster", fault.note_config)
    member.events.register_first("before-send.eks.DescribeCluster", fault.hang)
    # WHEN the scheduled fleet run checks the cluster
    result = invoke(FLEET_RUN, time.context())
    # THEN the call was given up after its bounded attempts, once for the three checks that need
    # the cluster, and the run ended with its report: those checks could not run (warnings), the
    # others ran and passed
    assert fault.attempts == 2
    assert time.spent <= MEMBER_CALL_SECONDS
    checks = {check["name"]: check for check in result["clusters"][0]["checks"]}
    eks_checks = ("cluster_status", "node_group", "capacity")
    for name in eks_checks:
        assert (checks[name]["status"], checks[name]["severity"]) == ("failed", "warning")
        assert "check could not run" in checks[name]["detail"]
    assert {name for name, check in checks.items() if check["status"] == "passed"} == (
        set(checks) - set(eks_checks)
    )


def test_a_hung_state_table_fails_the_run_in_time_with_its_timeout(
    invoke: Callable[..., dict[str, Any]],
    *,
    health_services: Callable[[], HealthServices],
    member_cluster: Any,
    inventory: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN DynamoDB not answering any call of the state table, and a fleet run with the
    # function's whole timeout
    time = LambdaTime(TIMEOUT_SECONDS)
    fault = hang_hub_operation(health_services(), "dynamodb", time, monkeypatch)
    # WHEN the scheduled fleet run checks the member's cluster
    with pytest.raises(EndpointNotAnsweringError) as raised:
        invoke(FLEET_RUN, time.context())
    # THEN the state table's first call was given up after its bounded attempts, its later calls
    # were refused without being sent, and the run failed in time with an error naming the table
    # and the timeout, instead of Lambda ending it
    assert fault.attempts == STATE_TABLE_ATTEMPTS
    assert time.spent <= STATE_TABLE_CALL_SECONDS < TIMEOUT_SECONDS / 4
    assert str(raised.value).startswith(
        "state table lambda-fleet-state did not answer earlier in this invocation (Read timeout"
    )
    # WHEN DynamoDB answers again and the platform retries the run
    health_services().hub_client("dynamodb").meta.events.unregister(
        "before-send.dynamodb", fault.hang
    )
    retried = invoke(FLEET_RUN)
    # THEN the retry asks the state table again and ends with its report
    assert [cluster["cluster"] for cluster in retried["clusters"]] == ["dev-apps"]
