"""Behaviour of fleet_shared.alerts: the alert model, and publishing through moto SNS to SQS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from fleet_shared.alerts import SUBJECT_MAX_LENGTH, Alert, AlertPublisher, Severity
from fleet_shared.environment import FunctionEnvironment, load_environment
from fleet_shared.exceptions import ConfigurationError

MOMENT = datetime(2025, 6, 2, 3, 30, tzinfo=UTC)


def make_alert(severity: Severity = Severity.WARNING, title: str = "Node group degraded") -> Alert:
    return Alert.create(
        severity=severity,
        source="health_monitor",
        title=title,
        detail="2 of 3 nodes NotReady",
        resource="222222222222/ap-south-1/dev-apps/system",
        account_id="222222222222",
        region="ap-south-1",
        timestamp=MOMENT,
    )


def test_same_problem_gets_the_same_id() -> None:
    # GIVEN the same source, resource and title found at different times and severities
    first = make_alert()
    later = Alert.create(
        severity="critical",
        source="health_monitor",
        title="Node group degraded",
        detail="3 of 3 nodes NotReady",
        resource="222222222222/ap-south-1/dev-apps/system",
        timestamp=MOMENT + timedelta(hours=1),
    )
    # WHEN their ids are compared THEN they match, and a different title differs
    assert first.id == later.id
    assert len(first.id) == 16
    assert make_alert(title="Endpoint down").id != first.id


def test_explicit_id_is_kept() -> None:
    # GIVEN an id from an upstream system WHEN the alert is created THEN that id is used
    alert = Alert.create(
        severity="info", source="security_scanner", title="t", detail="d", resource="r", id="gd-1"
    )
    assert alert.id == "gd-1"


def test_alert_serialises_with_iso_utc_timestamp_and_round_trips() -> None:
    # GIVEN an alert stamped in another time zone
    ist = timezone(timedelta(hours=5, minutes=30))
    alert = make_alert().model_copy(update={"timestamp": MOMENT.astimezone(ist)})
    validated = Alert.model_validate(alert.model_dump())
    # WHEN serialised THEN the timestamp is UTC with a Z, and the JSON reads back equal
    document = json.loads(validated.model_dump_json())
    assert document["timestamp"] == "2025-06-02T03:30:00Z"
    assert document["severity"] == "warning"
    assert Alert.model_validate_json(validated.model_dump_json()) == validated


def test_unknown_severity_and_extra_fields_are_rejected() -> None:
    # GIVEN an alert document with a made-up severity, or a field the model does not have
    document: dict[str, Any] = json.loads(make_alert().model_dump_json())
    # WHEN validated THEN pydantic refuses both
    with pytest.raises(ValidationError):
        Alert.model_validate({**document, "severity": "urgent"})
    with pytest.raises(ValidationError):
        Alert.model_validate({**document, "owner": "team-a"})


def test_subject_is_one_ascii_line_of_fewer_than_100_characters() -> None:
    # GIVEN a very long title with a line break and non-ASCII characters
    alert = make_alert(title="Café → cluster\ndev-apps " + "x" * 200)
    # WHEN the subject is built
    subject = alert.subject()
    # THEN it is trimmed, marked as trimmed, ASCII and on one line
    assert len(subject) == SUBJECT_MAX_LENGTH < 100
    assert subject.startswith("[WARNING] Cafe cluster dev-apps xxx")
    assert subject.endswith("...")
    assert subject.isascii()
    assert "\n" not in subject


def test_publisher_needs_the_default_topic() -> None:
    # GIVEN no ALERT_TOPIC_ARN WHEN a publisher is built THEN the variable is named
    with pytest.raises(ConfigurationError) as raised:
        AlertPublisher(
            boto3.client("sns", region_name="ap-south-1"), FunctionEnvironment(), "health_monitor"
        )
    assert raised.value.variable == "ALERT_TOPIC_ARN"


def test_alert_is_published_to_its_severitys_topic_with_attributes(alert_inbox: Any) -> None:
    # GIVEN the deployed alert topics and a publisher
    environment = load_environment(FunctionEnvironment)
    publisher = AlertPublisher(
        boto3.client("sns", region_name="ap-south-1"), environment, "health_monitor"
    )
    # WHEN one alert of each severity is published
    for severity in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        publisher.publish(make_alert(severity))
    # THEN each reached its own topic, as JSON, with severity and source attributes
    received = {message.alert["severity"]: message for message in alert_inbox.receive()}
    assert received["critical"].topic_arn == environment.alert_topic_critical_arn
    assert received["warning"].topic_arn == environment.alert_topic_arn
    assert received["info"].topic_arn == environment.alert_topic_info_arn
    assert received["critical"].attributes == {"severity": "critical", "source": "health_monitor"}
    assert received["critical"].subject == "[CRITICAL] Node group degraded"
    assert Alert.model_validate(received["critical"].alert) == make_alert(Severity.CRITICAL)


def test_severity_without_its_own_topic_goes_to_the_default(
    alert_inbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no per-severity topics configured
    monkeypatch.delenv("ALERT_TOPIC_CRITICAL_ARN")
    monkeypatch.delenv("ALERT_TOPIC_INFO_ARN")
    environment = load_environment(FunctionEnvironment)
    publisher = AlertPublisher(
        boto3.client("sns", region_name="ap-south-1"), environment, "health_monitor"
    )
    # WHEN a critical alert is published THEN it goes to ALERT_TOPIC_ARN
    publisher.publish(make_alert(Severity.CRITICAL))
    [message] = alert_inbox.receive()
    assert message.topic_arn == environment.alert_topic_arn
