"""notification_router when a record of an alert in the state table (its newest notice, the
channels that took it, its suppressed duplicates, its completed claim) cannot be read: no text,
no time, or no JSON object (a hand edit, corruption). PagerDuty is the local receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_shared.alerts import Alert, alert_id
from tests.handlers.notification_router.test_notification_router import (
    Invoke,
    fleet_alert,
    published_again,
    sqs_event,
    statuses,
)
from tests.handlers.unreadable_state_entries import SECRET, unreadable_value

Data = dict[str, Any] | None
"""A record's `data` attribute as DynamoDB holds it (None: the record has none)."""

NO_OBJECT_DATA: dict[str, Data] = {
    "not-json": {"S": f"{{{SECRET}"},
    "a-json-list": {"S": f'["{SECRET}"]'},
}
"""By test id: stored data of a record of the router's that is text but no JSON object."""

NO_TEXT_DATA: dict[str, Data] = {"no-data": None, "data-a-number": {"N": "1717300000"}}
"""By test id: stored data of a record of the router's that is no text (the state table tells
both alike: `replace_value` of a value with no text)."""

NEWEST_NOTICE_DATA: dict[str, Data] = {
    "no-readable-time": {"S": '{"episode":3,"phase":"resolved","timestamp":"yesterday"}'},
    **NO_OBJECT_DATA,
    "no-data": NO_TEXT_DATA["no-data"],
}
"""By test id: stored data of a newest-notice record the router cannot read."""

COUNTER_DATA: dict[str, Data] = {
    **NO_OBJECT_DATA,
    "data-a-number": NO_TEXT_DATA["data-a-number"],
    "a-boolean-count": {"S": '{"count":true}'},
    "a-negative-count": {"S": '{"count":-4}'},
}
"""By test id: stored data of a suppressed-duplicate counter with no count the router can read
(Python takes `true` as 1)."""


def _write_unreadable(
    dynamodb_client: Any, state_table: Any, key: str, name: str, data: Data
) -> None:
    """A value of the router's under (`key`, `name`) stored with `data`, as corruption or a hand
    edit writes it."""
    dynamodb_client.put_item(
        TableName=state_table.table_name, Item=unreadable_value(key, name, data)
    )


@pytest.mark.parametrize("data", NEWEST_NOTICE_DATA.values(), ids=NEWEST_NOTICE_DATA.keys())
def test_an_alert_whose_newest_notice_record_cannot_be_read_is_paged_and_resolved(
    invoke: Invoke,
    receiver: Any,
    fake_clock: Any,
    state_table: Any,
    *,
    dynamodb_client: Any,
    data: Data,
) -> None:
    # GIVEN the record of an alert's newest notice holding a timestamp that is no time with a
    # zone, no text, or text that is no JSON object (a hand edit, corruption)
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    key = f"notification_router/{critical.id}"
    _write_unreadable(dynamodb_client, state_table, key, "last_notice", data)
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


@pytest.mark.parametrize(
    ("delivered", "alerted"),
    [
        (NO_OBJECT_DATA["not-json"], NO_OBJECT_DATA["not-json"]),
        (NO_TEXT_DATA["no-data"], NO_TEXT_DATA["data-a-number"]),
        ({"S": '{"channels":7}'}, {"S": '{"channel":null}'}),
    ],
    ids=["not-json", "no-text", "channels-no-list"],
)
def test_unreadable_records_of_the_channels_that_took_an_alert_neither_stop_nor_skip_it(
    invoke: Invoke,
    receiver: Any,
    fake_clock: Any,
    state_table: Any,
    *,
    dynamodb_client: Any,
    delivered: Data,
    alerted: Data,
) -> None:
    # GIVEN the record of the channels that took an alert, under its dedup key, holding text
    # that is no JSON, no text, or channels that are no list
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    _write_unreadable(
        dynamodb_client,
        state_table,
        f"notification_router/{critical.id}/critical/0",
        "delivered",
        delivered,
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
        alerted,
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


@pytest.mark.parametrize("data", COUNTER_DATA.values(), ids=COUNTER_DATA.keys())
def test_an_unreadable_suppressed_duplicate_counter_counts_none_and_is_replaced(
    data: Data, invoke: Invoke, receiver: Any, state_table: Any, dynamodb_client: Any
) -> None:
    # GIVEN the counter of an alert's suppressed duplicates holding no text, text that is no
    # JSON object, or a count that is a boolean or negative
    critical = Alert.model_validate(fleet_alert("critical"))
    content_key = alert_id(critical.source, critical.resource, critical.title)
    counter_key = f"notification_router/{content_key}/critical"
    _write_unreadable(dynamodb_client, state_table, counter_key, "suppressed", data)
    # WHEN the alert is routed
    paged = invoke(sqs_event(("m-1", json.loads(critical.model_dump_json()))))
    # THEN it is sent with no duplicate counted, and the counter is replaced by a zero count
    assert statuses(paged) == ["sent"]
    assert paged["results"][0]["suppressed_duplicates"] == 0
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]
    assert state_table.get_value(counter_key, "suppressed") == {"count": 0}
    # WHEN a copy of it is published THEN it is suppressed and counted from there
    again = invoke(published_again(json.loads(critical.model_dump_json())))
    assert statuses(again) == ["duplicate"]
    assert again["results"][0]["suppressed_duplicates"] == 1
    assert state_table.get_value(counter_key, "suppressed") == {"count": 1}


def test_a_copy_of_a_sent_alert_whose_completed_claim_cannot_be_read_reaches_no_channel(
    invoke: Invoke, receiver: Any, fake_clock: Any, state_table: Any, dynamodb_client: Any
) -> None:
    # GIVEN an alert sent, whose completed claim then lost its recorded result (a hand edit,
    # corruption)
    critical = Alert.model_validate(fleet_alert("critical", timestamp=fake_clock.now()))
    assert statuses(invoke(sqs_event(("m-1", json.loads(critical.model_dump_json()))))) == ["sent"]
    corrupted = dynamodb_client.update_item(
        TableName=state_table.table_name,
        Key={
            "pk": {"S": "IDEMPOTENCY#notification_router"},
            "sk": {"S": f"{critical.id}/critical/0"},
        },
        UpdateExpression="REMOVE #data",
        ExpressionAttributeNames={"#data": "data"},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert corrupted["status"] == {"S": "COMPLETED"}
    # WHEN a copy of it is published within the dedup window
    again = invoke(published_again(json.loads(critical.model_dump_json())))
    # THEN the claim still says it was delivered: the copy is a duplicate, PagerDuty is paged once
    assert statuses(again) == ["duplicate"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]
