"""A channel's secret that Secrets Manager answers, but whose content gives no usable webhook URL
or routing key, against one whose read fails: the first is what every read gets again, so it is
tried once per delivery and read afresh by the message's retry (the operator fixes it); the
second may pass, so it is tried again in rounds. Faults in the read are injected in botocore's
send step of the router's own Secrets Manager client; Slack and PagerDuty are the local peer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from fleet_shared.alerts import Alert
from handlers.notification_router import app
from handlers.notification_router.exceptions import UndeliveredAlertError
from tests.handlers.conftest import START_TIME
from tests.handlers.deadlines import PLATFORM_RETRY_SECONDS
from tests.handlers.faults import answer_malformed, fail_every_attempt, throttle_attempts
from tests.handlers.notification_router.conftest import (
    PAGERDUTY_SECRET,
    REGION,
    SLACK_SECRET,
    EmailInbox,
    Receiver,
)
from tests.handlers.notification_router.test_secrets_stay_out_of_errors import (
    everything_the_invocation_left,
)

TOKEN = "xQ7hooksecretTOKEN42zz"
"""A distinctive part of each unusable secret's value: no error may show it."""
WEBHOOK_PATH = f"/services/T0AAA1111/B0BBB2222/{TOKEN}"


@dataclass
class SecretReads:
    """The secret of each GetSecretValue request the router's Secrets Manager client sends."""

    secret_ids: list[str] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> None:
        self.secret_ids.append(json.loads(request.body)["SecretId"])

    def of(self, secret_id: str) -> int:
        return self.secret_ids.count(secret_id)


def alert(severity: str, title: str) -> dict[str, Any]:
    created = Alert.create(
        severity=severity,
        source="health_monitor",
        title=title,
        detail="1 of 4 desired instances ready (25%)",
        resource="222222222222/ap-south-1/dev-apps/capacity/system",
        account_id="222222222222",
        region=REGION,
        timestamp=START_TIME,
    )
    return json.loads(created.model_dump_json())


def queue_event(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m-{number}", "eventSource": "aws:sqs", "body": json.dumps(body)}
            for number, body in enumerate(alerts, start=1)
        ]
    }


def topic_event(message_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"MessageId": message_id, "Message": json.dumps(body)},
            }
        ]
    }


def store_secret(secret_id: str, content: str | bytes) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    if isinstance(content, bytes):
        secrets.put_secret_value(SecretId=secret_id, SecretBinary=content)
    else:
        secrets.put_secret_value(SecretId=secret_id, SecretString=content)


def warm_container(invoke: Any, email_inbox: EmailInbox) -> Any:
    """The router's services after an info alert (e-mail only: no secret read yet). Called in
    the test itself: its container is keyed by the environment, which pytest changes between a
    fixture's setup and the test (PYTEST_CURRENT_TEST)."""
    invoke(queue_event(alert("info", "warm-up")))
    email_inbox.receive()
    return app.FUNCTION.services()


def count_secret_reads(services: Any) -> SecretReads:
    reads = SecretReads()
    client = services.secrets_client(REGION)
    client.meta.events.register("before-send.secrets-manager.GetSecretValue", reads)
    return reads


def channels_of(result: dict[str, Any], message: int = 0) -> dict[str, dict[str, Any]]:
    return {c["channel"]: c for c in result["results"][message]["channels"]}


UNUSABLE_SECRETS = [
    pytest.param(
        "slack", SLACK_SECRET, '{"url": 5}', 'has "url" as a JSON number, not a string', id="url 5"
    ),
    pytest.param(
        "slack",
        SLACK_SECRET,
        json.dumps({"url": None, "note": TOKEN}),
        'has "url" as a JSON null, not a string',
        id="url null",
    ),
    pytest.param(
        "slack",
        SLACK_SECRET,
        '{"url": ' + "7" * 5_000 + "}",
        'has "url" as a JSON number, not a string',
        id="url a number past Python's digit limit",
    ),
    pytest.param(
        "slack",
        SLACK_SECRET,
        json.dumps({"url": [f"https://hooks.slack.com{WEBHOOK_PATH}"]}),
        'has "url" as a JSON array, not a string',
        id="url in an array",
    ),
    pytest.param(
        "slack",
        SLACK_SECRET,
        '{"url": "https://hooks.slack.com' + WEBHOOK_PATH + '"',
        "is not valid JSON",
        id="JSON without its end",
    ),
    pytest.param(
        "slack",
        SLACK_SECRET,
        json.dumps({"webhook": f"https://hooks.slack.com{WEBHOOK_PATH}"}),
        "has none of the keys url, webhook_url",
        id="another key",
    ),
    pytest.param("slack", SLACK_SECRET, " \n", "is empty", id="blank"),
    pytest.param(
        "slack",
        SLACK_SECRET,
        f"https://hooks.slack.com{WEBHOOK_PATH}".encode(),
        "is binary (SecretBinary), not the text of a SecretString",
        id="binary",
    ),
    pytest.param(
        "slack",
        SLACK_SECRET,
        '{"url":' + "[" * 30_000 + "]" * 30_000 + "}",
        "is JSON nested deeper than the parser reads",
        id="nested past the parser's depth",
    ),
    pytest.param(
        "pagerduty",
        PAGERDUTY_SECRET,
        json.dumps({"routing_key": 5, "note": TOKEN}),
        'has "routing_key" as a JSON number, not a string',
        id="routing_key 5",
    ),
    pytest.param(
        "pagerduty",
        PAGERDUTY_SECRET,
        json.dumps({"integration_key": True}),
        'has "integration_key" as a JSON boolean, not a string',
        id="integration_key true",
    ),
    pytest.param(
        "pagerduty",
        PAGERDUTY_SECRET,
        json.dumps({"routing_key": " ", "note": TOKEN}),
        'has an empty "routing_key"',
        id="routing_key blank",
    ),
    pytest.param(
        "pagerduty",
        PAGERDUTY_SECRET,
        json.dumps({"key": TOKEN}),
        "has none of the keys routing_key, integration_key",
        id="another key",
    ),
]


@pytest.mark.parametrize(("channel", "secret_id", "content", "problem"), UNUSABLE_SECRETS)
def test_a_secret_whose_content_gives_no_usable_value_fails_its_channel_on_the_first_try(
    invoke: Any,
    receiver: Receiver,
    email_inbox: EmailInbox,
    sleeps: list[float],
    *,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    channel: str,
    secret_id: str,
    content: str | bytes,
    problem: str,
) -> None:
    # GIVEN the channel's secret, which Secrets Manager answers, holding no usable value
    secret_reads = count_secret_reads(warm_container(invoke, email_inbox))
    store_secret(secret_id, content)
    caplog.set_level(logging.INFO)
    # WHEN a critical alert (PagerDuty, Slack, e-mail) is routed from the queue
    result = invoke(queue_event(alert("critical", "node group unready")))
    # THEN the channel failed on its first attempt, the secret read once and nothing posted to
    # it, its error naming the secret and the field; nothing of the value is in the result, the
    # logs, the e-mail or the state table
    channels = channels_of(result)
    assert (channels[channel]["status"], channels[channel]["attempts"]) == ("failed", 1)
    assert channels[channel]["error"] == f"secret {secret_id} {problem}"
    assert TOKEN not in everything_the_invocation_left(result, caplog, capfd, email_inbox)
    assert (secret_reads.of(secret_id), receiver.bodies(f"/{channel}")) == (1, [])
    # AND no backoff was waited; the other channels took the alert; the message goes back to the
    # queue for the failed one
    assert sleeps == []
    others = {name: c["status"] for name, c in channels.items() if name != channel}
    assert set(others.values()) == {"sent"}
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]


def test_an_unusable_secret_is_read_once_for_each_alert_of_a_batch(
    invoke: Any, receiver: Receiver, email_inbox: EmailInbox
) -> None:
    # GIVEN a Slack secret whose url is a number
    secret_reads = count_secret_reads(warm_container(invoke, email_inbox))
    store_secret(SLACK_SECRET, '{"url": 5}')
    # WHEN two warnings (Slack, e-mail) come in one batch
    result = invoke(queue_event(alert("warning", "first"), alert("warning", "second")))
    # THEN Slack failed once for each, and the secret was read once for each: a fix made while
    # the batch runs reaches the alerts after it
    slack = [channels_of(result, message)["slack"] for message in (0, 1)]
    assert [(c["status"], c["attempts"]) for c in slack] == [("failed", 1), ("failed", 1)]
    assert (secret_reads.of(SLACK_SECRET), receiver.bodies("/slack")) == (2, [])


def test_the_retry_after_the_secret_is_fixed_delivers_the_alert_once(
    invoke: Any, receiver: Receiver, email_inbox: EmailInbox, fake_clock: Any
) -> None:
    # GIVEN a Slack secret whose url is a number, and the router's container warm (its secrets
    # are cached for ROUTER_SECRET_TTL_SECONDS, 300 s)
    warm_container(invoke, email_inbox)
    store_secret(SLACK_SECRET, '{"url": 5}')
    event = topic_event("n-1", alert("critical", "node group unready"))
    # WHEN the alert topic invokes the router: Slack fails, so the invocation fails
    with pytest.raises(UndeliveredAlertError):
        invoke(event)
    # AND the operator fixes the secret before Lambda's retry, a minute later, in that container
    store_secret(SLACK_SECRET, json.dumps({"url": receiver.url("/slack")}))
    fake_clock.advance(PLATFORM_RETRY_SECONDS)
    again = invoke(event)
    # THEN the retry read the fixed secret and sent Slack the alert, the others already had it
    statuses = {name: c["status"] for name, c in channels_of(again).items()}
    assert statuses == {"pagerduty": "already_sent", "slack": "sent", "email": "already_sent"}
    # AND a later redelivery of the message is known as one: each channel got the alert once
    assert invoke(event)["results"][0]["status"] == "redelivered"
    sent = (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack")))
    assert (*sent, len(email_inbox.receive())) == (1, 1, 1)


def test_a_throttled_secret_read_is_tried_again_within_the_invocation(
    invoke: Any,
    receiver: Receiver,
    email_inbox: EmailInbox,
    sleeps: list[float],
) -> None:
    # GIVEN Secrets Manager throttling the first read of the Slack secret
    services = warm_container(invoke, email_inbox)
    secret_reads = count_secret_reads(services)
    throttle_attempts(services.secrets_client(REGION), "secrets-manager", 1)
    # WHEN a warning (Slack, e-mail) is routed from the queue
    result = invoke(queue_event(alert("warning", "node group unready")))
    # THEN Slack's first attempt failed reading the secret, and after the backoff its second
    # read the secret again and posted the alert once
    slack = channels_of(result)["slack"]
    assert (slack["status"], slack["attempts"]) == ("sent", 2)
    assert (secret_reads.of(SLACK_SECRET), len(receiver.bodies("/slack")), sleeps) == (2, 1, [0.5])
    assert result["batchItemFailures"] == []


def test_a_secret_read_that_never_connects_is_tried_in_every_round(
    invoke: Any, receiver: Receiver, email_inbox: EmailInbox, sleeps: list[float]
) -> None:
    # GIVEN Secrets Manager unreachable for every read
    services = warm_container(invoke, email_inbox)
    fault = fail_every_attempt(services.secrets_client(REGION), "secrets-manager", "GetSecretValue")
    # WHEN a warning (Slack, e-mail) is routed from the queue
    result = invoke(queue_event(alert("warning", "node group unready")))
    # THEN Slack was tried in each of the 3 rounds, reading the secret each time, and failed
    # naming the secret it could not read; the message goes back to the queue
    slack = channels_of(result)["slack"]
    assert (slack["status"], slack["attempts"]) == ("failed", 3)
    assert slack["error"].startswith(f"cannot read secret {SLACK_SECRET}: ")
    assert (fault.attempts, sleeps) == (3, [0.5, 1.0])
    assert receiver.bodies("/slack") == []
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(
            {"SecretString": 12345}, "SecretString as a JSON number, not text", id="a number"
        ),
        pytest.param(
            {"SecretString": {"routing_key": TOKEN}},
            "SecretString as a JSON object, not text",
            id="an object",
        ),
        pytest.param({}, "without a SecretString or a SecretBinary", id="neither field"),
    ],
)
def test_a_secret_answer_holding_no_text_is_a_failed_read_not_a_routing_key(
    invoke: Any,
    receiver: Receiver,
    email_inbox: EmailInbox,
    *,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    answer: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN Secrets Manager's answers to the read of the PagerDuty secret holding a SecretString
    # that is no text, or neither SecretString nor SecretBinary (HTTP 200, JSON: botocore hands
    # the values on unchecked)
    services = warm_container(invoke, email_inbox)
    reads = answer_malformed(
        services.secrets_client(REGION),
        "secretsmanager",
        "GetSecretValue",
        json.dumps({"Name": PAGERDUTY_SECRET, **answer}).encode(),
        body_with=PAGERDUTY_SECRET.encode(),
        content_type="application/x-amz-json-1.1",
    )
    caplog.set_level(logging.INFO)
    # WHEN a critical alert (PagerDuty, Slack, e-mail) is routed from the queue
    result = invoke(queue_event(alert("critical", "node group unready")))
    # THEN nothing was posted to PagerDuty (no `12345` or Python repr as the routing key): each
    # of its attempts was a failed read, naming the secret, the field and its JSON type, and
    # read the secret again (nothing cached); none of the value shows anywhere
    pagerduty = channels_of(result)["pagerduty"]
    assert (pagerduty["status"], pagerduty["attempts"], reads.answered) == ("failed", 3, 3)
    assert pagerduty["error"] == (
        f"cannot read secret {PAGERDUTY_SECRET}: GetSecretValue answered {problem}"
    )
    assert receiver.bodies("/pagerduty") == []
    assert TOKEN not in everything_the_invocation_left(result, caplog, capfd, email_inbox)
    # AND the other channels took the alert; the message goes back to the queue for PagerDuty
    assert (channels_of(result)["slack"]["status"], result["batchItemFailures"]) == (
        "sent",
        [{"itemIdentifier": "m-1"}],
    )
