"""Behaviour of fleet_shared.sqs_batch: every message handled, the failed ones handed back."""

from __future__ import annotations

import logging

import pytest
from aws_lambda_powertools import Logger

from fleet_shared.sqs_batch import QueueMessage, process_partial_batch


def sqs_record(message_id: str, body: str) -> dict[str, str]:
    return {"messageId": message_id, "body": body, "eventSource": "aws:sqs"}


def test_failed_messages_are_reported_and_the_others_still_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN three messages, the second of which its handler cannot process
    handled: list[str] = []

    def handle(message: QueueMessage) -> None:
        if message.body == "poison":
            raise ValueError("cannot process")
        handled.append(message.message_id)

    records = [sqs_record("m-1", "a"), sqs_record("m-2", "poison"), sqs_record("m-3", "c")]
    # WHEN the batch is processed
    with caplog.at_level(logging.WARNING):
        response = process_partial_batch(records, handle, Logger(service="test"))
    # THEN the others are handled in order, only the failed one goes back, with a logged traceback
    assert handled == ["m-1", "m-3"]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert any(record.exc_info for record in caplog.records)


def test_a_batch_handled_in_full_reports_no_failure() -> None:
    # GIVEN a handler that accepts every message
    bodies: list[str] = []
    # WHEN a batch is processed THEN the response lists no failure
    response = process_partial_batch(
        [sqs_record("m-1", "a"), sqs_record("m-2", "b")], lambda m: bodies.append(m.body), Logger()
    )
    assert response == {"batchItemFailures": []}
    assert bodies == ["a", "b"]


def test_every_message_failing_is_still_a_partial_response() -> None:
    # GIVEN a handler that fails every message (a record without a body included)
    def handle(message: QueueMessage) -> None:
        raise RuntimeError(message.body)

    # WHEN the batch is processed THEN every message is handed back, nothing is raised
    response = process_partial_batch(
        [sqs_record("m-1", "a"), {"messageId": "m-2"}], handle, Logger()
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]}


@pytest.mark.parametrize(
    "bodies",
    [["a", "b", "c"], ["a", "poison", "c"], ["poison", "poison"], ["poison", "b", "poison", "d"]],
)
def test_the_response_is_the_one_powertools_batch_processor_gives(bodies: list[str]) -> None:
    # GIVEN a batch in which the messages whose body is "poison" fail their handler
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415 (the reference only)
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    records = [sqs_record(f"m-{index}", body) for index, body in enumerate(bodies)]

    # Named `record`: Powertools passes the message by that keyword.
    def handle(record: QueueMessage) -> None:
        if record.body == "poison":
            raise ValueError("cannot process")

    # WHEN the fleet's loop and Powertools' BatchProcessor, as the consumers used it, process it
    ours = process_partial_batch(records, handle, Logger(service="test"))
    powertools = process_partial_response(
        event={"Records": records},
        record_handler=handle,
        processor=BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False),
    )
    # THEN both hand back the same messages
    assert ours == powertools
