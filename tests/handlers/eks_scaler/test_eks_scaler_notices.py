"""The info notice of each scaling change: delivered exactly once, even when SNS fails first,
and never at the price of a second scaling call."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, event, sizes

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.handler import Invocation
from fleet_shared.node_group_locks import node_group_key, node_group_lock_name
from fleet_shared.state_table import StateTable
from handlers.eks_scaler import app
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.deadlines import ContextRunningOutOfTime, killed_while_publishing_then_retried
from tests.handlers.faults import (
    InjectedHang,
    InvocationKilledError,
    fail_every_attempt,
    hang_first_attempt,
)


def count_scaling_calls(services: ScalerServices) -> list[str]:
    """The node groups of every UpdateNodegroupConfig the scaler sends to the member account."""
    calls: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["nodegroupName"])

    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register("provide-client-params.eks.UpdateNodegroupConfig", count)
    return calls


def history(state_table: StateTable, name: str, clock: ManualClock) -> int:
    key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, name)
    return len(state_table.query_history(key, clock.now().replace(year=2000)))


def test_a_notice_sns_refuses_is_sent_once_by_the_retry_without_scaling_again(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scheduled scale-down with its execution id, and the hub's SNS failing every attempt
    calls = count_scaling_calls(services)
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-7")
    # WHEN the schedule invokes the scaler
    with pytest.raises(AlertNotDeliveredError):
        scaler(request, "inv-1")
    # THEN the node group was scaled and the change recorded, but no notice reached the topics
    assert fault.attempts > 1
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert history(state_table, "system", fake_clock) == 1
    assert alert_inbox.receive() == []
    # WHEN the platform retries the same event with SNS healthy again
    fault.healed = True
    fake_clock.advance(60)
    retried = scaler(request, "inv-2")
    # THEN the stored result is answered, the notice goes out once, and nothing is scaled again
    assert retried["repeated_request"] is True
    assert [item["status"] for item in retried["results"]] == ["scaling_initiated"]
    assert "notices" not in retried
    [notice] = alert_inbox.receive()
    assert notice.alert["severity"] == "info"
    assert notice.alert["title"] == f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    assert calls == ["system"]
    # WHEN the event arrives once more THEN it is a repeat with no second notice
    assert scaler(request, "inv-3")["repeated_request"] is True
    assert alert_inbox.receive() == []
    assert history(state_table, "system", fake_clock) == 1


def test_a_change_killed_while_sns_hangs_is_announced_once_by_the_platforms_retry(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scheduled scale-down with its execution id
    calls = count_scaling_calls(services)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-12")
    # WHEN SNS never answers its notice's Publish, so Lambda kills the invocation at its
    # deadline, and retries the event a minute later
    retried = killed_while_publishing_then_retried(
        services.hub_client("sns"),
        fake_clock,
        lambda context: app.FUNCTION.invoke(request, Invocation.from_context(context)),
    )
    # THEN the retry is not refused by the killed invocation's claim: the stored result is
    # answered, the notice goes out once, and nothing is scaled again
    assert retried["repeated_request"] is True, retried
    [notice] = alert_inbox.receive()
    assert notice.alert["title"] == f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    assert calls == ["system"]
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_an_unfinished_request_sends_the_notice_of_its_done_change_on_the_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN system's lock held by the spot optimizer, and SNS failing on every attempt
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    assert state_table.acquire_lock(lock, "spot_optimizer:other", 120)
    calls = count_scaling_calls(services)
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    request = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 2},
        request_id="exec-8",
    )
    # WHEN the scaler runs: web changes, system is locked, and web's notice cannot be sent
    with pytest.raises(AlertNotDeliveredError):
        scaler(request, "inv-1")
    assert sizes(member_eks, "web")["desired_size"] == 2
    assert alert_inbox.receive() == []
    # WHEN the retry comes after the lock was released, SNS healthy again
    fault.healed = True
    fake_clock.advance(300)
    assert state_table.release_lock(lock, "spot_optimizer:other")
    retried = scaler(request, "inv-2")
    # THEN web is found at its target (not scaled again), system is scaled now, and each change
    # is announced exactly once
    statuses = {item["nodegroup"]: item["status"] for item in retried["results"]}
    assert statuses == {"system": "scaling_initiated", "web": "no_change_needed"}
    assert calls == ["web", "system"]
    titles = sorted(item.alert["title"] for item in alert_inbox.receive())
    assert titles == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1",
        f"{CLUSTER}/web scaled (scale_down): desired 3 -> 2",
    ]
    # WHEN the completed request arrives once more THEN no notice goes out again
    assert scaler(request, "inv-3")["repeated_request"] is True
    assert alert_inbox.receive() == []


def test_a_state_table_failure_after_the_change_answers_the_result_and_a_repeat_changes_nothing(
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN DynamoDB refusing (every attempt) the write that completes the request's record
    calls = count_scaling_calls(services)
    dynamodb = services.hub_client("dynamodb")
    fault = fail_every_attempt(dynamodb, "dynamodb", "PutItem")
    completing = fault

    def fail_the_completion_only(request: Any, **kwargs: Any) -> None:
        body = str(request.body)
        if "COMPLETED" in body and "IDEMPOTENCY#eks_scaler" in body:
            completing(request, **kwargs)

    dynamodb.meta.events.unregister("before-send.dynamodb.PutItem", fault)
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", fail_the_completion_only)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-9")
    # WHEN the schedule invokes the scaler
    result = scaler(request, "inv-1")
    # THEN the change stands and the answer says its record was not stored, without raising
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    assert result["idempotency_record"].startswith("not stored:")
    assert fault.attempts > 1
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert len(alert_inbox.receive()) == 1
    # WHEN the same request comes again after its in-progress claim lapsed, DynamoDB healthy
    fault.healed = True
    fake_clock.advance(3600)
    again = scaler(request, "inv-2")
    # THEN the node group is found at its target: no second scaling call, no second notice
    assert [item["status"] for item in again["results"]] == ["no_change_needed"]
    assert calls == ["system"]
    assert alert_inbox.receive() == []


def test_a_scheduled_change_killed_at_its_deadline_is_finished_by_the_platforms_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN a scheduled scale-down of system and web, and EKS never answering the update of web,
    # so the invocation (120 s, the scaler's timeout) hangs there after changing system
    hang = InjectedHang("UpdateNodegroupConfig")

    def hang_on_web(request: Any, **kwargs: Any) -> None:
        if "/node-groups/web/" in request.url:
            hang(request, **kwargs)

    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register_first("before-send.eks.UpdateNodegroupConfig", hang_on_web)
    request = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 2},
        request_id="exec-10",
    )
    deadline = Invocation.from_context(ContextRunningOutOfTime(millis_left=[120_000]))
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(app.FUNCTION.invoke, request, deadline)
        assert hang.entered.wait(10)
        assert sizes(member_eks, "system")["desired_size"] == 1
        # WHEN Lambda kills it at its deadline and retries the event a minute later
        fake_clock.advance(120 + 60)
        retried = scaler(request, "inv-2")
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry finished the request (the dead invocation's claim did not answer
    # `in progress`, which would end the retries with web never scaled): system is found at
    # its target, web is scaled, and each change is recorded and announced once
    statuses = {item["nodegroup"]: item["status"] for item in retried["results"]}
    assert statuses == {"system": "no_change_needed", "web": "scaling_initiated"}
    assert sizes(member_eks, "web")["desired_size"] == 2
    assert history(state_table, "system", fake_clock) == 1
    assert history(state_table, "web", fake_clock) == 1
    titles = sorted(item.alert["title"] for item in alert_inbox.receive())
    assert titles == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1",
        f"{CLUSTER}/web scaled (scale_down): desired 3 -> 2",
    ]
    # AND the event arriving once more is a repeat that changes and announces nothing
    assert scaler(request, "inv-3")["repeated_request"] is True
    assert alert_inbox.receive() == []


def test_a_change_eks_took_but_the_state_table_did_not_record_is_reported_and_announced_once(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN DynamoDB refusing (every attempt) the transaction that records a change
    calls = count_scaling_calls(services)
    fail_every_attempt(services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems")
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-11")
    # WHEN the scaler changes system
    result = scaler(request, "inv-1")
    # THEN the change is reported as made, saying what was not recorded, and announced once
    [item] = result["results"]
    assert item["status"] == "scaling_initiated", item
    assert "the change was not recorded" in item["reason"]
    assert sizes(member_eks, "system")["desired_size"] == 1
    [notice] = alert_inbox.receive()
    assert notice.alert["title"] == f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    assert history(state_table, "system", fake_clock) == 0
    # AND the event arriving again is a repeat that changes and announces nothing
    fake_clock.advance(60)
    assert scaler(request, "inv-2")["repeated_request"] is True
    assert calls == ["system"]
    assert alert_inbox.receive() == []


def test_a_retry_finding_its_change_at_the_floor_still_sends_its_notice(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN system's lock held by the spot optimizer, SNS failing on every attempt, and a
    # scale-down asking web (floor 2) for 1, so it takes web from 3 to its floor 2
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "system")
    assert state_table.acquire_lock(lock, "spot_optimizer:other", 120)
    calls = count_scaling_calls(services)
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    request = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 1},
        request_id="exec-12",
    )
    # WHEN the scaler runs: web changes, system is locked, and web's notice cannot be sent
    with pytest.raises(AlertNotDeliveredError):
        scaler(request, "inv-1")
    assert sizes(member_eks, "web")["desired_size"] == 2
    # WHEN the retry comes after the lock was released, SNS healthy again
    fault.healed = True
    fake_clock.advance(300)
    assert state_table.release_lock(lock, "spot_optimizer:other")
    scaler(request, "inv-2")
    # THEN web, found at its floor, is not scaled again, and both changes are announced once
    assert calls == ["web", "system"]
    titles = sorted(item.alert["title"] for item in alert_inbox.receive())
    assert titles == [
        f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1",
        f"{CLUSTER}/web scaled (scale_down): desired 3 -> 2",
    ]


@pytest.mark.parametrize(
    ("request_id", "retry_invocation", "named"),
    [
        # A schedule's run: its retry is a new Lambda invocation with the same request_id.
        ("exec-13", "inv-2", "exec-13"),
        # An asynchronous invocation without request_id: Lambda retries it with the same
        # Lambda request id ("async-7"), the request's key.
        (None, "async-7", "invocation-async-7"),
    ],
    ids=["scheduled", "asynchronous-without-request-id"],
)
def test_a_change_killed_before_its_record_is_recorded_and_announced_once_by_the_retry(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    request_id: str | None,
    retry_invocation: str,
    named: str,
) -> None:
    # GIVEN a scale-down of web (Lambda request id "async-7") and DynamoDB never answering the
    # transaction that records the change, so the invocation hangs there after EKS took it
    calls = count_scaling_calls(services)
    hang = hang_first_attempt(services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems")
    request = event("scale_down", {"name": "web", "desired_size": 2}, request_id=request_id)
    context = ContextRunningOutOfTime(aws_request_id="async-7", millis_left=[120_000])
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(app.FUNCTION.invoke, request, Invocation.from_context(context))
        assert hang.entered.wait(10)
        assert sizes(member_eks, "web")["desired_size"] == 2
        # WHEN Lambda kills it at its deadline and the event is retried a minute later
        fake_clock.advance(120 + 60)
        retried = scaler(request, retry_invocation)
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry finds web at its target and does not scale it again, but records the
    # change (history, cooldown) and announces it, once
    [item] = retried["results"]
    assert item["status"] == "no_change_needed"
    assert calls == ["web"]
    assert history(state_table, "web", fake_clock) == 1
    [notice] = alert_inbox.receive()
    assert notice.alert["title"] == f"{CLUSTER}/web scaled (scale_down): desired 3 -> 2"
    # AND the notice, saved before the update, says its update id was not recorded
    assert f"(update id not recorded, request {named})" in notice.alert["detail"]
    # AND the retry arriving once more is a repeat that records and announces nothing
    assert scaler(request, retry_invocation)["repeated_request"] is True
    assert alert_inbox.receive() == []
    assert history(state_table, "web", fake_clock) == 1


def test_the_cooldown_counts_from_a_change_the_state_table_did_not_record(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN batch-spot scaled down from 2 to 1 while DynamoDB refused (every attempt) the
    # transaction that records the change
    fault = fail_every_attempt(services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems")
    first = scaler(event("scale_down", {"name": "batch-spot", "desired_size": 1}, request_id="a"))
    assert "the change was not recorded" in first["results"][0]["reason"]
    fault.healed = True
    # WHEN another request lowers it again 100 s later, within the cooldown of 300 s
    fake_clock.advance(100)
    second = scaler(event("scale_down", {"name": "batch-spot", "desired_size": 0}, request_id="b"))
    # THEN the decrease waits for the cooldown like after any other change
    [item] = second["results"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == 200
    assert sizes(member_eks, "batch-spot")["desired_size"] == 1


def test_a_request_whose_record_and_claim_release_both_fail_still_announces_its_change(  # noqa: PLR0917
    scaler: Scaler,
    services: ScalerServices,
    member_eks: Any,
    alert_inbox: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
) -> None:
    # GIVEN DynamoDB refusing (every attempt) the write that completes the request's record and
    # the delete that would then release the request's claim
    dynamodb = services.hub_client("dynamodb")
    completion = fail_every_attempt(dynamodb, "dynamodb", "PutItem")
    release = fail_every_attempt(dynamodb, "dynamodb", "DeleteItem")

    def fail_the_completion_only(request: Any, **kwargs: Any) -> None:
        body = request.body.decode()
        if "COMPLETED" in body and "IDEMPOTENCY#eks_scaler" in body:
            completion(request, **kwargs)

    dynamodb.meta.events.unregister("before-send.dynamodb.PutItem", completion)
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", fail_the_completion_only)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-14")
    # WHEN the schedule invokes the scaler
    result = scaler(request, "inv-1")
    # THEN the change stands, the answer says its record was not stored, and it is announced
    assert completion.attempts > 1
    assert release.attempts > 1
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    assert result["idempotency_record"].startswith("not stored:")
    [notice] = alert_inbox.receive()
    assert notice.alert["title"] == f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
    assert sizes(member_eks, "system")["desired_size"] == 1
