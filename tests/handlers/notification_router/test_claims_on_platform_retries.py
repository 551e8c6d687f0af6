"""notification_router fed by its alert topics (SNS invokes it asynchronously): what Lambda's own
retry, a minute after an invocation that failed or that Lambda ended, finds of the dedup claims
that invocation left behind, in simulated time (`LambdaTime`); what a redelivery of a message
handled already (Lambda's retry of its event, SQS handing it out again) is answered, up to the
latest the platform redelivers it; and what comes of an alert topic's event that failed past
Lambda's retries, whose record Lambda sends to the router's queue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from components.fleet_function import (
    ASYNC_MAXIMUM_EVENT_AGE_SECONDS,
    QUEUE_MAX_RECEIVE_COUNT,
    QUEUE_RETENTION_SECONDS,
    queue_visibility_timeout,
    redelivery_seconds,
)
from fleet_shared.alerts import alert_id
from fleet_shared.clock import ManualClock
from fleet_shared.state_table import StateTable
from handlers.notification_router import app
from handlers.notification_router.exceptions import UndeliveredAlertError
from tests.handlers.conftest import FLEET_ENVIRONMENT, FakeLambdaContext
from tests.handlers.deadlines import PLATFORM_RETRY_SECONDS, LambdaTime
from tests.handlers.faults import fail_every_attempt
from tests.handlers.notification_router.test_state_table_after_a_send import (
    QUEUE_VISIBILITY_SECONDS,
    REGION,
    TIMEOUT_SECONDS,
    Invoke,
    SimulatedInvocations,
    alert,
    leave_recording_unanswered,
    longest_retry_waits,
    sqs_event,
)

ALERT_TOPIC_ARN = FLEET_ENVIRONMENT["ALERT_TOPIC_ARN"]
OWN_FUNCTION_ARN = FakeLambdaContext().invoked_function_arn


def sns_event(message_id: str, alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {
                    "MessageId": message_id,
                    "TopicArn": ALERT_TOPIC_ARN,
                    "Message": json.dumps(alert),
                },
            }
        ]
    }


def failure_record(
    event: dict[str, Any],
    *,
    function_arn: str = OWN_FUNCTION_ARN,
    condition: str = "RetriesExhausted",
) -> str:
    """The record Lambda sends to the on-failure destination of the function `function_arn`
    (the router's own by default) once an asynchronous invocation with `event` failed past its
    retries, as AWS's Lambda guide shows one."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2025-06-02T03:33:00.000Z",
            "requestContext": {
                "requestId": "c0ffee00-0000-4000-8000-000000000001",
                "functionArn": f"{function_arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": "alerts not delivered: n-1",
                "errorType": "UndeliveredAlertError",
            },
        }
    )


def run_as_lambda(
    invocations: SimulatedInvocations, invoke: Invoke, event: dict[str, Any]
) -> dict[str, Any]:
    """The result of one asynchronous invocation with the function's whole timeout; an
    `UndeliveredAlertError` (the invocation failed, so Lambda retries it) as `{"failed": ids}`."""
    try:
        return invocations.run(invoke, event, TIMEOUT_SECONDS)
    except UndeliveredAlertError as error:
        return {"failed": error.message_ids}


def spent(invocations: SimulatedInvocations) -> float:
    """The time the last invocation spent before it ended."""
    assert invocations.time is not None
    return invocations.time.spent


@dataclass
class EndedWhilePublishing:
    """A `before-send` hook on the e-mail topic's Publish: the first one of an armed invocation
    takes the rest of its time, so Lambda ends the invocation before the topic gets the alert."""

    invocations: SimulatedInvocations
    armed: bool = True

    def __call__(self, **_: Any) -> None:
        time: LambdaTime | None = self.invocations.time
        if not self.armed or time is None:
            return
        self.armed = False
        time.spend(time.seconds_left - time.spent)


# Lambda ends the first invocation before the router adds a metric; Powertools then warns that
# it has none to flush.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_the_retry_of_an_invocation_lambda_ended_mid_delivery_sends_only_the_channels_left(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the default routes (critical: PagerDuty, Slack, then e-mail), and the router's
    # container warm
    invoke(sqs_event("warm-up", alert("info", "warm-up")))
    email_inbox.receive()
    invocations = SimulatedInvocations(monkeypatch)
    services = app.FUNCTION.services()
    services.hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb", invocations.refuse_after_the_end
    )
    # AND Lambda ends the first invocation at its timeout while it publishes to the e-mail topic,
    # after PagerDuty and Slack took the alert
    ended = EndedWhilePublishing(invocations)
    services.sns_client(REGION).meta.events.register_first("before-send.sns.Publish", ended)
    event = sns_event("n-1", alert("critical", "node group unready"))

    # WHEN the alert topic invokes the router
    first = run_as_lambda(invocations, invoke, event)
    # AND Lambda retries the invocation it ended at the platform's retry delay
    fake_clock.advance(spent(invocations) + PLATFORM_RETRY_SECONDS)
    again = run_as_lambda(invocations, invoke, event)

    # THEN the retry found the claims free and delivered the alert: only e-mail was missing
    assert "ended_by_lambda" in first
    assert again.get("status") == "ok", again
    channels = {c["channel"]: c["status"] for c in again["results"][0]["channels"]}
    assert channels == {"pagerduty": "already_sent", "slack": "already_sent", "email": "sent"}
    # AND each channel got the alert once
    sent = (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack")))
    assert (*sent, len(email_inbox.receive())) == (1, 1, 1)


def test_the_retry_of_an_invocation_that_could_not_release_its_claims_delivers_the_alert(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the default routes, botocore's waits between attempts drawn at their longest
    longest_retry_waits(monkeypatch)
    invoke(sqs_event("warm-up", alert("info", "warm-up")))
    email_inbox.receive()
    invocations = SimulatedInvocations(monkeypatch)
    # AND a state table that answers no attempt of the write recording PagerDuty's delivery: it
    # is given up for the invocation, so the claims cannot be released on the way out
    recording = leave_recording_unanswered(invocations, answered_on_the_last_attempt=False)
    event = sns_event("n-1", alert("critical", "node group unready"))

    # WHEN the alert topic invokes the router, which fails the invocation
    first = run_as_lambda(invocations, invoke, event)
    # AND Lambda retries it at the platform's retry delay, the table answering
    fake_clock.advance(spent(invocations) + PLATFORM_RETRY_SECONDS)
    again = run_as_lambda(invocations, invoke, event)

    # THEN the first invocation failed for the retry, which found the claims free and sent it
    assert first == {"failed": ["n-1"]}
    assert again.get("status") == "ok", again
    # AND only PagerDuty, whose delivery no call could record, got it twice (one dedup key)
    pages = receiver.bodies("/pagerduty")
    sent = (len(pages), len(receiver.bodies("/slack")), len(email_inbox.receive()))
    assert sent == (2, 1, 1)
    assert len({page["dedup_key"] for page in pages}) == 1
    assert recording.attempts == recording.unanswered_attempts


def test_a_redelivered_message_is_not_counted_as_a_duplicate_but_another_copy_is(
    invoke: Invoke, receiver: Any, email_inbox: Any, state_table: StateTable
) -> None:
    # GIVEN a critical alert the topic delivered (message n-1), and a copy of it published again
    # (message n-2), suppressed and counted
    raised = alert("critical", "node group unready")
    counter_key = "notification_router/"
    counter_key += f"{alert_id(raised['source'], raised['resource'], raised['title'])}/critical"
    invoke(sns_event("n-1", raised))
    invoke(sns_event("n-2", raised))
    # WHEN Lambda retries both events (each failed for another message of its batch)
    retries = [invoke(sns_event(message_id, raised)) for message_id in ("n-1", "n-2")]
    # AND a third copy is published (message n-3)
    third = invoke(sns_event("n-3", raised))
    # THEN the retries are known as redeliveries: sent nowhere, and not counted
    assert [retry["results"][0]["status"] for retry in retries] == ["redelivered"] * 2
    # AND each other copy is counted: the next notice says two were suppressed, not four
    assert (third["results"][0]["status"], third["results"][0]["suppressed_duplicates"]) == (
        "duplicate",
        2,
    )
    assert state_table.get_value(counter_key, "suppressed") == {"count": 2}
    sent = (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack")))
    assert (*sent, len(email_inbox.receive())) == (1, 1, 1)


@pytest.mark.parametrize(
    ("event_of", "handed_out_again_as", "latest_redelivery_seconds"),
    [
        # Lambda starts an alert topic's event's last retry within its maximum event age.
        (sns_event, "n-1", ASYNC_MAXIMUM_EVENT_AGE_SECONDS),
        # SQS hands a message out again a visibility timeout after each receive.
        (
            sqs_event,
            "n-1",
            (QUEUE_MAX_RECEIVE_COUNT - 1) * queue_visibility_timeout(TIMEOUT_SECONDS),
        ),
        # A redrive from the queue's dead-letter queue gives the message a new messageId, as late
        # as the queue and then its dead-letter queue keep it.
        (sqs_event, "n-2", QUEUE_RETENTION_SECONDS + QUEUE_RETENTION_SECONDS),
    ],
    ids=["lambda-retry", "sqs-redelivery", "dead-letter-redrive"],
)
def test_a_redelivery_after_the_dedup_window_reaches_no_channel_again(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    *,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    event_of: Any,
    handed_out_again_as: str,
    latest_redelivery_seconds: int,
) -> None:
    # GIVEN the router as the program deploys it, and a critical alert delivered to every channel
    monkeypatch.setenv("ROUTER_REDELIVERY_SECONDS", str(redelivery_seconds(TIMEOUT_SECONDS)))
    raised = alert("critical", "node group unready")
    assert invoke(event_of("n-1", raised))["results"][0]["status"] == "sent"
    email_inbox.receive()
    # WHEN the platform hands the same message out again as late as it can, past the 900 s
    # dedup window
    fake_clock.advance(latest_redelivery_seconds)
    again = invoke(event_of(handed_out_again_as, raised))
    # THEN it is known as a redelivery: no channel gets the alert a second time
    assert again["results"][0]["status"] == "redelivered"
    sent = (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack")))
    assert (*sent, len(email_inbox.receive())) == (1, 1, 0)


def sns_envelope(alert: dict[str, Any]) -> str:
    """A queue body holding an SNS message, as a topic's SQS subscription delivers it."""
    envelope = {"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(alert)}
    return json.dumps(envelope)


def queue_event(message_id: str, body: str) -> dict[str, Any]:
    return {"Records": [{"messageId": message_id, "eventSource": "aws:sqs", "body": body}]}


@pytest.mark.parametrize(
    ("body_of", "refused_record_writes"),
    [
        (json.dumps, 0),
        (sns_envelope, 0),
        # Every write of the message's record on its first receive refused: the second writes it.
        (json.dumps, 1),
    ],
    ids=["alert-body", "sns-envelope", "record-refused-once"],
)
def test_a_late_redrive_reaches_only_the_channels_that_did_not_take_the_message(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    *,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    body_of: Any,
    refused_record_writes: int,
) -> None:
    # GIVEN the router as the program deploys it (a warning goes to Slack and e-mail), and the
    # e-mail topic failing every publish
    monkeypatch.setenv("ROUTER_REDELIVERY_SECONDS", str(redelivery_seconds(TIMEOUT_SECONDS)))
    invoke(sqs_event("warm-up", alert("info", "warm-up")))
    email_inbox.receive()
    services = app.FUNCTION.services()
    email_outage = fail_every_attempt(services.sns_client(REGION), "sns", "Publish")
    # AND, in one case, the state table refusing (HTTP 500 on every attempt) each write of the
    # record of the channels that took the message, on its first receive
    record_refusal = fail_every_attempt(
        services.hub_client("dynamodb"),
        "dynamodb",
        "PutItem",
        body_with=(b"STATE#notification_router/message/",),
        server_error="injected refusal",
    )
    record_refusal.healed = refused_record_writes == 0
    body = body_of(alert("warning", "node group degraded"))

    # WHEN the queue hands the message out twice (Slack takes it, e-mail fails), and its
    # receives spent, SQS moves it to the dead-letter queue
    first = invoke(queue_event("m-1", body))
    record_refusal.healed = True
    fake_clock.advance(QUEUE_VISIBILITY_SECONDS)
    second = invoke(queue_event("m-1", body))
    # AND people redrive it three days later, past every dedup and redelivery window, once the
    # e-mail topic works again (SQS gives a redriven message a new messageId)
    email_outage.healed = True
    fake_clock.advance(3 * 24 * 3600)
    redriven = invoke(queue_event("m-9", body))

    # THEN the redrive is sent to e-mail only: Slack, which took it on the first receive, is
    # not sent it again
    assert [result["results"][0]["status"] for result in (first, second)] == ["failed"] * 2
    assert redriven["results"][0]["status"] == "sent", redriven
    channels = {c["channel"]: c["status"] for c in redriven["results"][0]["channels"]}
    assert channels == {"slack": "already_sent", "email": "sent"}
    assert (len(receiver.bodies("/slack")), len(email_inbox.receive())) == (1, 1)
    # AND the refused writes were tried (the record was written by the second receive)
    assert (record_refusal.attempts > 0) == (refused_record_writes > 0)


def test_an_alert_topics_event_failed_past_lambdas_retries_reaches_only_the_channels_owed(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fleet_environment: dict[str, str],
    *,
    fake_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the router as the program deploys it (a warning goes to Slack and e-mail), and the
    # e-mail topic failing every publish
    monkeypatch.setenv("ROUTER_REDELIVERY_SECONDS", str(redelivery_seconds(TIMEOUT_SECONDS)))
    invoke(sqs_event("warm-up", alert("info", "warm-up")))
    email_inbox.receive()
    email_outage = fail_every_attempt(app.FUNCTION.services().sns_client(REGION), "sns", "Publish")
    event = sns_event("n-1", alert("warning", "node group degraded"))

    # WHEN the alert topic invokes the router (Slack takes the alert, e-mail fails) and Lambda
    # retries the event twice, each failing on e-mail
    for wait in (0, PLATFORM_RETRY_SECONDS, 2 * PLATFORM_RETRY_SECONDS):
        fake_clock.advance(wait)
        with pytest.raises(UndeliveredAlertError):
            invoke(event)
    # AND Lambda sends the event's failure record to the router's queue, its on-failure
    # destination, which hands it to the router past the 900 s dedup window (the queue backed
    # up in the outage), e-mail still down
    record = failure_record(event)
    fake_clock.advance(20 * 60)
    from_the_queue = invoke(queue_event("m-1", record))
    # AND, its receives spent, people redrive it from the queue's dead-letter queue three days
    # later, once the e-mail topic works again (under a new messageId)
    email_outage.healed = True
    fake_clock.advance(3 * 24 * 3600)
    redriven = invoke(queue_event("m-9", record))
    # AND redrive it once more
    again = invoke(queue_event("m-10", record))

    # THEN the record's alert is routed from the queue as the topic's message: Slack, which took
    # it on the first invocation, is not sent it again
    assert from_the_queue["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    (first,) = from_the_queue["results"]
    assert (first["status"], first["sns_message_id"]) == ("failed", "n-1")
    assert {c["channel"]: c["status"] for c in first["channels"]}["slack"] == "already_sent"
    # AND the redrive reaches e-mail only, and a second redrive no channel
    (delivered,) = redriven["results"]
    channels = {c["channel"]: c["status"] for c in delivered["channels"]}
    assert channels == {"slack": "already_sent", "email": "sent"}
    assert again["results"][0]["status"] == "redelivered"
    assert (len(receiver.bodies("/slack")), len(email_inbox.receive())) == (1, 1)


FORGED_TOPIC = "arn:aws:sns:ap-south-1:123456789012:lookalike\n<!channel> " + "x" * 300


@pytest.mark.parametrize(
    ("body", "field", "shown"),
    [
        (
            failure_record(
                sns_event("n-1", alert("critical", "forged")),
                function_arn=OWN_FUNCTION_ARN.replace("lambda-fleet-test", "lambda-fleet-other"),
            ),
            "Records[0].body.requestContext.functionArn",
            "names 'lambda-fleet-other', not this function (lambda-fleet-test)",
        ),
        (
            failure_record(
                {
                    "Records": [
                        {
                            "EventSource": "aws:sns",
                            "Sns": {
                                "MessageId": "n-1",
                                "TopicArn": FORGED_TOPIC,
                                "Message": json.dumps(alert("critical", "forged")),
                            },
                        }
                    ]
                }
            ),
            "Records[0].body.requestPayload.Records[0].Sns.TopicArn",
            "lookalike\\n<!channel>",
        ),
        (
            failure_record(sns_event("n-1", alert("critical", "forged")), condition="Success"),
            "Records[0].body.requestContext.condition",
            "'Success'",
        ),
    ],
    ids=["another-function", "forged-topic", "not-a-failure"],
)
def test_a_failure_record_not_of_the_routers_own_failed_alert_topic_event_is_refused(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fleet_environment: dict[str, str],
    *,
    body: str,
    field: str,
    shown: str,
) -> None:
    # GIVEN a queue message shaped as a Lambda failure record that is not the router's own, or
    # holds a message of a topic that is no alert topic, or records no failure
    # WHEN the queue hands it to the router
    result = invoke(queue_event("m-1", body))
    # THEN it is refused, naming the field and a short, escaped start of the value: one line
    (refused,) = result["results"]
    assert refused["status"] == "error"
    assert refused["error"].startswith(f"invalid event: {field}: "), refused["error"]
    assert shown in refused["error"]
    assert "\n" not in refused["error"] and len(refused["error"]) < 200
    # AND it goes back to the queue (and, its receives spent, to its dead-letter queue)
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    # AND no channel got anything
    assert receiver.requests == {} and email_inbox.receive() == []
