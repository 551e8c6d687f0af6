"""notification_router against a real HTTP receiver on 127.0.0.1 (Slack, PagerDuty), moto's
Secrets Manager, SNS and the state table."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from catalog import function_spec
from fleet_shared.alerts import Alert
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from handlers.notification_router import app, channels
from handlers.notification_router.channel_names import CHANNEL_NAMES
from handlers.notification_router.channel_text import slack_escape, slack_text
from handlers.notification_router.channels import CHANNELS, post_json
from handlers.notification_router.delivery_policy import RECORDING_SECONDS
from handlers.notification_router.environment import MIN_DEDUP_WINDOW_SECONDS, RouterEnvironment
from handlers.notification_router.exceptions import ChannelError, UndeliveredAlertError
from handlers.notification_router.rate_limits import parse_retry_after
from handlers.notification_router.services import RouterServices
from tests.handlers.conftest import START_TIME
from tests.handlers.deadlines import PLATFORM_RETRY_SECONDS
from tests.handlers.faults import answer_malformed, fail_every_attempt
from tests.handlers.local_peers import LocalPeer, PeerReply, PeerRequest, http_answer

REGION = "ap-south-1"
MEMBER = "222222222222"
ROUTING_KEY = "R0UT1NGKEYFORTESTS0000000000000"

Invoke = Callable[..., dict[str, Any]]


def fleet_alert(severity: str = "critical", **changes: Any) -> dict[str, Any]:
    fields = {
        "severity": severity,
        "source": "health_monitor",
        "title": "dev-apps: capacity check failed for system",
        "detail": "1 of 4 desired instances ready (25%)",
        "resource": f"{MEMBER}/{REGION}/dev-apps/capacity/system",
        "account_id": MEMBER,
        "region": REGION,
        # The router's clock: a notice stamped ahead of it is refused.
        "timestamp": START_TIME,
        **changes,
    }
    return json.loads(Alert.create(**fields).model_dump_json())


def sns_event(*messages: Any) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"sns-{index}",
                    "TopicArn": f"arn:aws:sns:{REGION}:123456789012:fleet-alerts-critical",
                    "Message": message if isinstance(message, str) else json.dumps(message),
                },
            }
            for index, message in enumerate(messages)
        ]
    }


_publishes = itertools.count(1)


def published_again(*messages: Any) -> dict[str, Any]:
    """`sns_event` of messages published again (a function's retry, its next run): SNS gives
    each publish a MessageId of its own, where a redelivery of one message keeps it."""
    event = sns_event(*messages)
    publish = next(_publishes)
    for record in event["Records"]:
        record["Sns"]["MessageId"] = f"publish-{publish}-{record['Sns']['MessageId']}"
    return event


def sqs_event(*bodies: tuple[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "eventSource": "aws:sqs",
                "body": body if isinstance(body, str) else json.dumps(body),
            }
            for message_id, body in bodies
        ]
    }


def alarm_notification(name: str, state: str, **changes: Any) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmDescription": "API 5xx",
        "AWSAccountId": MEMBER,
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed: 1 datapoint [12.0] was greater than 5.0",
        "StateChangeTime": "2025-06-02T03:30:00.000+0000",
        "Region": "Asia Pacific (Mumbai)",
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": "5XXError",
            "Namespace": "AWS/ApiGateway",
            "Dimensions": [{"value": "payments", "name": "ApiName"}],
        },
        **changes,
    }


def statuses(result: dict[str, Any]) -> list[str]:
    return [item["status"] for item in result["results"]]


def channels_of(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {channel["channel"]: channel for channel in item["channels"]}


def test_critical_alert_reaches_pagerduty_slack_and_email(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical fleet alert on the SNS topic
    alert = fleet_alert("critical")
    # WHEN routed
    result = invoke(sns_event(alert))
    # THEN it was sent on all three channels
    assert statuses(result) == ["sent"]
    assert {name: c["status"] for name, c in channels_of(result["results"][0]).items()} == {
        "pagerduty": "sent",
        "slack": "sent",
        "email": "sent",
    }
    # AND PagerDuty got an Events v2 trigger keyed by the alert id with the routing key
    [pagerduty] = receiver.bodies("/pagerduty")
    assert pagerduty["routing_key"] == ROUTING_KEY
    assert pagerduty["event_action"] == "trigger"
    assert pagerduty["dedup_key"] == alert["id"]
    assert pagerduty["payload"]["severity"] == "critical"
    assert pagerduty["payload"]["source"] == alert["resource"]
    assert pagerduty["payload"]["component"] == "health_monitor"
    assert pagerduty["payload"]["timestamp"].endswith("Z")
    assert pagerduty["payload"]["custom_details"]["account_id"] == MEMBER
    # AND Slack got a message naming the severity, the resource, the account and a console link
    [slack] = receiver.bodies("/slack")
    assert "[CRITICAL]" in slack["text"]
    assert alert["resource"] in slack["text"]
    assert MEMBER in slack["text"]
    assert "console.aws.amazon.com" in json.dumps(slack["blocks"])
    # AND the e-mail topic got the alert's subject and a readable body
    [email] = email_inbox.receive()
    assert email["Subject"] == "[CRITICAL] dev-apps: capacity check failed for system"
    assert "1 of 4 desired instances ready" in email["Message"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("warning", {"slack", "email"}), ("info", {"email"})],
)
def test_routes_depend_on_severity(
    invoke: Invoke, receiver: Any, severity: str, expected: set[str]
) -> None:
    # GIVEN a warning or info alert WHEN routed THEN only its route's channels are used
    result = invoke(sns_event(fleet_alert(severity)))
    assert set(channels_of(result["results"][0])) == expected
    assert bool(receiver.bodies("/pagerduty")) is False
    assert bool(receiver.bodies("/slack")) == ("slack" in expected)


def test_routes_come_from_the_environment(
    invoke: Invoke, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN warnings routed to PagerDuty only WHEN a warning is routed THEN only PagerDuty gets it
    monkeypatch.setenv("ROUTER_ROUTES", "critical=pagerduty,warning=pagerduty,info=email")
    result = invoke(sns_event(fleet_alert("warning")))
    assert set(channels_of(result["results"][0])) == {"pagerduty"}
    assert receiver.bodies("/pagerduty")[0]["payload"]["severity"] == "warning"


def test_duplicates_are_sent_once_per_window_and_counted(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a critical alert sent once
    alert = fleet_alert("critical")
    assert statuses(invoke(sns_event(alert))) == ["sent"]
    # WHEN the same id comes again, and the same source+resource+title under another id
    again = invoke(published_again(alert))
    other_id = invoke(published_again({**alert, "id": "a-different-id"}))
    # THEN both are suppressed; PagerDuty and Slack were called once
    assert statuses(again) == ["duplicate"]
    assert statuses(other_id) == ["duplicate"]
    assert other_id["results"][0]["suppressed_duplicates"] == 2
    assert len(receiver.bodies("/pagerduty")) == 1
    assert len(receiver.bodies("/slack")) == 1
    # WHEN the window (900 s) has passed THEN it is sent again, carrying the suppressed count
    fake_clock.advance(901)
    later = invoke(published_again(alert))
    assert statuses(later) == ["sent"]
    assert later["results"][0]["suppressed_duplicates"] == 2
    assert (
        receiver.bodies("/pagerduty")[-1]["payload"]["custom_details"]["suppressed_duplicates"] == 2
    )


def test_as_deployed_the_same_alert_is_sent_once_per_fifteen_minutes(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN the router's environment as the program deploys it: the catalog leaves
    # ROUTER_DEDUP_WINDOW_SECONDS to its default (README, Alerts: "once per 15 minutes")
    assert "ROUTER_DEDUP_WINDOW_SECONDS" not in function_spec("notification_router").environment
    # AND a critical alert sent once
    alert = fleet_alert("critical")
    assert statuses(invoke(sns_event(alert))) == ["sent"]
    # WHEN it comes again a second before 15 minutes have passed THEN it is a duplicate
    fake_clock.advance(15 * 60 - 1)
    assert statuses(invoke(published_again(alert))) == ["duplicate"]
    # WHEN it comes again once 15 minutes have passed THEN it is sent again, to each channel
    fake_clock.advance(2)
    assert statuses(invoke(published_again(alert))) == ["sent"]
    assert len(receiver.bodies("/pagerduty")) == len(receiver.bodies("/slack")) == 2


def test_escalation_of_the_same_alert_is_not_a_duplicate(invoke: Invoke, receiver: Any) -> None:
    # GIVEN a warning sent WHEN the same alert arrives as critical THEN it is sent (and paged)
    invoke(sns_event(fleet_alert("warning")))
    assert statuses(invoke(sns_event(fleet_alert("critical")))) == ["sent"]
    assert len(receiver.bodies("/pagerduty")) == 1


def test_failing_channel_is_retried_with_backoff_and_others_still_deliver(
    invoke: Invoke, receiver: Any, email_inbox: Any, sleeps: list[float]
) -> None:
    # GIVEN Slack answering 500 twice, then 200
    receiver.fail("/slack", 500, times=2)
    # WHEN a critical alert is routed
    result = invoke(sns_event(fleet_alert("critical")))
    # THEN Slack succeeded on the 3rd attempt after backoffs of 0.5 s and 1 s
    channels = channels_of(result["results"][0])
    assert (channels["slack"]["status"], channels["slack"]["attempts"]) == ("sent", 3)
    assert sleeps == [0.5, 1.0]
    assert len(receiver.bodies("/slack")) == 3
    assert channels["pagerduty"]["status"] == "sent"


def test_pagerduty_failing_while_slack_works_is_paged_on_redelivery_and_slack_not_repeated(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN PagerDuty answering 500 to every attempt while Slack and e-mail work
    receiver.fail("/pagerduty", 500, times=3)
    alert = fleet_alert("critical")
    # WHEN a critical alert arrives through SQS
    result = invoke(sqs_event(("m-1", alert)))
    # THEN PagerDuty is reported failed after 3 attempts, Slack and e-mail took it, and the
    # message goes back to the queue: it is not `sent` while nobody is paged
    [item] = result["results"]
    channels = channels_of(item)
    assert (channels["pagerduty"]["status"], channels["pagerduty"]["attempts"]) == ("failed", 3)
    assert "HTTP 500" in channels["pagerduty"]["error"]
    assert (channels["slack"]["status"], channels["email"]["status"]) == ("sent", "sent")
    assert item["status"] == "failed"
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    # WHEN SQS redelivers it and PagerDuty is back
    retry = invoke(sqs_event(("m-1", alert)))
    # THEN PagerDuty is paged once, Slack and e-mail are not sent again, and it is done
    channels = channels_of(retry["results"][0])
    assert {name: c["status"] for name, c in channels.items()} == {
        "pagerduty": "sent",
        "slack": "already_sent",
        "email": "already_sent",
    }
    assert retry["batchItemFailures"] == []
    assert statuses(retry) == ["sent"]
    triggers = [body for body in receiver.bodies("/pagerduty") if body["dedup_key"] == alert["id"]]
    assert len(triggers) == 4  # 3 answered 500, the 4th was taken
    assert len(receiver.bodies("/slack")) == 1
    assert len(email_inbox.receive()) == 1
    # AND a redelivery of the message delivered is known as one: nothing is sent anywhere
    assert statuses(invoke(sqs_event(("m-1", alert)))) == ["redelivered"]
    assert (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack"))) == (4, 1)
    assert email_inbox.receive() == []


def test_slack_failing_on_the_warning_route_is_retried_from_sns_without_repeating_email(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN Slack answering 500 to every attempt
    receiver.fail("/slack", 500, times=3)
    alert = fleet_alert("warning")
    # WHEN a warning arrives from SNS THEN the invocation fails so Lambda retries it
    with pytest.raises(UndeliveredAlertError):
        invoke(sns_event(alert))
    assert len(email_inbox.receive()) == 1
    # WHEN Lambda retries with Slack back THEN Slack gets it once and e-mail is not repeated
    assert statuses(invoke(sns_event(alert))) == ["sent"]
    assert len(receiver.bodies("/slack")) == 4
    assert email_inbox.receive() == []


def test_sqs_message_failing_on_every_channel_is_retried_alone_and_then_sent(
    invoke: Invoke, receiver: Any, email_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN warnings routed to Slack only, Slack down, and a batch of a warning and an info
    monkeypatch.setenv("ROUTER_ROUTES", "critical=pagerduty,warning=slack,info=email")
    receiver.fail("/slack", 500, times=3)
    warning = fleet_alert("warning")
    batch = sqs_event(("m-warning", warning), ("m-info", fleet_alert("info", title="FYI")))
    # WHEN the batch is routed
    result = invoke(batch)
    # THEN only the warning is a batch item failure; the info went out
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-warning"}]
    assert statuses(result) == ["failed", "sent"]
    assert len(email_inbox.receive()) == 1
    # WHEN SQS redelivers the warning and Slack is back THEN it is sent, not taken as a duplicate
    retry = invoke(sqs_event(("m-warning", warning)))
    assert retry["batchItemFailures"] == []
    assert statuses(retry) == ["sent"]
    assert len(receiver.bodies("/slack")) == 4


def test_sns_message_failing_on_every_channel_raises_for_the_dlq(
    invoke: Invoke, receiver: Any, email_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every channel of a critical alert failing (PagerDuty, Slack down; no e-mail topic)
    monkeypatch.setenv("EMAIL_TOPIC_ARN", f"arn:aws:sns:{REGION}:123456789012:gone")
    receiver.fail("/pagerduty", 503, times=3)
    receiver.fail("/slack", 500, times=3)
    alert = fleet_alert("critical")
    # WHEN routed from SNS THEN the invocation fails, so Lambda retries it and then uses the DLQ
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(sns_event(alert))
    assert raised.value.message_ids == ["sns-0"]
    # WHEN Lambda retries and the channels are back THEN the alert is sent, once per channel
    monkeypatch.setenv("EMAIL_TOPIC_ARN", email_inbox.topic_arn)
    assert statuses(invoke(sns_event(alert))) == ["sent"]
    assert len(email_inbox.receive()) == 1
    assert receiver.statuses == {"/pagerduty": [], "/slack": []}
    assert (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack"))) == (4, 4)


@pytest.mark.usefixtures("no_retry_waits")
def test_an_sns_message_whose_routing_fails_is_retried_and_the_rest_of_its_batch_sent_once(
    invoke: Invoke, receiver: Any, email_inbox: Any, fake_clock: Any
) -> None:
    # GIVEN a warm router, and an SNS batch of two critical alerts whose first one's newest
    # notice the state table cannot read (every attempt fails to connect)
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    email_inbox.receive()
    first = fleet_alert("critical")
    second = fleet_alert("critical", title="payments down")
    table = app.FUNCTION.services().hub_client("dynamodb")
    fault = fail_every_attempt(table, "dynamodb", "GetItem", body_with=(first["id"].encode(),))
    event = sns_event(first, second)
    # WHEN the alert topic invokes the router
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(event)
    # THEN the invocation fails for the first alert alone, so Lambda retries the event, and only
    # after the second was delivered
    assert raised.value.message_ids == ["sns-0"]
    assert fault.attempts > 0
    assert [page["dedup_key"] for page in receiver.bodies("/pagerduty")] == [second["id"]]
    # WHEN Lambda retries the event a minute later, the table answering
    fault.healed = True
    fake_clock.advance(PLATFORM_RETRY_SECONDS)
    result = invoke(event)
    # THEN the first alert is sent, and the second is known as redelivered: each channel got
    # each once
    assert statuses(result) == ["sent", "redelivered"]
    pages = [page["dedup_key"] for page in receiver.bodies("/pagerduty")]
    assert pages == [second["id"], first["id"]]
    assert (len(receiver.bodies("/slack")), len(email_inbox.receive())) == (2, 2)


def test_native_cloudwatch_alarm_is_mapped_and_resolved_in_pagerduty(
    invoke: Invoke, receiver: Any, email_inbox: Any, fake_clock: Any
) -> None:
    # GIVEN a CloudWatch alarm whose name matches *-Errors, with only the long region name
    alarm = alarm_notification("payments-api-Errors", "ALARM")
    # WHEN its ALARM notification is routed
    result = invoke(sns_event(alarm))
    # THEN it is a critical alert of the member account in ap-south-1, paged with a stable key
    [item] = result["results"]
    assert (item["status"], item["severity"]) == ("sent", "critical")
    [trigger] = receiver.bodies("/pagerduty")
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["custom_details"]["region"] == "ap-south-1"
    assert trigger["payload"]["custom_details"]["account_id"] == MEMBER
    assert trigger["payload"]["source"] == (
        f"arn:aws:cloudwatch:ap-south-1:{MEMBER}:alarm:payments-api-Errors"
    )
    assert "AWS/ApiGateway/5XXError" in trigger["payload"]["custom_details"]["detail"]
    assert trigger["payload"]["timestamp"] == "2025-06-02T03:30:00Z"
    # WHEN it returns to OK ten minutes later THEN PagerDuty gets a resolve with the same key
    fake_clock.advance(600)
    resolved = invoke(
        sns_event(
            alarm_notification(
                "payments-api-Errors", "OK", StateChangeTime="2025-06-02T03:40:00.000+0000"
            )
        )
    )
    assert resolved["results"][0]["kind"] == "resolved"
    assert resolved["results"][0]["severity"] == "info"
    resolve = receiver.bodies("/pagerduty")[-1]
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert "[RESOLVED]" in receiver.bodies("/slack")[-1]["text"]


@pytest.mark.parametrize("dimensions", [5, "ApiName=payments", {"name": "ApiName"}, True])
def test_an_alarm_whose_trigger_dimensions_are_no_list_still_pages(
    invoke: Invoke, receiver: Any, dimensions: Any
) -> None:
    # GIVEN a critical alarm notification whose Trigger.Dimensions (a description of the metric,
    # a list of {name, value} from CloudWatch) is something else
    trigger = {"MetricName": "5XXError", "Namespace": "AWS/ApiGateway", "Dimensions": dimensions}
    alarm = alarm_notification("payments-api-Errors", "ALARM", Trigger=trigger)
    # WHEN routed
    result = invoke(sns_event(alarm))
    # THEN the alarm pages, its metric described without the dimensions it could not read
    assert statuses(result) == ["sent"]
    [pagerduty] = receiver.bodies("/pagerduty")
    detail = pagerduty["payload"]["custom_details"]["detail"]
    assert "Metric AWS/ApiGateway/5XXError\n" in detail


def test_alarm_not_matching_critical_patterns_is_a_warning(invoke: Invoke, receiver: Any) -> None:
    # GIVEN an alarm named like no critical pattern, inside an SNS envelope in an SQS body
    envelope = {
        "Type": "Notification",
        "Message": json.dumps(alarm_notification("cpu-high", "ALARM")),
    }
    # WHEN routed THEN it is a warning: Slack and e-mail, no page
    result = invoke(sqs_event(("m-1", envelope)))
    assert result["results"][0]["severity"] == "warning"
    assert receiver.bodies("/pagerduty") == []
    assert "[WARNING]" in receiver.bodies("/slack")[0]["text"]


def test_unset_secret_variable_skips_its_channel(
    invoke: Invoke, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no Slack secret configured WHEN a critical alert is routed
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET")
    result = invoke(sns_event(fleet_alert("critical")))
    # THEN Slack is skipped (not failed) and the alert was sent elsewhere
    channels = channels_of(result["results"][0])
    assert channels["slack"]["status"] == "skipped"
    assert channels["pagerduty"]["status"] == "sent"
    assert statuses(result) == ["sent"]


def _rotate_slack_webhook(url: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId="lambda-fleet/slack-webhook", SecretString=json.dumps({"url": url})
    )


def test_secrets_are_cached_for_their_ttl(invoke: Invoke, receiver: Any) -> None:
    # GIVEN a Slack webhook read once, then rotated (as JSON {"url": ...}) in Secrets Manager
    invoke(sns_event(fleet_alert("warning", title="first")))
    _rotate_slack_webhook(receiver.url("/slack-rotated"))
    # WHEN another alert comes within the TTL (300 s) THEN the cached URL is used
    invoke(sns_event(fleet_alert("warning", title="second")))
    assert len(receiver.bodies("/slack")) == 2
    assert receiver.bodies("/slack-rotated") == []


def test_a_ttl_of_zero_reads_the_rotated_secret_at_once(
    invoke: Invoke, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no secret caching, and a Slack webhook read once and then rotated
    monkeypatch.setenv("ROUTER_SECRET_TTL_SECONDS", "0")
    invoke(sns_event(fleet_alert("warning", title="first")))
    _rotate_slack_webhook(receiver.url("/slack-rotated"))
    # WHEN the next alert is routed THEN it goes to the rotated URL
    invoke(sns_event(fleet_alert("warning", title="second")))
    assert len(receiver.bodies("/slack")) == 1
    assert len(receiver.bodies("/slack-rotated")) == 1


def test_a_routing_key_and_a_webhook_in_json_secrets_are_sent_without_their_blanks(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN both secrets kept as JSON whose values have blanks around them, as a paste leaves
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.put_secret_value(
        SecretId="lambda-fleet/pagerduty-routing-key",
        SecretString=json.dumps({"routing_key": f" {ROUTING_KEY}\n"}),
    )
    _rotate_slack_webhook(f"\t{receiver.url('/slack-json')} ")
    # WHEN a critical alert is routed
    result = invoke(sns_event(fleet_alert("critical")))
    # THEN both were sent with the value stripped, as a plain-text secret is
    channels = channels_of(result["results"][0])
    assert (channels["pagerduty"]["status"], channels["slack"]["status"]) == ("sent", "sent")
    assert [page["routing_key"] for page in receiver.bodies("/pagerduty")] == [ROUTING_KEY]
    assert len(receiver.bodies("/slack-json")) == 1


def test_a_webhook_and_a_routing_key_refused_for_good_are_read_again_by_the_retry(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a Slack webhook that Slack answers 404 (revoked) and a routing key PagerDuty answers
    # 400, both read into the warm container's cache (ROUTER_SECRET_TTL_SECONDS, 300 s)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.put_secret_value(
        SecretId="lambda-fleet/slack-webhook", SecretString=receiver.url("/slack-revoked")
    )
    receiver.fail("/slack-revoked", 404, 5)
    receiver.answer("/pagerduty", (400, {}, b'{"message": "Invalid routing key"}'))
    event = sns_event(fleet_alert("critical"))
    # WHEN the alert topic invokes the router: both refuse, so the invocation fails
    with pytest.raises(UndeliveredAlertError):
        invoke(event)
    # AND the operator replaces both secrets before Lambda's retry, a minute later
    _rotate_slack_webhook(receiver.url("/slack"))
    secrets.put_secret_value(
        SecretId="lambda-fleet/pagerduty-routing-key",
        SecretString="R0UT1NGKEYREPLACED0000000000000",
    )
    fake_clock.advance(PLATFORM_RETRY_SECONDS)
    again = invoke(event)
    # THEN the retry read both again and posted with the new ones; e-mail already had the alert
    statuses = {name: c["status"] for name, c in channels_of(again["results"][0]).items()}
    assert statuses == {"pagerduty": "sent", "slack": "sent", "email": "already_sent"}
    assert len(receiver.bodies("/slack-revoked")) == 1
    assert len(receiver.bodies("/slack")) == 1
    pages = [page["routing_key"] for page in receiver.bodies("/pagerduty")]
    assert pages == [ROUTING_KEY, "R0UT1NGKEYREPLACED0000000000000"]


def test_secret_named_by_an_arn_of_another_region_is_read_there(
    invoke: Invoke, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Slack webhook kept in eu-west-1 and named by its ARN
    secret = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="lambda-fleet/slack-webhook-eu", SecretString=receiver.url("/slack-eu")
    )
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET", secret["ARN"])
    # WHEN a warning is routed THEN Slack is reached through the URL read in that region
    result = invoke(sns_event(fleet_alert("warning")))
    assert channels_of(result["results"][0])["slack"]["status"] == "sent"
    assert len(receiver.bodies("/slack-eu")) == 1


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("not an object", "event"),
        ({}, "Records"),
        ({"Records": []}, "Records"),
        ({"Records": [{"eventSource": "aws:kinesis"}]}, "Records[0].eventSource"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "Records[0].messageId"),
    ],
)
def test_bad_events_get_an_error_naming_the_field(
    invoke: Invoke, receiver: Any, event: Any, field: str
) -> None:
    # GIVEN a malformed event WHEN invoked THEN an error result names the field, nothing is sent
    result = invoke(event)
    assert result["status"] == "error"
    assert f"invalid event: {field}:" in result["error"]
    assert receiver.requests == {}


def test_bad_messages_are_reported_per_message(invoke: Invoke, receiver: Any) -> None:
    # GIVEN an SNS record with invalid JSON and one with an alert lacking its severity
    broken = {k: v for k, v in fleet_alert().items() if k != "severity"}
    # WHEN routed THEN each is an error naming its field, without raising, and nothing is sent
    result = invoke(sns_event("{not json", broken))
    assert statuses(result) == ["error", "error"]
    assert "Records[0].Sns.Message: is not valid JSON" in result["results"][0]["error"]
    assert "Records[1].Sns.Message.severity" in result["results"][1]["error"]
    assert receiver.requests == {}
    # AND through SQS an unreadable body is a batch item failure (it will reach the DLQ) while
    # the good message of the batch is delivered
    batch = invoke(sqs_event(("bad", "[]"), ("good", fleet_alert("info"))))
    assert batch["batchItemFailures"] == [{"itemIdentifier": "bad"}]
    assert statuses(batch) == ["error", "sent"]


def test_an_alert_whose_id_is_too_long_for_a_dedup_key_is_refused_naming_the_field(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN a fleet alert whose id is 3,000 characters (ids are 16; the state table's sort keys
    # hold 1,024 bytes and PagerDuty's dedup keys 255 characters)
    alert = {**fleet_alert(), "id": "x" * 3000}
    # WHEN routed from SNS
    result = invoke(sns_event(alert))
    # THEN it is an error naming the field, without raising (a retry could not fix it), and
    # nothing is sent
    assert statuses(result) == ["error"]
    assert result["results"][0]["error"] == (
        "invalid event: Records[0].Sns.Message.id: String should have at most 64 characters"
    )
    assert receiver.requests == {}


@pytest.mark.parametrize("blank", ["", "  "])
def test_alerts_published_with_a_blank_id_are_each_sent_and_resolved_under_their_own_key(
    invoke: Invoke, receiver: Any, fake_clock: Any, blank: str
) -> None:
    # GIVEN two different critical alerts published with a blank id (a publisher whose id field
    # came out empty), and the resolution of the first, with a blank id too
    first = {**fleet_alert("critical", timestamp=fake_clock.now()), "id": blank}
    second = {**fleet_alert("critical", title="dev-apps: nodes not ready"), "id": blank}
    resolved_at = fake_clock.advance(300).isoformat()
    resolution = {**first, "id": blank, "resolved": True, "timestamp": resolved_at}
    # WHEN they are routed
    results = [invoke(sns_event(message))["results"][0] for message in (first, second, resolution)]
    # THEN each went out: the second is no duplicate of the first, whose blank id they share
    assert [item["status"] for item in results] == ["sent", "sent", "sent"]
    # AND each has the id derived from its source, resource and title, as `Alert.create` gives
    # one, so the resolution resolves the first's PagerDuty incident
    first_id = Alert.create(**{k: v for k, v in first.items() if k not in ("id", "resolved")}).id
    pages = receiver.bodies("/pagerduty")
    assert [(body["event_action"], body["dedup_key"]) for body in pages] == [
        ("trigger", first_id),
        ("trigger", results[1]["alert_id"]),
        ("resolve", first_id),
    ]
    assert results[1]["alert_id"] not in (first_id, blank)


def test_wrong_routes_fail_naming_the_variable(
    router_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a route naming an unknown channel WHEN the environment is loaded THEN it names it
    monkeypatch.setenv("ROUTER_ROUTES", "critical=pagerduty+sms")
    with pytest.raises(ConfigurationError, match=r"ROUTER_ROUTES.*sms"):
        load_environment(RouterEnvironment)


@pytest.mark.parametrize(
    ("routes", "kind"),
    [
        # Left out with no info route: critical alerts, and resolutions (PagerDuty's incidents
        # would stay open), would go nowhere.
        ("warning=slack+email", "critical"),
        # An empty route.
        ("critical=pagerduty,warning=slack,info=", "info"),
    ],
)
def test_routes_leaving_a_kind_with_no_channel_fail_naming_the_variable_and_the_kind(
    router_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, routes: str, kind: str
) -> None:
    # GIVEN routes under which alerts of one kind would reach no channel
    monkeypatch.setenv("ROUTER_ROUTES", routes)
    # WHEN the environment is loaded THEN it fails naming the variable and the kind, instead of
    # the router answering each such alert `skipped` and dropping it
    with pytest.raises(ConfigurationError, match=rf"ROUTER_ROUTES: kind '{kind}' has no channel"):
        load_environment(RouterEnvironment)


@pytest.mark.parametrize(
    ("routes", "problem"),
    [
        # Each alert would be posted to Slack twice.
        ("critical=slack+email+slack,info=email", "channel 'slack' is listed twice for 'critical'"),
        # The second entry would silently replace the first: critical alerts would not page.
        ("critical=pagerduty+email,info=email,critical=slack", "kind 'critical' is listed twice"),
    ],
)
def test_routes_listing_a_channel_or_a_kind_twice_fail_naming_the_variable(
    router_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, routes: str, problem: str
) -> None:
    # GIVEN a route that lists a channel twice, or a kind listed twice
    monkeypatch.setenv("ROUTER_ROUTES", routes)
    # WHEN the environment is loaded THEN it fails naming the variable and what is repeated
    with pytest.raises(ConfigurationError, match=rf"ROUTER_ROUTES: {problem}"):
        load_environment(RouterEnvironment)


def test_a_dedup_window_shorter_than_a_queue_redelivery_fails_naming_the_variable(
    router_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a dedup window of 300 s, shorter than the 6 minutes after which SQS redelivers a
    # message a channel did not take (the record of the channels that took it would be gone)
    monkeypatch.setenv("ROUTER_DEDUP_WINDOW_SECONDS", "300")
    # WHEN the environment is loaded THEN it fails naming the variable and the least it may be
    with pytest.raises(
        ConfigurationError, match=rf"ROUTER_DEDUP_WINDOW_SECONDS.*{MIN_DEDUP_WINDOW_SECONDS}"
    ):
        load_environment(RouterEnvironment)
    # AND the least it may be is accepted
    monkeypatch.setenv("ROUTER_DEDUP_WINDOW_SECONDS", str(MIN_DEDUP_WINDOW_SECONDS))
    assert (
        load_environment(RouterEnvironment).router_dedup_window_seconds == MIN_DEDUP_WINDOW_SECONDS
    )


def test_every_channel_name_has_a_channel() -> None:
    # GIVEN the names routes may use WHEN compared with the channel registry THEN they agree
    assert set(CHANNELS) == set(CHANNEL_NAMES)
    assert all(CHANNELS[name].name == name for name in CHANNEL_NAMES)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[3] / "events/notification_router").glob("*.json")),
    ids=lambda p: p.name,
)
def test_example_events_are_routed(
    invoke: Invoke, receiver: Any, fake_clock: Any, path: Path
) -> None:
    # GIVEN an example event of the README, read when the latest of them happened (03:45)
    fake_clock.advance(15 * 60)
    # WHEN routed THEN every message in it is sent
    result = invoke(json.loads(path.read_text()))
    assert set(statuses(result)) == {"sent"}
    assert result.get("batchItemFailures", []) == []


def _deadline_context(lambda_context: Any, seconds_left: float, sleeps: list[float]) -> Any:
    """`lambda_context` with `seconds_left` running down in real time and by every backoff the
    router recorded (it waits for none)."""
    started = time.monotonic()

    class DeadlineContext(type(lambda_context)):  # type: ignore[misc]
        def get_remaining_time_in_millis(self) -> int:
            elapsed = time.monotonic() - started + sum(sleeps)
            return int((seconds_left - elapsed) * 1000)

    return DeadlineContext()


@dataclass
class AttemptTime:
    """Time as the router's attempts see it, simulated so that no result depends on how busy
    the machine is: a request that timed out took all the time it was given (a webhook that
    never answers), a backoff its pause, a slow secret read what `spend` says; nothing else
    takes any. `timeouts` holds the time each request was given."""

    sleeps: list[float]
    spent: float = 0.0
    timeouts: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.spent + sum(self.sleeps)

    def spend(self, seconds: float) -> None:
        self.spent += seconds

    def context(self, lambda_context: Any, seconds_left: float) -> Any:
        """`lambda_context` with `seconds_left` running down in this simulated time."""
        now = self.monotonic

        class DeadlineContext(type(lambda_context)):  # type: ignore[misc]
            def get_remaining_time_in_millis(self) -> int:
                return int((seconds_left - now()) * 1000)

        return DeadlineContext()


@pytest.fixture
def attempt_time(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> AttemptTime:
    simulated = AttemptTime(sleeps)
    real_post = channels.post_json

    def timed_post(url: str, payload: Any, timeout_seconds: float, **options: Any) -> None:
        simulated.timeouts.append(timeout_seconds)
        try:
            real_post(url, payload, timeout_seconds, **options)
        except ChannelError as error:
            if "timed out" in str(error) or "time is up" in str(error):
                simulated.spend(timeout_seconds)
            raise

    monkeypatch.setattr(channels, "post_json", timed_post)
    monkeypatch.setattr(channels, "time", SimpleNamespace(monotonic=simulated.monotonic))
    return simulated


def test_hanging_slack_with_7_5_seconds_to_spend_hands_the_rest_back_in_time(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    attempt_time: AttemptTime,
    *,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a Slack webhook that never answers, a 0.5 s HTTP timeout, and a batch of 4 warnings
    # (without a deadline: 3 attempts and 1.5 s of backoff per message, 12 s in all)
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "0.5")
    receiver.hang("/slack")
    batch = sqs_event(*((f"m-{n}", fleet_alert("warning", title=f"disk {n}")) for n in range(4)))
    context = attempt_time.context(lambda_context, 7.5 + RECORDING_SECONDS)
    # WHEN the batch is routed with 7.5 s left beyond the time kept to record a send
    result = invoke(batch, context)
    # THEN the handler returned within the 7.5 s, its attempts and backoffs leaving its 2 s
    # margin (and the time kept to record a send)
    assert context.get_remaining_time_in_millis() > (1.5 + RECORDING_SECONDS) * 1000
    # AND every message is handed back: the first ones lack Slack, the last were not started
    assert result["batchItemFailures"] == [{"itemIdentifier": f"m-{n}"} for n in range(4)]
    found = statuses(result)
    assert found[0] == "failed"
    assert found[-1] == "not_started"
    assert found == sorted(found)  # "failed" ones first, then only "not_started"
    emailed = [
        item
        for item in result["results"]
        if "channels" in item and channels_of(item)["email"]["status"] == "sent"
    ]
    assert len(email_inbox.receive()) == len(emailed) > 0
    assert receiver.hung["/slack"] <= 3 * found.count("failed")
    # WHEN SQS redelivers the batch with Slack answering and plenty of time
    receiver.heal("/slack")
    retry = invoke(batch)
    # THEN each warning reaches Slack once, and e-mail only for the ones not started before
    assert retry["batchItemFailures"] == []
    assert statuses(retry) == ["sent"] * 4
    assert sorted(body["text"].split(" - ")[0] for body in receiver.bodies("/slack")) == [
        f"[WARNING] disk {n}" for n in range(4)
    ]
    assert len(email_inbox.receive()) == 4 - len(emailed)


def test_a_slow_secret_read_and_a_hanging_webhook_share_one_attempts_time(
    invoke: Invoke,
    receiver: Any,
    attempt_time: AttemptTime,
    *,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN warnings going to Slack only, a Secrets Manager read of the webhook URL taking 1.6 s
    # (within a 2 s HTTP timeout) and a Slack webhook that never answers
    monkeypatch.setenv("ROUTER_ROUTES", "warning=slack,info=email")
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "2")
    read_secret = RouterServices.secret

    def slow_secret(services: RouterServices, secret_id: str) -> str:
        attempt_time.spend(1.6)
        return read_secret(services, secret_id)

    monkeypatch.setattr(RouterServices, "secret", slow_secret)
    receiver.hang("/slack")
    context = attempt_time.context(lambda_context, 4.5 + RECORDING_SECONDS)
    # WHEN a warning is routed with 4.5 s left beyond the time kept to record a send (one attempt
    # may take 2 s plus a 2 s margin)
    result = invoke(sqs_event(("m-1", fleet_alert("warning"))), context)
    # THEN the secret read and the request took one attempt's 2 s together (the request was
    # given the 0.4 s the read left, not 2 s more, which would leave 0.9 s): the handler
    # returned with its margin left, and handed the message back
    assert attempt_time.timeouts == [pytest.approx(0.4)]
    assert context.get_remaining_time_in_millis() > (1.5 + RECORDING_SECONDS) * 1000
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert statuses(result) == ["failed"]


def test_sns_message_not_started_for_lack_of_time_raises_for_a_retry(
    invoke: Invoke, receiver: Any, lambda_context: Any, sleeps: list[float]
) -> None:
    # GIVEN an SNS alert and an invocation with 3 s left (an attempt may take 5 s + 2 s)
    context = _deadline_context(lambda_context, 3, sleeps)
    # WHEN routed THEN nothing is sent and the invocation fails, so Lambda retries it
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(sns_event(fleet_alert("critical")), context)
    assert raised.value.message_ids == ["sns-0"]
    assert receiver.requests == {}


INJECTION = "Threshold crossed <!channel> & see <https://evil.example|AWS console>"


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def test_injection_in_an_alarm_reason_reaches_slack_escaped(invoke: Invoke, receiver: Any) -> None:
    # GIVEN an alarm whose reason and description (anyone with SetAlarmState writes the reason)
    # hold a channel mention and a disguised link
    alarm = alarm_notification(
        "payments-api-Errors", "ALARM", NewStateReason=INJECTION, AlarmDescription="<!here>"
    )
    # WHEN routed
    invoke(sns_event(alarm))
    # THEN Slack got one message in which they are text: the only markup is the console link
    [slack] = receiver.bodies("/slack")
    link = "<https://ap-south-1.console.aws.amazon.com/cloudwatch/home?region=ap-south-1"
    texts = _texts(slack)
    assert sum(text.count(link) for text in texts) == 1
    for text in texts:
        assert "<" not in text.replace(link, "").replace("|Open in the AWS console>", "")
    detail = slack["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; &amp; see &lt;https://evil.example|AWS console&gt;" in detail
    assert "&lt;!here&gt;" in detail
    assert len(receiver.bodies("/pagerduty")) == 1


def _mrkdwn_objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        own = [value] if value.get("type") == "mrkdwn" else []
        return own + [found for item in value.values() for found in _mrkdwn_objects(item)]
    if isinstance(value, list):
        return [found for item in value for found in _mrkdwn_objects(item)]
    return []


def test_bare_urls_channel_names_and_mentions_in_alert_text_are_not_made_live_by_slack(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN an alarm whose reason (anyone with SetAlarmState writes it) holds a bare URL, a
    # channel name and mentions written without `<...>`, which escaping leaves as they are
    reason = "Threshold crossed: reset at https://evil.example/login, ask #general @here @channel"
    alarm = alarm_notification("payments-api-Errors", "ALARM", NewStateReason=reason)
    # WHEN routed
    invoke(sns_event(alarm))
    # THEN Slack got the reason as text, and every mrkdwn text of the message is `verbatim`:
    # Slack's default (`verbatim: false`) turns URLs into links, links channel names and parses
    # certain mentions in it
    [slack] = receiver.bodies("/slack")
    assert reason in slack["blocks"][1]["text"]["text"]
    mrkdwn = _mrkdwn_objects(slack["blocks"])
    assert len(mrkdwn) == 7
    assert [item for item in mrkdwn if item.get("verbatim") is not True] == []


def test_long_text_is_cut_on_a_word_boundary_to_each_channels_limit(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical alert with a 1,300-character title and a 6,000-character detail full of <>
    title = " ".join(f"word{n}" for n in range(200))
    detail = " ".join(f"<w{n}>" for n in range(1000))
    # WHEN routed
    invoke(sns_event(fleet_alert("critical", title=title, detail=detail)))
    # THEN each channel got the text within its limit, ending with an ellipsis after a whole word
    [slack] = receiver.bodies("/slack")
    header = slack["blocks"][0]["text"]["text"]
    section = slack["blocks"][1]["text"]["text"]
    [pagerduty] = receiver.bodies("/pagerduty")
    summary = pagerduty["payload"]["summary"]
    [email] = email_inbox.receive()
    subject = email["Subject"]
    headline = f"[CRITICAL] {title}"
    for text, limit, ellipsis, whole in (
        (header, 150, "\u2026", headline),
        (section, 3000, "\u2026", slack_escape(detail)),
        (summary, 1024, "\u2026", headline),
        (subject, 99, "...", headline),
    ):
        assert len(text) <= limit
        assert text.endswith(ellipsis)
        kept = text.removesuffix(ellipsis)
        assert whole.startswith(kept)
        assert whole[len(kept)] == " "


def test_an_alert_too_long_for_an_sns_message_is_emailed_cut_to_fit(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical alert whose detail alone (270,000 characters) is more than SNS takes in
    # one message
    detail = " ".join(f"w{n:05d}" for n in range(45_000))
    # WHEN routed
    invoke(sns_event(fleet_alert("critical", detail=detail)))
    # THEN the e-mail goes out, its body within SNS's limit and its detail cut on a word
    [email] = email_inbox.receive()
    body = email["Message"]
    assert len(body.encode("utf-8")) <= 262_144
    cut = body.split("\n")[-1].removeprefix("  ")
    assert cut.endswith("\u2026") and detail.startswith(cut.removesuffix("\u2026"))
    # AND Slack and PagerDuty got it too
    assert len(receiver.bodies("/slack")) == 1
    assert len(receiver.bodies("/pagerduty")) == 1


def test_an_alarm_resource_too_long_for_a_console_link_still_reaches_every_channel(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical alert (170 KB, a message SNS takes) whose resource is a CloudWatch alarm
    # ARN with a 170,000-character name, longer than the 255 characters AWS allows an alarm name;
    # percent-encoded in a console deep link it would be 510,000 characters
    resource = f"arn:aws:cloudwatch:{REGION}:{MEMBER}:alarm:" + "/" * 170_000
    alert = fleet_alert("critical", resource=resource)
    assert len(json.dumps(alert).encode("utf-8")) <= 262_144
    # WHEN routed
    result = invoke(sns_event(alert))
    # THEN every channel took it: the link is the service's console, not a deep link to a name
    # no alarm can have
    assert statuses(result) == ["sent"], result
    link = f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}"
    # AND Slack's link is within the 3,000 characters of a text object
    [slack] = receiver.bodies("/slack")
    [context] = [block for block in slack["blocks"] if block["type"] == "context"]
    assert context["elements"][0]["text"] == f"<{link}|Open in the AWS console>"
    # AND PagerDuty's event is within the 512,000 bytes it accepts
    [pagerduty] = receiver.bodies("/pagerduty")
    assert pagerduty["client_url"] == link
    assert receiver.sizes["/pagerduty"][0] <= 512_000
    # AND the e-mail is within SNS's message limit
    [email] = email_inbox.receive()
    assert f"Console: {link}" in email["Message"].splitlines()


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param("cost/TAG/owner/payments", id="no ARN: the region's console home"),
        pytest.param(f"arn:aws:s3:::{'b' * 60}", id="an ARN: the service's console"),
    ],
)
def test_an_alert_whose_region_is_too_long_for_a_console_link_gets_none_and_goes_out(
    invoke: Invoke, receiver: Any, email_inbox: Any, resource: str
) -> None:
    # GIVEN a critical alert (a message SNS takes) whose region is 120,000 letters: plain
    # letters, as a region code is, but no region; the console link would hold it twice
    alert = fleet_alert("critical", resource=resource, region="a" * 120_000)
    assert len(json.dumps(alert).encode("utf-8")) <= 262_144
    # WHEN routed
    result = invoke(sns_event(alert))
    # THEN every channel took it, with no console link
    assert statuses(result) == ["sent"], result
    [slack] = receiver.bodies("/slack")
    assert [block for block in slack["blocks"] if block["type"] == "context"] == []
    [pagerduty] = receiver.bodies("/pagerduty")
    assert "client_url" not in pagerduty
    [email] = email_inbox.receive()
    assert [line for line in email["Message"].splitlines() if line.startswith("Console:")] == []


def test_a_long_non_ascii_detail_that_sns_takes_is_paged_within_pagerdutys_event_limit(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN a critical alert with a Cyrillic detail of 234 KB in UTF-8, a message SNS takes,
    # which JSON's escapes (6 bytes a character) make 666 KB
    detail = " ".join(["ошибка"] * 18_000)
    alert = fleet_alert("critical", detail=detail)
    assert len(json.dumps(alert, ensure_ascii=False).encode("utf-8")) <= 262_144
    # WHEN routed
    invoke(sns_event(alert))
    # THEN PagerDuty got one event within the 512,000 bytes it accepts
    [size] = receiver.sizes["/pagerduty"]
    assert size <= 512_000
    # AND its detail is the start of the alert's, cut on a word with an ellipsis
    [pagerduty] = receiver.bodies("/pagerduty")
    cut = pagerduty["payload"]["custom_details"]["detail"]
    assert cut.endswith("\u2026")
    assert detail.startswith(cut.removesuffix("\u2026") + " ")


def test_an_alert_whose_text_escapes_a_lone_surrogate_reaches_every_channel(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical alert whose JSON escapes a lone surrogate (`\\ud800`, as an AWS answer
    # can) in its title and detail: no UTF-8 text can hold it
    message = json.dumps(fleet_alert("critical", title="disk full on ", detail="node "))
    message = message.replace("full on ", "full on \\ud800").replace("node ", "node \\ud800")
    # WHEN routed
    result = invoke(sns_event(message))
    # THEN PagerDuty, Slack and e-mail got it, with U+FFFD in the surrogate's place
    assert statuses(result) == ["sent"]
    [pagerduty] = receiver.bodies("/pagerduty")
    assert pagerduty["payload"]["summary"] == "[CRITICAL] disk full on \ufffd"
    assert pagerduty["payload"]["custom_details"]["detail"] == "node \ufffd"
    assert len(receiver.bodies("/slack")) == 1
    [email] = email_inbox.receive()
    assert "node \ufffd" in email["Message"]


def test_lines_of_an_alarm_reason_cannot_read_as_facts_of_the_email(
    invoke: Invoke, email_inbox: Any
) -> None:
    # GIVEN a critical alert whose detail (an alarm reason anyone allowed SetAlarmState writes)
    # holds lines that read as the e-mail's facts, one after a Unicode line separator
    detail = (
        "CPU high\nSeverity: info\u2028Resource: nothing-to-see\n\nConsole: https://evil.example"
    )
    # WHEN routed
    invoke(sns_event(fleet_alert("critical", detail=detail, resource="node-1")))
    # THEN every fact at the margin is the alert's own, once each, and the detail's lines come
    # after them under "Detail:", indented
    [email] = email_inbox.receive()
    lines = email["Message"].splitlines()
    at_margin = [line for line in lines if line and not line.startswith(" ")]
    assert [line for line in at_margin if line.startswith("Severity:")] == ["Severity: critical"]
    assert [line for line in at_margin if line.startswith("Resource:")] == ["Resource: node-1"]
    assert not any(line.startswith("Console: https://evil") for line in at_margin)
    assert lines[lines.index("Detail:") :] == [
        "Detail:",
        "  CPU high",
        "  Severity: info",
        "  Resource: nothing-to-see",
        "",
        "  Console: https://evil.example",
    ]


def test_line_breaks_in_single_line_fields_cannot_forge_facts_in_email_or_slack(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical alert whose title and resource hold CR/LF followed by text that reads as
    # a header or a fact of the message
    title = "disk full\r\nBcc: attacker@evil.example"
    resource = "node-1\nSeverity: info\u2028*Region*"
    # WHEN routed
    invoke(sns_event(fleet_alert("critical", title=title, resource=resource)))
    # THEN the e-mail's subject and each of its facts stay on one line: no line of the body
    # starts with the forged text
    [email] = email_inbox.receive()
    assert email["Subject"] == "[CRITICAL] disk full Bcc: attacker@evil.example"
    lines = email["Message"].splitlines()
    assert lines[0] == "[CRITICAL] disk full Bcc: attacker@evil.example"
    assert "Resource: node-1 Severity: info *Region*" in lines
    assert [line for line in lines if line.startswith(("Bcc:", "Severity: info", "*Region*"))] == []
    # AND Slack's header, fallback and resource field and PagerDuty's summary are one line each
    [slack] = receiver.bodies("/slack")
    resource_field = slack["blocks"][2]["fields"][1]["text"]
    assert resource_field == "*Resource*\nnode-1 Severity: info *Region*"
    [pagerduty] = receiver.bodies("/pagerduty")
    for text in (
        slack["blocks"][0]["text"]["text"],
        slack["text"],
        pagerduty["payload"]["summary"],
    ):
        assert text.splitlines() == [text]
        assert "disk full Bcc: attacker@evil.example" in text


def test_a_line_break_in_an_alert_id_cannot_forge_a_fact_of_the_email(
    invoke: Invoke, email_inbox: Any
) -> None:
    # GIVEN a critical alert whose id (64 characters at most, shown in the e-mail) holds a line
    # break followed by text that reads as the e-mail's console link
    alert = {**fleet_alert("critical"), "id": "x\nConsole: https://evil.example/signin"}
    # WHEN routed
    invoke(sns_event(alert))
    # THEN the id stays on its own line: no line of the body starts with the forged link
    [email] = email_inbox.receive()
    lines = email["Message"].splitlines()
    assert "Alert id: x Console: https://evil.example/signin" in lines
    assert [line for line in lines if line.startswith("Console: https://evil")] == []


def test_line_breaks_in_a_resource_or_source_stay_off_pagerdutys_one_line_fields(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN a critical cost alert whose resource ends in a Cost Explorer tag value (a tag value
    # may hold U+2028, a line separator) with a line break, and whose source and region hold
    # one too
    resource = "cost/TAG/owner\u2028Severity: info\nRunbook: call +1 555 0100"
    alert = fleet_alert(
        "critical",
        resource=resource,
        source="cost_analyzer\r\nGroup: none",
        region=f"{REGION}\nAccount: none",
    )
    # WHEN routed
    invoke(sns_event(alert))
    # THEN PagerDuty's source and component are one line each, the forged text inside them
    [pagerduty] = receiver.bodies("/pagerduty")
    source = pagerduty["payload"]["source"]
    component = pagerduty["payload"]["component"]
    assert source == "cost/TAG/owner Severity: info Runbook: call +1 555 0100"
    assert component == "cost_analyzer Group: none"
    # AND the region among its details is one line as well
    assert pagerduty["payload"]["custom_details"]["region"] == f"{REGION} Account: none"


@pytest.mark.parametrize(
    ("resource", "source", "expected"),
    [
        pytest.param("", "health_monitor", "health_monitor", id="empty resource"),
        pytest.param("\n\t ", "health_monitor", "health_monitor", id="blank resource"),
        pytest.param(" ", "\r\n", "lambda-fleet", id="blank resource and source"),
    ],
)
def test_a_critical_alert_with_a_blank_resource_still_pages_with_a_source_pagerduty_accepts(
    invoke: Invoke, receiver: Any, resource: str, source: str, expected: str
) -> None:
    # GIVEN a critical alert whose resource (PagerDuty's `payload.source`, which it refuses blank
    # on every retry: "'payload.source' is missing or blank") is blank once made one line
    alert = fleet_alert("critical", resource=resource, source=source)
    # WHEN routed
    result = invoke(sns_event(alert))
    # THEN PagerDuty gets the function that raised it (or the fleet) as the event's source, and
    # no blank component
    assert statuses(result) == ["sent"]
    [pagerduty] = receiver.bodies("/pagerduty")
    assert pagerduty["payload"]["source"] == expected
    assert pagerduty["payload"].get("component", source) == source
    assert ("component" in pagerduty["payload"]) == bool(source.strip())


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("one two three four", 12, "one two\u2026"),
        ("one two three", 8, "one two\u2026"),
        ("abcdefghijklmnop", 8, "abcdefg\u2026"),
        ("xx&&&&&&&&&&", 12, "xx&amp;\u2026"),
        ("a <b> c", 20, "a &lt;b&gt; c"),
    ],
)
def test_slack_text_is_escaped_then_fitted_without_splitting_an_entity(
    text: str, limit: int, expected: str
) -> None:
    # GIVEN a text and a limit WHEN fitted for Slack THEN escaped, cut on a word, within the limit
    fitted = slack_text(text, limit)
    assert fitted == expected
    assert len(fitted) <= limit


def test_fleet_resolution_resolves_the_pagerduty_incident_with_the_same_key(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a critical fleet alert that paged
    alert = Alert.model_validate(fleet_alert("critical"))
    invoke(sns_event(json.loads(alert.model_dump_json())))
    [trigger] = receiver.bodies("/pagerduty")
    email_inbox.receive()
    # WHEN its resolution arrives (twice, as SNS may deliver one message)
    cleared_at = alert.timestamp + timedelta(minutes=5)
    resolution = json.loads(
        alert.resolution("4 of 4 desired instances ready", cleared_at).model_dump_json()
    )
    result = invoke(sns_event(resolution))
    again = invoke(sns_event(resolution))
    # THEN it took the resolved route once: PagerDuty resolve with the trigger's key,
    # a Slack "resolved" message and a [RESOLVED] e-mail
    assert (result["results"][0]["kind"], statuses(result)) == ("resolved", ["sent"])
    assert statuses(again) == ["redelivered"]
    assert receiver.bodies("/pagerduty")[1:] == [
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    ]
    [_, slack] = receiver.bodies("/slack")
    assert slack["text"].startswith("[RESOLVED] dev-apps: capacity check failed")
    assert "*Severity*\nresolved" in _texts(slack)
    [email] = email_inbox.receive()
    assert email["Subject"] == "[RESOLVED] dev-apps: capacity check failed for system"
    assert "4 of 4 desired instances ready" in email["Message"]


def test_a_check_failing_again_soon_after_its_resolution_pages_again(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a critical alert that paged, and its resolution five minutes later
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    first = invoke(sns_event(json.loads(alert.model_dump_json())))
    assert statuses(first) == ["sent"]
    resolution = alert.resolution("4 of 4 ready", fake_clock.advance(300))
    assert statuses(invoke(sns_event(json.loads(resolution.model_dump_json())))) == ["sent"]
    # WHEN the same check fails again five minutes later, well inside the 900 s dedup window
    again = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.advance(300)))
    assert again.id == alert.id
    result = invoke(sns_event(json.loads(again.model_dump_json())))
    # THEN it is sent to every channel of its route, and PagerDuty is triggered again
    assert statuses(result) == ["sent"]
    assert channels_of(result["results"][0]).keys() == channels_of(first["results"][0]).keys()
    actions = [body["event_action"] for body in receiver.bodies("/pagerduty")]
    assert actions == ["trigger", "resolve", "trigger"]
    # WHEN a copy of that new failure comes again THEN it is a duplicate
    assert statuses(invoke(published_again(json.loads(again.model_dump_json())))) == ["duplicate"]


def test_a_failure_again_while_its_resolution_is_still_retried_is_paged_and_stays_open(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a critical alert that paged, and its resolution, which PagerDuty refused three
    # times, so the resolution is to be retried
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    invoke(sns_event(json.loads(alert.model_dump_json())))
    resolution = json.loads(
        alert.resolution("4 of 4 ready", fake_clock.advance(300)).model_dump_json()
    )
    receiver.fail("/pagerduty", 500, times=3)
    assert statuses(invoke(sqs_event(("m-resolve", resolution)))) == ["failed"]
    # WHEN the check fails again before that retry
    again = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.advance(300)))
    failed_again = invoke(sns_event(json.loads(again.model_dump_json())))
    # AND the resolution's retry comes after it
    retried = invoke(sqs_event(("m-resolve", resolution)))
    # THEN the new failure is paged, and the older resolution does not close it
    assert statuses(failed_again) == ["sent"]
    assert (statuses(retried), retried["results"][0]["late"]) == (["duplicate"], True)
    answered = receiver.bodies("/pagerduty")
    assert [body["event_action"] for body in answered][-1] == "trigger"


def test_an_ok_delivered_after_the_next_alarm_does_not_close_the_incident(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN an alarm paged at 03:30, then in ALARM again at 03:40 (a duplicate in the window)
    name = "payments-api-Errors"
    invoke(sns_event(alarm_notification(name, "ALARM")))
    fake_clock.advance(600)
    again = alarm_notification(name, "ALARM", StateChangeTime="2025-06-02T03:40:00.000+0000")
    assert statuses(invoke(sns_event(again))) == ["duplicate"]
    # WHEN the OK of 03:35 between them is delivered only now
    ok = alarm_notification(name, "OK", StateChangeTime="2025-06-02T03:35:00.000+0000")
    result = invoke(sns_event(ok))
    # THEN it is a late copy: the alarm has been firing since 03:40, and PagerDuty stays open
    assert (statuses(result), result["results"][0]["late"]) == (["duplicate"], True)
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]


def test_a_trigger_redriven_from_the_dead_letter_queue_hours_later_does_not_reopen(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a trigger that PagerDuty refused (so it went on to the dead-letter queue), then its
    # resolution, sent
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    trigger = json.loads(alert.model_dump_json())
    receiver.fail("/pagerduty", 500, times=3)
    assert statuses(invoke(sqs_event(("m-trigger", trigger)))) == ["failed"]
    resolution = alert.resolution("4 of 4 ready", fake_clock.advance(300))
    assert statuses(invoke(sns_event(json.loads(resolution.model_dump_json())))) == ["sent"]
    # WHEN an operator redrives the dead-letter queue two days later
    fake_clock.advance(2 * 86400)
    redriven = invoke(sqs_event(("m-trigger", trigger)))
    # THEN the trigger is a late copy: nobody is paged for what cleared two days ago (and
    # PagerDuty, which refused the trigger, got no resolve either)
    assert (statuses(redriven), redriven["results"][0]["late"]) == (["duplicate"], True)
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"] * 3


def test_an_alarm_back_from_insufficient_data_is_not_announced_again(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN an alarm paged at 03:30, with INSUFFICIENT_DATA at 03:32 (which resolves nothing)
    name = "payments-api-Errors"
    invoke(sns_event(alarm_notification(name, "ALARM")))
    missing = alarm_notification(
        name, "INSUFFICIENT_DATA", StateChangeTime="2025-06-02T03:32:00.000+0000"
    )
    invoke(sns_event(missing))
    # WHEN it is in ALARM again at 03:34
    back = alarm_notification(name, "ALARM", StateChangeTime="2025-06-02T03:34:00.000+0000")
    result = invoke(sns_event(back))
    # THEN it is a duplicate of the open incident: one page, one critical Slack message
    assert statuses(result) == ["duplicate"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]
    assert len([b for b in receiver.bodies("/slack") if "[CRITICAL]" in b["text"]]) == 1


def test_a_de_escalation_within_the_window_is_a_duplicate(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a warning, then its escalation to critical a minute later
    for severity in ("warning", "critical"):
        alert = fleet_alert(severity, timestamp=fake_clock.advance(60))
        assert statuses(invoke(sns_event(alert))) == ["sent"]
    # WHEN it is a warning again a minute after that
    lower = invoke(sns_event(fleet_alert("warning", timestamp=fake_clock.advance(60))))
    # THEN that is a duplicate: the incident is still open, and the warning was announced
    assert statuses(lower) == ["duplicate"]
    assert len([b for b in receiver.bodies("/slack") if "[WARNING]" in b["text"]]) == 1


def test_an_alarm_notification_without_its_state_change_time_is_refused_naming_the_field(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN alarm notifications with no StateChangeTime, and with one that is not a time
    missing = alarm_notification("payments-api-Errors", "ALARM")
    del missing["StateChangeTime"]
    garbled = alarm_notification("payments-api-Errors", "ALARM", StateChangeTime="yesterday")
    # WHEN they are routed
    results = [invoke(sns_event(message))["results"][0] for message in (missing, garbled)]
    # THEN each is an error naming the field (the router's clock would make every copy newer
    # than the notices before it), and nothing is sent
    assert [item["status"] for item in results] == ["error", "error"]
    assert "StateChangeTime" in results[0]["error"]
    assert "Records[0].Sns.Message.StateChangeTime: not an ISO 8601 time" in results[1]["error"]
    assert receiver.bodies("/pagerduty") == []


@pytest.mark.parametrize(
    ("kind", "changed_at", "field"),
    [
        ("alarm", "9999-12-31T23:59:59.000-1400", "StateChangeTime"),
        ("alarm", "0001-01-01T00:00:00.000+1400", "StateChangeTime"),
        ("fleet", "9999-12-31T23:59:59-14:00", "timestamp"),
        ("fleet", "0001-01-01T00:00:00+14:00", "timestamp"),
    ],
)
def test_a_notice_time_past_the_calendar_in_utc_is_refused_naming_the_field(
    invoke: Invoke, receiver: Any, kind: str, changed_at: str, field: str
) -> None:
    # GIVEN an alarm notification or a fleet alert whose time has an offset that carries it
    # past the calendar once in UTC
    message = (
        alarm_notification("payments-api-Errors", "ALARM", StateChangeTime=changed_at)
        if kind == "alarm"
        else {**fleet_alert("critical"), "timestamp": changed_at}
    )
    # WHEN it is routed
    [result] = invoke(sns_event(message))["results"]
    # THEN it is an error naming the field and the start of the value, and nothing is sent
    assert result["status"] == "error", result
    assert f"Records[0].Sns.Message.{field}: " in result["error"]
    assert f"{changed_at[:19]}" in result["error"]
    assert "is outside the years 1-9999 in UTC" in result["error"]
    assert receiver.bodies("/pagerduty") == []
    assert receiver.bodies("/slack") == []


def test_a_notice_stamped_far_ahead_of_the_routers_clock_is_refused_and_mutes_nothing(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a trigger stamped in the year 2999 (a publisher with a wrong clock, or a hostile
    # one), and an alarm notification stamped a day ahead of the router's clock
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    future = {**json.loads(alert.model_dump_json()), "timestamp": "2999-01-01T00:00:00Z"}
    ahead = alarm_notification(
        "payments-api-Errors", "ALARM", StateChangeTime="2025-06-03T03:30:00.000+0000"
    )
    # WHEN they are routed
    results = [invoke(sns_event(message))["results"][0] for message in (future, ahead)]
    # THEN each is an error naming the field and the start of its value, and nothing is sent
    assert [item["status"] for item in results] == ["error", "error"]
    assert (
        "Records[0].Sns.Message.timestamp: '2999-01-01T00:00:00Z' is more than 5 minutes ahead"
        in results[0]["error"]
    )
    assert (
        "Records[0].Sns.Message.StateChangeTime: '2025-06-03T03:30:00.000+0000' is more than"
        in results[1]["error"]
    )
    assert receiver.requests == {}
    # AND the alert's honest trigger and resolution, minutes later, are not late copies of it
    trigger = invoke(sns_event(json.loads(alert.model_dump_json())))
    resolution = alert.resolution("4 of 4 ready", fake_clock.advance(300))
    resolved = invoke(sns_event(json.loads(resolution.model_dump_json())))
    assert statuses(trigger) + statuses(resolved) == ["sent", "sent"]
    actions = [body["event_action"] for body in receiver.bodies("/pagerduty")]
    assert actions == ["trigger", "resolve"]


def test_a_cloudwatch_alarm_back_in_alarm_soon_after_ok_pages_again(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN an alarm that went to ALARM, then to OK five minutes later
    name = "payments-api-Errors"
    invoke(sns_event(alarm_notification(name, "ALARM")))
    ok = alarm_notification(name, "OK", StateChangeTime="2025-06-02T03:35:00.000+0000")
    fake_clock.advance(300)
    invoke(sns_event(ok))
    # WHEN it is in ALARM again five minutes after that
    fake_clock.advance(300)
    again = alarm_notification(name, "ALARM", StateChangeTime="2025-06-02T03:40:00.000+0000")
    result = invoke(sns_event(again))
    # THEN PagerDuty is triggered again, with the alarm's one dedup key
    assert statuses(result) == ["sent"]
    bodies = receiver.bodies("/pagerduty")
    assert [body["event_action"] for body in bodies] == ["trigger", "resolve", "trigger"]
    assert len({body["dedup_key"] for body in bodies}) == 1


def test_a_late_copy_of_a_trigger_does_not_reopen_its_resolved_incident(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a critical alert that paged, then its resolution
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    trigger = json.loads(alert.model_dump_json())
    invoke(sns_event(trigger))
    resolution = alert.resolution("4 of 4 ready", fake_clock.advance(300))
    invoke(sns_event(json.loads(resolution.model_dump_json())))
    # WHEN a copy of the first trigger arrives after the resolution (a function's retry, a
    # redrive)
    result = invoke(published_again(trigger))
    # THEN it is suppressed as a late copy: PagerDuty stays resolved
    assert (statuses(result), result["results"][0]["late"]) == (["duplicate"], True)
    actions = [body["event_action"] for body in receiver.bodies("/pagerduty")]
    assert actions == ["trigger", "resolve"]


def test_a_resolution_that_arrives_before_its_trigger_is_not_undone_by_it(
    invoke: Invoke, receiver: Any, fake_clock: Any
) -> None:
    # GIVEN a trigger and its resolution, delivered in the wrong order
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    resolution = alert.resolution("4 of 4 ready", fake_clock.advance(300))
    invoke(sns_event(json.loads(resolution.model_dump_json())))
    # WHEN the older trigger arrives after the resolution
    result = invoke(sns_event(json.loads(alert.model_dump_json())))
    # THEN it is not sent: nobody is paged for a condition that has already cleared
    assert statuses(result) == ["duplicate"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["resolve"]


def test_a_post_the_peer_accepted_is_delivered_even_if_its_answer_breaks_off() -> None:
    # GIVEN a peer that answers 200 but hangs up before the body it announced
    with LocalPeer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok") as peer:
        # WHEN a message is posted to it THEN the post counts as delivered (the peer took the
        # message: calling it failed would send it again on the retry)
        post_json(peer.url("/hook"), {"text": "hello"}, timeout_seconds=5)


TRICKLED_LINES = 400
"""How many lines a trickling peer sends, one every 0.15 s: 60 s, far past any post's timeout."""


def test_a_peer_answering_a_header_at_a_time_is_given_up_on_within_the_timeout() -> None:
    # GIVEN a peer that answers 200, then a header line every 0.15 s, each well within the
    # 0.5 s timeout, for 60 s in all
    headers = b"".join(b"x-slow-%d: y\r\n" % index for index in range(TRICKLED_LINES))
    answer = b"HTTP/1.1 200 OK\r\n" + headers + b"content-length: 2\r\n\r\nok"
    # WHEN a message is posted to it with a 0.5 s timeout
    with (
        LocalPeer.trickling_lines(answer, pause_seconds=0.15) as peer,
        pytest.raises(ChannelError) as raised,
    ):
        post_json(peer.url("/hook"), {"text": "hello"}, timeout_seconds=0.5)
    # THEN the post fails as timed out, having hung up before the peer's last header: it was
    # bounded by its timeout, not by when the peer finishes
    assert "timed out" in str(raised.value) or "time is up" in str(raised.value)
    assert peer.cut_off.is_set()


def test_a_body_trickling_after_a_2xx_is_delivered_within_the_timeout() -> None:
    # GIVEN a peer that answers 200 at once, then its body a line every 0.15 s for 60 s
    body = b"".join(b"line %d\n" % index for index in range(TRICKLED_LINES))
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    with LocalPeer.trickling_lines(answer, pause_seconds=0.15) as peer:
        # WHEN a message is posted to it with a 0.5 s timeout
        post_json(peer.url("/hook"), {"text": "hello"}, timeout_seconds=0.5)
    # THEN it counts as delivered (the peer took it), and the post hung up before the body's
    # end instead of waiting for it
    assert peer.cut_off.is_set()


def test_a_peer_that_answers_no_http_is_a_channel_error_naming_its_host() -> None:
    # GIVEN a peer whose answer has no HTTP status line
    # WHEN a message is posted to it THEN it is that channel's error, naming the host only
    with LocalPeer(b"garbage\r\n\r\n") as peer, pytest.raises(ChannelError) as raised:
        post_json(peer.url("/hook"), {"text": "hello"}, timeout_seconds=5)
    assert str(raised.value).startswith("127.0.0.1:")
    assert "/hook" not in str(raised.value)


STALLED_LINES = 150
STALLED_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: %d\r\n\r\n"
    % (len(b"overloaded\n") * (STALLED_LINES + 1) + 2)
    + b"overloaded\n" * STALLED_LINES
)
"""A refusal whose body stops a line and 2 bytes short of its length: sent with its headers and
first body line at once (`lines_at_once=4`), the rest a line every pause (60 s at 0.4 s)."""


def test_a_refusal_whose_body_stalls_is_a_channel_error_within_the_timeout() -> None:
    # GIVEN a peer that answers 503 at once, then the rest of its body a line every 0.4 s for
    # 60 s, never all of it
    # WHEN a message is posted to it with a 0.5 s timeout
    with (
        LocalPeer.trickling_lines(STALLED_REFUSAL, pause_seconds=0.4, lines_at_once=4) as peer,
        pytest.raises(ChannelError) as raised,
    ):
        post_json(peer.url("/hook"), {"text": "hello"}, timeout_seconds=0.5)
    # THEN it is that channel's failure (to retry), naming the status, and the post hung up
    # before the peer's last line: bounded by its timeout, not by the peer
    assert peer.cut_off.is_set()
    assert str(raised.value).startswith("127.0.0.1:")
    assert "answered HTTP 503" in str(raised.value)
    assert not raised.value.permanent


def test_pagerduty_stalling_its_refusals_body_does_not_keep_the_alert_from_slack_and_email(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    attempt_time: AttemptTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN PagerDuty (first on the critical route) answering 503 and stalling its body, with a
    # 0.5 s timeout and one attempt per channel (the secret reads take none of an attempt's
    # simulated time: each request is given its 0.5 s however long moto takes on a busy machine)
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("ROUTER_MAX_ATTEMPTS", "1")
    with LocalPeer.trickling_lines(STALLED_REFUSAL, pause_seconds=0.4, lines_at_once=4) as peer:
        monkeypatch.setenv("PAGERDUTY_EVENTS_URL", peer.url("/hook"))
        # WHEN a critical alert is routed from the queue
        result = invoke(sqs_event(("m-1", fleet_alert("critical"))))
    # THEN PagerDuty failed and the message goes back for it, while Slack and e-mail took it
    channels = channels_of(result["results"][0])
    assert channels["pagerduty"]["status"] == "failed"
    assert "answered HTTP 503" in channels["pagerduty"]["error"]
    assert (channels["slack"]["status"], channels["email"]["status"]) == ("sent", "sent")
    assert len(receiver.bodies("/slack")) == 1
    assert len(email_inbox.receive()) == 1
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert peer.cut_off.is_set()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_refusal_not_followed_with_the_message_dropped(status: int) -> None:
    # GIVEN a peer that redirects every POST to a page that answers any GET with 200
    methods: list[str] = []

    def reply(request: PeerRequest) -> PeerReply:
        methods.append(f"{request.method} {request.path}")
        if request.method == "POST":
            return PeerReply(http_answer(status, {"Location": "/moved"}))
        return PeerReply(http_answer(200, body=b"ok"))

    with LocalPeer.responding(reply) as peer, pytest.raises(ChannelError) as raised:
        # WHEN a message is posted to it
        post_json(peer.url("/hook"), {"text": "hello"}, timeout_seconds=5)
    # THEN the redirect is the channel's refusal, tried once per delivery, and was not followed
    # (urllib would re-send the POST as a GET without the message, and its 200 read as delivered)
    assert str(raised.value).startswith(f"127.0.0.1:{peer.port} answered HTTP {status}")
    assert raised.value.permanent
    assert methods == ["POST /hook"]


@dataclass
class RecordingFault:
    """Fails every attempt to record that `channel` took an alert until `healed`."""

    channel: str
    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        item = json.loads(request.body or b"{}").get("Item", {})
        if (
            not self.healed
            and item.get("sk", {}).get("S") == "VALUE#delivered"
            and self.channel in json.loads(item["data"]["S"])["channels"]
        ):
            self.attempts += 1
            raise EndpointConnectionError(endpoint_url=request.url)


def _fail_recording_delivery_to(channel: str) -> RecordingFault:
    """Make the router's state table fail to record `channel`'s deliveries (every attempt)."""
    fault = RecordingFault(channel)
    router_client = app.FUNCTION.services().hub_client("dynamodb")
    router_client.meta.events.register_first("before-send.dynamodb.PutItem", fault)
    return fault


def _before_recording_a_notice(invoke: Invoke, write: Callable[[], None]) -> list[int]:
    """Run `write` (another invocation recording its notice) each time the router is about to
    write an alert's newest-notice record, between its read and its write; the calls made."""
    calls: list[int] = []

    def interleave(params: dict[str, Any], **_: Any) -> None:
        if params["Item"]["sk"]["S"] == "VALUE#last_notice":
            calls.append(len(calls))
            write()

    router_client = app.FUNCTION.services().hub_client("dynamodb")
    router_client.meta.events.register("before-parameter-build.dynamodb.PutItem", interleave)
    return calls


def _notice_record(state_table: Any, alert: Alert) -> dict[str, Any] | None:
    return state_table.get_value(f"notification_router/{alert.id}", "last_notice")


def test_a_new_failure_handled_while_its_resolution_is_recorded_still_pages(
    invoke: Invoke, receiver: Any, fake_clock: Any, state_table: Any
) -> None:
    # GIVEN a critical alert that paged
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    assert statuses(invoke(sns_event(json.loads(alert.model_dump_json())))) == ["sent"]
    resolved_at = fake_clock.advance(300)
    again = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.advance(300)))
    # AND another invocation recording the alert's resolution just after this one read the
    # record (still the trigger's) and before it wrote its own

    def record_resolution() -> None:
        state_table.put_value(
            f"notification_router/{alert.id}",
            "last_notice",
            {"phase": "resolved", "episode": 1, "timestamp": resolved_at.isoformat()},
        )

    interleaved = _before_recording_a_notice(invoke, record_resolution)
    # WHEN the check's new failure is routed
    result = invoke(sns_event(json.loads(again.model_dump_json())))
    # THEN it is judged by the resolution's record, not the trigger's: a new episode, paged
    assert statuses(result) == ["sent"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "trigger",
    ]
    assert _notice_record(state_table, alert) == {
        "phase": "open",
        "episode": 2,
        "timestamp": again.timestamp.isoformat().replace("+00:00", "Z"),
    }
    assert interleaved == [0, 1]


def test_an_alert_record_changed_at_every_read_is_retried_not_judged(
    invoke: Invoke, receiver: Any, fake_clock: Any, state_table: Any
) -> None:
    # GIVEN a critical alert that paged, and other invocations that change its record between
    # every read and write of this one
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    invoke(sns_event(json.loads(alert.model_dump_json())))
    episodes = iter(range(1, 100))

    def record_another_notice() -> None:
        state_table.put_value(
            f"notification_router/{alert.id}",
            "last_notice",
            {"phase": "open", "episode": next(episodes), "timestamp": "2020-01-01T00:00:00Z"},
        )

    interleaved = _before_recording_a_notice(invoke, record_another_notice)
    resolution = alert.resolution("4 of 4 ready", fake_clock.advance(300))
    # WHEN its resolution is routed from the queue
    result = invoke(sqs_event(("m-resolve", json.loads(resolution.model_dump_json()))))
    # THEN after 5 reads it gives up without sending, and the message is to be retried
    assert statuses(result) == ["in_progress"]
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-resolve"}]
    assert len(interleaved) == 5
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]


def test_slack_that_took_an_alert_is_not_posted_again_when_recording_it_fails(
    invoke: Invoke, receiver: Any, email_inbox: Any
) -> None:
    # GIVEN a router whose state table fails (after botocore's retries) to record that Slack
    # took an alert, while Slack answers 200
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    email_inbox.receive()
    fault = _fail_recording_delivery_to("slack")
    alert = fleet_alert("critical")
    # WHEN a critical alert is routed from the queue
    first = invoke(sqs_event(("m-1", alert)))
    fault.healed = True
    # AND its message is delivered again (an SQS redelivery)
    again = invoke(sqs_event(("m-1", alert)))
    # THEN the first delivery went on to e-mail and finished: Slack was posted once, every
    # channel has the alert once, and the redelivery is known as one
    assert fault.attempts >= 1
    assert statuses(first) == ["sent"]
    assert first["batchItemFailures"] == []
    assert statuses(again) == ["redelivered"]
    assert len(receiver.bodies("/slack")) == 1
    assert len(receiver.bodies("/pagerduty")) == 1
    assert len(email_inbox.receive()) == 1


def test_a_message_whose_routing_raises_is_reported_and_the_next_error_names_its_own_record(
    invoke: Invoke, receiver: Any
) -> None:
    # GIVEN a router whose state table refuses every write about one alert (botocore's retries
    # included)
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    alert = fleet_alert("critical")

    def fault(request: Any, **_: Any) -> None:
        if alert["id"].encode() in (request.body or b""):
            raise EndpointConnectionError(endpoint_url=request.url)

    router_client = app.FUNCTION.services().hub_client("dynamodb")
    router_client.meta.events.register_first("before-send.dynamodb.PutItem", fault)
    # WHEN a batch holds that alert, then an unreadable body
    result = invoke(sqs_event(("m-1", alert), ("m-2", "[]")))
    # THEN both go back to the queue, the first is in the result as failed with its error, and
    # the second's error names its own record
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]
    assert [item["message_id"] for item in result["results"]] == ["m-1", "m-2"]
    assert statuses(result) == ["failed", "error"]
    assert "EndpointConnectionError" in result["results"][0]["error"]
    assert "Records[1].body: expected a JSON object" in result["results"][1]["error"]
    assert receiver.bodies("/pagerduty") == []


def test_a_pagerduty_outage_longer_than_the_window_does_not_repeat_slack_and_email(
    invoke: Invoke, receiver: Any, email_inbox: Any, fake_clock: Any
) -> None:
    # GIVEN PagerDuty answering 500 for 20 minutes while Slack and e-mail work
    receiver.fail("/pagerduty", 500, times=4 * 3)
    alert = fleet_alert("critical")
    # WHEN a critical alert arrives through SQS and is redelivered every 6 minutes (the queue's
    # visibility timeout), past the 15-minute dedup window, until PagerDuty takes it
    results = []
    for _ in range(5):
        results.append(invoke(sqs_event(("m-1", alert))))
        fake_clock.advance(360)
    # THEN it was handed back until paged, and Slack and e-mail got it once
    assert [statuses(result) for result in results] == [["failed"]] * 4 + [["sent"]]
    assert len(receiver.bodies("/pagerduty")) == 13
    assert len(receiver.bodies("/slack")) == 1
    assert len(email_inbox.receive()) == 1


def test_an_email_or_secret_call_as_slow_as_its_client_allows_fits_one_attempts_time(
    invoke: Invoke,
) -> None:
    # GIVEN the router's client for the e-mail topic (the secrets are read with the same
    # configuration)
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    services = app.FUNCTION.services()
    config = services.sns_client(REGION).meta.config
    # WHEN a call connects as slowly and then waits for its answer as long as botocore lets it
    slowest_call = config.connect_timeout + config.read_timeout
    # THEN it still ends within the HTTP timeout, the time the delivery loop keeps for one
    # channel attempt besides its margin for the state table, and it is not retried
    assert slowest_call <= services.environment.router_http_timeout_seconds
    # AND a failing publish is not retried by botocore: the 3 delivery attempts make 3 calls
    fault = fail_every_attempt(services.sns_client(REGION), "sns", "Publish")
    result = invoke(sqs_event(("m-1", fleet_alert("info"))))
    assert statuses(result) == ["failed"]
    assert fault.attempts == 3


def test_an_email_publish_answered_with_a_proxy_page_is_a_failed_attempt_of_that_channel(
    invoke: Invoke,
) -> None:
    # GIVEN the router's client for the e-mail topic, whose Publish a gateway answers with its
    # well-formed HTML page (HTTP 200)
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    sns = app.FUNCTION.services().sns_client(REGION)
    page = answer_malformed(sns, "sns", "Publish", b"<html><body>Bad gateway</body></html>")
    # WHEN an info alert (e-mail only) is routed
    result = invoke(sqs_event(("m-1", fleet_alert("info"))))
    # THEN each of the delivery loop's attempts failed on the page, as for an SNS error, and
    # the channel's error names the call; the message is handed back for a later delivery
    assert statuses(result) == ["failed"]
    assert page.answered == 3
    [item] = result["results"]
    assert "Publish answered without <PublishResponse>" in channels_of(item)["email"]["error"]
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]


@pytest.fixture
def router_queue(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """The router's queue (ROUTER_QUEUE_URL), its visibility timeout 0: a message handed back is
    visible again at once unless the router delays it."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(
        QueueName="lambda-fleet-dev-notification_router-queue",
        Attributes={"VisibilityTimeout": "0"},
    )["QueueUrl"]
    monkeypatch.setenv("ROUTER_QUEUE_URL", queue_url)
    return sqs, queue_url


def _queued_event(router_queue: tuple[Any, str], *alerts: dict[str, Any]) -> dict[str, Any]:
    """The SQS event of `alerts` sent to and received from the router's queue."""
    sqs, queue_url = router_queue
    for alert in alerts:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(alert))
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == len(alerts)
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:router-queue",
            }
            for message in messages
        ]
    }


def _visible(router_queue: tuple[Any, str]) -> list[dict[str, Any]]:
    sqs, queue_url = router_queue
    return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])


def test_pagerduty_asking_to_retry_after_a_few_seconds_is_waited_for_and_paged_at_once(
    invoke: Invoke, receiver: Any, sleeps: list[float]
) -> None:
    # GIVEN PagerDuty answering 429 with Retry-After: 3 (within the 5 s HTTP timeout), then 202
    receiver.answer("/pagerduty", (429, {"Retry-After": "3"}), 202)
    # WHEN a critical alert arrives through SQS
    result = invoke(sqs_event(("m-1", fleet_alert("critical"))))
    # THEN the router waited the 3 s PagerDuty asked for (not its 0.5 s backoff) and paged in
    # the same invocation
    channels = channels_of(result["results"][0])
    assert (channels["pagerduty"]["status"], channels["pagerduty"]["attempts"]) == ("sent", 2)
    assert sleeps == [3.0]
    assert result["batchItemFailures"] == []
    assert len(receiver.bodies("/pagerduty")) == 2


def test_pagerduty_asking_to_retry_after_30_minutes_gets_the_message_back_only_then(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fake_clock: Any,
    router_queue: tuple[Any, str],
) -> None:
    # GIVEN PagerDuty answering 429 with Retry-After: 1800 (past the 15-minute dedup window),
    # then 202, and a critical alert received from the router's queue
    receiver.answer("/pagerduty", (429, {"Retry-After": "1800"}), 202)
    event = _queued_event(router_queue, fleet_alert("critical"))
    # WHEN it is routed
    result = invoke(event)
    # THEN PagerDuty was called once, not again within the invocation; Slack and e-mail took it
    [item] = result["results"]
    channels = channels_of(item)
    assert (channels["pagerduty"]["status"], channels["pagerduty"]["attempts"]) == ("failed", 1)
    assert channels["pagerduty"]["retry_after_seconds"] == 1800
    assert (channels["slack"]["status"], channels["email"]["status"]) == ("sent", "sent")
    assert len(receiver.bodies("/pagerduty")) == 1
    # AND the message goes back to the queue, visible again only after the 1800 s
    assert result["batchItemFailures"] == [{"itemIdentifier": item["message_id"]}]
    assert (item["retry_after_seconds"], item["visible_again_in_seconds"]) == (1800, 1800)
    assert _visible(router_queue) == []
    # WHEN it comes back 30 minutes later
    fake_clock.advance(1800)
    retry = invoke(event)
    # THEN PagerDuty is paged, and Slack and e-mail are not sent again
    assert {name: c["status"] for name, c in channels_of(retry["results"][0]).items()} == {
        "pagerduty": "sent",
        "slack": "already_sent",
        "email": "already_sent",
    }
    assert retry["batchItemFailures"] == []
    assert len(receiver.bodies("/pagerduty")) == 2
    assert len(receiver.bodies("/slack")) == 1
    assert len(email_inbox.receive()) == 1


@pytest.mark.parametrize(("receive_count", "backoff"), [(1, 2), (4, 1024)])
def test_pagerduty_asking_to_retry_after_0_gets_the_message_back_only_after_the_backoff(
    invoke: Invoke,
    receiver: Any,
    sleeps: list[float],
    router_queue: tuple[Any, str],
    *,
    receive_count: int,
    backoff: int,
) -> None:
    # GIVEN PagerDuty answering every call with 429 and Retry-After: 0, and a critical alert
    # the router's queue hands out for the receive_count-th time
    receiver.answer("/pagerduty", *[(429, {"Retry-After": "0"})] * 3)
    event = _queued_event(router_queue, fleet_alert("critical"))
    event["Records"][0]["attributes"] = {"ApproximateReceiveCount": str(receive_count)}
    # WHEN it is routed
    result = invoke(event)
    # THEN PagerDuty was tried its 3 attempts after the router's own backoff each time, and the
    # message is visible again only after the backoff before its next attempt (0.5 s doubled
    # per attempt over every receive, 3 attempts each), not at once: its 5 receives are not
    # spent in seconds
    [item] = result["results"]
    pagerduty = channels_of(item)["pagerduty"]
    assert (pagerduty["status"], pagerduty["attempts"]) == ("failed", 3)
    assert pagerduty["retry_after_seconds"] == 0
    assert sleeps == [0.5, 1.0]
    assert result["batchItemFailures"] == [{"itemIdentifier": item["message_id"]}]
    assert (item["retry_after_seconds"], item["visible_again_in_seconds"]) == (backoff, backoff)


def test_a_rate_limited_pagerduty_is_not_called_by_the_next_messages_of_the_batch(
    invoke: Invoke, receiver: Any, router_queue: tuple[Any, str]
) -> None:
    # GIVEN PagerDuty answering 429 with Retry-After: 120 to the first call, and a batch of two
    # critical alerts from the router's queue
    receiver.answer("/pagerduty", (429, {"Retry-After": "120"}))
    event = _queued_event(
        router_queue, fleet_alert("critical"), fleet_alert("critical", title="disk full")
    )
    # WHEN the batch is routed
    result = invoke(event)
    # THEN PagerDuty was called once: the second alert waits for the same 120 s without a call
    assert len(receiver.bodies("/pagerduty")) == 1
    assert [channels_of(item)["pagerduty"]["status"] for item in result["results"]] == [
        "failed",
        "not_started",
    ]
    assert [item["visible_again_in_seconds"] for item in result["results"]] == [120, 120]
    assert len(result["batchItemFailures"]) == 2
    assert _visible(router_queue) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("86400", 3600.0),
        ("Fri, 27 Nov 2026 05:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 05:00:00 GMT", 3600.0),
        ("Fri, 27 Nov 2026 04:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date_and_honoured_for_an_hour_at_most(
    header: str | None, expected: float | None
) -> None:
    # GIVEN a Retry-After header WHEN read at 05:00:00 THEN it is the seconds to wait, at most an
    # hour, or None
    now = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected


def test_a_resolution_goes_only_to_the_channels_that_took_the_alert(
    invoke: Invoke, receiver: Any, email_inbox: Any, fake_clock: Any
) -> None:
    # GIVEN an info alert, e-mailed only (its route), and a warning escalated to critical,
    # which reached Slack and e-mail, then PagerDuty too
    info = Alert.model_validate(fleet_alert("info", title="FYI", timestamp=fake_clock.now()))
    invoke(sns_event(json.loads(info.model_dump_json())))
    warning = Alert.model_validate(fleet_alert("warning", timestamp=fake_clock.now()))
    invoke(sns_event(json.loads(warning.model_dump_json())))
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.advance(60)))
    invoke(sns_event(json.loads(critical.model_dump_json())))
    email_inbox.receive()
    posted = (len(receiver.bodies("/pagerduty")), len(receiver.bodies("/slack")))
    assert posted == (1, 2)
    # WHEN both are resolved (the resolved route is PagerDuty, Slack and e-mail)
    cleared_at = fake_clock.advance(300)
    info_resolved = invoke(
        sns_event(json.loads(info.resolution("ok", cleared_at).model_dump_json()))
    )
    critical_resolved = invoke(
        sns_event(json.loads(critical.resolution("ok", cleared_at).model_dump_json()))
    )
    # THEN the info's resolution is only e-mailed: Slack posts no "resolved" for something
    # nobody saw there, and PagerDuty gets no resolve for an incident it never had
    assert {name: c["status"] for name, c in channels_of(info_resolved["results"][0]).items()} == {
        "pagerduty": "skipped",
        "slack": "skipped",
        "email": "sent",
    }
    assert statuses(info_resolved) == ["sent"]
    # AND the escalated alert's resolution reaches every channel that had either notice
    assert statuses(critical_resolved) == ["sent"]
    assert {c["status"] for c in critical_resolved["results"][0]["channels"]} == {"sent"}
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
    ]
    assert [body["text"][:10] for body in receiver.bodies("/slack")][2:] == ["[RESOLVED]"]
    assert len(email_inbox.receive()) == 2


def test_a_resolution_whose_alert_left_no_record_goes_to_every_channel_of_its_route(
    invoke: Invoke, receiver: Any, email_inbox: Any, fake_clock: Any
) -> None:
    # GIVEN an info alert e-mailed 15 days ago: its records (kept 14 days) have expired
    info = Alert.model_validate(fleet_alert("info", title="FYI", timestamp=fake_clock.now()))
    invoke(sns_event(json.loads(info.model_dump_json())))
    email_inbox.receive()
    fake_clock.advance(15 * 24 * 3600)
    # WHEN its resolution arrives
    resolution = info.resolution("ok", fake_clock.now())
    result = invoke(sns_event(json.loads(resolution.model_dump_json())))
    # THEN nothing says which channels had it: it goes to every channel of the resolved route
    assert {c["status"] for c in result["results"][0]["channels"]} == {"sent"}
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["resolve"]
    assert [body["text"][:10] for body in receiver.bodies("/slack")] == ["[RESOLVED]"]
    assert len(email_inbox.receive()) == 1


def test_a_resolution_of_an_alert_no_channel_took_goes_to_none(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    fake_clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a warning routed to Slack alone, whose webhook failed every attempt
    monkeypatch.setenv("ROUTER_ROUTES", "warning=slack,info=email,resolved=slack+email")
    receiver.answer("/slack", *[500] * 3)
    warning = Alert.model_validate(fleet_alert("warning", timestamp=fake_clock.now()))
    assert statuses(invoke(sqs_event(("m-1", json.loads(warning.model_dump_json()))))) == ["failed"]
    # WHEN its resolution arrives
    resolution = warning.resolution("ok", fake_clock.advance(300))
    result = invoke(sns_event(json.loads(resolution.model_dump_json())))
    # THEN no channel gets it: Slack posts no "[RESOLVED]" for a warning it never showed, and
    # e-mail no notice of one nobody was told of
    assert {name: c["status"] for name, c in channels_of(result["results"][0]).items()} == {
        "slack": "skipped",
        "email": "skipped",
    }
    assert len(receiver.bodies("/slack")) == 3
    assert email_inbox.receive() == []


def test_a_resolution_reaches_a_channel_whose_alert_timed_out_after_it_was_sent(
    invoke: Invoke,
    receiver: Any,
    fake_clock: Any,
    attempt_time: AttemptTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a critical alert whose PagerDuty calls read the request and never answered (0.25 s
    # timeout, each request given all of it: the secret reads take none of an attempt's
    # simulated time): PagerDuty may have opened the incident
    monkeypatch.setenv("ROUTER_HTTP_TIMEOUT_SECONDS", "0.25")
    receiver.hang("/pagerduty")
    alert = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    assert statuses(invoke(sqs_event(("m-1", json.loads(alert.model_dump_json()))))) == ["failed"]
    receiver.heal("/pagerduty")
    # WHEN its resolution arrives
    resolution = alert.resolution("ok", fake_clock.advance(300))
    result = invoke(sns_event(json.loads(resolution.model_dump_json())))
    # THEN PagerDuty gets the resolve: an incident it may have must not stay open
    assert channels_of(result["results"][0])["pagerduty"]["status"] == "sent"
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["resolve"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, b"invalid_payload"), (403, b"invalid_token"), (410, b"channel_is_archived")],
)
def test_a_slack_refusal_the_same_post_would_get_again_is_tried_once_per_delivery(
    invoke: Invoke,
    receiver: Any,
    email_inbox: Any,
    sleeps: list[float],
    *,
    status: int,
    reason: bytes,
) -> None:
    # GIVEN Slack refusing a post with a 4xx that no retry within seconds changes
    receiver.answer("/slack", (status, {}, reason))
    alert = fleet_alert("warning")
    # WHEN a warning arrives through SQS
    result = invoke(sqs_event(("m-1", alert)))
    # THEN Slack was posted once, without backoff, its reason is reported, e-mail took it, and
    # the message goes back to the queue (whose receive limit takes it to the dead-letter queue
    # if Slack never takes it)
    slack = channels_of(result["results"][0])["slack"]
    assert (slack["status"], slack["attempts"]) == ("failed", 1)
    assert f"HTTP {status}: {reason.decode()}" in slack["error"]
    assert sleeps == []
    assert len(receiver.bodies("/slack")) == 1
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    # WHEN it is redelivered once the webhook is fixed THEN Slack takes it, e-mail is not repeated
    retry = invoke(sqs_event(("m-1", alert)))
    assert statuses(retry) == ["sent"]
    assert channels_of(retry["results"][0])["slack"]["status"] == "sent"
    assert len(email_inbox.receive()) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_slack_error_that_may_pass_is_retried_with_backoff_in_the_invocation(
    invoke: Invoke, receiver: Any, sleeps: list[float], status: int
) -> None:
    # GIVEN Slack answering a timeout, a 429 without Retry-After or a 5xx twice, then 200
    receiver.fail("/slack", status, times=2)
    # WHEN a warning is routed THEN Slack takes it on the third attempt, after the backoffs
    result = invoke(sqs_event(("m-1", fleet_alert("warning"))))
    slack = channels_of(result["results"][0])["slack"]
    assert (slack["status"], slack["attempts"]) == ("sent", 3)
    assert sleeps == [0.5, 1.0]


def test_an_email_publish_answered_without_a_message_id_is_a_failed_attempt_of_that_channel(
    invoke: Invoke,
) -> None:
    # GIVEN the router's client for the e-mail topic, whose Publish is answered with SNS's own
    # answer but without the MessageId SNS gives every message it took (HTTP 200)
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    sns = app.FUNCTION.services().sns_client(REGION)
    answer = answer_malformed(
        sns,
        "sns",
        "Publish",
        b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
        b"</PublishResult></PublishResponse>",
    )
    # WHEN an info alert (e-mail only) is routed
    result = invoke(sqs_event(("m-1", fleet_alert("info"))))
    # THEN each attempt failed naming the call and what its answer lacked, where the channel
    # counted as having taken the alert; the message is handed back for a later delivery
    [item] = result["results"]
    email = channels_of(item)["email"]
    assert (item["status"], email["status"], answer.answered) == ("failed", "failed", 3)
    assert "Publish answered without MessageId" in email["error"]
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
