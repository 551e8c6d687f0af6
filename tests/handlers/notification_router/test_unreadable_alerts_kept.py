"""An SNS message the router cannot read is kept in its queue's dead-letter queue, once per
delivery, with the field and the problem; when it cannot be kept there, the invocation fails
after routing the rest of the batch, so Lambda keeps it (docs/functions/notification_router.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fleet_shared.sessions import HUB_ATTEMPTS, HUB_CALL_CONFIG
from handlers.notification_router import app
from handlers.notification_router.dead_letters import KEEP_SECONDS, SQS_MESSAGE_BYTES
from handlers.notification_router.exceptions import UndeliveredAlertError
from tests.handlers.faults import fail_every_attempt
from tests.handlers.notification_router.conftest import DeadLetterQueue, Receiver
from tests.handlers.notification_router.test_notification_router import (
    REGION,
    _deadline_context,
    fleet_alert,
    sns_event,
    sqs_event,
    statuses,
)

Invoke = Callable[..., dict[str, Any]]


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {
        name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()
    }


def _sqs_size(message: dict[str, Any]) -> int:
    """The bytes SQS counts for a received message: its body and each attribute's name, type
    and value."""
    return len(message["Body"].encode("utf-8")) + sum(
        len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in message.get("MessageAttributes", {}).items()
    )


def _router_sqs_client() -> Any:
    services = app.FUNCTION.services()
    return services.sessions.client(
        "sqs", services.sessions.hub_account_id, REGION, HUB_CALL_CONFIG
    )


def test_an_sns_alert_of_unknown_severity_is_kept_in_the_dead_letter_queue_and_the_rest_routed(
    invoke: Invoke, receiver: Receiver, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN an SNS batch whose first alert has a severity the router does not know ("error"),
    # and a good critical alert after it
    unreadable = fleet_alert("critical")
    unreadable["severity"] = "error"
    event = sns_event(unreadable, fleet_alert("critical", title="payments down"))
    # WHEN it is routed
    result = invoke(event)
    # THEN the first is an error result naming the field, the second is sent
    assert statuses(result) == ["error", "sent"]
    assert "invalid event: Records[0].Sns.Message.severity:" in result["results"][0]["error"]
    assert len(receiver.bodies("/pagerduty")) == 1
    # AND the first is kept, once, in the dead-letter queue: its SNS record as received, with
    # the field, the problem and what was kept
    (kept,) = dead_letter_queue.receive()
    assert json.loads(kept["Body"]) == event["Records"][0]["Sns"]
    attributes = _attributes(kept)
    assert attributes["field"] == "Records[0].Sns.Message.severity"
    assert attributes["problem"] == "Input should be 'critical', 'warning' or 'info'"
    assert attributes["kept"] == "Sns"
    assert attributes["sns_message_id"] == "sns-0"
    assert attributes["topic_arn"].endswith(":fleet-alerts-critical")
    assert result["results"][0]["dead_letter"] == {
        "kept": "Sns",
        "queue_message_id": kept["MessageId"],
    }


def test_a_kept_message_redriven_to_the_routers_queue_is_read_as_the_alert_it_carries(
    invoke: Invoke,
    receiver: Receiver,
    dead_letter_queue: DeadLetterQueue,
    fake_clock: Any,
) -> None:
    # GIVEN an alert refused for a time ten minutes ahead of the router's clock, kept
    early = fleet_alert("critical", timestamp=fake_clock.now() + timedelta(minutes=10))
    assert statuses(invoke(sns_event(early))) == ["error"]
    (kept,) = dead_letter_queue.receive()
    # WHEN that time has come and the kept message is redriven to the router's queue
    fake_clock.advance(600)
    result = invoke(sqs_event(("redriven", kept["Body"])))
    # THEN the router reads the SNS envelope and pages the alert
    assert statuses(result) == ["sent"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger"]


def test_a_record_whose_sns_is_no_object_is_kept_whole(
    invoke: Invoke, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN an SNS record whose Sns is a string
    event = {"Records": [{"EventSource": "aws:sns", "Sns": "not an object"}]}
    # WHEN it is routed THEN it is an error naming the field
    result = invoke(event)
    assert result["results"][0]["error"] == "invalid event: Records[0].Sns: expected an object"
    # AND the record is kept whole
    (kept,) = dead_letter_queue.receive()
    assert json.loads(kept["Body"]) == event["Records"][0]
    assert _attributes(kept) == {
        "field": "Records[0].Sns",
        "problem": "expected an object",
        "kept": "record",
    }


def test_a_second_delivery_of_a_kept_message_is_not_kept_again(
    invoke: Invoke, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN an SNS message that is not JSON, kept
    event = sns_event("{not json")
    first = invoke(event)
    # WHEN SNS delivers it again
    second = invoke(event)
    # THEN the second delivery is an error too, answered by the first keeping
    assert statuses(first) == statuses(second) == ["error"]
    assert second["results"][0]["dead_letter"] == {
        **first["results"][0]["dead_letter"],
        "earlier": True,
    }
    # AND the dead-letter queue holds it once
    assert len(dead_letter_queue.receive()) == 1


def test_a_second_delivery_of_a_kept_message_whose_claim_cannot_be_read_is_not_kept_again(
    invoke: Invoke, dead_letter_queue: DeadLetterQueue, state_table: Any, dynamodb_client: Any
) -> None:
    # GIVEN an SNS message that is not JSON, kept, whose completed claim then lost its recorded
    # result (a hand edit, corruption)
    event = sns_event("{not json")
    invoke(event)
    corrupted = dynamodb_client.update_item(
        TableName=state_table.table_name,
        Key={"pk": {"S": "IDEMPOTENCY#notification_router/dead_letters"}, "sk": {"S": "sns-0"}},
        UpdateExpression="REMOVE #data",
        ExpressionAttributeNames={"#data": "data"},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert corrupted["status"] == {"S": "COMPLETED"}
    # WHEN SNS delivers it again
    second = invoke(event)
    # THEN the delivery is an error result answered by the earlier keeping, not an exception
    # that fails the invocation (and SNS's retries of it)
    assert statuses(second) == ["error"]
    assert second["results"][0]["dead_letter"] == {"earlier": True}
    # AND the dead-letter queue holds it once
    assert len(dead_letter_queue.receive()) == 1


def test_a_message_too_big_with_its_envelope_is_kept_as_its_message_text(
    invoke: Invoke, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN an unreadable message SNS could take (140 KB) whose quotes JSON escapes again in
    # its record, past SQS's limit
    message = json.dumps({"severity": "error", "detail": '"' * 70_000})
    assert len(message) < SQS_MESSAGE_BYTES < len(json.dumps({"Message": message}))
    # WHEN it is routed
    invoke(sns_event(message))
    # THEN its Message is kept alone, as received
    (kept,) = dead_letter_queue.receive()
    assert kept["Body"] == message
    assert _attributes(kept)["kept"] == "Sns.Message"


def test_a_message_bigger_than_sns_takes_is_kept_cut_to_fit_and_says_so(
    invoke: Invoke, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN an unreadable message of a million characters (no SNS message: a forged event)
    message = "x" * 1_000_000
    # WHEN it is routed THEN it is an error result, without raising
    assert statuses(invoke(sns_event(message))) == ["error"]
    # AND its first bytes are kept, as many as SQS takes with the attributes
    (kept,) = dead_letter_queue.receive()
    kept_bytes = len(kept["Body"])
    assert message.startswith(kept["Body"])
    assert _attributes(kept)["kept"] == f"Sns.Message, its first {kept_bytes} of 1000000 bytes"
    assert SQS_MESSAGE_BYTES - 10 <= _sqs_size(kept) <= SQS_MESSAGE_BYTES


def test_a_dead_letter_queue_refusing_the_message_fails_the_invocation_after_the_batch(
    invoke: Invoke, receiver: Receiver, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN an unreadable alert before a good one, and SQS (or a proxy) failing every
    # SendMessage attempt with a server error whose message is a page over several lines
    invoke(sqs_event(("warm-up", fleet_alert("info", title="warm-up"))))
    page = "<html>\nAll alerts kept \x1b[31m\u2028" + "x" * 5000
    fault = fail_every_attempt(_router_sqs_client(), "sqs", "SendMessage", server_error=page)
    unreadable = {**fleet_alert("critical"), "severity": "error"}
    event = sns_event(unreadable, fleet_alert("critical", title="payments down"))
    # WHEN the batch is routed
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(event)
    # THEN the invocation fails naming the message not kept and why, after botocore's retries,
    # the page quoted on one line, cut, its control characters escaped
    assert raised.value.message_ids == []
    assert list(raised.value.unkept) == ["sns-0"]
    why = raised.value.unkept["sns-0"]
    assert why.startswith("ClientError: An error occurred (InternalServerError)")
    assert "<html>\\nAll alerts kept \\x1b[31m\\u2028xxx" in why
    assert why.isprintable()
    assert len(why) <= 200
    assert fault.attempts == HUB_ATTEMPTS
    # AND the good alert of the batch was routed all the same
    assert len(receiver.bodies("/pagerduty")) == 1
    # WHEN SQS is back and Lambda retries the event
    fault.healed = True
    result = invoke(event)
    # THEN the unreadable alert is kept, once, and the good one is not paged again
    assert statuses(result) == ["error", "redelivered"]
    assert len(dead_letter_queue.receive()) == 1
    assert len(receiver.bodies("/pagerduty")) == 1


def test_an_unset_dead_letter_queue_variable_fails_the_invocation_naming_it(
    invoke: Invoke, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a router without ROUTER_DEAD_LETTER_QUEUE_URL
    monkeypatch.delenv("ROUTER_DEAD_LETTER_QUEUE_URL")
    # WHEN an unreadable message and a good one arrive from SNS
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(sns_event("[]", fleet_alert("critical")))
    # THEN the invocation fails naming the variable, and the good alert was routed
    assert "ROUTER_DEAD_LETTER_QUEUE_URL" in raised.value.unkept["sns-0"]
    assert len(receiver.bodies("/pagerduty")) == 1


def test_an_unreadable_message_met_with_too_little_time_to_keep_it_fails_the_invocation(
    invoke: Invoke,
    dead_letter_queue: DeadLetterQueue,
    lambda_context: Any,
    sleeps: list[float],
) -> None:
    # GIVEN an invocation with 40 s left: less than the claim, the SendMessage and the claim's
    # completion may take (43 s)
    assert KEEP_SECONDS == 43
    context = _deadline_context(lambda_context, 40, sleeps)
    # WHEN an unreadable message arrives from SNS
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(sns_event("{not json"), context)
    # THEN it is not kept, and the invocation fails so that Lambda's retry keeps it
    assert raised.value.unkept == {"sns-0": "too little time left in the invocation"}
    assert dead_letter_queue.receive() == []


def test_a_long_sns_message_id_is_echoed_cut_to_one_short_line(
    invoke: Invoke, receiver: Receiver
) -> None:
    # GIVEN a direct invocation whose SNS MessageId is 100,000 characters with a line break,
    # for a warning that Slack refuses
    receiver.fail("/slack", 400, times=1)
    event = sns_event(fleet_alert("warning"))
    message_id = "\nFORGED: all clear " + "x" * 100_000
    event["Records"][0]["Sns"]["MessageId"] = message_id
    # WHEN it is routed
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(event)
    # THEN the error that fails the invocation names it by a short, escaped start of it, not by
    # the whole text, and starts no line of its own
    (named,) = raised.value.message_ids
    assert named.startswith("\\nFORGED: all clear xxx")
    assert len(named) <= 200
    assert "\n" not in str(raised.value)
    assert len(str(raised.value)) < 300


def test_an_undelivered_sns_message_without_message_id_is_named_by_its_record(
    invoke: Invoke, receiver: Receiver
) -> None:
    # GIVEN a direct invocation whose second SNS record has no MessageId, for a warning that
    # Slack refuses
    receiver.fail("/slack", 400, times=1)
    event = sns_event(fleet_alert("info", title="FYI"), fleet_alert("warning"))
    del event["Records"][1]["Sns"]["MessageId"]
    # WHEN it is routed
    with pytest.raises(UndeliveredAlertError) as raised:
        invoke(event)
    # THEN the error that fails the invocation names the warning by its record, not as None
    assert raised.value.message_ids == ["Records[1]"]


def test_an_sns_message_id_that_is_no_text_is_refused_naming_the_field(
    invoke: Invoke, receiver: Receiver, dead_letter_queue: DeadLetterQueue
) -> None:
    # GIVEN a direct invocation whose first SNS record has a MessageId that is a JSON object,
    # and a good critical alert after it
    event = sns_event(fleet_alert("critical"), fleet_alert("critical", title="payments down"))
    event["Records"][0]["Sns"]["MessageId"] = {"id": "x" * 100_000}
    # WHEN it is routed
    result = invoke(event)
    # THEN the first is refused naming the field and its type, never its value, and kept in the
    # dead-letter queue; the second is sent
    assert statuses(result) == ["error", "sent"]
    assert result["results"][0]["error"] == (
        "invalid event: Records[0].Sns.MessageId: expected a string, got dict"
    )
    (kept,) = dead_letter_queue.receive()
    assert _attributes(kept)["field"] == "Records[0].Sns.MessageId"
    assert len(receiver.bodies("/pagerduty")) == 1
