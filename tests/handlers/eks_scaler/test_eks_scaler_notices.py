"""The info notice of each scaling change: delivered exactly once, even when SNS fails first,
and never at the price of a second scaling call."""

from __future__ import annotations

from typing import Any

import pytest
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, event
from scaling_harness import Scaling

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.handler import Invocation
from fleet_shared.node_group_locks import node_group_lock_name
from handlers.eks_scaler import app
from handlers.eks_scaler.scaling import NODE_GROUP_SECONDS
from tests.handlers.deadlines import (
    ContextRunningOutOfTime,
    killed_while_calling_then_retried,
)
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    InjectedHang,
    fail_every_attempt,
    hang_first_attempt,
)

SYSTEM_SCALED_DOWN = f"{CLUSTER}/system scaled (scale_down): desired 2 -> 1"
WEB_SCALED_DOWN = f"{CLUSTER}/web scaled (scale_down): desired 3 -> 2"


def test_a_notice_sns_refuses_is_sent_once_by_the_retry_without_scaling_again(
    scaling: Scaling,
) -> None:
    # GIVEN a scheduled scale-down with its execution id, and the hub's SNS failing every attempt
    fault = scaling.fail_every_publish()
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-7")
    # WHEN the schedule invokes the scaler
    with pytest.raises(AlertNotDeliveredError):
        scaling.scaler(request, "inv-1")
    # THEN the node group was scaled and the change recorded, but no notice reached the topics
    assert fault.attempts > 1
    assert scaling.desired_size("system") == 1
    assert scaling.history("system") == 1
    assert scaling.alert_inbox.receive() == []
    # WHEN the platform retries the same event with SNS healthy again
    fault.healed = True
    scaling.clock.advance(60)
    retried = scaling.scaler(request, "inv-2")
    # THEN the stored result is answered, the notice goes out once, and nothing is scaled again
    assert retried["repeated_request"] is True
    assert [item["status"] for item in retried["results"]] == ["scaling_initiated"]
    assert "notices" not in retried
    [notice] = scaling.alert_inbox.receive()
    assert notice.alert["severity"] == "info"
    assert notice.alert["title"] == SYSTEM_SCALED_DOWN
    assert scaling.calls == ["system"]
    # WHEN the event arrives once more THEN it is a repeat with no second notice
    assert scaling.scaler(request, "inv-3")["repeated_request"] is True
    assert scaling.alert_inbox.receive() == []
    assert scaling.history("system") == 1


def test_a_change_killed_while_sns_hangs_is_announced_once_by_the_platforms_retry(
    scaling: Scaling,
) -> None:
    # GIVEN a scheduled scale-down with its execution id
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-12")
    # WHEN SNS never answers its notice's Publish, so Lambda kills the invocation at its
    # deadline, and retries the event a minute later
    retried = killed_while_calling_then_retried(
        scaling.services.hub_client("sns"),
        "sns",
        "Publish",
        scaling.clock,
        lambda context: app.FUNCTION.invoke(request, Invocation.from_context(context)),
        # Time to start the node group (with less it is not started, and nothing published).
        seconds_left=NODE_GROUP_SECONDS + 5,
    )
    # THEN the retry is not refused by the killed invocation's claim: the stored result is
    # answered, the notice goes out once, and nothing is scaled again
    assert retried["repeated_request"] is True, retried
    [notice] = scaling.alert_inbox.receive()
    assert notice.alert["title"] == SYSTEM_SCALED_DOWN
    assert scaling.calls == ["system"]
    assert scaling.desired_size("system") == 1


def scale_down_of_system_and_web(web_size: int, request_id: str) -> dict[str, Any]:
    """A scale-down of system to 1 and web to `web_size`."""
    return event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": web_size},
        request_id=request_id,
    )


def web_changed_while_system_locked_and_sns_failing(
    scaling: Scaling, request: dict[str, Any]
) -> dict[str, Any]:
    """Run `request` (system and web scaled down) with system's lock held by the spot optimizer
    and SNS failing every attempt: it changes web, fails for web's notice, and is retried 5
    minutes later once the lock was released and SNS is healthy again. The retry's result."""
    lock = scaling.lock_system_for_the_spot_optimizer()
    fault = scaling.fail_every_publish()
    with pytest.raises(AlertNotDeliveredError):
        scaling.scaler(request, "inv-1")
    assert scaling.desired_size("web") == 2
    assert scaling.alert_inbox.receive() == []
    fault.healed = True
    scaling.clock.advance(300)
    assert scaling.state_table.release_lock(lock, "spot_optimizer:other")
    return scaling.scaler(request, "inv-2")


def test_an_unfinished_request_sends_the_notice_of_its_done_change_on_the_retry(
    scaling: Scaling,
) -> None:
    # GIVEN system's lock held by the spot optimizer, and SNS failing on every attempt
    request = scale_down_of_system_and_web(2, "exec-8")
    # WHEN the scaler runs (web changes, system is locked, and web's notice cannot be sent),
    # and the retry comes after the lock was released, SNS healthy again
    retried = web_changed_while_system_locked_and_sns_failing(scaling, request)
    # THEN web is found at its target (not scaled again), system is scaled now, and each change
    # is announced exactly once
    statuses = {item["nodegroup"]: item["status"] for item in retried["results"]}
    assert statuses == {"system": "scaling_initiated", "web": "no_change_needed"}
    assert scaling.calls == ["web", "system"]
    assert scaling.notice_titles() == [SYSTEM_SCALED_DOWN, WEB_SCALED_DOWN]
    # WHEN the completed request arrives once more THEN no notice goes out again
    assert scaling.scaler(request, "inv-3")["repeated_request"] is True
    assert scaling.alert_inbox.receive() == []


@pytest.mark.parametrize(
    "server_error", [None, MULTI_LINE_PAGE], ids=["unreachable", "a-proxy-page-answered"]
)
def test_a_state_table_failure_after_the_change_answers_the_result_and_a_repeat_changes_nothing(
    scaling: Scaling, server_error: str | None
) -> None:
    # GIVEN DynamoDB failing (every attempt) the write that completes the request's record:
    # unreachable, or answered with a proxy's page of many lines
    fault = scaling.fail_every_completion_of_a_record(server_error)
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-9")
    # WHEN the schedule invokes the scaler
    result = scaling.scaler(request, "inv-1")
    # THEN the change stands and the answer says its record was not stored, without raising
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    assert result["idempotency_record"].startswith("not stored:")
    # AND what it quotes of the page is one line, cut
    assert "\n" not in result["idempotency_record"]
    assert len(result["idempotency_record"]) < len(MULTI_LINE_PAGE)
    assert fault.attempts > 1
    assert scaling.desired_size("system") == 1
    assert len(scaling.alert_inbox.receive()) == 1
    # WHEN the same request comes again after its in-progress claim lapsed, DynamoDB healthy
    fault.healed = True
    scaling.clock.advance(3600)
    again = scaling.scaler(request, "inv-2")
    # THEN the node group is found at its target: no second scaling call, no second notice
    assert [item["status"] for item in again["results"]] == ["no_change_needed"]
    assert scaling.calls == ["system"]
    assert scaling.alert_inbox.receive() == []


@pytest.mark.parametrize(
    "seconds_left",
    [120, 50],
    ids=["whole-timeout", "less-than-a-minute-left-when-web-is-locked"],
)
def test_a_scheduled_change_killed_at_its_deadline_is_finished_by_the_platforms_retry(
    scaling: Scaling, seconds_left: int
) -> None:
    # GIVEN a scheduled scale-down of system and web, and EKS never answering the update of web,
    # so the invocation (with 120 s, the scaler's timeout, or with less than the minute after
    # which Lambda retries) hangs there after changing system, holding web's lock
    hang = InjectedHang("UpdateNodegroupConfig")

    def hang_on_web(request: Any, **kwargs: Any) -> None:
        if "/node-groups/web/" in request.url:
            hang(request, **kwargs)

    eks = scaling.services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    eks.meta.events.register_first("before-send.eks.UpdateNodegroupConfig", hang_on_web)
    request = scale_down_of_system_and_web(2, "exec-10")
    # WHEN Lambda kills it at its deadline and retries the event a minute later
    retried = scaling.killed_then_retried(
        request,
        hang,
        scaled_before_the_hang=("system", 1),
        context=ContextRunningOutOfTime(millis_left=[seconds_left * 1000]),
        retry_invocation="inv-2",
    )
    # THEN the retry finished the request (neither the dead invocation's claim, answering
    # `in progress`, nor web's lock, answering `locked`, outlived it): system is found at its
    # target, web is scaled, and each change is recorded and announced once
    statuses = {item["nodegroup"]: item["status"] for item in retried["results"]}
    assert statuses == {"system": "no_change_needed", "web": "scaling_initiated"}
    assert scaling.desired_size("web") == 2
    assert scaling.history("system") == 1
    assert scaling.history("web") == 1
    assert scaling.notice_titles() == [SYSTEM_SCALED_DOWN, WEB_SCALED_DOWN]
    # AND the event arriving once more is a repeat that changes and announces nothing
    assert scaling.scaler(request, "inv-3")["repeated_request"] is True
    assert scaling.alert_inbox.receive() == []


def test_a_change_eks_took_but_the_state_table_did_not_record_is_reported_and_announced_once(
    scaling: Scaling,
) -> None:
    # GIVEN DynamoDB refusing (every attempt) the transaction that records a change
    fail_every_attempt(scaling.services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems")
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-11")
    # WHEN the scaler changes system
    result = scaling.scaler(request, "inv-1")
    # THEN the change is reported as made, saying what was not recorded, and announced once
    [item] = result["results"]
    assert item["status"] == "scaling_initiated", item
    assert "the change was not recorded" in item["reason"]
    assert scaling.desired_size("system") == 1
    [notice] = scaling.alert_inbox.receive()
    assert notice.alert["title"] == SYSTEM_SCALED_DOWN
    assert scaling.history("system") == 0
    # AND the event arriving again is a repeat that changes and announces nothing
    scaling.clock.advance(60)
    assert scaling.scaler(request, "inv-2")["repeated_request"] is True
    assert scaling.calls == ["system"]
    assert scaling.alert_inbox.receive() == []


def test_a_retry_finding_its_change_at_the_floor_still_sends_its_notice(scaling: Scaling) -> None:
    # GIVEN system's lock held by the spot optimizer, SNS failing on every attempt, and a
    # scale-down asking web (floor 2) for 1, so it takes web from 3 to its floor 2
    request = scale_down_of_system_and_web(1, "exec-12")
    # WHEN the scaler runs (web changes, system is locked, and web's notice cannot be sent),
    # and the retry comes after the lock was released, SNS healthy again
    web_changed_while_system_locked_and_sns_failing(scaling, request)
    # THEN web, found at its floor, is not scaled again, and both changes are announced once
    assert scaling.calls == ["web", "system"]
    assert scaling.notice_titles() == [SYSTEM_SCALED_DOWN, WEB_SCALED_DOWN]


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
def test_a_change_killed_before_its_record_is_recorded_and_announced_once_by_the_retry(
    scaling: Scaling, request_id: str | None, retry_invocation: str, named: str
) -> None:
    # GIVEN a scale-down of web (Lambda request id "async-7") and DynamoDB never answering the
    # transaction that records the change, so the invocation hangs there after EKS took it
    hang = hang_first_attempt(
        scaling.services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems"
    )
    request = event("scale_down", {"name": "web", "desired_size": 2}, request_id=request_id)
    # WHEN Lambda kills it at its deadline and the event is retried a minute later
    retried = scaling.killed_then_retried(
        request,
        hang,
        scaled_before_the_hang=("web", 2),
        context=ContextRunningOutOfTime(aws_request_id="async-7", millis_left=[120_000]),
        retry_invocation=retry_invocation,
    )
    # THEN the retry finds web at its target and does not scale it again, but records the
    # change (history, cooldown) and announces it, once
    [item] = retried["results"]
    assert item["status"] == "no_change_needed"
    assert scaling.calls == ["web"]
    assert scaling.history("web") == 1
    [notice] = scaling.alert_inbox.receive()
    assert notice.alert["title"] == WEB_SCALED_DOWN
    # AND the notice, saved before the update, says its update id was not recorded
    assert f"(update id not recorded, request {named})" in notice.alert["detail"]
    # AND the retry arriving once more is a repeat that records and announces nothing
    assert scaling.scaler(request, retry_invocation)["repeated_request"] is True
    assert scaling.alert_inbox.receive() == []
    assert scaling.history("web") == 1


def test_the_cooldown_counts_from_a_change_the_state_table_did_not_record(
    scaling: Scaling,
) -> None:
    # GIVEN batch-spot scaled down from 2 to 1 while DynamoDB refused (every attempt) the
    # transaction that records the change
    fault = fail_every_attempt(
        scaling.services.hub_client("dynamodb"), "dynamodb", "TransactWriteItems"
    )
    first = scaling.scaler(
        event("scale_down", {"name": "batch-spot", "desired_size": 1}, request_id="a")
    )
    assert "the change was not recorded" in first["results"][0]["reason"]
    fault.healed = True
    # WHEN another request lowers it again 100 s later, within the cooldown of 300 s
    scaling.clock.advance(100)
    second = scaling.scaler(
        event("scale_down", {"name": "batch-spot", "desired_size": 0}, request_id="b")
    )
    # THEN the decrease waits for the cooldown like after any other change
    [item] = second["results"]
    assert item["status"] == "scale_down_blocked"
    assert item["cooldown_remaining_seconds"] == 200
    assert scaling.desired_size("batch-spot") == 1


def test_a_request_whose_record_and_claim_release_both_fail_still_announces_its_change(
    scaling: Scaling,
) -> None:
    # GIVEN DynamoDB refusing (every attempt) the write that completes the request's record and
    # the delete that would then release the request's claim
    completion = scaling.fail_every_completion_of_a_record()
    release = fail_every_attempt(scaling.services.hub_client("dynamodb"), "dynamodb", "DeleteItem")
    request = event("scale_down", {"name": "system", "desired_size": 1}, request_id="exec-14")
    # WHEN the schedule invokes the scaler
    result = scaling.scaler(request, "inv-1")
    # THEN the change stands, the answer says its record was not stored, and it is announced
    assert completion.attempts > 1
    assert release.attempts > 1
    assert [item["status"] for item in result["results"]] == ["scaling_initiated"]
    assert result["idempotency_record"].startswith("not stored:")
    [notice] = scaling.alert_inbox.receive()
    assert notice.alert["title"] == SYSTEM_SCALED_DOWN
    assert scaling.desired_size("system") == 1


def test_a_retry_leaving_a_later_change_in_place_still_sends_the_notice_of_its_own(
    scaling: Scaling,
) -> None:
    # GIVEN a scale-down of system (2 -> 1) and web, with web's lock held by the spot optimizer
    # (`locked`, the request left open) and the hub's SNS failing every attempt, so system's
    # notice is not sent and the invocation fails
    lock = node_group_lock_name(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert scaling.state_table.acquire_lock(lock, "spot_optimizer:other", 120)
    fault = scaling.fail_every_publish()
    request = event(
        "scale_down",
        {"name": "system", "desired_size": 1},
        {"name": "web", "desired_size": 2},
        request_id="exec-12",
    )
    with pytest.raises(AlertNotDeliveredError):
        scaling.scaler(request, "inv-1")
    assert scaling.desired_size("system") == 1
    # AND an operator raising system to 3 once SNS is back
    fault.healed = True
    scaling.clock.advance(60)
    raised = event("scale_up", {"name": "system", "desired_size": 3}, request_id="ops-1")
    scaling.scaler(raised, "ops")
    assert scaling.notice_titles() == [f"{CLUSTER}/system scaled (scale_up): desired 1 -> 3"]
    # WHEN the platform retries the request with the lock free, after the operator's cooldown
    assert scaling.state_table.release_lock(lock, "spot_optimizer:other")
    scaling.clock.advance(600)
    retried = {item["nodegroup"]: item for item in scaling.scaler(request, "inv-2")["results"]}
    # THEN the operator's 3 stands, and system's scale-down is announced now, with web's
    assert retried["system"]["status"] == "no_change_needed", retried["system"]
    assert scaling.desired_size("system") == 3
    assert scaling.notice_titles() == [SYSTEM_SCALED_DOWN, WEB_SCALED_DOWN]
