"""deliver_once: the dedup claim is completed only after SNS took the alert, under the
publishing function's own scope."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from fleet_shared.alert_delivery import (
    PUBLISH_SECONDS,
    SCOPE,
    AlertNotDeliveredError,
    claim_scope,
    deliver_all,
    deliver_once,
    delivered,
)
from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.clock import ManualClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.exceptions import RequestInProgressError
from fleet_shared.sessions import CLIENT_CONFIG, AccountSessions
from fleet_shared.state_table import StateTable
from tests.handlers.conftest import HUB_ACCOUNT_ID, REGION, AlertInbox
from tests.handlers.faults import (
    MULTI_LINE_PAGE,
    answer_malformed,
    fail_every_attempt,
    refuse_completions,
)

FUNCTION = "security_scanner"
"""The function whose alerts the tests' publisher publishes."""
FLEET_MAX_ATTEMPTS = 6
"""`CLIENT_CONFIG` allows `max_attempts` 5 retries after the first attempt."""


def _alert(clock: ManualClock) -> Alert:
    return Alert.create(
        severity="critical",
        source="security_scanner",
        title="Root console login",
        detail="root signed in",
        resource="arn:aws:iam::222222222222:root",
        timestamp=clock.now(),
    )


@pytest.fixture
def sns_client(alert_inbox: AlertInbox) -> Any:
    return boto3.client("sns", region_name=REGION, config=CLIENT_CONFIG)


@pytest.fixture
def publisher(sns_client: Any) -> AlertPublisher:
    return AlertPublisher(sns_client, load_environment(FunctionEnvironment), FUNCTION)


@pytest.mark.parametrize(
    ("server_error", "attempts"),
    [(None, FLEET_MAX_ATTEMPTS), (MULTI_LINE_PAGE, 1)],
    ids=["unreachable", "a-proxy-page-answered"],
)
def test_failed_publish_releases_the_claim_so_the_retry_delivers_exactly_once(
    state_table: StateTable,
    publisher: AlertPublisher,
    sns_client: Any,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
    *,
    server_error: str | None,
    attempts: int,
) -> None:
    # GIVEN SNS failing on every attempt, botocore's retries included: unreachable, or answering
    # with a proxy's page of many lines
    fault = fail_every_attempt(sns_client, "sns", "Publish", server_error=server_error)
    alert = _alert(fake_clock)
    # WHEN the alert is delivered under a dedup key
    with pytest.raises(AlertNotDeliveredError) as failed:
        deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None)
    # THEN botocore really retried (an endpoint not reached; a page it cannot parse is not
    # retried), and nothing reached the topic
    assert fault.attempts == attempts
    # AND the error quotes SNS's answer on one line, cut
    assert "\n" not in str(failed.value)
    assert len(str(failed.value)) < len(MULTI_LINE_PAGE)
    assert alert_inbox.receive() == []
    # WHEN SNS is healthy again and the same event is retried
    fault.healed = True
    message_id = deliver_once(
        state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None
    )
    # THEN the alert goes out once, and a further repeat is a duplicate
    assert message_id is not None
    assert (
        deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None)
        is None
    )
    received = alert_inbox.receive()
    assert [item.alert["title"] for item in received] == ["Root console login"]


def test_a_publish_answered_with_a_proxy_page_is_not_delivered_and_the_retry_delivers_once(
    state_table: StateTable,
    alert_inbox: AlertInbox,  # the topics exist
    fake_clock: ManualClock,
) -> None:
    # GIVEN the fleet's own SNS client of the hub, whose Publish a gateway answers with its
    # well-formed HTML page (HTTP 200)
    sns = AccountSessions("test", None, HUB_ACCOUNT_ID, home_region=REGION).hub_client("sns")
    publisher = AlertPublisher(sns, load_environment(FunctionEnvironment), FUNCTION)
    page = answer_malformed(sns, "sns", "Publish", b"<html><body>Bad gateway</body></html>")
    alert = _alert(fake_clock)
    # WHEN the alert is delivered under a dedup key
    # THEN it is not delivered, the error naming the call and the start of the page
    with pytest.raises(AlertNotDeliveredError, match=r"Publish answered without.*Bad gateway"):
        deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None)
    assert page.answered == 1
    # WHEN SNS answers again and the same event is retried
    sns.meta.events.unregister("before-send.sns.Publish", page)
    message_id = deliver_once(
        state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None
    )
    # THEN the claim was released: the alert goes out, and a further repeat is a duplicate
    # (moto acted on the request the page answered too, so the inbox is not counted)
    assert message_id is not None
    assert deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None) is None


def test_a_publish_answered_without_a_message_id_is_not_delivered_and_the_retry_delivers_once(
    state_table: StateTable,
    alert_inbox: AlertInbox,  # the topics exist
    fake_clock: ManualClock,
) -> None:
    # GIVEN the fleet's own SNS client of the hub, whose Publish is answered (HTTP 200) with
    # SNS's own root and result but without the MessageId SNS sends for every message it took
    sns = AccountSessions("test", None, HUB_ACCOUNT_ID, home_region=REGION).hub_client("sns")
    publisher = AlertPublisher(sns, load_environment(FunctionEnvironment), FUNCTION)
    answer = answer_malformed(
        sns,
        "sns",
        "Publish",
        b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult/>'
        b"</PublishResponse>",
        content_type="text/xml",
    )
    alert = _alert(fake_clock)
    # WHEN the alert is delivered under a dedup key
    # THEN it is not delivered, the error naming the call and the missing field, rather than a
    # KeyError that ended the caller's whole run
    with pytest.raises(AlertNotDeliveredError, match=r"Publish answered without MessageId"):
        deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None)
    assert answer.answered == 1
    # WHEN SNS answers again and the same event is retried
    sns.meta.events.unregister("before-send.sns.Publish", answer)
    message_id = deliver_once(
        state_table, publisher, "event-1", alert, ttl_seconds=3600, deadline=None
    )
    # THEN the claim was released: the alert goes out, and a further repeat is a duplicate
    assert message_id is not None
    assert deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None) is None


def test_an_alert_sns_took_whose_claim_could_not_be_completed_counts_as_delivered(
    state_table: StateTable,
    dynamodb_client: Any,
    publisher: AlertPublisher,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    # GIVEN the state table refusing (every attempt) to complete delivery claims
    refused = refuse_completions(dynamodb_client, claim_scope(FUNCTION))
    alert = _alert(fake_clock)
    # WHEN an alert is delivered under a dedup key
    message_id = deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None)
    # THEN SNS took it and it counts as delivered (a failure would make the retry publish it
    # again, possibly past the router's dedup window), although the claim was not completed
    assert refused.attempts > 1
    assert message_id is not None
    assert [item.alert["id"] for item in alert_inbox.receive()] == [alert.id]
    # AND the claim is kept, not released: a copy of the event handled meanwhile does not
    # publish it again
    fake_clock.advance(60)
    with pytest.raises(AlertNotDeliveredError, match="in progress"):
        deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None)
    assert alert_inbox.receive() == []


def test_a_delivered_key_is_delivered_again_after_its_ttl(
    state_table: StateTable,
    publisher: AlertPublisher,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    # GIVEN an alert delivered under a key with a one-hour window
    alert = _alert(fake_clock)
    assert deliver_once(state_table, publisher, "incident", alert, ttl_seconds=3600, deadline=None)
    # WHEN the window has passed
    fake_clock.advance(3601)
    # THEN the same key is delivered again
    assert deliver_once(state_table, publisher, "incident", alert, ttl_seconds=3600, deadline=None)
    assert len(alert_inbox.receive()) == 2


def test_one_functions_delivery_claim_is_its_own_and_leaves_another_functions_alert_alone(
    state_table: StateTable,
    publisher: AlertPublisher,
    sns_client: Any,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    # GIVEN an alert one function delivered under a dedup key
    alert = _alert(fake_clock)
    assert deliver_once(state_table, publisher, "incident", alert, 3600, deadline=None)
    # WHEN another function delivers an alert under the same key
    other = AlertPublisher(sns_client, load_environment(FunctionEnvironment), "cost_analyzer")
    # THEN its alert goes out: the first function's claim, in its own scope, neither answers
    # nor blocks it
    assert deliver_once(state_table, other, "incident", alert, 3600, deadline=None)
    assert len(alert_inbox.receive()) == 2
    assert state_table.request_completed(claim_scope(FUNCTION), "incident")
    assert state_table.request_completed(claim_scope("cost_analyzer"), "incident")
    assert not state_table.request_completed(SCOPE, "incident")


def test_an_alert_claimed_under_the_shared_scope_before_the_upgrade_is_not_sent_again_after_it(
    state_table: StateTable,
    publisher: AlertPublisher,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    alert = _alert(fake_clock)
    # GIVEN an invocation of the release before the upgrade publishing an alert, its claim
    # taken under the one scope every function shared then
    with state_table.idempotent(SCOPE, "event-1", 3600, PUBLISH_SECONDS) as old_release:
        # WHEN a copy of its event reaches the upgraded function meanwhile
        # THEN it is not delivered (the platform retries it), and nothing is published
        with pytest.raises(AlertNotDeliveredError, match="in progress"):
            deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None)
        with pytest.raises(RequestInProgressError):
            delivered(state_table, FUNCTION, "event-1")
        old_release.complete({"message_id": "before-the-upgrade", "alert_id": alert.id})
    assert alert_inbox.receive() == []
    # WHEN the copy is retried after the old release's invocation delivered the alert
    fake_clock.advance(60)
    # THEN it is a duplicate: the alert went out once, and reads as delivered
    assert deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None) is None
    assert delivered(state_table, FUNCTION, "event-1")
    assert alert_inbox.receive() == []
    # AND once that claim expired, the key is delivered again, under the function's own scope
    fake_clock.advance(3600)
    assert deliver_once(state_table, publisher, "event-1", alert, 3600, deadline=None)
    assert state_table.request_completed(claim_scope(FUNCTION), "event-1")
    assert len(alert_inbox.receive()) == 1


def test_deliver_all_tries_every_notice_and_a_retry_sends_only_the_failed_one(
    state_table: StateTable,
    publisher: AlertPublisher,
    sns_client: Any,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    # GIVEN two notices of done work, the first of which SNS refuses
    first = _alert(fake_clock)
    second = Alert.create(
        severity="info", source="eks_scaler", title="Second", detail="-", resource="r"
    )
    notices = [("change-1", first), ("change-2", second)]
    fault = fail_every_attempt(sns_client, "sns", "Publish")

    def fail_first_only(request: Any, **kwargs: Any) -> None:
        if "Second" not in str(request.body):
            fault(request, **kwargs)

    sns_client.meta.events.unregister("before-send.sns.Publish", fault)
    sns_client.meta.events.register_first("before-send.sns.Publish", fail_first_only)
    # WHEN they are delivered
    with pytest.raises(AlertNotDeliveredError):
        deliver_all(state_table, publisher, notices, ttl_seconds=3600, deadline=None)
    # THEN the second went out although the first failed
    assert [item.alert["title"] for item in alert_inbox.receive()] == ["Second"]
    # WHEN the run is retried with SNS healthy
    fault.healed = True
    deliver_all(state_table, publisher, notices, ttl_seconds=3600, deadline=None)
    # THEN only the notice that had failed goes out
    assert [item.alert["title"] for item in alert_inbox.receive()] == ["Root console login"]


def test_resolution_keeps_the_id_and_reads_as_resolved(fake_clock: ManualClock) -> None:
    alert = _alert(fake_clock)
    resolution = alert.resolution("root sessions ended", fake_clock.advance(600))
    assert (resolution.id, resolution.resolved, resolution.severity) == (
        alert.id,
        True,
        alert.severity,
    )
    assert resolution.subject() == "[RESOLVED] Root console login"
    assert resolution.timestamp > alert.timestamp
