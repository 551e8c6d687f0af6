"""SQS partial batch responses: handle each message, hand back the ones that failed.

The fleet's own, in place of Powertools' `BatchProcessor`: importing
`aws_lambda_powertools.utilities.batch` loads every Powertools event data class, several of its
parser models and asyncio (about 100 ms, half a cold start's baseline; docs/architecture.md),
for the few lines below. The behaviour is that of `BatchProcessor(EventType.SQS,
raise_on_entire_batch_failure=False)`: messages in order, a message whose handler raises is
logged with its traceback and listed in `batchItemFailures`, the others are deleted by Lambda.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

BATCH_ITEM_FAILURES = "batchItemFailures"


class QueueMessage:
    """One SQS record as the message handler reads it (the fields of Powertools' `SQSRecord`
    the fleet uses); a missing field raises KeyError, which fails that message only."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._record = record

    @property
    def message_id(self) -> str:
        """The SQS message id, the item identifier of a failed message."""
        return str(self._record["messageId"])

    @property
    def body(self) -> str:
        """The message body as sent."""
        return self._record["body"]


def process_partial_batch(
    records: Iterable[Mapping[str, Any]],
    handle_message: Callable[[QueueMessage], object],
    logger: Logger,
) -> dict[str, list[dict[str, str]]]:
    """Run `handle_message` on each record in order: `{"batchItemFailures": [...]}` with the
    `itemIdentifier` of every message whose handler raised (an empty list when none did)."""
    failures: list[dict[str, str]] = []
    for record in records:
        message = QueueMessage(record)
        try:
            handle_message(message)
        # Any failure of one message, bug or not, must leave the batch's other messages handled.
        except Exception:
            logger.warning("Record processing exception; skipping this record", exc_info=True)
            failures.append({"itemIdentifier": message.message_id})
    return {BATCH_ITEM_FAILURES: failures}
