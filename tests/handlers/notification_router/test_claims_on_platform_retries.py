"""notification_router fed by its alert topics (SNS invokes it asynchronously): what Lambda's own
retry, a minute after an invocation that failed or that Lambda ended, finds of the dedup claims
that invocation left behind, in simulated time (`LambdaTime`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from fleet_shared.clock import ManualClock
from handlers.notification_router import app
from handlers.notification_router.exceptions import UndeliveredAlertError
from tests.handlers.deadlines import PLATFORM_RETRY_SECONDS, LambdaTime
from tests.handlers.notification_router.test_state_table_after_a_send import (
    REGION,
    TIMEOUT_SECONDS,
    Invoke,
    SimulatedInvocations,
    alert,
    leave_recording_unanswered,
    longest_retry_waits,
    sqs_event,
)


def sns_event(message_id: str, alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"MessageId": message_id, "Message": json.dumps(alert)},
            }
        ]
    }


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
