"""deliver_once: the dedup claim is completed only after SNS took the alert."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from fleet_shared.alert_delivery import AlertNotDeliveredError, deliver_once
from fleet_shared.alerts import Alert, AlertPublisher
from fleet_shared.clock import ManualClock
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.sessions import CLIENT_CONFIG
from fleet_shared.state_table import StateTable
from tests.handlers.conftest import REGION, AlertInbox
from tests.handlers.faults import fail_every_attempt

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
    return AlertPublisher(sns_client, load_environment(FunctionEnvironment))


def test_failed_publish_releases_the_claim_so_the_retry_delivers_exactly_once(
    state_table: StateTable,
    publisher: AlertPublisher,
    sns_client: Any,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    # GIVEN SNS failing on every attempt, botocore's retries included
    fault = fail_every_attempt(sns_client, "sns", "Publish")
    alert = _alert(fake_clock)
    # WHEN the alert is delivered under a dedup key
    with pytest.raises(AlertNotDeliveredError):
        deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600)
    # THEN botocore really retried, and nothing reached the topic
    assert fault.attempts == FLEET_MAX_ATTEMPTS
    assert alert_inbox.receive() == []
    # WHEN SNS is healthy again and the same event is retried
    fault.healed = True
    message_id = deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600)
    # THEN the alert goes out once, and a further repeat is a duplicate
    assert message_id is not None
    assert deliver_once(state_table, publisher, "event-1", alert, ttl_seconds=3600) is None
    received = alert_inbox.receive()
    assert [item.alert["title"] for item in received] == ["Root console login"]


def test_a_delivered_key_is_delivered_again_after_its_ttl(
    state_table: StateTable,
    publisher: AlertPublisher,
    alert_inbox: AlertInbox,
    fake_clock: ManualClock,
) -> None:
    # GIVEN an alert delivered under a key with a one-hour window
    alert = _alert(fake_clock)
    assert deliver_once(state_table, publisher, "incident", alert, ttl_seconds=3600)
    # WHEN the window has passed
    fake_clock.advance(3601)
    # THEN the same key is delivered again
    assert deliver_once(state_table, publisher, "incident", alert, ttl_seconds=3600)
    assert len(alert_inbox.receive()) == 2
