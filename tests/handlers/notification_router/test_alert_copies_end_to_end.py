"""A fleet alert SNS took twice, from its publisher to the channels: the fleet's `AlertPublisher`
on the real alert topic, the router's queue subscribed to it (moto), the router's handler fed what
reached the queue, Slack and PagerDuty on 127.0.0.1 and the e-mail topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.clock import ManualClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.sessions import CLIENT_CONFIG
from tests.handlers.conftest import REGION


def router_queue(fleet_environment: dict[str, str]) -> Callable[[], dict[str, Any]]:
    """The critical alert topic with a queue subscribed to it, as the program wires the router's
    queue; the result takes what reached the queue as the SQS event Lambda would hand the router."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_name = fleet_environment["ALERT_TOPIC_CRITICAL_ARN"].rsplit(":", 1)[1]
    topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName="router-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def take() -> dict[str, Any]:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "eventSource": "aws:sqs",
                    "body": message["Body"],
                }
                for message in messages
            ]
        }

    return take


@pytest.mark.parametrize(
    ("second_copy_after_seconds", "copies_per_channel"),
    [
        # Lambda's retry of the publisher's failed invocation, a minute later: within the
        # router's dedup window (ROUTER_DEDUP_WINDOW_SECONDS, 900 s), a duplicate.
        (60, 1),
        # The publisher's next scheduled run (performance_analyzer's, 4 hours later) or a
        # redrive from its dead-letter queue: past the window, sent again.
        (4 * 3600, 2),
    ],
    ids=["platform-retry", "next-scheduled-run"],
)
def test_an_alert_sns_took_twice_reaches_each_channel_once_only_within_the_dedup_window(  # noqa: PLR0917
    invoke: Callable[..., dict[str, Any]],
    receiver: Any,
    email_inbox: Any,
    fleet_environment: dict[str, str],
    fake_clock: ManualClock,
    second_copy_after_seconds: int,
    copies_per_channel: int,
) -> None:
    # GIVEN a function publishing a critical alert on the real alert topic, whose queue the
    # router consumes
    take_from_router_queue = router_queue(fleet_environment)
    publisher = AlertPublisher(
        boto3.client("sns", region_name=REGION, config=CLIENT_CONFIG),
        load_environment(FunctionEnvironment),
        "security_scanner",
    )

    def alert_now() -> Alert:
        return Alert.create(
            severity="critical",
            source="security_scanner",
            title="Root console login",
            detail="root signed in without MFA",
            resource="arn:aws:iam::222222222222:root",
            timestamp=fake_clock.now(),
        )

    # WHEN SNS takes the alert, the router handles it, and SNS takes the same alert (same id)
    # again later, which the router handles in turn
    publisher.publish(alert_now())
    first = invoke(take_from_router_queue())
    fake_clock.advance(second_copy_after_seconds)
    publisher.publish(alert_now())
    second = invoke(take_from_router_queue())
    # THEN within the router's dedup window the second copy is a duplicate: each channel of the
    # critical route got the alert once; past it, each channel got it twice
    assert first["results"][0]["status"] == "sent"
    assert second["results"][0]["status"] == ("duplicate" if copies_per_channel == 1 else "sent")
    assert first["results"][0]["alert_id"] == second["results"][0]["alert_id"]
    assert len(receiver.bodies("/slack")) == copies_per_channel
    assert len(receiver.bodies("/pagerduty")) == copies_per_channel
    assert len(email_inbox.receive()) == copies_per_channel
