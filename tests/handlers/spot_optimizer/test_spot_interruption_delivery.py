"""Interruption warnings: announced exactly once although SNS failed, recorded and acted on
once across the platform's retry (never on a held node group), and only when AWS sent them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pytest

from catalog.functions import function_spec
from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.clock import ManualClock
from fleet_shared.handler import Invocation
from fleet_shared.node_group_holds import HOLD_NAME, Hold
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.timestamps import iso_z
from handlers.spot_optimizer import app
from handlers.spot_optimizer.exceptions import (
    InterruptionInProgressError,
    InterruptionNotRecordedError,
    NoticesNotDeliveredError,
)
from handlers.spot_optimizer.interruptions import HANDLING_SECONDS
from handlers.spot_optimizer.keys import node_group_interruptions_key, zone_interruptions_key
from handlers.spot_optimizer.services import SpotServices
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.deadlines import (
    PLATFORM_RETRY_SECONDS,
    THREAD_REACHED_SECONDS,
    ContextRunningOutOfTime,
    killed_while_calling_then_retried,
    killed_while_publishing_then_retried,
)
from tests.handlers.faults import (
    ESCAPES_PAGE,
    ESCAPES_PAGE_QUOTED,
    MULTI_LINE_PAGE,
    HeldAttempt,
    InjectedFault,
    InjectedHang,
    InvocationKilledError,
    fail_every_attempt,
    hang_first_attempt,
    hold_first_attempt,
    lose_first_answer,
)
from tests.handlers.member_accounts import DENIED_MEMBER, MEMBER_A, REGION, deny_assume_role
from tests.handlers.spot_optimizer.conftest import (
    CLUSTER,
    at_the_fallback_threshold,
    desired_size,
    interrupt_batch_spot,
    interruption_event,
    launch_spot_instance,
    next_batch_spot_warning,
)

MakeServices = Callable[..., SpotServices]
Invoke = Callable[..., dict[str, Any]]
TIMEOUT_SECONDS = function_spec("spot_optimizer").timeout_seconds


def _history(services: SpotServices, key: str) -> list[str]:
    since = services.clock.now().replace(year=2020)
    return [change.record["instance_id"] for change in services.state.query_history(key, since)]


def _batch_spot_history(services: SpotServices) -> list[str]:
    """The instances of batch-spot's recorded interruptions."""
    return _history(services, node_group_interruptions_key(MEMBER_A, REGION, CLUSTER, "batch-spot"))


def _changes_of_system(services: SpotServices) -> int:
    """How many changes of the on-demand group system are recorded."""
    key = node_group_key(MEMBER_A, REGION, CLUSTER, "system")
    return len(services.state.query_history(key, services.clock.now().replace(year=2020)))


def _state_items(services: SpotServices) -> int:
    table = services.state.table_name
    return int(boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Count"])


def assert_nothing_recorded_or_announced(services: SpotServices, alert_inbox: Any) -> None:
    """No alert went out and the state table holds nothing."""
    assert alert_inbox.receive() == []
    assert _state_items(services) == 0


def refuse_state_table_writes(
    services: SpotServices, operation: str, *body_parts: bytes, server_error: str | None = None
) -> InjectedFault:
    """The state table failing every attempt of `operation` whose body holds all `body_parts`
    (one kind of write; with `server_error`, answering a server error with that message), until
    healed."""
    hub_dynamodb = services.hub_client("dynamodb")
    return fail_every_attempt(
        hub_dynamodb, "dynamodb", operation, body_with=body_parts, server_error=server_error
    )


@pytest.fixture
def services(make_services: MakeServices, monkeypatch: pytest.MonkeyPatch) -> SpotServices:
    """Services with the default environment, as the container's: `app.lambda_handler` and
    `app.FUNCTION.invoke` use them."""
    default = make_services()
    monkeypatch.setattr(app.FUNCTION, "services", lambda: default)
    return default


@contextmanager
def invocation_held_at(
    held: HeldAttempt, event: dict[str, Any], request_id: str
) -> Iterator[Future[Mapping[str, Any]]]:
    """The handler invoked with `event` in another thread and held at `held`'s call: the block
    runs while it waits there, and the call goes on when the block ends; the invocation."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        invocation = pool.submit(app.FUNCTION.invoke, event, Invocation.local(request_id))
        try:
            assert held.entered.wait(THREAD_REACHED_SECONDS), (
                f"the invocation made no {held.operation}"
            )
            yield invocation
        finally:
            held.release()


def test_interruption_is_announced_exactly_once_after_sns_failed(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot and SNS failing on every attempt
    instance_id = launch_spot_instance()
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    # WHEN its interruption warning arrives THEN the invocation fails, so the platform retries it
    with pytest.raises(AlertNotDeliveredError):
        invoke(interruption_event(instance_id), services, "inv-1")
    assert fault.attempts > 1
    assert alert_inbox.receive() == []
    # WHEN the platform retries the same warning with SNS healthy
    fault.healed = True
    retried = invoke(interruption_event(instance_id), services, "inv-2")
    # THEN the retry announces it (not "duplicate"), and a further redelivery is the duplicate
    assert (retried["status"], retried["alerts_sent"]) == ("recorded", 1)
    assert invoke(interruption_event(instance_id), services, "inv-3")["status"] == "duplicate"
    alerts = alert_inbox.receive()
    assert [a.alert["severity"] for a in alerts] == ["warning"]
    assert alerts[0].alert["resource"] == f"{MEMBER_A}/{REGION}/{CLUSTER}/batch-spot"
    # AND the interruption was recorded once, not once per attempt
    zone_key = zone_interruptions_key(MEMBER_A, REGION, "m7g.large", f"{REGION}a")
    assert _history(services, zone_key) == [instance_id]
    assert _batch_spot_history(services) == [instance_id]


def test_an_interruption_killed_while_sns_hangs_is_announced_once_by_the_platforms_retry(
    services: SpotServices, alert_inbox: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a spot instance of batch-spot
    event = interruption_event(launch_spot_instance())
    # WHEN SNS never answers the warning's Publish, so Lambda kills the invocation at its
    # deadline, and retries the warning a minute later
    retried = killed_while_publishing_then_retried(
        services.hub_client("sns"),
        fake_clock,
        lambda context: app.lambda_handler(event, context),
    )
    # THEN the retry is not refused by the killed invocation's claim: it announces it once
    assert retried["alerts_sent"] == 1, retried
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_an_interruption_killed_while_recording_it_is_handled_by_the_platforms_retry(
    services: SpotServices, alert_inbox: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a spot instance of batch-spot, its warning handled from the start of an invocation
    # (the function's whole timeout left when the warning is claimed)
    instance_id = launch_spot_instance()
    event = interruption_event(instance_id)
    # WHEN the state table never answers the first read of the interruption's history, so
    # Lambda kills the invocation holding the warning's claim, and retries it a minute later
    retried = killed_while_calling_then_retried(
        services.hub_client("dynamodb"),
        "dynamodb",
        "Query",
        fake_clock,
        lambda context: app.lambda_handler(event, context),
        seconds_left=TIMEOUT_SECONDS,
    )
    # THEN the killed invocation's claim has run out: the retry records the warning and
    # announces it once
    assert (retried["status"], retried["alerts_sent"]) == ("recorded", 1), retried
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]
    assert _batch_spot_history(services) == [instance_id]


def test_an_interruption_whose_invocation_died_early_is_handled_by_the_platforms_first_retry(
    services: SpotServices, alert_inbox: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a spot instance of batch-spot, and an invocation with the function's whole timeout
    # left that claimed its warning and then died (out of memory) while describing the instance:
    # it never released its claim, and is abandoned
    instance_id = launch_spot_instance()
    event = interruption_event(instance_id)
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    died = hang_first_attempt(ec2, "ec2", "DescribeInstances")
    outcomes: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        dead = pool.submit(
            app.lambda_handler, event, ContextRunningOutOfTime(millis_left=[TIMEOUT_SECONDS * 1000])
        )
        try:
            assert died.entered.wait(THREAD_REACHED_SECONDS), "the invocation described no instance"
            # WHEN Lambda retries the failed event a minute later, and two minutes after that
            for wait in (PLATFORM_RETRY_SECONDS, 2 * PLATFORM_RETRY_SECONDS):
                fake_clock.advance(wait)
                try:
                    outcomes.append(app.lambda_handler(event, FakeLambdaContext())["status"])
                    break
                except InterruptionInProgressError:
                    outcomes.append("in progress")
        finally:
            died.release()
        with pytest.raises(InvocationKilledError):
            dead.result(10)
    # THEN the first retry is not turned away by the dead invocation's claim: the warning is
    # recorded and announced once, instead of both retries failing into the dead-letter queue
    assert outcomes == ["recorded"]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]
    assert _batch_spot_history(services) == [instance_id]


def test_a_retried_interruption_applies_the_on_demand_fallback_once_and_announces_it_once(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on and three interruptions of batch-spot in the last hour (threshold 3)
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    # WHEN the fourth arrives while SNS fails on every attempt
    fourth = next_batch_spot_warning(services)
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    with pytest.raises(AlertNotDeliveredError):
        invoke(fourth, services, "inv-4")
    # THEN the fallback was applied once (2 -> 3) although both its notices failed
    assert desired_size(member_eks, "system") == 3
    # WHEN the platform retries the same warning with SNS healthy
    fault.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(fourth, services, "inv-4-retry")
    # THEN the stored outcome is answered: the same fallback, not a second +1
    assert retried["fallback"]["status"] == "scaling_initiated"
    assert retried["interruptions_last_hour"] == 4
    assert desired_size(member_eks, "system") == 3
    assert _changes_of_system(services) == 1
    # AND the interruption warning and the fallback notice each went out exactly once
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning"]
    assert invoke(fourth, services, "inv-4-again")["status"] == "duplicate"
    assert alert_inbox.receive() == []


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("custom.not-aws", "EC2 Spot Instance Interruption Warning"),
        ("aws.s3", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
    ],
)
def test_an_event_that_is_not_aws_s_interruption_warning_is_ignored(  # noqa: PLR0917 - pytest passes fixtures positionally
    invoke: Invoke,
    services: SpotServices,
    alert_inbox: Any,
    caplog: pytest.LogCaptureFixture,
    source: str,
    detail_type: str,
) -> None:
    # GIVEN an interruption-shaped event of a real instance, with another source or type
    event = {
        **interruption_event(launch_spot_instance()),
        "source": source,
        "detail-type": detail_type,
    }
    # WHEN it arrives
    result = invoke(event, services, "inv-1")
    # THEN it is ignored with a reason and logged; nothing is recorded or alerted
    assert result["status"] == "ignored"
    assert result["reason"]
    assert "event ignored" in caplog.messages
    assert_nothing_recorded_or_announced(services, alert_inbox)


@pytest.mark.parametrize("field", ["source", "detail-type"])
def test_an_ignored_event_repeats_only_the_start_of_a_huge_source_or_detail_type(
    invoke: Invoke, services: SpotServices, alert_inbox: Any, field: str
) -> None:
    # GIVEN an interruption warning of a real instance whose source, or detail-type, is a 1 MB
    # text
    event = {**interruption_event(launch_spot_instance()), field: "x" * 1_000_000}
    # WHEN it arrives
    result = invoke(event, services, "inv-1")
    # THEN it is ignored with a reason that repeats only the start of the text and its length
    assert result["status"] == "ignored"
    assert result["reason"].startswith(f"{field} 'xxxx")
    assert "... (1000002 characters) is not" in result["reason"]
    assert len(json.dumps(result)) < 1000
    # AND nothing is recorded or alerted
    assert_nothing_recorded_or_announced(services, alert_inbox)


def test_an_unknown_instance_action_is_refused_and_nothing_recorded(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a warning whose instance-action is not one of AWS's (terminate, stop, hibernate)
    event = interruption_event(launch_spot_instance())
    event["detail"] = {**event["detail"], "instance-action": "explode"}
    # WHEN it arrives
    result = invoke(event, services, "inv-1")
    # THEN it is an error naming the field, and nothing is recorded or alerted
    assert result["status"] == "error"
    assert "invalid event: detail.instance-action:" in result["error"]
    assert_nothing_recorded_or_announced(services, alert_inbox)


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_warning_timed_past_the_calendars_ends_in_utc_is_refused_and_nothing_recorded(
    invoke: Invoke, services: SpotServices, alert_inbox: Any, time: str
) -> None:
    # GIVEN a warning whose time, read in UTC, falls past the calendar's last or first day
    event = {**interruption_event(launch_spot_instance()), "time": time}
    # WHEN it arrives
    result = invoke(event, services, "inv-1")
    # THEN it is an error naming the field, and nothing is recorded or alerted
    assert result["status"] == "error"
    assert "invalid event: time:" in result["error"]
    assert_nothing_recorded_or_announced(services, alert_inbox)


def test_the_on_demand_fallback_skips_a_held_node_group_and_says_why(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, the on-demand group `system` on hold for an hour, as the scaler keeps
    # it, and three interruptions of batch-spot in the last hour (threshold 3)
    services = make_services(SPOT_AUTO_APPLY="true")
    until = services.clock.now() + timedelta(hours=1)
    hold = Hold(
        scope="nodegroup",
        reason="capacity frozen for the launch",
        until=iso_z(until),
        set_by="arn:aws:iam::111111111111:user/platform-oncall",
        set_at=iso_z(services.clock.now()),
    )
    services.state.put_value(
        node_group_key(MEMBER_A, REGION, CLUSTER, "system"), HOLD_NAME, hold.as_record(), 3600
    )
    interrupt_batch_spot(invoke, services)
    # WHEN the fourth interruption would trigger the fallback
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the fallback is skipped with the hold's reason, and system keeps its size
    assert result["fallback"]["status"] == "held"
    assert "capacity frozen for the launch" in result["fallback"]["reason"]
    assert desired_size(member_eks, "system") == 2


def test_a_hold_placed_while_the_on_demand_fallback_is_being_prepared_stops_it(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # the on-call engineer placing a hold on `system` just after the fallback found it unheld,
    # as it takes system's lock (placing a hold takes no lock)
    services = at_the_fallback_threshold(make_services, invoke)
    hold = Hold(
        scope="nodegroup",
        reason="incident 42",
        until=iso_z(services.clock.now() + timedelta(hours=1)),
        set_by="arn:aws:iam::111111111111:user/platform-oncall",
        set_at=iso_z(services.clock.now()),
    )
    placed: list[str] = []

    def hold_placed_as_the_lock_is_taken(request: Any, **_: Any) -> None:
        if not placed and b"LOCK#" in (request.body or b"") and b"/system" in request.body:
            placed.append("system")
            key = node_group_key(MEMBER_A, REGION, CLUSTER, "system")
            services.state.put_value(key, HOLD_NAME, hold.as_record(), 3600)

    services.hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.PutItem", hold_placed_as_the_lock_is_taken
    )
    # WHEN the fourth interruption triggers the fallback
    result = invoke(next_batch_spot_warning(services), services, "inv-4")
    # THEN the hold, placed before the change was made, stops it: system keeps its size and the
    # fallback is held with the hold's reason
    assert placed == ["system"]
    assert result["fallback"]["status"] == "held"
    assert "incident 42" in result["fallback"]["reason"]
    assert desired_size(member_eks, "system") == 2


def test_a_warning_whose_record_the_state_table_refused_is_retried_and_recorded_and_announced_once(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot, and the state table refusing every attempt to record
    # the node group's interruption (the type/AZ record goes through)
    instance_id = launch_spot_instance()
    refused = refuse_state_table_writes(
        services, "TransactWriteItems", b"spot-interruptions/nodegroup/"
    )
    # WHEN its warning arrives THEN the invocation fails, so the platform retries it (an error
    # result would end it there, the warning never announced), and nothing is announced yet
    with pytest.raises(InterruptionNotRecordedError):
        invoke(interruption_event(instance_id), services, "inv-1")
    assert refused.attempts > 1
    assert alert_inbox.receive() == []
    # WHEN the platform retries the warning with the state table healthy
    refused.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the interruption is recorded once under each key, not once per attempt
    assert retried["status"] == "recorded"
    assert retried["interruptions_last_hour"] == 1
    zone_key = zone_interruptions_key(MEMBER_A, REGION, "m7g.large", f"{REGION}a")
    assert _history(services, zone_key) == [instance_id]
    assert _batch_spot_history(services) == [instance_id]
    # AND its warning is announced once
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]


@pytest.mark.parametrize(
    ("server_error", "attempts"),
    [(None, 2), (MULTI_LINE_PAGE, 1)],
    ids=["unreachable", "a-proxy-page-answered"],
)
def test_a_warning_whose_instance_the_member_account_did_not_describe_is_retried_and_announced_once(
    invoke: Invoke,
    services: SpotServices,
    alert_inbox: Any,
    server_error: str | None,
    attempts: int,
) -> None:
    # GIVEN a spot instance of batch-spot, and the member account's EC2 failing every attempt of
    # DescribeInstances (unreachable for a moment, or answering with a proxy's page of many lines)
    instance_id = launch_spot_instance()
    member_ec2 = services.member_client("ec2", MEMBER_A, REGION)
    refused = fail_every_attempt(member_ec2, "ec2", "DescribeInstances", server_error=server_error)
    # WHEN its warning arrives THEN the invocation fails, so the platform retries it (an error
    # result would end it there, the warning never recorded or announced)
    with pytest.raises(InterruptionNotRecordedError, match="not described") as failed:
        invoke(interruption_event(instance_id), services, "inv-1")
    # (botocore retries an endpoint not reached; a page it cannot parse is not retried)
    assert refused.attempts >= attempts
    # AND the error quotes what EC2 answered on one line, cut
    assert "\n" not in str(failed.value)
    assert len(str(failed.value)) < len(MULTI_LINE_PAGE)
    assert_nothing_recorded_or_announced(services, alert_inbox)
    # WHEN the platform retries the warning with EC2 answering again
    refused.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the interruption is recorded once and its warning announced once
    assert retried["status"] == "recorded"
    assert _batch_spot_history(services) == [instance_id]
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_a_member_refusing_the_role_is_alerted_once_per_episode_and_resolved_when_it_works(
    invoke: Invoke,
    services: SpotServices,
    alert_inbox: Any,
    role_grants: list[Callable[[], None]],
) -> None:
    # GIVEN a member account whose STS answers AccessDenied to AssumeRole of the member role
    # (the services' fixture), and a spot instance of batch-spot in member A
    instance_id = launch_spot_instance()
    # WHEN a warning about one of the refusing account's instances arrives
    refused = invoke(interruption_event("i-0aaaaaaaaaaaaaaa1", DENIED_MEMBER), services, "inv-1")
    # THEN the invocation answers (no retry meets anything but the same refusal) with that
    # warning's error, and the account's access alert goes out, naming the account
    assert refused["status"] == "error", refused
    assert "AccessDenied" in refused["error"]
    assert refused["access_alerts"] == {"alerted": [DENIED_MEMBER], "resolved": []}
    [alert] = [message.alert for message in alert_inbox.receive()]
    assert alert["severity"] == "warning"
    assert alert["title"] == f"Member {DENIED_MEMBER} denies the spot optimizer role"
    assert "sts:AssumeRole" in alert["detail"]
    # WHEN another warning of the account arrives the next UTC day, the refusal lasting
    services.clock.advance(86400)  # type: ignore[attr-defined]
    again = invoke(interruption_event("i-0aaaaaaaaaaaaaaa2", DENIED_MEMBER), services, "inv-2")
    # THEN it is answered alike, and the refusal is not announced again (it was, once a day)
    assert again["status"] == "error"
    assert alert_inbox.receive() == []
    # AND member A's warning is recorded and announced as ever
    recorded = invoke(interruption_event(instance_id), services, "inv-3")
    assert recorded["status"] == "recorded"
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]
    # WHEN the member grants the role again and its next warning arrives
    for grant in role_grants:
        grant()
    services.clock.advance(60)  # type: ignore[attr-defined]
    granted = invoke(interruption_event("i-0aaaaaaaaaaaaaaa3", DENIED_MEMBER), services, "inv-4")
    # THEN the account's alert is resolved (same id), once
    assert granted["access_alerts"] == {"alerted": [], "resolved": [DENIED_MEMBER]}
    [resolution] = [message.alert for message in alert_inbox.receive()]
    assert (resolution["id"], resolution["resolved"]) == (alert["id"], True)
    services.clock.advance(60)  # type: ignore[attr-defined]
    invoke(interruption_event("i-0aaaaaaaaaaaaaaa4", DENIED_MEMBER), services, "inv-5")
    assert alert_inbox.receive() == []


def test_a_member_refusal_whose_alert_sns_did_not_take_fails_and_its_retry_alerts_once(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a member account refusing the member role, and SNS failing on every attempt
    fault = fail_every_attempt(services.hub_client("sns"), "sns", "Publish")
    event = interruption_event("i-0aaaaaaaaaaaaaaa1", DENIED_MEMBER)
    # WHEN a warning of the account arrives THEN the invocation fails, so the platform retries it
    with pytest.raises(AlertNotDeliveredError):
        invoke(event, services, "inv-1")
    assert alert_inbox.receive() == []
    # WHEN the platform retries the warning with SNS healthy
    fault.healed = True
    retried = invoke(event, services, "inv-2")
    # THEN the retry sends the account's access alert, once
    assert retried["access_alerts"] == {"alerted": [DENIED_MEMBER], "resolved": []}
    assert [a.alert["title"] for a in alert_inbox.receive()] == [
        f"Member {DENIED_MEMBER} denies the spot optimizer role"
    ]
    invoke(event, services, "inv-3")
    assert alert_inbox.receive() == []


def test_a_refused_warning_from_an_account_the_inventory_does_not_list_opens_no_episode(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN an account the fleet inventory does not list, whose STS refuses the member role
    stranger = "999999999999"
    deny_assume_role(services.sessions.hub_client("sts"), stranger)
    # WHEN a warning naming it arrives (invoked by hand, or redriven after it left the fleet)
    result = invoke(interruption_event("i-0aaaaaaaaaaaaaaa1", stranger), services, "inv-1")
    # THEN it is an error saying why no access alert goes out, and none goes out
    assert result["status"] == "error"
    assert result["reason"] == f"account {stranger} is not a member of the fleet inventory"
    assert "access_alerts" not in result
    assert alert_inbox.receive() == []


def test_a_warning_about_an_instance_the_account_does_not_have_is_an_error_not_retried(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a warning naming an instance id the member account does not have
    # WHEN it arrives
    result = invoke(interruption_event("i-0123456789abcdef0"), services, "inv-1")
    # THEN it is an error result (a retry would find no instance either), nothing recorded
    assert result["status"] == "error"
    assert "i-0123456789abcdef0" in result["error"]
    assert alert_inbox.receive() == []


@pytest.mark.parametrize(
    "server_error", [None, MULTI_LINE_PAGE], ids=["unreachable", "a-proxy-page-answered"]
)
def test_a_fallback_whose_outcome_the_state_table_refused_is_still_announced_once(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    server_error: str | None,
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # the state table failing every attempt to store a handled warning's outcome: unreachable,
    # or answered with a proxy's page of many lines
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    refused = refuse_state_table_writes(
        services,
        "PutItem",
        b"IDEMPOTENCY#spot_interruption",
        b"COMPLETED",
        server_error=server_error,
    )
    # WHEN the fourth warning arrives and its fallback is applied
    fourth = next_batch_spot_warning(services)
    result = invoke(fourth, services, "inv-4")
    # THEN the +1 is made and reported as made, with the outcome said to be not stored
    assert refused.attempts > 1
    assert desired_size(member_eks, "system") == 3
    assert result["fallback"]["status"] == "scaling_initiated"
    assert result["idempotency_record"].startswith("not stored:")
    # AND what it quotes of the page is one line, cut
    assert "\n" not in result["idempotency_record"]
    assert len(result["idempotency_record"]) < len(MULTI_LINE_PAGE)
    # AND the warning and the +1 are announced
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning"]
    # WHEN EventBridge delivers the same warning again with the state table healthy
    refused.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    again = invoke(fourth, services, "inv-4-copy")
    # THEN nothing is applied, recorded or announced a second time
    assert again["fallback"]["status"] == "already_applied"
    assert desired_size(member_eks, "system") == 3
    assert _changes_of_system(services) == 1
    assert alert_inbox.receive() == []


@pytest.mark.usefixtures("no_retry_waits")
def test_a_fallback_whose_claims_answer_was_lost_is_made_once(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # DynamoDB applying the claim of the hour's +1 but its answer never arriving (botocore sends
    # the claim again)
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    lost = lose_first_answer(
        services.hub_client("dynamodb"), "dynamodb", "PutItem", body_with=(b"ONCE#spot-fallback/",)
    )
    # WHEN the fourth warning arrives, and a fifth one after it
    fourth = invoke(next_batch_spot_warning(services), services, "inv-4")
    services.clock.advance(60)  # type: ignore[attr-defined]
    fifth = invoke(next_batch_spot_warning(services), services, "inv-5")
    # THEN the fourth made the +1 (2 -> 3), as if the claim's answer had arrived, and the fifth
    # is refused as the hour's second
    assert lost.lost == 1
    assert fourth["fallback"]["status"] == "scaling_initiated"
    assert fifth["fallback"]["status"] == "already_applied"
    assert desired_size(member_eks, "system") == 3
    assert _changes_of_system(services) == 1


def test_a_fallback_whose_alert_claims_the_state_table_refused_is_announced_by_the_retry(
    invoke: Invoke, make_services: MakeServices, member_eks: Any, alert_inbox: Any
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour (threshold 3), and
    # the state table refusing every attempt to claim an alert's delivery
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    refused = refuse_state_table_writes(services, "PutItem", b"IDEMPOTENCY#alert_delivery")
    # WHEN the fourth warning arrives and its fallback is applied
    fourth = next_batch_spot_warning(services)
    # THEN the invocation fails, so the platform retries it, and the +1 is made once
    with pytest.raises(NoticesNotDeliveredError):
        invoke(fourth, services, "inv-4")
    assert refused.attempts > 1
    assert desired_size(member_eks, "system") == 3
    assert alert_inbox.receive() == []
    # WHEN the platform retries the same warning with the state table healthy
    refused.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(fourth, services, "inv-4")
    # THEN the warning and the +1 are announced once each, and no second +1 is made
    assert retried["fallback"]["status"] == "scaling_initiated"
    assert retried["alerts_sent"] == 2
    assert desired_size(member_eks, "system") == 3
    alerts = alert_inbox.receive()
    assert sorted(a.alert["severity"] for a in alerts) == ["info", "warning"]
    assert invoke(fourth, services, "inv-4-copy")["status"] == "duplicate"
    assert alert_inbox.receive() == []


@pytest.mark.parametrize(
    ("detail", "field", "shown"),
    [
        (
            {"instance-id": "i-" + "z" * 1_000_000, "instance-action": "terminate"},
            "instance-id",
            "'i-zzz",
        ),
        (
            {"instance-id": "I-0123456789ABCDEF0", "instance-action": "terminate"},
            "instance-id",
            "'I-0123456789ABCDEF0'",
        ),
        (
            {"instance-id": "i-0123456789abcdef0", "instance-action": "x" * 1_000_000},
            "instance-action",
            "'xxx",
        ),
        (
            {"instance-id": "i-0123456789abcdef0", "instance-action": "Terminate"},
            "instance-action",
            "'Terminate'",
        ),
    ],
)
def test_a_mistyped_instance_id_or_action_is_refused_showing_the_start_of_the_value(  # noqa: PLR0917 - pytest passes fixtures positionally
    invoke: Invoke,
    services: SpotServices,
    alert_inbox: Any,
    detail: dict[str, str],
    field: str,
    shown: str,
) -> None:
    # GIVEN an interruption warning whose instance id or action is mistyped or huge
    event = {**interruption_event(launch_spot_instance()), "detail": detail}
    # WHEN it arrives
    result = invoke(event, services, "inv-1")
    # THEN one short message names the field and shows the start of the value
    assert result["status"] == "error"
    assert result["error"].startswith(f"invalid event: detail.{field}: ")
    assert f"got {shown}" in result["error"]
    assert len(result["error"]) < 200
    # AND nothing is recorded or alerted
    assert_nothing_recorded_or_announced(services, alert_inbox)


def test_a_retry_with_its_killed_predecessors_request_id_makes_no_second_on_demand_increase(
    invoke: Invoke, make_services: MakeServices, member_eks: Any
) -> None:
    # GIVEN auto-apply on and three interruptions of batch-spot in the last hour (threshold 3);
    # the fourth warning's invocation is slow before it takes system's lock (its lease then
    # outlives its claim of the warning) and is killed after EKS took its +1, while recording it
    services = at_the_fallback_threshold(make_services, invoke)
    member_eks_client = services.member_client("eks", MEMBER_A, REGION)
    slowed: list[bool] = []

    def slow_before_the_lock(request: Any, **_: Any) -> None:
        if not slowed:
            slowed.append(True)
            services.clock.advance(250)  # type: ignore[attr-defined]

    member_eks_client.meta.events.register_first(
        "before-send.eks.ListNodegroups", slow_before_the_lock
    )
    hang = InjectedHang("TransactWriteItems")

    def hang_recording_the_fallback(request: Any, **kwargs: Any) -> None:
        if b"spot_fallback" in (request.body or b""):
            hang(request, **kwargs)

    services.hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.TransactWriteItems", hang_recording_the_fallback
    )
    fourth = next_batch_spot_warning(services)
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(app.FUNCTION.invoke, fourth, Invocation.local("inv-4"))
        assert hang.entered.wait(THREAD_REACHED_SECONDS)
        assert desired_size(member_eks, "system") == 3
        # WHEN Lambda kills it at its timeout and retries the event a minute later with the same
        # request id (so the same lock owner), within the dead invocation's lock lease
        services.clock.advance(60)  # type: ignore[attr-defined]
        retried = invoke(fourth, services, "inv-4")
        hang.release()
        with pytest.raises(InvocationKilledError):
            killed.result(10)
    # THEN the retry, although it holds the lock as the same owner, makes no second +1
    assert retried["fallback"]["status"] == "already_applied"
    assert desired_size(member_eks, "system") == 3


def test_a_copy_of_a_warning_arriving_while_it_is_handled_fails_and_its_retry_is_the_duplicate(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a warning being handled: its invocation is waiting for DescribeInstances
    instance_id = launch_spot_instance()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    described = hold_first_attempt(ec2, "ec2", "DescribeInstances")
    # WHEN EventBridge delivers a copy of the same warning meanwhile
    # THEN the copy fails, so the platform retries it later
    with (
        invocation_held_at(described, interruption_event(instance_id), "inv-1") as first,
        pytest.raises(InterruptionInProgressError),
    ):
        invoke(interruption_event(instance_id), services, "inv-2")
    handled = first.result(10)
    # AND the platform's retry of the copy is the duplicate: recorded and announced once
    assert handled["status"] == "recorded"
    assert invoke(interruption_event(instance_id), services, "inv-2")["status"] == "duplicate"
    assert len(alert_inbox.receive()) == 1
    assert _batch_spot_history(services).count(instance_id) == 1


def test_a_copy_of_a_warning_fails_while_its_handling_outlasts_one_claim_by_renewing_it(
    invoke: Invoke, services: SpotServices, alert_inbox: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a warning whose invocation took most of a claim's length to describe the instance,
    # and is now waiting for the first read of the interruption's history
    instance_id = launch_spot_instance()

    def slow_describe(request: Any, **_: Any) -> None:
        fake_clock.advance(HANDLING_SECONDS - 5)

    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    ec2.meta.events.register_first("before-send.ec2.DescribeInstances", slow_describe)
    reading = hold_first_attempt(services.hub_client("dynamodb"), "dynamodb", "Query")
    with invocation_held_at(reading, interruption_event(instance_id), "inv-1") as first:
        # WHEN a copy of the warning arrives after the claim's first length ran out
        fake_clock.advance(10)
        # THEN the copy fails: the working invocation renewed its claim before recording
        with pytest.raises(InterruptionInProgressError):
            invoke(interruption_event(instance_id), services, "inv-2")
    handled = first.result(10)
    # AND the warning is recorded and announced once, by the first invocation
    assert (handled["status"], handled["alerts_sent"]) == ("recorded", 1)
    assert len(alert_inbox.receive()) == 1
    assert _batch_spot_history(services) == [instance_id]


def test_an_invocation_whose_claim_a_copy_took_over_stops_and_the_warning_is_handled_once(
    invoke: Invoke, services: SpotServices, alert_inbox: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a warning whose invocation waits for DescribeInstances longer than its claim lasts
    instance_id = launch_spot_instance()
    ec2 = services.member_client("ec2", MEMBER_A, REGION)
    described = hold_first_attempt(ec2, "ec2", "DescribeInstances")
    with invocation_held_at(described, interruption_event(instance_id), "inv-1") as first:
        # WHEN a copy of the warning arrives once the claim lapsed, takes it over and
        # handles the warning, and then the first invocation's describe answers
        fake_clock.advance(HANDLING_SECONDS + 1)
        copy = invoke(interruption_event(instance_id), services, "inv-2")
    # THEN the first invocation stops at its claim's renewal, failing for a retry
    with pytest.raises(InterruptionInProgressError):
        first.result(10)
    # AND the warning was recorded and announced once, by the copy
    assert (copy["status"], copy["alerts_sent"]) == ("recorded", 1)
    assert len(alert_inbox.receive()) == 1
    assert _batch_spot_history(services) == [instance_id]


def test_a_fallback_made_after_a_copy_of_its_warning_took_the_claim_over_is_announced_once(
    invoke: Invoke,
    make_services: MakeServices,
    member_eks: Any,
    alert_inbox: Any,
    fake_clock: ManualClock,
) -> None:
    # GIVEN auto-apply on, three interruptions of batch-spot in the last hour, and the fourth's
    # invocation waiting for EKS to take its +1 of the on-demand group
    services = at_the_fallback_threshold(make_services, invoke)
    alert_inbox.receive()
    fourth = next_batch_spot_warning(services)
    eks = services.member_client("eks", MEMBER_A, REGION)
    updating = hold_first_attempt(eks, "eks", "UpdateNodegroupConfig")
    with invocation_held_at(updating, fourth, "inv-4") as first:
        # WHEN the warning's claim lapses meanwhile and a copy of it takes the claim over,
        # finds the on-demand group locked by the first, and stores its outcome
        fake_clock.advance(HANDLING_SECONDS + 1)
        copy = invoke(fourth, services, "inv-4-copy")
    handled = first.result(10)
    # THEN the first invocation's +1 stands, made once, and is announced although the stored
    # outcome is the copy's; the warning itself went out once
    assert copy["fallback"]["status"] == "locked"
    assert handled["fallback"]["status"] == "scaling_initiated"
    assert desired_size(member_eks, "system") == 3
    assert sorted(a.alert["severity"] for a in alert_inbox.receive()) == ["info", "warning"]


def test_a_warning_whose_claim_the_state_table_refused_is_retried_and_announced_once(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot, and the state table failing every attempt to claim
    # an interruption warning with a proxy's page of escapes and lines
    instance_id = launch_spot_instance()
    refused = refuse_state_table_writes(
        services,
        "PutItem",
        b"IDEMPOTENCY#spot_interruption",
        b"IN_PROGRESS",
        server_error=ESCAPES_PAGE,
    )
    # WHEN its warning arrives THEN the invocation fails, so the platform retries it, and
    # nothing is recorded or announced
    with pytest.raises(InterruptionNotRecordedError, match="not claimed") as failed:
        invoke(interruption_event(instance_id), services, "inv-1")
    assert refused.attempts > 1
    # AND the error quotes the page escaped on one line, cut
    assert ESCAPES_PAGE_QUOTED in str(failed.value)
    assert str(failed.value).isprintable()
    assert len(str(failed.value)) < 600
    assert_nothing_recorded_or_announced(services, alert_inbox)
    # WHEN the platform retries it with the state table healthy
    refused.healed = True
    services.clock.advance(60)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the warning is recorded and announced once
    assert retried["status"] == "recorded"
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]


def test_a_warning_not_recorded_whose_claim_cannot_be_released_still_fails_the_invocation(
    invoke: Invoke, services: SpotServices, alert_inbox: Any
) -> None:
    # GIVEN a spot instance of batch-spot, and the state table refusing every attempt to record
    # an interruption and to delete anything (so the warning's claim cannot be released)
    instance_id = launch_spot_instance()
    hub_dynamodb = services.hub_client("dynamodb")
    refused_records = fail_every_attempt(hub_dynamodb, "dynamodb", "TransactWriteItems")
    refused_deletes = fail_every_attempt(hub_dynamodb, "dynamodb", "DeleteItem")
    # WHEN its warning arrives
    # THEN the invocation fails, so the platform retries it (not an error result, which ends it)
    with pytest.raises(InterruptionNotRecordedError):
        invoke(interruption_event(instance_id), services, "inv-1")
    assert (refused_records.attempts > 1, refused_deletes.attempts > 1) == (True, True)
    assert alert_inbox.receive() == []
    # WHEN the platform retries it once the claim expired, with the state table healthy
    refused_records.healed = refused_deletes.healed = True
    services.clock.advance(HANDLING_SECONDS + 1)  # type: ignore[attr-defined]
    retried = invoke(interruption_event(instance_id), services, "inv-1")
    # THEN the warning is recorded and announced once
    assert retried["status"] == "recorded"
    assert [a.alert["severity"] for a in alert_inbox.receive()] == ["warning"]
