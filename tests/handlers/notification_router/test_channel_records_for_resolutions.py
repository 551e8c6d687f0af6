"""notification_router when the state table fails to write the record that a channel took an
alert, the record the alert's resolution goes by: the fault injected in botocore's send step of
the router's own DynamoDB client, so its retries run; Slack and PagerDuty are the local
receiver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import EndpointConnectionError

from fleet_shared.alerts import Alert
from handlers.notification_router import app
from tests.handlers.notification_router.test_notification_router import (
    Invoke,
    channels_of,
    fleet_alert,
    sns_event,
    sqs_event,
    statuses,
)


@dataclass
class AlertedRecordFault:
    """Fails every attempt to write the record that `channel` took an alert (the one its
    resolution goes by) until `healed`."""

    channel: str
    attempts: int = 0
    healed: bool = False

    def __call__(self, request: Any, **_: Any) -> None:
        item = json.loads(request.body or b"{}").get("Item", {})
        if not self.healed and item.get("sk", {}).get("S") == f"VALUE#alerted/{self.channel}":
            self.attempts += 1
            raise EndpointConnectionError(endpoint_url=request.url)


def test_a_page_whose_record_for_its_resolution_failed_is_retried_and_later_resolved(
    invoke: Invoke, receiver: Any, email_inbox: Any, fake_clock: Any
) -> None:
    # GIVEN a router whose state table fails (after botocore's retries) to write the record
    # that PagerDuty took an alert, the record the alert's resolution goes by
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    email_inbox.receive()
    fault = AlertedRecordFault("pagerduty")
    app.FUNCTION.services().hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb.PutItem", fault
    )
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    event = sqs_event(("m-1", json.loads(critical.model_dump_json())))
    # WHEN a critical alert is routed from the queue, and redelivered once the table heals
    first = invoke(event)
    fault.healed = True
    again = invoke(event)
    # THEN every channel took it once, but the message went back to the queue naming the
    # missing record; the redelivery sent nothing and wrote it
    assert fault.attempts >= 1
    assert {c["status"] for c in first["results"][0]["channels"]} == {"sent"}
    assert statuses(first) == ["failed"]
    assert "not recorded that pagerduty took the alert" in first["results"][0]["error"]
    assert first["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert {c["status"] for c in again["results"][0]["channels"]} == {"already_sent"}
    assert statuses(again) == ["sent"]
    assert (len(receiver.bodies("/pagerduty")), len(email_inbox.receive())) == (1, 1)
    # AND the alert's resolution resolves the PagerDuty incident, not left open for good
    resolution = critical.resolution("ok", fake_clock.advance(300))
    resolved = invoke(sns_event(json.loads(resolution.model_dump_json())))
    assert channels_of(resolved["results"][0])["pagerduty"]["status"] == "sent"
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
    ]
