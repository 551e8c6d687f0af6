"""notification_router when a record of an alert in the state table (its newest notice, the
channels that took it, its suppressed duplicates) cannot be read: no time, or no JSON object (a
hand edit, corruption). PagerDuty is the local receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_shared.alerts import Alert, alert_id
from tests.handlers.notification_router.test_notification_router import (
    Invoke,
    fleet_alert,
    sqs_event,
    statuses,
)
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

NO_OBJECT_TEXTS = {"not-json": f"{{{SECRET}", "a-json-list": f'["{SECRET}"]'}
"""By test id: stored texts of a record of the router's that are no JSON object."""

NEWEST_NOTICE_TEXTS = {
    "no-readable-time": '{"episode":3,"phase":"resolved","timestamp":"yesterday"}',
    **NO_OBJECT_TEXTS,
}
"""By test id: stored texts of a newest-notice record the router cannot read."""

COUNTER_TEXTS = {
    **NO_OBJECT_TEXTS,
    "a-boolean-count": '{"count":true}',
    "a-negative-count": '{"count":-4}',
}
"""By test id: stored texts of a suppressed-duplicate counter with no count the router can read
(Python takes `true` as 1)."""


def _write_unreadable(
    dynamodb_client: Any, state_table: Any, key: str, name: str, text: str
) -> None:
    """A value of the router's under (`key`, `name`) stored as `text`, as corruption or a hand
    edit writes it."""
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item=unreadable_value(key, name, {"S": text})
    )


@pytest.mark.parametrize("text", NEWEST_NOTICE_TEXTS.values(), ids=NEWEST_NOTICE_TEXTS.keys())
def test_an_alert_whose_newest_notice_record_cannot_be_read_is_paged_and_resolved(
    invoke: Invoke,
    receiver: Any,
    fake_clock: Any,
    state_table: Any,
    *,
    dynamodb_client: Any,
    text: str,
) -> None:
    # GIVEN the record of an alert's newest notice holding a timestamp that is no time with a
    # zone, or text that is no JSON object (a hand edit, corruption)
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    key = f"notification_router/{critical.id}"
    _write_unreadable(dynamodb_client, state_table, key, "last_notice", text)
    # WHEN the alert and then its resolution are routed
    paged = invoke(sqs_event(("m-1", json.loads(critical.model_dump_json()))))
    resolution = critical.resolution("ok", fake_clock.advance(300))
    resolved = invoke(sqs_event(("m-2", json.loads(resolution.model_dump_json()))))
    # THEN the record is taken as none and replaced, instead of failing every notice of the
    # alert to the dead-letter queue until it expires: PagerDuty is paged, then resolved
    assert (statuses(paged), statuses(resolved)) == (["sent"], ["sent"])
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
    ]
    assert state_table.get_value(key, "last_notice")["phase"] == "resolved"


def test_unreadable_records_of_the_channels_that_took_an_alert_neither_stop_nor_skip_it(
    invoke: Invoke, receiver: Any, fake_clock: Any, state_table: Any, dynamodb_client: Any
) -> None:
    # GIVEN the record of the channels that took an alert, under its dedup key, holding text
    # that is no JSON
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    _write_unreadable(
        dynamodb_client,
        state_table,
        f"notification_router/{critical.id}/critical/0",
        "delivered",
        NEWEST_NOTICE_TEXTS["not-json"],
    )
    # WHEN the alert is routed
    paged = invoke(sqs_event(("m-1", json.loads(critical.model_dump_json()))))
    # THEN it is sent, the record taken as no channel
    assert statuses(paged) == ["sent"]
    # GIVEN then the record that PagerDuty took it becomes unreadable too
    _write_unreadable(
        dynamodb_client,
        state_table,
        f"notification_router/{critical.id}/0",
        "alerted/pagerduty",
        NEWEST_NOTICE_TEXTS["not-json"],
    )
    # WHEN its resolution is routed
    resolution = critical.resolution("ok", fake_clock.advance(300))
    resolved = invoke(sqs_event(("m-2", json.loads(resolution.model_dump_json()))))
    # THEN the record still says PagerDuty took the alert: its incident is resolved
    assert statuses(resolved) == ["sent"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == [
        "trigger",
        "resolve",
    ]


@pytest.mark.parametrize("text", COUNTER_TEXTS.values(), ids=COUNTER_TEXTS.keys())
def test_an_unreadable_suppressed_duplicate_counter_counts_none_and_is_replaced(
    text: str, invoke: Invoke, receiver: Any, state_table: Any, dynamodb_client: Any
) -> None:
    # GIVEN the counter of an alert's suppressed duplicates holding text that is no JSON object,
    # or a count that is a boolean or negative
    critical = Alert.model_validate(fleet_alert("critical"))
    content_key = alert_id(critical.source, critical.resource, critical.title)
    counter_key = f"notification_router/{content_key}/critical"
    _write_unreadable(dynamodb_client, state_table, counter_key, "suppressed", text)
    # WHEN the alert is routed
    paged = invoke(sqs_event(("m-1", json.loads(critical.model_dump_json()))))
    # THEN it is sent with no duplicate counted, and the counter is replaced by a zero count
    assert statuses(paged) == ["sent"]
    assert paged["results"][0]["suppressed_duplicates"] == 0
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]
    assert state_table.get_value(counter_key, "suppressed") == {"count": 0}
    # WHEN a copy of it comes THEN it is suppressed and counted from there
    again = invoke(sqs_event(("m-2", json.loads(critical.model_dump_json()))))
    assert statuses(again) == ["duplicate"]
    assert again["results"][0]["suppressed_duplicates"] == 1
    assert state_table.get_value(counter_key, "suppressed") == {"count": 1}
